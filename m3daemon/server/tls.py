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
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from m3daemon.errors import ConfigError
from m3daemon.i18n import _

# The member's side (fetch, compare, save a CA) lives below the front-ends, for the dashboard too.
from m3daemon.settings.pinning import (
    PresentedCA,
    fetch_server_ca_fingerprint,
    fingerprint,
    load_pem_certs,
    offer_to_pin,
    pinned_ca_path,
    same_fingerprint,
    save_pinned_ca,
)

__all__ = [
    "CA_VALID_DAYS", "SERVER_VALID_DAYS", "IssuedCert", "PresentedCA", "default_host_names",
    "fetch_server_ca_fingerprint", "fingerprint", "issue_server_cert", "load_pem_certs", "make_ca",
    "offer_to_pin", "pinned_ca_path", "same_fingerprint", "save_pinned_ca",
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
