"""The PROPFIND parser reads what servers send, the fast way where they all agree, and refuses
what would hurt. (The servers themselves are in test_remote_contract.py.)"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m3daemon.errors import MalformedListing
from m3daemon.remote.multistatus import RawEntry, _http_date, parse_multistatus


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)))
def test_an_imf_fixdate_reads_as_email_utils_reads_it(when: datetime) -> None:
    text = format_datetime(when.replace(microsecond=0, tzinfo=UTC), usegmt=True)
    assert _http_date(text) == parsedate_to_datetime(text)
    assert _http_date(text).tzinfo is UTC  # type: ignore[union-attr]


@pytest.mark.parametrize("text, expected", [
    ("Sun, 06 Nov 1994 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
    ("Sunday, 06-Nov-94 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),  # RFC 850
    ("Sun Nov  6 08:49:37 1994", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),  # asctime
    ("Sun, 06 Nov 1994 09:49:37 +0100", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
    ("Sun, 31 Feb 1994 08:49:37 GMT", None),  # no such day
    ("Sun, 06 Nox 1994 08:49:37 GMT", None),
    ("yesterday", None),
])
def test_every_date_form_of_rfc_9110_is_read_and_nonsense_is_no_date(text: str, expected: datetime | None) -> None:
    got = _http_date(text)
    assert got == expected
    if expected is not None:
        assert got is not None and got.utcoffset() is not None


ENTRY = ("<d:response><d:href>/dav/Cong/Media/a%20b.jpg</d:href><d:propstat><d:prop>"
         "<d:resourcetype/><d:getcontentlength>5</d:getcontentlength><d:getetag>\"e1\"</d:getetag>"
         "<d:getlastmodified>Wed, 02 Dec 2026 10:20:30 GMT</d:getlastmodified>{extra}</d:prop>"
         "<d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
         "<d:propstat><d:prop><d:quota/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>"
         "</d:response>"
         "<d:response><d:href>/dav/Cong/Media/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/>"
         "</d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>")
EXPECTED = [
    RawEntry("/dav/Cong/Media/a%20b.jpg", False, 5, '"e1"', datetime(2026, 12, 2, 10, 20, 30, tzinfo=UTC), None),
    RawEntry("/dav/Cong/Media/", True, None, None, None, None),
]


def listing(extra: str = "", pretty: bool = False) -> bytes:
    body = ENTRY.format(extra=extra)
    if pretty:  # as SabreDAV and WsgiDAV indent: whitespace between every element
        body = body.replace("><", ">\n   <")
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus xmlns:d="DAV:">{body}'
            "</d:multistatus>").encode()


@pytest.mark.parametrize("chunk", [1, 7, 1 << 16])
@pytest.mark.parametrize("pretty", [False, True])
def test_a_listing_reads_the_same_however_it_is_laid_out_and_cut(pretty: bool, chunk: int) -> None:
    body = listing(pretty=pretty)
    assert list(parse_multistatus(body[i:i + chunk] for i in range(0, len(body), chunk))) == EXPECTED


def test_a_long_text_in_a_property_not_read_does_not_fail_the_listing() -> None:
    extra = "<d:displayname>" + "x" * 100_000 + "</d:displayname>"
    assert list(parse_multistatus([listing(extra)])) == EXPECTED


def test_a_long_text_in_a_value_that_is_read_is_refused() -> None:
    body = listing().replace(b"a%20b.jpg", b"a" * 70_000)
    with pytest.raises(MalformedListing, match="longer than 65536"):
        list(parse_multistatus([body]))


def test_a_document_type_declaration_is_refused_before_any_entity() -> None:
    body = listing().replace(b"<d:multistatus", b'<!DOCTYPE x [<!ENTITY a "b">]><d:multistatus', 1)
    with pytest.raises(MalformedListing, match="document type declaration"):
        list(parse_multistatus([body]))
