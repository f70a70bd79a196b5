"""What a full listing says about the folder tag (engine/freshness.py), for the rules a poll
relies on: the same listing gives the same digest whatever its order, any change below moves it,
and such a change proves a tag that moved with it and refutes one that did not."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from m3daemon.core.entries import RemoteEntry
from m3daemon.engine.freshness import TagState, after_full_listing, digest
from m3daemon.local.record import Record

WINDOW = "walk:2026-12-03:2026-12-17"
WHEN = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def listing(size: int = 100) -> list[RemoteEntry]:
    return [
        RemoteEntry(("Media",), True, None, None, None),
        RemoteEntry(("Media", "2026-12-04"), True, None, '"d1"', WHEN),
        RemoteEntry(("Media", "2026-12-04", "a.jpg"), False, size, '"e1"', WHEN),
        RemoteEntry(("Media", "2026-12-04", "b.jpg"), False, 200, None, None),
    ]


def test_the_digest_is_that_of_what_was_listed_not_of_its_order() -> None:
    assert digest(listing()) == digest(list(reversed(listing())))
    assert digest(listing()) != digest(listing(size=101))
    later = [e if e.parts[-1] != "a.jpg" else RemoteEntry(e.parts, False, 100, '"e1"', WHEN.replace(second=1))
             for e in listing()]
    assert digest(later) != digest(listing())


def test_a_change_below_with_a_new_tag_agrees_and_with_the_same_tag_refutes() -> None:
    first = after_full_listing(TagState(), '"t1"', listing(), WINDOW)
    agreed = after_full_listing(first, '"t2"', listing(size=101), WINDOW)
    assert (agreed.agreed, agreed.refuted) == (1, False)
    refuted = after_full_listing(first, '"t1"', listing(size=101), WINDOW)
    assert refuted.refuted



def test_only_a_change_below_the_top_two_levels_is_evidence() -> None:
    """A new forcedPrefs.json or date folder moves an ordinary server's folder tag too."""
    state = after_full_listing(TagState(), '"t1"', listing(), WINDOW)
    settings = [*listing(), RemoteEntry(("forcedPrefs.json",), False, 2, '"f1"', WHEN)]
    state = after_full_listing(state, '"t2"', settings, WINDOW)
    date_folder = [*settings, RemoteEntry(("Media", "2026-12-05"), True, None, '"d2"', WHEN)]
    state = after_full_listing(state, '"t3"', date_folder, WINDOW)
    assert (state.agreed, state.refuted) == (0, False)
    # A folder's own tag or date moving with what is inside it is not a change of the top levels.
    inside = [RemoteEntry(e.parts, e.is_dir, e.size, '"d9"' if e.parts == ("Media", "2026-12-04") else e.etag,
                          e.modified) for e in date_folder]
    inside.append(RemoteEntry(("Media", "2026-12-04", "c.jpg"), False, 5, '"e3"', WHEN))
    state = after_full_listing(state, '"t4"', inside, WINDOW)
    assert (state.agreed, state.refuted) == (1, False)


def test_agreements_counted_before_the_top_levels_were_told_apart_start_again(tmp_path: Path) -> None:
    record = Record(tmp_path / "record.sqlite", repair=True)
    try:
        record.set_meta(root_tag={"tag": '"t"', "digest": "d", "window": WINDOW, "agreed": 5,
                                  "refuted": False, "since_full": 0})
        assert (TagState.load(record).agreed, TagState.load(record).trusted) == (0, False)
        TagState('"t"', "d", WINDOW, 5, False, 0, "top").save(record)
        assert TagState.load(record).trusted
    finally:
        record.close()
