"""The PyInstaller build (packaging/build.sh: the program folder dist/m3daemon/) for the tests
that check it, built while the rest of the suite runs.

Why: the build takes about three minutes of a 2-core machine, a third of the suite, mostly in
one process. It starts as soon as the tests are collected (when one of them asks for it), at the
lowest CPU priority, so it takes the time the other tests leave idle (servers waiting, browsers,
timeouts) instead of adding its own. The tests that need it wait for it where they stand.

It runs in CI, or with M3DAEMON_TEST_BUILD=1; elsewhere those tests skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXE = REPO / "dist" / "m3daemon" / "m3daemon"  # what packaging/build.sh makes, in its folder
FIXTURES = ("frozen_build", "frozen_program")  # tests that ask for either start the build
TIMEOUT = 1200


def wanted() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("M3DAEMON_TEST_BUILD") == "1"


@dataclass
class Build:
    """packaging/build.sh's outcome: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


class Background:
    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="m3daemon-build-"))
        self.out = (self.work / "stdout").open("w")
        self.err = (self.work / "stderr").open("w")
        nice = ["nice", "-n", "19"] if shutil.which("nice") else []
        self.proc = subprocess.Popen(
            [*nice, "sh", str(REPO / "packaging" / "build.sh")], cwd=REPO, stdout=self.out, stderr=self.err,
            stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "PYTHON": sys.executable, "TMPDIR": str(self.work)},
        )
        self.result: Build | None = None

    def wait(self) -> Build:
        if self.result is None:
            try:
                code = self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self._kill()
                code = -1
            self.out.close()
            self.err.close()
            self.result = Build(code, (self.work / "stdout").read_text(errors="replace"),
                                (self.work / "stderr").read_text(errors="replace"))
        return self.result

    def _kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(30)

    def stop(self) -> None:
        self._kill()
        self.out.close()
        self.err.close()
        shutil.rmtree(self.work, ignore_errors=True)


_running: Background | None = None


def start_if_asked(fixture_names: list[list[str]]) -> None:
    """At the end of collection: start the build when a collected test uses the fixture."""
    global _running
    if _running is None and wanted() and any(f in names for names in fixture_names for f in FIXTURES):
        _running = Background()


def result() -> Build | None:
    """The build's outcome, waiting for it; None when it was not started (not in CI)."""
    return _running.wait() if _running is not None else None


def stop() -> None:
    if _running is not None:
        _running.stop()
