"""The tray with a real pystray backend on a real X server: Xvfb, a session D-Bus, and trayer as
the system tray (XEMBED).

The tray runs in a subprocess (pystray chooses its backend when imported, so DISPLAY and the bus
must be set before that), with a fake DaemonControl whose ``update_now`` writes a marker file,
turns the congregation to "syncing" until the test says so, then back to "up to date".

* ``appindicator`` (what ``run_tray`` picks first when PyGObject is there): with no
  StatusNotifier host it falls back to an XEMBED icon. It has no default action: a left click
  opens the menu, and the keyboard chooses its first item, *Update media folders now*.
* ``gtk``: a left click is the default action, *Update media folders now*.

Both check the icon on the screen: green (up to date) → blue (syncing) → green, by reading
pixels of the icon's window. The app's pystray Icon is instrumented: its ``run()`` and every
icon, title, menu, visibility, notification and stop call must happen on the main thread (what
macOS requires; see m3daemon/tray/loop.py), for gtk, appindicator and xorg, and through SIGTERM,
the menu's Quit, and ``m3daemon quit`` to the real daemon. The appindicator run saves a screenshot of the open menu; with
``M3DAEMON_UPDATE_SCREENSHOTS=1`` it is copied to ``docs/screenshots/tray-menu.png``.

Needs the Debian packages xvfb, xdotool, trayer, dbus-daemon, gir1.2-gtk-3.0,
gir1.2-ayatanaappindicator3-0.1, and PyGObject in the venv (the ``test`` extra). A missing one
skips the tests, or fails them under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until
from servers import skip_or_fail

from m3daemon.engine.status import SyncState
from m3daemon.tray.icons import STATE_COLOURS

REPO = Path(__file__).resolve().parent.parent
SCREENSHOT = REPO / "docs" / "screenshots" / "tray-menu.png"

TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool", "trayer": "trayer", "dbus-daemon": "dbus-daemon"}

# The tray app, run as `python APP WORKDIR`. Files in WORKDIR: "backend" (written once the icon
# is up), "icon" (the state it drew last), "update_now" (marker), "threads" (the pystray calls
# and whether each ran on the main thread); the test creates "release" (end the sync), "update"
# (update now, from another thread) and "stop" (stop the tray and exit).
APP = textwrap.dedent('''
    import json, logging, os, signal, sys, threading, time
    from dataclasses import replace
    from datetime import datetime, timedelta, timezone
    from pathlib import Path

    from m3daemon.engine.status import CongregationStatus, ProgressView, SyncState
    from m3daemon.tray import run_tray

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    work = Path(sys.argv[1])

    def put(name, text):
        tmp = work / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(work / name)

    class Control:
        def __init__(self):
            self.lock = threading.Lock()
            self.tray = None
            self.st = CongregationStatus(
                name="East", config=str(work / "east.toml"), state=SyncState.UP_TO_DATE, media_dir=str(work),
                last_sync=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                next_meeting=(datetime.now().astimezone() + timedelta(days=2)).replace(
                    hour=19, minute=0, second=0, microsecond=0).isoformat())

        def statuses(self):
            with self.lock:
                return [self.st]

        def _set(self, **changes):
            with self.lock:
                self.st = replace(self.st, **changes)
            self.tray.refresh()

        def update_now(self, name=None):
            put("update_now", repr(name))
            threading.Thread(target=self._sync, daemon=True).start()

        def _sync(self):
            self._set(state=SyncState.SYNCING, progress=ProgressView(3, 10, 30, 100))
            deadline = time.monotonic() + 30
            while not (work / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            self._set(state=SyncState.UP_TO_DATE, progress=ProgressView(),
                      last_sync=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            self.tray.notify("Media ready for the meeting", "East: the media folders are up to date.")

        def pause(self, name=None): put("pause", repr(name))
        def resume(self, name=None): put("resume", repr(name))
        def quit(self): put("stop", "quit")
        def dashboard_url(self): return None
        def dashboard_launch(self, cid=None): return None

    # Instrumented pystray: which thread runs the loop and each icon/menu change (file "threads").
    import pystray
    from m3daemon.tray.backends import import_pystray as _import_pystray
    calls = []
    main = threading.main_thread()

    def noted(what, func):
        def inner(self, *args, **kwargs):
            calls.append((what, threading.current_thread() is main, threading.current_thread().name))
            return func(self, *args, **kwargs)
        return inner

    backend = os.environ["PYSTRAY_BACKEND"]
    Icon = _import_pystray(backend).Icon
    for name in ("run", "stop", "notify", "update_menu"):
        setattr(Icon, name, noted(name, getattr(Icon, name)))
    for name in ("icon", "title", "menu", "visible"):
        prop = getattr(Icon, name)
        setattr(Icon, name, property(prop.fget, noted(name, prop.fset)))
    import m3daemon.tray as _tray
    _refresh = _tray.refresh_open_menu

    def refresh_open_menu(*args):
        refreshed = _refresh(*args)
        if refreshed:
            calls.append(("refresh_open_menu", threading.current_thread() is main, threading.current_thread().name))
        return refreshed
    _tray.refresh_open_menu = refresh_open_menu

    control = Control()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    def ready(tray):
        control.tray = tray
        tray.on_icon_change = lambda state, percent: put("icon", f"{state.value} {percent}")
        state, percent = tray.icon_state
        put("icon", f"{state.value} {percent}")
        put("backend", tray.backend)

    def watch_stop_file():  # like the control API's `quit`: another thread sets stop
        while not (work / "stop").exists() and not stop.is_set():
            if (work / "update").exists():  # like the control API's `update`
                (work / "update").unlink()
                control.update_now()
            time.sleep(0.02)
        stop.set()

    threading.Thread(target=watch_stop_file, daemon=True).start()
    threading.Thread(target=lambda: stop.wait(60) or stop.set(), daemon=True).start()
    shown = run_tray(control, stop, on_ready=ready)
    put("threads", json.dumps(calls))
    if not shown:
        put("backend", "none")
        sys.exit(3)
    print("stopped", flush=True)
''')


def _stop(proc: subprocess.Popen[Any] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(3)


def _check_requirements() -> None:
    missing = [f"{tool} (Debian package {pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        skip_or_fail("the tray test needs " + ", ".join(missing))
    probe = subprocess.run(
        [sys.executable, "-c",
         "import gi; gi.require_version('Gtk', '3.0'); gi.require_version('AyatanaAppIndicator3', '0.1')"],
        capture_output=True, text=True, timeout=30, check=False)
    if probe.returncode != 0:
        skip_or_fail("the tray test needs PyGObject in the venv (pip install 'PyGObject<3.51', which builds "
                     "with the Debian packages libgirepository1.0-dev libcairo2-dev pkg-config) and the Debian "
                     "packages gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1: "
                     + (probe.stderr.strip().splitlines() or ["?"])[-1])
    try:
        import Xlib.display  # noqa: F401 - python-xlib comes with pystray
    except ImportError:
        skip_or_fail("the tray test needs python-xlib (a dependency of pystray)")


@dataclass
class XSession:
    display: str
    env: dict[str, str]
    xlib: Any  # Xlib.display.Display, for reading pixels

    def grab(self, x: int, y: int, w: int, h: int) -> Any:
        from PIL import Image
        from Xlib import X

        raw = self.xlib.screen().root.get_image(x, y, w, h, X.ZPixmap, 0xFFFFFFFF)
        return Image.frombytes("RGB", (w, h), raw.data, "raw", "BGRX")

    def xdotool(self, *args: str) -> str:
        out = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=10,
                             check=False)
        return out.stdout

    def tray_icons(self) -> list[tuple[int, int, int, int]]:
        """(x, y, w, h) on the screen of each docked m3daemon icon (its WM_CLASS contains "m3daemon")."""
        icons = []
        for wid in self.xdotool("search", "--onlyvisible", "--class", "m3daemon").split():
            shell = self.xdotool("getwindowgeometry", "--shell", wid)
            g = dict(line.split("=", 1) for line in shell.split() if "=" in line)
            x, y, w, h = (int(g[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
            if 16 <= w <= 64 and 16 <= h <= 64 and y < 40:  # the tray icon, not a menu
                icons.append((x, y, w, h))
        return icons

    def wait_tray_empty(self) -> None:
        """Before an app starts: the last test's icon may still be docked for a moment, and a probe
        would read its colour instead of the new app's."""
        wait_until("the last test's tray icon to go away", lambda: not self.tray_icons(), 10)

    def visible_toplevels(self) -> dict[int, tuple[int, int, int, int]]:
        """Mapped children of the root window: id → (x, y, w, h)."""
        from Xlib import X
        from Xlib.error import XError

        result = {}
        for win in self.xlib.screen().root.query_tree().children:
            try:
                attrs = win.get_attributes()
                if attrs.map_state != X.IsViewable:
                    continue
                g = win.get_geometry()
            except XError:  # the window went away meanwhile
                continue
            result[win.id] = (g.x, g.y, g.width, g.height)
        return result


