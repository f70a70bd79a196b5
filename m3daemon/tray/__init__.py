"""The tray icon: a thin pystray adapter over :mod:`m3daemon.tray.menu` and :mod:`m3daemon.tray.icons`.

This module and :mod:`m3daemon.tray.backends` (which chooses and imports the backend) are the
only ones that import pystray. The daemon uses it like this, on the main thread::

    run_tray(control, stop_event, on_ready=...)  # blocks until stop_event; False: no tray here
    tray.refresh()             # after any state change: thread-safe, cheap, coalesced
    tray.notify(title, text)   # a failure that needs a person / "media ready"

Backends (pystray picks one when it is imported, so the import happens here, guarded):

* Linux: ``appindicator``, then ``gtk`` (both need PyGObject and a session D-Bus, and have real
  menus), then ``xorg`` (python-xlib only: an icon with no menu). A user's ``PYSTRAY_BACKEND``
  wins. A backend whose icon fails to start (e.g. no session bus) is dropped for the next one.
* macOS and Windows: pystray's own backend.
* No ``DISPLAY``/``WAYLAND_DISPLAY``, ``--no-tray``, or no backend: no tray; the daemon runs on.

Threads: the tray owns the main thread on every platform: pystray's ``Icon.run()`` must be called
there (macOS's run loop requires it) and AppKit crashes when a status item or menu changes on
another thread. So the icon is created and run on the main thread, and every change to it (icon,
title, menu, visibility, notification, stop) is handed to the loop through a
:class:`m3daemon.tray.loop.LoopDispatcher`, which asserts the thread before it runs a change.
:meth:`Tray.refresh` only wakes a refresher thread, which reads ``control.statuses()``, works out
what changed (at most every ``COALESCE_SECONDS``) and hands the changes to the loop. Menu clicks
are queued to one action thread, so a slow ``update_now`` never freezes the menu and clicks run in
order. The refresher also pulses the loop every ``PULSE_SECONDS``: a Python signal handler
(SIGTERM, Ctrl+C) runs only when the main thread runs Python code, and a native loop does not.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from m3daemon.engine.status import CongregationStatus, DaemonControl, SyncState
from m3daemon.errors import TrayUnavailable
from m3daemon.tray.backends import (
    backend_name,
    candidates,
    has_display,
    have_gi,
    import_pystray,
    refresh_open_menu,
)
from m3daemon.tray.icons import icon_for, quantize_percent
from m3daemon.tray.loop import LoopDispatcher, wake_for
from m3daemon.tray.menu import (
    APP_NAME,
    Action,
    ActionKind,
    MenuItemSpec,
    build_menu,
    sync_percent,
    tooltip,
    worst_state,
)

__all__ = ["Tray", "TrayUnavailable", "open_path", "run_tray"]

log = logging.getLogger(__name__)

#: Bursts of refresh() calls (progress) are merged into one redraw per this many seconds.
COALESCE_SECONDS = 0.2
#: The refresher also redraws this often without being asked ("today" becomes a weekday).
IDLE_REFRESH_SECONDS = 60.0
#: How often the loop thread runs a little Python code, so that signal handlers run promptly.
PULSE_SECONDS = 0.5


# --- opening folders -----------------------------------------------------------------------


def open_path(path: str) -> None:
    """Open a folder in the file manager without waiting for it (xdg-open / open / startfile).

    A folder that does not exist (yet) opens its nearest existing parent.
    """
    target = Path(path).expanduser()
    while not target.exists() and target.parent != target:
        target = target.parent
    if sys.platform == "win32":
        os.startfile(str(target))  # the user's own folder
        return
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    try:
        proc = subprocess.Popen(  # fixed program, the folder as one argument
            [opener, str(target)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    except OSError as exc:
        log.warning("cannot open %s with %s: %s", target, opener, exc)
        return
    threading.Thread(target=proc.wait, name="m3daemon-open-folder", daemon=True).start()  # reap it


# --- the adapter ---------------------------------------------------------------------------


def _noop() -> None:
    return None


class Tray:
    """One tray icon for all congregations of this daemon.

    ``pystray`` is the imported pystray module; ``icon_cls`` replaces ``pystray.Icon`` (the
    tests pass a subclass of ``pystray._base.Icon``). ``opener`` and ``browser`` open a folder
    and a URL. :meth:`run` blocks the calling thread (the main thread, outside tests).
    """

    def __init__(
        self,
        control: DaemonControl,
        pystray: Any,
        *,
        backend: str | None = None,
        icon_cls: Any = None,
        opener: Callable[[str], None] = open_path,
        browser: Callable[[str], object] = webbrowser.open,
    ) -> None:
        self._control = control
        self._pystray = pystray
        self._icon_cls = icon_cls if icon_cls is not None else pystray.Icon
        self.backend = backend or backend_name(self._icon_cls)
        self._opener = opener
        self._browser = browser
        self._icon: Any = None
        self._loop = LoopDispatcher()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._up = threading.Event()  # the icon is shown on the running loop
        self._ended = threading.Event()  # run() is about to return
        self._stopping = threading.Event()
        self._started = False
        self._setup_error: BaseException | None = None
        self._refresher: threading.Thread | None = None
        self._actions: queue.Queue[Action | Callable[[], None] | None] = queue.Queue()
        self._action_thread: threading.Thread | None = None
        self._menu_model: tuple[MenuItemSpec, ...] | None = None
        self._icon_key: tuple[SyncState, int | None] | None = None
        self._title: str | None = None
        self._sigint: Any = None
        self._loop_ident: int | None = None
        self._drawn: tuple[SyncState, int | None] | None = None
        #: Called (on the loop thread) once the icon is shown.
        self.on_ready: Callable[[Tray], None] | None = None
        #: Called with (state, percent) whenever another icon is drawn (tests, diagnostics).
        self.on_icon_change: Callable[[SyncState, int | None], None] | None = None

    # --- public API ------------------------------------------------------------------------

    @property
    def has_menu(self) -> bool:
        return bool(getattr(self._icon_cls, "HAS_MENU", True))

    @property
    def icon_state(self) -> tuple[SyncState, int | None] | None:
        """The (state, percent) of the icon drawn last."""
        return self._drawn

    @property
    def running(self) -> bool:
        return self._started and not self._stopping.is_set()

    @property
    def loop(self) -> LoopDispatcher:
        return self._loop

    def wait_running(self, timeout: float = 10.0) -> bool:
        """Wait until the icon is shown on its loop (for tests and callers on other threads)."""
        return self._up.wait(timeout) and self._started

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until the queued menu actions and then the queued icon changes ran (for tests)."""
        done = threading.Event()

        def after_actions() -> None:
            if not self._loop.call_soon(done.set):
                done.set()

        self._actions.put(after_actions)
        return done.wait(timeout)

    def refresh(self) -> None:
        """Redraw from ``control.statuses()`` soon. Thread-safe and cheap: it only sets a flag."""
        self._wake.set()

    def notify(self, title: str, message: str) -> None:
        """Show a desktop notification (logged too; backends without notifications only log)."""
        log.info("notification: %s: %s", title, message)
        icon = self._icon
        if icon is None or self._stopping.is_set() or not getattr(icon, "HAS_NOTIFICATION", False):
            return

        def show() -> None:
            self._loop.assert_loop_thread("Icon.notify")
            try:
                icon.notify(message, title)
            except Exception:  # e.g. no notification daemon on the session bus
                log.debug("tray notification failed", exc_info=True)

        self._loop.call_soon(show)

    def stop(self, timeout: float = 5.0) -> None:
        """Remove the icon and end the loop (run() returns) and the tray threads. Idempotent, any thread."""
        with self._lock:
            if self._stopping.is_set():
                return
            self._stopping.set()
        self._wake.set()
        self._actions.put(None)
        icon = self._icon
        if icon is not None and not self._loop.call_soon(self._stop_icon):
            try:  # the loop is not (or no longer) running: nothing to hand the stop to
                icon.stop()
            except Exception:
                log.debug("stopping the tray icon failed", exc_info=True)
        me = threading.current_thread()
        for thread in (self._refresher, self._action_thread):
            if thread is not None and thread is not me and thread.is_alive():
                thread.join(timeout)
        if self._started and not self._loop.on_loop_thread() and not self._ended.wait(timeout):
            self._force_end()

    def _force_end(self) -> None:
        """The loop did not end after its stop. A safety net: with a shared X connection python-xlib's
        event wait missed wake-ups (the xorg backend, 3 stops in 8 under Xvfb); the xorg wake now
        has its own connection (loop.py), and no stop needed this since. Closing the loop's X
        connection makes its wait fail, so run() returns and the daemon can exit."""
        display = getattr(self._icon, "_display", None)
        log.warning("the tray loop did not end within its time after stop; closing its display connection")
        if display is not None:
            try:
                display.close()
            except Exception:
                log.debug("closing the display failed", exc_info=True)

    def run(self) -> None:
        """Create the icon and run its loop on this thread until :meth:`stop`.

        Raises TrayUnavailable when the icon cannot be created or its loop fails before it is up.
        """
        statuses = self._statuses()
        self._icon_key = self._key(statuses)
        self._title = tooltip(statuses)
        self._menu_model = build_menu(statuses, self._dashboard_url())
        self._loop_ident = threading.get_ident()
        try:
            self._icon = self._icon_cls(
                APP_NAME, icon=icon_for(*self._icon_key), title=self._shown_title(self._title),
                menu=self._to_pystray(self._menu_model))
        except Exception as exc:  # any backend failure means "no tray here"
            raise TrayUnavailable(f"{type(exc).__name__}: {exc}") from exc
        self._sigint = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
        self._action_thread = threading.Thread(target=self._action_loop, name="m3daemon-tray-actions", daemon=True)
        self._action_thread.start()
        error: BaseException | None = None
        try:
            self._icon.run(setup=self._setup)
        except Exception as exc:  # noqa: BLE001 - e.g. no session bus; at stop: no notification daemon
            error = exc
        finally:
            self._ended.set()
            self._loop.close()
            up = self._started
            self._started = False
            self._stopping.set()
            self._wake.set()
            self._actions.put(None)
            self._up.set()
        if not up:
            self._release_setup_thread()
            self.stop(timeout=1.0)
            failure = error or self._setup_error
            if failure is not None:
                raise TrayUnavailable(f"{type(failure).__name__}: {failure}") from failure
            raise TrayUnavailable("the icon's loop ended before the icon was shown")
        if error is not None:
            log.debug("the tray loop ended with an error", exc_info=error)
        for thread in (self._refresher, self._action_thread):
            if thread is not None and thread.is_alive():
                thread.join(5.0)

    # --- the icon's loop and the refresher --------------------------------------------------

    def _release_setup_thread(self) -> None:
        """pystray's setup thread (not a daemon) waits for the loop to be ready: let it end."""
        try:
            self._icon._mark_ready()
        except Exception:
            log.debug("releasing the pystray setup thread failed", exc_info=True)

    def _setup(self, icon: Any) -> None:
        """Runs in pystray's setup thread once the loop is up; it must return (not a daemon).

        A stop that came before the loop was up (quit while the icon was starting) could not be
        handed to the loop then: it is handed now, instead of showing the icon."""
        try:
            self._loop.bind(wake_for(self.backend, icon, self._loop), self._loop_ident)
        except Exception as exc:  # noqa: BLE001 - any failure: this backend cannot run here
            self._setup_error = exc
            self._loop_failed()
            return
        if not self._loop.call_soon(self._stop_icon if self._stopping.is_set() else self._show):
            self._loop_failed()

    def _loop_failed(self) -> None:
        try:
            self._icon.stop()
        except Exception:
            log.debug("stopping the tray icon failed", exc_info=True)

    def _show(self) -> None:
        """On the loop thread: show the icon, put back our Ctrl+C handler, start the refresher."""
        self._loop.assert_loop_thread("Icon.visible")
        if self._stopping.is_set():
            return
        # What is true now, not what was true when the icon was made: a sync that ended while the
        # loop started is drawn before the icon shows. An image set just after it shows can be
        # lost where libappindicator is still docking its fallback icon (the PyInstaller build).
        key = self._key(self._statuses())
        if key != self._icon_key:
            self._icon_key = key
            self._icon.icon = icon_for(*key)
        try:
            self._icon.visible = True
        except Exception:
            log.warning("the tray icon could not be shown", exc_info=True)
        if self._sigint is not None and signal.getsignal(signal.SIGINT) is not self._sigint:
            signal.signal(signal.SIGINT, self._sigint)  # pystray's gtk backend sets SIG_DFL
        self._started = True
        self._drawn = self._icon_key
        self._refresher = threading.Thread(target=self._refresh_loop, name="m3daemon-tray-refresh", daemon=True)
        self._refresher.start()
        self._up.set()
        if self.on_ready is not None:
            self.on_ready(self)
        if self.on_icon_change is not None and self._icon_key is not None:
            self.on_icon_change(*self._icon_key)

    def _stop_icon(self) -> None:
        self._loop.assert_loop_thread("Icon.stop")
        try:
            self._icon.stop()
        except Exception:  # the icon may be half-started
            log.debug("stopping the tray icon failed", exc_info=True)

    def _refresh_loop(self) -> None:
        last = time.monotonic()
        while not self._stopping.is_set():
            woke = self._wake.wait(PULSE_SECONDS)
            if self._stopping.is_set():
                return
            if not woke and time.monotonic() - last < IDLE_REFRESH_SECONDS:
                self._loop.call_soon(_noop)  # see PULSE_SECONDS
                continue
            self._wake.clear()
            last = time.monotonic()
            try:
                self._apply()
            except Exception:  # the tray must never take the daemon down
                log.exception("tray refresh failed")
            self._stopping.wait(COALESCE_SECONDS)

    def _apply(self) -> None:
        """Work out what changed (on the refresher thread) and hand the changes to the loop."""
        statuses = self._statuses()
        icon = self._icon
        key = self._key(statuses)
        if key != self._icon_key:
            self._icon_key = key
            image = icon_for(*key)

            def set_icon(key: tuple[SyncState, int | None] = key) -> None:
                self._loop.assert_loop_thread("Icon.icon")
                icon.icon = image
                self._drawn = key
                if self.on_icon_change is not None:
                    self.on_icon_change(*key)

            self._loop.call_soon(set_icon)
        title = tooltip(statuses)
        if title != self._title:
            self._title = title
            shown = self._shown_title(title)

            def set_title() -> None:
                self._loop.assert_loop_thread("Icon.title")
                icon.title = shown

            self._loop.call_soon(set_title)
        model = build_menu(statuses, self._dashboard_url())
        if model != self._menu_model:
            self._menu_model = model
            menu = self._to_pystray(model)

            def set_menu() -> None:
                self._loop.assert_loop_thread("Icon.menu")
                if not refresh_open_menu(self.backend, icon, menu):
                    icon.menu = menu

            self._loop.call_soon(set_menu)

    def _shown_title(self, title: str) -> str:
        """The xorg backend sets the title as a Latin-1 window name (python-xlib): "—" would raise."""
        if self.backend != "xorg":
            return title
        plain = title.replace("—", "-").replace("…", "...")
        return plain.encode("latin-1", "replace").decode("latin-1")

    @staticmethod
    def _key(statuses: Sequence[CongregationStatus]) -> tuple[SyncState, int | None]:
        state = worst_state(statuses)
        percent = quantize_percent(sync_percent(statuses)) if state is SyncState.SYNCING else None
        return state, percent

    def _statuses(self) -> list[CongregationStatus]:
        return list(self._control.statuses())

    def _dashboard_url(self) -> str | None:
        try:
            return self._control.dashboard_url()
        except Exception:
            log.debug("dashboard_url() failed", exc_info=True)
            return None

    # --- menu ------------------------------------------------------------------------------

    def _to_pystray(self, specs: Sequence[MenuItemSpec]) -> Any:
        ps = self._pystray
        items: list[Any] = []
        for spec in specs:
            if spec.separator:
                items.append(ps.Menu.SEPARATOR)
            elif spec.submenu is not None:
                items.append(ps.MenuItem(spec.label, self._to_pystray(spec.submenu), enabled=spec.enabled))
            else:
                checked = None if spec.checked is None else _constant(spec.checked)
                items.append(ps.MenuItem(spec.label, self._callback(spec.action), checked=checked,
                                         default=spec.default, enabled=spec.enabled and spec.action is not None))
        return ps.Menu(*items)

    def _callback(self, action: Action | None) -> Callable[[Any, Any], None]:
        def clicked(icon: Any, item: Any) -> None:
            if action is not None and not self._stopping.is_set():
                self._actions.put(action)

        return clicked

    def _action_loop(self) -> None:
        while True:
            job = self._actions.get()
            if job is None:
                return
            try:
                if isinstance(job, Action):
                    self._perform(job)
                else:
                    job()
            except Exception:  # a failing action must not end the tray
                log.exception("tray action failed")
            self.refresh()

    def _perform(self, action: Action) -> None:
        log.debug("tray: %s %s", action.kind.value, action.congregation or "")
        c = self._control
        if action.kind is ActionKind.UPDATE_NOW:
            c.update_now(action.congregation)
        elif action.kind is ActionKind.APPLY_HELD:
            c.update_now(action.congregation, during_meeting=True)
        elif action.kind is ActionKind.PAUSE:
            c.pause(action.congregation)
        elif action.kind is ActionKind.RESUME:
            c.resume(action.congregation)
        elif action.kind is ActionKind.OPEN_FOLDER:
            if action.target:
                self._opener(action.target)
        elif action.kind is ActionKind.OPEN_DASHBOARD:
            # a launch page, so the login key is not on the browser's command line
            cid = None
            if action.congregation is not None:
                names = [s.name for s in self._statuses()]
                cid = names.index(action.congregation) if action.congregation in names else None
            page = c.dashboard_launch(cid, page=action.page) if action.page else c.dashboard_launch()
            if page:
                self._browser(page)
        elif action.kind is ActionKind.QUIT:
            c.quit()


