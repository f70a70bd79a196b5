"""Hand work to the tray's loop thread: pystray has no generic "call on the main thread".

pystray's ``Icon.run()`` must run on the main thread (macOS's run loop requires it), and AppKit
crashes when a status item or menu is changed from another thread. So every icon, title, menu and
notification change of :class:`m3daemon.tray.Tray` is put into one :class:`LoopDispatcher`
queue and runs on the loop thread, in order. Each backend gets a *wake* function that makes its
loop call :meth:`LoopDispatcher.drain` soon:

* ``gtk`` / ``appindicator``: ``GLib.idle_add`` (thread-safe by GLib's contract).
* ``darwin``: ``PyObjCTools.AppHelper.callAfter`` (``performSelectorOnMainThread`` underneath).
* ``win32``: a private window message posted to the icon's own window (``PostMessageW`` is
  thread-safe); the handler is added to pystray's ``_message_handlers`` of that window.
* ``xorg``: a ClientMessage with a private atom sent to the icon's window; its loop dispatches
  ClientMessages through ``_message_handlers`` and we chain in front of pystray's own handler.
* any other icon class (the tests' fake icon): its ``call_soon`` method, if it has one.

The win32 and darwin wakes cannot run here; they are built from injectable parts
(:func:`win32_wake`, :func:`darwin_wake`) so that the tests drive them with simulated inputs.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from m3daemon.errors import NotOnLoopThread

__all__ = ["LoopDispatcher", "NotOnLoopThread", "darwin_wake", "gi_wake", "wake_for", "win32_wake", "xorg_wake"]

log = logging.getLogger(__name__)

#: The private window message of the win32 wake (pystray uses WM_USER+10 and WM_USER+11).
WM_M3_CALL = 0x0400 + 0x4D33  # WM_USER + "M3"

Wake = Callable[[], None]


class LoopDispatcher:
    """A queue of callables drained on the loop thread (the one that called :meth:`bind`)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wake: Wake | None = None
        self._loop_ident: int | None = None
        self._closed = False

    @property
    def loop_ident(self) -> int | None:
        return self._loop_ident

    def bind(self, wake: Wake, loop_ident: int | None = None) -> None:
        """Start handing jobs to the loop; ``loop_ident`` is the thread that runs it (default: this one)."""
        self._loop_ident = threading.get_ident() if loop_ident is None else loop_ident
        self._wake = wake

    def on_loop_thread(self) -> bool:
        return self._loop_ident is not None and threading.get_ident() == self._loop_ident

    def assert_loop_thread(self, what: str) -> None:
        if not self.on_loop_thread():
            raise NotOnLoopThread(f"{what} must run on the tray's loop thread, not {threading.current_thread().name}")

    def call_soon(self, job: Callable[[], None]) -> bool:
        """Queue ``job`` for the loop thread; False when the loop is not running (the job is dropped)."""
        wake = self._wake
        if wake is None or self._closed:
            return False
        self._jobs.put(job)
        try:
            wake()
        except Exception:  # e.g. the window is gone while stopping
            log.debug("waking the tray loop failed", exc_info=True)
            return False
        return True

    def drain(self) -> None:
        """Run what is queued; called by the backend's loop on its own thread."""
        self.assert_loop_thread("LoopDispatcher.drain")
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            try:
                job()
            except Exception:  # one failing change must not end the loop
                log.exception("tray change failed")

    def close(self) -> None:
        """Stop accepting jobs (the loop has ended); the wake's own resources go too."""
        self._closed = True
        wake, self._wake = self._wake, None
        closer = getattr(wake, "close", None)
        if callable(closer):
            try:
                closer()
            except Exception:  # best effort at the end
                log.debug("closing the tray wake failed", exc_info=True)


# --- the wakes, one per backend ------------------------------------------------------------


def gi_wake(dispatcher: LoopDispatcher, idle_add: Callable[..., Any] | None = None) -> Wake:
    """GLib's main loop: ``idle_add`` may be called from any thread."""
    if idle_add is None:
        from gi.repository import GLib

        idle_add = GLib.idle_add

    def once() -> bool:
        dispatcher.drain()
        return False  # run once, not again

    def wake() -> None:
        idle_add(once)

    return wake