@pytest.fixture(scope="module")
def xsession(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XSession]:
    """Xvfb on a free display, a private session bus, and trayer as the tray; all killed at the end."""
    _check_requirements()
    import Xlib.display

    procs: list[subprocess.Popen[Any]] = []
    xlib = None
    logs = tmp_path_factory.mktemp("xsession")
    try:
        # Xvfb chooses a free display itself and writes its number to the pipe once it accepts clients
        read_fd, write_fd = os.pipe()
        xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-nolisten", "tcp", "-screen", "0", "480x320x24"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=(logs / "xvfb.log").open("w"),
            start_new_session=True)
        procs.append(xvfb)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            pytest.fail(f"Xvfb did not start: {(logs / 'xvfb.log').read_text()[-500:]}", pytrace=False)
        display = f":{number}"

        bus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
            stdout=subprocess.PIPE, stderr=(logs / "dbus.log").open("w"), text=True, start_new_session=True)
        procs.append(bus)
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        if not address:
            pytest.fail(f"dbus-daemon did not start: {(logs / 'dbus.log').read_text()[-500:]}", pytrace=False)

        env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "PYSTRAY_BACKEND")}
        env.update(DISPLAY=display, DBUS_SESSION_BUS_ADDRESS=address, GDK_BACKEND="x11", NO_AT_BRIDGE="1",
                   PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p))

        procs.append(subprocess.Popen(
            ["trayer", "--edge", "top", "--align", "left", "--widthtype", "request", "--height", "32",
             "--SetDockType", "false", "--transparent", "false", "--expand", "false"],
            env=env, stdout=subprocess.DEVNULL, stderr=(logs / "trayer.log").open("w"), start_new_session=True))

        xlib = Xlib.display.Display(display)
        tray_atom = xlib.intern_atom("_NET_SYSTEM_TRAY_S0")
        wait_until("trayer to become the system tray", lambda: xlib.get_selection_owner(tray_atom) != 0, 10,
                   diagnose=lambda: (logs / "trayer.log").read_text()[-500:])
        yield XSession(display, env, xlib)
    finally:
        if xlib is not None:
            xlib.close()
        for proc in reversed(procs):
            _stop(proc)
            if proc.stdout is not None:
                proc.stdout.close()


