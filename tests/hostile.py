"""Hostile clients for the congregation's server: idle and slowloris connections from many loopback
addresses, and a member who measures how long the server takes to answer meanwhile.

Used by tests/test_server_hostile.py (a few dozen connections) and bench/hostile.py (hundreds).
Every connection goes to a loopback address; the whole 127.0.0.0/8 is loopback on Linux, so
127.0.0.2, 127.0.0.3 … are distinct client addresses for the server. Everything stops by itself
at ``until`` (a time.monotonic() value).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Tally:
    """What the hostile connections saw."""

    opened: int = 0  # TCP connections made
    refused: int = 0  # closed by the server before the client's first step (the per-address cap)
    cut: int = 0  # closed by the server while the client dawdled
    answered_408: int = 0  # slowloris heads answered "408 Request Timeout"
    open_now: int = 0
    most_open: int = 0
    lifetimes: list[float] = field(default_factory=list)  # seconds from connect to the server's close

    def up(self) -> None:
        self.opened += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)

    def down(self, started: float) -> None:
        self.open_now -= 1
        self.lifetimes.append(time.monotonic() - started)


def addresses(first: int, count: int) -> list[str]:
    """``count`` loopback addresses from 127.0.<first // 250>.<…>, skipping 127.0.0.1."""
    out = []
    n = first
    while len(out) < count:
        a, b = divmod(n, 250)
        out.append(f"127.0.{a}.{b + 2}")
        n += 1
    return out


async def _connect(host: str, port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port, local_addr=(source, 0))


async def idle_client(host: str, port: int, source: str, until: float, tally: Tally) -> None:
    """Connects and sends nothing; when the server closes, connects again, until ``until``."""
    while time.monotonic() < until:
        try:
            reader, writer = await _connect(host, port, source)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        started = time.monotonic()
        tally.up()
        try:
            data = await asyncio.wait_for(reader.read(1), max(until - time.monotonic(), 0.01))
            if not data:
                tally.cut += 1
        except (TimeoutError, OSError):
            pass
        finally:
            tally.down(started)
            writer.transport.abort()


async def slowloris_client(host: str, port: int, source: str, until: float, tally: Tally,
                           context: ssl.SSLContext, every: float = 1.0) -> None:
    """Finishes the TLS handshake, then sends a request head one short header line every
    ``every`` seconds, never ending it; when the server closes, starts again, until ``until``."""
    while time.monotonic() < until:
        try:
            reader, writer = await _connect(host, port, source)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        started = time.monotonic()
        tally.up()
        try:
            await asyncio.wait_for(writer.start_tls(context, server_hostname="127.0.0.1"),
                                   max(until - time.monotonic(), 0.01))
            writer.write(b"PROPFIND / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            n = 0
            while time.monotonic() < until:
                got = asyncio.ensure_future(reader.read(4096))
                done, _ = await asyncio.wait({got}, timeout=min(every, max(until - time.monotonic(), 0.01)))
                if got in done:
                    data = got.result()
                    if data.startswith(b"HTTP/1.1 408"):
                        tally.answered_408 += 1
                    tally.cut += 1
                    break
                got.cancel()
                writer.write(f"X-Slow-{n}: {n}\r\n".encode())
                await writer.drain()
                n += 1
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError):
            tally.cut += 1
        finally:
            tally.down(started)
            writer.transport.abort()


async def capped_clients(host: str, port: int, source: str, count: int, hold: float) -> int:
    """Opens ``count`` connections from one address at once; returns how many were still open
    after ``hold`` seconds (the rest the server closed at once: its per-address cap)."""
    pairs = []
    for _ in range(count):
        try:
            pairs.append(await _connect(host, port, source))
        except OSError:
            pass
    await asyncio.sleep(hold)
    alive = 0
    for reader, writer in pairs:
        try:
            data = await asyncio.wait_for(reader.read(1), 0.05)
            alive += 0 if not data else 1
        except TimeoutError:
            alive += 1  # nothing came, and it was not closed
        except OSError:
            pass
        writer.transport.abort()
    return alive


@dataclass
class Timings:
    """The member's requests while the attack ran: seconds each, by kind."""

    propfind: list[float] = field(default_factory=list)
    get: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"requests": len(self.propfind) + len(self.get), "failures": len(self.failures)}
        for name, values in (("propfind", self.propfind), ("get", self.get)):
            if values:
                out[f"{name}_median_s"] = round(statistics.median(values), 3)
                out[f"{name}_max_s"] = round(max(values), 3)
        return out


def member_probe(url: str, ca_file: Path, user: str, password: str, get_path: str, until: float,
                 timings: Timings, every: float = 0.5, fresh: bool = True,
                 stop: Callable[[], bool] = lambda: False, once: bool = False) -> None:
    """A member syncing meanwhile: PROPFIND Depth 1 of the folder and a GET of one file, every
    ``every`` seconds, each time on a new connection (a new TLS handshake) when ``fresh``; ``once``:
    one round, whatever ``until`` says."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    shared = None if fresh else httpx.Client(base_url=url, auth=(user, password), verify=ctx, timeout=30, trust_env=False)
    try:
        while once or (time.monotonic() < until and not stop()):
            client = shared or httpx.Client(base_url=url, auth=(user, password), verify=ctx, timeout=30, trust_env=False)
            try:
                t = time.perf_counter()
                r = client.request("PROPFIND", "/", headers={"Depth": "1"})
                timings.propfind.append(time.perf_counter() - t)
                if r.status_code != 207:
                    timings.failures.append(f"PROPFIND {r.status_code}")
                t = time.perf_counter()
                r = client.get(get_path)
                timings.get.append(time.perf_counter() - t)
                if r.status_code != 200:
                    timings.failures.append(f"GET {r.status_code}")
            except httpx.HTTPError as exc:
                timings.failures.append(f"{type(exc).__name__}: {exc}")
            finally:
                if shared is None:
                    client.close()
            if once:
                return
            time.sleep(every)
    finally:
        if shared is not None:
            shared.close()


def run_attack(host: str, port: int, ca_file: Path, *, idle: int, slow: int, seconds: float,
               per_address: int = 10, every: float = 1.0) -> tuple[Tally, Tally, threading.Thread, float]:
    """Starts ``idle`` idle and ``slow`` slowloris connections (``per_address`` from each loopback
    address) in a thread of their own, for ``seconds``. Returns their tallies, the thread and the
    ``until`` time."""
    until = time.monotonic() + seconds
    idle_tally, slow_tally = Tally(), Tally()
    ctx = ssl.create_default_context(cafile=str(ca_file))
    idle_sources = addresses(0, -(-idle // per_address))
    slow_sources = addresses(len(idle_sources), -(-slow // per_address))

    async def main() -> None:
        tasks = [idle_client(host, port, idle_sources[i // per_address], until, idle_tally) for i in range(idle)]
        tasks += [slowloris_client(host, port, slow_sources[i // per_address], until, slow_tally, ctx, every)
                  for i in range(slow)]
        await asyncio.gather(*tasks)

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="hostile", daemon=True)
    thread.start()
    return idle_tally, slow_tally, thread, until


def wait_until_open(tally: Tally, count: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while tally.open_now < count and time.monotonic() < end:
        time.sleep(0.05)


def loopback_aliases_work() -> bool:
    """Whether this system routes 127.0.0.2 … to itself (Linux does; macOS needs aliases)."""
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False
