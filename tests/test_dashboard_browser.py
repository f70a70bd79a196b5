"""The dashboard in a real browser: Playwright driving Debian's Chromium against the real daemon
and a real WebDAV server.

Covered as a person would do it: set up a connection with a provider preset and the folder
browser; upload a file for a date by drag and drop and see it arrive on a member's computer at its
next update; hide an item; force a setting and see it locked for a member (whose account may only
read, so *Manage media* is read-only); watch the progress of a slowed-down sync; a form on another
site cannot change anything; the pages at a narrow width and with the keyboard.

Each page is photographed into the test's temporary folder, and copied to
``docs/screenshots/dashboard-<page>.png`` when that file is missing or ``M3DAEMON_UPDATE_SCREENSHOTS=1``.

Needs Debian's ``chromium`` (``.ci/install-system-packages.sh``) and the Python package
``playwright`` (the ``test`` extra); ``playwright install`` is never run. Missing either skips
these tests, or fails them under CI=true.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from member import iso
from servers import DavServer, ServerPool, WsgiDavServer, make_tree, skip_or_fail
from test_dashboard import Hall, make_member, png, sample_folder, start_hall, wait_until

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("needs the Python package playwright (pip install -e '.[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        skip_or_fail("needs Debian package chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    context.set_default_timeout(15000)
    pg = context.new_page()
    pg.on("dialog", lambda dialog: dialog.accept())  # "Remove …?" confirmations
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def hall(wsgidav_server: DavServer, isolated_env: Path) -> Iterator[Hall]:
    sample_folder(wsgidav_server.root / "Cong")
    h = start_hall([make_member(wsgidav_server, "coordinator", "North"),
                    make_member(wsgidav_server, "member", "North (A/V member)", readonly=True)])
    try:
        yield h
    finally:
        assert h.stop() == 0


def shoot(page: Any, name: str, tmp_path: Path) -> Path:
    """Screenshot of the whole page; kept in docs/ when missing there or when asked to update."""
    shot = tmp_path / f"dashboard-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    target = SHOTS / shot.name
    if os.environ.get("M3DAEMON_UPDATE_SCREENSHOTS") == "1" or not target.exists():
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
    return shot


def flash(page: Any) -> str:
    text: str = page.locator("#flashes").inner_text()
    return text


def drop_files(page: Any, zone: str, files: dict[str, bytes]) -> None:
    """A real drag and drop: dragenter, dragover and drop with a DataTransfer holding the files."""
    payload = [[name, base64.b64encode(data).decode()] for name, data in files.items()]
    transfer = page.evaluate_handle("""(files) => {
        const dt = new DataTransfer();
        for (const [name, b64] of files) {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            dt.items.add(new File([bytes], name));
        }
        return dt;
    }""", payload)
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event(zone, event, {"dataTransfer": transfer})


# --- the tests -----------------------------------------------------------------------------------


def test_set_up_the_connection_with_a_preset_and_the_folder_browser(
    dav_server_pool: ServerPool, wsgidav_server: DavServer, isolated_env: Path, page: Any, tmp_path: Path,
) -> None:
    """A Nextcloud-like server (WebDAV under /remote.php/dav/files/<user>/): the preset fills the
    folder, the browser walks to the congregation folder, the test passes, save, and it syncs."""

    class NextcloudLike(WsgiDavServer):
        prefix = "/remote.php/dav/files/alice"

    cloud = NextcloudLike(tmp_path / "cloud", dav_server_pool.tls)
    cloud.start()
    try:
        make_tree(cloud.root, {f"Congregation/Media/{iso(2)}/Song.png": png(), "Other/readme.txt": b"x"})
        # This computer starts connected to an old folder that is gone.
        m = make_member(wsgidav_server, "coordinator", "North", folder="/dav/Gone")
        hall = start_hall([m])
        try:
            page.goto(hall.login_url())
            page.wait_for_selector(".badge.state-error")
            # the error's remedy is a button that does it: the folder is gone, so the Connection page
            page.get_by_role("link", name="Open the Connection page…").click()
            page.wait_for_url("**/c/0/connection")
            page.get_by_label("Provider").select_option("nextcloud")
            assert "app password" in page.locator("#provider-note").inner_text()
            page.get_by_label("Server address").fill(cloud.url)
            page.get_by_label("User name").fill("alice")
            assert page.get_by_label("Congregation sync folder").input_value() == "/remote.php/dav/files/alice/"
            page.get_by_label("Password").fill(cloud.password)
            if page.locator("details[open]").count() == 0:  # open when this computer already has a CA file
                page.locator("summary").click()
            page.get_by_label("CA certificate file (PEM) on this computer").fill(str(cloud.ca_file))
            page.get_by_role("button", name="Browse…").click()
            browser_list = page.locator("[data-browser-list]")
            browser_list.get_by_role("button", name="Congregation").click()
            page.wait_for_function("() => document.querySelector('[data-browser-path]').textContent.endsWith('Congregation')")
            browser_list.get_by_role("button", name="Media").wait_for()
            shoot(page, "connection", tmp_path)
            page.get_by_role("button", name="Use this folder").click()
            assert page.get_by_label("Congregation sync folder").input_value() == \
                "/remote.php/dav/files/alice/Congregation"
            page.get_by_role("button", name="Test connection").click()
            page.wait_for_selector("#connection-result .flash-ok")
            assert "Connected" in page.locator("#connection-result").inner_text()
            # a wrong password says exactly what is wrong, and nothing is saved
            page.get_by_label("Password").fill("wrong")
            page.get_by_role("button", name="Test connection").click()
            page.wait_for_selector("#connection-result .flash-error")
            assert "refused the user name or password" in page.locator("#connection-result").inner_text()
            page.get_by_label("Password").fill(cloud.password)
            page.get_by_role("button", name="Save").click()
            page.wait_for_url("**/c/0/status")
            assert "Saved." in flash(page)
            wait_until("the new folder's media", lambda: (m.media / iso(2) / "Song.png").exists())
            saved = m.config_path.read_text()
            assert "/remote.php/dav/files/alice/Congregation" in saved and cloud.password not in saved
            page.wait_for_selector(".badge.state-up-to-date")
        finally:
            assert hall.stop() == 0
    finally:
        cloud.stop()


def test_upload_by_drag_and_drop_reaches_a_member_and_hide_an_item(
    wsgidav_server: DavServer, hall: Hall, page: Any, tmp_path: Path,
) -> None:
    coordinator, av = hall.members
    page.goto(hall.login_url(coordinator))
    shoot(page, "status", tmp_path)
    page.get_by_role("link", name="Manage media").click()
    page.wait_for_selector("text=Media for")
    assert page.locator("tr[data-name='02 - Talk.mp4']").count() == 1  # the first meeting date is chosen
    page.get_by_label("Order prefix (optional)").first.fill("01-05")
    # record the browser-to-daemon progress across the reload that shows the result
    page.evaluate("""() => window.addEventListener('beforeunload', () => sessionStorage.setItem('progress',
        document.querySelector('form[data-upload]').dataset.progress || ''))""")
    big = png(1600, 1200, (20, 140, 90)) + b"\x00" * 2_000_000  # a PNG with trailing bytes: 2 MB to send
    with page.expect_navigation():
        drop_files(page, "form[data-upload] [data-dropzone]", {"Talk outline.png": big})
    assert page.evaluate("sessionStorage.getItem('progress')") == "100"
    assert "Done" in flash(page) and "01-05 - Talk outline.png" in flash(page)
    row = page.locator("tr[data-name='01-05 - Talk outline.png']")
    assert row.count() == 1
    on_server = wsgidav_server.root / "Cong" / "Media" / iso(2) / "01-05 - Talk outline.png"
    assert on_server.read_bytes() == big

    # hide the video on that date
    page.locator("tr[data-name='02 - Talk.mp4']").get_by_role("button", name="Hide 02 - Talk.mp4 on this date").click()
    page.wait_for_selector("tr[data-name='02 - Talk.mp4'].is-hidden")
    assert "hidden" in flash(page)
    assert (wsgidav_server.root / "Cong" / "Hidden" / iso(2) / "02 - Talk.mp4").exists()
    # the congregation folder: the media window's background, and the past date folders
    page.get_by_label("New background image (jpg, png, gif or svg)").set_input_files(
        files=[{"name": "hall.png", "mimeType": "image/png", "buffer": png(colour=(90, 60, 30))}])
    page.get_by_role("button", name="Set the background").click()
    page.wait_for_selector("text=Now: custom-background-image-North.png")
    assert (wsgidav_server.root / "Cong" / "custom-background-image-North.png").exists()
    assert f"Media/{iso(-3)}" in page.locator("section[aria-labelledby='folder-title']").inner_text()
    page.get_by_role("button", name="Remove past date folders").click()
    page.wait_for_selector("text=No past date folders on the server.")
    assert not (wsgidav_server.root / "Cong" / "Media" / iso(-3)).exists()
    assert (wsgidav_server.root / "Cong" / "Media" / iso(2) / "02 - Talk.mp4").exists()
    shoot(page, "manage", tmp_path)

    # the member's computer: its next update brings the new file, and leaves the hidden one out
    page.get_by_label("Congregation", exact=True).select_option(label="North (A/V member)")
    page.wait_for_url(f"**/c/{hall.cid(av)}/manage")
    assert page.get_by_text("Read-only").count() == 1  # bob may only read
    assert "only read" in page.locator(".readonly").inner_text()
    assert page.locator("form[data-upload]").count() == 0
    shoot(page, "manage-readonly", tmp_path)
    page.get_by_role("link", name="Status").click()
    page.get_by_role("button", name="Update media folders now").click()
    wait_until("the upload on the member's computer", lambda: (av.media / iso(2) / "01-05 - Talk outline.png").exists())
    wait_until("the hidden video to go", lambda: not (av.media / iso(2) / "02 - Talk.mp4").exists())
    wait_until("the update to finish", lambda: hall.status(av)["state"] == "up-to-date")
    page.get_by_role("link", name="Upcoming meetings").click()
    item = page.locator("li.item[data-name='01-05 - Talk outline.png']")
    assert "on this computer" in item.inner_text() and "for this date" in item.inner_text()
    page.wait_for_function("""() => { const i = document.querySelector("li.item[data-name='01-05 - Talk outline.png'] img");
        return i && i.complete && i.naturalWidth > 0; }""")
    hidden = page.locator("li.item[data-name='02 - Talk.mp4']")
    assert "hidden" in hidden.inner_text() and hidden.locator("svg.icon-video").count() == 1
    assert "recurring" in page.locator("li.item[data-name='Year text.mp4']").first.inner_text()
    shoot(page, "upcoming", tmp_path)


def test_force_a_setting_and_a_member_sees_it_locked(wsgidav_server: DavServer, hall: Hall, page: Any,
                                                     tmp_path: Path) -> None:
    coordinator, av = hall.members
    page.goto(hall.login_url(coordinator))
    page.get_by_role("link", name="Congregation settings").click()
    row = page.locator("#row-meeting-mwDay")
    row.get_by_label("Midweek meeting day", exact=True).select_option(label="Wednesday")
    row.get_by_role("switch", name="Force Midweek meeting day on every computer").click()
    page.wait_for_selector("#row-meeting-mwDay.forced")
    assert "every computer" in flash(page)
    forced = json.loads((wsgidav_server.root / "Cong" / "forcedPrefs.json").read_text("utf-8"))
    assert forced["meeting"]["mwDay"] == 2
    assert page.locator("#row-meeting-mwDay").get_by_role("switch").get_attribute("aria-checked") == "true"
    shoot(page, "settings", tmp_path)

    page.get_by_label("Congregation", exact=True).select_option(label="North (A/V member)")
    page.wait_for_url(f"**/c/{hall.cid(av)}/settings")
    locked = page.locator("#row-meeting-mwDay")
    assert "Locked by the coordinator" in locked.inner_text()
    assert locked.get_by_label("Midweek meeting day", exact=True).is_disabled()
    assert page.get_by_role("switch").count() == 0  # a read-only account has no force switches
    assert page.locator("#row-meeting-weDay").get_by_label("Weekend meeting day", exact=True).is_enabled()
    # the member may still change its own unlocked settings
    page.locator("#row-media-maxRes").get_by_label("Largest video resolution to download", exact=True).select_option("480p")
    page.locator("#row-media-maxRes").get_by_role("button", name="Save here").click()
    page.wait_for_selector("#flashes .flash-ok")
    assert '"media.maxRes" = "480p"' in av.config_path.read_text() or "maxRes" in av.config_path.read_text()


def test_the_progress_moves_during_a_slow_sync(wsgidav_server: DavServer, isolated_env: Path, page: Any,
                                               tmp_path: Path) -> None:
    sample_folder(wsgidav_server.root / "Cong")
    m = make_member(wsgidav_server, "coordinator", "North")
    hall = start_hall([m], env={"M3DAEMON_DOWNLOAD_LIMIT_BPS": "2000000"})
    try:
        make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(5)}/Circuit overseer.mp4": os.urandom(6_000_000)})
        page.goto(hall.login_url())
        page.get_by_role("button", name="Update media folders now").click()
        page.wait_for_selector(".badge.state-syncing", timeout=10000)
        seen: list[int] = []
        texts: set[str] = set()
        for _ in range(200):
            if page.locator(".badge").inner_text() != "Syncing…":
                break
            value = page.evaluate("document.querySelector('progress[data-live-value]').value")
            seen.append(int(value))
            texts.add(page.locator("[data-live='progress_text']").inner_text())
            if len(set(seen)) == 3:
                shoot(page, "status-syncing", tmp_path)
            page.wait_for_timeout(100)
        page.wait_for_selector(".badge.state-up-to-date", timeout=20000)
        moving = sorted({v for v in seen if 0 < v < 100})
        assert len(moving) >= 2, seen
        assert any("Syncing" in t for t in texts), texts
        assert (m.media / iso(5) / "Circuit overseer.mp4").stat().st_size == 6_000_000
    finally:
        assert hall.stop() == 0


class _Evil(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        body = (f'<form id="f" method="post" action="{self.target}/c/0/pause">'
                '<input name="csrf_token" value="guessed"></form>'
                "<script>document.getElementById('f').submit()</script>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_form_on_another_site_cannot_change_anything(hall: Hall, page: Any) -> None:
    coordinator = hall.members[0]
    page.goto(hall.login_url(coordinator))  # the person is signed in: the cookie is there
    _Evil.target = hall.base()
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        # Another port on 127.0.0.1 is the same "site", so even SameSite lets the cookie through;
        # the origin check and the CSRF token stop it.
        with page.expect_response(lambda r: r.url.endswith("/c/0/pause")) as posted:
            page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
        assert posted.value.status == 403
        page.wait_for_selector("text=did not come from the dashboard")
        assert hall.status(coordinator)["state"] != "paused"
    finally:
        evil.shutdown()


def test_the_launch_page_logs_the_browser_in_once(hall: Hall, page: Any) -> None:
    """What the tray and `m3daemon dashboard` open: a 0600 file that posts a single-use key."""
    m = hall.members[0]
    uri = hall.client(m).call("POST", "dashboard", {"config": str(m.config_path), "page": True})["page"]
    assert uri.startswith("file://")
    page.goto(uri)
    page.wait_for_url(f"{hall.base()}/c/0/status")
    page.wait_for_selector("text=Update media folders now")
    assert not Path(uri.removeprefix("file://")).exists()  # used up, and gone


def test_narrow_window_keyboard_and_logs(hall: Hall, browser: Any, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 800}, accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(hall.login_url(hall.members[0]))
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to the page"
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, overflow
        shoot(page, "status-narrow", tmp_path)
        for other in ("upcoming", "manage", "connection", "settings"):
            page.get_by_role("link", name={"upcoming": "Upcoming meetings", "manage": "Manage media",
                                           "connection": "Connection", "settings": "Congregation settings"}[other]).click()
            page.wait_for_url(f"**/{other}")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (other, overflow)
        # the page tabs are links a keyboard reaches; every field has a label
        page.get_by_role("link", name="Logs").focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**/logs")
        assert "m3daemon is running" in page.locator("pre.log").inner_text()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, ("logs", overflow)  # long paths and log lines wrap at a phone's width
        page.get_by_label("At least").select_option("WARNING")
        page.get_by_role("button", name="Filter").click()
        assert "m3daemon is running" not in (page.locator("pre.log").all_inner_texts() or [""])[0]
        page.get_by_label("At least").select_option("INFO")
        page.get_by_label("Containing").fill("sync")
        page.get_by_role("button", name="Filter").click()
        text = page.locator("pre.log").inner_text()
        assert "sync" in text.lower() and "m3daemon is running" not in text
        with page.expect_download() as dl:
            page.get_by_role("link", name="Download the log").click()
        content = Path(dl.value.path()).read_text()
        assert "m3daemon is running" in content and hall.members[0].password not in content
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select')]
            .filter((el) => !el.labels || el.labels.length === 0).map((el) => el.name)""")
        assert unlabelled == []
        page.set_viewport_size({"width": 1280, "height": 800})
        page.get_by_label("Containing").fill("")
        page.get_by_role("button", name="Filter").click()
        shoot(page, "logs", tmp_path)
    finally:
        context.close()


