"""Servers that bend the rules and servers that attack (issue 11): raw ``#`` in hrefs, weak ETags,
a file listed but never served, answers dripped at a byte at a time, and compression and size
bombs. Real servers behind the fault proxy, or, for the bombs, a proxy that serves crafted bodies.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from faulthelpers import (
    QUICK,
    cong,
    proxied_member,
    proxy_for,
    quick_retries,  # noqa: F401 - a fixture, used by name
)
from faultproxy import Rule
from member import iso
from servers import DavServer, ServerPool, make_tree

MiB = 1024 * 1024


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
