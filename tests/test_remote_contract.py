"""What m3daemon's WebDAV layer (m3daemon/remote/) promises, on every kind of server.

``RemoteContract`` holds the promises; one class per server kind mixes it in, the way vdirsyncer's
``StorageTests`` are mixed into a test class per storage. Where a server legitimately differs
(tests/servers.py lists the dialects), the contract asserts the documented difference instead of
skipping: nginx lists no ETags (the date stands in), and nginx and rclone ignore ``If-Match``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from servers import DavServer, ServerPool, make_tree

from m3daemon.coordinator.writes import Writer
from m3daemon.core.entries import RemoteEntry, normalize_etag
from m3daemon.errors import Cancelled, FolderNotFoundError
from m3daemon.remote import listing
from m3daemon.remote.curl_listing import PollLister
from m3daemon.remote.http import DavSession, Endpoint
from m3daemon.remote.listing import AnswerMemo, list_children, list_tree
from m3daemon.remote.transfer import download

FOLDER = "Cong"
MiB = 1024 * 1024
AN_HOUR_AGO = time.time() - 3600  # old enough for Apache's ETags to be strong


class RemoteContract:
    kind: ClassVar[str]

    @pytest.fixture
    def server(self, dav_server_pool: ServerPool) -> DavServer:
        server = dav_server_pool.fresh(self.kind)
        (server.root / FOLDER).mkdir()
        return server

    @pytest.fixture
    def session(self, server: DavServer) -> Iterator[DavSession]:
        endpoint = Endpoint(server.url, f"{server.prefix}/{FOLDER}", server.username, server.ca_file)
        with DavSession(endpoint, server.password) as session:
            yield session

    @staticmethod
    def lay_out(server: DavServer, files: dict[str, bytes]) -> None:
        make_tree(server.root / FOLDER, files, mtime=AN_HOUR_AGO)

    @staticmethod
    def on_server(server: DavServer, path: str) -> Path:
        return server.root / FOLDER / path

    @staticmethod
    def entry(session: DavSession, path: str) -> RemoteEntry:
        """The listing's entry for ``path``, its ETag normalized as the model hands it to download()."""
        *folder, name = path.split("/")
        e = next(e for e in list_children(session, tuple(folder)) if e.name == name)
        return RemoteEntry(e.parts, e.is_dir, e.size, normalize_etag(e.etag), e.modified)

    def version_tag(self, server: DavServer, session: DavSession, path: str) -> str:
        """The tag forcedPrefs.json's write sends in If-Match: the ETag exactly as the server sends
        it on GET, or the listed one where its GET sends none (lighttpd; coordinator/forced.py)."""
        parts = tuple(path.split("/"))
        etag = session.request("GET", parts).headers.get("ETag")
        assert bool(etag) == server.get_etags
        etag = etag or Writer(session).listed_etag(parts)
        assert etag, f"{self.kind} names no version of {path}"
        return etag

    # --- listing ---------------------------------------------------------------------------------

    def test_the_tree_lists_every_file_with_its_size(self, server: DavServer, session: DavSession) -> None:
        self.lay_out(server, {"Media/2026-12-01/01 Talk.jpg": b"x" * 10, "Media/Recurring/Song.mp4": b"y" * 20,
                              "Hidden/2026-12-01/01 Talk.jpg": b""})
        listing = list_tree(session)
        files = {e.path: e.size for e in listing.entries if not e.is_dir}
        assert files == {"Media/2026-12-01/01 Talk.jpg": 10, "Media/Recurring/Song.mp4": 20,
                         "Hidden/2026-12-01/01 Talk.jpg": 0}
        assert {e.path for e in listing.entries if e.is_dir} >= {"Media", "Media/2026-12-01", "Hidden"}
        assert listing.method == ("infinity" if server.supports_depth_infinity else "walk")

    def test_a_folder_lists_its_children_with_an_etag_or_a_date(self, server: DavServer,
                                                                  session: DavSession) -> None:
        self.lay_out(server, {"Media/a.jpg": b"a", "Media/sub/b.jpg": b"bb"})
        children = {e.name: e for e in list_children(session, ("Media",))}
        assert set(children) == {"a.jpg", "sub"}
        assert children["sub"].is_dir and not children["a.jpg"].is_dir
        a = children["a.jpg"]
        assert a.modified is not None and abs(a.modified.timestamp() - AN_HOUR_AGO) < 2
        assert (a.etag is not None) == server.etags  # nginx lists no ETag; its date stands in

    def test_a_missing_folder_is_named_as_not_found(self, session: DavSession) -> None:
        with pytest.raises(FolderNotFoundError):
            list_children(session, ("No such folder",))

    # --- the daemon's walk on libcurl (remote/curl_listing.py) -------------------------------------

    @pytest.fixture
    def memo(self, session: DavSession) -> Iterator[AnswerMemo]:
        memo = AnswerMemo(quick=lambda: PollLister.for_session(session))
        probe = PollLister.for_session(session)
        assert probe is not None, "libcurl verifies this server as httpx does"
        probe.close()
        yield memo
        memo.close()

    @staticmethod
    def httpx_requests(session: DavSession, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
        asked: list[tuple[str, ...]] = []
        real = session.fetch

        def counted(method: str, parts: tuple[str, ...], *args: object, **kwargs: object) -> object:
            asked.append(parts)
            return real(method, parts, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(session, "fetch", counted)
        return asked

    @staticmethod
    def files(found: listing.Listing) -> dict[str, int | None]:
        return {e.path: e.size for e in found.entries if not e.is_dir}

    def test_a_walk_asks_the_folders_it_knows_again_on_libcurl_and_sees_every_change(
        self, server: DavServer, session: DavSession, memo: AnswerMemo, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.lay_out(server, {"Media/2026-12-01/a.jpg": b"a", "Media/2026-12-02/b.jpg": b"b",
                              "Hidden/2026-12-01/a.jpg": b""})
        first = list_tree(session, prefer_infinity=False, memo=memo)
        on_httpx = self.httpx_requests(session, monkeypatch)
        again = list_tree(session, prefer_infinity=False, memo=memo)
        assert on_httpx == [] and again.requests == first.requests == 6
        assert again.entries == first.entries and memo.hits == 6, "the same answers, not parsed again"

        make_tree(server.root / FOLDER, {"Media/2026-12-01/a.jpg": b"a, replaced"}, mtime=AN_HOUR_AGO + 60)
        for folder in ("Media/2026-12-02", "Hidden/2026-12-01", "Hidden"):
            for path in sorted(self.on_server(server, folder).rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            self.on_server(server, folder).rmdir()
        changed = list_tree(session, prefer_infinity=False, memo=memo)
        assert self.files(changed) == {"Media/2026-12-01/a.jpg": len(b"a, replaced")}
        assert on_httpx == [], "folders that went away are dropped by their parents' answers, not asked for"
        assert changed.entries == list_tree(session, prefer_infinity=False).entries

    def test_an_answer_too_large_to_hold_or_a_cancelled_sync_leaves_libcurl(
        self, server: DavServer, session: DavSession, memo: AnswerMemo, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.lay_out(server, {"Media/2026-12-01/a.jpg": b"a"})
        first = list_tree(session, prefer_infinity=False, memo=memo)
        monkeypatch.setattr(listing, "MEMO_MAX_BYTES", 100)
        on_httpx = self.httpx_requests(session, monkeypatch)
        assert list_tree(session, prefer_infinity=False, memo=memo).entries == first.entries
        assert sorted(on_httpx) == [(), ("Media",), ("Media", "2026-12-01")], "asked again on httpx"

        session.cancel = threading.Event()
        session.cancel.set()
        with pytest.raises(Cancelled):
            list_tree(session, prefer_infinity=False, memo=memo)

    def test_a_commands_one_listing_asks_on_libcurl_alone_and_reads_what_httpx_reads(
        self, server: DavServer, session: DavSession, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.lay_out(server, {"Media/2026-12-01/a.jpg": b"a", "Media/Recurring/r.jpg": b"r",
                              "Hidden/2026-12-01/a.jpg": b""})
        plain = list_tree(session)
        on_httpx = self.httpx_requests(session, monkeypatch)

        def listed() -> listing.Listing:
            memo = AnswerMemo(quick=lambda: PollLister.for_session(session), infinity_quick=True)
            try:
                return list_tree(session, memo=memo)
            finally:
                memo.close()

        quick = listed()
        assert on_httpx == [], "Depth: infinity (answered or refused) and the walk, all on libcurl"
        assert quick.method == ("infinity" if server.supports_depth_infinity else "walk")
        assert (quick.entries, quick.skipped, quick.root_tag) == (plain.entries, plain.skipped, plain.root_tag)
        monkeypatch.setattr(listing, "MEMO_MAX_BYTES", 100)
        monkeypatch.setattr(listing, "INFINITY_HOLD_BYTES", 100)
        assert listed().entries == plain.entries, "an answer too large to hold is read on httpx"
        assert on_httpx, "and was asked there"

    # --- download and resume -----------------------------------------------------------------------

    def test_a_download_brings_the_exact_bytes(self, server: DavServer, session: DavSession,
                                               tmp_path: Path) -> None:
        data = os.urandom(300_000)
        self.lay_out(server, {"Media/Talk.mp4": data})
        e = self.entry(session, "Media/Talk.mp4")
        got = download(session, e.parts, tmp_path / "Talk.part", size=len(data), etag=e.etag, modified=e.modified)
        assert (tmp_path / "Talk.part").read_bytes() == data
        assert (got.size, got.resumed_from, got.network_bytes) == (len(data), 0, len(data))

    def test_an_interrupted_download_resumes_where_it_stopped(self, server: DavServer, session: DavSession,
                                                              tmp_path: Path) -> None:
        data = os.urandom(4 * MiB)
        self.lay_out(server, {"Media/Talk.mp4": data})
        e = self.entry(session, "Media/Talk.mp4")
        part = tmp_path / "Talk.part"
        stop = threading.Event()
        with pytest.raises(Cancelled):
            download(session, e.parts, part, size=len(data), etag=e.etag, modified=e.modified,
                     on_bytes=lambda n: stop.set(), cancel=stop)
        kept = part.stat().st_size
        assert 0 < kept < len(data)
        got = download(session, e.parts, part, size=len(data), etag=e.etag, modified=e.modified)
        assert part.read_bytes() == data
        if server.get_etags:
            assert (got.resumed_from, got.network_bytes) == (kept, len(data) - kept)
        else:  # lighttpd: If-Range has nothing to compare with, so the whole file comes again
            assert (got.resumed_from, got.network_bytes) == (0, len(data))

    def test_a_download_never_splices_two_versions(self, server: DavServer, session: DavSession,
                                                   tmp_path: Path) -> None:
        old, new = os.urandom(4 * MiB), os.urandom(4 * MiB)
        self.lay_out(server, {"Media/Talk.mp4": old})
        e = self.entry(session, "Media/Talk.mp4")
        part = tmp_path / "Talk.part"
        stop = threading.Event()
        with pytest.raises(Cancelled):
            download(session, e.parts, part, size=len(old), etag=e.etag, modified=e.modified,
                     on_bytes=lambda n: stop.set(), cancel=stop)
        # The coordinator replaces the file (same size, a minute later) before the next sync.
        make_tree(server.root / FOLDER, {"Media/Talk.mp4": new}, mtime=AN_HOUR_AGO + 60)
        e2 = self.entry(session, "Media/Talk.mp4")
        got = download(session, e2.parts, part, size=len(new), etag=e2.etag, modified=e2.modified)
        assert part.read_bytes() == new
        assert got.resumed_from == 0

    # --- writes: conditional PUT, MOVE, DELETE -----------------------------------------------------

    def test_a_put_with_the_current_etag_is_written(self, server: DavServer, session: DavSession) -> None:
        self.lay_out(server, {"forcedPrefs.json": b"{}"})
        etag = self.version_tag(server, session, "forcedPrefs.json")
        resp = session.request("PUT", ("forcedPrefs.json",), headers={"If-Match": etag}, content=b'{"a": 1}')
        assert resp.status_code in (200, 201, 204)
        assert self.on_server(server, "forcedPrefs.json").read_bytes() == b'{"a": 1}'

    def test_a_put_with_a_stale_etag_is_refused_where_the_server_honours_if_match(
        self, server: DavServer, session: DavSession
    ) -> None:
        self.lay_out(server, {"forcedPrefs.json": b"{}"})
        stale = self.version_tag(server, session, "forcedPrefs.json")
        # Another coordinator wrote in between (a different size, so every ETag scheme changes).
        make_tree(server.root / FOLDER, {"forcedPrefs.json": b'{"other": true}'}, mtime=AN_HOUR_AGO + 60)
        resp = session.request("PUT", ("forcedPrefs.json",), headers={"If-Match": stale}, content=b'{"a": 1}',
                               ok=(200, 201, 204, 412))
        if server.honours_if_match:
            assert resp.status_code == 412
            assert self.on_server(server, "forcedPrefs.json").read_bytes() == b'{"other": true}'
        else:  # documented: nginx and rclone write anyway (tests/servers.py)
            assert resp.status_code in (200, 201, 204)
            assert self.on_server(server, "forcedPrefs.json").read_bytes() == b'{"a": 1}'

    def test_a_move_puts_a_file_under_its_real_name_replacing_the_old_one(
        self, server: DavServer, session: DavSession
    ) -> None:
        self.lay_out(server, {"Media/.Talk.mp4.upload": b"new", "Media/Talk.mp4": b"old"})
        resp = session.request("MOVE", ("Media", ".Talk.mp4.upload"),
                               headers={"Destination": session.url(("Media", "Talk.mp4")), "Overwrite": "T"})
        assert resp.status_code in (200, 201, 204)
        assert self.on_server(server, "Media/Talk.mp4").read_bytes() == b"new"
        assert not self.on_server(server, "Media/.Talk.mp4.upload").exists()
        assert [e.name for e in list_children(session, ("Media",))] == ["Talk.mp4"]

    def test_a_delete_removes_the_file_and_a_second_one_finds_it_gone(
        self, server: DavServer, session: DavSession
    ) -> None:
        self.lay_out(server, {"Media/2026-12-01/Talk.mp4": b"x", "Media/2026-12-01/Song.mp3": b"y"})
        resp = session.request("DELETE", ("Media", "2026-12-01", "Talk.mp4"))
        assert resp.status_code in (200, 204)
        assert not self.on_server(server, "Media/2026-12-01/Talk.mp4").exists()
        assert self.on_server(server, "Media/2026-12-01/Song.mp3").exists()
        with pytest.raises(FolderNotFoundError):
            session.request("DELETE", ("Media", "2026-12-01", "Talk.mp4"))


class TestWsgiDAV(RemoteContract):
    kind = "wsgidav"


class TestApache(RemoteContract):
    kind = "apache"


class TestNginx(RemoteContract):
    kind = "nginx"


class TestRclone(RemoteContract):
    kind = "rclone"


class TestLighttpd(RemoteContract):
    kind = "lighttpd"
