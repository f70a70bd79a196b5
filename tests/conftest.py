"""Shared pytest fixtures: real WebDAV servers and an isolated environment.

Fixtures
--------
``dav_server``      parametrized over "wsgidav", "apache", "nginx", "rclone", "lighttpd" (those ids).
                    One server per kind for the whole session; before each test its ``root``
                    is emptied and its request log cleared. If a test stopped the server, the
                    next test gets it restarted (same port).
``wsgidav_server``  the same session WsgiDAV server alone, same clean-up (another kind with
                    M3DAEMON_TEST_INSTEAD_OF_WSGIDAV=kind, to look for defects on it).
``dav_server_pool`` the session :class:`servers.ServerPool` (``pool.fresh(kind)``).
``isolated_env``    autouse: HOME and XDG_{CONFIG,DATA,STATE,CACHE}_HOME in a temp dir, no
                    M3DAEMON_CONFIG / M3DAEMON_PASSWORD, keyring forced to the fail backend.

Helpers live in ``tests/servers.py`` (import them with ``from servers import make_tree``):
``make_tree(root, {"a/b.mp4": b"..."})`` writes files straight into a server's root.

``trashed_from(folder)`` (here) lists what the platform's trash holds from below ``folder``.

``frozen_build`` the outcome of packaging/build.sh, built while the other tests run (in CI, or
                    with M3DAEMON_TEST_BUILD=1; else the test skips): tests/frozen.py.
``frozen_program`` dist/m3daemon/m3daemon: that build's, or one already there; else skip (fail in CI).

``secret_service`` a private session bus with an unlocked GNOME Keyring: tests/secretservice.py.

``wait_until(what, check)`` (here; ``from conftest import wait_until``) is the one way a test
waits for something another thread or process makes true: it polls ``check`` until it returns
something true and returns that, or fails naming ``what``. No test sleeps a fixed time where an
event can be awaited.

A server kind whose Debian package is missing is skipped ("needs Debian package apache2"),
or fails when the environment variable CI is "true" (see .ci/install-system-packages.sh).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote

import frozen
import pytest
from fsmounts import windows_volume  # noqa: F401 - exFAT and NTFS volumes (tests/fsmounts.py)
from secretservice import secret_service  # noqa: F401 - GNOME Keyring on a private bus (tests/secretservice.py)
from servers import KINDS, DavServer, ServerPool

T = TypeVar("T")


def wait_until(what: str, check: Callable[[], T], timeout: float = 20.0, every: float = 0.02,
               diagnose: Callable[[], str] = str) -> T:
    """Poll ``check`` (each call is a real observation, not a pause) until it returns something
    true; return that. After ``timeout`` seconds fail with "timed out waiting for <what>" and what
    ``diagnose()`` adds (a log tail, say)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}{diagnose()}", pytrace=False)
        time.sleep(every)


def trash_folder() -> Path:
    """Where Send2Trash puts a file of a test's folder, found the way it finds it: through GIO when
    PyGObject is there (GLib fixes the data folder at its first use in a process, so in a whole test
    run it is the home of the first test that trashed something), else its own Freedesktop code
    (fixed when it is imported)."""
    import send2trash

    if send2trash.send2trash.__module__.endswith("plat_gio"):
        from gi.repository import GLib

        return Path(GLib.get_user_data_dir()) / "Trash"
    from send2trash import plat_other

    return Path(os.fsdecode(plat_other.HOMETRASH))


def trashed_from(folder: Path) -> list[tuple[Path, Path]]:
    """(original path, file in the trash) for each file the trash holds from below ``folder``,
    sorted; the trash is shared by the whole test run, so only the trash info tells whose it is."""
    trash, below = trash_folder(), str(folder.resolve())
    found = []
    for info in sorted((trash / "info").glob("*.trashinfo")):
        original = next((unquote(line[5:]) for line in info.read_text().splitlines() if line.startswith("Path=")), "")
        if original == below or original.startswith(below + os.sep):
            found.append((Path(original), trash / "files" / info.name.removesuffix(".trashinfo")))
    return found


@pytest.fixture(scope="session")
def dav_server_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(tmp_path_factory.mktemp("dav-servers"))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(params=KINDS, ids=list(KINDS))
def dav_server(request: pytest.FixtureRequest, dav_server_pool: ServerPool) -> DavServer:
    return dav_server_pool.fresh(request.param)


@pytest.fixture
def wsgidav_server(dav_server_pool: ServerPool) -> DavServer:
    """WsgiDAV; ``M3DAEMON_TEST_INSTEAD_OF_WSGIDAV=lighttpd`` (any kind) runs the tests written for it
    against another server, to look for defects there: what fails is that server's documented
    difference (tests/servers.py) or a defect."""
    return dav_server_pool.fresh(os.environ.get("M3DAEMON_TEST_INSTEAD_OF_WSGIDAV", "wsgidav"))


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Never touch the real home, config, or keyring. Returns the fake HOME."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    # English unless a test chooses a language: the developer's own locale must not change messages.
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    # A command run in-process sets the process's language (m3daemon.i18n.set_language): put it back.
    from m3daemon import i18n

    monkeypatch.setattr(i18n, "_process_language", i18n.SOURCE_LANGUAGE)
    for var, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        d = home / sub
        d.mkdir(parents=True)
        monkeypatch.setenv(var, str(d))
    runtime = home / "run"  # the dashboard's launch pages
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("M3DAEMON_CONFIG", raising=False)
    monkeypatch.delenv("M3DAEMON_PASSWORD", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    return home


# --- the PyInstaller build (tests/frozen.py) ----------------------------------------------------


def pytest_collection_finish(session: pytest.Session) -> None:
    frozen.start_if_asked([list(getattr(item, "fixturenames", ())) for item in session.items])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    frozen.stop()


@pytest.fixture(scope="session")
def frozen_build() -> frozen.Build:
    build = frozen.result()
    if build is None:
        pytest.skip("builds the PyInstaller program folder (about three minutes): runs in CI, or with M3DAEMON_TEST_BUILD=1")
    return build


@pytest.fixture(scope="session")
def frozen_program() -> Path:
    from servers import skip_or_fail

    build = frozen.result()
    if (build is not None and build.returncode != 0) or not frozen.EXE.is_file():
        skip_or_fail("no PyInstaller build: run packaging/build.sh first (in CI the suite builds it)")
    return frozen.EXE
