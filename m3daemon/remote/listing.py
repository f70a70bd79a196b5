"""List the congregation folder: one PROPFIND ``Depth: infinity``, or a parallel Depth-1 walk.

Which one a server supports is found out by asking, never from a list of host names. A listing
is all-or-nothing: any sub-request that fails makes the whole listing fail, because a partial
listing would look like deleted files to the planner.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from m3daemon import __version__
from m3daemon.core.dates import parse_folder_date
from m3daemon.core.entries import RemoteEntry
from m3daemon.errors import Cancelled, FolderNotFoundError, ListingError, NotWebDAVError
from m3daemon.i18n import _
from m3daemon.remote.bounded import ACCEPT_ENCODING, MAX_LISTING_BYTES, decoded, read_start
from m3daemon.remote.http import DavSession, classify_status
from m3daemon.remote.multistatus import PROPFIND_BODY, PROPFIND_HEADERS, RawEntry, parse_multistatus
from m3daemon.remote.retry import FailedAttempt

if TYPE_CHECKING:
    import httpx

    from m3daemon.remote.curl_listing import PollLister

log = logging.getLogger(__name__)

# Folder levels below the congregation folder that hold anything we read: the root, Media/ and
# Hidden/, and their date (or Recurring) folders. Deeper content is never media.
WALK_LEVELS = 3
DEPTH_REFUSED = frozenset({400, 403, 412, 501, 507})


@dataclass
class Listing:
    entries: list[RemoteEntry]
    method: str  # "infinity", "walk", or "unchanged" (the last listing, confirmed by root_tag)
    requests: int
    skipped: list[tuple[str, str]]  # (href, reason) for entries outside the folder
    # The congregation folder's own ETag and date as listed (None: it has neither). On servers
    # such as Nextcloud's it changes whenever anything below changes; see engine/freshness.py.
    root_tag: str | None = None


Found = tuple[list[RemoteEntry], list[tuple[str, str]], "str | None"]


Window = tuple[date, date]

# An answer up to this size is held whole and hashed before it is parsed (the daemon's memo);
# a larger one is parsed as it arrives, as it is without a memo.
MEMO_MAX_BYTES = 8 * 1024 * 1024
# A CLI command's one ``Depth: infinity`` answer on libcurl is held whole up to this size: the
# 100,000 entries a listing may have take about 50 MB. Stopped at the memo's 8 MiB, a large
# congregation's first sync would ask twice (the second time on httpx, parsed as it arrives).
INFINITY_HOLD_BYTES = 64 * 1024 * 1024
# The form of :meth:`AnswerMemo.kept`; raised when what an answer reads as changes, so that an
# answer is never taken for what another parser made of it.
KEPT_FORMAT = 1

MemoKey = tuple[str, tuple[str, ...], str]  # (base URL, folder, depth)


@dataclass
class AnswerMemo:
    """The last answer of each PROPFIND, by its digest, and what was read from it.

    Kept by the daemon between polls with its session, and in the record between processes
    (:meth:`kept`): a folder whose answer is byte for byte the last answer is not parsed again.
    Parsing costs 20–40 µs per entry in Python (40–85 ms for 2,000 files, most of a poll on a
    server that answers in 2 ms); hashing 100 kB costs 0.1 ms. The same bytes parsed for the same
    folder give the same entries, so nothing the sync sees changes; a server that answers
    differently (a changed date, ETag, one byte) is parsed.
    """

    answers: dict[MemoKey, tuple[bytes, Found]] = field(default_factory=dict)
    hits: int = 0
    parsed: int = 0
    walked: list[tuple[str, ...]] = field(default_factory=list)  # the folders the last walk opened
    # The answers the listing under way has read: when it ends, only they are kept (a date folder
    # that left the window is not remembered for ever by a daemon that runs for months).
    touched: set[MemoKey] = field(default_factory=set)
    fresh: int = 0  # the listing under way's answers that were not one remembered (parsed, or too large)
    # The digest (engine/freshness.py) of the entries that the answers of ``digest_of`` gave, as
    # the sync that read them computed it; forgotten as soon as a listing reads another answer.
    # A command's no-op then need not compute it again (3 ms of 2,000 entries).
    entries_digest: str | None = None
    digest_of: frozenset[MemoKey] = frozenset()
    recalled: tuple[frozenset[MemoKey], list[tuple[str, ...]], str | None] = (frozenset(), [], None)  # recall_kept
    # The daemon's libcurl connections that ask for ``walked`` again (remote/curl_listing.py),
    # made by ``quick`` at the first walk that has folders to ask again: a daemon whose server
    # lists everything at once never loads libcurl for it. None: the walk asks on httpx.
    quick: Callable[[], PollLister | None] | None = None
    lister: PollLister | None = None
    # Whether ``Depth: infinity`` is asked on libcurl too. Not by the daemon: one that lists
    # everything at once then never loads pycurl (its idle memory). A CLI sync loads pycurl or
    # httpx for its listing, and pycurl is the cheaper (docs/performance.md, eighth stop).
    infinity_quick: bool = False
    # The server answered the last listing over HTTP/2 (remote/curl_listing.py): the next one asks
    # every folder at once on one connection. Kept with the answers, for the next process.
    multiplex: bool = False
    recalled_multiplex: bool = False  # what recall_kept gave

    def quick_lister(self) -> PollLister | None:
        if self.quick is not None:
            self.lister, self.quick = self.quick(), None
            if self.lister is not None:
                self.lister.multiplex = self.multiplex
        if self.lister is not None:
            self.multiplex = self.lister.multiplex
        return self.lister

    def close(self) -> None:
        self.quick = None
        if self.lister is not None:
            self.multiplex = self.lister.multiplex
            self.lister.close()
            self.lister = None

    def keep_touched(self) -> None:
        self.answers = {key: got for key, got in self.answers.items() if key in self.touched}

    def note_digest(self, digest: str | None) -> None:
        """The digest of the entries of the listing just ended (see ``entries_digest``)."""
        self.entries_digest, self.digest_of = digest, frozenset(self.touched)

    @property
    def changed(self) -> bool:
        """Whether the memo holds anything :meth:`recall_kept` did not give it."""
        return (bool(self.parsed) or set(self.answers) != self.recalled[0] or self.walked != self.recalled[1]
                or self.entries_digest != self.recalled[2] or self._multiplex() != self.recalled_multiplex)

    def _multiplex(self) -> bool:
        return self.lister.multiplex if self.lister is not None else self.multiplex

    def kept(self, session: DavSession) -> dict[str, Any]:
        """The memo as JSON, for the next process's first sync (engine/sync.py keeps it in the
        record): reading 2,000 entries back took 8 ms here, parsing their answers again 85 ms."""
        return {
            "format": KEPT_FORMAT, "version": __version__, "folder": session.url(collection=True),
            "walked": [list(p) for p in self.walked], "digest": self.entries_digest,
            "multiplex": self._multiplex(),
            "answers": [
                [base, list(parts), depth, digest.hex(),
                 [[list(e.parts), e.is_dir, e.size, e.etag, e.modified.isoformat() if e.modified else None]
                  for e in entries], [list(s) for s in skipped], tag]
                for (base, parts, depth), (digest, (entries, skipped, tag)) in self.answers.items()
            ],
        }

    def recall_kept(self, data: Any, session: DavSession) -> None:
        """Take back what :meth:`kept` gave, for the same congregation folder only (an answer
        is read relative to the folder asked for). Anything that is not exactly that form
        (another version's, a damaged one) is ignored: the folders are then listed and parsed
        as on a first sync."""
        if (not isinstance(data, dict) or data.get("format") != KEPT_FORMAT or data.get("version") != __version__
                or data.get("folder") != session.url(collection=True)):
            return
        base_url = session.base_url
        try:
            answers: dict[MemoKey, tuple[bytes, Found]] = {}
            for base, parts, depth, digest, rows, skipped, tag in data["answers"]:
                if base != base_url:
                    continue
                if type(depth) is not str or not (tag is None or type(tag) is str):
                    raise ValueError("not an answer")
                entries = [_kept_entry(row) for row in rows]
                bad = [(str(href), str(why)) for href, why in skipped]
                answers[(base, _kept_parts(parts), depth)] = (bytes.fromhex(digest), (entries, bad, tag))
            walked = [_kept_parts(p) for p in data["walked"]]
            digest = data.get("digest")
            if not (digest is None or type(digest) is str):
                raise ValueError("not a digest")
        except (TypeError, ValueError, KeyError):
            log.debug("the kept listing memo is not readable; listing as on a first sync")
            return
        self.answers, self.walked = answers, walked
        self.entries_digest, self.digest_of = digest, frozenset(answers)
        self.multiplex = data.get("multiplex") is True
        if self.lister is not None:
            self.lister.multiplex = self.multiplex
        self.mark_kept()

    def mark_kept(self) -> None:
        """What the memo holds now is what the record holds."""
        self.parsed = 0
        self.recalled = (frozenset(self.answers), list(self.walked), self.entries_digest)
        self.recalled_multiplex = self._multiplex()


def _kept_parts(parts: Any) -> tuple[str, ...]:
    if not isinstance(parts, list) or not all(type(s) is str and s not in ("", ".", "..") for s in parts):
        raise ValueError("not a path")
    return tuple(parts)


def _kept_entry(row: Any) -> RemoteEntry:
    parts, is_dir, size, etag, modified = row
    if (type(is_dir) is not bool or not (size is None or type(size) is int)
            or not (etag is None or type(etag) is str)):
        raise ValueError("not an entry")
    return RemoteEntry(_kept_parts(parts), is_dir, size, etag,
                       None if modified is None else datetime.fromisoformat(modified))


def list_tree(
    session: DavSession, *, workers: int = 4, prefer_infinity: bool = True, window: Window | None = None,
    memo: AnswerMemo | None = None,
) -> Listing:
    """List everything below the congregation folder that can matter for a sync.

    With ``window`` (first and last date, both included), a Depth-1 walk opens only the date
    folders of ``Media/`` and ``Hidden/`` whose date is in it, and ``Recurring``: the planner
    decides past folders from the local side, and a date beyond the window waits until it comes
    in. Their names are still listed (a date with its own folder gets the recurring media). A
    congregation with years of past date folders then costs the same requests as a new one.
    ``Depth: infinity`` lists everything in one request either way. ``memo``: see :class:`AnswerMemo`.
    """
    if memo is not None:
        memo.touched, memo.fresh = set(), 0
    result = _try_infinity(session, memo) if prefer_infinity else None
    if result is None:
        result = _walk(session, workers, window, memo)
    if memo is not None:
        memo.keep_touched()
        if memo.fresh or memo.touched != memo.digest_of:
            memo.note_digest(None)
    return result


def list_children(session: DavSession, parts: tuple[str, ...]) -> list[RemoteEntry]:
    """Depth-1 listing of one folder (for ``browse`` and the folder picker)."""
    found = _propfind(session, parts, "1")
    assert found is not None
    entries, skipped, _tag = found
    for href, why in skipped:
        log.warning("skipping %r in the listing: %s", href, why)
    return entries


def root_tag(session: DavSession) -> str | None:
    """The congregation folder's own tag, in one ``Depth: 0`` PROPFIND."""
    found = _propfind(session, (), "0")
    assert found is not None
    return found[2]


def _try_infinity(session: DavSession, memo: AnswerMemo | None = None) -> Listing | None:
    before = session.stats.requests
    lister = memo.quick_lister() if memo is not None and memo.infinity_quick else None
    got = lister.ask([()], INFINITY_HOLD_BYTES, depth="infinity", refused=DEPTH_REFUSED)[()] if lister else None
    if isinstance(got, int):
        log.debug("Depth: infinity refused with %s; walking with Depth 1", got)
        return None
    if isinstance(got, bytes):
        assert memo is not None
        found: Found | None = _recalled(session, (), "infinity", (got,), memo)
    else:
        found = _propfind(session, (), "infinity", memo, got)
    if found is None:
        return None
    entries, skipped, tag = found
    # A server that quietly answers infinity as Depth 1 shows folders but nothing inside them.
    if any(e.is_dir for e in entries) and not any(len(e.parts) > 1 for e in entries):
        log.debug("Depth: infinity answered one level only; walking with Depth 1")
        return None
    return Listing(entries, "infinity", session.stats.requests - before, skipped, tag)


def _walk(session: DavSession, workers: int, window: Window | None = None, memo: AnswerMemo | None = None) -> Listing:
    """Level by level: the root, then ``Media/`` and ``Hidden/``, then their date folders.

    Where the memo has libcurl connections (remote/curl_listing.py), every level is asked on them,
    and only a folder whose answer was not a clean one is asked again on httpx. With a memo of the
    last walk, every folder it opened that is still worth opening is asked for at once, in
    parallel: one round trip instead of three when nothing changed. Each level is then checked
    against what its parent's answer says, so a folder that appeared is still listed, and one
    that went away is dropped from the result.
    """
    before = session.stats.requests
    entries: list[RemoteEntry] = []
    skipped: list[tuple[str, str]] = []
    level: list[tuple[str, ...]] = [()]
    tag: str | None = None
    walked: list[tuple[str, ...]] = []
    lister = memo.quick_lister() if memo is not None else None
    failed: dict[tuple[str, ...], FailedAttempt] = {}  # asked on libcurl: httpx makes the attempts left

    def quickly(folders: list[tuple[str, ...]]) -> dict[tuple[str, ...], Future[Found | None]]:
        # (a folder whose answer was not a clean one is asked on httpx with its level)
        assert lister is not None and memo is not None
        done: dict[tuple[str, ...], Future[Found | None]] = {}
        for parts, body in lister.ask(folders, MEMO_MAX_BYTES).items():
            if isinstance(body, bytes):
                done[parts] = Future()
                done[parts].set_result(_recalled(session, parts, "1", (body,), memo))
            elif isinstance(body, FailedAttempt):
                failed[parts] = body
        return done

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="propfind") as pool:
        early: dict[tuple[str, ...], Future[Found | None]] = {}
        if memo is not None:
            again = [parts for parts in memo.walked if not parts or _worth_walking(parts, window)]
            if lister is None:
                early = {parts: pool.submit(_propfind, session, parts, "1", memo) for parts in again}
            elif again:
                early = quickly(again)
        for depth in range(WALK_LEVELS):
            asked = {parts: early.pop(parts) for parts in level if parts in early}
            if lister is not None:
                asked.update(quickly([parts for parts in level if parts not in asked and parts not in failed]))
            asked.update((parts, pool.submit(_propfind, session, parts, "1", memo, failed.pop(parts, None)))
                         for parts in level if parts not in asked)
            results = [asked[parts].result() for parts in level]
            walked.extend(level)
            next_level: list[tuple[str, ...]] = []
            for result in results:
                assert result is not None
                found, bad, folder_tag = result
                if depth == 0:
                    tag = folder_tag
                entries.extend(found)
                skipped.extend(bad)
                if depth + 1 < WALK_LEVELS:
                    next_level.extend(e.parts for e in found if e.is_dir and _worth_walking(e.parts, window))
            level = next_level
            if not level:
                break
        for future in early.values():  # asked for a folder that is gone: its answer is not used
            future.cancel()
    if memo is not None:
        memo.walked = walked
    return Listing(entries, "walk", session.stats.requests - before, skipped, tag)


