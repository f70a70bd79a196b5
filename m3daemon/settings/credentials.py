"""Where the WebDAV password lives: never in the configuration file, never in a log.

Lookup order (:func:`get_password`):

1. ``M3DAEMON_PASSWORD`` in the environment (headless use, CI);
2. the OS keyring, but only when a *real* backend is active (Secret Service, KWallet, macOS Keychain,
   Windows Credential Locker): an allowlist, because the other backends either store plain text
   (keyrings.alt) or prompt on a terminal (keyrings.cryptfile), which is no use to a daemon. keyring
   itself honours ``PYTHON_KEYRING_BACKEND``;
3. ``config_dir()/secrets.json``: a JSON object ``{"<username>@<url>": "<password>"}`` with mode 0600.

:func:`store_password` writes to the keyring when a real one is active and works, otherwise to the
file, and says which (``StoredWhere.FILE`` means: tell the person where it went).

Where each account's password was last stored or found is remembered in
``cache_dir()/password-places.json`` (no secret in it: ``"file"`` or the backend's class), and a
read looks there first. Why: finding keyring's backend loads every backend keyring has and
probes each (0.1-0.2 s at every start of a command); the remembered one alone took about half
of that with GNOME Keyring here, and a password in the file needs no keyring at all. A place
that no longer has the password sends the read down the full order above; the cache may be
deleted at any time.

Nothing here puts a password in a log record or an exception message; keyring errors are logged by
their type name only.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m3daemon.errors import ConfigError, MissingPasswordError
from m3daemon.i18n import _
from m3daemon.local import paths
from m3daemon.settings.config import ConnectionConfig

if TYPE_CHECKING:  # keyring is imported only when it is used: `update` with M3DAEMON_PASSWORD never is
    import keyring.backend

log = logging.getLogger(__name__)

PASSWORD_ENV = "M3DAEMON_PASSWORD"
KEYRING_SERVICE = "m3daemon"
SECRETS_FILE = "secrets.json"
PLACES_FILE = "password-places.json"

#: Backend modules that keep secrets properly and never prompt on a terminal (stack notes §7).
REAL_KEYRING_BACKENDS: tuple[str, ...] = (
    "keyring.backends.SecretService",
    "keyring.backends.libsecret",
    "keyring.backends.kwallet",
    "keyring.backends.macOS",
    "keyring.backends.Windows",
)


class StoredWhere(Enum):
    KEYRING = "keyring"
    FILE = "file"


def secrets_path() -> Path:
    return paths.config_dir() / SECRETS_FILE


def account_key(conn: ConnectionConfig) -> str:
    """``username@url``: one password per account on one server."""
    return conn.account


# --- keyring ---------------------------------------------------------------------------------------


def _remembered_backend(spec: str, allowlist: Sequence[str]) -> keyring.backend.KeyringBackend | None:
    """The backend ``module:qualname`` when it is on the allowlist and can run here, else None.
    Not when ``PYTHON_KEYRING_BACKEND`` names one: then keyring's own choice is the person's."""
    module, _sep, qualname = spec.partition(":")
    if os.environ.get("PYTHON_KEYRING_BACKEND") or not module.startswith(tuple(allowlist)):
        return None
    kept = _DIRECT.get(spec)
    if kept is not None:
        return kept
    try:
        from keyring.backend import KeyringBackend

        cls: Any = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if not (isinstance(cls, type) and issubclass(cls, KeyringBackend)):
            return None
        backend = cls()
        backend.priority  # noqa: B018 - raises where the backend cannot run (no D-Bus, another OS)
    except Exception as exc:  # noqa: BLE001 - any failure: keyring's own detection decides
        log.debug("the remembered keyring backend %s is not usable here (%s)", spec, type(exc).__name__)
        return None
    _DIRECT[spec] = backend
    return backend


def _spec_of(backend: keyring.backend.KeyringBackend) -> str:
    return f"{type(backend).__module__}:{type(backend).__qualname__}"


#: the remembered backends made so far in this process (the daemon asks at every sync)
_DIRECT: dict[str, keyring.backend.KeyringBackend] = {}


def real_keyring_backend(
    allowlist: Sequence[str] = REAL_KEYRING_BACKENDS,
) -> keyring.backend.KeyringBackend | None:
    """The backend to use, or None when no real one is active.

    With keyring's ChainerBackend, the highest-priority *real* backend of the chain is returned and
    used directly, so that a write can never fall through to a plain-text or prompting backend.
    """
    try:
        import keyring
        from keyring.backends.chainer import ChainerBackend

        active = keyring.get_keyring()
    except Exception as exc:  # noqa: BLE001 - a broken keyring installation must not stop the daemon
        log.warning("The system keyring cannot be loaded (%s); using the secrets file", type(exc).__name__)
        return None
    candidates = list(active.backends) if isinstance(active, ChainerBackend) else [active]
    prefixes = tuple(allowlist)
    for backend in candidates:
        if type(backend).__module__.startswith(prefixes):
            return backend
    return None


def _keyring_get(backend: keyring.backend.KeyringBackend, key: str, *, quiet: bool = False) -> str | None:
    """``quiet``: a failure is logged for debugging only (the full lookup that follows says it)."""
    try:
        return backend.get_password(KEYRING_SERVICE, key)
    except Exception as exc:  # noqa: BLE001 - KeyringError, InitError, KeyringLocked, D-Bus errors
        log.log(logging.DEBUG if quiet else logging.WARNING,
                "The system keyring cannot be read (%s); trying the secrets file", type(exc).__name__)
        return None


def _keyring_delete(backend: keyring.backend.KeyringBackend, key: str) -> bool:
    try:
        if backend.get_password(KEYRING_SERVICE, key) is None:
            return False
        backend.delete_password(KEYRING_SERVICE, key)
        return True
    except Exception as exc:  # noqa: BLE001 - any keyring failure falls back to the file
        log.warning("The password cannot be removed from the system keyring (%s)", type(exc).__name__)
        return False


# --- the secrets file ------------------------------------------------------------------------------


def _tighten(path: Path) -> None:
    """A secrets file readable by others is set back to 0600, with a warning."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, 0o600)
        log.warning(
            "%s was readable by others (mode %03o); it is now readable only by you (0600)", path, mode
        )