def _colour_of(img: Any) -> SyncState | None:
    """The state whose icon colour covers most of ``img`` (None: no icon colour at all)."""
    counts = dict.fromkeys(STATE_COLOURS, 0)
    data = img.convert("RGB").tobytes()
    for i in range(0, len(data), 3):
        r, g, b = data[i], data[i + 1], data[i + 2]
        for state, (cr, cg, cb) in STATE_COLOURS.items():
            if abs(r - cr) + abs(g - cg) + abs(b - cb) < 45:
                counts[state] += 1
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] >= 20 else None


class TrayApp:
    def __init__(self, x: XSession, work: Path, backend: str | None) -> None:
        self.x = x
        self.work = work
        script = work / "m3daemon_tray_app.py"
        script.write_text(APP)
        env = dict(x.env)
        if backend is not None:
            env["PYSTRAY_BACKEND"] = backend
        self.stderr_path = work / "app.log"
        x.wait_tray_empty()
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(work)], env=env, stdout=subprocess.PIPE,
            stderr=self.stderr_path.open("w"), stdin=subprocess.DEVNULL, text=True, start_new_session=True)

    def log(self) -> str:
        return "\n--- tray app log:\n" + self.stderr_path.read_text()[-3000:]

    def read(self, name: str) -> str | None:
        try:
            return (self.work / name).read_text()
        except FileNotFoundError:
            return None

    def wait_file(self, name: str, timeout: float, message: str) -> str:
        def ready() -> str | None:
            if self.proc.poll() is not None and not (self.work / name).exists():
                pytest.fail(f"the tray app exited ({self.proc.returncode}) while waiting for {message}{self.log()}",
                            pytrace=False)
            return self.read(name)

        result: str = wait_until(message, ready, timeout, diagnose=self.log)
        return result

    def icon_window(self) -> tuple[int, int, int, int]:
        """(x, y, w, h) on the screen of the docked icon (its WM_CLASS contains "m3daemon")."""
        def find() -> tuple[int, int, int, int] | None:
            return next(iter(self.x.tray_icons()), None)

        result: tuple[int, int, int, int] = wait_until("the tray icon to appear in trayer", find, 10,
                                                        diagnose=self.log)
        return result

    def icon_colour(self, geometry: tuple[int, int, int, int]) -> SyncState | None:
        return _colour_of(self.x.grab(*geometry))

    def wait_colour(self, geometry: tuple[int, int, int, int], state: SyncState, timeout: float = 5) -> None:
        wait_until(f"the icon on screen to turn {state.value}", lambda: self.icon_colour(geometry) is state, timeout,
                   diagnose=lambda: f" (it is {self.icon_colour(geometry)}, the app drew {self.read('icon')!r})"
                                    + self.log())

    def close(self) -> None:
        try:
            (self.work / "stop").write_text("test")
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        finally:
            _stop(self.proc)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