def _worth_walking(parts: tuple[str, ...], window: Window | None = None) -> bool:
    """Only Media/ and Hidden/ (and their sub-folders) hold anything we read; with a window, only
    its date folders and ``Recurring``."""
    if parts[0] not in ("Media", "Hidden"):
        return False
    if window is None or len(parts) == 1:
        return True
    parsed = parse_folder_date(parts[1])
    if parsed is None:
        return parts[0] == "Media" and parts[1] == "Recurring"
    return window[0] <= parsed[0] <= window[1]


def _propfind(session: DavSession, parts: tuple[str, ...], depth: str, memo: AnswerMemo | None = None,
              after: FailedAttempt | None = None) -> Found | None:
    """One PROPFIND, read to the end. A body cut off mid-way is asked for again (PROPFIND is
    idempotent) within the session's attempts, which also cover connection failures and retryable
    statuses: at most ``retry.attempts`` requests in all, ``after`` a first one on libcurl
    included. After the last one the listing fails as a whole. Returns None only when
    ``Depth: infinity`` is refused."""

    def read(resp: httpx.Response) -> Found | None:
        if depth == "infinity" and resp.status_code in DEPTH_REFUSED:
            read_start(resp)
            log.debug("Depth: infinity refused with %s; walking with Depth 1", resp.status_code)
            return None
        _check_multistatus(resp, parts)
        return _collect(session, resp, parts, depth, memo)

    def interrupted(exc: httpx.TransportError) -> ListingError:
        return ListingError(
            _("The listing of {what} was interrupted ({reason}).").format(
                what="/".join(parts) or _("the congregation folder"), reason=exc
            ),
            _("Nothing was changed locally. m3daemon tries again at the next sync."),
        )

    return session.fetch(
        "PROPFIND", parts, read, collection=True, content=PROPFIND_BODY, interrupted=interrupted,
        after=after,
        headers={"Depth": depth, **PROPFIND_HEADERS, "Accept-Encoding": ACCEPT_ENCODING},
    )


