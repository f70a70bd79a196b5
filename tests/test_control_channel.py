"""The channel between the CLI and the running daemon: answers at once, survives a connection
the daemon closed, and works with a daemon older than the CLI."""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from m3daemon.cli.update_cmd import _wait_for
from m3daemon.daemon.control import ControlApp, ControlClient, ControlInfo, ControlServer


@pytest.fixture
def control() -> Iterator[tuple[ControlApp, ControlClient]]:
    app = ControlApp("token")
    server = ControlServer(app)
    server.start()
    client = ControlClient(ControlInfo(server.port, "token", 0))
    try:
        yield app, client
    finally:
        client.close()
        server.stop()


def test_each_request_on_a_kept_alive_connection_is_answered_at_once(
    control: tuple[ControlApp, ControlClient],
) -> None:
    app, client = control
    app.route("GET", "/api/ping", lambda body: (200, {"pid": 1}))
    client.call("GET", "ping")
    took = []
    for _ in range(7):
        started = time.perf_counter()
        assert client.call("GET", "ping") == {"pid": 1}
        took.append(time.perf_counter() - started)
    # Held back by Nagle's algorithm, each answer waited for the client's delayed ACK: 40 ms.
    assert statistics.median(took) < 0.02, took


def test_a_wrong_token_is_an_error_that_says_what_to_do(control: tuple[ControlApp, ControlClient]) -> None:
    from m3daemon.errors import DaemonRequestError

    app, client = control
    app.route("GET", "/api/ping", lambda body: (200, {}))
    client.info = ControlInfo(client.info.port, "wrong", 0)
    with pytest.raises(DaemonRequestError) as caught:
        client.call("GET", "ping")
    assert caught.value.status == 403
    assert "m3daemon quit" in caught.value.remedy


class OneAnswerPerConnection:
    """A daemon that answers one request on each connection and then closes it, as an idle
    timeout does. ``answer(n)`` gives the bytes sent on the n-th connection."""

    def __init__(self, answer: Callable[[int], bytes]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.connections = 0
        self.closed = threading.Event()  # the last connection was closed after its answer
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.closed.clear()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                conn.sendall(self.answer(self.connections))
            self.closed.set()


def numbered(n: int) -> bytes:
    """A JSON answer without "Connection: close": to the client it looks kept alive."""
    body = json.dumps({"n": n}).encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def test_a_connection_the_daemon_closed_is_opened_again() -> None:
    daemon = OneAnswerPerConnection(numbered)
    client = ControlClient(ControlInfo(daemon.port, "token", 0))
    try:
        assert client.call("GET", "ping") == {"n": 1}
        assert daemon.closed.wait(5)
        assert client.call("GET", "ping") == {"n": 2}
    finally:
        client.close()
        daemon.sock.close()


def test_the_cli_waits_for_a_daemon_without_the_wait_call_by_asking_its_status(
    control: tuple[ControlApp, ControlClient], tmp_path: Path,
) -> None:
    app, client = control
    done = {"seq": 0}
    key = str(tmp_path / "cong.toml")

    def status(body: dict[str, Any]) -> tuple[int, Any]:
        return 200, {"congregations": [{"config": key, "completed_seq": done["seq"], "state": "up-to-date"}]}

    app.route("GET", "/api/status", status)  # an older daemon: no /api/wait
    threading.Timer(0.3, lambda: done.update(seq=5)).start()
    assert _wait_for(client, key, 5)["completed_seq"] == 5


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"n\":\r\n2;x=y\r\n 7\r\n1\r\n}\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"n\": 7}",
    b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\n{\"n\": 7}",
], ids=["chunked", "to-the-end", "http-1.0"])
def test_every_framing_of_an_answer_is_read(answer: bytes) -> None:
    daemon = OneAnswerPerConnection(lambda n: answer)
    client = ControlClient(ControlInfo(daemon.port, "token", 0))
    try:
        assert client.call("GET", "ping") == {"n": 7}
        assert client.call("GET", "ping") == {"n": 7}, "a closing answer: the next request opens anew"
    finally:
        client.close()
        daemon.sock.close()


@pytest.mark.parametrize("answer", [
    b"SSH-2.0-OpenSSH_9.6\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"cut\": ",
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Pad: " + b"x" * 70_000,
], ids=["not-http", "cut-off", "huge", "endless-head"])
def test_something_else_on_the_control_port_is_not_a_running_daemon(answer: bytes, tmp_path: Path) -> None:
    from m3daemon.daemon.control import write_control_file
    from m3daemon.errors import DaemonAnswerError

    daemon = OneAnswerPerConnection(lambda n: answer)
    try:
        write_control_file(tmp_path, ControlInfo(daemon.port, "token", 0))
        assert ControlClient.connect(tmp_path) is None
        client = ControlClient(ControlInfo(daemon.port, "token", 0))
        with pytest.raises(DaemonAnswerError):
            client.call("GET", "ping")
        client.close()
    finally:
        daemon.sock.close()
