"""The password in a real Secret Service (GNOME Keyring on its own session bus), as on a Linux desktop.

`m3daemon setup` stores it there; every later command (and the daemon) reads it back. Finding
keyring's backend the usual way imports and probes every backend keyring ships (0.1-0.2 s at each
command's start); m3daemon remembers the one that holds the password and asks it alone.

The keyring runs on a private session bus (tests/secretservice.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
