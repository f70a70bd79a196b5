"""A TOML document → a checked :class:`~m3daemon.settings.values.Config`, with plain-words errors."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from m3daemon.errors import ConfigError
from m3daemon.i18n import _
from m3daemon.local import paths
from m3daemon.settings.checker import _KNOWN, _PASSWORD_NAMES, _absolute_path, _Checker, _show
from m3daemon.settings.urls import _join_folder, _parse_url
from m3daemon.settings.values import (
    BEFORE_MEETING_MAX,
    DAYS_AHEAD_MAX,
    DEADLINE_DEFAULT,
    DEADLINE_MAX,
    LAYOUTS,
    TIMEOUT_MAX,
    Config,
    ConnectionConfig,
    Layout,
    LocalConfig,
    ScheduleConfig,
)

log = logging.getLogger(__name__)

_LANGUAGE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*")


def _walk_keys(value: Any, prefix: str) -> Iterator[tuple[str, str]]:
    """(shown location, key) for every key of every table, arrays of tables included."""
    if isinstance(value, dict):
        for key, sub in value.items():
            location = f"{prefix}.{key}" if prefix else key
            yield location, key
            yield from _walk_keys(sub, location)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_keys(item, prefix)


def _is_password_key(key: str) -> bool:
    last = key.rsplit(".", 1)[-1].lower().replace("_", "").replace("-", "")
    return last in _PASSWORD_NAMES or last.endswith("password")


def _refuse_passwords(doc: Mapping[str, Any], checker: _Checker) -> None:
    """A password in the file is refused; its value is never shown."""
    for location, key in _walk_keys(doc, ""):
        if _is_password_key(key):
            table, _sep, rest = location.partition(".")
            where = f"[{table}] {rest}" if rest else location
            raise checker.error(
                where,
                _(
                    "passwords are not kept in the configuration file: remove this line and run "
                    "`m3daemon setup`, which stores the password in the system keyring "
                    "(or set M3DAEMON_PASSWORD)"
                ),
            )


def flatten_prefs(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"meeting": {"mwDay": 1}, "app.x": 2}`` → ``{"meeting.mwDay": 1, "app.x": 2}``.

    Quoted dotted keys are kept as they are; a key set twice (once dotted, once nested) is an error.
    """
    flat: dict[str, Any] = {}
    for key, value in table.items():
        full = f"{prefix}.{key}" if prefix else key
        items = flatten_prefs(value, full).items() if isinstance(value, dict) else [(full, value)]
        for flat_key, flat_value in items:
            if flat_key in flat:
                raise ConfigError(
                    _("[prefs] {key}: set twice (once as a dotted key, once in a table): keep one").format(
                        key=flat_key
                    )
                )
            flat[flat_key] = flat_value
    return flat



BANDWIDTH_MAX_KBPS = 10_000_000  # 10 Gbit/s: anything above is a typing mistake


def _connection(table: Mapping[str, Any], checker: _Checker, base: Path) -> ConnectionConfig:
    url = checker.string(table, "connection", "url", _('for example url = "https://app.koofr.net"'))
    if url is None:
        raise checker.error(
            "[connection] url",
            _('missing: add the server address, for example url = "https://app.koofr.net"'),
        )
    allow = checker.boolean(table, "connection", "allow_insecure_loopback", False)
    origin, prefix = _parse_url(url, allow, checker)

    username = checker.string(table, "connection", "username", _('for example username = "av@example.org"'))
    if username is None:
        raise checker.error("[connection] username", _("missing: add the user name of the WebDAV account"))

    folder_hint = _('for example folder = "/dav/Koofr/Congregation"')
    folder = checker.string(table, "connection", "folder", folder_hint)
    if folder is None and not prefix:
        raise checker.error(
            "[connection] folder",
            _("missing: add the congregation sync folder, an absolute path on the server ({hint})").format(
                hint=folder_hint
            ),
        )
    full_folder = _join_folder(prefix, folder, checker)

    ca_file: Path | None = None
    ca_raw = checker.string(table, "connection", "ca_file", _('for example ca_file = "ca.pem"'))
    if ca_raw is not None:
        ca_file = _absolute_path(ca_raw, base)
        if not ca_file.is_file():
            raise checker.error(
                "[connection] ca_file",
                _("{file} does not exist: copy the server's CA certificate there or correct the path").format(
                    file=ca_file
                ),
            )
        if not os.access(ca_file, os.R_OK):
            raise checker.error(
                "[connection] ca_file",
                _("{file} cannot be read: make it readable for your user account").format(file=ca_file),
            )

    timeout_raw = table.get("timeout_seconds", 30.0)
    timeout_fix = _(
        "write a number of seconds above 0 and up to {max}, for example timeout_seconds = 30"
    ).format(max=int(TIMEOUT_MAX))
    if isinstance(timeout_raw, bool) or not isinstance(timeout_raw, (int, float)):
        raise checker.error(
            "[connection] timeout_seconds",
            _("{value} is not a number: {fix}").format(value=_show(timeout_raw), fix=timeout_fix),
        )
    if not 0 < timeout_raw <= TIMEOUT_MAX:
        raise checker.error(
            "[connection] timeout_seconds",
            _("{value} is out of range: {fix}").format(value=timeout_raw, fix=timeout_fix),
        )
    deadline_raw = table.get("request_deadline_seconds", DEADLINE_DEFAULT)
    deadline_fix = _(
        "write a number of seconds above 0 and up to {max}, for example request_deadline_seconds = 300"
    ).format(max=int(DEADLINE_MAX))
    if isinstance(deadline_raw, bool) or not isinstance(deadline_raw, (int, float)):
        raise checker.error(
            "[connection] request_deadline_seconds",
            _("{value} is not a number: {fix}").format(value=_show(deadline_raw), fix=deadline_fix),
        )
    if not 0 < deadline_raw <= DEADLINE_MAX:
        raise checker.error(
            "[connection] request_deadline_seconds",
            _("{value} is out of range: {fix}").format(value=deadline_raw, fix=deadline_fix),
        )
    limit = checker.integer(table, "connection", "bandwidth_limit_kbps", 0, 0, BANDWIDTH_MAX_KBPS)
    return ConnectionConfig(
        url=origin,
        username=username,
        folder=full_folder,
        ca_file=ca_file,
        allow_insecure_loopback=allow,
        timeout_seconds=float(timeout_raw),
        request_deadline_seconds=float(deadline_raw),
        bandwidth_limit_kbps=limit,
    )


