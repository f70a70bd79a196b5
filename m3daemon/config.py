"""The configuration file: one TOML file per congregation.

```toml
[congregation]
name = "Springfield North"          # display name; default: the file's stem

[connection]                        # absent: congregation sync is off, nothing is contacted
url = "https://app.koofr.net"       # https://host[:port]
username = "av@example.org"
folder = "/dav/Koofr/Congregation"  # the congregation sync folder, an absolute path on the server
ca_file = "ca.pem"                  # optional; relative to this file's folder
allow_insecure_loopback = false     # true allows http:// to 127.0.0.1, ::1 or localhost (tests only)
timeout_seconds = 30

[local]
media_dir = "~/Documents/Congregation Media"
layout = "watch"                    # or "classic"
days_ahead = 14

[schedule]
poll_minutes = 30
before_meeting_minutes = 60
timezone = "Europe/Berlin"          # optional; default: the computer's time zone

[prefs]                             # M³ keys by their dotted names
"meeting.mwDay" = 1
[prefs.meeting]
weDay = 6
```

**Address and folder.** ``ConnectionConfig.url`` is always the origin ``scheme://host[:port]`` (lower
case, no default port, no trailing slash) and ``ConnectionConfig.folder`` is always the full absolute,
decoded path of the congregation folder on the server (``/dav/Koofr/Congregation``: no trailing slash,
``/`` for the root). People often paste an address that carries a path, such as
``https://cloud.example.org/remote.php/dav/files/bob``; that is accepted and the path becomes a prefix
of ``folder``:

- an absolute ``folder`` that already starts with the address's path (whole segments) is kept as is;
- any other absolute ``folder`` is put under the address's path;
- a relative ``folder`` (``Congregation``) is put under the address's path, or under ``/``;
- with no ``folder`` at all, the address's path is the folder.

The file is normalised this way when it is saved again. Passwords never live in this file (SPEC):
a ``password`` key anywhere is refused, and the password is kept by :mod:`m3daemon.credentials`.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
import unicodedata
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import unquote, urlsplit

import tomli_w

from m3daemon import paths
from m3daemon.errors import ConfigError, InsecureURLError
from m3daemon.i18n import _

log = logging.getLogger(__name__)

CONFIG_ENV = "M3DAEMON_CONFIG"
KNOWN_CONFIGS_FILE = "known-configs.json"

Layout = Literal["watch", "classic"]
LAYOUTS: tuple[Layout, ...] = ("watch", "classic")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

DAYS_AHEAD_MAX = 366
BEFORE_MEETING_MAX = 720
TIMEOUT_MAX = 600.0


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

    @property
    def state_dir(self) -> Path:
        return paths.state_dir_for(self.path)


# --- where the file is ------------------------------------------------------------------------


def _absolute_path(value: str | Path, base: Path | None = None) -> Path:
    """``~`` expanded; a relative path is taken relative to ``base`` (or the working folder);
    ``..`` collapsed, symlinks kept."""
    p = Path(value).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return Path(os.path.abspath(p))


def resolve_config_path(cli_value: str | None, environ: Mapping[str, str]) -> Path:
    """``--config`` wins, then ``M3DAEMON_CONFIG``, else :func:`paths.default_config_path`."""
    if cli_value:
        return _absolute_path(cli_value)
    env_value = environ.get(CONFIG_ENV, "")
    if env_value.strip():
        return _absolute_path(env_value.strip())
    return paths.default_config_path()


# --- validation helpers -------------------------------------------------------------------------

_MISSING: Any = object()

_KNOWN: dict[str, frozenset[str]] = {
    "congregation": frozenset({"name"}),
    "connection": frozenset(
        {"url", "username", "folder", "ca_file", "allow_insecure_loopback", "timeout_seconds"}
    ),
    "local": frozenset({"media_dir", "layout", "days_ahead"}),
    "schedule": frozenset({"poll_minutes", "before_meeting_minutes", "timezone"}),
    "prefs": frozenset(),  # any key
}

_PASSWORD_NAMES = frozenset({"password", "passwd", "pwd", "pass"})


def _show(value: Any) -> str:
    """A value as it would look in the file, shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        text = _("a table")
    elif isinstance(value, list):
        text = _("a list")
    else:
        text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


