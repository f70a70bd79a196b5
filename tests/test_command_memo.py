"""A command's sync (``m3daemon update`` without a running daemon) starts from what the last one
read: an answer that is byte for byte the last one is not parsed again, and the walk asks for
every folder it knows at once. The memo lives in the record; nothing in it can hide a change on
the server, and a memo that is not exactly what this version wrote is not used at all.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from faulthelpers import cong, member_for, proxied_member
from faultproxy import FaultProxy, Rule
from member import Member, iso
from servers import DavServer, ServerPool, bump, make_tree

from m3daemon.core.entries import RemoteEntry
from m3daemon.engine import freshness
from m3daemon.engine.context import record_path
from m3daemon.engine.sync import KEPT_MEMO, ListingCache, SyncReport
from m3daemon.local.record import Record
from m3daemon.remote import listing
from m3daemon.remote.http import DavSession, Endpoint
from m3daemon.remote.listing import AnswerMemo

FILES = {f"Media/{iso(1)}/a.jpg": b"a", f"Media/{iso(2)}/b.jpg": b"b"}


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The folders whose answers were parsed, in order."""
    calls: list[tuple[str, ...]] = []
    real = listing._read_entries

    def counted(session: Any, chunks: Any, parts: tuple[str, ...]) -> Any:
        calls.append(parts)
        return real(session, chunks, parts)

    monkeypatch.setattr(listing, "_read_entries", counted)
    return calls


def update(m: Member) -> SyncReport:
    report = m.update()  # (no ListingCache: the path of a command)
    assert report.ok, report.errors
    return report


def kept(m: Member) -> Any:
    record = Record(record_path(m.config))
    try:
        return record.get_meta(KEPT_MEMO)
    finally:
        record.close()


def tag_state(m: Member) -> freshness.TagState:
    record = Record(record_path(m.config))
    try:
        return freshness.TagState.load(record)
    finally:
        record.close()


def rewrite_kept(m: Member, change: Callable[[Any], Any]) -> None:
    record = Record(record_path(m.config))
    try:
        record.set_meta(**{KEPT_MEMO: change(record.get_meta(KEPT_MEMO))})
    finally:
        record.close()


def test_a_second_update_parses_no_answer_that_is_the_same(
    dav_server: DavServer, isolated_env: Path, parsed: list[tuple[str, ...]]
) -> None:
    make_tree(cong(dav_server), FILES)
    m = member_for(dav_server, isolated_env)
    assert update(m).downloaded == 2
    assert parsed, "the first update parses what it lists"

    parsed.clear()
    report = update(m)
    assert (report.downloaded, report.unchanged) == (0, 2)
    assert parsed == [], "every answer was the last one: read back from the record, not parsed"
    assert m.files() == {f"{iso(1)}/a.jpg": b"a", f"{iso(2)}/b.jpg": b"b"}


def test_every_change_on_the_server_is_seen_by_the_next_update(
    dav_server: DavServer, isolated_env: Path, parsed: list[tuple[str, ...]]
) -> None:
    root = cong(dav_server)
    make_tree(root, FILES)
    m = member_for(dav_server, isolated_env)
    update(m)
    update(m)

    bump(root / "Media" / iso(1) / "a.jpg", b"a, replaced by the coordinator")
    parsed.clear()
    assert update(m).downloaded == 1
    assert parsed, "a changed answer is parsed"
    assert m.files()[f"{iso(1)}/a.jpg"] == b"a, replaced by the coordinator"

    make_tree(root, {f"Media/{iso(3)}/c.jpg": b"c"})  # a date folder the last walk did not know
    assert update(m).downloaded == 1

    shutil.rmtree(root / "Media" / iso(2))  # a date folder the last update listed is gone
    assert update(m).removed == 1
    assert m.files() == {f"{iso(1)}/a.jpg": b"a, replaced by the coordinator", f"{iso(3)}/c.jpg": b"c"}
    memo = kept(m)
    assert not any(iso(2) in parts for _base, parts, *_rest in memo["answers"]), "a gone folder is not kept"


