"""Accounts of the congregation's own server: names, roles and salted slow password hashes.

Why scrypt (``hashlib.scrypt``) rather than argon2: it is in the standard library (no compiled
dependency to ship in wheels and the PyInstaller build), it is memory-hard, and OWASP lists it as
an acceptable password hash. The parameters are one of OWASP's equivalent choices (N=2^15, r=8,
p=3: 32 MiB and about a third of a second per check on a small computer); they are stored with each
hash, so they can be raised later without invalidating old passwords.

The store is one JSON file (``users.json``, mode 0600, written atomically under a file lock)::

    {"version": 1, "users": {"anna": {"role": "coordinator",
        "hash": "$scrypt$ln=15,r=8,p=3$<salt>$<key>", "created": "…", "changed": "…"}}}

It holds no password, only hashes (base64 without padding of a 16-byte random salt and the
32-byte derived key). The running server reloads it when it changes on disk, so ``server user
add/rm/passwd`` take effect without a restart.

HTTP Basic sends the password with every request; checking scrypt every time would make each
request cost a third of a second. :class:`Authenticator` therefore remembers a successful check for
a few minutes, keyed by an HMAC of name and password under a random key that lives only in the
server's memory; a changed or removed account invalidates it at once.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from m3daemon.errors import ConfigError, UsageError
from m3daemon.i18n import _, ngettext
from m3daemon.local import paths
from m3daemon.local.locks import FileLock

__all__ = [
    "Account", "Authenticator", "Role", "ScryptParams", "UserStore", "check_password_policy",
    "check_user_name", "hash_password", "verify_password",
]


class Role(str, Enum):
    COORDINATOR = "coordinator"  # reads and writes
    MEMBER = "member"  # reads only: PROPFIND, GET, HEAD, OPTIONS

    @property
    def can_write(self) -> bool:
        return self is Role.COORDINATOR


@dataclass(frozen=True)
class ScryptParams:
    ln: int = 15  # N = 2**ln
    r: int = 8
    p: int = 3

    @property
    def maxmem(self) -> int:
        return 2 * 128 * self.r * (1 << self.ln) + (1 << 20)


DEFAULT_PARAMS = ScryptParams()
_SALT_BYTES = 16
_KEY_BYTES = 32
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


def check_user_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            _("{name!r} cannot be a user name.").format(name=name),
            _("Use 1 to 64 letters, digits and . _ @ + - (starting with a letter or digit)."),
        )
    return name


def check_password_policy(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UsageError(
            ngettext("The password is too short (at least {n} character).",
                     "The password is too short (at least {n} characters).",
                     MIN_PASSWORD_LENGTH).format(n=MIN_PASSWORD_LENGTH),
            _("Choose a longer password; a few unrelated words are easy to type and hard to guess."),
        )
    if len(password) > MAX_PASSWORD_LENGTH or "\0" in password or "\n" in password or "\r" in password:
        raise UsageError(_("The password is too long or contains control characters."))
    return password


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _derive(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=1 << params.ln, r=params.r, p=params.p,
                          maxmem=params.maxmem, dklen=_KEY_BYTES)


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """``$scrypt$ln=15,r=8,p=3$<salt>$<key>`` (a fresh random salt each time)."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _derive(password, salt, params)
    return f"$scrypt$ln={params.ln},r={params.r},p={params.p}${_b64(salt)}${_b64(key)}"