def _constant(value: bool) -> Callable[[Any], bool]:
    return lambda item: value


def run_tray(control: DaemonControl, stop: threading.Event, *, no_tray: bool = False,
             on_ready: Callable[[Tray], None] | None = None) -> bool:
    """Show the tray icon and run its loop on this, the main, thread until ``stop`` is set.

    ``on_ready`` is called with the :class:`Tray` once its icon is shown. Returns False at once
    (and says why once in the log) when there is no tray here, or when the tray's loop ended on
    its own before ``stop``: the caller then waits for ``stop`` without a tray.
    """
    if no_tray:
        log.info("tray icon disabled (--no-tray)")
        return False
    if not has_display():
        log.info("no display (DISPLAY and WAYLAND_DISPLAY are not set): running without a tray icon")
        return False
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("the tray's loop must run on the main thread (macOS requires it)")
    failures: list[str] = []
    for backend in candidates():
        if stop.is_set():
            return True
        try:
            pystray = import_pystray(backend)
            tray = Tray(control, pystray, backend=backend)
        except TrayUnavailable as exc:
            failures.append(f"{backend}: {exc}")
            continue
        tray.on_ready = _announce(backend, tray, failures, on_ready)
        stopper = threading.Thread(target=_stop_when, args=(stop, tray), name="m3daemon-tray-stop", daemon=True)
        stopper.start()
        try:
            tray.run()
        except TrayUnavailable as exc:
            failures.append(f"{backend}: {exc}")
            continue
        finally:
            tray.stop()
        if stop.is_set():
            return True
        log.warning("the tray icon's loop ended; m3daemon runs on without a tray icon")
        return False
    log.warning("no tray backend works here, running without a tray icon: %s", "; ".join(failures) or "none")
    return False


def _stop_when(stop: threading.Event, tray: Tray) -> None:
    """Hand ``stop`` (control `quit`, the menu's Quit, a signal) to the tray's loop."""
    while not stop.wait(1.0):
        if tray._stopping.is_set():
            return
    tray.stop()


def _announce(backend: str, tray: Tray, failures: list[str],
              on_ready: Callable[[Tray], None] | None) -> Callable[[Tray], None]:
    def ready(shown: Tray) -> None:
        if failures:
            log.info("tray backends that did not work: %s", "; ".join(failures))
        if not tray.has_menu:
            hint = (" (the menu needs PyGObject: pip install \"PyGObject<3.51\")" if not have_gi()
                    else " (the appindicator and gtk backends did not start; they need a session D-Bus)")
            log.warning("tray icon shown with the %s backend, which has no menu%s", backend, hint)
        else:
            log.info("tray icon shown (pystray backend %s)", backend)
        if on_ready is not None:
            on_ready(shown)

    return ready
