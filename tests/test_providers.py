"""Provider presets: ids, lookup, placeholders, and that every preset makes a valid configuration."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from m3daemon.errors import ExitCode, UsageError
from m3daemon.settings.config import load_config
from m3daemon.settings.providers import PROVIDERS, Provider, get_provider


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("provider_id", "url", "folder"),
    [
        ("box", "https://webdav.box.com", "/dav/"),
        ("koofr", "https://app.koofr.net", "/dav/Koofr/"),
        ("4shared", "https://webdav.4shared.com", "/"),
        ("powerfolder", "https://my.powerfolder.com", "/webdav/"),
        ("nextcloud", "https://<host>", "/remote.php/dav/files/<username>/"),
        ("owncloud", "https://<host>", "/remote.php/webdav/"),
        ("self-hosted", "https://<host>:8443", "/"),
    ],
)
def test_presets(provider_id: str, url: str, folder: str) -> None:
    provider = get_provider(provider_id)
    assert (provider.url, provider.folder) == (url, folder)


def test_ids_are_unique_and_lower_case() -> None:
    ids = [p.id for p in PROVIDERS]
    assert len(ids) == len(set(ids)) == 7
    assert all(i == i.lower() for i in ids)


@pytest.mark.parametrize("given", ["Koofr", "KOOFR", " koofr ", "koofr"])
def test_lookup_is_case_insensitive(given: str) -> None:
    assert get_provider(given).name == "Koofr"


def test_unknown_provider_lists_the_ids() -> None:
    with pytest.raises(UsageError) as info:
        get_provider("dropbox")
    assert "dropbox" in info.value.message
    for provider in PROVIDERS:
        assert provider.id in info.value.remedy
    assert info.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize("provider_id", ["box", "koofr", "nextcloud", "owncloud"])
def test_app_password_notes(provider_id: str) -> None:
    assert "app password" in get_provider(provider_id).note


def test_self_hosted_note_speaks_of_fingerprint_pinning_as_setup_does() -> None:
    note = get_provider("self-hosted").note
    assert "fingerprint" in note and "pins" in note and "invitation" in note
    assert "ca.pem" not in note and "copy" not in note.lower()


def test_no_provider_note_shows_markup() -> None:
    """Notes are shown as they are, in a terminal and on the dashboard: no Markdown backticks."""
    assert all("`" not in p.note for p in PROVIDERS)


def test_folder_for_fills_the_user_name() -> None:
    assert get_provider("nextcloud").folder_for("bob@example.org") == "/remote.php/dav/files/bob@example.org/"
    assert get_provider("koofr").folder_for("anyone") == "/dav/Koofr/"
    with pytest.raises(UsageError):
        get_provider("nextcloud").folder_for("")
    with pytest.raises(UsageError):
        get_provider("nextcloud").folder_for("a/b")


def test_url_for_fills_the_host() -> None:
    assert get_provider("self-hosted").url_for("hall.local") == "https://hall.local:8443"
    assert get_provider("nextcloud").url_for("https://cloud.example.org/") == "https://cloud.example.org"
    assert get_provider("box").url_for("ignored") == "https://webdav.box.com"
    assert get_provider("nextcloud").needs_host and not get_provider("box").needs_host
    with pytest.raises(UsageError):
        get_provider("nextcloud").url_for("bob@cloud.example.org")


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.id)
def test_every_preset_gives_a_valid_configuration(tmp_path: Path, provider: Provider) -> None:
    url = provider.url_for("cloud.example.org")
    folder = provider.folder_for("bob").rstrip("/") + "/Congregation"
    path = tmp_path / "c.toml"
    path.write_text(f'[connection]\nurl = "{url}"\nusername = "bob"\nfolder = "{folder}"\n', encoding="utf-8")
    cfg = load_config(path)
    assert cfg.connection is not None
    assert cfg.connection.url == url
    assert cfg.connection.folder == folder
