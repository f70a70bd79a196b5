"""A command in a real terminal (a pty), driven answer by answer: wait for a prompt, type a line."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from collections.abc import Sequence


class Terminal:
    """``m3daemon ARGS`` in a pty. :meth:`expect` waits for a text (after what was already
    matched), :meth:`answer` types a line; the child is killed if the test fails."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.execve(sys.executable, [sys.executable, "-m", "m3daemon", *args], env or dict(os.environ))
        self.seen = ""
        self.pos = 0
        self.status: int | None = None

    def _read(self, timeout: float) -> bool:
        ready, _w, _x = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:
            return False
        if not chunk:
            return False
        self.seen += chunk.decode(errors="replace").replace("\r\n", "\n")
        return True

    def expect(self, text: str, timeout: float = 60) -> str:
        """Wait until ``text`` appears after the last match; the output up to it is returned."""
        deadline = time.monotonic() + timeout
        while (found := self.seen.find(text, self.pos)) < 0:
            if time.monotonic() > deadline or not self._read(min(1.0, max(0.0, deadline - time.monotonic()))):
                if self.seen.find(text, self.pos) >= 0:
                    break
                self.kill()
                raise AssertionError(f"never saw {text!r}; the terminal showed:\n{self.seen[self.pos:]}")
        found = self.seen.find(text, self.pos)
        before = self.seen[self.pos:found]
        self.pos = found + len(text)
        return before

    def answer(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def ask(self, prompt: str, line: str) -> str:
        before = self.expect(prompt)
        self.answer(line)
        return before

    def finish(self, timeout: float = 60) -> int:
        """Read to the end and return the exit code (the child is killed after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while self.status is None:
            open_ = self._read(0.2)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read(0.1) and select.select([self.fd], [], [], 0)[0]:
                    pass
                self.status = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"still running; the terminal showed:\n{self.seen}")
            elif not open_:
                time.sleep(0.05)  # the terminal closed; the process is about to end
        os.close(self.fd)
        return self.status

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
