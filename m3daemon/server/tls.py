"""Certificates for the congregation's own server, and pinning its CA on a member's computer.

``server init`` makes a small certificate authority (ECDSA P-256, valid 10 years) and a server
certificate signed by it (valid 825 days, the longest that Apple platforms accept from a private
CA, for the host names and addresses the server is reached by). Members pin the CA, not the server
certificate, so the server certificate can be re-issued (new names, renewal) without touching any
member's computer.

Fingerprints are the SHA-256 of the certificate's DER bytes, written as colon-separated upper-case
hex pairs, exactly as ``openssl x509 -noout -fingerprint -sha256`` prints them, so a person can
compare them with any tool.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import re
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from m3daemon.errors import ConfigError, ServerUnreachableError, TLSError
from m3daemon.i18n import _
from m3daemon.local import paths

__all__ = [
    "CA_VALID_DAYS", "SERVER_VALID_DAYS", "IssuedCert", "PresentedCA", "default_host_names",
    "fetch_server_ca_fingerprint", "fingerprint", "issue_server_cert", "load_pem_certs", "make_ca",
    "offer_to_pin", "pinned_ca_path", "save_pinned_ca",
]

CA_VALID_DAYS = 3652  # ~10 years
SERVER_VALID_DAYS = 825  # Apple's limit for TLS server certificates, also from private CAs
#: Re-issue the server certificate (from our own CA) when it has less than this left.
RENEW_BEFORE_DAYS = 30


@dataclass(frozen=True)
class IssuedCert:
    cert_pem: bytes  # the certificate, PEM (for a server: leaf then CA, the chain it presents)
    key_pem: bytes  # its private key, PKCS#8 PEM, unencrypted (the file is 0600)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(common_name: str) -> IssuedCert:
    """A new certificate authority that may sign server certificates only (path length 0)."""
    key = _new_key()
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "m3daemon"),
    ])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return IssuedCert(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _san_entries(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


_HOST_NAME = re.compile(r"^(?=.{1,253}$)(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


def check_host_name(name: str) -> str:
    """A host name or IP address for a certificate, normalised; ``ConfigError`` when it is neither."""
    value = name.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _HOST_NAME.match(value):
        raise ConfigError(
            _("{name!r} is not a host name or an IP address.").format(name=name),
            _("Give names such as media.example.org, kh-server.local or 192.168.1.10."),
        )
    return value.rstrip(".").lower()


def issue_server_cert(ca: IssuedCert, names: Sequence[str]) -> IssuedCert:
    """A server certificate for ``names`` (host names and IP addresses), signed by ``ca``.

    The returned ``cert_pem`` is the chain the server presents: the server certificate, then the
    CA certificate (so that :func:`fetch_server_ca_fingerprint` can find the CA to pin).
    """
    if not names:
        raise ValueError("a server certificate needs at least one name")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ConfigError(_("The CA key is not an ECDSA key."), _("Run `m3daemon server init` in a new folder."))
    key = _new_key()
    now = _now()
    not_after = min(now + dt.timedelta(days=SERVER_VALID_DAYS), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(_san_entries(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    return IssuedCert(chain, _key_pem(key))


def primary_address() -> str | None:
    """The address this computer uses to reach other networks (its LAN address), if any.

    A UDP "connect" sends nothing; it only asks the routing table which address would be used.
    """
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere for real
        addr = str(s.getsockname()[0])
        if not ipaddress.ip_address(addr).is_loopback and addr != "0.0.0.0":
            return addr
    return None


def default_host_names(extra: Iterable[str] = ()) -> list[str]:
    """``extra`` first (the first name is the certificate's common name), then localhost,
    127.0.0.1, ::1, this computer's host name (and ``<name>.local`` for mDNS) and its LAN address.
    Duplicates are dropped, the order is kept."""
    names = [check_host_name(n) for n in extra]
    names += ["localhost", "127.0.0.1", "::1"]
    host = socket.gethostname().strip().rstrip(".").lower()
    if host:
        with contextlib.suppress(ConfigError):
            names.append(check_host_name(host))
            if "." not in host:
                names.append(check_host_name(host + ".local"))
    lan = primary_address()
    if lan:
        names.append(lan)
    return list(dict.fromkeys(names))


def cert_names(cert_pem: bytes) -> list[str]:
    """The DNS names and IP addresses of the first certificate in ``cert_pem``."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def days_left(cert_pem: bytes) -> float:
    """Days until the first certificate in ``cert_pem`` expires (negative: expired)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return (cert.not_valid_after_utc - _now()).total_seconds() / 86400


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
