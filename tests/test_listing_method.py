"""Which listing a sync asks for, found out by asking: a server that refuses ``Depth: infinity``
is walked (and asked again once a day, not at every sync), and a folder whose history outweighs
the window is walked too, so a poll costs what the window holds, not what the years left."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from faulthelpers import cong, member_for
from member import Member, day, iso
from servers import ServerPool, make_tree

from m3daemon.engine.context import record_path
from m3daemon.engine.listing_method import HISTORY_WALK_FROM, INFINITY_RECHECK
from m3daemon.local.record import Record


def rewind_the_choice(m: Member, by: timedelta) -> None:
    record = Record(record_path(m.config))
    try:
        cached = record.get_meta("listing_method")
        checked = datetime.fromisoformat(cached["checked"]) - by
        record.set_meta(listing_method={**cached, "checked": checked.isoformat()})
    finally:
        record.close()


def test_a_server_that_refuses_infinity_is_asked_again_once_a_day_not_at_every_sync(
    dav_server_pool: ServerPool, isolated_env: Path
) -> None:
    server = dav_server_pool.fresh("apache")  # refuses Depth: infinity
    make_tree(cong(server), {f"Media/{iso(1)}/a.jpg": b"a"})
    m = member_for(server, isolated_env)
    walk = 3  # the root, Media, the date folder
    first, second = m.update(), m.update()
    assert (first.requests, second.requests) == (1 + walk + 1, walk)  # (+ the GET of a.jpg)
    rewind_the_choice(m, INFINITY_RECHECK + timedelta(minutes=1))
    third, fourth = m.update(), m.update()
    assert (third.requests, fourth.requests) == (walk + 1, walk), "refused again: the wait starts again"
    assert {third.listing, fourth.listing} == {"walk"} and m.files() == {f"{iso(1)}/a.jpg": b"a"}


def test_a_long_history_on_a_server_that_lists_everything_at_once_is_walked_for_the_window(
    dav_server_pool: ServerPool, isolated_env: Path
) -> None:
    server = dav_server_pool.fresh("wsgidav")  # allows Depth: infinity
    past = {f"Media/{(day(-30) - timedelta(days=i // 20)).isoformat()}/{i:04}.jpg": b"x" for i in
            range(HISTORY_WALK_FROM + 1)}
    make_tree(cong(server), {f"Media/{iso(1)}/a.jpg": b"a", f"Media/{iso(2)}/b.jpg": b"b", **past})
    m = member_for(server, isolated_env)
    first = m.update()
    assert (first.listing, first.requests, first.downloaded) == ("infinity", 3, 2)  # (+ 2 GETs)
    second = m.update()
    assert second.listing == "walk" and second.requests == 4, "the root, Media, the window's two dates"
    assert (second.downloaded, second.removed) == (0, 0)
    assert m.files() == {f"{iso(1)}/a.jpg": b"a", f"{iso(2)}/b.jpg": b"b"}

    rewind_the_choice(m, INFINITY_RECHECK + timedelta(minutes=1))
    for name in list(past)[: len(past) - HISTORY_WALK_FROM + 1]:  # the coordinator clears out some
        (cong(server) / name).unlink()
    assert m.update().listing == "infinity", "tried again after a day: no longer outweighs the window"
    assert m.update().listing == "infinity"


def test_a_short_history_keeps_the_one_request_listing(dav_server_pool: ServerPool, isolated_env: Path) -> None:
    server = dav_server_pool.fresh("wsgidav")
    past = {f"Media/{(day(-30) - timedelta(days=i)).isoformat()}/x.jpg": b"x" for i in range(40)}
    make_tree(cong(server), {f"Media/{iso(1)}/a.jpg": b"a", **past})
    m = member_for(server, isolated_env)
    assert [m.update().listing for _ in range(3)] == ["infinity"] * 3
