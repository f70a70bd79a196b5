"""On a server that speaks HTTP/2, a walk asks every folder at once on one connection: one TLS
handshake and one round trip instead of four connections taking turns. Whether the server does is
learnt from its answers and kept with the listing memo; a server that speaks only HTTP/1.1 is
never made to wait for one connection to multiplex on.

Apache with mod_http2 stands in for the HTTP/2 hosts (Nextcloud's, most reverse proxies); the
contract suite's Apache speaks HTTP/1.1 only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faulthelpers import cong, member_for
from member import Member, iso
from servers import ApacheH2Server, DavServer, ServerPool, make_tree

from m3daemon.engine.context import record_path
from m3daemon.engine.sync import KEPT_MEMO, ListingCache, SyncReport
from m3daemon.local.record import Record

pytest.importorskip("pycurl", reason="the walk on libcurl needs pycurl (pip install pycurl)")

DATES = [iso(d) for d in range(1, 9)]
FILES = {f"Media/{day}/{n} picture.jpg": f"{day}-{n}".encode() for day in DATES for n in range(3)}
FOLDERS = 2 + len(DATES)  # the congregation folder, Media/, and each date folder


@pytest.fixture
def h2_server(dav_server_pool: ServerPool) -> ApacheH2Server:
    server = dav_server_pool.fresh("apache-h2")
    assert isinstance(server, ApacheH2Server)
    return server


def update(m: Member, **kwargs: Any) -> SyncReport:
    report = m.update(**kwargs)
    assert report.ok, report.errors
    return report


def kept(m: Member) -> Any:
    record = Record(record_path(m.config))
    try:
        return record.get_meta(KEPT_MEMO)
    finally:
        record.close()


def edit_kept(m: Member, **values: Any) -> None:
    record = Record(record_path(m.config))
    try:
        record.set_meta(**{KEPT_MEMO: {**record.get_meta(KEPT_MEMO), **values}})
    finally:
        record.close()


def test_a_command_on_an_http2_server_asks_every_folder_on_one_connection(
    h2_server: ApacheH2Server, isolated_env: Path
) -> None:
    make_tree(cong(h2_server), FILES)
    m = member_for(h2_server, isolated_env)
    assert update(m).downloaded == len(FILES)
    assert kept(m)["multiplex"] is True, "the first sync learnt that the server speaks HTTP/2"

    h2_server.clear_log()
    report = update(m)
    assert (report.downloaded, report.unchanged) == (0, len(FILES))
    seen = h2_server.connections()
    assert len(seen) == FOLDERS == report.requests
    assert {(proto, method) for _port, proto, method in seen} == {("HTTP/2.0", "PROPFIND")}
    assert len({port for port, _proto, _method in seen}) == 1, f"one connection for the whole walk, not {seen}"


def test_a_change_on_an_http2_server_is_still_seen(h2_server: ApacheH2Server, isolated_env: Path) -> None:
    make_tree(cong(h2_server), FILES)
    m = member_for(h2_server, isolated_env)
    update(m)
    make_tree(cong(h2_server), {f"Media/{DATES[3]}/new.jpg": b"new"})
    (cong(h2_server) / f"Media/{DATES[5]}/0 picture.jpg").unlink()

    h2_server.clear_log()
    report = update(m)
    assert (report.downloaded, report.removed) == (1, 1)
    assert m.files()[f"{DATES[3]}/new.jpg"] == b"new"
    assert f"{DATES[5]}/0 picture.jpg" not in m.files()
    walk = [port for port, _proto, method in h2_server.connections() if method == "PROPFIND"]
    assert len(walk) == FOLDERS and len(set(walk)) == 1, "the walk asked every folder on one connection"


def test_a_daemon_started_after_a_command_polls_an_http2_server_on_one_connection(
    h2_server: ApacheH2Server, isolated_env: Path
) -> None:
    """From its first poll: the command's memo in the record says HTTP/2."""
    make_tree(cong(h2_server), FILES)
    m = member_for(h2_server, isolated_env)
    update(m)
    cache = ListingCache()
    h2_server.clear_log()
    try:
        for _ in range(3):
            assert update(m, cache=cache).downloaded == 0
        seen = h2_server.connections()
    finally:
        cache.answers.close()
        if cache.session is not None:
            cache.session.close()
    assert len(seen) == 3 * FOLDERS
    assert {method for _port, _proto, method in seen} == {"PROPFIND"}
    assert len({port for port, _proto, _method in seen}) == 1, f"the polls share one kept connection, not {seen}"


def test_a_server_that_stopped_speaking_http2_is_listed_and_no_longer_taken_for_one(
    dav_server_pool: ServerPool, isolated_env: Path
) -> None:
    """The memo says HTTP/2 (the host changed its proxy since): libcurl waits for the first
    connection, finds HTTP/1.1, and opens the others; the sync is the same, and the memo then
    says HTTP/1.1, so the next sync does not wait."""
    server: DavServer = dav_server_pool.fresh("apache")
    make_tree(cong(server), FILES)
    m = member_for(server, isolated_env)
    update(m)
    assert kept(m)["multiplex"] is False
    edit_kept(m, multiplex=True)
    (cong(server) / f"Media/{DATES[0]}/0 picture.jpg").write_bytes(b"changed, and longer than before")

    server.clear_log()
    report = update(m)
    assert report.downloaded == 1 and report.requests == FOLDERS + 1
    assert m.files()[f"{DATES[0]}/0 picture.jpg"] == b"changed, and longer than before"
    assert kept(m)["multiplex"] is False
