"""The network and the server misbehaving, through a fault-injecting proxy in front of a real
WebDAV server (and the real servers themselves): resets, stalls, truncated bodies, every HTTP
status that matters at each stage, malformed listings, a listing that loses half the files, a file
that changes during a resume, sizes that do not add up, hostile hrefs and bad certificates.

Every case checks three things: nothing already synced is lost, no partial file carries a real
name, and the person gets a clear message with the SPEC's exit code.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import wait_until
from faulthelpers import (
    MidBodyStallProxy,
    QuickDefault,
    Stamps,
    cong,
    drop_responses,
    file_responses,
    member_for,
    proxied_member,
    proxy_for,
    quick_retries,  # noqa: F401 - a fixture, used by name
    set_connection,
)
from faultproxy import FaultProxy, Rule
from member import Member, day, iso, run_cli
from servers import DavServer, ServerPool, TLSFiles, WsgiDavServer, make_tree

import m3daemon.engine.executor as executor_mod
from m3daemon.engine.results import Progress
from m3daemon.remote.http import RetryPolicy
from m3daemon.remote.transfer import Cancelled

MiB = 1024 * 1024
A, B = b"a" * 1000, b"b" * 1500
PREFS = {"meeting": {"mwDay": day(2).weekday(), "weDay": day(5).weekday()}}


def lay_out(server: DavServer, extra: dict[str, bytes | str] | None = None) -> None:
    files: dict[str, bytes | str] = {
        "forcedPrefs.json": json.dumps(PREFS),
        f"Media/{iso(1)}/a.jpg": A,
        f"Media/{iso(1)}/b.jpg": B,
    }
    make_tree(cong(server), files | (extra or {}), mtime=time.time() - 60)


FULL = {f"{iso(1)}/a.jpg": A, f"{iso(1)}/b.jpg": B}


def staged_parts(m: Member) -> list[Path]:
    staging = m.media / ".m3daemon" / "staging"
    return sorted(staging.glob("*.part")) if staging.exists() else []


# --- HTTP statuses at each stage --------------------------------------------------------------

STAGES: dict[str, tuple[str, Callable[[str], bool]]] = {
    "listing": ("PROPFIND", lambda p: True),
    "settings": ("GET", lambda p: p.endswith("/forcedPrefs.json")),
    "file": ("GET", lambda p: p.endswith("/b.jpg")),
}

STATUS_CASES = [
    # stage, status, exit code, words the message must hold
    ("listing", 401, 3, "refused the user name or password"),
    ("listing", 403, 3, "may not read the congregation folder"),
    ("listing", 404, 2, "does not exist on the server"),
    ("listing", 405, 4, "not a WebDAV server (status 405)"),
    ("listing", 501, 4, "not a WebDAV server (status 501)"),
    ("listing", 423, 1, "locked by another client"),
    ("listing", 429, 1, "429"),
    ("listing", 500, 1, "500"),
    ("listing", 503, 1, "503"),
    ("settings", 401, 3, "refused the user name or password"),
    ("settings", 403, 3, "may not read forcedPrefs.json"),
    ("settings", 500, 1, "500"),
    ("file", 401, 3, "refused the user name or password"),
    ("file", 403, 1, f"may not read Media/{iso(1)}/b.jpg"),
    ("file", 404, 1, f"The server lists Media/{iso(1)}/b.jpg but answers 404 for it; tell the coordinator"),
    ("file", 423, 1, "locked by another client"),
    ("file", 500, 1, "500"),
    ("file", 503, 1, "503"),
]


@pytest.mark.parametrize("stage, status, code, words", STATUS_CASES,
                         ids=[f"{s}-{st}" for s, st, _c, _w in STATUS_CASES])
@pytest.mark.usefixtures("quick_retries")
def test_an_error_status_at_each_stage_gives_its_exit_code_and_loses_nothing(
    wsgidav_server: DavServer, isolated_env: Path,
    stage: str, status: int, code: int, words: str,
) -> None:
    lay_out(wsgidav_server)
    method, match = STAGES[stage]
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        mine = m.media / iso(1) / "notes.txt"
        mine.parent.mkdir(parents=True)
        mine.write_bytes(b"a person's file")
        rule = proxy.add(Rule(method, match, status=status, body=b"<html>no</html>",
                              headers={"Content-Type": "text/html"}))
        rc, out, err = run_cli(m, "update")
        assert rule.hits >= 1
        assert rc == code, out + err
        assert words in err, err
        assert "What to do:" in err or "  What to do:" in err
        expected = {f"{iso(1)}/notes.txt": b"a person's file"}
        if stage == "file":
            expected[f"{iso(1)}/a.jpg"] = A  # the other file is whole
        files = m.files()
        assert files.get(f"{iso(1)}/b.jpg") is None, "nothing under the failed file's name"
        if code == 3 and stage == "file":
            # A 401 stops the sync; a.jpg may or may not have landed before it, but whole.
            assert {k: v for k, v in expected.items() if k in files} == files, files
        else:
            assert files == expected
        # The next run, with the server healthy again, is complete.
        proxy.rules.clear()
        rc, out, err = run_cli(m, "update")
    assert rc == 0, out + err
    assert m.files() == FULL | {f"{iso(1)}/notes.txt": b"a person's file"}
    assert staged_parts(m) == []


@pytest.mark.parametrize("status", [401, 403, 500])
@pytest.mark.usefixtures("quick_retries")
def test_settings_that_cannot_be_fetched_later_keep_the_last_good_ones(
    wsgidav_server: DavServer, isolated_env: Path, status: int
) -> None:
    lay_out(wsgidav_server, {"Media/Recurring/r.jpg": b"r"})
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env, days_ahead=6)
        assert run_cli(m, "update")[0] == 0
        before = m.files()
        # Recurring media follow the forced meeting days (day 2 and day 5) and day 1's own folder.
        assert {p.split("/")[0] for p in before if p.endswith("r.jpg")} == {iso(1), iso(2), iso(5)}
        (cong(wsgidav_server) / "forcedPrefs.json").write_text(json.dumps({"meeting": {"mwDay": 9}}))
        proxy.add(Rule("GET", STAGES["settings"][1], status=status))
        rc, out, err = run_cli(m, "update")
    assert rc == 0, out + err
    assert "forcedPrefs.json cannot be read" in err and "stay in force" in err
    assert m.files() == before


@pytest.mark.parametrize("stage, status", [("listing", 429), ("file", 503), ("settings", 503)])
def test_retry_after_is_honoured_then_the_request_succeeds(
    wsgidav_server: DavServer, isolated_env: Path, stage: str, status: int
) -> None:
    lay_out(wsgidav_server)
    method, _match = STAGES[stage]
    stamps = Stamps({"listing": "/Cong/", "settings": "/forcedPrefs.json", "file": "/b.jpg"}[stage])
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        busy = proxy.add(Rule(method, stamps, status=status, headers={"Retry-After": "1"}, times=1))
        report = m.update(retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=5))
    assert busy.hits == 1 and report.ok and m.files() == FULL
    assert len(stamps.times) >= 2
    assert 0.95 <= stamps.gaps()[0] < 2.0, f"waited {stamps.gaps()[0]:.2f}s for Retry-After: 1"


@pytest.mark.parametrize("stage, status", [("listing", 423), ("listing", 502), ("file", 423), ("file", 504)])
def test_a_passing_lock_or_gateway_error_is_retried(
    wsgidav_server: DavServer, isolated_env: Path, stage: str, status: int
) -> None:
    lay_out(wsgidav_server)
    method, match = STAGES[stage]
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        rule = proxy.add(Rule(method, match, status=status, times=1))
        report = m.update(retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
    assert rule.hits == 1 and report.ok and m.files() == FULL


# --- 207 with a body that cannot be used ----------------------------------------------------

MS = b'<d:multistatus xmlns:d="DAV:">'
MALFORMED = {
    "not-xml": (b"this is not XML at all", "application/xml", 1, "cannot be read"),
    "cut-off-xml": (b'<?xml version="1.0"?>' + MS + b"<d:response><d:href>/dav/Cong/",
                    "application/xml", 1, "cannot be read"),
    "wrong-root": (b"<html><body>Login</body></html>", "text/xml", 1, "no multistatus element"),
    "size-not-a-number": (
        MS + b"<d:response><d:href>/dav/Cong/Media/x/a.jpg</d:href><d:propstat><d:prop>"
        + b"<d:getcontentlength>12abc</d:getcontentlength></d:prop>"
        + b"<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>",
        "application/xml", 1, "not a number"),
    "response-without-href": (MS + b"<d:response><d:propstat/></d:response></d:multistatus>",
                              "application/xml", 1, "without href"),
    "nul-character": (MS + b"<d:response><d:href>/dav/Cong/a&#0;b</d:href></d:response></d:multistatus>",
                      "application/xml", 1, "cannot be read"),
    "html-page": (b"<!DOCTYPE html><html><body>Welcome</body></html>", "text/html", 4, "instead of WebDAV XML"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
@pytest.mark.usefixtures("quick_retries")
def test_a_207_with_a_malformed_body_changes_nothing(
    wsgidav_server: DavServer, isolated_env: Path, case: str
) -> None:
    body, ctype, code, words = MALFORMED[case]
    lay_out(wsgidav_server)
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        assert m.update().ok and m.files() == FULL
        proxy.add(Rule("PROPFIND", lambda p: True, status=207, body=body, headers={"Content-Type": ctype}))
        rc, out, err = run_cli(m, "update")
    assert rc == code, out + err
    assert words in err, err
    assert m.files() == FULL


def test_an_empty_multistatus_is_held_by_the_guard(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    lay_out(wsgidav_server)
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        assert m.update().ok
        proxy.add(Rule("PROPFIND", lambda p: True, status=207, body=b'<d:multistatus xmlns:d="DAV:"/>',
                       headers={"Content-Type": "application/xml"}))
        code, out = m.update_json()
    assert code == 1 and sorted(out["held_deletions"]) == sorted(FULL)
    assert "--allow-deletions" in out["errors"][0]["remedy"]
    assert m.files() == FULL


# --- the network ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PROPFIND", "GET"])
def test_a_connection_reset_once_is_retried(wsgidav_server: DavServer, isolated_env: Path, method: str) -> None:
    lay_out(wsgidav_server)
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        reset = proxy.add(Rule(method, STAGES["file" if method == "GET" else "listing"][1], reset=True, times=1))
        report = m.update(retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
    assert reset.hits == 1 and report.ok and m.files() == FULL


@pytest.mark.usefixtures("quick_retries")
def test_connection_resets_on_every_listing_exit_4(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    lay_out(wsgidav_server)
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        assert m.update().ok
        reset = proxy.add(Rule("PROPFIND", lambda p: True, reset=True))
        rc, out, err = run_cli(m, "update")
    assert rc == 4, out + err
    assert "Connection reset by peer" in err and "will try again" in err
    assert reset.hits == QuickDefault.attempts, "the policy's attempts in all, the first on libcurl included"
    assert m.files() == FULL


@pytest.mark.usefixtures("quick_retries")
def test_connection_resets_on_every_get_of_one_file_fail_only_that_file(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    lay_out(wsgidav_server)
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        proxy.add(Rule("GET", STAGES["file"][1], reset=True))
        rc, out, err = run_cli(m, "update")
    assert rc == 1, out + err
    assert f"{iso(1)}/b.jpg" in err and "Connection reset by peer" in err
    assert m.files() == {f"{iso(1)}/a.jpg": A}
    assert staged_parts(m) == []


def _stalled_member(proxy: FaultProxy, server: DavServer, home: Path) -> Member:
    m = proxied_member(proxy, server, home)
    set_connection(m, timeout_seconds=0.5)
    return m


@pytest.mark.parametrize("stage", ["listing", "settings", "file"])
def test_a_stalled_response_times_out_and_the_retry_succeeds(
    wsgidav_server: DavServer, isolated_env: Path, stage: str
) -> None:
    lay_out(wsgidav_server)
    suffix = {"listing": "/Cong/", "settings": "/forcedPrefs.json", "file": "/b.jpg"}[stage]
    stamps = Stamps(suffix)
    with proxy_for(wsgidav_server) as proxy:
        m = _stalled_member(proxy, wsgidav_server, isolated_env)
        stall = proxy.add(Rule(STAGES[stage][0], stamps, stall=1.0, times=1))
        report = m.update(retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
        # let the stalled handler finish before the proxy closes
        wait_until("the stalled reply", lambda: sum(1 for _m, p, _s in proxy.log if p.endswith(suffix)) >= 2)
    assert stall.hits == 1 and report.ok and m.files() == FULL
    assert 0.45 <= stamps.gaps()[0] < 0.95, "the timeout (0.5 s) fired, then the retry went out"


@pytest.mark.usefixtures("quick_retries")
def test_a_listing_that_always_stalls_exits_4_did_not_answer_in_time(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    lay_out(wsgidav_server)
    with proxy_for(wsgidav_server) as proxy:
        m = _stalled_member(proxy, wsgidav_server, isolated_env)
        assert m.update().ok
        stall = proxy.add(Rule("PROPFIND", lambda p: True, stall=1.0))
        started = time.monotonic()
        rc, out, err = run_cli(m, "update")
        elapsed = time.monotonic() - started
        wait_until("the stalls", lambda: len([e for e in proxy.log if e[0] == "PROPFIND"]) >= 1 + stall.hits)
    assert rc == 4, out + err
    assert "did not answer in time" in err
    assert stall.hits == 2 and elapsed < 3
    assert m.files() == FULL


def test_a_download_that_stalls_midway_times_out_and_resumes_in_the_same_run(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    payload = os.urandom(4 * MiB)
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/talk.mp4": payload})
    with proxy_for(wsgidav_server, MidBodyStallProxy) as proxy:
        assert isinstance(proxy, MidBodyStallProxy)
        m = _stalled_member(proxy, wsgidav_server, isolated_env)
        proxy.add(Rule("GET", lambda p: p.endswith("talk.mp4"), truncate_after=MiB, times=1))
        report = m.update(retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
        assert proxy.stalled.is_set()
    assert report.ok and m.files() == {f"{iso(1)}/talk.mp4": payload}
    assert ("GET", f"/dav/Cong/Media/{iso(1)}/talk.mp4", 206) in proxy.log
    assert report.bytes < len(payload) + 100_000


def test_settings_cut_short_once_are_asked_again(wsgidav_server: DavServer, isolated_env: Path) -> None:
    lay_out(wsgidav_server, {"Media/Recurring/r.jpg": b"r"})
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env, days_ahead=6)
        cut = proxy.add(Rule("GET", STAGES["settings"][1], truncate_after=10, times=1))
        report = m.update(retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
    assert cut.hits == 1 and report.ok
    assert not any("forcedPrefs" in w for w in report.warnings)
    assert {p.split("/")[0] for p in m.files() if p.endswith("r.jpg")} == {iso(1), iso(2), iso(5)}


# --- the server's own behaviour ---------------------------------------------------------------


def test_a_listing_that_suddenly_lacks_half_the_files_is_held_by_the_guard(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    names = [f"{n}.jpg" for n in "abcdef"]
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/{n}": n.encode() for n in names})
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        assert m.update().downloaded == 6
        lost = [b"/a.jpg<", b"/c.jpg<", b"/e.jpg<"]
        proxy.add(Rule("PROPFIND", lambda p: True,
                       rewrite=lambda body: drop_responses(body, lambda r: any(x in r for x in lost))))
        report = m.update()
    assert sorted(report.held_deletions) == [f"{iso(1)}/{n}.jpg" for n in "ace"]
    assert report.removed == 0 and not report.ok
    assert m.files() == {f"{iso(1)}/{n}": n.encode() for n in names}


class IgnoresIfRange(FaultProxy):
    """A server (or a caching proxy) that ignores ``If-Range`` and serves any range asked for."""

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        del h.headers["If-Range"]
        super()._serve(h)


class CancelAt(Progress):
    """Cancels the sync once ``limit`` bytes arrived: a partial download in staging."""

    def __init__(self, cancel: threading.Event, limit: int) -> None:
        super().__init__()
        self.cancel, self.limit = cancel, limit

    def add_bytes(self, n: int) -> None:
        super().add_bytes(n)
        if self.done_bytes >= self.limit:
            self.cancel.set()


def _partial_download(m: Member) -> None:
    cancel = threading.Event()
    with pytest.raises(Cancelled):
        m.update(progress=CancelAt(cancel, MiB), cancel=cancel)
    assert m.files() == {}
    [part] = staged_parts(m)
    assert 0 < part.stat().st_size < 4 * MiB


def _replace_on_server(path: Path, data: bytes) -> None:
    """A new version of the same size, written the way an upload does (new inode, newer mtime)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    later = time.time() + 5
    os.utime(tmp, (later, later))
    os.replace(tmp, path)


