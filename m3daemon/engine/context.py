"""A congregation's context, built from its configuration: how to reach its server, where its record
lives, which local layout and settings apply.

The engine, the coordinator's tools, the daemon, the dashboard and the CLI all take these from here,
so each rule has one owner.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from m3daemon.core import prefs as m3prefs
from m3daemon.core.layout import Layout
from m3daemon.errors import ConfigError
from m3daemon.i18n import _
from m3daemon.remote.http import DavSession, Endpoint, RetryPolicy
from m3daemon.settings.config import Config
from m3daemon.settings.credentials import require_password

log = logging.getLogger(__name__)


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
    )


def open_session(cfg: Config, *, retry: RetryPolicy | None = None, password: str | None = None) -> DavSession:
    endpoint = endpoint_for(cfg)
    assert cfg.connection is not None
    return DavSession(endpoint, password or require_password(cfg.connection), retry=retry)


def record_path(cfg: Config) -> Path:
    return cfg.state_dir / "record.sqlite"


def local_prefs(cfg: Config) -> dict[str, Any]:
    """The config's ``[prefs]`` by dotted key. A bad value is left out with a warning: the daemon
    must keep syncing before a meeting even when a setting has a typo."""
    values, problems = m3prefs.normalize_local_prefs(cfg.prefs)
    for problem in problems:
        log.warning("%s", problem)
    return values


def layout_for(cfg: Config, effective: Mapping[str, Any]) -> Layout:
    return Layout(
        kind=cfg.local.layout,
        lang=str(effective.get("media.lang") or "E"),
        date_format=str(effective.get("app.outputFolderDateFormat") or "YYYY-MM-DD"),
        ui_lang=str(effective.get("app.localAppLang") or "en"),
    )
