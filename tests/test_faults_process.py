"""Processes and servers that die: an m3daemon killed (SIGKILL) mid-download, mid-commit and
mid-upload, a server stopped mid-listing, and two updates at once. Each case checks that nothing
is lost, that no partial file carries a real name, and that the next run is correct."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until
from faulthelpers import (
    QUICK,
    cong,
    member_for,
    proxied_member,
    proxy_for,
    quick_retries,  # noqa: F401 - a fixture, used by name
    trash_files,
)
from faultproxy import Rule
from member import Member, iso, run_cli
from servers import DavServer, ServerPool, make_tree

from m3daemon.engine.context import record_path
from m3daemon.errors import AnotherSyncRunning
from m3daemon.local.locks import FileLock
from m3daemon.remote import listing
from m3daemon.remote.curl_listing import PollLister

MiB = 1024 * 1024


def popen_cli(m: Member, *args: str, limit_bps: int = 0) -> subprocess.Popen[str]:
    env = dict(os.environ, M3DAEMON_PASSWORD=m.password, M3DAEMON_CONFIG=str(m.config_path))
    if limit_bps:
        env["M3DAEMON_DOWNLOAD_LIMIT_BPS"] = str(limit_bps)
    return subprocess.Popen([sys.executable, "-m", "m3daemon", *args], env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def part_bytes(m: Member) -> int:
    """The bytes in the staging files now. The sync renames them while this looks: a file gone
    between the listing and its stat is placed, not partial, and counts for nothing."""
    staging = m.media / ".m3daemon" / "staging"
    total = 0
    try:
        with os.scandir(staging) as entries:
            for e in entries:
                if e.name.endswith(".part"):
                    try:
                        total += e.stat().st_size
                    except FileNotFoundError:
                        pass
    except FileNotFoundError:
        return 0
    return total


def record_rows(m: Member, table: str) -> set[str]:
    db = sqlite3.connect(record_path(m.config))
    try:
        return {row[0] for row in db.execute(f"SELECT path FROM {table}")}
    finally:
        db.close()


# --- the m3daemon process killed --------------------------------------------------------------


def test_killed_during_a_download_leaves_no_partial_file_and_the_next_run_resumes(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    payload = os.urandom(8 * MiB)
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/talk.mp4": payload, f"Media/{iso(1)}/a.jpg": b"a"})
    m = member_for(wsgidav_server, isolated_env)
    proc = popen_cli(m, "update", limit_bps=4 * MiB)  # about two seconds for the big file
    try:
        wait_until("a part of the download", lambda: part_bytes(m) >= MiB or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert f"{iso(1)}/talk.mp4" not in m.files(), "no partial file under the real name"
    assert all(data == {f"{iso(1)}/a.jpg": b"a"}[rel] for rel, data in m.files().items())
    kept = part_bytes(m)
    assert MiB <= kept < len(payload)

    # The kernel released the killed process's lock: the next run does not wait for it.
    wsgidav_server.clear_log()
    report = m.update(lock_wait=0)
    assert report.ok
    assert m.files() == {f"{iso(1)}/talk.mp4": payload, f"{iso(1)}/a.jpg": b"a"}
    assert report.bytes < len(payload) - kept + 100_000, "only the rest of the file was fetched (plus the listing)"
    assert ("GET", f"/dav/Cong/Media/{iso(1)}/talk.mp4", 206) in wsgidav_server.request_log()
    assert not list((m.media / ".m3daemon" / "staging").glob("*.part"))


# A driver that runs `m3daemon update` with SIGKILL wired to one point of the record's life.
KILL_DRIVER = r"""
import os, signal, sys
from m3daemon.local import record
from m3daemon.cli.main import main

point = sys.argv[1]
die = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
if point == "before-commit":
    # every file renamed into place (and deletions done), the record not yet committed
    record.Record.commit = lambda self, rows, meta=None: die()
elif point == "mid-commit":
    # inside the commit's transaction: old rows deleted, new rows inserted, not committed
    real_commit = record.Record.commit
    def commit(self, rows, meta=None):
        self._db.set_trace_callback(lambda sql: die() if sql.startswith("DELETE FROM pending") else None)
        return real_commit(self, rows, meta)
    record.Record.commit = commit
elif point == "after-pending":
    # the pending row is written, the rename has not happened yet
    real_note = record.Record.note_pending
    def note_pending(self, row):
        real_note(self, row)
        die()
    record.Record.note_pending = note_pending
