"""Shared pieces of the fault-injection suites (test_faults_*.py).

* members that talk to a real server directly or through :class:`faultproxy.FaultProxy`;
* the CLI run in this process (exit code, stdout, stderr) with short retries;
* :class:`Stamps`, a ``Rule.match`` that records when each matching request arrived;
* :class:`MidBodyStallProxy`, a proxy that stops sending in the middle of a body.
"""

from __future__ import annotations

import os
import re
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import trashed_from
from faultproxy import FaultProxy
from member import Member
from servers import DavServer

import m3daemon.remote.http as dav_http
from m3daemon.remote.http import RetryPolicy

FOLDER = "/dav/Cong"
QUICK = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)


def cong(server: DavServer) -> Path:
    return server.root / "Cong"


def member_for(server: DavServer, home: Path, **kw: Any) -> Member:
    cong(server).mkdir(parents=True, exist_ok=True)
    return Member.create(home, server.url, FOLDER, server.username, server.password, server.ca_file, **kw)


def proxied_member(proxy: FaultProxy, server: DavServer, home: Path, **kw: Any) -> Member:
    cong(server).mkdir(parents=True, exist_ok=True)
    kw.setdefault("name", "proxied")
    return Member.create(home, proxy.url, FOLDER, server.username, server.password, None,
                         insecure_loopback=True, **kw)


def set_connection(m: Member, **values: Any) -> None:
    """Change ``[connection]`` keys of a member's config file (e.g. ``timeout_seconds``)."""
    doc = tomllib.loads(m.config_path.read_text("utf-8"))
    doc["connection"].update(values)
    m.config_path.write_text(tomli_w.dumps(doc), "utf-8")


def set_local(m: Member, **values: Any) -> None:
    doc = tomllib.loads(m.config_path.read_text("utf-8"))
    doc["local"].update(values)
    m.config_path.write_text(tomli_w.dumps(doc), "utf-8")
    if "media_dir" in values:
        m.media = Path(values["media_dir"])


@dataclass(frozen=True)
class QuickDefault(RetryPolicy):
    """The default policy of sessions opened by the CLI in this process, made short."""

    attempts: int = 2
    base_delay: float = 0.01
    max_delay: float = 2.0


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dav_http, "RetryPolicy", QuickDefault)


class Stamps:
    """A ``Rule.match`` that matches paths ending in ``suffix`` and notes when each arrived."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, path: str) -> bool:
        if not path.endswith(self.suffix):
            return False
        with self._lock:
            self.times.append(time.monotonic())
        return True

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:])]


def file_responses(body: bytes) -> list[bytes]:
    """The ``<x:response>`` elements of a multistatus body, in order."""
    return [m.group(0) for m in re.finditer(rb"<(\w+):response\b.*?</\1:response>", body, re.DOTALL)]


def drop_responses(body: bytes, drop: Callable[[bytes], bool]) -> bytes:
    """A multistatus body without the responses for which ``drop`` holds."""
    for resp in file_responses(body):
        if drop(resp):
            body = body.replace(resp, b"", 1)
    return body


def trash_files(home: Path) -> list[Path]:
    """What send2trash put into the trash from below the (isolated) home, in the trash."""
    return sorted(in_trash for _original, in_trash in trashed_from(home))


class MidBodyStallProxy(FaultProxy):
    """A FaultProxy whose ``truncate_after`` rules send the first bytes, then go silent until
    :attr:`release` is set (a stalled server, not a closed connection)."""

    def __init__(self, upstream: str, ca_file: Path) -> None:
        super().__init__(upstream, ca_file)
        self.release = threading.Event()
        self.stalled = threading.Event()

    def _reply(
        self, h: BaseHTTPRequestHandler, method: str, path: str, status: int, headers: dict[str, str],
        data: bytes, cut: int | None = None,
    ) -> None:
        if cut is None:
            super()._reply(h, method, path, status, headers, data)
            return
        self.log.append((method, path, status))
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[:cut])
        h.wfile.flush()
        self.stalled.set()
        self.release.wait(30)
        h.close_connection = True

    def close(self) -> None:
        self.release.set()
        super().close()


@contextmanager
def proxy_for(server: DavServer, cls: type[FaultProxy] = FaultProxy) -> Iterator[FaultProxy]:
    proxy = cls(server.url, server.ca_file)
    # serve_forever polls for shutdown every 0.5 s by default; close() waits for that poll.
    proxy._thread = threading.Thread(
        target=lambda: proxy._server.serve_forever(poll_interval=0.02), daemon=True
    )
    with proxy:
        yield proxy


class SharingViolation:
    """``os.replace`` / ``os.unlink`` fail as on Windows for the chosen paths while M³ holds them
    (open without FILE_SHARE_DELETE: the file can be neither renamed, nor replaced, nor deleted)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *held: Path) -> None:
        self.held = {str(p) for p in held}
        real_replace, real_unlink = os.replace, os.unlink

        def replace(src: object, dst: object, *a: object, **k: object) -> None:
            self._check(src)
            self._check(dst)
            real_replace(src, dst, *a, **k)  # type: ignore[arg-type]

        def unlink(path: object, *a: object, **k: object) -> None:
            self._check(path)
            real_unlink(path, *a, **k)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(os, "unlink", unlink)

    def _check(self, path: object) -> None:
        if str(path) in self.held:
            err = PermissionError(13, "The process cannot access the file because it is being used by "
                                      "another process", str(path))
            err.winerror = 32  # type: ignore[attr-defined]  # what Windows sets
            raise err

    def release(self) -> None:
        """M³ let go of the files (the meeting is over)."""
        self.held.clear()
