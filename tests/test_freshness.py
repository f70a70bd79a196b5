"""What a full listing says about the folder tag (engine/freshness.py), for the rules a poll
relies on: the same listing gives the same digest whatever its order, any change below moves it,
and such a change proves a tag that moved with it and refutes one that did not."""

from __future__ import annotations

from datetime import UTC, datetime

from m3daemon.core.entries import RemoteEntry
from m3daemon.engine.freshness import TagState, after_full_listing, digest

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
