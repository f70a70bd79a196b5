#!/bin/sh
# Install the system packages that the real-server tests need (tests/servers.py):
#   apache2 (mod_dav, mod_dav_fs, mod_ssl, htpasswd via apache2-utils), nginx plus
#   libnginx-mod-http-dav-ext, rclone, lighttpd with lighttpd-mod-webdav and lighttpd-mod-openssl,
#   curl; util-linux provides setpriv (Apache as www-data when the tests run as root). python3
#   and python3-venv let ./dev create its .venv when the machine has no other Python (Debian 12's
#   python3 is 3.11). systemd provides systemd-analyze,
#   which checks the unit that `m3daemon service install` writes (tests/test_service.py; it needs
#   no running systemd).
# The tray tests (tests/test_tray_xvfb.py): xvfb, xdotool, trayer (the system tray), dbus-daemon (a
#   private session bus), and for pystray's menu backends the typelibs gir1.2-gtk-3.0 and
#   gir1.2-ayatanaappindicator3-0.1; pip builds PyGObject (the test extra) with gcc, pkg-config,
#   libgirepository1.0-dev, libcairo2-dev and python3-dev (for Debian's own python3).
# The dashboard tests (tests/test_dashboard_browser.py): chromium, driven by the Python package
#   playwright (the test extra) through executable_path=/usr/bin/chromium, never `playwright
#   install`; fonts-dejavu-core so that its screenshots have readable text.
# The server's standards test (tests/test_litmus.py): litmus, the WebDAV server test suite.
# The password in a real Secret Service (tests/test_keyring_secret_service.py): gnome-keyring, on a
#   private session bus (dbus-daemon).
# The Windows file system tests (tests/fsmounts.py, tests/test_member_windows_fs.py): exfatprogs
#   (mkfs.exfat) and exfat-fuse on a loop device, ntfs-3g (mkntfs, ntfs-3g -o windows_names); this
#   kernel has no vfat/exfat driver, FUSE works (needs /dev/fuse and root).
# The M³ watcher test (tests/test_m3_watcher.py): nodejs with npm, for the npm package chokidar 5
#   (needs Node.js 20.19 or newer: nodesource's nodejs has npm; with Debian's own, npm is separate).
# Debian 12 / Ubuntu. Idempotent: does nothing when everything is already installed.
# Quiet: prints one line, or apt's errors.
#   --missing [build]  installs nothing; prints the missing packages (all, or only those pip needs
#                      to build the test extra), space-separated with a leading space, for ./dev.
#
# The tests start private server instances on random ports, so the system services are not
# wanted. apache2, nginx and lighttpd would each try to start on port 80 during installation (all
# but the first fail, and with them the dpkg run), so a temporary policy-rc.d forbids service starts.
set -eu

BUILD_PACKAGES="gcc pkg-config libgirepository1.0-dev libcairo2-dev python3-dev"
PACKAGES="apache2 apache2-utils nginx libnginx-mod-http-dav-ext rclone lighttpd lighttpd-mod-webdav lighttpd-mod-openssl curl ca-certificates util-linux python3 python3-venv systemd \
xvfb xdotool trayer dbus-daemon gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1 \
$BUILD_PACKAGES \
chromium fonts-dejavu-core \
exfatprogs exfat-fuse ntfs-3g nodejs litmus gnome-keyring"

list_only=no
if [ "${1:-}" = --missing ]; then
    list_only=yes
    if [ "${2:-}" = build ]; then
        PACKAGES="$BUILD_PACKAGES"
    fi
fi

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ "$list_only" = yes ]; then
    printf '%s\n' "$missing"
    exit 0
fi
if [ -z "$missing" ]; then
    echo "system packages already installed:$(printf ' %s' $PACKAGES)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

POLICY=/usr/sbin/policy-rc.d
own_policy=no
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    own_policy=yes
fi
cleanup() {
    if [ "$own_policy" = yes ]; then
        $SUDO rm -f "$POLICY"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# apt's output goes to a log that is shown only when a step fails
log=$(mktemp)
run() {
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "FAILED: $*" >&2
        rm -f "$log"
        exit 1
    fi
}
run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086  # word splitting of $missing is intended
run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Use-Pty=0 $missing
if ! command -v npm >/dev/null 2>&1; then
    run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Use-Pty=0 npm
fi
rm -f "$log"

echo "installed:$missing"