def _read_secrets() -> dict[str, str]:
    path = secrets_path()
    try:
        _tighten(path)
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s cannot be read (%s); it is ignored", path, type(exc).__name__)
        return {}
    if not isinstance(data, dict):
        log.warning("%s does not hold a JSON object; it is ignored", path)
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _write_secrets(secrets: Mapping[str, str]) -> None:
    data = json.dumps(dict(sorted(secrets.items())), indent=2, ensure_ascii=False) + "\n"
    try:
        paths.write_private_file(secrets_path(), data.encode("utf-8"))
    except OSError as exc:
        raise ConfigError(
            _("The password file {path} cannot be written: {reason}.").format(
                path=secrets_path(), reason=exc.strerror or type(exc).__name__
            ),
            _("Check that you may write in {folder}.").format(folder=secrets_path().parent),
        ) from None


def _file_delete(key: str) -> bool:
    secrets = _read_secrets()
    if key not in secrets:
        return False
    del secrets[key]
    _write_secrets(secrets)
    return True


# --- where each password was last seen -------------------------------------------------------------

FILE_PLACE = "file"


def places_path() -> Path:
    return paths.cache_dir() / PLACES_FILE


def _read_places() -> dict[str, str]:
    try:
        data = json.loads(places_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}


def _remember_place(key: str, place: str | None) -> None:
    """Note where ``key``'s password is (None: nowhere). Best effort: the cache may be missing,
    read-only or deleted; a read then takes the full order."""
    places = _read_places()
    if places.get(key) == place:
        return
    if place is None:
        places.pop(key, None)
    else:
        places[key] = place
    data = json.dumps(dict(sorted(places.items())), indent=2) + "\n"
    try:
        paths.write_private_file(places_path(), data.encode("utf-8"))
    except OSError as exc:
        log.debug("where the password is was not remembered (%s)", type(exc).__name__)


