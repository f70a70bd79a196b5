"""A congregation's observable sync state: what the tray, ``status`` and the dashboard show.

Plain values only, so front ends never reach into the daemon's locks or threads. They live below
the front-ends and the daemon (which fills them in), so the tray and the dashboard need not import
the daemon that hosts them; :mod:`m3daemon.engine.wording` says them in words.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from m3daemon.errors import ErrorInfo


class SyncState(str, enum.Enum):
    STARTING = "starting"
    UP_TO_DATE = "up-to-date"
    SYNCING = "syncing"
    OFFLINE = "offline"
    ERROR = "error"
    PAUSED = "paused"
    NOT_CONFIGURED = "not-configured"


@dataclass(frozen=True)
class ProgressView:
    done_files: int = 0
    total_files: int = 0
    done_bytes: int = 0
    total_bytes: int = 0
    current: str = ""

    @property
    def percent(self) -> int | None:
        if self.total_bytes:
            return min(100, int(self.done_bytes * 100 / self.total_bytes))
        if self.total_files:
            return min(100, int(self.done_files * 100 / self.total_files))
        return None


#: The last error of a congregation is the family's one serialisable error value.
ErrorView = ErrorInfo


@dataclass(frozen=True)
class CongregationStatus:
    name: str
    config: str
    state: SyncState
    media_dir: str
    last_sync: str | None = None  # ISO time of the last successful sync
    last_attempt: str | None = None
    next_sync: str | None = None
    next_meeting: str | None = None
    next_meeting_kind: str | None = None
    meeting_days_known: bool = True
    progress: ProgressView = field(default_factory=ProgressView)
    last_error: ErrorInfo | None = None
    last_result: dict[str, Any] | None = None
    completed_seq: int = 0  # syncs requested up to this number have finished (for `update` to wait on)
    # Media files whose new version waits because the old one is in use (M³ shows it); the next
    # sync places them without downloading again.
    waiting: list[str] = field(default_factory=list)
    # Per date (ISO), the media files of that date that are not in the media folder, because the
    # server cannot serve them or they do not fit: what a meeting's readiness must name.
    missing: dict[str, list[str]] = field(default_factory=dict)
    # A running meeting's folder keeps its files; these changes wait for its end (core/meetingtime.py).
    held_for_meeting: list[dict[str, str]] = field(default_factory=list)  # path, change, until
    meetings_running: list[dict[str, str]] = field(default_factory=list)  # kind, date, start, end
    # The coming meetings: "Thursday 19:00 — 12 of 12 files ready" (engine/readiness.py, to_json()).
    readiness: list[dict[str, Any]] = field(default_factory=list)

    @property
    def paused(self) -> bool:
        return self.state is SyncState.PAUSED

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["last_error"] = self.last_error.to_dict() if self.last_error is not None else None
        out["state"] = self.state.value
        out["paused"] = self.paused
        return out


class DaemonControl(Protocol):
    """What the tray and the control API may ask of the running daemon."""

    def statuses(self) -> list[CongregationStatus]: ...

    def update_now(self, name: str | None = None, *, during_meeting: bool = False) -> None: ...

    def pause(self, name: str | None = None) -> None: ...

    def resume(self, name: str | None = None) -> None: ...

    def quit(self) -> None: ...

    def dashboard_url(self) -> str | None:
        """Where the dashboard answers, without a key (None: no dashboard)."""
        ...

    def dashboard_launch(self, cid: int | None = None, page: str | None = None) -> str | None:
        """The ``file://`` address of a new 0600 launch page that logs the browser in once."""
        ...