def test_a_second_update_takes_the_listings_digest_from_the_memo_and_a_change_is_digested(
    dav_server: DavServer, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder tag's evidence (engine/freshness.py) needs a digest of every entry listed: a
    no-op takes it from the memo, kept with the answers that gave it; any other answer, or a
    memo whose digest is not the one the record holds, has it computed again."""
    digested: list[str] = []
    real = freshness.digest

    def counted(entries: list[RemoteEntry]) -> str:
        digested.append(got := real(entries))
        return got

    monkeypatch.setattr(freshness, "digest", counted)
    root = cong(dav_server)
    make_tree(root, FILES)
    m = member_for(dav_server, isolated_env)
    update(m)
    assert len(digested) == 1 and kept(m)["digest"] == digested[0] == tag_state(m).digest

    digested.clear()
    update(m)
    assert digested == [], "every answer was the kept one: its digest with it"
    first = tag_state(m).digest

    bump(root / "Media" / iso(1) / "a.jpg", b"a, replaced by the coordinator")
    assert update(m).downloaded == 1
    assert len(digested) == 1 and digested[0] != first and tag_state(m).digest == digested[0]

    digested.clear()
    rewrite_kept(m, lambda memo: {**memo, "digest": "0" * 64})  # not the digest the record holds
    update(m)
    assert len(digested) == 1 and tag_state(m).digest == digested[0] == kept(m)["digest"]


def test_a_daemon_and_the_command_start_from_each_others_last_answers(
    dav_server: DavServer, isolated_env: Path, parsed: list[tuple[str, ...]]
) -> None:
    """The daemon's first sync after a restart (before a meeting, at login) reads the memo the
    last command kept, and writes its own back when an answer changes."""
    make_tree(cong(dav_server), FILES)
    m = member_for(dav_server, isolated_env)
    update(m)

    parsed.clear()
    cache = ListingCache()
    assert m.update(cache=cache).unchanged == 2
    assert parsed == [], "the daemon's first sync parses nothing the command read"

    make_tree(cong(dav_server), {f"Media/{iso(1)}/c.jpg": b"c"})
    assert m.update(cache=cache).downloaded == 1
    parsed.clear()
    assert update(m).unchanged == 3
    assert parsed == [], "the command parses nothing the daemon read"


def test_a_second_update_on_a_walked_server_asks_for_every_folder_at_once(
    dav_server_pool: ServerPool, isolated_env: Path
) -> None:
    server = dav_server_pool.fresh("apache")  # Apache refuses Depth infinity: it is walked
    make_tree(cong(server), FILES)
    with FaultProxy(server.url, server.ca_file) as proxy:
        m = proxied_member(proxy, server, isolated_env)
        update(m)
        first = [p for meth, p, _s in proxy.log if meth == "PROPFIND"]
        assert first[-4:-2] == ["/dav/Cong/", "/dav/Cong/Media/"], "the first walk goes level by level"

        proxy.log.clear()
        proxy.add(Rule("PROPFIND", lambda p: p == "/dav/Cong/", stall=0.5, times=1))  # a slow root
        report = update(m)
        answered = [p for meth, p, _s in proxy.log if meth == "PROPFIND"]
        assert sorted(answered) == sorted(["/dav/Cong/", "/dav/Cong/Media/", f"/dav/Cong/Media/{iso(1)}/",
                                           f"/dav/Cong/Media/{iso(2)}/"])
        assert answered[-1] == "/dav/Cong/", f"the date folders were asked for while the root was slow: {answered}"
        assert (report.requests, report.downloaded) == (4, 0)


def _with_entry(parts: list[str]) -> Callable[[Any], Any]:
    def change(memo: Any) -> Any:
        answer = next(a for a in memo["answers"] if any(row[0][:2] == ["Media", iso(1)] for row in a[4]))
        answer[4].append([parts, False, 1, '"x"', None])  # the digest still matches the server's answer
        return memo
    return change


@pytest.mark.parametrize("change, why", [
    (lambda memo: {**memo, "version": "0.0.0"}, "another version's"),
    (lambda memo: {**memo, "format": 0}, "another form"),
    (lambda memo: "not a memo", "damaged"),
    (lambda memo: {**memo, "answers": [["x"]]}, "damaged"),
    (_with_entry(["..", "..", "evil.jpg"]), "a path out of the folder"),
    (_with_entry(["Media", iso(1), "a.jpg", 5]), "a name that is not text"),  # type: ignore[list-item]
])
def test_a_kept_memo_that_is_not_exactly_what_this_version_wrote_is_not_used(
    dav_server: DavServer, isolated_env: Path, parsed: list[tuple[str, ...]], change: Callable[[Any], Any],
    why: str,
) -> None:
    make_tree(cong(dav_server), FILES)
    m = member_for(dav_server, isolated_env)
    update(m)
    first, parsed[:] = sorted(parsed), []
    rewrite_kept(m, change)

    report = update(m)
    assert (report.downloaded, report.unchanged) == (0, 2), why
    assert sorted(parsed) == first, f"{why}: everything is parsed again, as at the first update"
    assert m.files() == {f"{iso(1)}/a.jpg": b"a", f"{iso(2)}/b.jpg": b"b"}
    assert not (isolated_env / "evil.jpg").exists()
    assert kept(m)["version"] != "0.0.0", "the next update keeps this version's memo"


def test_a_memo_reads_back_as_it_was_kept_and_only_for_its_own_folder() -> None:
    entries = [
        RemoteEntry(("Media",), True, None, '"d"', datetime(2026, 12, 3, 10, 0, tzinfo=UTC)),
        RemoteEntry(("Media", "Recurring", "ÿ ü.mp4"), False, 12, None, None),
    ]
    here = DavSession(Endpoint("https://a.example", "/dav/Cong", "u"), "p")
    memo = AnswerMemo()
    memo.answers[(here.base_url, ("Media",), "1")] = (b"\x01" * 20, (entries, [("/x/", "another server")], "t|"))
    memo.walked = [(), ("Media",)]
    memo.entries_digest = "d1gest"
    back = AnswerMemo()
    back.recall_kept(memo.kept(here), here)
    assert back.answers == memo.answers and back.walked == memo.walked
    assert back.entries_digest == "d1gest" and back.digest_of == set(memo.answers)
    assert not back.changed, "nothing new: the record is not written again"

    for elsewhere in (DavSession(Endpoint("https://b.example", "/dav/Cong", "u"), "p"),
                      DavSession(Endpoint("https://a.example", "/dav/Other", "u"), "p")):
        other = AnswerMemo()
        other.recall_kept(memo.kept(here), elsewhere)
        assert other.answers == {} and other.walked == [], f"not the memo of {elsewhere.url(collection=True)}"


def test_a_record_that_cannot_take_the_memo_does_not_stop_the_sync(
    dav_server: DavServer, isolated_env: Path, parsed: list[tuple[str, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memo only saves time: a disk too full for it leaves the sync to go on (the next one
    parses again)."""
    real = Record.set_meta

    def full(self: Record, **values: Any) -> None:
        if KEPT_MEMO in values:
            raise sqlite3.OperationalError("database or disk is full")
        real(self, **values)

    monkeypatch.setattr(Record, "set_meta", full)
    make_tree(cong(dav_server), FILES)
    m = member_for(dav_server, isolated_env)
    assert update(m).downloaded == 2
    first, parsed[:] = sorted(parsed), []
    assert kept(m) is None
    assert update(m).unchanged == 2
    assert sorted(parsed) == first
