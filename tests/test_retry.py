"""The one retry loop (m3daemon/remote/retry.py), through the fault proxy in front of a real WsgiDAV
server: how many requests a failure costs, how long the client waits, and which methods it repeats.

The waits are recorded by an injected ``sleep`` instead of being slept, so each figure is exact.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from faulthelpers import FOLDER, cong, proxy_for
from faultproxy import FaultProxy, Rule
from servers import DavServer, make_tree

from m3daemon.coordinator.writes import Writer
from m3daemon.core import methods
from m3daemon.errors import ListingError, ServerError, ServerUnreachableError
from m3daemon.remote.http import DavSession, Endpoint
from m3daemon.remote.listing import list_children
from m3daemon.remote.retry import RetryPolicy, parse_retry_after
from m3daemon.server import guard

ATTEMPTS = 3
POLICY = RetryPolicy(attempts=ATTEMPTS, base_delay=0.01, max_delay=5.0)
ANY = lambda path: True


class Session:
    """A session to the proxy, with the waits it asked for."""

    def __init__(self, proxy: FaultProxy, server: DavServer) -> None:
        self.waits: list[float] = []
        self.dav = DavSession(
            Endpoint(proxy.url, FOLDER, server.username, allow_insecure_loopback=True, timeout=10.0),
            server.password, retry=POLICY, sleep=self.waits.append,
        )
        self.proxy = proxy
        self.folder = cong(server)

    def sent(self, method: str) -> int:
        """How many ``method`` requests reached the proxy."""
        return sum(1 for m, _p, _s in self.proxy.log if m == method)


@pytest.fixture
def client(wsgidav_server: DavServer) -> Iterator[Session]:
    make_tree(cong(wsgidav_server), {"Media/2026-01-01/a.jpg": b"a" * 100}, mtime=time.time() - 60)
    with proxy_for(wsgidav_server) as proxy:
        s = Session(proxy, wsgidav_server)
        try:
            yield s
        finally:
            s.dav.close()


# --- a listing costs at most `attempts` requests, whatever fails ---------------------------------


def test_a_listing_cut_off_mid_body_is_asked_again_and_succeeds(client: Session) -> None:
    cut = client.proxy.add(Rule("PROPFIND", ANY, truncate_after=60, times=ATTEMPTS - 1))
    entries = list_children(client.dav, ("Media",))
    assert [e.name for e in entries] == ["2026-01-01"]
    assert cut.hits == ATTEMPTS - 1 and client.sent("PROPFIND") == ATTEMPTS


@pytest.mark.parametrize("fault, error", [
    ({"truncate_after": 60}, ListingError),  # the body breaks off every time
    ({"reset": True}, ServerUnreachableError),  # the connection is reset before any answer
    ({"status": 503}, ServerError),
])
def test_a_listing_that_always_fails_sends_attempts_requests_not_attempts_squared(
    client: Session, fault: dict[str, object], error: type[Exception]
) -> None:
    client.proxy.add(Rule("PROPFIND", ANY, **fault))  # type: ignore[arg-type]  # one fault, every time
    with pytest.raises(error):
        list_children(client.dav, ("Media",))
    assert client.sent("PROPFIND") == ATTEMPTS
    assert len(client.waits) == ATTEMPTS - 1


def test_a_body_cut_then_resets_still_count_as_one_set_of_attempts(client: Session) -> None:
    """The re-ask after a cut body is an attempt of the same loop, not a new loop around one."""
    client.proxy.add(Rule("PROPFIND", ANY, truncate_after=60, times=1))
    client.proxy.add(Rule("PROPFIND", ANY, reset=True))
    with pytest.raises(ServerUnreachableError):
        list_children(client.dav, ("Media",))
    assert client.sent("PROPFIND") == ATTEMPTS


# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize("retry_after, waited", [("2", 2.0), ("120", POLICY.max_delay)])
def test_retry_after_is_honoured_up_to_the_cap(client: Session, retry_after: str, waited: float) -> None:
    client.proxy.add(Rule("PROPFIND", ANY, status=503, headers={"Retry-After": retry_after}, times=1))
    list_children(client.dav, ("Media",))
    assert client.waits == [waited] and client.sent("PROPFIND") == 2


def test_retry_after_as_an_http_date_is_seconds_from_now() -> None:
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    seconds = parse_retry_after(later)
    assert seconds is not None and 28 <= seconds <= 30
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


# --- which methods are repeated ---------------------------------------------------------------


def test_the_session_does_not_repeat_a_move_or_mkcol_that_may_have_happened(client: Session) -> None:
    client.proxy.add(Rule("MOVE", ANY, status=503))
    client.proxy.add(Rule("MKCOL", ANY, reset=True))
    with pytest.raises(ServerError):
        client.dav.request("MOVE", ("Media",), headers={"Destination": client.dav.url(("Moved",))})
    with pytest.raises(ServerUnreachableError):
        client.dav.request("MKCOL", ("New",), collection=True)
    assert client.sent("MOVE") == 1 and client.sent("MKCOL") == 1 and client.waits == []


def test_the_session_repeats_an_idempotent_put_after_its_body_was_sent(client: Session) -> None:
    client.proxy.add(Rule("PUT", ANY, reset=True, times=1))
    resp = client.dav.request("PUT", ("note.txt",), content=b"hello")
    assert resp.status_code in (201, 204) and client.sent("PUT") == 2
    assert (client.folder / "note.txt").read_bytes() == b"hello"


@pytest.mark.parametrize("method", ["PUT", "MOVE", "MKCOL"])
def test_the_coordinators_writes_are_repeated_on_423_for_every_method(client: Session, method: str) -> None:
    """Writer.send declares its writes safe to repeat (temporary names, outcomes checked afterwards)."""
    client.proxy.add(Rule(method, ANY, status=423, headers={"Retry-After": "1"}))
    writer = Writer(client.dav, sleep=client.waits.append)
    headers = {"Destination": client.dav.url(("Moved",))} if method == "MOVE" else None
    resp = writer.send(method, ("Media",) if method == "MOVE" else ("New",), headers=headers,
                       content=b"x" if method == "PUT" else None)
    assert resp.status_code == 423 and client.sent(method) == ATTEMPTS
    assert client.waits == [1.0] * (ATTEMPTS - 1)


def test_client_and_server_share_one_list_of_reading_methods() -> None:
    assert guard.READ_METHODS is methods.READ_METHODS
    assert methods.READ_METHODS == {"GET", "HEAD", "OPTIONS", "PROPFIND"}
    assert methods.READ_METHODS < methods.IDEMPOTENT_METHODS
    assert not {"MOVE", "MKCOL", "COPY", "POST", "LOCK", "PROPPATCH"} & methods.IDEMPOTENT_METHODS
