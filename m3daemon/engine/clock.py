"""What time it is for a congregation: its "today" and its meeting times, in its own time zone.

Each congregation has one :class:`Clock`, made from its ``[schedule] timezone`` (default: the
computer's zone). The daemon, the sync, the coordinator's tools, the dashboard and the CLI read
"now" and "today" only from it, so two congregations far apart in one daemon each get their own
day and their own pre-meeting syncs. This is the only module that reads the wall clock for meeting
logic (``tests/test_architecture.py`` checks that no ``date.today()`` appears anywhere else); the
time comes through an injectable callable, so tests set the instant instead of waiting for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

#: Where the time comes from: an aware "now" (any zone; it is converted).
TimeSource = Callable[[], datetime]


def system_time() -> datetime:
    """The computer's wall clock, as an aware UTC time."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Clock:
    """One congregation's clock: its zone and where the time comes from."""

    tz: tzinfo
    source: TimeSource = field(default=system_time, compare=False)

    def now(self) -> datetime:
        """Now, in the congregation's zone."""
        return self.source().astimezone(self.tz)

    def today(self) -> date:
        """The congregation's date now (at 23:30 in Kiritimati it is already tomorrow in Berlin's terms)."""
        return self.now().date()

    def utc_now(self) -> datetime:
        """Now in UTC, for timestamps kept in records and logs."""
        return self.source().astimezone(UTC)


def resolve_timezone(name: str | None) -> tzinfo:
    """The configured zone, else the computer's; UTC when neither can be read (never a crash)."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r in [schedule] timezone; using the computer's", name)
    try:
        import tzlocal

        zone: tzinfo = tzlocal.get_localzone()
        return zone
    except Exception:  # noqa: BLE001 - tzlocal raises several kinds for odd TZ settings
        log.warning("the computer's time zone cannot be read; using UTC")
        return ZoneInfo("UTC")


def clock_in(zone: str | None, source: TimeSource | None = None) -> Clock:
    """The clock of a zone named in a configuration (None: the computer's zone)."""
    return Clock(resolve_timezone(zone), source or system_time)


def computer_now() -> datetime:
    """Now in the computer's own zone, for texts shown on this computer ("18:05", "today")."""
    return datetime.now().astimezone()
