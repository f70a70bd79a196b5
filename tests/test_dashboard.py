"""The dashboard's gatekeeping, against the real daemon (`m3daemon run --all --no-tray`) and a real
WebDAV server: the key, the session cookie, CSRF and origin checks, the Host check, the safe image
route, and `m3daemon dashboard`.

The browser tests (tests/test_dashboard_browser.py) use :func:`start_hall` from here: one computer
with two configurations on one congregation folder, the coordinator's account (may write) and a
member's (may only read).
"""

from __future__ import annotations

import io
import os
import re
import signal
import stat
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import wait_until
from dashhelpers import csrf_of
from member import Member, day, iso
from servers import DavServer, make_tree

from m3daemon.daemon.control import ControlClient
from m3daemon.dashboard.security import KEY_SECONDS, MAX_KEYS, Guard, LoginKeys
from m3daemon.local.paths import config_dir
from m3daemon.settings.config import load_config
from m3daemon.settings.credentials import store_password

FOLDER = "/dav/Cong"


def png(width: int = 320, height: int = 240, colour: tuple[int, int, int] = (40, 110, 200)) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), colour)
    draw = ImageDraw.Draw(img)
    draw.ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(250, 250, 250))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def meeting_prefs() -> dict[str, Any]:
    """Meetings in 2 and 5 days, so the pages have meeting dates to show."""
    return {"meeting": {"mwDay": day(2).weekday(), "mwStartTime": "19:00",
                        "weDay": day(5).weekday(), "weStartTime": "10:00"}}


def sample_folder(root: Path) -> None:
    make_tree(root, {
        f"Media/{iso(2)}/01 - Outline.png": png(),
        f"Media/{iso(2)}/02 - Talk.mp4": b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000),
        "Media/Recurring/Year text.mp4": b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000),
        f"Media/{iso(-3)}/Last week.png": png(),  # past: only the coordinator's prune touches it
    })


@dataclass
class Hall:
    """A Kingdom Hall computer running one daemon for several configurations."""

    members: list[Member]
    proc: subprocess.Popen[str]
    env: dict[str, str]
    clients: dict[str, ControlClient] = field(default_factory=dict)

    def client(self, m: Member) -> ControlClient:
        key = str(m.config_path)
        if key not in self.clients:
            client = ControlClient.connect(load_config(m.config_path).state_dir)
            assert client is not None
            self.clients[key] = client
        return self.clients[key]

    def status(self, m: Member) -> dict[str, Any]:
        live = self.client(m).call("GET", "status")
        found: dict[str, Any] = next(c for c in live["congregations"] if c["config"] == str(m.config_path))
        return found

    def login_url(self, m: Member | None = None) -> str:
        m = m or self.members[0]
        url: str = self.client(m).call("POST", "dashboard", {"config": str(m.config_path)})["url"]
        return url

    def cid(self, m: Member) -> int:
        found = re.search(r"[?&]c=(\d+)", self.login_url(m))
        return int(found.group(1)) if found else 0

    def base(self) -> str:
        return self.login_url().split("/login")[0]

    def cli(self, *args: str, m: Member | None = None) -> subprocess.CompletedProcess[str]:
        m = m or self.members[0]
        return subprocess.run([sys.executable, "-m", "m3daemon", "--config", str(m.config_path), *args],
                              env=self.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                              check=False)

    def stop(self) -> int:
        for c in self.clients.values():
            c.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def make_member(server: DavServer, name: str, display: str, *, readonly: bool = False,
                folder: str = FOLDER) -> Member:
    username = server.readonly_username if readonly else server.username
    password = server.readonly_password if readonly else server.password
    assert username and password
    m = Member.create(config_dir(create=True), server.url, folder, username, password, server.ca_file,
                      name=name, prefs=meeting_prefs())
    m.config_path.write_text(f'[congregation]\nname = "{display}"\n' + m.config_path.read_text())
    conn = load_config(m.config_path).connection
    assert conn is not None
    store_password(conn, password)
    return m