class _Checker:
    """Reads one file's tables with error messages that name the key and the fix."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings: list[str] = []

    def error(self, where: str, problem: str, cls: type[ConfigError] = ConfigError) -> ConfigError:
        return cls(f"{where}: {problem}", _("Fix it in {path}.").format(path=self.path))

    def table(self, doc: Mapping[str, Any], name: str) -> dict[str, Any] | None:
        value = doc.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(
                name,
                _('{value} must be a table: write it as a "[{name}]" section').format(
                    value=_show(value), name=name
                ),
            )
        for key in value:
            if name != "prefs" and key not in _KNOWN[name]:
                self.warnings.append(
                    _("[{table}] {key}: unknown key, ignored (known keys: {known})").format(
                        table=name, key=key, known=", ".join(sorted(_KNOWN[name]))
                    )
                )
        return value

    def string(self, table: Mapping[str, Any], section: str, key: str, hint: str) -> str | None:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return None
        where = f"[{section}] {key}"
        if not isinstance(value, str):
            raise self.error(
                where,
                _("{value} must be text in quotes: {hint}").format(value=_show(value), hint=hint),
            )
        text = value.strip()
        if not text:
            raise self.error(where, _("is empty: {hint}").format(hint=hint))
        if any(unicodedata.category(ch) == "Cc" for ch in text):
            raise self.error(where, _("contains control characters: {hint}").format(hint=hint))
        return text

    def integer(
        self, table: Mapping[str, Any], section: str, key: str, default: int, low: int, high: int | None
    ) -> int:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return default
        where = f"[{section}] {key}"
        if high is None:
            fix = _("write a whole number of at least {low}, for example {key} = {default}")
        else:
            fix = _("write a whole number from {low} to {high}, for example {key} = {default}")
        fix = fix.format(low=low, high=high, key=key, default=default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(
                where, _("{value} is not a whole number: {fix}").format(value=_show(value), fix=fix)
            )
        if value < low or (high is not None and value > high):
            raise self.error(where, _("{value} is out of range: {fix}").format(value=value, fix=fix))
        return value

    def boolean(self, table: Mapping[str, Any], section: str, key: str, default: bool) -> bool:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise self.error(
                f"[{section}] {key}",
                _("{value} must be true or false (without quotes)").format(value=_show(value)),
            )
        return value


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


# --- the parts ------------------------------------------------------------------------------------


def _authority(raw: str) -> str:
    rest = raw.split("://", 1)[1] if "://" in raw else raw
    for sep in "/?#":
        rest = rest.split(sep, 1)[0]
    return rest


def _path_segments(path: str, where: str, checker: _Checker) -> list[str]:
    if "\\" in path:
        raise checker.error(
            where,
            _('{value} contains "\\": use "/" between folder names').format(value=_show(path)),
        )
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise checker.error(
            where,
            _(
                '{value} contains "." or "..": write the full path, for example "/dav/Koofr/Congregation"'
            ).format(value=_show(path)),
        )
    return segments


def _parse_url(raw: str, allow_loopback: bool, checker: _Checker) -> tuple[str, list[str]]:
    """(origin, path segments of the address). See the module docstring."""
    where = "[connection] url"
    https_fix = _("use an https:// address")
    if "@" in _authority(raw):
        # May hold "name:password@": never shown back.
        raise checker.error(
            where,
            _(
                'the address contains a user name or password: remove the "…@" part, put the user '
                "name in [connection] username and store the password with `m3daemon setup`"
            ),
        )
    if "://" not in raw:
        raise checker.error(
            where,
            _('{value} has no https:// in front: write "https://{raw}"').format(value=_show(raw), raw=raw),
            InsecureURLError,
        )
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment:
        raise checker.error(
            where,
            _('{value} must not contain "?" or "#": keep only https://host[:port] and the path').format(
                value=_show(raw)
            ),
        )
    host = parts.hostname or ""
    if scheme == "http":
        if not allow_loopback:
            problem = _("{value} is not allowed: {fix}").format(value=_show(raw), fix=https_fix)
            if host in LOOPBACK_HOSTS:
                problem += _(" (for local tests, set [connection] allow_insecure_loopback = true)")
            raise checker.error(where, problem, InsecureURLError)
        if host not in LOOPBACK_HOSTS:
            raise checker.error(
                where,
                _(
                    "{value} is not allowed: allow_insecure_loopback only permits http:// to 127.0.0.1, "
                    "::1 or localhost; {fix}"
                ).format(value=_show(raw), fix=https_fix),
                InsecureURLError,
            )
    elif scheme != "https":
        raise checker.error(
            where,
            _("{value} is not allowed: {fix}").format(value=_show(raw), fix=https_fix),
            InsecureURLError,
        )
    if not host:
        raise checker.error(
            where,
            _('{value} has no server name: write it as "https://server.example.org"').format(
                value=_show(raw)
            ),
        )
    try:
        port = parts.port
    except ValueError:
        raise checker.error(
            where,
            _("{value} has an invalid port: use a number from 1 to 65535 after the colon").format(
                value=_show(raw)
            ),
        ) from None
    shown_host = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    origin = f"{scheme}://{shown_host}" + (f":{port}" if port is not None and port != default_port else "")
    return origin, _path_segments(unquote(parts.path), where, checker)


def _join_folder(prefix: list[str], folder: str | None, checker: _Checker) -> str:
    if folder is None:
        segments = prefix
    else:
        own = _path_segments(folder, "[connection] folder", checker)
        if folder.startswith("/") and own[: len(prefix)] == prefix:
            segments = own
        else:
            segments = prefix + own
    return "/" + "/".join(segments)


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
    return ConnectionConfig(
        url=origin,
        username=username,
        folder=full_folder,
        ca_file=ca_file,
        allow_insecure_loopback=allow,
        timeout_seconds=float(timeout_raw),
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
    return ScheduleConfig(poll_minutes=poll, before_meeting_minutes=before, timezone=tz)


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
        warnings=tuple(checker.warnings),
    )


# --- load and save --------------------------------------------------------------------------------


def _read_document(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            _("There is no configuration file at {path}.").format(path=path),
            _("Run `m3daemon setup` to create one, or choose another file with --config."),
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            _("{path} is a folder, not a configuration file.").format(path=path),
            _("Give the path of a .toml file with --config."),
        ) from None
    except OSError as exc:
        raise ConfigError(
            _("The configuration file {path} cannot be read: {reason}.").format(
                path=path, reason=exc.strerror
            ),
            _("Check the file's permissions."),
        ) from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(
            _("{path} is not a UTF-8 text file.").format(path=path),
            _("Save it as UTF-8 text."),
        ) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message names the line and column ("… (at line 3, column 7)") and not the text.
        raise ConfigError(
            _("{path} is not valid TOML: {reason}.").format(path=path, reason=exc),
            _('Correct that line; text values need quotes, for example url = "https://app.koofr.net".'),
        ) from None


def load_config(path: Path) -> Config:
    """Read and validate a configuration file; see the module docstring for its contents.

    Raises :class:`ConfigError` (exit 2) for a missing file, a TOML error (with line and column),
    a wrong type or value (naming ``[table] key`` and the fix) or a password in the file;
    :class:`InsecureURLError` for an address that is not https://.
    """
    path = _absolute_path(path)
    return config_from_document(_read_document(path), path)


def default_config(path: Path) -> Config:
    """What a missing file means: no congregation connection, default local settings."""
    path = _absolute_path(path)
    return Config(
        path=path,
        connection=None,
        local=LocalConfig(media_dir=_absolute_path(paths.default_media_dir(path))),
        schedule=ScheduleConfig(),
        prefs={},
        name=path.stem,
    )


def load_config_or_default(path: Path) -> Config:
    """Like :func:`load_config`, but a missing file gives :func:`default_config` (for commands
    that work without a congregation). A file that exists but is wrong still raises."""
    path = _absolute_path(path)
    if not path.exists():
        return default_config(path)
    return load_config(path)


def _path_for_file(value: Path, config_path: Path) -> str:
    """A path as written in the file: relative when it is inside the config file's folder."""
    try:
        return value.relative_to(config_path.parent).as_posix()
    except ValueError:
        return str(value)


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The TOML document for ``cfg`` (plain dicts, no ``None``: TOML has no null, so an unset
    value and a ``None`` pref are left out). Never contains a password."""
    doc: dict[str, Any] = {"congregation": {"name": cfg.name}}
    conn = cfg.connection
    if conn is not None:
        connection: dict[str, Any] = {"url": conn.url, "username": conn.username, "folder": conn.folder}
        if conn.ca_file is not None:
            connection["ca_file"] = _path_for_file(conn.ca_file, cfg.path)
        if conn.allow_insecure_loopback:
            connection["allow_insecure_loopback"] = True
        connection["timeout_seconds"] = conn.timeout_seconds
        doc["connection"] = connection
    doc["local"] = {
        "media_dir": str(cfg.local.media_dir),
        "layout": cfg.local.layout,
        "days_ahead": cfg.local.days_ahead,
    }
    schedule: dict[str, Any] = {
        "poll_minutes": cfg.schedule.poll_minutes,
        "before_meeting_minutes": cfg.schedule.before_meeting_minutes,
    }
    if cfg.schedule.timezone is not None:
        schedule["timezone"] = cfg.schedule.timezone
    doc["schedule"] = schedule
    prefs = {key: value for key, value in sorted(cfg.prefs.items()) if value is not None}
    if prefs:
        doc["prefs"] = prefs
    _refuse_passwords(doc, _Checker(cfg.path))
    return doc


def save_config(cfg: Config) -> None:
    """Write ``cfg`` to ``cfg.path`` atomically, mode 0600 (the folder is created 0700 if missing).

    Comments of a hand-edited file are not kept."""
    text = tomli_w.dumps(config_to_dict(cfg))
    try:
        paths.write_private_file(cfg.path, text.encode("utf-8"))
    except OSError as exc:
        raise ConfigError(
            _("The configuration file {path} cannot be written: {reason}.").format(
                path=cfg.path, reason=exc.strerror or exc
            ),
            _("Check that the folder exists and that you may write in it."),
        ) from None
