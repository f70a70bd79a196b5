"""Invitations: what every computer of a congregation must share, in one thing to hand over.

A member who types the server address, the folder and the certificate's fingerprint by hand gets
one of them slightly wrong, and then that computer syncs a different folder (the seed's "make sure
that all congregation sync users input the same folder path"). The coordinator makes an invitation
once (``m3daemon invite create``, or the dashboard), and each computer is set up from it
(``m3daemon setup --invite``, or the dashboard's Connection page), asking only for the password.

An invitation carries the server address, the congregation folder, the congregation's name, the
local layout, the SHA-256 fingerprint of the server's certificate authority when it has its own,
optionally a user name, and a password only when the coordinator explicitly adds one.

It comes as a text code, ``M3I1-<base64url of the compact JSON>-<check>``: ``M3I`` names it, ``1``
is its version (a later version is refused with "update m3daemon"), and ``<check>`` is the first
8 base32 characters of the SHA-256 of the JSON, so a typo or a cut is caught, never half-used. The
file (``.m3invite``) is a small JSON document that holds that code and the same values in plain
view; only the code is read back. A QR code of the code is made with segno.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from m3daemon.errors import UsageError
from m3daemon.i18n import _

__all__ = ["FILE_SUFFIX", "PREFIX", "VERSION", "Invitation", "invitation_for", "qr_code", "read_invitation"]

PREFIX = "M3I"
VERSION = 1
FILE_SUFFIX = ".m3invite"
CHECK_LENGTH = 8
_CODE = re.compile(r"^M3I(?P<version>\d+)-(?P<body>[A-Za-z0-9_-]+)-(?P<check>[A-Z2-7]+)$")
LAYOUTS = ("watch", "classic")


def _bad(message: str) -> UsageError:
    return UsageError(message, _("Copy the invitation again, whole, from the coordinator (or use the "
                                 "invitation file or its QR code)."))


@dataclass(frozen=True)
class Invitation:
    """What a new computer needs to join the congregation (never a password unless one was added)."""

    url: str
    folder: str
    name: str
    layout: str = "watch"
    ca_sha256: str | None = None
    username: str | None = None
    password: str | None = None

    def to_document(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def code(self) -> str:
        """The copyable text: ``M3I1-<body>-<check>``."""
        data = json.dumps(self.to_document(), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        raw = data.encode("utf-8")
        body = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        return f"{PREFIX}{VERSION}-{body}-{_check(raw)}"

    def file_text(self) -> str:
        """The ``.m3invite`` file: the code, and the same values to read (only the code counts)."""
        shown = {k: v for k, v in self.to_document().items() if k != "password"}
        doc = {"m3daemon_invitation": VERSION, "code": self.code(), "shown": shown,
               "has_password": self.password is not None}
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_code(cls, text: str) -> Invitation:
        """Read a code (spaces and line breaks from copying are ignored); a typo is an error."""
        code = re.sub(r"\s+", "", text)
        m = _CODE.match(code)
        if m is None:
            raise _bad(_("This is not an m3daemon invitation code (it starts with M3I1-)."))
        if int(m["version"]) != VERSION:
            raise UsageError(
                _("This invitation is of version {version}, which this m3daemon cannot read.").format(
                    version=m["version"]),
                _("Update m3daemon on this computer, then use the invitation again."))
        body = m["body"]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            raise _bad(_("The invitation code is damaged.")) from None
        if _check(raw) != m["check"]:
            raise _bad(_("The invitation code has a typo or is incomplete (its check does not match)."))
        try:
            doc = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise _bad(_("The invitation code is damaged.")) from None
        return cls.from_document(doc)

    @classmethod
    def from_document(cls, doc: Any) -> Invitation:
        if not isinstance(doc, dict):
            raise _bad(_("The invitation code is damaged."))

        def text(key: str, needed: bool = False) -> str | None:
            value = doc.get(key)
            if value is None and not needed:
                return None
            if not isinstance(value, str) or not value.strip():
                raise _bad(_("The invitation has no valid {field}.").format(field=key))
            return value.strip()

        url, folder, name = text("url", True), text("folder", True), text("name", True)
        assert url is not None and folder is not None and name is not None
        layout = text("layout") or "watch"
        if layout not in LAYOUTS:
            raise _bad(_("The invitation has no valid {field}.").format(field="layout"))
        return cls(url=url, folder=folder, name=name, layout=layout, ca_sha256=text("ca_sha256"),
                   username=text("username"), password=text("password"))


def _check(raw: bytes) -> str:
    return base64.b32encode(hashlib.sha256(raw).digest()).decode("ascii")[:CHECK_LENGTH]


def read_invitation(given: str) -> Invitation:
    """An invitation from a code, or from the path of an ``.m3invite`` file (or its text)."""
    text = given.strip()
    if not text.startswith((PREFIX, "{")):
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise _bad(_("{given} is neither an invitation code nor an invitation file.").format(
                given=given)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _bad(_("The invitation file {path} cannot be read: {reason}.").format(
                path=path, reason=getattr(exc, "strerror", None) or type(exc).__name__)) from None
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            raise _bad(_("The invitation file is damaged.")) from None
        code = doc.get("code") if isinstance(doc, dict) else None
        if not isinstance(code, str):
            raise _bad(_("The invitation file is damaged."))
        text = code
    return Invitation.from_code(text)


def invitation_for(cfg: Any, username: str | None = None, password: str | None = None) -> Invitation:
    """The invitation that repeats this computer's connection (no network): its address, folder,
    name, layout and the fingerprint of its pinned CA."""
    from m3daemon.settings.pinning import fingerprint, load_pem_certs

    conn = cfg.connection
    if conn is None:
        raise UsageError(_("Congregation sync is not set up on this computer, so there is nothing to invite to."),
                         _("Set it up first (`m3daemon setup` or the dashboard's Connection page)."))
    ca_sha256 = None
    if conn.ca_file is not None:
        try:
            certs = load_pem_certs(Path(conn.ca_file).read_bytes())
        except OSError as exc:
            raise UsageError(_("The CA file {path} cannot be read: {reason}.").format(
                path=conn.ca_file, reason=exc.strerror or exc), _("Check [connection] ca_file.")) from None
        if certs:
            ca_sha256 = fingerprint(certs[-1])
    return Invitation(url=conn.url, folder=conn.folder, name=cfg.display_name, layout=cfg.local.layout,
                      ca_sha256=ca_sha256, username=username or None, password=password)


def qr_code(code: str) -> Any:
    """A segno QR code of the invitation code (``.terminal()``, ``.save("x.png")``, ``.svg_inline()``)."""
    import segno

    return segno.make(code, error="m", micro=False)
