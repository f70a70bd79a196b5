"""A small fault-injecting HTTP proxy in front of a real WebDAV server.

The client talks plain HTTP to the proxy on loopback (the config's test-only
``allow_insecure_loopback`` switch) and the proxy talks HTTPS to the real server. Rules decide,
per request, whether to answer with an error status, rewrite a body, cut a body short, reset
the connection or stall.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length", "host"}


@dataclass
class Rule:
    """When ``method`` (or any, if None) and ``match(path)`` hold, apply the fault ``times`` times."""

    method: str | None
    match: Callable[[str], bool]
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    rewrite: Callable[[bytes], bytes] | None = None
    truncate_after: int | None = None
    reset: bool = False
    stall: float = 0.0
    # Rewrite the request headers sent upstream / the response headers sent back.
    request_headers: Callable[[dict[str, str]], dict[str, str]] | None = None
    response_headers: Callable[[dict[str, str]], dict[str, str]] | None = None
    times: int = 1_000_000
    hits: int = 0

    def applies(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.match(path) and self.hits < self.times


class FaultProxy:
    def __init__(self, upstream: str, ca_file: Path) -> None:
        self.upstream = upstream.rstrip("/")
        self.rules: list[Rule] = []
        self.log: list[tuple[str, str, int]] = []
        self.connections = 0  # TCP connections accepted (a kept-alive one is counted once)
        self._client = httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file)), timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                proxy.connections += 1
                super().setup()

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _handle
            do_PROPFIND = do_MKCOL = do_MOVE = do_COPY = do_PROPPATCH = do_LOCK = do_UNLOCK = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, rule: Rule) -> Rule:
        self.rules.append(rule)
        return rule

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one request ---------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        method, path = h.command, h.path
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        rule = next((r for r in self.rules if r.applies(method, path)), None)
        if rule is not None:
            rule.hits += 1
            if rule.stall:
                time.sleep(rule.stall)
            if rule.reset:
                self.log.append((method, path, 0))
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                h.connection.close()
                h.close_connection = True
                return
            if rule.status is not None:
                self._reply(h, method, path, rule.status, rule.headers, rule.body)
                return
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP}
        if rule is not None and rule.request_headers is not None:
            headers = rule.request_headers(headers)
        resp = self._client.request(method, self.upstream + path, headers=headers, content=body)
        data = resp.content
        out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP | {"content-encoding"}}
        if rule is not None and rule.rewrite is not None:
            data = rule.rewrite(data)
        if rule is not None and rule.response_headers is not None:
            out_headers = rule.response_headers(out_headers)
        if rule is not None and rule.truncate_after is not None:
            self._reply(h, method, path, resp.status_code, out_headers, data, cut=rule.truncate_after)
            return
        self._reply(h, method, path, resp.status_code, out_headers, data)

    def _reply(
        self, h: BaseHTTPRequestHandler, method: str, path: str, status: int, headers: dict[str, str],
        data: bytes, cut: int | None = None,
    ) -> None:
        self.log.append((method, path, status))
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if method == "HEAD":
            return
        if cut is not None:
            h.wfile.write(data[:cut])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        h.wfile.write(data)