def _check_multistatus(resp: httpx.Response, parts: tuple[str, ...]) -> None:
    if resp.status_code == 207:
        ctype = resp.headers.get("Content-Type", "")
        if "xml" not in ctype and ctype:
            raise NotWebDAVError(
                _("The server answered the listing with {ctype} instead of WebDAV XML.").format(ctype=ctype),
                _("Check the web address and folder; the provider's WebDAV address is often different."),
            )
        return
    what = "/".join(parts) if parts else _("the congregation folder")
    if resp.status_code == 200:  # a web page: not read at all (it may be endless)
        raise NotWebDAVError(
            _("The server answered with a web page, not a WebDAV listing."),
            _("Check the web address and folder; the provider's WebDAV address is often different."),
        )
    read_start(resp)  # an error page: its start at most
    err = classify_status(resp, what)
    if isinstance(err, FolderNotFoundError) and not parts:
        err = FolderNotFoundError(
            _("The congregation folder {folder} does not exist on the server.").format(
                folder=resp.request.url.path
            ),
            _("Check [connection] folder; m3daemon browse lists the server's folders."),
        )
    raise err


def _collect(
    session: DavSession, resp: httpx.Response, parts: tuple[str, ...], depth: str, memo: AnswerMemo | None = None,
) -> Found:
    what = _("the listing of {what}").format(what="/".join(parts) or _("the congregation folder"))
    counted = _cancellable(decoded(resp, what, MAX_LISTING_BYTES, session.stats.add_bytes), session.cancel)
    if memo is None:
        return _read_entries(session, counted, parts)
    held: list[bytes] = []
    size = 0
    for chunk in counted:
        held.append(chunk)
        size += len(chunk)
        if size > MEMO_MAX_BYTES:  # too large to hold: parsed as it arrives, not remembered
            memo.fresh += 1
            return _read_entries(session, itertools.chain(held, counted), parts)
    return _recalled(session, parts, depth, held, memo)


