"""The one retry loop of m3daemon and the policy it follows.

Every request to the congregation's server (the session's reads and streams, the listing, the
coordinator's writes and uploads) runs its attempts through :func:`run`, so what is retried, how
often and how long we wait is decided here and only here:

* at most ``RetryPolicy.attempts`` requests in all, whatever fails: a connection that breaks while a
  body is read counts as one attempt of the same loop, never as the start of a new loop;
* a connection failure is retried, except a TLS verification failure (retrying cannot fix a
  certificate);
* an answer in ``RetryPolicy.statuses`` (423 Locked, 429, 502–504) is retried, waiting what
  ``Retry-After`` says (up to the cap) or a capped exponential back-off with jitter;
* only a request that may be repeated is retried: an idempotent method (:mod:`m3daemon.core.methods`),
  or one whose caller says repeating it is safe (the coordinator's writes check their outcome). A
  request that never reached the server (the connection could not be opened) may always be repeated.

Why no library (tenacity, backoff): the loop is short, and what matters here — which statuses, which
transport errors, Retry-After, whether a body may be sent again — is ours to decide either way.
"""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from m3daemon.core.methods import IDEMPOTENT_METHODS
from m3daemon.errors import RetryDue
from m3daemon.remote.deadline import DEADLINE_WORDS

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({423, 429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, how long between them, and which answers ask for another one."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    statuses: frozenset[int] = RETRY_STATUSES

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after attempt number ``attempt`` (0-based). ``Retry-After`` wins, up to the cap."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        backoff: float = self.base_delay * (2.0 ** attempt)
        return min(backoff * (0.75 + random.random() / 2), self.max_delay)

    @staticmethod
    def repeatable(method: str) -> bool:
        return method.upper() in IDEMPOTENT_METHODS


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # (rarely needed: 2 ms of a command's start)

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def tls_reason(exc: BaseException) -> str | None:
    """Why the TLS handshake failed, when that is what ``exc`` (or one of its causes) is about."""
    ssl = sys.modules.get("ssl")  # not imported: no TLS error of Python's own can have been raised
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if ssl is not None and isinstance(cur, ssl.SSLCertVerificationError):
            return cur.verify_message or str(cur)
        if ssl is not None and isinstance(cur, ssl.SSLError):
            return cur.reason or str(cur)
        text = str(cur)
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text and "certificate" in text.lower():
            return text
        cur = cur.__cause__ or cur.__context__
    return None


@dataclass(frozen=True)
class FailedAttempt:
    """A first attempt made elsewhere (on libcurl, remote/curl_listing.py) that this policy
    retries: a transport failure, or a status such as 429 or 503 with its ``Retry-After``. The
    request then waits as after a first attempt, and httpx makes the attempts left."""

    retry_after: float | None = None


class Attempt:
    """Handed to each attempt, so that it can ask for another one when the answer says so."""

    def __init__(self, number: int, last: bool, retry_status: bool, statuses: frozenset[int]) -> None:
        self.number = number  # 0-based
        self.last = last
        self._retry_status = retry_status
        self._statuses = statuses

    def will_retry(self, resp: httpx.Response) -> bool:
        return self._retry_status and not self.last and resp.status_code in self._statuses

    def check(self, resp: httpx.Response) -> None:
        """Ask for another attempt (closing ``resp``) when its status is one to retry and one is left."""
        if self.will_retry(resp):
            resp.close()
            raise RetryDue(resp.status_code, parse_retry_after(resp.headers.get("Retry-After")))


def run(
    policy: RetryPolicy,
    method: str,
    attempt: Callable[[Attempt], T],
    *,
    describe: str,
    sleep: Callable[[float], None],
    transport_error: Callable[[httpx.TransportError], BaseException],
    safe_to_repeat: bool = False,
    statuses: frozenset[int] | None = None,
    before_retry: Callable[[], None] = lambda: None,
    after: FailedAttempt | None = None,
) -> T:
    """Call ``attempt`` until it returns, at most ``policy.attempts`` times. ``after`` a first
    attempt made elsewhere (remote/curl_listing.py), the policy's wait comes first and that
    attempt counts: ``attempt`` is called at least once.

    ``attempt`` sends one request (and may read its body); it calls :meth:`Attempt.check` on the
    answer to have a retryable status retried. A transport error it lets out is retried when the
    policy allows, else it leaves as ``transport_error(exc)``. ``safe_to_repeat`` marks a request the
    caller may repeat although its method is not idempotent. ``before_retry`` undoes what a failed
    attempt reported (bytes counted for a progress bar).
    """
    import httpx  # (only requests on the httpx session come here: a libcurl-only sync never loads it)

    # Transport errors raised before the request could reach the server: nothing was sent.
    not_sent = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
    repeatable = safe_to_repeat or policy.repeatable(method)
    codes = policy.statuses if statuses is None else statuses
    first = 0
    if after is not None:
        first = min(1, policy.attempts - 1)
        _pause(policy, sleep, 0, after.retry_after, f"{describe}: the first attempt, on libcurl")
    for number in range(first, policy.attempts):
        last = number + 1 >= policy.attempts
        try:
            return attempt(Attempt(number, last, repeatable, codes))
        except RetryDue as due:
            before_retry()
            if due.status == 423:
                log.warning("%s: locked by another client; retrying", describe)
            _pause(policy, sleep, number, due.retry_after, f"{describe}: {due.status}")
        except httpx.TransportError as exc:
            # A server too slow for the overall deadline would be as slow again: not retried.
            if (last or tls_reason(exc) is not None or DEADLINE_WORDS in str(exc)
                    or not (repeatable or isinstance(exc, not_sent))):
                raise transport_error(exc) from exc
            before_retry()
            _pause(policy, sleep, number, None, f"{describe}: {exc!r}")
    raise AssertionError("unreachable")  # pragma: no cover - the last attempt returns or raises


def _pause(policy: RetryPolicy, sleep: Callable[[float], None], number: int, retry_after: float | None,
           why: str) -> None:
    delay = policy.delay(number, retry_after)
    log.info("retrying in %.1fs after %s", delay, why)
    sleep(delay)