def test_a_new_computer_is_set_up_from_the_dashboard_with_an_invitation_and_a_pinned_ca(
    isolated_env: Path, page: Any, tmp_path: Path,
) -> None:
    """Nothing set up yet: on the first-time page the member pins the congregation server's CA by its
    fingerprint (one click, never an OpenSSL message), then pastes the coordinator's invitation,
    types only the password and saves; the last message says how to point M³ at the folder."""
    import subprocess
    import sys

    from m3daemon.server import Role, local_server
    from m3daemon.settings.invite import Invitation
    from m3daemon.settings.pinning import fingerprint, load_pem_certs

    env = {k: v for k, v in os.environ.items() if k not in ("M3DAEMON_PASSWORD", "M3DAEMON_CONFIG")}
    with local_server(tmp_path / "server", {"av": ("av-password", Role.MEMBER)}) as srv:
        fp = fingerprint(load_pem_certs(srv.ca_file.read_bytes())[0])
        code = Invitation(url=srv.url, folder=srv.folder, name="Springfield North", ca_sha256=fp,
                          username="av").code()
        proc = subprocess.Popen([sys.executable, "-m", "m3daemon", "run", "--no-tray"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            def login() -> str | None:
                out = subprocess.run([sys.executable, "-m", "m3daemon", "dashboard", "--url"], env=env,
                                     capture_output=True, text=True, timeout=30, check=False)
                return out.stdout.strip() if out.returncode == 0 and out.stdout.startswith("http") else None

            page.goto(wait_until("the dashboard", login))
            page.get_by_role("link", name="Connection", exact=True).click()
            # by hand first: the self-hosted preset, and a certificate this computer does not know
            page.get_by_label("Provider").select_option("self-hosted")
            assert "fingerprint" in page.locator("#provider-note").inner_text()
            page.get_by_label("Server address").fill("http://" + srv.url.removeprefix("https://"))
            assert "https://" in page.locator("#url-hint").inner_text()  # said as it is typed
            page.get_by_label("Server address").fill(srv.url)
            page.get_by_label("User name").fill("av")
            page.get_by_label("Password").fill("av-password")
            page.get_by_label("Congregation sync folder").fill(srv.folder)
            page.get_by_role("button", name="Test connection").click()
            page.wait_for_selector("#connection-result .flash-error")
            said = page.locator("#connection-result").inner_text()
            assert fp in said and "SSL" not in said and "CERTIFICATE_VERIFY" not in said
            shoot(page, "connection-pin", tmp_path)
            page.get_by_role("button", name="It is the same: pin it").click()
            page.wait_for_selector("#connection-result .flash-ok")
            assert "Connected" in page.locator("#connection-result").inner_text()
            # a folder that is not there opens the folder browser one level up, on what was typed
            page.get_by_label("Congregation sync folder").fill("/Nope")
            page.get_by_role("button", name="Test connection").click()
            page.wait_for_selector("#connection-result .flash-error")
            page.wait_for_selector("#folder-browser:not([hidden])")
            page.wait_for_function("() => document.querySelector('[data-browser-path]').textContent === '/'")
            # the folder browser, once open, still shows why it opened
            assert "/Nope" in page.locator("#connection-result .flash-error").inner_text()
            page.get_by_label("Congregation sync folder").fill(srv.folder)

            # the easy way: the invitation fills everything but the password
            page.get_by_role("link", name="Connection", exact=True).click()
            page.get_by_label("Invitation code").fill(code[:20] + code[21:])  # a typo is caught
            page.get_by_role("button", name="Use the invitation").click()
            assert "typo" in flash(page)
            page.get_by_label("Invitation code").fill(code)
            page.get_by_role("button", name="Use the invitation").click()
            assert "Invitation to Springfield North read" in flash(page)
            assert page.get_by_label("Server address").input_value() == srv.url
            assert page.get_by_label("The congregation's name").input_value() == "Springfield North"
            assert page.get_by_label("User name").input_value() == "av"
            shoot(page, "first-setup-invitation", tmp_path)
            page.get_by_label("Password").fill("av-password")
            page.get_by_role("button", name="Save").click()
            page.wait_for_url("**/c/0/status")
            assert "Saved." in flash(page) and "Folder to Watch" in flash(page)
            assert "Springfield North" in page.title()
            page.wait_for_selector(".badge.state-up-to-date")
        finally:
            proc.terminate()
            assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""


def test_what_changed_explains_a_file_sent_to_the_trash_and_an_error_has_the_button_that_fixes_it(
    wsgidav_server: DavServer, hall: Hall, page: Any, tmp_path: Path,
) -> None:
    from m3daemon.settings.config import load_config
    from m3daemon.settings.credentials import store_password

    m = hall.members[0]
    make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(3)}/Notes.png": png()})
    mine = m.media / iso(3) / "Notes.png"
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_bytes(b"my own notes")  # a person's file with the name the congregation's file has
    page.goto(hall.login_url(m))
    page.get_by_role("button", name="Update media folders now").click()
    wait_until("the congregation's file", lambda: mine.exists() and mine.read_bytes() == png())
    page.get_by_role("link", name="What changed").click()
    text = page.locator("main").inner_text()
    assert f"{iso(3)}/Notes.png was moved to the trash: a file of the same name came from the congregation" in text
    shoot(page, "history", tmp_path)

    conn = load_config(m.config_path).connection
    assert conn is not None
    store_password(conn, "not-the-password")  # the account's password was changed on the server
    page.get_by_role("link", name="Status").click()
    page.get_by_role("button", name="Update media folders now").click()
    page.wait_for_selector(".badge.state-error")
    fix = page.get_by_role("link", name="Fix password…")
    fix.wait_for()
    fix.click()
    page.wait_for_url("**/connection")
    store_password(conn, m.password)


def test_the_coordinator_makes_an_invitation_on_the_dashboard(hall: Hall, page: Any, tmp_path: Path) -> None:
    from m3daemon.settings.config import load_config
    from m3daemon.settings.invite import Invitation

    m = hall.members[0]
    page.goto(hall.login_url(m))
    page.get_by_role("link", name="Connection", exact=True).click()
    page.get_by_label("Account the other computer signs in with").fill("av")
    page.get_by_role("button", name="Make an invitation").click()
    code = page.get_by_label("Invitation code to copy").input_value()
    inv = Invitation.from_code(code)
    conn = load_config(m.config_path).connection
    assert conn is not None
    assert (inv.url, inv.folder, inv.name, inv.username, inv.password) == (conn.url, conn.folder, "North", "av", None)
    assert page.locator("[data-invitation] .qr svg").count() == 1
    shoot(page, "invite", tmp_path)
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download the invitation file").click()
    assert json.loads(Path(dl.value.path()).read_text())["code"] == code
    assert dl.value.suggested_filename == "North.m3invite"
