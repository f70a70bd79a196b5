"""Passwords: environment first, then a real keyring, then a 0600 file; never in a log or an error."""

from __future__ import annotations

import importlib
import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.backends.chainer import ChainerBackend

from m3daemon.errors import ConfigError, MissingPasswordError
from m3daemon.local import paths
from m3daemon.settings import credentials
from m3daemon.settings.config import ConnectionConfig
from m3daemon.settings.credentials import (
    StoredWhere,
    delete_password,
    file_storage_notice,
    get_password,
    require_password,
    secrets_path,
    store_password,
)

PASSWORD = "c0rrect-h0rse-b4ttery-staple"
CONN = ConnectionConfig(url="https://app.koofr.net", username="av@example.org", folder="/dav/Koofr/Cong")
OTHER = ConnectionConfig(url="https://dav.example.org:8443", username="av@example.org", folder="/")


class DictKeyring(KeyringBackend):
    """A keyring kept in memory; tests allow its module as a "real" backend."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.items:
            raise keyring.errors.PasswordDeleteError("not found")
        del self.items[(service, username)]


class LockedKeyring(DictKeyring):
    """A keyring that is locked: every call fails (the error text even carries the password)."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.InitError("Failed to unlock the collection")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked(f"locked while storing {password}")


class PlainTextKeyring(DictKeyring):
    """Stands for keyrings.alt's plain-text backend: not on the allowlist."""

    __module__ = "keyrings.alt.file"
    priority = 20