sys.exit(main(["update"]))
"""


def run_killed_at(m: Member, point: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, M3DAEMON_PASSWORD=m.password, M3DAEMON_CONFIG=str(m.config_path))
    return subprocess.run([sys.executable, "-c", KILL_DRIVER, point], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)


@pytest.mark.parametrize("point", ["before-commit", "mid-commit"])
def test_killed_during_the_record_commit_the_next_run_knows_its_own_files(
    wsgidav_server: DavServer, isolated_env: Path, point: str
) -> None:
    d = f"Media/{iso(1)}"
    make_tree(cong(wsgidav_server), {f"{d}/a.jpg": b"a-v1", f"{d}/b.jpg": b"b"}, mtime=time.time() - 60)
    m = member_for(wsgidav_server, isolated_env)
    assert m.update().downloaded == 2
    # The coordinator changes a, adds c, removes b.
    make_tree(cong(wsgidav_server), {f"{d}/a.jpg": b"a-version-2", f"{d}/c.jpg": b"c"})
    (cong(wsgidav_server) / d / "b.jpg").unlink()

    proc = run_killed_at(m, point)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert m.files() == {f"{iso(1)}/a.jpg": b"a-version-2", f"{iso(1)}/c.jpg": b"c"}
    assert record_rows(m, "placed") == {f"{iso(1)}/a.jpg", f"{iso(1)}/b.jpg"}, "the old record is intact"
    assert record_rows(m, "pending") == {f"{iso(1)}/a.jpg", f"{iso(1)}/c.jpg"}

    report = m.update()
    assert (report.downloaded, report.removed, report.conflicts, report.failed) == (0, 0, 0, 0)
    assert report.ok and trash_files(isolated_env) == []
    assert record_rows(m, "pending") == set()
    # c is the sync's own file (not "a person's"): removing it on the server removes it here.
    (cong(wsgidav_server) / d / "c.jpg").unlink()
    report = m.update()
    assert report.removed == 1 and m.files() == {f"{iso(1)}/a.jpg": b"a-version-2"}


def test_killed_between_the_pending_row_and_the_rename_the_old_file_is_still_ours(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    target = cong(wsgidav_server) / "Media" / iso(1) / "a.jpg"
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/a.jpg": b"a-v1"}, mtime=time.time() - 60)
    m = member_for(wsgidav_server, isolated_env)
    assert m.update().downloaded == 1
    target.write_bytes(b"a-version-2")

    proc = run_killed_at(m, "after-pending")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert m.files() == {f"{iso(1)}/a.jpg": b"a-v1"}, "the old file stays whole until the rename"

    report = m.update()
    assert report.ok and report.downloaded == 1
    assert m.files() == {f"{iso(1)}/a.jpg": b"a-version-2"}
    # The file the sync itself placed is not mistaken for a person's edit (nothing to the trash).
    assert report.conflicts == 0 and trash_files(isolated_env) == []


def test_killed_during_an_upload_before_the_move_leaves_only_a_hidden_temporary_file(
    wsgidav_server: DavServer, isolated_env: Path, tmp_path: Path
) -> None:
    source = tmp_path / "Circuit overseer.mp4"
    source.write_bytes(os.urandom(3 * MiB))
    at_move, release = threading.Event(), threading.Event()

    def hold_move(path: str) -> bool:
        at_move.set()
        release.wait(30)
        return True

    with proxy_for(wsgidav_server) as proxy:
        coordinator = proxied_member(proxy, wsgidav_server, isolated_env, name="coordinator")
        proxy.add(Rule("MOVE", hold_move, status=502))  # never forwarded
        proc = popen_cli(coordinator, "media", "add", iso(1), str(source))
        try:
            wait_until("the MOVE", lambda: at_move.is_set() or proc.poll() is not None)
            assert proc.poll() is None, proc.communicate()
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        finally:
            if proc.poll() is None:
                proc.kill()
            release.set()
    folder = cong(wsgidav_server) / "Media" / iso(1)
    left = sorted(p.name for p in folder.iterdir())
    assert len(left) == 1 and left[0].startswith(".m3daemon-upload-"), left
    assert (folder / left[0]).stat().st_size == source.stat().st_size

    # A member never sees the hidden leftover; the same command again lands the file.
    member = member_for(wsgidav_server, isolated_env)
    assert member.update().ok and member.files() == {}
    direct = member_for(wsgidav_server, isolated_env, name="direct-coordinator")
    rc, out, err = run_cli(direct, "media", "add", iso(1), str(source))
    assert rc == 0, out + err
    assert (folder / source.name).read_bytes() == source.read_bytes()
    report = member.update()
    assert report.ok and member.files() == {f"{iso(1)}/{source.name}": source.read_bytes()}


# --- the server stopped -----------------------------------------------------------------------


@pytest.mark.usefixtures("quick_retries")
def test_the_server_stopped_mid_listing_changes_nothing_and_the_restarted_server_syncs(
    dav_server_pool: ServerPool, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = dav_server_pool.fresh("apache")  # Depth 1 walk: several requests to stop between
    make_tree(cong(server), {f"Media/{iso(n)}/{n}.jpg": str(n).encode() for n in (1, 2, 3)})
    m = member_for(server, isolated_env)
    assert m.update(retry=QUICK).downloaded == 3
    make_tree(cong(server), {f"Media/{iso(4)}/4.jpg": b"4"})
    (cong(server) / "Media" / iso(1) / "1.jpg").unlink()
    real, real_ask = listing._propfind, PollLister.ask
    stopped: list[tuple[str, ...]] = []

    def stop_at(folders: Sequence[tuple[str, ...]]) -> None:
        if ("Media", iso(2)) in folders and not stopped:
            stopped.append(("Media", iso(2)))
            server.stop()

    def stop_midway(session: object, parts: tuple[str, ...], depth: str, *memo: object) -> object:
        stop_at([parts])
        return real(session, parts, depth, *memo)  # type: ignore[arg-type]

    def stop_midway_on_libcurl(lister: PollLister, folders: Sequence[tuple[str, ...]], *a: Any, **k: Any) -> Any:
        stop_at(folders)  # the date folders' level: each meets a refused connection, then httpx does
        return real_ask(lister, folders, *a, **k)

    monkeypatch.setattr(listing, "_propfind", stop_midway)
    monkeypatch.setattr(PollLister, "ask", stop_midway_on_libcurl)
    rc, out, err = run_cli(m, "update")
    assert stopped and rc == 4, out + err
    # The last attempt meets a refused connection, or a pooled connection the stop reset.
    assert f"127.0.0.1:{server.port}" in err
    assert "refused the connection" in err or "Connection reset by peer" in err, err
    assert m.files() == {f"{iso(n)}/{n}.jpg": str(n).encode() for n in (1, 2, 3)}, "nothing removed"

    monkeypatch.setattr(listing, "_propfind", real)
    monkeypatch.setattr(PollLister, "ask", real_ask)
    server.start()
    report = m.update(retry=QUICK)
    assert report.ok and (report.downloaded, report.removed) == (1, 1)
    assert m.files() == {f"{iso(n)}/{n}.jpg": str(n).encode() for n in (2, 3, 4)}


# --- two updates at once ----------------------------------------------------------------------


def test_two_updates_at_once_the_second_waits_and_both_end_correct(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    payload = os.urandom(6 * MiB)
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/talk.mp4": payload, f"Media/{iso(2)}/b.jpg": b"b"})
    m = member_for(wsgidav_server, isolated_env)
    first = popen_cli(m, "update", "--json", limit_bps=3 * MiB)  # about two seconds
    second: subprocess.Popen[str] | None = None
    try:
        wait_until("the first download", lambda: part_bytes(m) > 0 or first.poll() is not None)
        assert first.poll() is None, first.communicate()
        second = popen_cli(m, "update", "--json")
        out1, err1 = first.communicate(timeout=60)
        out2, err2 = second.communicate(timeout=60)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    r1, r2 = json.loads(out1), json.loads(out2)
    assert (r1["downloaded"], r2["downloaded"]) == (2, 0), "the second ran after the first, as a no-op"
    assert r2["unchanged"] == 2
    assert "another update" in err2.lower() and "waiting" in err2.lower()
    assert m.files() == {f"{iso(1)}/talk.mp4": payload, f"{iso(2)}/b.jpg": b"b"}


def test_an_update_that_cannot_get_the_lock_in_time_says_who_holds_it(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/a.jpg": b"a"})
    m = member_for(wsgidav_server, isolated_env)
    with FileLock(m.config.state_dir / "sync.lock"), pytest.raises(AnotherSyncRunning) as caught:
        m.update(lock_wait=0.3)
    assert caught.value.exit_code == 1
    assert f"process {os.getpid()}" in caught.value.message
    assert "Wait for it to finish" in caught.value.remedy
    assert m.files() == {}
    assert m.update().ok and m.files() == {f"{iso(1)}/a.jpg": b"a"}