def _local(table: Mapping[str, Any], checker: _Checker, config_path: Path) -> LocalConfig:
    raw_dir = checker.string(table, "local", "media_dir", _('for example media_dir = "~/Congregation Media"'))
    media_dir = (
        _absolute_path(raw_dir, config_path.parent)
        if raw_dir is not None
        else _absolute_path(paths.default_media_dir(config_path))
    )
    layout = table.get("layout", "watch")
    if layout not in LAYOUTS:
        raise checker.error(
            "[local] layout",
            _(
                '{value} is not a layout: write layout = "watch" (M³ 25+ Folder to Watch) or layout = "classic" '
                "(M³ 22–24 output folder)"
            ).format(value=_show(layout)),
        )
    days_ahead = checker.integer(table, "local", "days_ahead", 14, 0, DAYS_AHEAD_MAX)
    return LocalConfig(media_dir=media_dir, layout=cast(Layout, layout), days_ahead=days_ahead)


def _timezone_known(name: str) -> bool:
    import zoneinfo  # (only a configured time zone is checked: most configurations have none)

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # Without a time-zone database (Windows without tzdata) nothing can be checked here.
        return not zoneinfo.available_timezones()
    return True


def _schedule(table: Mapping[str, Any], checker: _Checker) -> ScheduleConfig:
    poll = checker.integer(table, "schedule", "poll_minutes", 30, 1, None)
    before = checker.integer(table, "schedule", "before_meeting_minutes", 60, 0, BEFORE_MEETING_MAX)
    tz = checker.string(table, "schedule", "timezone", _('for example timezone = "Europe/Berlin"'))
    if tz is not None and not _timezone_known(tz):
        raise checker.error(
            "[schedule] timezone",
            _(
                '{value} is not a known time zone: use a name such as "Europe/Berlin" or "America/Chicago", '
                "or remove the line to use the computer's time zone"
            ).format(value=_show(tz)),
        )
    length = checker.integer(table, "schedule", "meeting_minutes", 120, 30, 360)
    meeting_kbps = checker.integer(table, "schedule", "meeting_bandwidth_limit_kbps", 4000, 0, BANDWIDTH_MAX_KBPS)
    return ScheduleConfig(poll_minutes=poll, before_meeting_minutes=before, timezone=tz, meeting_minutes=length,
                          meeting_bandwidth_limit_kbps=meeting_kbps)


def config_from_document(doc: Mapping[str, Any], path: Path) -> Config:
    """Validate a TOML document (as a dict) into a Config; used by load and by setup."""
    checker = _Checker(path)
    _refuse_passwords(doc, checker)
    for key, value in doc.items():
        if key not in _KNOWN:
            kind = _("table") if isinstance(value, dict) else _("key")
            checker.warnings.append(
                _("[{key}]: unknown {kind}, ignored (known tables: {known})").format(
                    key=key, kind=kind, known=", ".join(_KNOWN)
                )
            )

    congregation = checker.table(doc, "congregation") or {}
    name = checker.string(congregation, "congregation", "name", _('for example name = "Springfield North"'))
    language = checker.string(congregation, "congregation", "language", _('for example language = "fr"'))
    if language is not None and not _LANGUAGE.fullmatch(language):
        raise checker.error("[congregation] language",
                            _('{value} is not a language code: write for example "fr" or "pt-BR"').format(
                                value=_show(language)))
    connection_table = checker.table(doc, "connection")
    connection = _connection(connection_table, checker, path.parent) if connection_table is not None else None
    local = _local(checker.table(doc, "local") or {}, checker, path)
    schedule = _schedule(checker.table(doc, "schedule") or {}, checker)
    try:
        prefs = flatten_prefs(checker.table(doc, "prefs") or {})
    except ConfigError as exc:
        raise ConfigError(exc.message, _("Fix it in {path}.").format(path=path)) from None
    for warning in checker.warnings:
        log.warning("%s: %s", path, warning)
    return Config(
        path=path,
        connection=connection,
        local=local,
        schedule=schedule,
        prefs=prefs,
        name=name or path.stem,
        language=language or None,
        warnings=tuple(checker.warnings),
    )