ALLOW_TESTS = (__name__,)  # DictKeyring's module counts as a real backend


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own XDG folders and no real keyring."""
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("M3DAEMON_PASSWORD", raising=False)
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    yield
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]


@pytest.fixture
def dict_keyring() -> DictKeyring:
    backend = DictKeyring()
    keyring.set_keyring(backend)
    return backend


def secrets_on_disk() -> dict[str, str]:
    data: dict[str, str] = json.loads(secrets_path().read_text(encoding="utf-8"))
    return data


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- lookup order --------------------------------------------------------------------------------------


def test_nothing_stored_gives_none_and_require_raises() -> None:
    assert get_password(CONN) is None
    with pytest.raises(MissingPasswordError) as info:
        require_password(CONN)
    assert "m3daemon setup" in str(info.value) and "M3DAEMON_PASSWORD" in str(info.value)


def test_environment_password_wins_over_keyring_and_file(dict_keyring: DictKeyring) -> None:
    store_password(CONN, "from-keyring", real_backends=ALLOW_TESTS)
    assert get_password(CONN, {"M3DAEMON_PASSWORD": "from-env"}, real_backends=ALLOW_TESTS) == "from-env"
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    store_password(CONN, "from-file")
    assert get_password(CONN, {"M3DAEMON_PASSWORD": "from-env"}) == "from-env"


def test_environment_is_read_from_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M3DAEMON_PASSWORD", "from-env")
    assert get_password(CONN) == "from-env"
    monkeypatch.setenv("M3DAEMON_PASSWORD", "")
    assert get_password(CONN) is None  # empty means unset


# --- the file, when no real keyring is active -----------------------------------------------------------


def test_without_a_keyring_the_password_goes_to_a_0600_file() -> None:
    assert store_password(CONN, PASSWORD) is StoredWhere.FILE
    assert secrets_on_disk() == {"av@example.org@https://app.koofr.net": PASSWORD}
    if os.name == "posix":
        assert mode_of(secrets_path()) == 0o600
        assert mode_of(secrets_path().parent) == 0o700
    assert get_password(CONN) == PASSWORD
    assert get_password(OTHER) is None  # keyed by username@url
    assert str(secrets_path()) in file_storage_notice()
    assert "readable only by you" in file_storage_notice()


def test_two_accounts_are_kept_apart_and_deleted_separately() -> None:
    store_password(CONN, "one")
    store_password(OTHER, "two")
    assert (get_password(CONN), get_password(OTHER)) == ("one", "two")
    assert delete_password(CONN) is True
    assert (get_password(CONN), get_password(OTHER)) == (None, "two")
    assert delete_password(CONN) is False


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_secrets_file_readable_by_others_is_tightened(caplog: pytest.LogCaptureFixture) -> None:
    store_password(CONN, PASSWORD)
    os.chmod(secrets_path(), 0o644)
    with caplog.at_level(logging.WARNING, logger="m3daemon.settings.credentials"):
        assert get_password(CONN) == PASSWORD
    assert mode_of(secrets_path()) == 0o600
    assert any("0600" in r.getMessage() for r in caplog.records)


def test_a_broken_secrets_file_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    paths.config_dir(create=True)
    secrets_path().write_text(f"{{not json {PASSWORD}")
    os.chmod(secrets_path(), 0o600)
    with caplog.at_level(logging.WARNING):
        assert get_password(CONN) is None
    assert caplog.records
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


def test_an_empty_password_is_refused() -> None:
    with pytest.raises(MissingPasswordError):
        store_password(CONN, "")


# --- the keyring ----------------------------------------------------------------------------------------


def test_a_real_keyring_is_used_and_the_file_stays_empty(dict_keyring: DictKeyring) -> None:
    assert store_password(CONN, PASSWORD, real_backends=ALLOW_TESTS) is StoredWhere.KEYRING
    assert dict_keyring.items == {("m3daemon", "av@example.org@https://app.koofr.net"): PASSWORD}
    assert not secrets_path().exists()
    assert get_password(CONN, {}, real_backends=ALLOW_TESTS) == PASSWORD
    assert delete_password(CONN, real_backends=ALLOW_TESTS) is True
    assert dict_keyring.items == {}
    assert get_password(CONN, {}, real_backends=ALLOW_TESTS) is None


def test_a_backend_off_the_allowlist_is_not_used(dict_keyring: DictKeyring) -> None:
    # With the default allowlist our in-memory backend is not "real": the file is used.
    assert store_password(CONN, PASSWORD) is StoredWhere.FILE
    assert dict_keyring.items == {}
    assert get_password(CONN) == PASSWORD


def test_storing_in_the_keyring_removes_an_older_copy_from_the_file(dict_keyring: DictKeyring) -> None:
    assert store_password(CONN, "old") is StoredWhere.FILE  # not allowed: goes to the file
    assert store_password(CONN, "new", real_backends=ALLOW_TESTS) is StoredWhere.KEYRING
    assert secrets_on_disk() == {}
    assert get_password(CONN, {}, real_backends=ALLOW_TESTS) == "new"


def test_the_file_is_read_when_the_keyring_has_nothing(dict_keyring: DictKeyring) -> None:
    store_password(CONN, PASSWORD)  # to the file (default allowlist)
    assert get_password(CONN, {}, real_backends=ALLOW_TESTS) == PASSWORD


def test_chainer_uses_the_best_real_backend_not_a_plain_text_one(monkeypatch: pytest.MonkeyPatch) -> None:
    plain, real = PlainTextKeyring(), DictKeyring()
    monkeypatch.setattr(ChainerBackend, "backends", [plain, real])  # by priority: plain text first
    keyring.set_keyring(ChainerBackend())  # type: ignore[no-untyped-call]
    assert credentials.real_keyring_backend(ALLOW_TESTS) is real
    assert store_password(CONN, PASSWORD, real_backends=ALLOW_TESTS) is StoredWhere.KEYRING
    assert plain.items == {} and list(real.items.values()) == [PASSWORD]

    monkeypatch.setattr(ChainerBackend, "backends", [plain])  # only a plain-text backend in the chain
    assert credentials.real_keyring_backend(ALLOW_TESTS) is None
    assert store_password(CONN, PASSWORD, real_backends=ALLOW_TESTS) is StoredWhere.FILE
    assert plain.items == {}


def test_a_locked_keyring_falls_back_to_the_file(caplog: pytest.LogCaptureFixture) -> None:
    keyring.set_keyring(LockedKeyring())
    with caplog.at_level(logging.DEBUG):
        assert store_password(CONN, PASSWORD, real_backends=ALLOW_TESTS) is StoredWhere.FILE
        assert get_password(CONN, {}, real_backends=ALLOW_TESTS) == PASSWORD
    messages = [r.getMessage() for r in caplog.records]
    assert any("KeyringLocked" in m for m in messages)
    assert any("InitError" in m for m in messages)


# --- the password never leaks ----------------------------------------------------------------------------


def test_the_password_appears_in_no_log_record_and_no_error(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, dict_keyring: DictKeyring
) -> None:
    errors: list[BaseException] = []
    with caplog.at_level(logging.DEBUG):
        # every path: keyring, file, locked keyring, loose file permissions, broken file, failed write
        store_password(CONN, PASSWORD, real_backends=ALLOW_TESTS)
        get_password(CONN, {}, real_backends=ALLOW_TESTS)
        delete_password(CONN, real_backends=ALLOW_TESTS)
        keyring.set_keyring(LockedKeyring())
        store_password(CONN, PASSWORD, real_backends=ALLOW_TESTS)
        get_password(CONN, {}, real_backends=ALLOW_TESTS)
        os.chmod(secrets_path(), 0o666)
        get_password(CONN)
        delete_password(CONN, real_backends=ALLOW_TESTS)

        def refuse(path: Path, data: bytes) -> None:
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(paths, "write_private_file", refuse)
        with pytest.raises(ConfigError) as info:
            store_password(CONN, PASSWORD)
        errors.append(info.value)
        with pytest.raises(MissingPasswordError) as missing:
            require_password(CONN)
        errors.append(missing.value)

    assert caplog.records, "the fallbacks should have logged warnings"
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
        assert PASSWORD not in str(record.args)
        assert record.exc_info is None or PASSWORD not in str(record.exc_info[1])
    for error in errors:
        assert PASSWORD not in str(error) and PASSWORD not in repr(error)
        assert PASSWORD not in str(error.__cause__) and PASSWORD not in str(error.__context__)


# --- where the password was last seen: a command's start reads it there first ----------------------------


def places_on_disk() -> dict[str, str]:
    data: dict[str, str] = json.loads(credentials.places_path().read_text(encoding="utf-8"))
    return data


def test_a_password_in_the_file_is_read_without_loading_keyring(tmp_path: Path) -> None:
    """Finding keyring's backend costs 0.1-0.2 s at every command's start; a password that was
    stored in the file needs none of it."""
    store_password(CONN, PASSWORD)
    assert places_on_disk() == {credentials.account_key(CONN): "file"}
    code = ("import sys; from m3daemon.settings.config import ConnectionConfig;"
            "from m3daemon.settings.credentials import get_password;"
            f"c = ConnectionConfig(url={CONN.url!r}, username={CONN.username!r}, folder='/');"
            "print(get_password(c) == sys.argv[1], 'keyring' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_KEYRING_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code, PASSWORD], env=env, capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout.split()
    assert out == ["True", "False"]


def test_a_place_that_lost_the_password_sends_the_read_down_the_full_order(dict_keyring: DictKeyring) -> None:
    store_password(CONN, "old")  # to the file (default allowlist): remembered as "file"
    credentials._file_delete(credentials.account_key(CONN))  # someone emptied the file
    dict_keyring.set_password("m3daemon", credentials.account_key(CONN), "new")
    assert get_password(CONN, {}, real_backends=ALLOW_TESTS) == "new"
    assert places_on_disk() == {credentials.account_key(CONN): f"{__name__}:DictKeyring"}
    dict_keyring.items.clear()
    assert get_password(CONN, {}, real_backends=ALLOW_TESTS) is None
    assert places_on_disk() == {}


def test_a_remembered_backend_is_imported_only_from_the_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    imported: list[str] = []
    real_import = importlib.import_module

    def spy(name: str, package: str | None = None) -> ModuleType:
        imported.append(name)
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", spy)
    key = credentials.account_key(CONN)
    paths.write_private_file(credentials.places_path(), json.dumps({key: "antigravity:Keyring"}).encode())
    assert get_password(CONN) is None
    assert "antigravity" not in imported

    store_password(CONN, PASSWORD)  # the fail backend is active: to the file
    # a real backend that cannot run here (another system's, or no D-Bus): the full order finds the file
    elsewhere = "keyring.backends.Windows:WinVaultKeyring" if os.name != "nt" else "keyring.backends.macOS:Keyring"
    paths.write_private_file(credentials.places_path(), json.dumps({key: elsewhere}).encode())
    assert get_password(CONN) == PASSWORD
    assert places_on_disk() == {key: "file"}


def test_the_places_file_names_no_password(dict_keyring: DictKeyring) -> None:
    store_password(CONN, PASSWORD, real_backends=ALLOW_TESTS)
    store_password(OTHER, PASSWORD)
    text = credentials.places_path().read_text(encoding="utf-8")
    assert PASSWORD not in text and set(places_on_disk().values()) == {"file", f"{__name__}:DictKeyring"}
    if os.name == "posix":
        assert mode_of(credentials.places_path()) == 0o600
    assert delete_password(CONN, real_backends=ALLOW_TESTS) and delete_password(OTHER)
    assert places_on_disk() == {}
