"""A streaming, hardened parser for PROPFIND ``207 Multi-Status`` bodies.

Why not webdav4's parser: it builds the whole document as an ElementTree plus one object per
entry (a 50,000-entry listing is tens of MB of XML), and it hands the body to expat with DTDs
allowed. Here the body is fed to expat chunk by chunk as it arrives, only the four properties we
asked for are kept, and any DTD (the vehicle of entity-expansion bombs and external entities) is
refused before a single entity is declared.
"""

from __future__ import annotations

import xml.parsers.expat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from m3daemon.errors import MalformedListing
from m3daemon.i18n import _
from m3daemon.remote.bounded import MAX_ENTRIES, MAX_TEXT_CHARS

DAV = "DAV:"
SEP = "\x1f"  # expat namespace separator; cannot occur in a namespace URI or a local name

_MULTISTATUS, _RESPONSE, _PROPSTAT, _PROP, _HREF, _STATUS, _RESOURCETYPE, _COLLECTION = (
    DAV + SEP + local for local in
    ("multistatus", "response", "propstat", "prop", "href", "status", "resourcetype", "collection"))
# The elements whose text is read (a property's by its local name)
_TEXT_OF = {_HREF: "href", _STATUS: "status"} | {
    DAV + SEP + local: local for local in ("getcontentlength", "getetag", "getlastmodified")}
_READ_AT_END = frozenset(_TEXT_OF) | {_PROPSTAT, _RESPONSE}
_NAMES = _READ_AT_END | {_MULTISTATUS, _PROP, _RESOURCETYPE, _COLLECTION}
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), 1)}

PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<d:propfind xmlns:d="DAV:"><d:prop>'
    b"<d:resourcetype/><d:getcontentlength/><d:getetag/><d:getlastmodified/>"
    b"</d:prop></d:propfind>"
)
#: The type of PROPFIND_BODY, sent with it every time: some servers (lighttpd) answer 415 to a body
#: without it.
PROPFIND_CONTENT_TYPE = "application/xml; charset=utf-8"
PROPFIND_HEADERS = {"Content-Type": PROPFIND_CONTENT_TYPE}


@dataclass(slots=True)
class RawEntry:
    """One ``<d:response>`` as found: href plus the properties of its 2xx propstat."""

    href: str
    is_dir: bool
    size: int | None
    etag: str | None
    modified: datetime | None
    status: int | None  # a response-level status (for responses without propstat)


def _malformed(reason: str) -> MalformedListing:
    return MalformedListing(
        _("The server sent a listing that cannot be read ({reason}).").format(reason=reason),
        _("Nothing was changed locally. Try again later; if it persists, tell the server's administrator."),
    )


def _status_code(line: str) -> int | None:
    bits = line.split()
    if len(bits) >= 2 and bits[1].isdigit():
        return int(bits[1])
    return None


def _http_date(text: str) -> datetime | None:
    """A ``getlastmodified`` date. Servers send RFC 9110's IMF-fixdate (``Sun, 06 Nov 1994
    08:49:37 GMT``), read here directly: ``email.utils`` takes 20 µs per entry, a third of the
    parse. Any other form goes to ``email.utils``, which reads the obsolete ones too."""
    if (len(text) == 29 and text[3:5] == ", " and text[25:] == " GMT" and text[7] == text[11] == text[16] == " "
            and text[19] == text[22] == ":"):
        month = _MONTHS.get(text[8:11])
        digits = text[5:7] + text[12:16] + text[17:19] + text[20:22] + text[23:25]
        if month is not None and digits.isascii() and digits.isdigit():
            try:
                return datetime(int(text[12:16]), month, int(text[5:7]), int(text[17:19]), int(text[20:22]),
                                int(text[23:25]), tzinfo=UTC)
            except ValueError:
                pass  # (a 31st of February, a second 60: email.utils decides)
    from email.utils import parsedate_to_datetime  # (the rare other forms: 2 ms of a command's start)

    try:
        d = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


