"""A congregation's context, built from its configuration: how to reach its server (the session,
opened when first used), where its record lives, which local layout and settings apply, and its clock.

The engine, the coordinator's tools, the daemon, the dashboard and the CLI all take these from here
(:class:`Context`, or the single functions below for one fact), so each rule has one owner.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, tzinfo
from pathlib import Path
from typing import Any, Self

from m3daemon.core import prefs as m3prefs
from m3daemon.core.dates import DEFAULT_DATE_FORMAT, infer_weekday_language, parse_folder_date
from m3daemon.core.layout import Layout
from m3daemon.core.model import CongregationFolder
from m3daemon.engine.clock import Clock, TimeSource, clock_in
from m3daemon.errors import ConfigError
from m3daemon.i18n import _
from m3daemon.local.record import Record, record_file
from m3daemon.local.scan import list_subdirs
from m3daemon.remote.http import DavSession, Endpoint
from m3daemon.remote.retry import RetryPolicy
from m3daemon.settings.config import Config
from m3daemon.settings.credentials import require_password

log = logging.getLogger(__name__)

#: What an update records besides its rows, read back by the daemon, the dashboard and ``status``.
RECORDED_KEYS = ("last_sync", "last_result", "effective_prefs", "locked_keys", "forced_prefs", "readiness")


def endpoint_for(cfg: Config) -> Endpoint:
    conn = cfg.connection
    if conn is None:
        raise ConfigError(
            _("Congregation sync is not set up in {path}.").format(path=cfg.path),
            _("Run `m3daemon setup` first."),
        )
    return Endpoint(
        base_url=conn.url, folder=conn.folder, username=conn.username, ca_file=conn.ca_file,
        allow_insecure_loopback=conn.allow_insecure_loopback, timeout=conn.timeout_seconds,
        deadline=conn.request_deadline_seconds,
    )


def open_session(cfg: Config, *, retry: RetryPolicy | None = None, password: str | None = None) -> DavSession:
    endpoint = endpoint_for(cfg)
    assert cfg.connection is not None
    return DavSession(endpoint, password or require_password(cfg.connection), retry=retry)


def record_path(cfg: Config) -> Path:
    return record_file(cfg.state_dir)


def local_prefs(cfg: Config) -> dict[str, Any]:
    """The config's ``[prefs]`` by dotted key. A bad value is left out with a warning: the daemon
    must keep syncing before a meeting even when a setting has a typo."""
    values, problems = m3prefs.normalize_local_prefs(cfg.prefs)
    for problem in problems:
        log.warning("%s", problem)
    return values


def layout_for(cfg: Config, effective: Mapping[str, Any], folder: CongregationFolder | None = None) -> Layout:
    """The local layout. With the server's ``folder`` (a sync), a classic layout names each date
    folder as the server does; without it (offline views), as the folder on this disk is named.

    Weekday names of a folder neither has: ``app.localAppLang`` when set (M³ on this computer names
    its own folders so), else the language of the server's folders, else English.
    """
    kind = cfg.local.layout
    lang = str(effective.get("media.lang") or "E")
    fmt = str(effective.get("app.outputFolderDateFormat") or DEFAULT_DATE_FORMAT)
    ui_lang = str(effective.get("app.localAppLang") or "")
    names: dict[date, str] = {}
    if folder is not None:
        if kind == "classic":
            names = folder.folder_names(fmt)
        ui_lang = ui_lang or folder.weekday_language() or ""
    elif kind == "classic":
        for name in list_subdirs(cfg.local.media_dir / lang):
            parsed = parse_folder_date(name)
            if parsed is not None:
                names.setdefault(parsed[0], name)
        ui_lang = ui_lang or infer_weekday_language(names.values()) or ""
    return Layout(kind=kind, lang=lang, date_format=fmt, ui_lang=ui_lang or "en", server_names=names)


def clock_for(cfg: Config, source: TimeSource | None = None) -> Clock:
    """The congregation's clock: ``[schedule] timezone``, else the computer's zone."""
    return clock_in(cfg.schedule.timezone, source)


@dataclass(frozen=True)
class Prefs:
    """A congregation's settings: this computer's ``[prefs]``, the congregation's forced ones, and the
    forced over the local ones (what is in force)."""

    local: dict[str, Any]
    forced: dict[str, Any]
    effective: dict[str, Any]
    locked: tuple[str, ...] = ()
    fetched_at: str | None = None  # when the forced ones were read from the server, if known


@dataclass
class Context:
    """One congregation as every part sees it, built from its configuration with :meth:`of`.

    The session is opened when first used and closed with the context (``with Context.of(cfg) as
    ctx``), so a page that only reads the record never needs the password.
    """

    cfg: Config
    clock: Clock
    retry: RetryPolicy | None = None
    password: str | None = None
    _session: DavSession | None = field(default=None, repr=False)
    _local: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls, cfg: Config, *, source: TimeSource | None = None, retry: RetryPolicy | None = None,
        password: str | None = None,
    ) -> Context:
        return cls(cfg, clock_for(cfg, source), retry, password)

    # --- what the configuration says ----------------------------------------------------------

    @property
    def tz(self) -> tzinfo:
        return self.clock.tz

    @property
    def record_path(self) -> Path:
        return record_path(self.cfg)

    def local_prefs(self) -> dict[str, Any]:
        """The config's ``[prefs]`` (read once per context: a typo is warned about once)."""
        if self._local is None:
            self._local = local_prefs(self.cfg)
        return dict(self._local)

    def prefs(self, forced: Mapping[str, Any] | None = None) -> Prefs:
        """The settings with ``forced`` (as just read from the server) over this computer's own."""
        values = dict(forced or {})
        local = self.local_prefs()
        return Prefs(local, values, m3prefs.effective_prefs(local, values),
                     tuple(sorted(m3prefs.locked_keys(values))))

    def layout(self, effective: Mapping[str, Any]) -> Layout:
        return layout_for(self.cfg, effective)

    # --- the server ---------------------------------------------------------------------------

    @property
    def session(self) -> DavSession:
        """The HTTPS session to the congregation's folder, opened on first use."""
        if self._session is None:
            self._session = open_session(self.cfg, retry=self.retry, password=self.password)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what the last update recorded (no network) -------------------------------------------

    def recorded(self) -> dict[str, Any]:
        """What the last update recorded; empty before the first one."""
        path = self.record_path
        if not path.exists():
            return {}
        rec = Record(path, readonly=True)
        try:
            return {k: rec.get_meta(k) for k in RECORDED_KEYS}
        finally:
            rec.close()

    def planned_effective(self, recorded: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The settings the last update planned with (meeting days, date format), else this computer's own."""
        found = (self.recorded() if recorded is None else recorded).get("effective_prefs")
        if isinstance(found, dict):
            return found
        return m3prefs.effective_prefs(self.local_prefs(), {})

    def recorded_prefs(self, recorded: Mapping[str, Any] | None = None) -> Prefs:
        """This computer's settings now, under the congregation's forced ones as the last update read them."""
        meta = self.recorded() if recorded is None else recorded
        locked = tuple(meta.get("locked_keys") or ())
        cached = meta.get("forced_prefs")
        forced: dict[str, Any] = {}
        fetched = None
        if isinstance(cached, dict):
            fetched = cached.get("fetched_at")
            if locked and cached.get("text"):
                try:
                    forced = dict(m3prefs.parse_forced_prefs(str(cached["text"])).values)
                except ValueError:
                    forced = {}
        local = self.local_prefs()
        return Prefs(local, forced, m3prefs.effective_prefs(local, forced), locked, fetched)
