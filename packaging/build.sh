#!/bin/sh
# Build the program folder dist/m3daemon/ with PyInstaller, smoke-test it, and pack it into one
# archive to hand out: dist/m3daemon-VERSION-SYSTEM-MACHINE.tar.gz (a .zip on Windows).
#
#   packaging/build.sh            # from anywhere; uses python3 (3.11+), or $PYTHON
#
# Linux, macOS, and Windows in Git Bash (the GitHub workflow .github/workflows/desktop.yml). The
# folder holds dist/m3daemon/m3daemon (m3daemon.exe), and m3daemonw.exe on Windows; on macOS this
# script moves PyInstaller's m3daemon.app into it too (see the spec, which says why a folder and
# not one file).
#
# PyInstaller goes into a throw-away venv (never into .venv or the system Python), together with
# m3daemon itself (pip install of this checkout), so the bundle holds exactly the declared
# dependencies. Work files go to build/pyinstaller, the result to dist/ (both git-ignored).
# The smoke test runs `dist/m3daemon demo` (a complete sync against the built-in HTTPS WebDAV
# server) and `server init` + `server user add` (certificates and password hashing) in a temporary
# folder, with HOME and XDG folders pointed there, so nothing of the user's is touched.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/m3daemon-build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

start=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$1" "$(( $(date +%s) - start ))"; }

step "venv and dependencies"
"$PYTHON" -m venv "$TMP/venv"
VPY="$TMP/venv/bin/python"
[ -x "$VPY" ] || VPY="$TMP/venv/Scripts/python.exe"  # Windows
"$VPY" -m pip install --quiet --upgrade pip
# [tray]: PyGObject on Linux (the tray menu; it builds with gcc, pkg-config, libgirepository1.0-dev,
# libcairo2-dev), nothing elsewhere. A build without it still works: its tray icon has no menu.
"$VPY" -m pip install --quiet "$ROOT[tray]" "pyinstaller>=6.10,<7" \
    || "$VPY" -m pip install --quiet "$ROOT" "pyinstaller>=6.10,<7"

step "icon"
"$VPY" packaging/make_icon.py packaging/m3daemon.png

step "pyinstaller"
# what builds before this one made in the folder's place: one file, not a folder
rm -f "$ROOT/dist/m3daemon.exe" "$ROOT/dist/m3daemonw.exe"
[ -d "$ROOT/dist/m3daemon" ] || rm -f "$ROOT/dist/m3daemon"
"$VPY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" packaging/m3daemon.spec
if [ -d "$ROOT/dist/m3daemon.app" ]; then
    # next to the command-line program, where `m3daemon service install` looks for it (the app is
    # whole in itself), and in the archive with it
    rm -rf "$ROOT/dist/m3daemon/m3daemon.app"
    mv "$ROOT/dist/m3daemon.app" "$ROOT/dist/m3daemon/"
fi

step "smoke test"
EXE="$ROOT/dist/m3daemon/m3daemon"
[ -f "$EXE" ] || EXE="$ROOT/dist/m3daemon/m3daemon.exe"
SMOKE="$TMP/smoke"
mkdir -p "$SMOKE/home"
export HOME="$SMOKE/home" XDG_CONFIG_HOME="$SMOKE/home/.config" XDG_STATE_HOME="$SMOKE/home/.local/state" \
       XDG_CACHE_HOME="$SMOKE/home/.cache" XDG_DATA_HOME="$SMOKE/home/.local/share"
unset M3DAEMON_CONFIG M3DAEMON_PASSWORD
"$EXE" --version
"$EXE" demo
"$EXE" server init "$SMOKE/server" >/dev/null
printf 'smoke-test-password\n' | "$EXE" server user add "$SMOKE/server" smoke --role member
"$EXE" server info "$SMOKE/server" --json >/dev/null
[ -f "$ROOT/dist/m3daemon/m3daemonw.exe" ] && echo "windowed: $ROOT/dist/m3daemon/m3daemonw.exe"
if [ -d "$ROOT/dist/m3daemon/m3daemon.app" ]; then
    plutil -extract LSUIElement raw "$ROOT/dist/m3daemon/m3daemon.app/Contents/Info.plist"  # prints true
    "$ROOT/dist/m3daemon/m3daemon.app/Contents/MacOS/m3daemon" --version
fi

step "archive"
# tar keeps the programs' execute bits and _internal's symbolic links; Windows gets a zip, which
# Explorer opens. Its name says what it is for: m3daemon-0.1.0-linux-x86_64.tar.gz.
ARCHIVE=$("$VPY" - "$ROOT/dist" <<'PY'
import platform, sys, tarfile, zipfile
from pathlib import Path
import m3daemon
dist = Path(sys.argv[1])
system, machine = platform.system().lower(), platform.machine().lower()
for old in dist.glob("m3daemon-*-*-*.*"):
    old.unlink()
base = f"m3daemon-{m3daemon.__version__}-{system}-{machine}"
if system == "windows":
    out = dist / f"{base}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for f in sorted((dist / "m3daemon").rglob("*")):
            z.write(f, f.relative_to(dist).as_posix())
else:  # gzip level 6: 19 s here against level 9's 56 s (shutil's), for a 0.4 % larger file
    out = dist / f"{base}.tar.gz"
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(dist / "m3daemon", arcname="m3daemon")
print(out)
PY
)

step "done: $(du -sh "$ROOT/dist/m3daemon" | cut -f1) in $ROOT/dist/m3daemon/, $(du -h "$ARCHIVE" | cut -f1) $ARCHIVE"
