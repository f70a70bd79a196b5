"""The configuration file: locations, validation messages, URL/folder handling, saving, uniqueness."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from m3daemon.errors import ConfigError, ExitCode, InsecureURLError
from m3daemon.local import paths
from m3daemon.settings.config import (
    Config,
    ConnectionConfig,
    LocalConfig,
    ScheduleConfig,
    config_to_dict,
    load_config,
    load_config_or_default,
    resolve_config_path,
    save_config,
)
from m3daemon.settings.registry import check_media_dir_unique, known_configs_path, register_config

GOOD_CONNECTION = """
[connection]
url = "https://app.koofr.net"
username = "av@example.org"
folder = "/dav/Koofr/Congregation"
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own XDG folders and home, and no real keyring."""
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("M3DAEMON_CONFIG", raising=False)
    monkeypatch.delenv("M3DAEMON_PASSWORD", raising=False)
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]


def write_config(folder: Path, text: str, name: str = "congregation.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str) -> Config:
    return load_config(write_config(tmp_path / "cfg", text))


def error_for(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    return info.value


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- locations --------------------------------------------------------------------------------------


def test_locations_follow_xdg_and_are_not_created_by_lookup(tmp_path: Path) -> None:
    assert paths.config_dir() == tmp_path / "xdg_config_home" / "m3daemon"
    assert paths.default_config_path() == paths.config_dir() / "config.toml"
    assert paths.cache_dir() == tmp_path / "xdg_cache_home" / "m3daemon"
    assert paths.log_dir().is_relative_to(tmp_path / "xdg_state_home" / "m3daemon")
    assert not paths.config_dir().exists()
    assert not paths.cache_dir().exists()


def test_created_dirs_are_private(tmp_path: Path) -> None:
    for folder in (paths.config_dir(create=True), paths.cache_dir(create=True), paths.log_dir(create=True)):
        assert folder.is_dir()
        if os.name == "posix":
            assert mode_of(folder) == 0o700


def test_state_dirs_differ_per_config_file(tmp_path: Path) -> None:
    a = paths.state_dir_for(tmp_path / "a" / "hall.toml")
    b = paths.state_dir_for(tmp_path / "b" / "hall.toml")
    assert a != b
    assert a.name.startswith("hall-") and b.name.startswith("hall-")
    assert a.parent == tmp_path / "xdg_state_home" / "m3daemon"
    assert paths.state_dir_for(tmp_path / "a" / "hall.toml") == a  # stable
    assert not a.exists()
    created = paths.state_dir_for(tmp_path / "a" / "hall.toml", create=True)
    assert created == a and a.is_dir()


@pytest.mark.parametrize(
    ("cli", "env", "expected"),
    [
        ("cli.toml", "env.toml", "cli.toml"),
        (None, "env.toml", "env.toml"),
        (None, "", None),
        (None, None, None),
    ],
)
def test_resolve_config_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: str | None, env: str | None, expected: str | None
) -> None:
    monkeypatch.chdir(tmp_path)
    environ = {} if env is None else {"M3DAEMON_CONFIG": env}
    result = resolve_config_path(cli, environ)
    assert result == (tmp_path / expected if expected else paths.default_config_path())
    assert result.is_absolute()


def test_resolve_config_path_expands_home(tmp_path: Path) -> None:
    assert resolve_config_path("~/x.toml", {}) == tmp_path / "home" / "x.toml"


# --- loading a good file ------------------------------------------------------------------------------


def test_full_file_loads(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    cfg = load_text(
        tmp_path,
        """
        [congregation]
        name = "Springfield North"

        [connection]
        url = "https://dav.example.org:8443"
        username = "av"
        folder = "/Congregation"
        ca_file = "ca.pem"
        timeout_seconds = 12

        [local]
        media_dir = "/srv/media"
        layout = "classic"
        days_ahead = 0

        [schedule]
        poll_minutes = 5
        before_meeting_minutes = 720
        timezone = "Europe/Berlin"
        """,
    )
    assert cfg.name == "Springfield North"
    assert cfg.connection == ConnectionConfig(
        url="https://dav.example.org:8443",
        username="av",
        folder="/Congregation",
        ca_file=tmp_path / "cfg" / "ca.pem",
        timeout_seconds=12.0,
    )
    assert cfg.local == LocalConfig(media_dir=Path("/srv/media"), layout="classic", days_ahead=0)
    assert cfg.schedule == ScheduleConfig(
        poll_minutes=5, before_meeting_minutes=720, timezone="Europe/Berlin"
    )
    assert cfg.prefs == {}
    assert cfg.warnings == ()


def test_defaults_and_name_from_stem(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, GOOD_CONNECTION)
    assert cfg.name == "congregation"
    assert cfg.local.layout == "watch" and cfg.local.days_ahead == 14
    assert cfg.schedule == ScheduleConfig()
    assert cfg.connection is not None and cfg.connection.timeout_seconds == 30.0
    assert cfg.connection.ca_file is None and not cfg.connection.allow_insecure_loopback


def test_no_connection_table_means_sync_off(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, '[local]\nmedia_dir = "/m"\n')
    assert cfg.connection is None


def test_missing_file_says_run_setup(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "m3daemon setup" in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


def test_load_config_or_default_without_file(tmp_path: Path) -> None:
    cfg = load_config_or_default(tmp_path / "hall.toml")
    assert cfg.connection is None
    assert cfg.name == "hall"
    assert cfg.local.media_dir.is_absolute() and cfg.local.layout == "watch"
    assert not (tmp_path / "hall.toml").exists()


def test_load_config_or_default_still_validates_an_existing_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[local]\nlayout = 3\n")
    with pytest.raises(ConfigError):
        load_config_or_default(path)


def test_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    err = error_for(tmp_path, "[connection]\nurl = https://x\n")
    assert "line 2" in err.message and "column" in err.message


def test_unknown_tables_and_keys_are_warnings(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path,
        GOOD_CONNECTION
        + """
        colour = "blue"
        [local]
        media_dir = "/m"
        dayz_ahead = 3
        [extras]
        x = 1
        """,
    )
    joined = "\n".join(cfg.warnings)
    assert "[connection] colour" in joined
    assert "[local] dayz_ahead" in joined
    assert "[extras]" in joined
    assert len(cfg.warnings) == 3


# --- validation messages name the key and the fix ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "fix"),
    [
        ('[connection]\nurl = "ftp://x"\nusername="u"\nfolder="/"', "[connection] url", "https://"),
        (
            '[connection]\nurl = "app.koofr.net"\nusername="u"\nfolder="/"',
            "[connection] url",
            "https://app.koofr.net",
        ),
        ('[connection]\nurl = "https://"\nusername="u"\nfolder="/"', "[connection] url", "server name"),
        ('[connection]\nurl = "https://h:99999"\nusername="u"\nfolder="/"', "[connection] url", "port"),
        ('[connection]\nurl = "https://h/?x=1"\nusername="u"\nfolder="/"', "[connection] url", '"?"'),
        ('[connection]\nurl = 5\nusername="u"\nfolder="/"', "[connection] url", "text in quotes"),
        ('[connection]\nusername="u"\nfolder="/"', "[connection] url", "add the server address"),
        ('[connection]\nurl = "https://h"\nfolder="/"', "[connection] username", "user name"),
        ('[connection]\nurl = "https://h"\nusername=""\nfolder="/"', "[connection] username", "is empty"),
        (
            '[connection]\nurl = "https://h"\nusername=3\nfolder="/"',
            "[connection] username",
            "text in quotes",
        ),
        ('[connection]\nurl = "https://h"\nusername="u"', "[connection] folder", "absolute path"),
        (
            '[connection]\nurl = "https://h"\nusername="u"\nfolder="/a/../b"',
            "[connection] folder",
            "full path",
        ),
        ('[connection]\nurl = "https://h"\nusername="u"\nfolder=\'\\dav\\x\'', "[connection] folder", '"/"'),
        (
            '[connection]\nurl = "https://h"\nusername="u"\nfolder="/"\nca_file="missing.pem"',
            "[connection] ca_file",
            "does not exist",
        ),
        (
            '[connection]\nurl = "https://h"\nusername="u"\nfolder="/"\nallow_insecure_loopback="yes"',
            "[connection] allow_insecure_loopback",
            "true or false",
        ),
        (
            '[connection]\nurl = "https://h"\nusername="u"\nfolder="/"\ntimeout_seconds=0',
            "[connection] timeout_seconds",
            "above 0",
        ),
        (
            '[connection]\nurl = "https://h"\nusername="u"\nfolder="/"\ntimeout_seconds="30"',
            "[connection] timeout_seconds",
            "not a number",
        ),
        (
            '[connection]\nurl = "https://h"\nusername="u"\nfolder="/"\nbandwidth_limit_kbps=-1',
            "[connection] bandwidth_limit_kbps",
            "from 0 to",
        ),
        ('connection = "x"', "connection", "[connection]"),
        ('[local]\nlayout = "flat"', "[local] layout", 'layout = "watch"'),
        ("[local]\nmedia_dir = 5", "[local] media_dir", "text in quotes"),
        ("[local]\ndays_ahead = 400", "[local] days_ahead", "from 0 to 366"),
        ("[local]\ndays_ahead = -1", "[local] days_ahead", "from 0 to 366"),
        ('[local]\ndays_ahead = "14"', "[local] days_ahead", "whole number"),
        ("[local]\ndays_ahead = 1.5", "[local] days_ahead", "whole number"),
        ("[local]\ndays_ahead = true", "[local] days_ahead", "whole number"),
        ("[schedule]\npoll_minutes = 0", "[schedule] poll_minutes", "at least 1"),
        ("[schedule]\nbefore_meeting_minutes = 721", "[schedule] before_meeting_minutes", "from 0 to 720"),
        ("[schedule]\nbefore_meeting_minutes = -5", "[schedule] before_meeting_minutes", "from 0 to 720"),
        ('[schedule]\ntimezone = "Mars/Olympus"', "[schedule] timezone", "Europe/Berlin"),
        ('[congregation]\nname = ""', "[congregation] name", "is empty"),
        ('[prefs]\n"meeting.mwDay" = 1\n[prefs.meeting]\nmwDay = 2', "[prefs] meeting.mwDay", "set twice"),
    ],
)
def test_validation_errors_name_the_key_and_the_fix(tmp_path: Path, text: str, key: str, fix: str) -> None:
    err = error_for(tmp_path, text)
    assert err.message.startswith(key), err.message
    assert fix in err.message
    assert err.exit_code == ExitCode.USAGE
    assert "congregation.toml" in err.remedy  # the file to edit


def test_http_is_refused_with_the_brief_message(tmp_path: Path) -> None:
    with pytest.raises(InsecureURLError) as info:
        load_text(tmp_path, '[connection]\nurl = "http://x"\nusername = "u"\nfolder = "/"\n')
    assert info.value.message == '[connection] url: "http://x" is not allowed: use an https:// address'
    assert info.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize(
    ("url", "allow", "expected"),
    [
        ("http://127.0.0.1:8080", True, "http://127.0.0.1:8080"),
        ("http://[::1]:8080", True, "http://[::1]:8080"),
        ("http://localhost:8080", True, "http://localhost:8080"),
        ("http://127.0.0.1:8080", False, "allow_insecure_loopback = true"),  # refused, with the hint
        ("http://example.org", True, "only permits http:// to 127.0.0.1"),  # flag does not help
        ("http://10.0.0.5", True, "only permits http:// to 127.0.0.1"),
    ],
)
def test_http_only_to_loopback_with_the_flag(tmp_path: Path, url: str, allow: bool, expected: str) -> None:
    text = f'[connection]\nurl = "{url}"\nusername = "u"\nfolder = "/"\nallow_insecure_loopback = {str(allow).lower()}\n'
    if expected.startswith("http://"):
        cfg = load_text(tmp_path, text)
        assert cfg.connection is not None and cfg.connection.url == expected
    else:
        with pytest.raises(InsecureURLError) as info:
            load_text(tmp_path, text)
        assert info.value.message.startswith("[connection] url:")
        assert expected in info.value.message


# --- the password is never accepted nor echoed ---------------------------------------------------------

SECRET = "Tr0ub4dor&3-secret"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (GOOD_CONNECTION + f'password = "{SECRET}"\n', "[connection] password"),
        (f'password = "{SECRET}"\n' + GOOD_CONNECTION, "password"),
        (GOOD_CONNECTION + f'app_password = "{SECRET}"\n', "[connection] app_password"),
        (f'[prefs]\n"app.obs.password" = "{SECRET}"\n', "[prefs] app.obs.password"),
        (f'[prefs.app.zoom]\npassword = "{SECRET}"\n', "[prefs] app.zoom.password"),
        (f'[connection]\nPassword = "{SECRET}"\n', "[connection] Password"),
    ],
)
def test_password_in_the_file_is_refused_without_echo(tmp_path: Path, text: str, key: str) -> None:
    err = error_for(tmp_path, text)
    assert err.message.startswith(key + ":")
    assert "keyring" in err.message and "m3daemon setup" in err.message
    assert SECRET not in str(err) and SECRET not in repr(err)


def test_credentials_in_the_url_are_refused_without_echo(tmp_path: Path) -> None:
    err = error_for(
        tmp_path, f'[connection]\nurl = "https://bob:{SECRET}@h.example"\nusername="u"\nfolder="/"\n'
    )
    assert err.message.startswith("[connection] url:")
    assert SECRET not in str(err)


def test_nextcloud_username_with_at_sign_in_the_path_is_fine(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path,
        '[connection]\nurl = "https://cloud.example/remote.php/dav/files/bob@example.org"\nusername="bob@example.org"\n',
    )
    assert cfg.connection is not None
    assert cfg.connection.folder == "/remote.php/dav/files/bob@example.org"


# --- address and folder ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "folder", "want_url", "want_folder"),
    [
        (
            "https://app.koofr.net",
            "/dav/Koofr/Congregation",
            "https://app.koofr.net",
            "/dav/Koofr/Congregation",
        ),
        (
            "HTTPS://App.Koofr.NET/",
            "/dav/Koofr/Congregation/",
            "https://app.koofr.net",
            "/dav/Koofr/Congregation",
        ),
        ("https://h:443", "/", "https://h", "/"),
        ("https://h:8443", "//a//b/", "https://h:8443", "/a/b"),
        # the address carries a path: it is a prefix of the folder unless the folder already starts with it
        (
            "https://c.example/remote.php/dav/files/bob",
            "/Cong",
            "https://c.example",
            "/remote.php/dav/files/bob/Cong",
        ),
        (
            "https://c.example/remote.php/dav/files/bob/",
            "/remote.php/dav/files/bob/Cong",
            "https://c.example",
            "/remote.php/dav/files/bob/Cong",
        ),
        ("https://c.example/dav", "/davx/Cong", "https://c.example", "/dav/davx/Cong"),  # whole segments only
        ("https://c.example/dav", "Cong", "https://c.example", "/dav/Cong"),  # relative folder
        ("https://c.example", "Cong", "https://c.example", "/Cong"),
        (
            "https://c.example/dav/My%20Cong",
            None,
            "https://c.example",
            "/dav/My Cong",
        ),  # no folder: decoded path
        ("https://[2001:db8::1]:8443", "/x", "https://[2001:db8::1]:8443", "/x"),
    ],
)
def test_url_and_folder_normalisation(
    tmp_path: Path, url: str, folder: str | None, want_url: str, want_folder: str
) -> None:
    text = f'[connection]\nurl = "{url}"\nusername = "u"\n'
    if folder is not None:
        text += f'folder = "{folder}"\n'
    cfg = load_text(tmp_path, text)
    assert cfg.connection is not None
    assert (cfg.connection.url, cfg.connection.folder) == (want_url, want_folder)


# --- local paths -----------------------------------------------------------------------------------------


def test_relative_ca_file_is_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg_dir = tmp_path / "cfg"
    (cfg_dir / "certs").mkdir(parents=True)
    (cfg_dir / "certs" / "ca.pem").write_text("x")
    monkeypatch.chdir(tmp_path)  # not the config folder
    cfg = load_text(tmp_path, GOOD_CONNECTION + 'ca_file = "certs/ca.pem"\n')
    assert cfg.connection is not None and cfg.connection.ca_file == cfg_dir / "certs" / "ca.pem"


def test_ca_file_with_tilde(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "ca.pem").write_text("x")
    cfg = load_text(tmp_path, GOOD_CONNECTION + 'ca_file = "~/ca.pem"\n')
    assert cfg.connection is not None and cfg.connection.ca_file == tmp_path / "home" / "ca.pem"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("~/Media", "home/Media"),
        ("media", "cfg/media"),
        ("../media", "media"),
    ],
)
def test_media_dir_is_expanded_and_absolute(tmp_path: Path, raw: str, expected: str) -> None:
    cfg = load_text(tmp_path, f'[local]\nmedia_dir = "{raw}"\n')
    assert cfg.local.media_dir == tmp_path / expected


# --- prefs -------------------------------------------------------------------------------------------------


def test_prefs_nested_and_dotted_are_flattened(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path,
        """
        [prefs]
        "meeting.mwDay" = 1
        "app.outputFolderDateFormat" = "DD-MM-YYYY"
        media.lang = "E"

        [prefs.meeting]
        weDay = 6
        weStartTime = "10:00"

        [prefs.app.zoom]
        enable = false
        """,
    )
    assert cfg.prefs == {
        "meeting.mwDay": 1,
        "app.outputFolderDateFormat": "DD-MM-YYYY",
        "media.lang": "E",
        "meeting.weDay": 6,
        "meeting.weStartTime": "10:00",
        "app.zoom.enable": False,
    }


# --- saving ------------------------------------------------------------------------------------------------


def sample_config(path: Path, media_dir: Path) -> Config:
    return Config(
        path=path,
        connection=ConnectionConfig(
            url="https://app.koofr.net",
            username="av@example.org",
            folder="/dav/Koofr/My Congregation",
            ca_file=path.parent / "ca.pem",
            timeout_seconds=45.5,
        ),
        local=LocalConfig(media_dir=media_dir, layout="classic", days_ahead=21),
        schedule=ScheduleConfig(poll_minutes=15, before_meeting_minutes=90, timezone="America/Chicago"),
        prefs={"meeting.mwDay": 2, "meeting.weStartTime": "10:00", "app.zoom.enable": True},
        name="Springfield North",
    )


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = paths.config_dir() / "hall.toml"
    paths.config_dir(create=True)
    (path.parent / "ca.pem").write_text("x")
    cfg = sample_config(path, tmp_path / "media")
    save_config(cfg)
    assert load_config(path) == cfg
    assert 'ca_file = "ca.pem"' in path.read_text()  # kept relative to the config folder
    save_config(load_config(path))
    assert load_config(path) == cfg


def test_saved_file_is_0600_in_a_0700_folder_without_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "new" / "hall.toml"
    save_config(Config(path, None, LocalConfig(tmp_path / "m"), ScheduleConfig(), {}, "Hall"))
    assert sorted(p.name for p in path.parent.iterdir()) == ["hall.toml"]
    if os.name == "posix":
        assert mode_of(path) == 0o600
        assert mode_of(path.parent) == 0o700
    # an existing file with wider permissions is replaced by a 0600 one
    os.chmod(path, 0o644)
    save_config(load_config(path))
    if os.name == "posix":
        assert mode_of(path) == 0o600


def test_saved_file_has_no_password_and_saving_one_in_prefs_is_refused(tmp_path: Path) -> None:
    cfg = sample_config(tmp_path / "hall.toml", tmp_path / "m")
    (tmp_path / "ca.pem").write_text("x")
    assert "password" not in repr(config_to_dict(cfg)).lower()
    bad = Config(cfg.path, None, cfg.local, cfg.schedule, {"app.obs.password": "s3cret"}, "Hall")
    with pytest.raises(ConfigError) as info:
        save_config(bad)
    assert "s3cret" not in str(info.value)
    assert not bad.path.exists()


def test_none_prefs_and_unset_values_are_left_out(tmp_path: Path) -> None:
    cfg = Config(
        tmp_path / "h.toml",
        None,
        LocalConfig(tmp_path / "m"),
        ScheduleConfig(),
        {"meeting.coWeek": None},
        "H",
    )
    doc = config_to_dict(cfg)
    assert "connection" not in doc and "prefs" not in doc and "timezone" not in doc["schedule"]


# --- one media folder per configuration ---------------------------------------------------------------


def make_config(folder: Path, name: str, media_dir: Path) -> Config:
    path = folder / f"{name}.toml"
    cfg = Config(path, None, LocalConfig(media_dir), ScheduleConfig(), {}, name)
    save_config(cfg)
    return cfg


def test_two_configs_in_the_config_folder_may_not_share_a_media_folder(tmp_path: Path) -> None:
    make_config(paths.config_dir(), "north", tmp_path / "media")
    south = make_config(paths.config_dir(), "south", tmp_path / "media")
    with pytest.raises(ConfigError) as info:
        check_media_dir_unique(south)
    assert info.value.message.startswith("[local] media_dir:")
    assert "north.toml" in info.value.message


@pytest.mark.parametrize(
    ("theirs", "mine", "word"),
    [
        ("media", "media/south", "inside"),
        ("media/north", "media", "contains"),
    ],
)
def test_nested_media_folders_are_refused(tmp_path: Path, theirs: str, mine: str, word: str) -> None:
    make_config(paths.config_dir(), "north", tmp_path / theirs)
    south = make_config(tmp_path / "elsewhere", "south", tmp_path / mine)
    with pytest.raises(ConfigError) as info:
        check_media_dir_unique(south)
    assert word in info.value.message and "north.toml" in info.value.message


def test_registered_config_outside_the_config_folder_counts(tmp_path: Path) -> None:
    north = make_config(tmp_path / "a", "north", tmp_path / "media")
    register_config(north)
    assert mode_of(known_configs_path()) == 0o600 or os.name != "posix"
    south = make_config(tmp_path / "b", "south", tmp_path / "media")
    with pytest.raises(ConfigError) as info:
        check_media_dir_unique(south)
    assert str(north.path) in info.value.message

    north.path.unlink()  # a registered file that is gone no longer counts
    check_media_dir_unique(south)


def test_distinct_media_folders_and_the_config_itself_are_fine(tmp_path: Path) -> None:
    north = make_config(paths.config_dir(), "north", tmp_path / "north")
    register_config(north)
    south = make_config(paths.config_dir(), "south", tmp_path / "south")
    register_config(south)
    check_media_dir_unique(north)
    check_media_dir_unique(south)
    assert load_config(north.path).local.media_dir == tmp_path / "north"
