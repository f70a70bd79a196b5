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
timeout_seconds = 30                # per read: how long a silent server is waited for
request_deadline_seconds = 300      # per request, overall (a download: plus its size at 16 kB/s)
bandwidth_limit_kbps = 0            # downloads together at most this many kilobit/s; 0: no limit

[local]
media_dir = "~/Documents/Congregation Media"
layout = "watch"                    # or "classic"
days_ahead = 14

[schedule]
poll_minutes = 30
before_meeting_minutes = 60
timezone = "Europe/Berlin"          # optional; default: the computer's time zone
meeting_minutes = 120               # a meeting's length: nothing in its folder is deleted or replaced
meeting_bandwidth_limit_kbps = 4000 # downloads while a meeting runs, kilobits per second (0: none)

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
a ``password`` key anywhere is refused, and the password is kept by :mod:`m3daemon.settings.credentials`.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from m3daemon.errors import ConfigError
from m3daemon.i18n import _
from m3daemon.local import paths
from m3daemon.settings.checker import _absolute_path, _Checker
from m3daemon.settings.validate import _refuse_passwords, config_from_document, flatten_prefs
from m3daemon.settings.values import (
    BEFORE_MEETING_MAX,
    CONFIG_ENV,
    DAYS_AHEAD_MAX,
    DEADLINE_DEFAULT,
    KNOWN_CONFIGS_FILE,
    LAYOUTS,
    LOOPBACK_HOSTS,
    TIMEOUT_MAX,
    Config,
    ConnectionConfig,
    Layout,
    LocalConfig,
    ScheduleConfig,
)

__all__ = [
    "BEFORE_MEETING_MAX",
    "CONFIG_ENV",
    "DAYS_AHEAD_MAX",
    "KNOWN_CONFIGS_FILE",
    "LAYOUTS",
    "LOOPBACK_HOSTS",
    "TIMEOUT_MAX",
    "Config",
    "ConnectionConfig",
    "Layout",
    "LocalConfig",
    "ScheduleConfig",
    "config_from_document",
    "config_to_dict",
    "default_config",
    "flatten_prefs",
    "load_config",
    "load_config_or_default",
    "resolve_config_path",
    "save_config",
]

log = logging.getLogger(__name__)


def resolve_config_path(cli_value: str | None, environ: Mapping[str, str]) -> Path:
    """``--config`` wins, then ``M3DAEMON_CONFIG``, else :func:`paths.default_config_path`."""
    if cli_value:
        return _absolute_path(cli_value)
    env_value = environ.get(CONFIG_ENV, "")
    if env_value.strip():
        return _absolute_path(env_value.strip())
    return paths.default_config_path()



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
    if cfg.language:
        doc["congregation"]["language"] = cfg.language
    conn = cfg.connection
    if conn is not None:
        connection: dict[str, Any] = {"url": conn.url, "username": conn.username, "folder": conn.folder}
        if conn.ca_file is not None:
            connection["ca_file"] = _path_for_file(conn.ca_file, cfg.path)
        if conn.allow_insecure_loopback:
            connection["allow_insecure_loopback"] = True
        connection["timeout_seconds"] = conn.timeout_seconds
        if conn.request_deadline_seconds != DEADLINE_DEFAULT:
            connection["request_deadline_seconds"] = conn.request_deadline_seconds
        if conn.bandwidth_limit_kbps:
            connection["bandwidth_limit_kbps"] = conn.bandwidth_limit_kbps
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
    for key, default in (("meeting_minutes", 120), ("meeting_bandwidth_limit_kbps", 4000)):
        if getattr(cfg.schedule, key) != default:  # written only when changed
            schedule[key] = getattr(cfg.schedule, key)
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
    import tomli_w  # (only a save writes TOML: `update` never loads the writer)

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
