"""The configuration as values: what a loaded TOML file means (see :mod:`m3daemon.settings.config`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from m3daemon.local import paths

CONFIG_ENV = "M3DAEMON_CONFIG"
KNOWN_CONFIGS_FILE = "known-configs.json"

Layout = Literal["watch", "classic"]
LAYOUTS: tuple[Layout, ...] = ("watch", "classic")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

DAYS_AHEAD_MAX = 366
BEFORE_MEETING_MAX = 720
TIMEOUT_MAX = 600.0
DEADLINE_DEFAULT = 300.0
DEADLINE_MAX = 3600.0


@dataclass(frozen=True)
class ConnectionConfig:
    """Where the congregation folder is. ``url`` is ``scheme://host[:port]``; ``folder`` is the
    absolute path of the congregation sync folder on that server (see the module docstring)."""

    url: str
    username: str
    folder: str
    ca_file: Path | None = None
    allow_insecure_loopback: bool = False
    timeout_seconds: float = 30.0
    # The overall time one request may take (a listing, the settings); a download gets this plus
    # its size at 16 kB/s. Bounds a server that drips its answer past every per-read timeout.
    request_deadline_seconds: float = DEADLINE_DEFAULT
    # Downloads together use at most this many kilobits per second (0: no limit), so a shared
    # or slow connection (a hybrid meeting's video call) keeps room.
    bandwidth_limit_kbps: int = 0

    @property
    def bandwidth_limit_bps(self) -> int:
        """The limit in bytes per second (0: none)."""
        return self.bandwidth_limit_kbps * 1000 // 8

    @property
    def account(self) -> str:
        """``username@url``: the key under which the password is stored."""
        return f"{self.username}@{self.url}"


@dataclass(frozen=True)
class LocalConfig:
    media_dir: Path
    layout: Layout = "watch"
    days_ahead: int = 14


@dataclass(frozen=True)
class ScheduleConfig:
    poll_minutes: int = 30
    before_meeting_minutes: int = 60
    timezone: str | None = None
    meeting_minutes: int = 120  # how long a meeting runs: nothing is deleted or replaced meanwhile
    # While a meeting runs, downloads together use at most this many kilobits per second (the
    # unit of [connection] bandwidth_limit_kbps; the lower of the two applies), so a hybrid
    # meeting's video call is not starved; 0: only the connection's limit.
    meeting_bandwidth_limit_kbps: int = 4000


@dataclass(frozen=True)
class Config:
    """A loaded configuration. ``connection is None`` means congregation sync is not configured.

    ``prefs`` holds M³ settings by dotted key (``{"meeting.mwDay": 1}``), not validated here.
    ``warnings`` lists unknown tables and keys (a typo should not stop the daemon).
    """

    path: Path
    connection: ConnectionConfig | None
    local: LocalConfig
    schedule: ScheduleConfig
    prefs: dict[str, Any]
    name: str
    warnings: tuple[str, ...] = ()
    language: str | None = None
    """``[congregation] language``: the language of m3daemon's own screens and messages (a code such
    as ``fr`` or ``pt-BR``); ``None``: M³'s ``app.localAppLang``, else the system's (:mod:`m3daemon.i18n`)."""

    @property
    def state_dir(self) -> Path:
        return paths.state_dir_for(self.path)

    @property
    def display_name(self) -> str:
        """The name people see (tray, titles, status): ``[congregation] name``, never the default
        file's name "config"; without one, the congregation folder's name, or "Not set up yet"."""
        if self.name != self.path.stem or self.path.stem != paths.DEFAULT_CONFIG_STEM:
            return self.name
        if self.connection is None:
            from m3daemon.i18n import _

            return _("Not set up yet")
        return self.connection.folder.rstrip("/").rsplit("/", 1)[-1] or self.connection.url.split("://")[-1]


