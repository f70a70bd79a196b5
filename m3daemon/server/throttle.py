"""How fast the server lets an address go: the request rate per address (token buckets) and the
wrong-password throttle per address and per account. Split from :mod:`m3daemon.server.guard`,
whose :class:`~m3daemon.server.guard.Guard` applies them (the policy is described there).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


# --- request rate ---------------------------------------------------------------------------------


class TokenBuckets:
    """One token bucket per key (client address): ``burst`` tokens, refilled at ``rate`` per second."""

    MAX_KEYS = 4096

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when a request may go ahead (a token is taken), else the seconds until one may."""
        now = self._clock()
        with self._lock:
            tokens, when = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                self._prune(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        if len(self._buckets) <= self.MAX_KEYS:
            return
        full_after = self.burst / self.rate
        for key in [k for k, (_t, w) in self._buckets.items() if now - w >= full_after]:
            del self._buckets[key]


# --- wrong passwords ------------------------------------------------------------------------------


@dataclass
class Attempt:
    """A password check that :meth:`FailureThrottle.reserve` counted as a failure in advance."""

    address: str
    user: str | None
    when: float
    checked: bool = False  # a password was checked (and was wrong, unless settled)
    settled: bool = False


class FailureThrottle:
    """At most ``max_failures`` wrong passwords per client address, and per account, within
    ``window`` seconds; beyond that, :meth:`blocked_for` says how long to wait."""

    MAX_KEYS = 4096

    def __init__(self, max_failures: int, window: float, trusted_seconds: float,
                 clock: Clock = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window = window
        self.trusted_seconds = trusted_seconds
        self._clock = clock
        self._by_address: dict[str, collections.deque[float]] = {}
        self._by_user: dict[str, collections.deque[float]] = {}
        self._trusted: dict[tuple[str, str], float] = {}  # (user, address) -> last good login
        self._lock = threading.Lock()

    def _recent(self, table: dict[str, collections.deque[float]], key: str, now: float) -> collections.deque[float]:
        times = table.get(key)
        if times is None:
            return collections.deque()
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del table[key]
        return times

    def _wait(self, times: collections.deque[float], now: float) -> float:
        if len(times) < self.max_failures:
            return 0.0
        # the oldest failure that still counts must leave the window
        return times[-self.max_failures] + self.window - now

    def blocked_for(self, address: str, user: str | None) -> float:
        """How long ``address`` (asking for ``user``) must wait; 0 when a password may be checked."""
        now = self._clock()
        with self._lock:
            return self._blocked(address, user, now)

    def _blocked(self, address: str, user: str | None, now: float) -> float:
        wait = self._wait(self._recent(self._by_address, address, now), now)
        if user is not None and not self._is_trusted(user, address, now):
            wait = max(wait, self._wait(self._recent(self._by_user, user, now), now))
        return max(wait, 0.0)

    def reserve(self, address: str, user: str | None) -> tuple[float, Attempt | None]:
        """Check the limits and, in the same step, count this attempt as a failure: ``(0, attempt)``
        when its password may be checked, ``(seconds, None)`` when it must wait. :meth:`succeeded`
        with the attempt takes the failure back. Checking and counting apart would let parallel
        guesses all pass the check before any of them counts (40 at once got 25 checks, not 10)."""
        now = self._clock()
        with self._lock:
            wait = self._blocked(address, user, now)
            if wait > 0:
                return wait, None
            self._record(address, user, now)
            return 0.0, Attempt(address, user, now)

    def _is_trusted(self, user: str, address: str, now: float) -> bool:
        when = self._trusted.get((user, address))
        return when is not None and now - when < self.trusted_seconds

    def failed(self, address: str, user: str | None) -> None:
        """A wrong password from ``address`` (for the existing account ``user``, if any) that was
        not reserved (a malformed header)."""
        now = self._clock()
        with self._lock:
            self._record(address, user, now)

    def _record(self, address: str, user: str | None, now: float) -> None:
        self._by_address.setdefault(address, collections.deque()).append(now)
        if user is not None:
            self._by_user.setdefault(user, collections.deque()).append(now)
        self._prune(now)

    def succeeded(self, address: str, user: str, attempt: Attempt | None = None) -> None:
        """A right password: the address is trusted for the account, and the attempt's reserved
        failure is taken back."""
        now = self._clock()
        with self._lock:
            if attempt is not None:
                self._take_back(attempt)
            self._trusted[(user, address)] = now
            if len(self._trusted) > self.MAX_KEYS:
                for key in [k for k, w in self._trusted.items() if now - w >= self.trusted_seconds]:
                    del self._trusted[key]

    def cancel(self, attempt: Attempt) -> None:
        """The request ended before any password was checked (refused earlier, or not Basic)."""
        with self._lock:
            if not attempt.checked:
                self._take_back(attempt)

    def _take_back(self, attempt: Attempt) -> None:
        if attempt.settled:
            return
        attempt.settled = True
        for table, key in ((self._by_address, attempt.address), (self._by_user, attempt.user)):
            times = table.get(key) if key is not None else None
            if times is not None and attempt.when in times:
                times.remove(attempt.when)

    def _prune(self, now: float) -> None:
        for table in (self._by_address, self._by_user):
            if len(table) > self.MAX_KEYS:
                for key in list(table):
                    self._recent(table, key, now)
