"""The password in a real Secret Service (GNOME Keyring on its own session bus), as on a Linux desktop.

`m3daemon setup` stores it there; every later command (and the daemon) reads it back. Finding
keyring's backend the usual way imports and probes every backend keyring ships (0.1-0.2 s at each
command's start); m3daemon remembers the one that holds the password and asks it alone.

Needs the Debian packages dbus-daemon and gnome-keyring (skipped without them; fails in CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import wait_until
from servers import skip_or_fail

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-for-the-hall"
URL, USER = "https://dav.example.org", "av@example.org"

# run in a process of its own, as each command is: one step of the person's use
STEP = """
import json, sys
from m3daemon.settings.config import ConnectionConfig
from m3daemon.settings import credentials
conn = ConnectionConfig(url=sys.argv[2], username=sys.argv[3], folder="/")
if sys.argv[1] == "store":
    result = credentials.store_password(conn, sys.argv[4]).value
elif sys.argv[1] == "get":
    result = credentials.get_password(conn)
else:
    result = credentials.delete_password(conn)
backends = sorted(m for m in sys.modules if m.startswith("keyring.backends."))
print(json.dumps({"result": result, "backends": backends}))
"""


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
        probe = ("import keyring.backends.SecretService as s, sys;"
                 "sys.exit(0 if s.Keyring().get_preferred_collection() else 1)")
        wait_until("GNOME Keyring to answer on the session bus",
                   lambda: subprocess.run([sys.executable, "-c", probe], check=False, env=env,
                                          capture_output=True).returncode == 0)
        yield env
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def step(env: dict[str, str], *args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", STEP, args[0], URL, USER, *args[1:]], check=False, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, object] = json.loads(out.stdout)
    return result


def other_backends(read: dict[str, object]) -> list[str]:
    """The backends a read loaded beyond the one that holds the password (and keyring's own
    ``fail``, which its core always imports)."""
    loaded = read["backends"]
    assert isinstance(loaded, list)
    return [b for b in loaded if b not in ("keyring.backends.SecretService", "keyring.backends.fail")]


def places(env: dict[str, str]) -> dict[str, str]:
    data: dict[str, str] = json.loads((Path(env["XDG_CACHE_HOME"]) / "m3daemon" / "password-places.json").read_text())
    return data


def test_setup_stores_the_password_in_gnome_keyring_and_commands_ask_it_alone(secret_service: dict[str, str]) -> None:
    env = secret_service
    stored = step(env, "store", PASSWORD)
    assert stored["result"] == "keyring"
    assert not (Path(env["XDG_CONFIG_HOME"]) / "m3daemon" / "secrets.json").exists()
    assert places(env) == {f"{USER}@{URL}": "keyring.backends.SecretService:Keyring"}

    read = step(env, "get")  # the next command: only the backend that holds the password is loaded
    assert read["result"] == PASSWORD and other_backends(read) == []

    (Path(env["XDG_CACHE_HOME"]) / "m3daemon" / "password-places.json").unlink()  # the cache was cleared
    read = step(env, "get")
    assert read["result"] == PASSWORD
    assert "keyring.backends.kwallet" in other_backends(read)  # keyring's full detection, once
    assert places(env) == {f"{USER}@{URL}": "keyring.backends.SecretService:Keyring"}
    assert other_backends(step(env, "get")) == []


def test_forgetting_the_congregation_removes_the_password_from_gnome_keyring(secret_service: dict[str, str]) -> None:
    env = secret_service
    step(env, "store", PASSWORD)
    assert step(env, "delete")["result"] is True
    assert step(env, "get")["result"] is None
    assert places(env) == {}
