"""The installable builds: the PyInstaller one-file build of Linux runs the demo, and pipx-style
installs carry the package data (service templates)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from onefile import EXE, Build

REPO = Path(__file__).resolve().parent.parent


def test_the_one_file_linux_build_runs_the_demo(one_file_build: Build) -> None:
    proc = one_file_build  # packaging/build.sh, run while the other tests ran (tests/onefile.py)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    exe = EXE
    assert exe.is_file() and os.access(exe, os.X_OK)
    assert "Member's second update: downloaded 0," in proc.stdout
    assert "403 (members may only read)" in proc.stdout
    french = subprocess.run([str(exe), "--lang", "fr", "status", "--help"], capture_output=True, text=True,
                            timeout=120, check=False)
    assert french.returncode == 0 and "utilisation" in french.stdout, french.stdout + french.stderr
    if sys.platform.startswith("linux"):  # the tray menu's typelibs (tests/test_tray_xvfb.py runs the build's tray)
        assert "bundling PyGObject's GTK and AyatanaAppIndicator typelibs" in proc.stdout + proc.stderr


def test_a_wheel_carries_the_service_templates_and_the_compiled_catalogues(tmp_path: Path) -> None:
    import gettext
    import io

    import onefile

    onefile.result()  # the one-file build installs this checkout too: never two setuptools builds in it at once
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
