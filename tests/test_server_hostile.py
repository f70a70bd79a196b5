"""The congregation's server under hostile connections: silent ones, slowloris ones, and too many
from one address, while a member syncs. (bench/hostile.py does the same with 200 + 200.)"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from conftest import wait_until
from hostile import Timings, capped_clients, loopback_aliases_work, member_probe, run_attack, wait_until_open
from servers import make_tree
from test_server import MEMBER, MEMBER_PW, _own_server, server, server_dir  # noqa: F401 - the fixtures

from m3daemon.server import ServerHandle

pytestmark = pytest.mark.skipif(not loopback_aliases_work() and os.environ.get("CI") != "true",
                                reason="needs the loopback addresses 127.0.0.2 … (Linux has them)")

IDLE, SLOW, DEADLINE, CAP = 20, 20, 2.0, 8


def test_a_member_is_answered_at_once_while_idle_and_slowloris_connections_are_open(
        server_dir: Path) -> None:  # noqa: F811 - the fixture
    make_tree(server_dir / "data", {"Media/Recurring/year.jpg": b"j" * 200_000})
    with _own_server(server_dir, handshake_seconds=DEADLINE, header_seconds=DEADLINE,
                     connections_per_address=CAP) as srv:
        # the member's first login costs a scrypt check (a third of a second, more on a busy
        # machine); it is remembered, as on a server that has been running
        member_probe(srv.url, srv.ca_file, MEMBER, MEMBER_PW, "/Media/Recurring/year.jpg", 0, Timings(),
                     once=True)
        idle, slow, attack, until = run_attack("127.0.0.1", srv.port, srv.ca_file, idle=IDLE, slow=SLOW,
                                               seconds=3 * DEADLINE + 1, per_address=4, every=0.5)
        wait_until_open(idle, IDLE)
        wait_until_open(slow, SLOW)
        timings = Timings()
        member_probe(srv.url, srv.ca_file, MEMBER, MEMBER_PW, "/Media/Recurring/year.jpg", until - 1, timings,
                     every=0.2)
        over = asyncio.run(capped_clients("127.0.0.1", srv.port, "127.0.9.2", 3 * CAP, hold=0.5))
        attack.join(30)
    assert not attack.is_alive()
    assert not timings.failures, timings.failures
    assert len(timings.propfind) >= 5 and max(timings.propfind) < 1.0 and max(timings.get) < 1.0, timings.summary()
    # the silent connections were closed at the handshake deadline (and came back, and were closed again)
    assert idle.most_open >= IDLE and idle.cut >= 2 * IDLE
    assert max(idle.lifetimes) < DEADLINE + 1.5, max(idle.lifetimes)
    # the slow heads got "408 Request Timeout" at the header deadline
    assert slow.most_open >= SLOW and slow.answered_408 >= SLOW
    assert max(slow.lifetimes) < 2 * DEADLINE + 1.5, max(slow.lifetimes)
    # one address gets CAP connections; the others are closed at once
    assert over == CAP


def test_a_request_that_bypasses_the_front_is_refused(server: ServerHandle) -> None:  # noqa: F811
    """cheroot listens on a private socket; a request there without the front's secret gets 403."""
    import http.client
    import socket

    path = server._socket_dir / "backend.sock" if server._socket_dir else None
    if path is None:
        pytest.skip("the backend is on loopback TCP here (Windows)")
    assert (path.parent.stat().st_mode & 0o077) == 0  # only this user can reach it

    class Unix(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(str(path))

    conn = Unix("localhost")
    conn.request("GET", "/", headers={"X-M3daemon-Peer": "guess 10.0.0.1"})
    resp = conn.getresponse()
    assert resp.status == 403 and b"connect to the server" in resp.read()
    conn.close()


def test_a_client_cannot_name_its_own_address(server: ServerHandle, server_dir: Path) -> None:  # noqa: F811
    """The front replaces any X-M3daemon-Peer a client sends: the throttles and the log see the
    real address."""
    import ssl

    import httpx

    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with httpx.Client(base_url=server.url, auth=(MEMBER, MEMBER_PW), verify=ctx, trust_env=False) as c:
        resp = c.request("PROPFIND", "/Media/", headers={"Depth": "0", "X-M3daemon-Peer": "guess 10.9.9.9"})
    assert resp.status_code == 207
    access_log = server_dir / "logs" / "access.log"

    def logged() -> list[str]:  # written when the server closes the answer, just after the client has it
        return [line for line in access_log.read_text().splitlines() if '"PROPFIND /Media/"' in line]

    last = wait_until("the access log line", logged)[-1]
    assert " 127.0.0.1 bob " in last and "10.9.9.9" not in access_log.read_text()
