"""A second person on the same computer (another Unix account, here ``nobody``) against the
dashboard and the control port of a running daemon.

The daemon runs as the test's user; the "attacker" runs as ``nobody`` (``setpriv``), with only the
system Python and its standard library. The folders above the daemon's own are opened for others
to traverse during the test (as home folders often are), so only the daemon's own modes protect
its files. The attacker looks for login keys in every process's command line while a browser holds
a launch page, tries a key it saw there after its owner used it, reads the daemon's files, and asks
the dashboard and the control API for pages.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import DavServer
from test_dashboard import Hall, make_member, sample_folder, start_hall

from m3daemon.settings.config import load_config

ATTACKER = r'''
import json, os, sys, urllib.request, urllib.error
base, control_file = sys.argv[1], sys.argv[2]
out = {"uid": os.getuid(), "keys_seen": [], "file_uris_seen": [], "reads": {}, "http": {}}
for pid in os.listdir("/proc"):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    try:
        args = open(f"/proc/{pid}/cmdline", "rb").read().decode("utf-8", "replace").split("\0")
    except OSError:
        continue
    for a in args:
        if a.startswith("http") and "login?key=" in a:
            out["keys_seen"].append(a)
        if a.startswith("file://") and "dashboard-" in a:
            out["file_uris_seen"].append(a)
def read(path):
    try:
        open(path, "rb").read(10)
        return "read"
    except OSError as exc:
        return type(exc).__name__
for uri in out["file_uris_seen"]:
    out["reads"][uri] = read(uri.removeprefix("file://"))
out["reads"]["control"] = read(control_file)
class Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None  # a redirect (a session for a used key) is reported as such
opener = urllib.request.build_opener(Stay)
def get(url, method="GET", data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
for url in out["keys_seen"]:
    out["http"]["seen key " + url.split("key=")[1][:6]] = get(url)
out["http"]["status page"] = get(base + "/c/0/status")
out["http"]["control api"] = get(base + "/api/status")
out["http"]["control api, guessed token"] = get(base + "/api/status", headers={"Authorization": "Bearer guess"})
out["http"]["login without key"] = get(base + "/login", "POST", b"key=", {"Content-Type": "application/x-www-form-urlencoded"})
print(json.dumps(out))
'''


@pytest.fixture
def computer(wsgidav_server: DavServer, isolated_env: Path) -> Iterator[Hall]:
    """The daemon of this computer's user, for a congregation with a coordinator's account."""
    sample_folder(wsgidav_server.root / "Cong")
    h = start_hall([make_member(wsgidav_server, "coordinator", "North")])
    try:
        yield h
    finally:
        assert h.stop() == 0


def _attacker_available() -> str | None:
    if os.name != "posix" or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "runs the second user with setpriv, which needs root"
    if shutil.which("setpriv") is None:
        return "needs setpriv (Debian package util-linux)"
    return None


def _open_for_traversal(paths: list[Path]) -> list[tuple[Path, int]]:
    changed = []
    for path in paths:
        for parent in path.parents:
            mode = stat.S_IMODE(parent.stat().st_mode)
            if not mode & stat.S_IXOTH:
                changed.append((parent, mode))
                parent.chmod(mode | stat.S_IXOTH)
    return changed


def test_another_user_of_the_computer_reaches_nothing(computer: Hall, tmp_path: Path) -> None:
    hall = computer
    reason = _attacker_available()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    m = hall.members[0]
    state_dir = load_config(m.config_path).state_dir
    control_file = state_dir / "daemon.json"
    base = hall.base()

    # The person opens the dashboard: the browser (here a process that just stays) gets a launch page.
    browser, browser_pid = tmp_path / "browser", tmp_path / "browser.pid"
    browser.write_text(f'#!/bin/sh\n"{sys.executable}" -c "import time; time.sleep(60)" "$@" </dev/null >/dev/null 2>&1 &\necho $! > "{browser_pid}"\n')
    browser.chmod(0o755)
    out = subprocess.run([sys.executable, "-m", "m3daemon", "--config", str(m.config_path), "dashboard"],
                         env={**hall.env, "BROWSER": str(browser)}, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    sleepers = [int(browser_pid.read_text())]
    pages = list(Path(hall.env["XDG_RUNTIME_DIR"], "m3daemon").glob("dashboard-*.html"))
    assert len(pages) == 1
    page = pages[0]
    # Someone also used `--url` and started a browser with it by hand; the key is used at once.
    url = hall.cli("dashboard", "--url", m=m).stdout.strip()
    with httpx.Client(trust_env=False) as web:
        assert web.get(url, follow_redirects=False).status_code == 303
    by_hand = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", url])
    sleepers.append(by_hand.pid)
    try:
        for path, want in ((page, 0o600), (control_file, 0o600), (page.parent, 0o700)):
            assert stat.S_IMODE(path.stat().st_mode) == want, path
        changed = _open_for_traversal([page.parent, state_dir])
        try:
            result = subprocess.run(
                ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", "-I", "-c",
                 ATTACKER, base, str(control_file)], capture_output=True, text=True, timeout=60, check=False, cwd="/")
        finally:
            for path, mode in reversed(changed):
                path.chmod(mode)
        assert result.returncode == 0, result.stderr
        seen = json.loads(result.stdout)
    finally:
        for pid in sleepers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        by_hand.wait()
    assert seen["uid"] != 0
    # the launch page's address is visible, but it holds no key and nobody else can open it
    assert seen["file_uris_seen"] == [page.as_uri()]
    assert seen["reads"] == {page.as_uri(): "PermissionError", "control": "PermissionError"}
    # the key started by hand was seen, and is worth nothing: it was used
    assert len(seen["keys_seen"]) == 1 and seen["keys_seen"][0] == url
    assert set(seen["http"].values()) == {403}, seen["http"]
    # while the person's own launch page still logs them in
    key = re.search(r'name="key" value="([^"]+)"', page.read_text())
    assert key
    with httpx.Client(trust_env=False) as web:
        assert web.post(base + "/login", data={"key": key.group(1)}).status_code == 200
        assert web.get(base + "/c/0/status").status_code == 200


SLOW_CLIENTS = r'''
import socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    socks.append(s)
print("open", flush=True)
end = time.monotonic() + 4
n = 0
while time.monotonic() < end:
    for s in socks:
        try:
            s.sendall(f"X-{n}: {n}\r\n".encode())
        except OSError:
            pass
    n += 1
    time.sleep(0.5)
'''


def test_another_user_cannot_stall_the_control_port(computer: Hall) -> None:
    """20 connections from another account that send a request head a line at a time: the
    owner's `status` still answers at once (their heads never reach cheroot's threads)."""
    reason = _attacker_available()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    m = computer.members[0]
    client = computer.client(m)
    port = client.info.port
    slow = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3",
                             "-I", "-c", SLOW_CLIENTS, str(port), "20"], stdout=subprocess.PIPE, text=True, cwd="/")
    try:
        assert slow.stdout is not None and slow.stdout.readline().strip() == "open"
        for _ in range(3):
            started = time.monotonic()
            assert client.call("GET", "status")["congregations"]
            assert time.monotonic() - started < 1.0
    finally:
        slow.wait(30)