def _change_before_first_download(monkeypatch: pytest.MonkeyPatch, path: Path, data: bytes) -> None:
    """Change the file on the server after the listing, just before the resumed GET."""
    real = executor_mod.download
    done: list[bool] = []

    def changing(*args: object, **kwargs: object) -> object:
        if not done:
            done.append(True)
            _replace_on_server(path, data)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(executor_mod, "download", changing)


@pytest.mark.parametrize("when", ["before-the-listing", "after-the-listing"])
def test_a_file_changed_during_a_resume_restarts_and_is_never_spliced(
    dav_server: DavServer, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    old, new = os.urandom(4 * MiB), os.urandom(4 * MiB)
    rel = f"Media/{iso(1)}/talk.mp4"
    make_tree(cong(dav_server), {rel: old}, mtime=time.time() - 60)
    m = member_for(dav_server, isolated_env)
    _partial_download(m)
    if when == "before-the-listing":
        _replace_on_server(cong(dav_server) / rel, new)
    else:
        _change_before_first_download(monkeypatch, cong(dav_server) / rel, new)
    report = m.update(retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05))
    got = m.files().get(f"{iso(1)}/talk.mp4")
    assert got in (None, new), "never the old start spliced onto the new end"
    if got is None:
        assert report.failed == 1 and "changed on the server" in report.errors[0]["message"]
    monkeypatch.undo()
    report = m.update()
    assert report.ok and m.files() == {f"{iso(1)}/talk.mp4": new}
    assert staged_parts(m) == []