def _parse(encoded: str) -> tuple[ScryptParams, bytes, bytes]:
    try:
        empty, scheme, settings, salt, key = encoded.split("$")
        if empty or scheme != "scrypt":
            raise ValueError(scheme)
        values = dict(item.split("=", 1) for item in settings.split(","))
        params = ScryptParams(int(values["ln"]), int(values["r"]), int(values["p"]))
        if not (1 <= params.ln <= 22 and 1 <= params.r <= 32 and 1 <= params.p <= 16):
            raise ValueError(settings)
        return params, _unb64(salt), _unb64(key)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"not an m3daemon password hash: {exc}") from None


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time comparison of the derived key; a malformed hash never matches."""
    try:
        params, salt, key = _parse(encoded)
    except ValueError:
        return False
    return hmac.compare_digest(_derive(password, salt, params), key)


# --- the store ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    password_hash: str
    created: str = ""
    changed: str = ""

    def to_json(self) -> dict[str, str]:
        return {"role": self.role.value, "hash": self.password_hash, "created": self.created,
                "changed": self.changed}


def _stamp() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class UserStore:
    """``users.json``: read on demand (and again whenever the file changes), written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._accounts: dict[str, Account] = {}

    # -- reading ----------------------------------------------------------------------------

    def _stat_signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read_file(self) -> dict[str, Account]:
        try:
            doc = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(_("Cannot read {path}: {error}").format(path=self.path, error=exc),
                              _("Restore the file from a backup, or remove it and add the accounts again.")) from exc
        users = doc.get("users") if isinstance(doc, dict) else None
        if not isinstance(users, dict):
            raise ConfigError(_("{path} is not an m3daemon user file.").format(path=self.path))
        out: dict[str, Account] = {}
        for name, entry in users.items():
            try:
                out[name] = Account(name, Role(entry["role"]), str(entry["hash"]), str(entry.get("created", "")),
                                    str(entry.get("changed", "")))
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(_("{path}: the entry of {name!r} is damaged ({error}).").format(
                    path=self.path, name=name, error=exc)) from exc
        return out

    def accounts(self) -> dict[str, Account]:
        """Every account by name (a fresh copy; reloaded when the file changed)."""
        with self._lock:
            sig = self._stat_signature()
            if sig != self._signature:
                self._accounts = self._read_file()
                self._signature = sig
            return dict(self._accounts)

    def get(self, name: str) -> Account | None:
        return self.accounts().get(name)

    # -- writing ----------------------------------------------------------------------------

    def _change(self, edit: Callable[[dict[str, Account]], None]) -> None:
        with FileLock(self.path.with_name("." + self.path.name + ".lock")) as _held:
            current = self._read_file()
            edit(current)
            doc: dict[str, Any] = {"version": 1,
                                   "users": {n: a.to_json() for n, a in sorted(current.items())}}
            paths.write_private_file(self.path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))
        with self._lock:
            self._signature = None

    def add(self, name: str, role: Role, password: str) -> Account:
        check_user_name(name)
        check_password_policy(password)
        hashed = hash_password(password)
        made: list[Account] = []

        def edit(users: dict[str, Account]) -> None:
            if name in users:
                raise UsageError(_("There is already an account {name!r}.").format(name=name),
                                 _("Use `m3daemon server user passwd` to change its password."))
            clash = next((n for n in users if n.lower() == name.lower()), None)
            if clash:
                raise UsageError(_("{name!r} differs from the account {other!r} only in upper/lower case.").format(
                    name=name, other=clash), _("Choose another name."))
            now = _stamp()
            users[name] = Account(name, role, hashed, now, now)
            made.append(users[name])

        self._change(edit)
        return made[0]

    def set_password(self, name: str, password: str) -> None:
        check_password_policy(password)
        hashed = hash_password(password)

        def edit(users: dict[str, Account]) -> None:
            old = users.get(name)
            if old is None:
                raise UsageError(_("There is no account {name!r}.").format(name=name),
                                 _("`m3daemon server user list` shows the accounts."))
            users[name] = Account(name, old.role, hashed, old.created, _stamp())

        self._change(edit)

    def set_role(self, name: str, role: Role) -> None:
        def edit(users: dict[str, Account]) -> None:
            old = users.get(name)
            if old is None:
                raise UsageError(_("There is no account {name!r}.").format(name=name),
                                 _("`m3daemon server user list` shows the accounts."))
            users[name] = Account(name, role, old.password_hash, old.created, _stamp())

        self._change(edit)

    def remove(self, name: str) -> None:
        def edit(users: dict[str, Account]) -> None:
            if users.pop(name, None) is None:
                raise UsageError(_("There is no account {name!r}.").format(name=name),
                                 _("`m3daemon server user list` shows the accounts."))

        self._change(edit)


# --- checking passwords in the server --------------------------------------------------------------


class Authenticator:
    """``check(name, password) -> Account | None`` for the server, cheap after the first success.

    At most ``parallel`` scrypt checks run at once (each takes 32 MiB), so a burst of guesses cannot
    exhaust the memory; unknown names are checked against a dummy hash so that they take as long as
    known ones (the answer's timing does not tell which accounts exist).
    """

    def __init__(self, store: UserStore, *, cache_seconds: float = 600.0, parallel: int = 2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._cache: collections.OrderedDict[bytes, tuple[str, float]] = collections.OrderedDict()
        self._cache_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(parallel)
        self._dummy: str | None = None

    def _key(self, name: str, password: str) -> bytes:
        return hmac.new(self._secret, f"{name}\0{password}".encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    def check(self, name: str, password: str) -> Account | None:
        account = self.store.get(name)
        key = self._key(name, password)
        now = self._clock()
        if account is not None:
            with self._cache_lock:
                hit = self._cache.get(key)
                if hit is not None and hit[0] == account.password_hash and hit[1] > now:
                    return account
        with self._slots:
            if account is None:
                if self._dummy is None:
                    self._dummy = hash_password(secrets.token_hex(16))
                verify_password(password, self._dummy)
                return None
            ok = verify_password(password, account.password_hash)
        if not ok:
            return None
        with self._cache_lock:
            self._cache[key] = (account.password_hash, now + self.cache_seconds)
            self._cache.move_to_end(key)
            while len(self._cache) > 256:
                self._cache.popitem(last=False)
        return account