def darwin_wake(dispatcher: LoopDispatcher, call_after: Callable[..., Any] | None = None) -> Wake:
    """AppKit: ``AppHelper.callAfter`` performs the call on the main thread's run loop."""
    if call_after is None:
        from PyObjCTools import AppHelper  # type: ignore[import-not-found,unused-ignore]

        call_after = AppHelper.callAfter

    def wake() -> None:
        call_after(dispatcher.drain)

    return wake


def win32_wake(dispatcher: LoopDispatcher, icon: Any, post_message: Callable[[Any, int, int, int], Any] | None = None
               ) -> Wake:
    """Windows: post a private message to the icon's window; its window procedure runs on the loop.

    pystray's window procedure looks the message up in ``icon._message_handlers`` and calls the
    handler with ``(wparam, lparam)``.
    """
    if post_message is None:
        import ctypes

        post_message = ctypes.windll.user32.PostMessageW  # type: ignore[attr-defined,unused-ignore]

    def handler(wparam: int, lparam: int) -> int:
        dispatcher.drain()
        return 0

    icon._message_handlers[WM_M3_CALL] = handler
    post = post_message

    def wake() -> None:
        if not post(icon._hwnd, WM_M3_CALL, 0, 0):
            raise OSError("PostMessageW failed")

    return wake


class _XorgWake:
    """A ClientMessage to the icon's window, sent over a second X connection of our own.

    The icon's connection belongs to the loop (the main thread, blocked in ``next_event``): when
    another thread also writes and flushes on it, python-xlib can read the reply meant for the
    waiting thread, which then waits forever (seen under Xvfb: about one stop in four hung). On a
    connection of its own the waking thread never touches the loop's; the X server delivers an
    event sent with an empty mask to the client that created the window, the loop's connection.
    """

    def __init__(self, dispatcher: LoopDispatcher, icon: Any) -> None:
        import Xlib.display  # type: ignore[import-untyped,unused-ignore]
        import Xlib.X  # type: ignore[import-untyped,unused-ignore]
        from Xlib.protocol import event as xevent  # type: ignore[import-untyped,unused-ignore]

        self._event_cls = xevent.ClientMessage
        self._lock = threading.Lock()
        loop_display = icon._display
        self._atom = loop_display.intern_atom("_M3DAEMON_CALL")
        self._window_id = icon._window.id
        self._sender = Xlib.display.Display(loop_display.get_display_name())
        self._target = self._sender.create_resource_object("window", self._window_id)
        previous = icon._message_handlers.get(Xlib.X.ClientMessage, lambda event: None)
        atom = self._atom

        def on_client_message(event: Any) -> None:
            if event.client_type == atom:
                dispatcher.drain()
            else:
                previous(event)

        icon._message_handlers[Xlib.X.ClientMessage] = on_client_message

    def __call__(self) -> None:
        with self._lock:
            message = self._event_cls(window=self._window_id, client_type=self._atom, data=(32, [0, 0, 0, 0, 0]))
            self._sender.send_event(self._target, message, event_mask=0)
            self._sender.flush()

    def close(self) -> None:
        with self._lock:
            self._sender.close()


def xorg_wake(dispatcher: LoopDispatcher, icon: Any) -> Wake:
    """python-xlib: a ClientMessage with a private atom to the icon's window, dispatched by its loop."""
    return _XorgWake(dispatcher, icon)


def wake_for(backend: str, icon: Any, dispatcher: LoopDispatcher) -> Wake:
    """The wake of ``backend``; called on the loop thread once the icon's loop is up."""
    if backend in ("gtk", "appindicator"):
        return gi_wake(dispatcher)
    if backend == "darwin":
        return darwin_wake(dispatcher)
    if backend == "win32":
        return win32_wake(dispatcher, icon)
    if backend == "xorg":
        return xorg_wake(dispatcher, icon)
    call_soon = getattr(icon, "call_soon", None)
    if callable(call_soon):
        return lambda: call_soon(dispatcher.drain)
    raise RuntimeError(f"no way to reach the loop of the pystray backend {backend!r}")
