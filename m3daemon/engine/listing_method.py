"""Which listing a sync asks for: one ``Depth: infinity`` PROPFIND, or the Depth-1 walk of the
window's folders. Found out by asking and by what the answers hold, never from a host name.

Two reasons to walk where infinity is allowed:

- The server refused infinity (Apache, nginx): the walk saves the refused request on every sync.
- The folder's history outweighs the window: infinity makes the server describe every file of
  every past date folder, on every poll. WsgiDAV took 16 s for 50,000 entries (docs/performance.md),
  while the walk asks the same server for the window's folders only. The walk costs a few round
  trips more, so it is chosen only when the history is large: more than ``HISTORY_WALK_FROM``
  entries outside the window, and more than inside it.

Either way infinity is tried again after ``INFINITY_RECHECK``: a server may be reconfigured, and
a coordinator may clear out the old folders.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from m3daemon.core.dates import parse_folder_date
from m3daemon.core.entries import RemoteEntry
from m3daemon.local.record import Record
from m3daemon.remote.listing import Listing

INFINITY_RECHECK = timedelta(days=1)
HISTORY_WALK_FROM = 1000


def cached_method(record: Record) -> str | None:
    cached = record.get_meta("listing_method")
    return cached.get("method") if isinstance(cached, dict) else None


def try_infinity(record: Record, now: datetime | None = None) -> bool:
    cached = record.get_meta("listing_method")
    if not isinstance(cached, dict) or cached.get("method") != "walk":
        return True
    try:
        checked = datetime.fromisoformat(str(cached.get("checked")))
    except ValueError:
        return True
    return (now or datetime.now(UTC)) - checked > INFINITY_RECHECK


def remember(record: Record, listing: Listing, window: tuple[date, date] | None, tried: bool) -> None:
    """Note how this listing was made, for the next sync's choice. ``tried``: infinity was asked
    for (a refusal then starts the wait until the next recheck again)."""
    if listing.method == "walk" and not tried:
        return  # the cached choice stands until its recheck
    method, why = listing.method, ""
    if method == "walk":
        why = "refused"
    elif method == "infinity" and window is not None and history_outweighs(listing.entries, window):
        method, why = "walk", "history"
    cached = record.get_meta("listing_method")
    same = isinstance(cached, dict) and (cached.get("method"), cached.get("why", why)) == (method, why)
    if not same or method == "walk":
        record.set_meta(listing_method={"method": method, "why": why, "checked": datetime.now(UTC).isoformat()})


def history_outweighs(entries: list[RemoteEntry], window: tuple[date, date]) -> bool:
    """More than HISTORY_WALK_FROM entries in date folders outside the window, and more than in it."""
    outside = inside = 0
    dates: dict[str, bool] = {}  # date folder name -> in the window
    for e in entries:
        if len(e.parts) < 3 or e.parts[0] not in ("Media", "Hidden"):
            continue
        name = e.parts[1]
        within = dates.get(name)
        if within is None:
            parsed = parse_folder_date(name)
            within = dates[name] = parsed is None or window[0] <= parsed[0] <= window[1]
        if within:
            inside += 1
        else:
            outside += 1
    return outside > HISTORY_WALK_FROM and outside > inside