class MultistatusParser:
    """Feed bytes with :meth:`feed`, collect finished entries from :meth:`drain`."""

    def __init__(self) -> None:
        # expat hands back these very strings for the names (comparisons by identity, hashes cached)
        p = xml.parsers.expat.ParserCreate(namespace_separator=SEP, intern={n: n for n in _NAMES})
        p.StartDoctypeDeclHandler = self._refuse_dtd
        p.EntityDeclHandler = self._refuse_entity
        p.ExternalEntityRefHandler = self._refuse_external
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._text
        p.buffer_text = True
        self._p = p
        self._stack: list[str] = []
        self._text_parts: list[str] = []
        self._text_len = 0
        self._want = False
        self._responses = 0
        self._ready: list[RawEntry] = []
        self._saw_root = False
        self._reset_response()

    # --- public ------------------------------------------------------------------------

    def feed(self, data: bytes, final: bool = False) -> None:
        try:
            self._p.Parse(data, final)
        except xml.parsers.expat.ExpatError as exc:
            raise _malformed(str(exc)) from exc
        if final and not self._saw_root:
            raise _malformed(_("no multistatus element"))

    def drain(self) -> list[RawEntry]:
        out, self._ready = self._ready, []
        return out

    # --- expat handlers ----------------------------------------------------------------

    def _refuse_dtd(self, *args: object) -> None:
        raise _malformed(_("it contains a document type declaration, which is refused"))

    def _refuse_entity(self, *args: object) -> None:
        raise _malformed(_("it declares XML entities, which is refused"))

    def _refuse_external(self, *args: object) -> int:
        raise _malformed(_("it refers to an external entity, which is refused"))

    def _reset_response(self) -> None:
        self._href: str | None = None
        self._resp_status: int | None = None
        self._ps_status: int | None = None
        self._ps_props: dict[str, str | bool] = {}
        self._good_props: dict[str, str | bool] = {}

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._stack.append(name)
        # Text is kept only inside the elements read: an entry's other text costs nothing.
        if name in _TEXT_OF:
            self._want = True
            self._text_parts = []
            self._text_len = 0
            return
        self._want = False  # (an element inside a value: its text is not the value's)
        if name == _RESPONSE:
            self._reset_response()
        elif name == _PROPSTAT:
            self._ps_status = None
            self._ps_props = {}
        elif name == _COLLECTION and len(self._stack) >= 2 and self._stack[-2] == _RESOURCETYPE:
            self._ps_props["collection"] = True
        elif name == _MULTISTATUS:
            self._saw_root = True

    def _text(self, data: str) -> None:
        if not self._want:
            return
        self._text_len += len(data)
        if self._text_len > MAX_TEXT_CHARS:
            raise _malformed(_("a text in it is longer than {n} characters").format(n=MAX_TEXT_CHARS))
        self._text_parts.append(data)

    def _end(self, name: str) -> None:
        stack = self._stack
        stack.pop()
        if name not in _READ_AT_END:
            self._want = False
            return
        parent = stack[-1] if stack else ""
        if self._want:
            text = "".join(self._text_parts).strip()
            self._want = False
            self._text_parts = []
            if name == _HREF:
                if parent == _RESPONSE:
                    self._href = text
            elif name == _STATUS:
                if parent == _PROPSTAT:
                    self._ps_status = _status_code(text)
                elif parent == _RESPONSE:
                    self._resp_status = _status_code(text)
            elif parent == _PROP:
                self._ps_props[_TEXT_OF[name]] = text
        elif name == _PROPSTAT:
            if self._ps_status is None or 200 <= self._ps_status < 300:
                self._good_props.update(self._ps_props)
        elif name == _RESPONSE:
            self._finish_response()

    def _finish_response(self) -> None:
        self._responses += 1
        if self._responses > MAX_ENTRIES:
            raise _malformed(_("it has more than {n} entries").format(n=MAX_ENTRIES))
        if not self._href:
            raise _malformed(_("a response without href"))
        props = self._good_props
        size: int | None = None
        raw_len = props.get("getcontentlength")
        if isinstance(raw_len, str) and raw_len:
            if not raw_len.isdigit():
                raise _malformed(_("a size that is not a number: {value!r}").format(value=raw_len[:40]))
            size = int(raw_len)
        etag = props.get("getetag")
        modified = props.get("getlastmodified")
        self._ready.append(
            RawEntry(
                href=self._href,
                is_dir=bool(props.get("collection")),
                size=size,
                etag=etag if isinstance(etag, str) and etag else None,
                modified=_http_date(modified) if isinstance(modified, str) and modified else None,
                status=self._resp_status,
            )
        )


def parse_multistatus(chunks: Iterable[bytes]) -> Iterator[RawEntry]:
    """Parse a body given as chunks, yielding entries as soon as they are complete."""
    parser = MultistatusParser()
    for chunk in chunks:
        parser.feed(chunk)
        yield from parser.drain()
    parser.feed(b"", final=True)
    yield from parser.drain()
