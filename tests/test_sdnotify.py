"""The systemd notification protocol against a real ``AF_UNIX`` datagram socket.

systemd itself is not needed: it only binds a datagram socket and reads what arrives, which is
what these tests do, with a path socket and with an abstract-namespace one (``@name``).
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from m3daemon.daemon import sdnotify

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs AF_UNIX sockets")


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket and its ``$NOTIFY_SOCKET`` value. The folder is short on purpose:
    socket paths are limited to about 107 bytes, and pytest's tmp_path can be longer."""
    folder = tempfile.mkdtemp(prefix="m3n-", dir="/tmp" if os.path.isdir("/tmp") else None)
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield sock, path
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(folder)


def test_notify_sends_one_datagram_to_the_socket_path(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    assert sdnotify.notify("READY=1\nSTATUS=Watching 2 congregation(s)", {"NOTIFY_SOCKET": path}) is True
    assert sock.recv(4096) == b"READY=1\nSTATUS=Watching 2 congregation(s)"


def test_the_environment_is_read_when_none_is_given(listener: tuple[socket.socket, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sdnotify.ready() and sdnotify.watchdog() and sdnotify.stopping()
    assert sdnotify.status("syncing\nCong A")
    assert [sock.recv(4096) for _ in range(4)] == [b"READY=1", b"WATCHDOG=1", b"STOPPING=1",
                                                   b"STATUS=syncing Cong A"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the abstract namespace is Linux only")
def test_an_at_sign_means_the_abstract_namespace() -> None:
    name = f"m3daemon-test-{secrets.token_hex(6)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert sdnotify.notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name}) is True
        assert sock.recv(4096) == b"WATCHDOG=1"


@pytest.mark.parametrize("value", [None, "", "relative/socket", "vsock:2:1234"])
def test_without_a_usable_socket_nothing_is_sent(value: str | None) -> None:
    environ = {} if value is None else {"NOTIFY_SOCKET": value}
    assert sdnotify.notify("READY=1", environ) is False


def test_a_socket_nobody_listens_on_is_not_an_error(tmp_path: Path) -> None:
    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False
    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": "@m3daemon-nobody-" + secrets.token_hex(6)}) is False


def test_an_empty_message_is_not_sent(listener: tuple[socket.socket, str]) -> None:
    assert sdnotify.notify("", {"NOTIFY_SOCKET": listener[1]}) is False


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, None),
    ({"WATCHDOG_USEC": "120000000"}, 60.0),
    ({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": str(os.getpid())}, 60.0),
    ({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),  # meant for another process
    ({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "x"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({"WATCHDOG_USEC": "500000"}, 0.25),
])
def test_watchdog_interval_is_half_the_timeout(environ: dict[str, str], expected: float | None) -> None:
    assert sdnotify.watchdog_interval(environ) == expected


def test_watchdog_interval_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.delenv("WATCHDOG_USEC")
    assert sdnotify.watchdog_interval() is None