def _from_remembered_place(key: str, real_backends: Sequence[str]) -> str | None:
    place = _read_places().get(key)
    if place is None:
        return None
    if place == FILE_PLACE:
        return _read_secrets().get(key)
    backend = _remembered_backend(place, real_backends)
    return _keyring_get(backend, key, quiet=True) if backend is not None else None


# --- public API ------------------------------------------------------------------------------------


def get_password(
    conn: ConnectionConfig,
    environ: Mapping[str, str] | None = None,
    *,
    real_backends: Sequence[str] = REAL_KEYRING_BACKENDS,
) -> str | None:
    """The password for ``conn``: ``M3DAEMON_PASSWORD``, else the real keyring, else the secrets
    file; None when none has one."""
    env = os.environ if environ is None else environ
    from_env = env.get(PASSWORD_ENV)
    if from_env:
        return from_env
    key = account_key(conn)
    found = _from_remembered_place(key, real_backends)
    if found is not None:
        return found
    backend = real_keyring_backend(real_backends)
    if backend is not None:
        found = _keyring_get(backend, key)
        if found is not None:
            _remember_place(key, _spec_of(backend))
            return found
    found = _read_secrets().get(key)
    _remember_place(key, FILE_PLACE if found is not None else None)
    return found


def require_password(
    conn: ConnectionConfig,
    environ: Mapping[str, str] | None = None,
    *,
    real_backends: Sequence[str] = REAL_KEYRING_BACKENDS,
) -> str:
    """Like :func:`get_password`, but a missing password raises :class:`MissingPasswordError` (exit 2)."""
    password = get_password(conn, environ, real_backends=real_backends)
    if password is None:
        raise MissingPasswordError(
            _("No password is stored for {account}.").format(account=account_key(conn)),
            _("Run `m3daemon setup` to store it, or set {env}.").format(env=PASSWORD_ENV),
        )
    return password


def store_password(
    conn: ConnectionConfig,
    password: str,
    *,
    real_backends: Sequence[str] = REAL_KEYRING_BACKENDS,
) -> StoredWhere:
    """Keep ``password`` for ``conn``. Returns KEYRING, or FILE when no real keyring is available or
    it failed; then the caller should say: "No system keyring is available; the password is stored in
    <file>, readable only by you." (:func:`file_storage_notice`)."""
    if not password:
        raise MissingPasswordError(
            _("The password is empty."), _("Enter the password of the WebDAV account.")
        )
    key = account_key(conn)
    backend = real_keyring_backend(real_backends)
    if backend is not None:
        try:
            backend.set_password(KEYRING_SERVICE, key, password)
        except Exception as exc:  # noqa: BLE001 - KeyringError, InitError, KeyringLocked, D-Bus errors
            log.warning(
                "The system keyring refused the password (%s); storing it in %s instead",
                type(exc).__name__,
                secrets_path(),
            )
            # An older value left in the keyring would win over the file on the next read.
            _keyring_delete(backend, key)
        else:
            _file_delete(key)  # no stale copy in the file
            _remember_place(key, _spec_of(backend))
            return StoredWhere.KEYRING
    secrets = _read_secrets()
    secrets[key] = password
    _write_secrets(secrets)
    _remember_place(key, FILE_PLACE)
    return StoredWhere.FILE


def file_storage_notice() -> str:
    """The warning to show when :func:`store_password` returned ``StoredWhere.FILE``."""
    return _(
        "No system keyring is available; the password is stored in {file}, readable only by you."
    ).format(file=secrets_path())


def delete_password(
    conn: ConnectionConfig,
    *,
    real_backends: Sequence[str] = REAL_KEYRING_BACKENDS,
) -> bool:
    """Forget the password for ``conn`` in the keyring and in the file; True if one was removed."""
    key = account_key(conn)
    removed = False
    backend = real_keyring_backend(real_backends)
    if backend is not None:
        removed = _keyring_delete(backend, key)
    _remember_place(key, None)
    return _file_delete(key) or removed
