"""The daemon's poll when little or nothing changed, on every server kind: an answer that is byte
for byte the last one is not parsed again, an unchanged folder is not planned again, and the
walk asks for every folder it knows at once. None of that may hide a change: each one, on the
server or in the media folder, is still seen at the next poll.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from faulthelpers import cong, member_for, proxied_member
from faultproxy import FaultProxy, Rule
from member import Member, day, iso
from servers import DavServer, ServerPool, bump, make_tree

from m3daemon.core.dates import format_folder_date
from m3daemon.engine import sync
from m3daemon.engine.sync import ListingCache, SyncReport
from m3daemon.errors import PermissionDeniedError


def poll(m: Member, cache: ListingCache) -> SyncReport:
    report = m.update(cache=cache)
    assert report.ok, report.errors
    return report


@contextmanager
def walked_through_a_proxy(pool: ServerPool, home: Path, files: dict[str, bytes],
                           polls: int = 0) -> Iterator[tuple[FaultProxy, Member, ListingCache]]:
    """A member of a walked server (Apache refuses Depth infinity) behind the fault proxy, with
    the daemon's cache, after ``polls`` polls."""
    server = pool.fresh("apache")
    make_tree(cong(server), files)
    with FaultProxy(server.url, server.ca_file) as proxy:
        m = proxied_member(proxy, server, home)
        cache = ListingCache()
        for _ in range(polls):
            poll(m, cache)
        yield proxy, m, cache


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How often the planner ran (one entry per call)."""
    calls: list[int] = []
    real = sync.plan_sync

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sync, "plan_sync", counted)
    return calls


def test_an_unchanged_poll_parses_and_plans_nothing_again(
    dav_server: DavServer, isolated_env: Path, plans: list[int]
) -> None:
    make_tree(cong(dav_server), {f"Media/{iso(1)}/a.jpg": b"a", f"Media/{iso(2)}/b.jpg": b"b"})
    m = member_for(dav_server, isolated_env)
    cache = ListingCache()
    assert poll(m, cache).downloaded == 2
    assert poll(m, cache).downloaded == 0  # the first no-op: its plan is remembered
    hits, planned = cache.answers.hits, len(plans)

    report = poll(m, cache)
    assert (report.downloaded, report.unchanged) == (0, 2)
    answers = 1 if report.listing == "infinity" else report.requests  # every answer was the last one
    assert cache.answers.hits - hits == answers and answers >= 1
    assert len(plans) == planned, "the same folder, record and files: the planner is not asked again"
    assert m.files() == {f"{iso(1)}/a.jpg": b"a", f"{iso(2)}/b.jpg": b"b"}


def test_every_change_between_polls_is_seen_at_the_next_one(
    dav_server: DavServer, isolated_env: Path, plans: list[int]
) -> None:
    root = cong(dav_server)
    make_tree(root, {f"Media/{iso(1)}/a.jpg": b"a", f"Media/{iso(2)}/b.jpg": b"b"})
    m = member_for(dav_server, isolated_env)
    cache = ListingCache()
    poll(m, cache)
    poll(m, cache)

    bump(root / "Media" / iso(1) / "a.jpg", b"a, replaced by the coordinator")
    assert poll(m, cache).downloaded == 1
    assert m.files()[f"{iso(1)}/a.jpg"] == b"a, replaced by the coordinator"

    make_tree(root, {f"Media/{iso(3)}/c.jpg": b"c"})  # a date folder the last walk did not know
    assert poll(m, cache).downloaded == 1

    shutil.rmtree(root / "Media" / iso(2))  # a date folder the last walk asked for is gone
    report = poll(m, cache)
    assert report.removed == 1 and report.ok
    assert not any(iso(2) in parts for _base, parts, _depth in cache.answers.answers), "a gone folder is forgotten"

    poll(m, cache)
    planned = len(plans)
    (m.media / iso(3) / "c.jpg").unlink()  # a person deletes a file: the poll puts it back
    assert poll(m, cache).downloaded == 1
    assert len(plans) == planned + 1
    assert m.files() == {f"{iso(1)}/a.jpg": b"a, replaced by the coordinator", f"{iso(3)}/c.jpg": b"c"}


def test_a_poll_asks_for_every_folder_it_knows_at_once(dav_server_pool: ServerPool, isolated_env: Path) -> None:
    """On a server that is walked (Apache refuses Depth infinity), a poll does not wait for the
    root's answer before asking for the date folders: one round trip instead of three."""
    with walked_through_a_proxy(dav_server_pool, isolated_env, {f"Media/{iso(1)}/a.jpg": b"a", f"Media/{iso(2)}/b.jpg": b"b"}, polls=1) as (proxy, m, cache):
        first = [p for meth, p, _s in proxy.log if meth == "PROPFIND"]
        assert first[-4:-2] == ["/dav/Cong/", "/dav/Cong/Media/"], "the first walk goes level by level"

        proxy.log.clear()
        proxy.add(Rule("PROPFIND", lambda p: p == "/dav/Cong/", stall=0.5, times=1))  # a slow root
        report = poll(m, cache)
        answered = [p for meth, p, _s in proxy.log if meth == "PROPFIND"]
        assert sorted(answered) == sorted(["/dav/Cong/", "/dav/Cong/Media/", f"/dav/Cong/Media/{iso(1)}/",
                                           f"/dav/Cong/Media/{iso(2)}/"])
        assert answered[-1] == "/dav/Cong/", f"the date folders were asked for while the root was slow: {answered}"
        assert (report.requests, report.downloaded) == (4, 0)


