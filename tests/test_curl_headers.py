"""A small file's header lines, kept by libcurl and read once at its end, say what the line-by-line
reader (a large file's live callback) says: the status, the ETag and Retry-After of the last answer."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from m3daemon.remote.curl_download import Job, _read_header, _read_kept_headers

NAMES = st.sampled_from(["ETag", "etag", "ETAG", "Retry-After", "retry-after", "Content-Length",
                         "Date", "X-Path", "Last-Modified"])
VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
HEADER = st.tuples(NAMES, VALUES)
ANSWER = st.tuples(st.sampled_from([100, 200, 401, 404, 429, 503]), st.lists(HEADER, max_size=8))


def lines_of(answers: list[tuple[int, list[tuple[str, str]]]]) -> list[bytes]:
    out = []
    for status, headers in answers:
        out.append(f"HTTP/1.1 {status} Reason\r\n".encode())
        out += [f"{name}: {value}\r\n".encode() for name, value in headers]
        out.append(b"\r\n")
    return out


def job() -> Job:
    return Job(("d", "f.jpg"), Path("f.part"), 1, None, None)


@given(st.lists(ANSWER, min_size=1, max_size=3))
def test_the_kept_lines_read_as_the_live_callback_reads_them(answers: list[tuple[int, list[tuple[str, str]]]]) -> None:
    lines = lines_of(answers)
    live, kept = job(), job()
    for line in lines:
        _read_header(live, line)
    kept.headers = list(lines)
    _read_kept_headers(kept)
    assert kept.headers is None
    assert (kept.status, kept.etag_seen) == (live.status, live.etag_seen)
    last_has_retry_after = any(name.lower() == "retry-after" for name, _v in answers[-1][1])
    # Retry-After is the last answer's: one sent with an earlier answer (an auth round) no longer applies.
    assert kept.retry_after == (live.retry_after if last_has_retry_after else None)


def test_a_typical_answer_gives_its_status_etag_and_pause() -> None:
    kept = job()
    kept.headers = [b"HTTP/1.1 503 Service Unavailable\r\n", b"Date: Wed, 02 Dec 2026 10:00:00 GMT\r\n",
                    b"ETag: \"abc-1\"\r\n", b"Retry-After: 7\r\n", b"\r\n"]
    _read_kept_headers(kept)
    assert (kept.status, kept.etag_seen, kept.retry_after) == (503, "abc-1", "7")