@pytest.fixture
def tray_app(xsession: XSession, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TrayApp]:
    app = TrayApp(xsession, tmp_path, request.param)
    try:
        yield app
    finally:
        app.close()


def _click_update_now(app: TrayApp, backend: str, icon: tuple[int, int, int, int], shot: Path) -> None:
    x, y, w, h = icon
    cx, cy = x + w // 2, y + h // 2
    # (no "mousemove --sync": it waits forever when the pointer is already there)
    if backend == "xorg":  # pystray's xorg window does not select ButtonPress: ask as `m3daemon update` does
        (app.work / "update").write_text("test")
        return
    if backend == "gtk":  # a left click is the default action
        app.x.xdotool("mousemove", str(cx), str(cy), "click", "1")
        return
    # appindicator: a left click opens the menu; its first item is "Update media folders now"
    before = app.x.visible_toplevels()
    app.x.xdotool("mousemove", str(cx), str(cy), "click", "1")

    def menu() -> tuple[int, int, int, int] | None:
        new = {wid: g for wid, g in app.x.visible_toplevels().items() if wid not in before}
        return next((g for g in new.values() if g[2] > 80 and g[3] > 60), None)

    mx, my, mw, mh = wait_until("the menu to open", menu, 5, diagnose=app.log)
    right, bottom = min(480, max(mx + mw, x + w) + 16), min(320, my + mh + 16)
    # GTK paints the menu after mapping it: photograph it once two grabs 50 ms apart agree
    frames: list[bytes] = []

    def painted() -> Any:
        frames.append(app.x.grab(mx, my, mw, mh).tobytes())
        return len(frames) > 1 and frames[-1] == frames[-2] and len(set(frames[-1])) > 1

    wait_until("GTK to paint the menu", painted, 5, every=0.05, diagnose=app.log)
    app.x.grab(0, 0, right, bottom).save(shot)
    app.x.xdotool("key", "--delay", "60", "Down", "Return")


def _assert_all_on_the_main_thread(app: TrayApp, changed: bool = True, menu: str = "menu") -> None:
    """pystray's run() and every icon/menu change (icon, title, menu, visible, notify, stop) ran
    on the main thread: what macOS requires, enforced here with the Linux backends. ``menu``:
    how the menu changed ("refresh_open_menu" when it changed while open)."""
    calls = [tuple(c) for c in json.loads(app.read("threads") or "[]")]
    kinds = {what for what, _main, _name in calls}
    assert {"run", "visible", "stop"} <= kinds, f"the instrumented Icon saw only {sorted(kinds)}"
    if changed:
        assert {"icon", "title", menu, "update_menu"} <= kinds, sorted(kinds)
        if app.read("backend") != "xorg":  # pystray's xorg backend has no notifications
            assert "notify" in kinds, sorted(kinds)
    elsewhere = [(what, name) for what, main, name in calls if not main]
    assert elsewhere == [], f"pystray calls outside the main thread: {elsewhere}"


