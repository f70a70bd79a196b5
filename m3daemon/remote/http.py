"""The HTTPS session to the congregation's WebDAV server: TLS, auth, error mapping.

Every request goes through :meth:`DavSession.request`, :meth:`DavSession.stream` or
:meth:`DavSession.fetch` (or the coordinator's writer, on the same client), all of which run their
attempts through the one retry loop of :mod:`m3daemon.remote.retry`; failures become
:mod:`m3daemon.errors` here.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Self, TypeVar
from urllib.parse import quote, unquote, urlsplit

from m3daemon import __version__
from m3daemon.core.methods import READ_METHODS
from m3daemon.errors import (
    ConnectionProblem,
    CredentialsError,
    FolderNotFoundError,
    InsecureURLError,
    LockedError,
    M3Error,
    NotWebDAVError,
    PermissionDeniedError,
    ReadOnlyAccountError,
    ServerError,
    ServerUnreachableError,
    TLSError,
    remedy_for_status,
)
from m3daemon.i18n import _
from m3daemon.remote import retry as retrying
from m3daemon.remote.deadline import DEADLINE_WORDS, deadline
from m3daemon.remote.retry import RetryPolicy, tls_reason

if TYPE_CHECKING:
    import ssl

    import httpx

log = logging.getLogger(__name__)

T = TypeVar("T")

# The slowest download accepted: 16 kB/s on average (a 1 GB video may take 17 hours). A server that
# drips a file more slowly than that is treated as stuck, so a sync always ends.
MIN_RATE = 16_000
LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True)
class Endpoint:
    """Where the congregation folder lives: ``https://host[:port]`` plus an absolute folder path."""

    base_url: str
    folder: str
    username: str
    ca_file: Path | None = None
    allow_insecure_loopback: bool = False
    timeout: float = 30.0
    # Overall deadline of one request (listing, settings); a download gets this plus its size at
    # MIN_RATE. A server that drips its answer never trips the per-read ``timeout``.
    deadline: float = 300.0

    @property
    def folder_path(self) -> str:
        """The folder as a decoded absolute path with no trailing slash ('' for the root)."""
        return "/" + "/".join(s for s in self.folder.split("/") if s) if self.folder.strip("/") else ""


@dataclass
class RequestStats:
    """Counts what the session sent, for summaries, the no-op figures and tests."""

    requests: int = 0
    bytes_in: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, method: str) -> None:
        with self._lock:
            self.requests += 1
            self.by_method[method] = self.by_method.get(method, 0) + 1

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes_in += n


