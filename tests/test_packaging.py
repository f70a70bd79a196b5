"""The installable builds: the PyInstaller build of Linux runs the demo from its folder, and pipx-style
installs carry the package data (service templates)."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tarfile
import zipfile
from datetime import date, timedelta
from pathlib import Path

from conftest import wait_until
from frozen import EXE, Build
from servers import DavServer, make_tree

REPO = Path(__file__).resolve().parent.parent


def test_the_linux_build_runs_the_demo_from_its_folder(frozen_build: Build) -> None:
    proc = frozen_build  # packaging/build.sh, run while the other tests ran (tests/frozen.py)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    exe = EXE
    assert exe.is_file() and os.access(exe, os.X_OK)
    assert (exe.parent / "_internal").is_dir()  # its libraries, beside it: nothing to unpack
    assert "Member's second update: downloaded 0," in proc.stdout
    assert "403 (members may only read)" in proc.stdout
    french = subprocess.run([str(exe), "--lang", "fr", "status", "--help"], capture_output=True, text=True,
                            timeout=120, check=False)
    assert french.returncode == 0 and "utilisation" in french.stdout, french.stdout + french.stderr
    if sys.platform.startswith("linux"):  # the tray menu's typelibs (tests/test_tray_xvfb.py runs the build's tray)
        assert "bundling PyGObject's GTK and AyatanaAppIndicator typelibs" in proc.stdout + proc.stderr


def test_the_running_build_keeps_nothing_in_the_temporary_folder(frozen_build: Build, tmp_path: Path) -> None:
    """A one-file program would unpack itself into TMPDIR/_MEIxxxxxx at every start, and leave
    it there when killed; the folder build runs from where it lies. Checked while it serves."""
    assert frozen_build.returncode == 0, frozen_build.stdout[-3000:] + frozen_build.stderr[-3000:]
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "TEMP": str(temp), "TMP": str(temp), "HOME": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    subprocess.run([str(EXE), "server", "init", str(tmp_path / "srv")], env=env, check=True, capture_output=True,
                   timeout=120)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "server.log"
    with log.open("w") as err:
        server = subprocess.Popen([str(EXE), "-v", "server", "run", str(tmp_path / "srv"), "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
    try:
        # its log line once it listens: all of it has loaded by then
        wait_until("the built server to listen", lambda: server.poll() is not None or "serving" in log.read_text(),
                   60, diagnose=log.read_text)
        assert server.poll() is None, log.read_text()
        assert [p.name for p in temp.iterdir() if p.name.startswith("_MEI")] == []
    finally:
        server.kill()
        server.wait(30)
    assert [p.name for p in temp.iterdir() if p.name.startswith("_MEI")] == []  # killed: nothing left either


def test_the_build_is_handed_out_as_one_archive_of_its_folder(frozen_build: Build) -> None:
    assert frozen_build.returncode == 0, frozen_build.stdout[-3000:] + frozen_build.stderr[-3000:]
    from m3daemon import __version__

    archive = REPO / "dist" / f"m3daemon-{__version__}-{platform.system().lower()}-{platform.machine().lower()}.tar.gz"
    assert archive.is_file(), sorted(p.name for p in (REPO / "dist").iterdir())
    with tarfile.open(archive) as tar:
        program = tar.getmember("m3daemon/m3daemon")
        names = tar.getnames()
    assert program.isfile() and program.mode & 0o111  # it runs where it is unpacked
    assert any(n.startswith("m3daemon/_internal/") for n in names)
    assert len(names) == sum(1 for _ in EXE.parent.rglob("*")) + 1  # the folder, all of it (and itself)


def test_a_wheel_carries_the_service_templates_and_the_compiled_catalogues(tmp_path: Path) -> None:
    import gettext
    import io

    import frozen

    frozen.result()  # the PyInstaller build installs this checkout too: never two setuptools builds in it at once
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("m3daemon-*.whl")
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    assert any(n.startswith("m3daemon/service/templates/") for n in names)
    assert "m3daemon/py.typed" in names
    # the build compiles every catalogue (setup.py); the .mo files are never in git
    shipped = {p.parent.parent.name for p in (REPO / "m3daemon" / "locale").glob("*/LC_MESSAGES/m3daemon.po")}
    compiled = {n.split("/")[2] for n in names if n.endswith("/LC_MESSAGES/m3daemon.mo")}
    assert shipped and compiled == shipped
    french = gettext.GNUTranslations(io.BytesIO(archive.read("m3daemon/locale/fr/LC_MESSAGES/m3daemon.mo")))
    assert french.gettext("usage: ") != "usage: "


def test_the_desktop_entry_runs_without_a_console_and_drops_finders_psn_argument(tmp_path: Path) -> None:
    """m3daemonw.exe and m3daemon.app start entry_desktop.py with no console: sys.stdout and
    sys.stderr are None, and a print would raise. macOS's Finder may add -psn_…"""
    marker = tmp_path / "version.txt"
    code = (
        "import sys, runpy, io\n"
        "sys.stdout = None; sys.stderr = None\n"
        "sys.argv = ['m3daemonw', '-psn_0_123456', '--version']\n"
        "try:\n"
        f"    runpy.run_path({str(REPO / 'packaging' / 'entry_desktop.py')!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        f"    open({str(marker)!r}, 'w').write(repr((exit.code, sys.stdout is not None, sys.stderr is not None)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    # --version ran (the -psn_ argument did not reach argparse); stdout and stderr are writable files
    assert marker.read_text() == "(0, True, True)"


def test_the_build_keeps_the_password_in_gnome_keyring_and_syncs_with_it(
    frozen_build: Build, wsgidav_server: DavServer, secret_service: dict[str, str], isolated_env: Path
) -> None:
    """keyring finds its backends through package metadata and imports them by name, which a
    frozen program has only when the build collected them: the built program, on a desktop
    with GNOME Keyring, stores the password there and a later update reads it back."""
    assert frozen_build.returncode == 0, frozen_build.stdout[-3000:] + frozen_build.stderr[-3000:]
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    make_tree(wsgidav_server.root / "Cong", {f"Media/{tomorrow}/speaker.jpg": b"y" * 100, "forcedPrefs.json": "{}"})
    env = {k: v for k, v in secret_service.items() if k != "PYTHONPATH"}
    media = isolated_env / "media"
    setup = subprocess.run(
        [str(EXE), "setup", "--url", wsgidav_server.url, "--username", wsgidav_server.username, "--folder",
         "/dav/Cong", "--ca-file", str(wsgidav_server.ca_file), "--media-dir", str(media), "--password-stdin"],
        input=wsgidav_server.password + "\n", env=env, capture_output=True, text=True, timeout=120, check=False)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "No system keyring" not in setup.stdout + setup.stderr
    assert not (Path(env["XDG_CONFIG_HOME"]) / "m3daemon" / "secrets.json").exists()
    update = subprocess.run([str(EXE), "update", "--json"], env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert update.returncode == 0, update.stdout + update.stderr
    assert json.loads(update.stdout)["downloaded"] == 1
    assert [p.name for p in media.rglob("*.jpg")] == ["speaker.jpg"]
    places = (Path(env["XDG_CACHE_HOME"]) / "m3daemon" / "password-places.json").read_text()
    assert "keyring.backends.SecretService:Keyring" in places