@pytest.mark.parametrize("tray_app", ["appindicator", "gtk"], indirect=True)
def test_click_update_now_syncs_and_the_icon_changes(tray_app: TrayApp, request: pytest.FixtureRequest) -> None:
    wanted = request.node.callspec.params["tray_app"]
    app = tray_app
    backend = app.wait_file("backend", 15, "the tray icon to come up")
    assert backend == wanted, f"run_tray chose {backend!r}{app.log()}"
    icon = app.icon_window()
    app.wait_colour(icon, SyncState.UP_TO_DATE)
    assert app.read("update_now") is None

    shot = app.work / "tray-menu.png"
    _click_update_now(app, backend, icon, shot)

    assert app.wait_file("update_now", 10, "a click on the icon to run update_now") == "None"
    app.wait_colour(icon, SyncState.SYNCING)
    wait_until("the app to draw 'syncing 30 %'", lambda: app.read("icon") == "syncing 30", 5, diagnose=app.log)
    (app.work / "release").write_text("done")
    app.wait_colour(icon, SyncState.UP_TO_DATE)
    wait_until("the app to draw 'up to date'", lambda: app.read("icon") == "up-to-date None", 5, diagnose=app.log)

    (app.work / "stop").write_text("test")
    assert app.proc.wait(10) == 0, app.log()
    assert app.proc.stdout is not None and app.proc.stdout.read().strip() == "stopped"
    _assert_all_on_the_main_thread(app)

    if backend == "appindicator":
        assert shot.exists()
        if os.environ.get("M3DAEMON_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, SCREENSHOT)


def test_the_real_daemon_in_the_tray_syncs_on_a_click(
    xsession: XSession, wsgidav_server: Any, isolated_env: Path
) -> None:
    """`m3daemon run` with its tray: a click on the icon makes the daemon sync from the server."""
    from member import Member, iso
    from servers import make_tree

    (wsgidav_server.root / "Cong").mkdir()
    m = Member.create(isolated_env, wsgidav_server.url, "/dav/Cong", wsgidav_server.username,
                      wsgidav_server.password, wsgidav_server.ca_file)
    env = {**xsession.env, "PYSTRAY_BACKEND": "gtk", "M3DAEMON_PASSWORD": m.password,
           "M3DAEMON_CONFIG": str(m.config_path), "M3DAEMON_DOWNLOAD_LIMIT_BPS": "4000000",
           **{k: os.environ[k] for k in os.environ if k.startswith("XDG_") or k == "HOME"}}
    log = isolated_env / "daemon.log"
    proc = subprocess.Popen([sys.executable, "-m", "m3daemon", "-v", "run"], env=env, stdout=subprocess.DEVNULL,
                            stderr=log.open("w"), stdin=subprocess.DEVNULL, start_new_session=True)

    class Probe(TrayApp):  # reuse the icon helpers with the daemon's process
        def __init__(self) -> None:
            self.x, self.work, self.proc, self.stderr_path = xsession, isolated_env, proc, log

    app = Probe()
    try:
        icon = app.icon_window()
        app.wait_colour(icon, SyncState.UP_TO_DATE, timeout=15)
        make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/talk.mp4": os.urandom(6_000_000)})
        wsgidav_server.clear_log()
        x, y, w, h = icon
        xsession.xdotool("mousemove", str(x + w // 2), str(y + h // 2), "click", "1")
        app.wait_colour(icon, SyncState.SYNCING, timeout=20)
        # generous: on a loaded 2-core CI machine the shared test server can be slow to answer
        app.wait_colour(icon, SyncState.UP_TO_DATE, timeout=45)
        assert ("PROPFIND", "/dav/Cong/", 207) in wsgidav_server.request_log()
        assert m.files() == {f"{iso(1)}/talk.mp4": (wsgidav_server.root / "Cong/Media" / iso(1) / "talk.mp4").read_bytes()}
        # `m3daemon quit` (the control API, another thread of the daemon) ends the tray's loop on the main thread
        quit_ = subprocess.run([sys.executable, "-m", "m3daemon", "quit"], env=env, capture_output=True, text=True,
                               timeout=30, check=False)
        assert quit_.returncode == 0, quit_.stderr
        assert proc.wait(15) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)


@pytest.mark.parametrize("tray_app", ["gtk"], indirect=True)
def test_sigterm_ends_the_tray_loop_on_the_main_thread(tray_app: TrayApp) -> None:
    """A native loop owns the main thread, yet SIGTERM (systemd, logout) still ends it cleanly."""
    app = tray_app
    assert app.wait_file("backend", 15, "the tray icon came up") == "gtk"
    app.proc.send_signal(signal.SIGTERM)
    assert app.proc.wait(10) == 0, app.log()
    assert app.proc.stdout is not None and app.proc.stdout.read().strip() == "stopped"
    _assert_all_on_the_main_thread(app, changed=False)


def test_the_frozen_build_shows_the_tray_with_its_menu(
    xsession: XSession, wsgidav_server: Any, isolated_env: Path, frozen_program: Path
) -> None:
    """dist/m3daemon/m3daemon (packaging/build.sh, which the suite runs in CI) brings PyGObject's
    typelibs: its tray uses the appindicator backend, with the menu, not the menu-less xorg one,
    and the menu opens without the system's icon and GTK themes (the build leaves them out)."""
    from member import Member

    exe = frozen_program
    (wsgidav_server.root / "Cong").mkdir(exist_ok=True)
    m = Member.create(isolated_env, wsgidav_server.url, "/dav/Cong", wsgidav_server.username,
                      wsgidav_server.password, wsgidav_server.ca_file)
    env = {k: v for k, v in xsession.env.items() if k != "PYTHONPATH"}
    env.update(M3DAEMON_PASSWORD=m.password, M3DAEMON_CONFIG=str(m.config_path))
    env.update({k: os.environ[k] for k in os.environ if k.startswith("XDG_") or k == "HOME"})
    log = isolated_env / "frozen.log"
    xsession.wait_tray_empty()
    proc = subprocess.Popen([str(exe), "-v", "run"], env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"),
                            stdin=subprocess.DEVNULL, start_new_session=True)

    class Probe(TrayApp):
        def __init__(self) -> None:
            self.x, self.work, self.proc, self.stderr_path = xsession, isolated_env, proc, log

    app = Probe()
    try:
        icon = app.icon_window()
        app.wait_colour(icon, SyncState.UP_TO_DATE, timeout=20)
        assert "tray icon shown (pystray backend appindicator)" in log.read_text(), log.read_text()[-2000:]
        _open_menu(app, "appindicator")
        xsession.xdotool("key", "Escape")
    finally:
        proc.terminate()
        assert proc.wait(15) == 0, log.read_text()[-2000:]


@pytest.mark.parametrize("tray_app", ["appindicator"], indirect=True)
def test_quit_from_the_menu_ends_the_tray_loop(tray_app: TrayApp) -> None:
    """The menu's last item, Quit: the click arrives on the main thread, the action thread calls
    quit(), and the loop ends there; the process exits cleanly."""
    app = tray_app
    assert app.wait_file("backend", 15, "the tray icon came up") == "appindicator"
    _open_menu(app, "appindicator")
    app.x.xdotool("key", "--delay", "60", "Up", "Return")  # from the top, Up selects the last item
    assert app.wait_file("stop", 10, "Quit in the menu called quit()") == "quit"
    assert app.proc.wait(10) == 0, app.log()
    assert app.proc.stdout is not None and app.proc.stdout.read().strip() == "stopped"
    _assert_all_on_the_main_thread(app, changed=False)


@pytest.mark.parametrize("tray_app", ["xorg"], indirect=True)
def test_the_xorg_backend_changes_the_icon_and_stops_on_the_main_thread(tray_app: TrayApp) -> None:
    """pystray's last resort (python-xlib only, no menu): an update asked for from another thread
    redraws the icon, and a stop from another thread ends the loop, all on the main thread. (Not
    read from the screen: its docking into trayer is itself unreliable here.)"""
    app = tray_app
    assert app.wait_file("backend", 15, "the tray icon came up") == "xorg"
    (app.work / "update").write_text("test")
    assert app.wait_file("update_now", 10, "update_now ran") == "None"
    wait_until("the app to draw 'syncing 30 %'", lambda: app.read("icon") == "syncing 30", 5, diagnose=app.log)
    (app.work / "release").write_text("done")
    wait_until("the app to draw 'up to date'", lambda: app.read("icon") == "up-to-date None", 5, diagnose=app.log)
    (app.work / "stop").write_text("test")
    assert app.proc.wait(10) == 0, app.log()
    assert "did not end within its time" not in app.log()  # no forced end: the wake reached the loop
    _assert_all_on_the_main_thread(app)


def _open_menu(app: TrayApp, backend: str) -> int:
    """Open the icon's menu as a person does (gtk: right click; appindicator: left click); its window id."""
    x, y, w, h = app.icon_window()
    before = app.x.visible_toplevels()
    app.x.xdotool("mousemove", str(x + w // 2), str(y + h // 2), "click", "3" if backend == "gtk" else "1")

    def menu() -> int | None:
        new = {wid: g for wid, g in app.x.visible_toplevels().items() if wid not in before}
        return next((wid for wid, g in new.items() if g[2] > 80 and g[3] > 60), None)

    wid: int = wait_until("the menu to open", menu, 5, diagnose=app.log)
    return wid


def _menu_picture(app: TrayApp, wid: int) -> Any:
    """The open menu as painted: two grabs 50 ms apart that agree (GTK paints after mapping)."""
    frames: list[Any] = []

    def painted() -> bool:
        geometry = app.x.visible_toplevels().get(wid)
        assert geometry is not None, "the menu closed by itself" + app.log()
        frames.append(app.x.grab(*geometry))
        return (len(frames) > 1 and frames[-1].size == frames[-2].size
                and frames[-1].tobytes() == frames[-2].tobytes() and len(set(frames[-1].tobytes())) > 1)

    wait_until("GTK to paint the menu", painted, 5, every=0.05, diagnose=app.log)
    return frames[-1]


@pytest.mark.parametrize("tray_app", ["appindicator", "gtk"], indirect=True)
def test_the_open_menu_follows_a_sync_that_starts_and_ends_while_it_is_open(
        tray_app: TrayApp, request: pytest.FixtureRequest) -> None:
    """A person opens the menu and leaves it open while a sync runs: the same menu, still open,
    changes to "Updating…" and back, and its items still work."""
    backend = request.node.callspec.params["tray_app"]
    app = tray_app
    assert app.wait_file("backend", 15, "the tray icon to come up") == backend
    app.wait_colour(app.icon_window(), SyncState.UP_TO_DATE)
    wid = _open_menu(app, backend)
    idle = _menu_picture(app, wid)

    (app.work / "update").write_text("test")  # a sync starts from elsewhere (the schedule, `m3daemon update`)
    wait_until("the app to draw 'syncing 30 %'", lambda: app.read("icon") == "syncing 30", 5, diagnose=app.log)

    def changed_from(before: Any) -> Any:
        def check() -> Any:
            now = _menu_picture(app, wid)
            return now if now.tobytes() != before.tobytes() else None
        return check

    syncing = wait_until("the open menu to show the sync", changed_from(idle), 5, diagnose=app.log)
    (app.work / "release").write_text("done")
    wait_until("the app to draw 'up to date'", lambda: app.read("icon") == "up-to-date None", 5, diagnose=app.log)
    wait_until("the open menu to show the end of the sync", changed_from(syncing), 5, diagnose=app.log)
    if os.environ.get("M3DAEMON_UPDATE_SCREENSHOTS") == "1" and backend == "gtk":
        syncing.save(SCREENSHOT.parent / "tray-menu-open-syncing.png")

    (app.work / "update_now").unlink()
    app.x.xdotool("key", "--delay", "60", "Down", "Return")  # the refreshed first item: Update now
    assert app.wait_file("update_now", 10, "the refreshed menu's first item to run update_now") == "None"
    (app.work / "stop").write_text("test")
    assert app.proc.wait(10) == 0, app.log()
    _assert_all_on_the_main_thread(app, menu="refresh_open_menu")
