"""Pinning a self-hosted server's certificate authority on a member's computer.

The terminal's ``m3daemon setup``, an invitation and the dashboard's Connection page all pin the
same way: fetch the CA the server presents, compare its SHA-256 fingerprint with the one the
coordinator gave (or ask a person to), save it in the config folder. It lives below the
front-ends so that the dashboard and the CLI share it (``m3daemon.server.tls`` re-exports it).

Fingerprints are the SHA-256 of the certificate's DER bytes, written as colon-separated upper-case
hex pairs, exactly as ``openssl x509 -noout -fingerprint -sha256`` prints them.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from m3daemon.errors import ConfigError, ServerUnreachableError, TLSError
from m3daemon.i18n import _
from m3daemon.local import paths

__all__ = [
    "PresentedCA", "fetch_server_ca_fingerprint", "fingerprint", "load_pem_certs", "offer_to_pin",
    "pinned_ca_path", "same_fingerprint", "save_pinned_ca",
]


def load_pem_certs(data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        return []


def fingerprint(cert: bytes | x509.Certificate) -> str:
    """SHA-256 fingerprint ``AB:CD:…`` of a certificate (DER bytes, PEM bytes or an object)."""
    if isinstance(cert, x509.Certificate):
        der = cert.public_bytes(serialization.Encoding.DER)
    elif cert.lstrip().startswith(b"-----BEGIN"):
        der = x509.load_pem_x509_certificate(cert).public_bytes(serialization.Encoding.DER)
    else:
        der = cert
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def same_fingerprint(a: str, b: str) -> bool:
    """Compare two fingerprints typed or pasted in any usual form (colons, spaces, case)."""
    def norm(s: str) -> str:
        return re.sub(r"[^0-9a-f]", "", s.lower())
    return bool(norm(a)) and norm(a) == norm(b)


# --- a member's computer: fetch the presented CA, show its fingerprint, pin it -------------------


class PresentedCA(NamedTuple):
    """What :func:`fetch_server_ca_fingerprint` found: the certificate to pin (PEM) and its
    SHA-256 fingerprint. Unpacks as ``pem, sha256 = fetch_server_ca_fingerprint(url)``."""

    pem: bytes
    sha256: str


def _host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url if "://" in url else "https://" + url)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(_("{url} is not an https:// address.").format(url=url),
                          _("Give the server's address, for example https://192.168.1.10:8443"))
    try:
        port = parts.port or 443
    except ValueError as exc:
        raise ConfigError(_("{url} has a bad port number.").format(url=url)) from exc
    return parts.hostname, port


def _presented_chain(sock: ssl.SSLSocket) -> list[bytes]:
    """The DER certificates the server sent, leaf first (Python 3.13 has a public API for this;
    3.11 and 3.12 have the same method on the private ``_sslobj``)."""
    getter = getattr(sock, "get_unverified_chain", None)
    if getter is None:
        getter = getattr(getattr(sock, "_sslobj", None), "get_unverified_chain", None)
    chain: list[bytes] = []
    if getter is not None:
        for item in getter() or ():
            if isinstance(item, bytes):
                chain.append(item)
            else:  # _ssl.Certificate
                chain.append(item.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
    if not chain:
        leaf = sock.getpeercert(binary_form=True)
        if leaf:
            chain.append(leaf)
    return chain


def _pick_anchor(chain: list[x509.Certificate]) -> x509.Certificate | None:
    """The certificate to pin: the self-signed one in the chain (our servers present their CA after
    the server certificate; a server with a self-signed certificate presents just that)."""
    for cert in reversed(chain):
        if cert.issuer == cert.subject:
            return cert
    return None


def fetch_server_ca_fingerprint(url: str, timeout: float = 10.0) -> PresentedCA:
    """Connect to ``url`` WITHOUT verifying its certificate, only to fetch the chain it presents,
    and return the CA certificate to pin with its SHA-256 fingerprint.

    Nothing is sent over this connection (no request, no password): it ends after the TLS
    handshake. The caller must show the fingerprint and have a person confirm that it matches what
    ``m3daemon server init`` (or ``server info``) printed before pinning it; only then is the
    certificate trusted, and from then on every connection is verified against it.
    """
    host, port = _host_port(url)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # deliberately: we only look at what is presented
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=host) as tls:
            ders = _presented_chain(tls)
    except ssl.SSLError as exc:
        raise TLSError(_("TLS with {host}:{port} failed: {error}").format(host=host, port=port, error=exc),
                       _("Check that the address is the server's HTTPS address.")) from exc
    except OSError as exc:
        raise ServerUnreachableError(
            _("Cannot connect to {host}:{port}: {error}").format(host=host, port=port, error=exc),
            _("Check the address and that the server is running and reachable from this computer."),
        ) from exc
    certs = [x509.load_der_x509_certificate(d) for d in ders]
    if not certs:
        raise TLSError(_("{host}:{port} presented no certificate.").format(host=host, port=port))
    anchor = _pick_anchor(certs)
    if anchor is None:
        raise TLSError(
            _("{host}:{port} does not present the certificate authority that signed its certificate, so it "
              "cannot be pinned from here.").format(host=host, port=port),
            _("Ask the server's administrator for the CA file (ca.pem) and give it to setup with --ca-file."),
        )
    return PresentedCA(anchor.public_bytes(serialization.Encoding.PEM), fingerprint(anchor))


def pinned_ca_path(url: str) -> Path:
    """Where :func:`save_pinned_ca` keeps the CA of ``url``: ``<config folder>/ca/<host>-<port>.pem``."""
    host, port = _host_port(url)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", host).strip("._") or "server"
    return paths.config_dir() / "ca" / f"{safe}-{port}.pem"


def save_pinned_ca(pem: bytes, url: str, path: Path | None = None) -> Path:
    """Save a CA certificate (PEM) for ``url`` in the config folder (atomic, 0600) and return its
    path, for ``[connection] ca_file``. Refuses anything that is not one PEM certificate."""
    certs = load_pem_certs(pem)
    if len(certs) != 1:
        raise ConfigError(_("This is not one PEM certificate."))
    target = path or pinned_ca_path(url)
    paths.write_private_file(target, certs[0].public_bytes(serialization.Encoding.PEM))
    return target


def offer_to_pin(
    url: str,
    *,
    expected: str | None = None,
    ask: Callable[[str], str] = input,
    say: Callable[[str], None] = print,
    path: Path | None = None,
) -> Path | None:
    """The whole "pin a self-hosted server's CA" step of ``m3daemon setup``, in one call.

    Fetches the CA the server at ``url`` presents and shows its SHA-256 fingerprint. With
    ``expected`` (a fingerprint given on the command line, for setup without a terminal) it compares
    the two and asks nothing; otherwise it asks whether the fingerprint matches what
    ``m3daemon server init`` (or ``server info``) printed, default No. On a match it saves the CA
    (:func:`save_pinned_ca`) and returns the path for ``[connection] ca_file``; on a "no" it
    returns None. A fingerprint that differs from ``expected`` raises :class:`TLSError` (exit 4).
    """
    presented = fetch_server_ca_fingerprint(url)
    say(_("The server presents this certificate authority:"))
    say("  " + _("SHA-256 fingerprint: {fp}").format(fp=presented.sha256))
    if expected is not None:
        if not same_fingerprint(expected, presented.sha256):
            raise TLSError(
                _("The server's CA fingerprint is not the one given: {given}").format(given=expected),
                _("Check the fingerprint with `m3daemon server info` on the server. If they really differ, "
                  "someone may be intercepting the connection: do not go on."),
            )
    else:
        answer = ask(_("Does it match what `m3daemon server init` printed on the server? [y/N] "))
        if answer.strip().lower() not in ("y", "yes", _("y"), _("yes")):
            say(_("Not pinned. Compare it with `m3daemon server info DIR` on the server, or copy its ca.pem "
                  "and give it with --ca-file."))
            return None
    saved = save_pinned_ca(presented.pem, url, path)
    say(_("Pinned: {path}").format(path=saved))
    return saved