def _recalled(
    session: DavSession, parts: tuple[str, ...], depth: str, body: Iterable[bytes], memo: AnswerMemo
) -> Found:
    """What the last answer of ``parts`` gave when ``body`` is that answer byte for byte; else
    ``body`` parsed, and remembered for the next poll."""
    digest = hashlib.blake2b(digest_size=20)
    for chunk in body:
        digest.update(chunk)
    seen = digest.digest()
    key = (session.base_url, parts, depth)
    memo.touched.add(key)
    last = memo.answers.get(key)
    if last is not None and last[0] == seen:
        memo.hits += 1
        entries, skipped, tag = last[1]
        return list(entries), list(skipped), tag
    found = _read_entries(session, iter(body), parts)
    memo.parsed += 1
    memo.fresh += 1
    memo.answers[key] = (seen, (list(found[0]), list(found[1]), found[2]))
    return found


def _read_entries(session: DavSession, chunks: Iterator[bytes], parts: tuple[str, ...]) -> Found:
    base = session.folder_segments() + list(parts)
    entries: list[RemoteEntry] = []
    skipped: list[tuple[str, str]] = []
    tag: str | None = None
    host = urlsplit(session.base_url).netloc.lower()
    depth = len(session.folder_segments())
    for raw in parse_multistatus(chunks):
        if "://" in raw.href and urlsplit(raw.href).netloc.lower() != host:
            skipped.append((raw.href, "another server"))
            continue
        entry, why = _to_entry(raw, base, depth)
        if entry is not None:
            entries.append(entry)
        elif why:
            skipped.append((raw.href, why))
        elif why == "" and (raw.etag or raw.modified):
            # the listed folder itself
            tag = f"{raw.etag or ''}|{raw.modified.isoformat() if raw.modified else ''}"
    return entries, skipped, tag


def _cancellable(chunks: Iterator[bytes], cancel: threading.Event | None) -> Iterator[bytes]:
    for c in chunks:
        if cancel is not None and cancel.is_set():
            raise Cancelled  # the daemon stops, or a person paused: the listing is not needed
        yield c


def _to_entry(raw: RawEntry, base: list[str], folder_depth: int) -> tuple[RemoteEntry | None, str]:
    if raw.status is not None and not 200 <= raw.status < 300:
        return None, f"status {raw.status}"
    segs = DavSession.decode_href_path(raw.href)
    if segs is None:
        return None, "not an absolute path"
    if segs[: len(base)] != base:
        return None, "outside the listed folder"
    if segs == base:
        return None, ""  # the folder itself
    rel = tuple(segs[folder_depth:])
    if any(s in (".", "..") for s in rel):
        return None, "dot segment"
    return RemoteEntry(rel, raw.is_dir, raw.size, raw.etag, raw.modified), ""

