"""A real Secret Service for the tests: a private session bus with an unlocked GNOME Keyring on it.

``secret_service`` (a fixture; conftest imports it) yields the environment to run in: the test's
own HOME and XDG folders, ``DBUS_SESSION_BUS_ADDRESS`` of that bus, and neither
``PYTHON_KEYRING_BACKEND`` nor ``M3DAEMON_PASSWORD``, so keyring finds the real backend as it
would on a desktop. Needs the Debian packages dbus-daemon and gnome-keyring (skipped without
them; fails in CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import skip_or_fail

REPO = Path(__file__).resolve().parent.parent


def _answers(env: dict[str, str]) -> bool:
    probe = ("import keyring.backends.SecretService as s, sys;"
             "sys.exit(0 if s.Keyring().get_preferred_collection() else 1)")
    return subprocess.run([sys.executable, "-c", probe], check=False, env=env, capture_output=True).returncode == 0


@pytest.fixture
def secret_service(isolated_env: Path) -> Iterator[dict[str, str]]:
    """A private session bus with an unlocked GNOME Keyring on it; the environment to run in."""
    missing = [pkg for tool, pkg in (("dbus-daemon", "dbus-daemon"), ("gnome-keyring-daemon", "gnome-keyring"))
               if shutil.which(tool) is None]
    if missing:
        skip_or_fail(f"the Secret Service tests need the Debian packages {', '.join(missing)}")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON_KEYRING_BACKEND", "M3DAEMON_PASSWORD")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    procs: list[subprocess.Popen[str]] = []
    try:
        bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                               start_new_session=True)
        procs.append(bus)
        assert bus.stdout is not None
        env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
        assert env["DBUS_SESSION_BUS_ADDRESS"], "dbus-daemon printed no address"
        keyring_daemon = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=env,
            start_new_session=True)
        procs.append(keyring_daemon)
        assert keyring_daemon.stdin is not None
        keyring_daemon.stdin.write("login-password")  # the login keyring's password, as a desktop login gives it
        keyring_daemon.stdin.close()
        from conftest import wait_until

        wait_until("GNOME Keyring to answer on the session bus", lambda: _answers(env))
        yield env
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
