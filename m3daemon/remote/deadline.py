"""The overall deadline of a request: every socket read and write of a thread inside
:func:`deadline` ends by then.

Apart from the transport (remote/transport.py) so that a session can set a deadline without
loading httpx: a sync whose listing and downloads all go over libcurl never loads it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from m3daemon.errors import DeadlineExceeded

_scope = threading.local()
DEADLINE_WORDS = "the request did not finish within"


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every socket read and write of this thread, inside the block, ends by ``seconds`` from now
    (an enclosing, earlier deadline still wins)."""
    outer: tuple[float, float] | None = getattr(_scope, "at", None)
    at = time.monotonic() + seconds
    _scope.at = (at, seconds) if outer is None or at < outer[0] else outer
    try:
        yield
    finally:
        _scope.at = outer


def bounded(timeout: float | None) -> float | None:
    """``timeout``, or the time left before the deadline when that is shorter."""
    scope: tuple[float, float] | None = getattr(_scope, "at", None)
    if scope is None:
        return timeout
    left = scope[0] - time.monotonic()
    if left <= 0:
        raise exceeded()
    return left if timeout is None or left < timeout else timeout


def exceeded() -> DeadlineExceeded:
    scope: tuple[float, float] | None = getattr(_scope, "at", None)
    return DeadlineExceeded(f"{DEADLINE_WORDS} {scope[1] if scope else 0:g} seconds")
