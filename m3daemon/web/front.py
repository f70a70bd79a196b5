"""The front door of m3daemon's web servers: connections, TLS and HTTP/1.1 framing in one asyncio
loop, before cheroot. The congregation's server uses it with TLS; the daemon's loopback control
port (the CLI's API and the dashboard) without TLS and without a per-address cap.

Why a front, and not cheroot alone: cheroot gives each request being *read* a worker thread, and
its ``timeout`` applies to each socket operation, not to a whole request head, so 16 clients that
send a header byte every few seconds hold all 16 threads for as long as they like (slowloris). Its
built-in TLS adapter does the handshake in the single accepting thread: every connection that sends
nothing holds up the accepting of all others for the whole timeout (3 silent connections made a
member's PROPFIND wait 90 s). Its options (``timeout``, ``accepted_queue_timeout``, the adapter) do
not change either. Moving to another WSGI server (uvicorn through a2wsgi, gevent) would also mean
adding per-address caps and header deadlines through their internals, and a new dependency.

So this front accepts every connection in an event loop, where a connection that waits costs a
little memory and no thread, and enforces what cheroot cannot:

- at most ``connections_per_address`` connections per client address, and ``max_connections`` in
  all (beyond them a connection is closed at once);
- the TLS handshake within ``handshake_seconds``;
- each request head within ``header_seconds`` of its first byte (``408`` and close otherwise), and
  the first byte of the next request within ``idle_seconds``;
- a body or an answer that makes no progress for ``io_seconds`` ends the connection.

Only a complete request head goes on to cheroot, over a private connection (a Unix socket in a 0700
folder; loopback TCP on Windows), so cheroot's threads only ever wait for this process. The
framing is h11's (python-hyper, already here as httpx's parser): each request is parsed and
re-sent from parsed events, so cheroot never sees bytes the front did not understand. The client's
address goes along in ``X-M3daemon-Peer`` with a per-run secret; the front removes any such header
a client sends, and :class:`~m3daemon.server.guard.Guard` refuses requests without the secret.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import logging
import socket
import ssl
import sys
import threading
from dataclasses import dataclass
from typing import Any

import h11

__all__ = ["PEER_HEADER", "Backend", "Front", "FrontLimits", "listen", "peer_from_front"]

log = logging.getLogger("m3daemon.web.front")

#: The request header that carries "<secret> <client address>" from the front to the Guard.
PEER_HEADER = "X-M3daemon-Peer"
_PEER = PEER_HEADER.lower().encode()
READ_SIZE = 256 * 1024
MAX_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class FrontLimits:
    connections_per_address: int = 32  # a Kingdom Hall's computers may share one public address
    max_connections: int = 1000
    handshake_seconds: float = 10.0
    header_seconds: float = 10.0
    idle_seconds: float = 60.0
    io_seconds: float = 60.0


@dataclass(frozen=True)
class Backend:
    """Where cheroot listens: a Unix socket ``path``, or ``host``/``port`` on loopback."""

    path: str | None = None
    host: str = "127.0.0.1"
    port: int = 0

    async def connect(self) -> _Upstream:
        loop = asyncio.get_running_loop()
        if self.path is not None and sys.platform != "win32":  # a path only where Unix sockets exist
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            where: Any = self.path
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            where = (self.host, self.port)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, where)
        except BaseException:
            sock.close()
            raise
        return _Upstream(sock)


class _Upstream:
    """The connection to cheroot, on a plain socket rather than an asyncio transport: cheroot
    closes at once after an early answer (413 with ``Connection: close``) while the body is still
    coming, and a transport that fails to write stops reading too, losing the answer. Here a failed
    send only ends the sending."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.gone = False  # cannot send any more (what it answered can still be read)
        self.closed = False  # read to the end

    async def read(self) -> bytes:
        """What arrived next (b"" at the end)."""
        try:
            data = await asyncio.get_running_loop().sock_recv(self.sock, READ_SIZE)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            self.closed = True
        return data

    async def send(self, data: bytes) -> None:
        if self.gone or not data:
            return
        try:
            await asyncio.get_running_loop().sock_sendall(self.sock, data)
        except (ConnectionError, OSError):
            self.gone = True

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def listen(host: str, port: int) -> socket.socket:
    """The listening socket for ``host`` (an address, a name, "" / "0.0.0.0" or "::": every one)."""
    if host == "::":
        return socket.create_server(("::", port), family=socket.AF_INET6, backlog=1024,
                                    dualstack_ipv6=socket.has_dualstack_ipv6())
    infos = socket.getaddrinfo(host or "0.0.0.0", port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _type, _proto, _name, address = infos[0]
    return socket.create_server(address[:2], family=family, backlog=1024)


def peer_from_front(environ: dict[str, Any], secret: str) -> bool:
    """Take the client's address from the front's header (the one with ``secret``) into
    ``REMOTE_ADDR``; False when the request did not come through the front."""
    given, _sep, peer = str(environ.pop("HTTP_X_M3DAEMON_PEER", "")).partition(" ")
    if not peer or not hmac.compare_digest(given.encode(), secret.encode()):
        return False
    environ["REMOTE_ADDR"] = peer
    return True


class Front:
    """Listens on ``sock`` (bound and listening), speaks TLS with ``context`` (None: plain HTTP,
    for loopback) and relays to ``backend``."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext | None, backend: Backend, secret: str,
                 limits: FrontLimits = FrontLimits(), name: str = "m3daemon-server-front") -> None:
        self.socket = sock
        self.context = context
        self.backend = backend
        self.secret = secret
        self.limits = limits
        self._per_address: collections.Counter[str] = collections.Counter()
        self._total = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self.name = name

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def connections(self) -> int:
        return self._total

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._connection, sock=self.socket, limit=READ_SIZE,
                                            backlog=1024)
        self._ready.set()
        tasks: set[asyncio.Task[Any]] = set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
                    tasks.add(task)
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- one connection ---------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # stop(): asyncio would log each one
            await self._serve_one(reader, writer)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "-"
        lim = self.limits
        if self._total >= lim.max_connections or self._per_address[address] >= lim.connections_per_address:
            log.debug("refused a connection from %s: too many open", address)
            writer.transport.abort()
            return
        self._total += 1
        self._per_address[address] += 1
        _no_delay(writer)
        backend: _Upstream | None = None
        try:
            context = self.context
            if context is not None:
                try:
                    await writer.start_tls(context, ssl_handshake_timeout=lim.handshake_seconds)
                except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as exc:
                    log.debug("TLS handshake with %s failed: %s", address, exc)
                    return
            backend = await self._relay(reader, writer, address)
        except (TimeoutError, OSError, ConnectionError, ssl.SSLError, h11.ProtocolError) as exc:
            log.debug("connection from %s ended: %s", address, exc)
        finally:
            self._total -= 1
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]
            if backend is not None:
                backend.abort()
            _close(writer)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     address: str) -> _Upstream | None:
        client = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        backend: _Upstream | None = None
        first = True
        while True:
            request = await self._read_head(client, reader, writer, first)
            first = False
            if request is None:
                return backend
            if backend is None or backend.closed:
                if backend is not None:
                    backend.abort()
                backend = await self.backend.connect()
            upstream = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
            headers = [(n, v) for n, v in request.headers if n.lower() != _PEER]
            headers.append((_PEER, f"{self.secret} {address}".encode()))
            await backend.send(upstream.send(h11.Request(method=request.method, target=request.target,
                                                         headers=headers, http_version=request.http_version)) or b"")
            await self._exchange(client, reader, writer, upstream, backend)
            if client.our_state is h11.DONE and client.their_state is h11.DONE:
                client.start_next_cycle()
            else:
                if client.our_state is h11.DONE or client.our_state is h11.MUST_CLOSE:
                    await _linger(reader)
                return backend
            if upstream.our_state is h11.DONE and upstream.their_state is h11.DONE:
                pass  # the backend connection stays for the next request
            else:
                backend.abort()
                backend = None

    async def _exchange(self, client: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        upstream: h11.Connection, backend: _Upstream) -> None:
        """The request body up, the answer down, at the same time (an answer may come before the
        body is complete: 401, 413). A failing side ends both."""
        body = asyncio.ensure_future(self._pump_body(client, reader, upstream, backend))
        answer = asyncio.ensure_future(self._pump_response(upstream, backend, client, writer))
        try:
            while True:
                done, _pending = await asyncio.wait({body, answer}, return_when=asyncio.FIRST_COMPLETED)
                if answer in done:
                    answer.result()  # raises if the answer failed
                    return  # a body still coming is not wanted: the connection closes (their state)
                if body in done:
                    body.result()
                    await answer
                    return
        finally:
            for task in (body, answer):
                if not task.done():
                    task.cancel()
            await asyncio.gather(body, answer, return_exceptions=True)

    async def _read_head(self, client: h11.Connection, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter, first: bool) -> h11.Request | None:
        """The next request head, within the deadlines; None when the client is done or too slow."""
        lim = self.limits
        loop = asyncio.get_running_loop()
        deadline: float | None = loop.time() + lim.header_seconds if first else None
        while True:
            try:
                event = client.next_event()
            except h11.RemoteProtocolError as exc:
                await self._refuse(client, writer, exc.error_status_hint, "Bad request.")
                return None
            if isinstance(event, h11.Request):
                return event
            if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                return None
            # NEED_DATA
            if deadline is None and client.trailing_data[0]:
                deadline = loop.time() + lim.header_seconds
            wait = lim.idle_seconds if deadline is None else deadline - loop.time()
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), max(wait, 0.001))
            except TimeoutError:
                if deadline is not None:
                    await self._refuse(client, writer, 408, "The request took too long to arrive.")
                return None
            if deadline is None and data:
                deadline = loop.time() + lim.header_seconds
            client.receive_data(data)

    async def _refuse(self, client: h11.Connection, writer: asyncio.StreamWriter, status: int, text: str) -> None:
        if client.our_state is not h11.SEND_RESPONSE and client.our_state is not h11.IDLE:
            return
        body = (text + "\n").encode()
        try:
            data = client.send(h11.Response(status_code=status, headers=[
                (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                (b"connection", b"close")]))
            data = (data or b"") + (client.send(h11.Data(data=body)) or b"") + (client.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            return
        writer.write(data)
        with contextlib.suppress(OSError, asyncio.TimeoutError, ConnectionError):
            await asyncio.wait_for(writer.drain(), 2)

    async def _pump_body(self, client: h11.Connection, reader: asyncio.StreamReader, upstream: h11.Connection,
                         out: _Upstream) -> None:
        lim = self.limits
        while not out.gone:  # gone: it answered early; the answer pump passes that on
            event = client.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(READ_SIZE), lim.io_seconds)
                client.receive_data(data)
                if not data:
                    raise ConnectionAbortedError("the client closed during its request body")
                continue
            if isinstance(event, h11.Data):
                await asyncio.wait_for(out.send(upstream.send(event) or b""), lim.io_seconds)
            elif isinstance(event, h11.EndOfMessage):
                await asyncio.wait_for(out.send(upstream.send(event) or b""), lim.io_seconds)
                return
            else:
                raise ConnectionAbortedError(f"unexpected {event!r} in a request body")

    async def _pump_response(self, upstream: h11.Connection, reader: _Upstream, client: h11.Connection,
                             out: asyncio.StreamWriter) -> None:
        lim = self.limits
        while True:
            event = upstream.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read()  # cheroot answers or closes in its own time
                upstream.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                raise ConnectionAbortedError("the backend closed before it answered")
            if isinstance(event, h11.InformationalResponse | h11.Response | h11.Data):
                out.write(client.send(event) or b"")
            elif isinstance(event, h11.EndOfMessage):
                out.write(client.send(h11.EndOfMessage()) or b"")
                await asyncio.wait_for(out.drain(), lim.io_seconds)
                return
            await asyncio.wait_for(out.drain(), lim.io_seconds)


def _no_delay(writer: asyncio.StreamWriter) -> None:
    """Answers go out at once. asyncio leaves Nagle's algorithm on for accepted sockets: an
    answer's last small write then waited for the client's delayed ACK, 40 ms for each request
    on a kept-alive connection after its first (the CLI's calls to the daemon, every WebDAV
    request to ``m3daemon server``)."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, RuntimeError):
        writer.close()


async def _linger(reader: asyncio.StreamReader, seconds: float = 2.0, limit: int = 16 << 20) -> None:
    """An answer that came before the whole body (413, 401): read what the client is still sending
    for a moment (until a quarter second passes without any) before closing. Closing a socket with unread data sends a reset, and the client may
    lose the answer it has not read yet."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    read = 0
    with contextlib.suppress(OSError, asyncio.TimeoutError, ConnectionError, ssl.SSLError):
        while read < limit and loop.time() < end:
            data = await asyncio.wait_for(reader.read(READ_SIZE), min(0.25, end - loop.time()))
            if not data:
                return
            read += len(data)
