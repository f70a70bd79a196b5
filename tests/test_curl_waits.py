"""A loop on libcurl waits only as long as libcurl says it may.

libcurl can want to run again at once while no socket has anything to read: a transfer that moves
to its next step, a TLS record it already holds, a handle just added. A ``select`` on its sockets
then waits its whole timeout for nothing. The listing's loop did, in 9 of 160 no-op syncs here,
250 ms each (docs/performance.md, "fourteenth stop").
"""

from __future__ import annotations

import ast
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pycurl  # (a dependency on every platform: an import that fails is a broken install, not a skip)
import pytest

from m3daemon.remote.curl import wait_for_sockets

PACKAGE = Path(__file__).resolve().parents[1] / "m3daemon"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that takes connections and never answers: the kernel completes each TCP handshake
    from the backlog, so libcurl sends its request and waits."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"


def _handle(url: str) -> pycurl.Curl:
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
    return c


def _waiting_for_an_answer(url: str) -> tuple[pycurl.CurlMulti, list[pycurl.Curl]]:
    """A multi whose one transfer has sent its request and waits to read the answer."""
    multi, first = pycurl.CurlMulti(), _handle(url)
    multi.add_handle(first)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        multi.perform()
        readable, writable, _errors = multi.fdset()
        if readable and not writable:
            return multi, [first]
        wait_for_sockets(multi, 0.01)
    raise AssertionError("libcurl never sent its request to the silent server")


def _close(multi: pycurl.CurlMulti, handles: list[pycurl.Curl]) -> None:
    for c in handles:
        multi.remove_handle(c)
        c.close()
    multi.close()


def test_a_loop_does_not_wait_when_libcurl_wants_to_run_at_once(silent_server: str) -> None:
    multi, handles = _waiting_for_an_answer(silent_server)
    try:
        handles.append(_handle(silent_server))
        multi.add_handle(handles[-1])  # a new transfer: libcurl wants to start it now
        assert multi.timeout() == 0
        assert multi.fdset()[0], "the first transfer's socket is waited on, with nothing to read"

        started = time.monotonic()
        wait_for_sockets(multi, 10)
        assert time.monotonic() - started < 2  # a plain select of the sockets waits all 10 s
    finally:
        _close(multi, handles)


def test_a_loop_with_nothing_to_do_waits_for_its_sockets_instead_of_spinning(silent_server: str) -> None:
    multi, handles = _waiting_for_an_answer(silent_server)
    try:
        assert multi.timeout() == -1  # no timer: only the server's answer can wake it
        started = time.monotonic()
        wait_for_sockets(multi, 0.2)
        assert time.monotonic() - started >= 0.15
    finally:
        _close(multi, handles)


def _selects(tree: ast.AST) -> list[int]:
    """Lines that call ``<something>.select(...)``, other than the ``select`` module's own."""
    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "select"
            and not (isinstance(n.func.value, ast.Name) and n.func.value.id == "select")]


def test_every_loop_on_a_curl_multi_waits_through_wait_for_sockets() -> None:
    """One rule, in one place: no other code of m3daemon selects on a multi's sockets itself."""
    found = {f"{path.relative_to(PACKAGE.parent).as_posix()}:{line}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for line in _selects(ast.parse(path.read_text(encoding="utf-8")))}
    curl = ast.parse((PACKAGE / "remote" / "curl.py").read_text(encoding="utf-8"))
    helper = next(n for n in ast.walk(curl) if isinstance(n, ast.FunctionDef) and n.name == "wait_for_sockets")
    assert found == {f"m3daemon/remote/curl.py:{line}" for line in _selects(helper)}
