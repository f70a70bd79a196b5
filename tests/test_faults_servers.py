"""Servers that bend the rules and servers that attack (issue 11): raw ``#`` in hrefs, weak ETags,
a file listed but never served, answers dripped at a byte at a time, and compression and size
bombs. Real servers behind the fault proxy, or, for the bombs, a proxy that serves crafted bodies.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import wait_until
from faulthelpers import (
    QUICK,
    cong,
    proxied_member,
    proxy_for,
    quick_retries,  # noqa: F401 - a fixture, used by name
    set_connection,
)
from faultproxy import FaultProxy, Rule
from member import iso
from servers import DavServer, ServerPool, make_tree

MiB = 1024 * 1024


class DripProxy(FaultProxy):
    """A FaultProxy that sends the answers ``drip_when(method, path)`` picks one byte every
    ``interval`` seconds, status line and headers included: never silent long enough for a
    per-read timeout, and never finished."""

    def __init__(self, upstream: str, ca_file: Path) -> None:
        super().__init__(upstream, ca_file)
        self.drip_when: Callable[[str, str], bool] = lambda method, path: False
        self.interval = 0.05
        self.drip_head = True  # False: the status line and headers at once, then the body dripped
        self.stopping = threading.Event()

    def _reply(
        self, h: BaseHTTPRequestHandler, method: str, path: str, status: int, headers: dict[str, str],
        data: bytes, cut: int | None = None,
    ) -> None:
        if not self.drip_when(method, path):
            super()._reply(h, method, path, status, headers, data, cut)
            return
        self.log.append((method, path, status))
        head = f"HTTP/1.1 {status} Dripping\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        raw = (head + f"Content-Length: {len(data)}\r\n\r\n").encode() + data
        h.close_connection = True
        try:
            start = 0 if self.drip_head else raw.index(b"\r\n\r\n") + 4
            h.wfile.write(raw[:start])
            h.wfile.flush()
            for i in range(start, len(raw)):
                if self.stopping.wait(self.interval):
                    return
                h.wfile.write(raw[i:i + 1])
                h.wfile.flush()
        except OSError:
            return  # the client gave up: what the test wants

    def close(self) -> None:
        self.stopping.set()
        super().close()


# --- 11. unencoded # in a listing's hrefs ------------------------------------------------------


def test_an_unencoded_hash_in_a_listed_href_is_part_of_the_name(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/Song #12.jpg": b"song", f"Media/{iso(1)}/b.jpg": b"b"})
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        host = proxy.url.split("://", 1)[1].encode()

        def like_webdav_server(body: bytes) -> bytes:
            # npm webdav-server: the name as is, and an absolute href with another scheme.
            body = body.replace(b"%23", b"#").replace(b"Song%20", b"Song ")
            return re.sub(rb"<(\w+:)?href>/", rb"<\1href>https://" + host + b"/", body)

        proxy.add(Rule("PROPFIND", lambda p: True, rewrite=like_webdav_server))
        first = m.update(retry=QUICK)
        second = m.update(retry=QUICK)
    assert first.ok and first.downloaded == 2, first.errors
    assert m.files() == {f"{iso(1)}/Song #12.jpg": b"song", f"{iso(1)}/b.jpg": b"b"}
    assert second.ok and second.downloaded == 0


# --- 12. weak ETags: resume on the date ---------------------------------------------------------


def _weak_listing(body: bytes) -> bytes:
    return re.sub(rb'(<(?:\w+:)?getetag(?: [^>]*)?>)\s*"', rb'\1W/"', body)


def _weak_header(headers: dict[str, str]) -> dict[str, str]:
    return {k: (f"W/{v}" if k.lower() == "etag" and v.startswith('"') else v) for k, v in headers.items()}


def _as_weak_only_server(headers: dict[str, str]) -> dict[str, str]:
    """A server that has only weak ETags compares ``If-Range: "x"`` against ``W/"x"`` and finds no
    match; forwarding it as ``W/"x"`` makes the real server judge it the same way."""
    return {k: (f"W/{v}" if k.lower() == "if-range" and v.startswith('"') else v) for k, v in headers.items()}


def test_a_download_with_only_a_weak_etag_resumes_on_the_date(
    dav_server_pool: ServerPool, isolated_env: Path
) -> None:
    server = dav_server_pool.fresh("apache")
    data = bytes(range(256)) * (8 * 1024)  # 2 MiB
    make_tree(cong(server), {f"Media/{iso(1)}/talk.mp4": data}, mtime=time.time() - 120)
    with proxy_for(server) as proxy:
        m = proxied_member(proxy, server, isolated_env)
        is_talk = lambda p: p.endswith("/talk.mp4")
        proxy.add(Rule("PROPFIND", lambda p: True, rewrite=_weak_listing))
        proxy.add(Rule("GET", is_talk, truncate_after=MiB, response_headers=_weak_header, times=1))
        proxy.add(Rule("GET", is_talk, request_headers=_as_weak_only_server, response_headers=_weak_header))
        report = m.update(retry=QUICK)
    gets = [status for method, path, status in proxy.log if method == "GET" and is_talk(path)]
    assert report.ok, report.errors
    assert gets == [200, 206], "resumed with a range, not downloaded again from zero"
    assert m.files() == {f"{iso(1)}/talk.mp4": data}


# --- 13. a file the server lists but never serves -----------------------------------------------


def test_a_file_the_server_lists_but_never_serves_is_named_once_and_does_not_turn_the_daemon_red(
    wsgidav_server: DavServer, isolated_env: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from m3daemon.daemon.runner import CongregationRunner
    from m3daemon.engine.status import SyncState
    from m3daemon.engine.sync import update

    d = f"Media/{iso(1)}"
    make_tree(cong(wsgidav_server), {f"{d}/01 Song.mp4": b"s" * 100, f"{d}/02 Talk.jpg": b"t",
                                     f"{d}/03 Video.mp4": b"v" * 100, f"Media/{iso(2)}/x.jpg": b"x"})
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        proxy.add(Rule("GET", lambda p: p.endswith("/01%20Song.mp4"), status=404))  # listed, never served
        proxy.add(Rule("GET", lambda p: p.endswith("/03%20Video.mp4"), status=500))
        with caplog.at_level("DEBUG", logger="m3daemon"):
            first, second = m.update(retry=QUICK), m.update(retry=QUICK)
        song = f"The server lists {d}/01 Song.mp4 but answers 404 for it; tell the coordinator."
        video = f"The server lists {d}/03 Video.mp4 but answers 500 for it; tell the coordinator."
        messages = lambda r: sorted(e["message"] for e in r.errors)
        assert messages(first) == sorted([song, f"The server answered 500 Internal Server Error for {d}/03 Video.mp4."])
        assert messages(second) == sorted([song, video]) and second.failed == 2
        assert second.missing == {iso(1): [f"{iso(1)}/01 Song.mp4", f"{iso(1)}/03 Video.mp4"]}
        warned = [r for r in caplog.records if r.levelname == "WARNING" and "01 Song.mp4" in r.getMessage()]
        assert len(warned) == 1, "logged once, not at every sync"
        assert not any("disappeared" in r.getMessage() for r in caplog.records)
        # The daemon: the rest is complete, so the state is not an error; the readiness names the file.
        monkeypatch.setenv("M3DAEMON_PASSWORD", m.password)
        runner = CongregationRunner(m.config, sync_fn=lambda cfg, **kw: update(cfg, retry=QUICK, **kw))
        runner.start()
        try:
            assert runner.wait_for(runner.request_sync("test"), timeout=30)
            status = runner.status()
        finally:
            runner.stop()
    assert status.state is SyncState.UP_TO_DATE and status.last_error is None
    assert status.missing == {iso(1): [f"{iso(1)}/01 Song.mp4", f"{iso(1)}/03 Video.mp4"]}
    assert status.to_json()["missing"] == status.missing
    assert m.files() == {f"{iso(1)}/02 Talk.jpg": b"t", f"{iso(2)}/x.jpg": b"x"}


def test_a_file_deleted_between_the_listing_and_its_download_is_said_to_have_disappeared(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    d = f"Media/{iso(1)}"
    make_tree(cong(wsgidav_server), {f"{d}/a.jpg": b"a", f"{d}/gone.jpg": b"g"})

    def coordinator_deletes_it(path: str) -> bool:
        if not path.endswith("/gone.jpg"):
            return False
        (cong(wsgidav_server) / d / "gone.jpg").unlink(missing_ok=True)
        return True

    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        proxy.add(Rule("GET", coordinator_deletes_it, status=404))
        report = m.update(retry=QUICK)
    assert [e["message"] for e in report.errors] == [f"{d}/gone.jpg disappeared from the server during the sync."]
    assert m.files() == {f"{iso(1)}/a.jpg": b"a"}


def test_a_file_a_strict_server_lists_but_does_not_serve_is_named_as_listed(
    dav_server_pool: ServerPool, isolated_env: Path
) -> None:
    """lighttpd answers 415 to a PROPFIND body not sent as XML: the check that tells "gone" from
    "listed but not served" must send it as such, or every such file is said to have gone."""
    server = dav_server_pool.fresh("lighttpd")
    d = f"Media/{iso(1)}"
    make_tree(cong(server), {f"{d}/a.jpg": b"a", f"{d}/kept.jpg": b"k"})
    with proxy_for(server) as proxy:
        m = proxied_member(proxy, server, isolated_env)
        proxy.add(Rule("GET", lambda p: p.endswith("/kept.jpg"), status=404))
        report = m.update(retry=QUICK)
    assert [e["message"] for e in report.errors] == [
        f"The server lists {d}/kept.jpg but answers 404 for it; tell the coordinator."]
    assert m.files() == {f"{iso(1)}/a.jpg": b"a"}


# --- 4. a server that drips its answer: every request has an overall deadline -------------------


def test_a_server_that_drips_its_answer_ends_the_update_within_the_deadline(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/a.jpg": b"a"})
    with proxy_for(wsgidav_server, DripProxy) as proxy:
        assert isinstance(proxy, DripProxy)
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        set_connection(m, timeout_seconds=0.5, request_deadline_seconds=1.5)
        proxy.drip_when = lambda method, path: method == "PROPFIND"  # 20 bytes/s, forever
        started = time.monotonic()
        proc = m.cli("update", timeout=60)
        took = time.monotonic() - started
    assert proc.returncode == 4, proc.stderr
    assert ("answers too slowly: the request did not finish within 1.5 seconds "
            "([connection] request_deadline_seconds)") in proc.stderr
    assert took < 10, f"took {took:.1f}s"
    assert m.files() == {}


def test_a_stuck_sync_never_blocks_update_now_for_longer_than_the_deadline(
    wsgidav_server: DavServer, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from m3daemon.daemon.runner import CongregationRunner
    from m3daemon.engine.sync import update

    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/a.jpg": b"a"})
    with proxy_for(wsgidav_server, DripProxy) as proxy:
        assert isinstance(proxy, DripProxy)
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        set_connection(m, timeout_seconds=0.5, request_deadline_seconds=1.0)
        dripping = threading.Event()
        dripping.set()
        proxy.drip_when = lambda method, path: dripping.is_set() and method == "PROPFIND"
        monkeypatch.setenv("M3DAEMON_PASSWORD", m.password)
        runner = CongregationRunner(m.config, sync_fn=lambda cfg, **kw: update(cfg, retry=QUICK, **kw),
                                    backoff=(60.0,))
        runner.start()
        try:
            runner.request_sync("poll")
            wait_until("the stuck listing", lambda: any(method == "PROPFIND" for method, _p, _s in proxy.log))
            dripping.clear()  # the server recovers; the stuck request does not notice
            started = time.monotonic()
            seq = runner.request_sync("update now", force=True)
            assert runner.wait_for(seq, timeout=15)
            took = time.monotonic() - started
            status = runner.status()
        finally:
            runner.stop()
    assert took < 1.0 + 3.0, f"Update now waited {took:.1f}s behind the stuck sync (deadline 1 s)"
    assert status.state.value == "up-to-date" and m.files() == {f"{iso(1)}/a.jpg": b"a"}


# --- 5. compression and size bombs --------------------------------------------------------------


def gzip_bomb(head: bytes, filler: bytes, gib: int, tail: bytes) -> bytes:
    """``head + filler * (gib GiB) + tail``, gzip-compressed in about 1 MB per GiB: each 1 MiB block
    is compressed after a full flush, so its compressed form repeats and is built once. (The gzip
    trailer's checksum is wrong: a client that got that far has already lost.)"""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    start = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    block = filler * ((1 << 20) // len(filler))
    c.compress(block)
    c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    return start + again * (1024 * gib) + c.compress(tail) + c.flush()


XML = {"Content-Type": "application/xml; charset=utf-8"}
GZ = {"Content-Encoding": "gzip"}
MS = b'<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:">'
ONE = (b"<d:response><d:href>/dav/Cong/Media/x.jpg</d:href><d:propstat><d:prop><d:getcontentlength>1"
       b"</d:getcontentlength></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>")
BOMBS = {
    # case: (method, body, headers, words of the message)
    "an-href-of-a-gigabyte": ("PROPFIND", gzip_bomb(MS + b"<d:response><d:href>/dav/Cong/", b"a", 1, b""),
                              XML | GZ, "a text in it is longer than 65536 characters"),
    "a-gigabyte-of-entries": ("PROPFIND", gzip_bomb(MS, ONE, 1, b"</d:multistatus>"), XML | GZ,
                              "it has more than 100000 entries"),
    "a-settings-file-of-a-gigabyte": ("GET", gzip_bomb(b'{"app": {"x": "', b"a", 1, b'"}}'), GZ,
                                      "forcedPrefs.json is larger than 1 MiB once decoded"),
    "a-web-page-of-2-gigabytes": ("PROPFIND", gzip_bomb(b"<html><body>", b"<p>welcome</p>", 2, b""),
                                  {"Content-Type": "text/html"} | GZ, "a web page, not a WebDAV listing"),
    "a-listing-of-a-gigabyte": ("PROPFIND", gzip_bomb(MS + ONE, b"<!--" + b"x" * 1020 + b"-->", 1,
                                                              b"</d:multistatus>"),
                                XML | GZ, "larger than 256 MiB once decoded"),
}


@pytest.mark.parametrize("case", list(BOMBS))
def test_a_compression_or_size_bomb_is_stopped_at_its_cap_with_a_clear_error(
    wsgidav_server: DavServer, isolated_env: Path, case: str
) -> None:
    method, body, headers, words = BOMBS[case]
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/good.jpg": b"good", "forcedPrefs.json": "{}"})
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        assert m.update().ok
        if method == "GET":
            (cong(wsgidav_server) / "forcedPrefs.json").write_text('{"app": {}}')  # fetched again
        status = 200 if "web-page" in case or method == "GET" else 207
        match = (lambda p: p.endswith("/forcedPrefs.json")) if method == "GET" else (lambda p: True)
        proxy.add(Rule(method, match, status=status, body=body, headers=headers))
        proc = m.cli("update", timeout=60, limit_memory=1536 * MiB)  # each bomb is 1 or 2 GiB
    # A listing fails the sync (nothing changed); settings that cannot be read leave the last good
    # ones in force (exit 0 with the warning); a web page is not a WebDAV server (exit 4).
    assert proc.returncode == {"GET": 0, "PROPFIND": 4 if "web-page" in case else 1}[method], proc.stderr[-2000:]
    assert words in proc.stderr, proc.stderr[-2000:]
    assert "MemoryError" not in proc.stderr
    assert m.files() == {f"{iso(1)}/good.jpg": b"good"}


def test_a_listing_being_read_stops_when_the_sync_is_cancelled(wsgidav_server: DavServer, isolated_env: Path) -> None:
    from m3daemon.errors import Cancelled

    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/a.jpg": b"a"})
    with proxy_for(wsgidav_server, DripProxy) as proxy:
        assert isinstance(proxy, DripProxy)
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        set_connection(m, timeout_seconds=5, request_deadline_seconds=600)
        proxy.drip_head = False
        proxy.drip_when = lambda method, path: method == "PROPFIND"
        cancel, outcome = threading.Event(), []

        def sync() -> None:
            try:
                outcome.append(m.update(cancel=cancel, retry=QUICK))
            except Cancelled as exc:
                outcome.append(exc)

        worker = threading.Thread(target=sync)
        worker.start()
        wait_until("the listing to be under way", lambda: any(mt == "PROPFIND" for mt, _p, _s in proxy.log))
        started = time.monotonic()
        cancel.set()  # the daemon stops, or a person pauses
        worker.join(timeout=10)
        took = time.monotonic() - started
    assert not worker.is_alive() and isinstance(outcome[0], Cancelled)
    assert took < 2, f"the listing went on for {took:.1f}s after the cancel"
    assert m.files() == {}