def test_a_new_date_format_between_polls_moves_the_meetings_folder(dav_server: DavServer, isolated_env: Path) -> None:
    """The coordinator forces another date format while the daemon runs: the meeting's folder
    (none on the server) takes the new name, the sync takes its file out of the old one and
    removes the emptied folder; a folder the server has keeps the server's name (as M³ 24 does)."""
    root = cong(dav_server)
    make_tree(root, {f"Media/{iso(1)}/a.jpg": b"a", "Media/Recurring/y.mp4": b"y",
                     "forcedPrefs.json": json.dumps({"meeting": {"mwDay": day(2).weekday()}})})
    m = member_for(dav_server, isolated_env, layout="classic", days_ahead=6)
    cache = ListingCache()
    poll(m, cache)
    poll(m, cache)
    assert m.files() == {f"E/{iso(1)}/a.jpg": b"a", f"E/{iso(1)}/y.mp4": b"y", f"E/{iso(2)}/y.mp4": b"y"}
    (root / "forcedPrefs.json").write_text(json.dumps({"meeting": {"mwDay": day(2).weekday()},
                                                       "app": {"outputFolderDateFormat": "DD-MM-YYYY"}}))
    moved = poll(m, cache)
    assert (moved.downloaded, moved.copied) == (0, 1)  # taken from the old folder, not downloaded again
    meeting = format_folder_date(day(2), "DD-MM-YYYY")
    assert m.files() == {f"E/{iso(1)}/a.jpg": b"a", f"E/{iso(1)}/y.mp4": b"y", f"E/{meeting}/y.mp4": b"y"}
    assert sorted(d.name for d in (m.media / "E").iterdir()) == sorted([iso(1), meeting])  # the old one is gone
    assert poll(m, cache).downloaded == 0


def test_a_poll_whose_quick_answer_broke_off_asks_again_and_loses_nothing(
    dav_server_pool: ServerPool, isolated_env: Path
) -> None:
    """The daemon asks the folders it knows on libcurl; an answer cut off there is asked for again
    on httpx (its retries and its errors), within the same poll."""
    with walked_through_a_proxy(dav_server_pool, isolated_env, {f"Media/{iso(1)}/a.jpg": b"a", f"Media/{iso(2)}/b.jpg": b"b"}, polls=2) as (proxy, m, cache):
        proxy.log.clear()
        folder = f"/dav/Cong/Media/{iso(1)}/"
        proxy.add(Rule("PROPFIND", lambda p: p == folder, truncate_after=120, times=1))
        report = poll(m, cache)
        asked = [p for meth, p, _s in proxy.log if meth == "PROPFIND"]
        assert asked.count(folder) == 2 and len(asked) == 5 == report.requests
        assert (report.downloaded, report.removed) == (0, 0)
        assert m.files() == {f"{iso(1)}/a.jpg": b"a", f"{iso(2)}/b.jpg": b"b"}


def test_a_poll_the_server_keeps_refusing_fails_in_plain_words_and_deletes_nothing(
    dav_server_pool: ServerPool, isolated_env: Path
) -> None:
    files = {f"Media/{iso(1)}/a.jpg": b"a"}
    with walked_through_a_proxy(dav_server_pool, isolated_env, files, polls=2) as (proxy, m, cache):
        proxy.add(Rule("PROPFIND", lambda p: p == "/dav/Cong/Media/", status=403))
        with pytest.raises(PermissionDeniedError) as refused:
            m.update(cache=cache)
        assert "may not read Media" in str(refused.value) and refused.value.remedy
        assert m.files() == {f"{iso(1)}/a.jpg": b"a"}


def test_polls_reuse_their_open_connections(dav_server_pool: ServerPool, isolated_env: Path) -> None:
    """No TCP connection (and on HTTPS no TLS handshake) per poll: once the daemon's walk has its
    connections, later polls open none."""
    with walked_through_a_proxy(dav_server_pool, isolated_env, {f"Media/{iso(1)}/a.jpg": b"a", f"Media/{iso(2)}/b.jpg": b"b"}, polls=3) as (proxy, m, cache):
        opened = proxy.connections
        for _ in range(3):
            assert poll(m, cache).requests == 4
        assert proxy.connections == opened


def test_the_polls_of_a_server_that_lists_everything_at_once_load_no_libcurl(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    """One Depth-infinity request a poll: nothing to ask again, so the daemon at rest does not
    carry libcurl's connections (nor, until a download needs it, the library) for its polls."""
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/a.jpg": b"a"})
    m = member_for(wsgidav_server, isolated_env)
    cache = ListingCache()
    for _ in range(3):
        assert poll(m, cache).listing == "infinity"
    assert cache.answers.lister is None and cache.answers.quick is not None