def check_url(url: str, allow_insecure_loopback: bool) -> str:
    """Refuse anything but ``https://`` (``http://`` only to loopback, and only when allowed)."""
    parts = urlsplit(url.strip())
    if parts.scheme == "https" and parts.hostname:
        return f"https://{parts.netloc}"
    if parts.scheme == "http" and parts.hostname and allow_insecure_loopback and _is_loopback(parts.hostname):
        return f"http://{parts.netloc}"
    if parts.scheme == "http":
        raise InsecureURLError(
            _("The address {url} uses plain http://, which would send the password unencrypted.").format(
                url=url
            ),
            _("Use the server's https:// address."),
        )
    raise InsecureURLError(
        _("The address {url} is not a web address.").format(url=url),
        _("Give the server address as https://host or https://host:port."),
    )


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificates are always verified; a CA file replaces the system store (pinning a self-hosted
    server's CA: ``m3daemon setup`` pins the CA whose fingerprint a person confirmed as ca_file)."""
    if ca_file is None:
        return system_trust_context()
    import ssl  # (a command that syncs on libcurl never builds a context: 4 ms of its start)

    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(
            _("The CA file {path} cannot be read as a certificate ({reason}).").format(
                path=ca_file, reason=exc
            ),
            _("Check [connection] ca_file: it must be the PEM file of the server's certificate authority."),
        ) from exc


def system_trust_context() -> ssl.SSLContext:
    """A context that verifies against the operating system's trust store (truststore, as pip does).

    Python's own default context reads an OpenSSL CA file, which python.org's macOS Python and a
    frozen build do not have, and which on Windows misses what the company installed in the
    Windows store (TLS inspection). truststore asks Keychain on macOS and CryptoAPI on Windows;
    on Linux it is OpenSSL's CA paths (SSL_CERT_FILE/SSL_CERT_DIR honoured), as before.
    """
    import ssl

    import truststore  # imported when a server without ca_file is contacted, not at start

    ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


@lru_cache(maxsize=1024)
def _quote_segment(segment: str) -> str:
    """One path segment, percent-encoded (a date folder's name is asked for once per file in it)."""
    return quote(segment, safe="")


class DavSession:
    """One keep-alive HTTPS client for one congregation folder, shared by all worker threads."""

    def __init__(
        self,
        endpoint: Endpoint,
        password: str,
        *,
        retry: RetryPolicy | None = None,
        max_connections: int = 6,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.base_url = check_url(endpoint.base_url, endpoint.allow_insecure_loopback)
        self.retry = retry or RetryPolicy()
        self.stats = RequestStats()
        # Set by the sync: a listing being read stops between two chunks when it is set.
        self.cancel: threading.Event | None = None
        self.password: str | None = password  # for the libcurl downloads (remote/curl_download.py)
        self._sleep = sleep
        self._max_connections = max_connections
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        """The httpx client, made at its first request. A sync whose listing and downloads all go
        over libcurl (remote/curl_listing.py, remote/curl_download.py) never loads httpx, a large part of a
        CLI command's start (docs/performance.md, "Issue 17, eighth stop")."""
        client = self._client
        if client is None:
            with self._client_lock:
                client = self._client
                if client is None:
                    client = self._client = self._new_client()
        return client

    def _new_client(self) -> httpx.Client:
        import httpx

        from m3daemon.remote.transport import DrainingTransport

        endpoint = self.endpoint
        # The draining transport reads up to 1 MiB per socket read instead of one 8 KiB TLS record:
        # the difference between about 2× and about 1× curl's time for a large download.
        return httpx.Client(
            auth=httpx.BasicAuth(endpoint.username, self.password or ""),
            timeout=httpx.Timeout(endpoint.timeout, connect=min(endpoint.timeout, 15.0)),
            headers={"User-Agent": f"m3daemon/{__version__}"},
            follow_redirects=False,
            transport=self._transport or DrainingTransport(
                ssl_context=tls_context(endpoint.ca_file), max_connections=self._max_connections),
        )

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- URLs ----------------------------------------------------------------------------

    def url_path(self, parts: tuple[str, ...] = (), collection: bool = False) -> str:
        """The percent-encoded absolute URL path of ``parts`` below the congregation folder."""
        segments = [s for s in self.endpoint.folder_path.split("/") if s] + list(parts)
        path = "/" + "/".join(map(_quote_segment, segments))
        if collection and not path.endswith("/"):
            path += "/"
        return path

    def url(self, parts: tuple[str, ...] = (), collection: bool = False) -> str:
        return self.base_url + self.url_path(parts, collection)

    def folder_segments(self) -> list[str]:
        return [s for s in self.endpoint.folder_path.split("/") if s]

    @staticmethod
    def decode_href_path(href: str) -> list[str] | None:
        """Decoded segments of an href (absolute URL or path). Each segment is decoded on its own.

        The path is taken literally: a listing names resources, so a raw ``#`` or ``?`` (servers
        such as npm's webdav-server do not encode them) is part of a name, never a fragment or a
        query to cut off. The caller has already checked that an absolute href is on this server.
        """
        if "://" in href:
            rest = href.split("://", 1)[1]
            slash = rest.find("/")
            path = rest[slash:] if slash >= 0 else "/"
        else:
            path = href
        if not path.startswith("/"):
            return None
        if "%" not in path:
            return [s for s in path.split("/") if s]
        return [unquote(s, errors="surrogateescape") if "%" in s else s for s in path.split("/") if s]

    # --- requests ------------------------------------------------------------------------

    def retry_loop(
        self, method: str, attempt: Callable[[retrying.Attempt], T], *, describe: str,
        safe_to_repeat: bool = False, statuses: frozenset[int] | None = None,
        before_retry: Callable[[], None] = lambda: None,
        transport_error: Callable[[httpx.TransportError], BaseException] | None = None,
        after: retrying.FailedAttempt | None = None,
    ) -> T:
        """:func:`m3daemon.remote.retry.run` with this session's policy, sleep and error mapping."""
        return retrying.run(
            self.retry, method, attempt, describe=describe, sleep=self._sleep,
            transport_error=transport_error or (lambda exc: classify_transport_error(exc, self.base_url)),
            safe_to_repeat=safe_to_repeat, statuses=statuses, before_retry=before_retry, after=after,
        )

    def request(
        self,
        method: str,
        parts: tuple[str, ...] = (),
        *,
        collection: bool = False,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        ok: tuple[int, ...] = (200, 201, 204, 207),
        what: str | None = None,
    ) -> httpx.Response:
        """Send one request with retries; return the response if its status is in ``ok``."""
        url = self.url(parts, collection)

        def attempt(a: retrying.Attempt) -> httpx.Response:
            self.stats.count(method)
            with deadline(self.endpoint.deadline):
                resp = self.http.request(method, url, headers=headers, content=content)
            if resp.status_code not in ok:
                a.check(resp)
            return resp

        resp = self.retry_loop(method, attempt, describe=f"{method} {url}")
        if resp.status_code in ok:
            return resp
        raise classify_status(resp, what or "/".join(parts) or self.endpoint.folder_path or "/")

    @contextmanager
    def stream(
        self, method: str, parts: tuple[str, ...], *, headers: Mapping[str, str] | None = None,
        collection: bool = False, content: bytes | None = None, expect_bytes: int = 0,
    ) -> Iterator[httpx.Response]:
        """Open a streamed response; the caller checks the status (206/200 matter for resumes).

        Opening it is retried (connection failures, retryable statuses); reading the body is the
        caller's, because a streamed body cannot be replayed. :meth:`fetch` instead asks again for a
        body cut off mid-way, within the same attempts. The deadline
        (``[connection] request_deadline_seconds``, plus ``expect_bytes`` at :data:`MIN_RATE`)
        covers the answer and reading its body.
        """
        url = self.url(parts, collection)

        def attempt(a: retrying.Attempt) -> httpx.Response:
            self.stats.count(method)
            resp = self.http.send(self.http.build_request(method, url, headers=headers, content=content),
                                  stream=True)
            a.check(resp)
            return resp

        with deadline(self.endpoint.deadline + expect_bytes / MIN_RATE):
            resp = self.retry_loop(method, attempt, describe=f"{method} {url}")
            try:
                yield resp
            finally:
                resp.close()

    def fetch(
        self, method: str, parts: tuple[str, ...], read: Callable[[httpx.Response], T], *,
        headers: Mapping[str, str] | None = None, collection: bool = False, content: bytes | None = None,
        interrupted: Callable[[httpx.TransportError], BaseException] | None = None,
        after: retrying.FailedAttempt | None = None,
    ) -> T:
        """Send a streamed request and ``read`` its answer; sending and reading are one attempt.

        A connection that breaks while the body is read is retried like one that fails to open,
        within the same ``attempts`` (an idempotent method only). When the last attempt broke
        mid-body, ``interrupted(exc)`` is raised (by default: the connection problem).
        """
        url = self.url(parts, collection)
        opened = False  # whether the current attempt got its answer's headers

        def attempt(a: retrying.Attempt) -> T:
            nonlocal opened
            opened = False
            self.stats.count(method)
            with deadline(self.endpoint.deadline):  # the answer and reading it: one deadline
                resp = self.http.send(self.http.build_request(method, url, headers=headers, content=content),
                                      stream=True)
                try:
                    a.check(resp)
                    opened = True
                    return read(resp)
                finally:
                    resp.close()

        def failed(exc: httpx.TransportError) -> BaseException:
            if opened and interrupted is not None:
                return interrupted(exc)
            return classify_transport_error(exc, self.base_url)

        def again() -> None:
            if opened:
                log.info("%s of %s was interrupted; asking again", method, "/".join(parts) or "/")

        return self.retry_loop(method, attempt, describe=f"{method} {url}", transport_error=failed,
                               before_retry=again, after=after)


def classify_transport_error(exc: httpx.TransportError, base_url: str) -> ConnectionProblem:
    """Turn a connection-level failure into an error a person can act on."""
    import httpx  # (loaded: it raised ``exc``)

    host = urlsplit(base_url).netloc
    tls = tls_reason(exc)
    if tls is not None:
        return TLSError(
            _("The secure connection to {host} failed: {reason}.").format(host=host, reason=tls),
            _(
                "If the server uses its own certificate, set [connection] ca_file to its CA (m3daemon setup "
                "asks for it). Otherwise check the address and the computer's date and time."
            ),
        )
    if isinstance(exc, httpx.TimeoutException) and DEADLINE_WORDS in str(exc):
        return ServerUnreachableError(
            _("The server {host} answers too slowly: {reason} ([connection] request_deadline_seconds).").format(
                host=host, reason=str(exc)),
            _("Check the internet connection; m3daemon will try again. A server that is slow on purpose "
              "can be given more time with request_deadline_seconds."),
        )
    if isinstance(exc, httpx.TimeoutException):
        return ServerUnreachableError(
            _("The server {host} did not answer in time.").format(host=host),
            _("Check the internet connection; m3daemon will try again."),
        )
    text = str(exc)
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return ServerUnreachableError(
            _("The server name {host} cannot be found.").format(host=host),
            _("Check the web address for typing mistakes, and the internet connection."),
        )
    if "refused" in text.lower():
        return ServerUnreachableError(
            _("The server {host} refused the connection.").format(host=host),
            _("Check the web address and port; the server may be down."),
        )
    return ServerUnreachableError(
        _("The connection to {host} failed ({reason}).").format(host=host, reason=text or type(exc).__name__),
        _("Check the internet connection; m3daemon will try again."),
    )


def classify_status(resp: httpx.Response, what: str) -> M3Error:
    """Turn an HTTP error status into an error with a remedy. ``what`` names the resource."""
    status = resp.status_code
    method = resp.request.method
    if status == 401:
        return CredentialsError(
            _("The server refused the user name or password."),
            _("Check them with m3daemon setup. Box and Koofr need an app password, not the account password."),
        )
    if status == 403:
        if method in READ_METHODS:
            return PermissionDeniedError(
                _("This account may not read {what} on the server.").format(what=what),
                _("Ask the coordinator to give the account access to the congregation folder."),
            )
        return ReadOnlyAccountError(
            _("This account may only read; the server refused to change {what}.").format(what=what),
            _("Coordinator tools need an account that may write. Ask the coordinator."),
        )
    if status == 404:
        return FolderNotFoundError(
            _("{what} was not found on the server.").format(what=what),
            _("Check [connection] folder; m3daemon browse lists the server's folders."),
        )
    if status in (405, 501) and method == "PROPFIND":
        return NotWebDAVError(
            _("The server answered, but it is not a WebDAV server (status {status}).").format(status=status),
            _("Check the web address and the folder; the provider's WebDAV address is often different."),
        )
    if status == 423:
        return LockedError(
            _("{what} is locked by another client.").format(what=what),
            remedy_for_status(423),
        )
    if status in (301, 302, 303, 307, 308):
        return NotWebDAVError(
            _("The server redirects {what} to {target}.").format(
                what=what, target=resp.headers.get("Location", "?")
            ),
            _("Use the address the server redirects to in [connection] url and folder."),
        )
    return ServerError(
        _("The server answered {status} {reason} for {what}.").format(
            status=status, reason=resp.reason_phrase, what=what
        ),
        remedy_for_status(status),
    )
