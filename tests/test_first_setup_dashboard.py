"""A new A/V computer: the daemon runs before anything is set up, and the member sets up the
connection from the dashboard alone, without `m3daemon setup`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from member import iso
from servers import DavServer, make_tree
from test_daemon import wait_until

from m3daemon.local.paths import config_dir


def m3(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "M3DAEMON_PASSWORD"}
    return subprocess.run([sys.executable, "-m", "m3daemon", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_set_up_a_new_computer_from_the_dashboard(wsgidav_server: DavServer, isolated_env: Path) -> None:
    make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/talk.jpg": b"talk"})
    env = {k: v for k, v in os.environ.items() if k != "M3DAEMON_PASSWORD"}
    proc = subprocess.Popen([sys.executable, "-m", "m3daemon", "run", "--no-tray"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def live() -> dict[str, object] | None:
            out = m3("status", "--json")
            data = json.loads(out.stdout) if out.returncode == 0 else {}
            return data if data.get("daemon") else None

        st = wait_until("the daemon without a congregation", live)
        assert st["state"] == "not-configured"
        assert not (isolated_env / "Documents").exists(), "nothing is written before setup"
        url = m3("dashboard", "--url").stdout.strip()
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(follow_redirects=True, timeout=30) as web:
            page = web.get(url)
            assert page.status_code == 200
            origin = f"{page.url.scheme}://{page.url.netloc.decode()}"
            cid = re.search(r"/c/(\d+)/", page.text).group(1)  # type: ignore[union-attr]
            conn = web.get(f"{origin}/c/{cid}/connection")
            token = re.search(r'name="csrf-token" content="([^"]+)"', conn.text).group(1)  # type: ignore[union-attr]
            saved = web.post(f"{origin}/c/{cid}/connection/save", headers={"Origin": origin}, data={
                "csrf_token": token, "url": wsgidav_server.url, "username": wsgidav_server.username,
                "password": wsgidav_server.password, "folder": "/dav/Cong",
                "ca_file": str(wsgidav_server.ca_file), "media_dir": str(isolated_env / "media"),
            })
            assert saved.status_code == 200, saved.text[-500:]
        assert (config_dir() / "config.toml").exists()
        media = isolated_env / "media" / iso(1) / "talk.jpg"
        wait_until("the first sync after setup", media.exists)
        assert media.read_bytes() == b"talk"
        assert wait_until("up to date", lambda: (s := live()) and s["state"] == "up-to-date")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