@pytest.mark.parametrize("kind", ["wsgidav", "nginx"])  # ETags in the listing, and none (nginx)
def test_a_server_that_ignores_if_range_never_gets_a_changed_file_spliced(
    dav_server_pool: ServerPool, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    server = dav_server_pool.fresh(kind)
    old, new = os.urandom(4 * MiB), os.urandom(4 * MiB)
    rel = f"Media/{iso(1)}/talk.mp4"
    make_tree(cong(server), {rel: old}, mtime=time.time() - 60)
    with proxy_for(server, IgnoresIfRange) as proxy:
        m = proxied_member(proxy, server, isolated_env)
        _partial_download(m)
        _change_before_first_download(monkeypatch, cong(server) / rel, new)
        report = m.update(retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05))
        assert m.files().get(f"{iso(1)}/talk.mp4") in (None, new), "never a splice"
        if report.failed:
            assert "changed on the server" in report.errors[0]["message"]
        monkeypatch.undo()
        report = m.update()
    assert report.ok and m.files() == {f"{iso(1)}/talk.mp4": new}


@pytest.mark.usefixtures("quick_retries")
def test_a_body_of_another_length_is_rejected_and_never_resumed_from(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    lay_out(wsgidav_server)
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        # A broken proxy or server hands out something else, shorter than the listed size.
        proxy.add(Rule("GET", STAGES["file"][1], rewrite=lambda body: b"X" * (len(body) // 2), times=1))
        rc, out, err = run_cli(m, "update")
        assert rc == 1, out + err
        assert f"arrived with {len(B) // 2} bytes instead of the {len(B)}" in err and "rejected" in err
        assert m.files() == {f"{iso(1)}/a.jpg": A}
        rc, out, err = run_cli(m, "update")
    assert rc == 0, out + err
    assert m.files() == FULL, "the next run starts over: no rejected bytes are kept"


@pytest.mark.parametrize("factor", [2, 0.5])
@pytest.mark.usefixtures("quick_retries")
def test_a_listing_that_advertises_a_wrong_size_gets_the_file_rejected(
    wsgidav_server: DavServer, isolated_env: Path, factor: float
) -> None:
    lay_out(wsgidav_server)
    wrong = int(len(B) * factor)

    def lie(body: bytes) -> bytes:
        for resp in file_responses(body):
            if b"/b.jpg<" in resp:
                body = body.replace(resp, re.sub(rb"(getcontentlength>)\d+", rb"\g<1>%d" % wrong, resp))
        return body

    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        proxy.add(Rule("PROPFIND", lambda p: True, rewrite=lie))
        rc, out, err = run_cli(m, "update")
        assert rc == 1, out + err
        assert f"instead of the {wrong} the server listed" in err
        assert m.files() == {f"{iso(1)}/a.jpg": A}
        assert staged_parts(m) == []
        proxy.rules.clear()
        rc, out, err = run_cli(m, "update")
    assert rc == 0 and m.files() == FULL


# --- hostile hrefs ----------------------------------------------------------------------------


def _inject(body: bytes, hrefs: list[str]) -> bytes:
    prefix = re.search(rb"<(\w+):multistatus", body)
    ns = prefix.group(1) if prefix else b"d"
    extra = b"".join(
        b"<%s:response><%s:href>%s</%s:href><%s:propstat><%s:prop><%s:resourcetype/>"
        b"<%s:getcontentlength>4</%s:getcontentlength><%s:getetag>\"e\"</%s:getetag></%s:prop>"
        b"<%s:status>HTTP/1.1 200 OK</%s:status></%s:propstat></%s:response>"
        % ((ns, ns, h.encode(), ns, ns, ns, ns, ns, ns, ns, ns, ns, ns, ns, ns, ns))
        for h in hrefs
    )
    end = body.rindex(b"</")
    return body[:end] + extra + body[end:]


D1 = f"/dav/Cong/Media/{iso(1)}"
HOSTILE_HREFS = {
    "dot-dot-raw": f"/dav/Cong/Media/{iso(1)}/../../../../evil.jpg",
    "dot-dot-encoded": f"{D1}/%2e%2e/%2e%2e/%2e%2e/evil.jpg",
    "dot-dot-slash-in-one-name": f"{D1}/%2E%2E%2F%2E%2E%2Fevil.jpg",
    "absolute-posix": f"{D1}/%2Ftmp%2Fevil.jpg",
    "absolute-windows": f"{D1}/C:%5CWindows%5Cevil.jpg",
    "backslash-raw": f"{D1}/..\\..\\evil.jpg",
    "nul-encoded": f"{D1}/evil.jpg%00.png",
    "newline-encoded": f"{D1}/evil%0A.jpg",
    "overlong-utf8-dots": f"{D1}/%c0%ae%c0%ae%c0%afevil.jpg",
    "con": f"{D1}/CON",
    "con-with-extension": f"{D1}/con.jpg",
    "lpt1": f"{D1}/LPT1.mp4",
    "name-over-255-bytes": f"{D1}/{'e' * 300}.jpg",
    "name-over-255-bytes-utf8": f"{D1}/{'%C3%A9' * 130}.jpg",
    "trailing-space": f"{D1}/evil.jpg%20",
    "hidden-dot-name": f"{D1}/.evil.jpg",
    "date-folder-escape": f"/dav/Cong/Media/..%2F..%2F{iso(1)}/evil.jpg",
    "dot-segment-inside": f"/dav/Cong/Media/./{iso(1)}/./evil.jpg",
    "query-and-traversal": f"{D1}/evil.jpg?x=/../../../etc",
}


@pytest.mark.parametrize("case", list(HOSTILE_HREFS))
def test_a_hostile_href_never_becomes_a_path(
    wsgidav_server: DavServer, isolated_env: Path, case: str
) -> None:
    href = HOSTILE_HREFS[case]
    lay_out(wsgidav_server)
    with proxy_for(wsgidav_server) as proxy:
        proxy.add(Rule("PROPFIND", lambda p: True, rewrite=lambda b: _inject(b, [href])))
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        report = m.update()
    # An href's path is taken literally (issue 11.11): the "query" is part of it, and its dot
    # segments get it skipped like any other.
    assert report.ok, report.errors
    assert m.files() == FULL
    escaped = [p for p in isolated_env.rglob("*evil*")]
    assert escaped == [], escaped
    assert not list(Path("/tmp").glob("evil.jpg"))


def test_a_double_encoded_name_is_decoded_once_and_used_literally(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    name = "%2e%2e%2fnot-a-path.jpg"
    lay_out(wsgidav_server, {f"Media/{iso(1)}/{name}": b"literal"})
    m = member_for(wsgidav_server, isolated_env)
    report = m.update()
    assert report.ok
    assert m.files() == FULL | {f"{iso(1)}/{name}": b"literal"}


# --- TLS --------------------------------------------------------------------------------------


class BadCertServer(WsgiDavServer):
    """A WsgiDAV server with the certificate it is given; its readiness probe does not verify."""

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx


def _tls_files(directory: Path, case: str) -> TLSFiles:
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    now = datetime.now(UTC)
    if case == "expired":
        cert = ca.issue_cert("127.0.0.1", "localhost", not_before=now - timedelta(days=30),
                             not_after=now - timedelta(days=1))
    elif case == "other-host":
        cert = ca.issue_cert("example.org")
    else:
        cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TLSFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem", directory / "both.pem")
    ca_for_client = trustme.CA() if case == "wrong-ca" else ca
    ca_for_client.cert_pem.write_to_path(str(files.ca_file))
    cert.private_key_pem.write_to_path(str(files.key_file))
    files.cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_and_cert_chain_pem.write_to_path(str(files.combined_file))
    return files


TLS_CASES = {
    "wrong-ca": "unable to get local issuer certificate",
    "expired": "certificate has expired",
    "other-host": "certificate is not valid for '127.0.0.1'",
}


@pytest.mark.parametrize("case", list(TLS_CASES))
def test_a_certificate_problem_exits_4_with_the_reason(isolated_env: Path, tmp_path: Path, case: str) -> None:
    tls = _tls_files(tmp_path / "tls", case)
    server = BadCertServer(tmp_path / "server", tls)
    server.start()
    try:
        make_tree(server.root / "Cong", {f"Media/{iso(1)}/a.jpg": b"a"})
        m = Member.create(isolated_env, server.url, "/dav/Cong", server.username, server.password, tls.ca_file)
        proc = m.cli("update")
    finally:
        server.stop()
    assert proc.returncode == 4, proc.stderr
    assert "The secure connection to 127.0.0.1" in proc.stderr
    assert TLS_CASES[case] in proc.stderr, proc.stderr
    assert "ca_file" in proc.stderr and m.files() == {}