def start_hall(members: list[Member], env: dict[str, str] | None = None, settle: bool = True) -> Hall:
    full = {k: v for k, v in os.environ.items() if k not in ("M3DAEMON_PASSWORD", "M3DAEMON_CONFIG")}
    full.update({"M3DAEMON_OFFLINE_BACKOFF": "0.5", **(env or {})})
    proc = subprocess.Popen([sys.executable, "-m", "m3daemon", "run", "--all", "--no-tray"], env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    hall = Hall(members, proc, full)

    def answering() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            for m in members:
                hall.client(m)
            return True
        except AssertionError:
            return False

    try:
        wait_until("the daemon to answer", answering)
        if settle:
            for m in members:
                wait_until(f"{m.config_path.stem}'s first sync",
                           lambda m=m: hall.status(m)["state"] in ("up-to-date", "error", "offline"))
    except BaseException:
        hall.stop()  # a daemon that never became ready is not left running after the test
        raise
    return hall


@pytest.fixture
def hall(wsgidav_server: DavServer, isolated_env: Path) -> Iterator[Hall]:
    sample_folder(wsgidav_server.root / "Cong")
    coordinator = make_member(wsgidav_server, "coordinator", "North")
    av = make_member(wsgidav_server, "member", "North (A/V member)", readonly=True)
    h = start_hall([coordinator, av])
    try:
        yield h
    finally:
        assert h.stop() == 0


def test_the_key_the_cookie_and_every_change_are_checked(hall: Hall) -> None:
    base = hall.base()
    origin = base
    with httpx.Client(base_url=base, trust_env=False, follow_redirects=False) as web:
        # no key, no page; a wrong key gives no session
        assert web.get("/c/0/status").status_code == 403
        assert web.get("/").status_code == 403
        assert web.get("/login?key=wrong").status_code == 403
        assert not web.cookies
        # the right key: a session cookie, HttpOnly, SameSite=Strict, Path=/, and the key leaves the URL
        resp = web.get(hall.login_url().removeprefix(base))
        assert resp.status_code == 303 and resp.headers["location"] == "/c/0/status"
        cookie = resp.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        page = web.get("/c/0/status")
        assert page.status_code == 200 and "Update media folders now" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
        token = csrf_of(page.text)

        # a change without the CSRF token, with a foreign origin, or with no origin at all: refused
        assert web.post("/c/0/pause", headers={"Origin": origin}).status_code == 403
        assert web.post("/c/0/pause", data={"csrf_token": "guess"}, headers={"Origin": origin}).status_code == 403
        assert web.post("/c/0/pause", data={"csrf_token": token},
                        headers={"Origin": "http://evil.example"}).status_code == 403
        assert web.post("/c/0/pause", data={"csrf_token": token},
                        headers={"Referer": "http://127.0.0.1:1/c/0/status"}).status_code == 403
        assert web.post("/c/0/pause", data={"csrf_token": token}).status_code == 403
        assert hall.status(hall.members[0])["state"] != "paused"
        # the real thing: token and origin (or a same-origin Referer), form field or header
        ok = web.post("/c/0/pause", data={"csrf_token": token}, headers={"Origin": origin})
        assert ok.status_code == 303, ok.text
        assert hall.status(hall.members[0])["state"] == "paused"
        ok = web.post("/c/0/resume", headers={"X-CSRF-Token": token, "Referer": origin + "/c/0/status",
                                              "X-Requested-With": "m3daemon"})
        assert ok.status_code == 200 and ok.json()["ok"] is True
        assert hall.status(hall.members[0])["state"] != "paused"

        # DNS rebinding: a page under another host name reaching the port is refused, session or not
        assert web.get("/c/0/status", headers={"Host": f"evil.example:{base.rsplit(':', 1)[1]}"}).status_code == 403
        # the control API still wants its own bearer token, not the dashboard cookie
        assert web.get("/api/status").status_code == 403
        # live status for the script
        live = web.get("/c/0/status.json").json()
        assert live["state"] in ("up-to-date", "syncing") and "progress_text" in live


def test_images_come_only_from_inside_the_media_folder(hall: Hall, tmp_path: Path) -> None:
    coordinator = hall.members[0]
    wait_until("the sample image", lambda: (coordinator.media / iso(2) / "01 - Outline.png").exists())
    secret = tmp_path / "secret.png"
    secret.write_bytes(png(colour=(200, 0, 0)))
    (coordinator.media / iso(2) / "link.png").symlink_to(secret)
    base = hall.base()
    with httpx.Client(base_url=base, trust_env=False) as web:
        web.get(hall.login_url().removeprefix(base))
        good = web.get(f"/c/0/thumb/{iso(2)}/01 - Outline.png")
        assert good.status_code == 200 and good.headers["content-type"] == "image/jpeg"
        assert good.content[:3] == b"\xff\xd8\xff"
        for bad in (f"/c/0/thumb/{iso(2)}/link.png",  # a symbolic link out of the media folder
                    f"/c/0/thumb/{iso(2)}/..%2F..%2Fsecret.png", f"/c/0/thumb/{iso(2)}/..",
                    f"/c/0/thumb/{iso(2)}/%2E%2E%5Csecret.png", "/c/0/thumb/not-a-date/01 - Outline.png",
                    f"/c/0/thumb/{iso(2)}/02 - Talk.mp4", f"/c/0/thumb/{iso(2)}/missing.png",
                    f"/c/9/thumb/{iso(2)}/01 - Outline.png"):
            assert web.get(bad).status_code == 404, bad


def _rss_mib(pid: int, field: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert found, text
    return int(found.group(1)) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the daemon's memory from /proc (Linux)")
def test_a_huge_image_gets_a_placeholder_and_the_daemon_stays_small(hall: Hall) -> None:
    """A 13000×13000 PNG (small on disk, 169 megapixels) is refused from its header: the preview is
    a placeholder saying why, and the daemon's peak memory does not grow by the decoded size."""
    from PIL import Image

    coordinator = hall.members[0]
    folder = coordinator.media / iso(2)
    wait_until("the sample image", lambda: (folder / "01 - Outline.png").exists())
    Image.new("1", (13000, 13000)).save(folder / "huge.png", optimize=True)
    assert (folder / "huge.png").stat().st_size < 1_000_000
    base = hall.base()
    with httpx.Client(base_url=base, trust_env=False, timeout=30) as web:
        web.get(hall.login_url().removeprefix(base))
        assert web.get(f"/c/0/thumb/{iso(2)}/01 - Outline.png").status_code == 200  # Pillow is loaded
        before = _rss_mib(hall.proc.pid, "VmHWM")
        replies = [web.get(f"/c/0/thumb/{iso(2)}/huge.png") for _ in range(3)]
        peak = _rss_mib(hall.proc.pid, "VmHWM")
    for resp in replies:
        assert resp.status_code == 200 and resp.headers["x-preview"] == "too-large"
        assert resp.headers["content-type"] == "image/svg+xml" and "Too large to preview (169 megapixels)" in resp.text
    assert peak - before < 50, f"peak memory grew from {before:.0f} to {peak:.0f} MiB"


def test_previews_are_made_a_few_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every slot taken, a preview waits a moment and then says "busy" (the page asks again)."""
    from m3daemon.dashboard import thumbs

    monkeypatch.setattr(thumbs, "WAIT_SECONDS", 0.05)
    source = tmp_path / "slide.png"
    source.write_bytes(png())
    previews = thumbs.Thumbnails(tmp_path / "cache", parallel=1)
    assert previews._slots.acquire(timeout=1)  # another preview is being made
    try:
        assert previews.preview(source).state is thumbs.PreviewState.BUSY
    finally:
        previews._slots.release()
    made = previews.preview(source)
    assert made.state is thumbs.PreviewState.OK and made.data[:3] == b"\xff\xd8\xff"


def test_the_dashboard_command(hall: Hall) -> None:
    out = hall.cli("dashboard", "--url", m=hall.members[1])
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/login\?key=[\w-]{20,}&c=1", url), url
    assert "once, within a minute" in out.stderr
    with httpx.Client(trust_env=False) as web:
        assert web.get(url, follow_redirects=False).headers["location"] == "/c/1/status"
    with httpx.Client(trust_env=False) as web:  # a second time: refused, and says why
        again = web.get(url, follow_redirects=False)
        assert again.status_code == 403 and "works once" in again.text and not web.cookies


def test_the_dashboard_command_opens_a_private_launch_page(hall: Hall, tmp_path: Path) -> None:
    """The browser is started with a file (0600) that posts the key: no key on its command line."""
    seen = tmp_path / "browser-args"
    browser = tmp_path / "browser"
    browser.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {seen}\n")
    browser.chmod(0o755)
    out = subprocess.run([sys.executable, "-m", "m3daemon", "--config", str(hall.members[0].config_path),
                          "dashboard"], env={**hall.env, "BROWSER": str(browser)}, capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    assert out.returncode == 0, out.stderr
    assert "open in your browser" in out.stdout
    arg = seen.read_text().strip()
    assert arg.startswith("file://") and "key" not in arg, arg
    page = Path(urllib.parse.urlsplit(arg).path)
    assert stat.S_IMODE(page.stat().st_mode) == 0o600 and stat.S_IMODE(page.parent.stat().st_mode) == 0o700
    form = page.read_text()
    key = re.search(r'name="key" value="([^"]+)"', form)
    action = re.search(r'action="([^"]+)"', form)
    assert key and action and 'method="post"' in form
    with httpx.Client(trust_env=False) as web:  # what the browser does with the page
        resp = web.post(action.group(1), data={"key": key.group(1)}, headers={"Origin": "null"})
        assert resp.status_code == 200 and 'http-equiv="refresh"' in resp.text
        assert web.get(action.group(1).removesuffix("/login") + "/c/0/status").status_code == 200
    assert not page.exists()  # used: gone


def test_the_dashboard_command_without_a_daemon(wsgidav_server: DavServer, isolated_env: Path) -> None:
    m = make_member(wsgidav_server, "lonely", "Lonely")
    out = subprocess.run([sys.executable, "-m", "m3daemon", "--config", str(m.config_path), "dashboard"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2
    assert "not running" in out.stderr and "m3daemon run" in out.stderr


def test_login_keys_work_once_and_for_a_minute() -> None:
    now = [1000.0]
    keys = LoginKeys(clock=lambda: now[0])
    first, second = keys.issue(), keys.issue()
    assert first != second and len(first) >= 40
    assert keys.consume(first) == first and keys.consume(first) is None  # once
    assert keys.consume(first[:-1]) is None and keys.consume(None) is None and keys.consume("") is None
    now[0] += KEY_SECONDS + 0.1
    assert keys.consume(second) is None  # too late
    outstanding = [keys.issue() for _ in range(MAX_KEYS + 1)]
    assert keys.consume(outstanding[0]) is None and keys.consume(outstanding[-1]) == outstanding[-1]


def test_origin_and_host_rules() -> None:
    guard = Guard()
    guard.bind("127.0.0.1", 8123)
    assert guard.host_ok("127.0.0.1:8123") and guard.host_ok("localhost:8123") and guard.host_ok("[::1]:8123")
    assert not guard.host_ok("127.0.0.1:8124") and not guard.host_ok("evil.example:8123")
    assert guard.origin_ok("http://localhost:8123", None)
    assert not guard.origin_ok("http://127.0.0.1:8124", None) and not guard.origin_ok("null", None)
    assert guard.origin_ok(None, "http://127.0.0.1:8123/c/0/status")
    assert not guard.origin_ok(None, "http://127.0.0.1:8123.evil.example/") and not guard.origin_ok(None, None)
    key = guard.keys.issue()
    assert guard.use_key(key) == key and guard.use_key(key) is None
    assert guard.peer_ok({"REMOTE_ADDR": "::1"}) and not guard.peer_ok({"REMOTE_ADDR": "192.0.2.1"})
    assert guard.cookie_name == "m3daemon_dashboard_8123"


def test_the_last_result_tells_files_that_moved_from_files_removed() -> None:
    from m3daemon.dashboard.views_status import result_summary

    moved = {"downloaded": 0, "copied": 1, "removed": 1, "moved": 3, "unchanged": 0, "hidden": 0, "failed": 0}
    assert result_summary(moved) == (
        "0 downloaded, 1 copied, 1 removed, 0 unchanged, 0 hidden, 0 failed. "
        "3 files were moved to their new names on this computer; they were not downloaded again.")
    assert result_summary({**moved, "moved": 0}) == "0 downloaded, 1 copied, 1 removed, 0 unchanged, 0 hidden, 0 failed"


def test_the_last_result_ends_its_counts_as_the_language_ends_a_sentence() -> None:
    from m3daemon.dashboard.views_status import result_summary
    from m3daemon.i18n import use_language

    moved = {"downloaded": 2, "copied": 0, "removed": 0, "moved": 3, "unchanged": 5, "hidden": 0, "failed": 0}
    with use_language("ja"):
        text = result_summary(moved)
    assert text.startswith("ダウンロード 2、") and "失敗 0。3 個のファイル" in text and ". " not in text
