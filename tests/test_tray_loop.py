"""The tray's loop dispatcher: every icon/menu change runs on the loop thread, in order.

gtk/appindicator are exercised for real under Xvfb (tests/test_tray_xvfb.py); the Windows and
macOS wakes cannot run here, so they are driven with simulated inputs: a PostMessageW that
queues the message for the window procedure, and an AppHelper.callAfter that queues the call
for the run loop. What is real is the part that is ours: the handler registered in pystray's
``_message_handlers`` and the order and thread in which queued changes run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import pytest

from m3daemon.tray.loop import WM_M3_CALL, LoopDispatcher, NotOnLoopThread, darwin_wake, win32_wake


class LoopThread:
    """A thread standing in for the main thread's native loop: it runs what is posted to it."""

    def __init__(self) -> None:
        self.posted: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="native-loop")
        self.started = threading.Event()
        self.thread.start()
        self.started.wait(5)

    def _run(self) -> None:
        self.started.set()
        while (job := self.posted.get()) is not None:
            job()

    def stop(self) -> None:
        self.posted.put(None)
        self.thread.join(5)


def run_on(loop: LoopThread, dispatcher: LoopDispatcher, n: int) -> list[tuple[int, bool]]:
    seen: list[tuple[int, bool]] = []
    done = threading.Event()
    for i in range(n):
        dispatcher.call_soon(lambda i=i: seen.append((i, dispatcher.on_loop_thread())))
    dispatcher.call_soon(done.set)
    assert done.wait(5)
    return seen


def test_win32_changes_are_posted_to_the_icon_window_and_run_by_its_window_procedure() -> None:
    loop = LoopThread()
    icon: Any = type("Win32Icon", (), {})()
    icon._hwnd, icon._message_handlers = 0x1234, {}
    messages: list[tuple[int, int]] = []

    def post_message(hwnd: int, msg: int, wparam: int, lparam: int) -> int:
        messages.append((hwnd, msg))
        # what Windows does: the window procedure (pystray's _dispatcher) runs on the loop thread
        loop.posted.put(lambda: icon._message_handlers[msg](wparam, lparam))
        return 1

    dispatcher = LoopDispatcher()
    try:
        dispatcher.bind(win32_wake(dispatcher, icon, post_message), loop.thread.ident)
        assert WM_M3_CALL in icon._message_handlers
        assert run_on(loop, dispatcher, 5) == [(i, True) for i in range(5)]
        assert {m for m in messages} == {(0x1234, WM_M3_CALL)}
    finally:
        loop.stop()


def test_win32_a_failed_post_drops_the_change_and_says_so() -> None:
    icon: Any = type("Win32Icon", (), {})()
    icon._hwnd, icon._message_handlers = 0x1234, {}
    dispatcher = LoopDispatcher()
    dispatcher.bind(win32_wake(dispatcher, icon, lambda *args: 0))  # the window is gone
    assert dispatcher.call_soon(lambda: None) is False


def test_darwin_changes_run_through_callafter_on_the_main_run_loop() -> None:
    loop = LoopThread()
    dispatcher = LoopDispatcher()
    try:
        dispatcher.bind(darwin_wake(dispatcher, lambda func: loop.posted.put(func)), loop.thread.ident)
        assert run_on(loop, dispatcher, 3) == [(0, True), (1, True), (2, True)]
    finally:
        loop.stop()


def test_a_change_off_the_loop_thread_is_refused() -> None:
    dispatcher = LoopDispatcher()
    other = threading.Thread(target=lambda: None)
    other.start()
    other.join()
    dispatcher.bind(lambda: None, other.ident)
    with pytest.raises(NotOnLoopThread, match="Icon.menu must run on the tray's loop thread"):
        dispatcher.assert_loop_thread("Icon.menu")


def test_nothing_is_queued_before_the_loop_runs_or_after_it_ended() -> None:
    dispatcher = LoopDispatcher()
    assert dispatcher.call_soon(lambda: None) is False
    dispatcher.bind(lambda: None)
    assert dispatcher.call_soon(lambda: None) is True
    dispatcher.close()
    assert dispatcher.call_soon(lambda: None) is False
