"""Where m3daemon keeps its files, per platform (platformdirs, appname ``m3daemon``, no app author).

| function | Linux (XDG) | macOS | Windows |
|---|---|---|---|
| ``config_dir()`` | ``~/.config/m3daemon`` | ``~/Library/Application Support/m3daemon`` | ``%LOCALAPPDATA%\\m3daemon`` |
| ``state_dir_for()`` | ``~/.local/state/m3daemon/<stem>-<hash>`` | ``…/Application Support/m3daemon/<stem>-<hash>`` | ``%LOCALAPPDATA%\\m3daemon\\<stem>-<hash>`` |
| ``log_dir()`` | ``~/.local/state/m3daemon/log`` | ``~/Library/Logs/m3daemon`` | ``%LOCALAPPDATA%\\m3daemon\\Logs`` |
| ``cache_dir()`` | ``~/.cache/m3daemon`` | ``~/Library/Caches/m3daemon`` | ``%LOCALAPPDATA%\\m3daemon\\Cache`` |

The ``XDG_*_HOME`` variables are honoured (platformdirs reads them on every call).

Looking a location up never creates it: with no congregation configured nothing is written (SPEC,
"opt-in"). Pass ``create=True`` (or call :func:`ensure_private_dir`) where a file is about to be
written; folders that we create get mode 0700.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

import platformdirs

APP_NAME = "m3daemon"
CONFIG_FILE_NAME = "config.toml"
DEFAULT_CONFIG_STEM = "config"  # the default file's name is not a congregation's name

_PRIVATE_DIR_MODE = 0o700
_PRIVATE_FILE_MODE = 0o600


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) if needed; every folder created gets mode 0700
    (the state and log folders hold names and paths; mkdir's mode alone is cut by the umask).

    An existing folder is left as it is: we only choose the permissions of what we create.
    """
    missing: list[Path] = []
    cur = path
    while not cur.is_dir() and cur != cur.parent:
        missing.append(cur)
        cur = cur.parent
    for folder in reversed(missing):
        folder.mkdir(mode=_PRIVATE_DIR_MODE, exist_ok=True)
        if os.name == "posix":
            os.chmod(folder, _PRIVATE_DIR_MODE)
    return path


def _maybe_create(path: Path, create: bool) -> Path:
    return ensure_private_dir(path) if create else path


def config_dir(create: bool = False) -> Path:
    """The user's configuration folder for m3daemon."""
    return _maybe_create(platformdirs.user_config_path(APP_NAME, appauthor=False), create)


def default_config_path() -> Path:
    """``config_dir()/config.toml``: used when neither ``--config`` nor ``M3DAEMON_CONFIG`` is given."""
    return config_dir() / CONFIG_FILE_NAME


def _state_root() -> Path:
    return platformdirs.user_state_path(APP_NAME, appauthor=False)


def _absolute(path: Path) -> Path:
    """Absolute, ``~`` expanded, symlinks resolved (as far as they exist)."""
    return Path(path).expanduser().resolve(strict=False)


def config_key(config_path: Path) -> str:
    """A stable text key for a configuration file: its absolute path, case-folded where the
    platform's file names are case-insensitive (``os.path.normcase``)."""
    return os.path.normcase(str(_absolute(config_path)))


_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def state_dir_for(config_path: Path, create: bool = False) -> Path:
    """The state folder of one configuration (sync records, last fetched settings, …).

    Named ``<stem>-<hash>``: the file stem for people looking at it, plus the first 10 hex digits of
    the SHA-256 of the configuration's absolute path, so two configuration files never share state
    even when their names are the same.
    """
    digest = hashlib.sha256(config_key(config_path).encode("utf-8")).hexdigest()[:10]
    stem = _UNSAFE_NAME_CHARS.sub("_", Path(config_path).stem).strip("._")[:40] or "config"
    return _maybe_create(_state_root() / f"{stem}-{digest}", create)


def log_dir(create: bool = False) -> Path:
    """Where the daemon writes its log files."""
    return _maybe_create(platformdirs.user_log_path(APP_NAME, appauthor=False), create)


def cache_dir(create: bool = False) -> Path:
    """Disposable data (anything here may be deleted at any time)."""
    return _maybe_create(platformdirs.user_cache_path(APP_NAME, appauthor=False), create)


def default_media_dir(config_path: Path) -> Path:
    """The media folder used when a configuration does not name one.

    ``<Documents>/Congregation Media`` for the default configuration file, and
    ``<Documents>/Congregation Media - <stem>`` for any other, so that two configurations on one
    computer (a Kingdom Hall shared by several congregations) do not end up in the same folder.
    """
    documents = platformdirs.user_documents_path()
    if config_key(config_path) == config_key(default_config_path()):
        return documents / "Congregation Media"
    return documents / f"Congregation Media - {Path(config_path).stem}"


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600.

    The bytes go to a temporary file in the same folder, created 0600 from the start (``mkstemp``),
    flushed and fsynced, then renamed over ``path`` with ``os.replace``: a reader sees either the old
    or the new file, never a partial one, and the content is never readable by others, not even
    for a moment. A missing folder is created with mode 0700.
    """
    folder = path.parent
    ensure_private_dir(folder)
    import tempfile  # (it imports shutil and random: only writers need it)

    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, _PRIVATE_FILE_MODE)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(folder)
