#!/bin/sh
# Build the one-file executable dist/m3daemon with PyInstaller, then smoke-test it.
#
#   packaging/build.sh            # from anywhere; uses python3 (3.11+), or $PYTHON
#
# Linux, macOS, and Windows in Git Bash (the GitHub workflow .github/workflows/desktop.yml). Besides
# dist/m3daemon it makes dist/m3daemonw.exe on Windows and dist/m3daemon.app on macOS (see the spec).
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
"$VPY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" packaging/m3daemon.spec

step "smoke test"
EXE="$ROOT/dist/m3daemon"
[ -x "$EXE" ] || EXE="$ROOT/dist/m3daemon.exe"
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
[ -f "$ROOT/dist/m3daemonw.exe" ] && echo "windowed: $ROOT/dist/m3daemonw.exe"
if [ -d "$ROOT/dist/m3daemon.app" ]; then
    plutil -extract LSUIElement raw "$ROOT/dist/m3daemon.app/Contents/Info.plist"  # prints true
    "$ROOT/dist/m3daemon.app/Contents/MacOS/m3daemon" --version
fi

step "done: $(du -h "$EXE" | cut -f1) $EXE"
