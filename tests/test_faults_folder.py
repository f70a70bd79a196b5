"""The member's own computer under faults (issue 11): a person editing a file while it downloads,
a disk too small for everything, links planted in the media folder, a damaged record, files held
open by M³, a folder that is deleted and restored under the daemon, and private state folders.

Each test runs the real sync (in-process or the real CLI) against a real server, with the fault
proxy where the server must misbehave.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from faulthelpers import (
    SharingViolation,
    cong,
    member_for,
    proxied_member,
    proxy_for,
    quick_retries,  # noqa: F401 - a fixture, used by name
    set_local,
    trash_files,
)
from faultproxy import Rule
from fsmounts import Volume
from member import day, iso, run_cli
from servers import DavServer, make_tree, skip_or_fail

PREFS = {"meeting": {"mwDay": day(2).weekday(), "weDay": day(5).weekday()}}


# --- 1. a person's edit made while the new version downloads ------------------------------------


def test_a_persons_edit_made_during_the_download_goes_to_the_trash_not_overwritten(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    rel = f"Media/{iso(1)}/a.jpg"
    make_tree(cong(wsgidav_server), {rel: b"version 1"})
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        assert m.update().ok
        target = m.media / iso(1) / "a.jpg"
        (cong(wsgidav_server) / rel).write_bytes(b"version 2 from the coordinator")

        def person_edits_meanwhile(body: bytes) -> bytes:
            target.write_bytes(b"the person's own edit")  # after planning, before the rename
            return body

        proxy.add(Rule("GET", lambda p: p.endswith("/a.jpg"), rewrite=person_edits_meanwhile, times=1))
        report = m.update()
    assert report.ok and report.downloaded == 1
    assert target.read_bytes() == b"version 2 from the coordinator"
    assert report.conflicts == 1, "the edit counts as a conflict"
    assert [p.read_bytes() for p in trash_files(isolated_env)] == [b"the person's own edit"]


# --- 10. a whole-sync failure keeps the JSON schema; private state and log folders --------------


@pytest.mark.usefixtures("quick_retries")
def test_update_json_after_a_whole_sync_failure_keeps_every_field_with_the_error_in_errors(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        proxy.add(Rule("PROPFIND", lambda p: True, status=401))
        rc, out, err = run_cli(m, "update", "--json")
    assert rc == 3
    result = json.loads(out)
    for key in ("downloaded", "copied", "removed", "moved", "unchanged", "hidden", "failed", "conflicts", "bytes"):
        assert result[key] == 0, key
    assert [e["kind"] for e in result["errors"]] == ["CredentialsError"]
    assert "refused the user name or password" in result["errors"][0]["message"]
    assert result["errors"][0]["exit_code"] == 3
    assert "refused the user name or password" in err


def test_the_state_and_log_folders_are_private_under_umask_022(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    from m3daemon.daemon.logs import setup_daemon_logging
    from m3daemon.local import paths

    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/a.jpg": b"a"})
    m = member_for(wsgidav_server, isolated_env)
    old = os.umask(0o022)
    try:
        assert m.cli("update").returncode == 0
        import logging

        root = logging.getLogger()
        saved = root.handlers[:], root.level
        try:
            log_path = setup_daemon_logging()
        finally:
            for h in root.handlers:
                h.close()
            root.handlers[:], root.level = saved
    finally:
        os.umask(old)
    state = m.config.state_dir
    for folder in (state, state.parent, log_path.parent, paths.log_dir()):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert any(state.glob("*.sqlite*")) or any(state.iterdir())


# --- 8. a damaged record ----------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["not-a-database", "torn-page"])
def test_a_damaged_record_is_moved_aside_and_the_sync_goes_on(
    wsgidav_server: DavServer, isolated_env: Path, damage: str
) -> None:
    d = f"Media/{iso(1)}"
    make_tree(cong(wsgidav_server), {f"{d}/a.jpg": b"a" * 5000, f"{d}/b.jpg": b"b" * 5000})
    m = member_for(wsgidav_server, isolated_env)
    assert m.update().ok
    (m.media / iso(1) / "mine.jpg").write_bytes(b"a person's own file")
    record = m.config.state_dir / "record.sqlite"
    assert m.cli("update").returncode == 0  # folds the WAL into the file
    for side in record.parent.glob("record.sqlite-*"):
        side.unlink()
    if damage == "not-a-database":
        record.write_bytes(b"this is not a database" * 200)
    else:
        data = bytearray(record.read_bytes())
        data[4096:8192] = b"\xff" * 4096  # the second page
        record.write_bytes(bytes(data))
    before = m.files()
    proc = m.cli("update")
    assert proc.returncode == 0, proc.stderr
    assert "was damaged" in proc.stderr and "new record started" in proc.stderr
    assert m.files() == before and trash_files(isolated_env) == []
    assert [p.name.split("-")[0] for p in record.parent.glob("record.sqlite.damaged-*")] == ["record.sqlite.damaged"]
    code, again = m.update_json()
    assert code == 0 and again["downloaded"] == 0 and again["unchanged"] == 2


# --- 6. links in the media folder are never followed -------------------------------------------


def test_a_date_folder_replaced_by_a_link_is_refused_and_nothing_is_written_through_it(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/a.jpg": b"a", f"Media/{iso(2)}/b.jpg": b"b",
                                     "Hidden/" + iso(1) + "/notes.txt": b""})
    m = member_for(wsgidav_server, isolated_env)
    elsewhere = isolated_env / "Documents"
    elsewhere.mkdir()
    (elsewhere / "a.jpg").write_bytes(b"a person's photo, not the congregation's")
    (elsewhere / "notes.txt").write_bytes(b"a person's notes")
    m.media.mkdir(parents=True)
    (m.media / iso(1)).symlink_to(elsewhere, target_is_directory=True)
    rc, out, err = run_cli(m, "update")
    assert rc == 1, out + err
    assert f"{m.media / iso(1)} is a link to {elsewhere}" in err and "writes nothing through links" in err
    assert sorted(p.name for p in elsewhere.iterdir()) == ["a.jpg", "notes.txt"]
    assert (elsewhere / "a.jpg").read_bytes() == b"a person's photo, not the congregation's"
    assert trash_files(isolated_env) == []
    assert (m.media / iso(2) / "b.jpg").read_bytes() == b"b", "the other dates sync"


def test_links_planted_in_the_staging_folder_are_never_written_through(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    from m3daemon.engine.staging import staging_name as _staging_name

    prefs = {"meeting": {"mwDay": day(2).weekday(), "weDay": day(5).weekday()}}
    make_tree(cong(wsgidav_server), {"forcedPrefs.json": json.dumps(prefs), "Media/Recurring/year.jpg": b"y" * 100,
                                     f"Media/{iso(1)}/a.jpg": b"a" * 100})
    m = member_for(wsgidav_server, isolated_env, days_ahead=6)
    staging = m.media / ".m3daemon" / "staging"
    staging.mkdir(parents=True)
    victims = []
    names = [_staging_name(("Media", iso(1), "a.jpg")) + ".json", _staging_name(("Media", "Recurring", "year.jpg")) + ".part"]
    names += [_staging_name((f"{iso(d)}/year.jpg",)) + ".copy" for d in (2, 5)]
    for i, name in enumerate(names):
        victim = isolated_env / f"precious-{i}.txt"
        victim.write_bytes(b"precious")
        (staging / name).symlink_to(victim)
        victims.append(victim)
    report = m.update()
    assert report.ok, report.errors
    assert [v.read_bytes() for v in victims] == [b"precious"] * len(victims)
    assert m.files() == {f"{iso(1)}/a.jpg": b"a" * 100} | {f"{iso(d)}/year.jpg": b"y" * 100 for d in (1, 2, 5)}


def test_a_staging_folder_that_is_a_link_stops_the_sync_with_a_clear_error(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/a.jpg": b"a"})
    m = member_for(wsgidav_server, isolated_env)
    (m.media / ".m3daemon").mkdir(parents=True)
    elsewhere = isolated_env / "Downloads"
    elsewhere.mkdir()
    (m.media / ".m3daemon" / "staging").symlink_to(elsewhere, target_is_directory=True)
    rc, _out, err = run_cli(m, "update")
    assert rc == 1 and "is a link to" in err and "writes nothing through links" in err
    assert list(elsewhere.iterdir()) == [] and m.files() == {}


# --- 2. a disk too small for everything: what fits, nearest meeting first -----------------------


@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A real file system of ``size`` (tmpfs; mounting needs root, as in CI)."""
    if os.geteuid() != 0:
        skip_or_fail("mounting a small tmpfs needs root (CI runs as root)")
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_disk_too_small_for_everything_gets_the_nearest_meetings_files_first(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    MB = 1_000_000
    files = {
        f"Media/{iso(1)}/a.jpg": os.urandom(300_000),
        f"Media/{iso(1)}/talk.mp4": os.urandom(5 * MB),
        f"Media/{iso(3)}/video.mp4": os.urandom(5 * MB),  # a later date: does not fit any more
        f"Media/{iso(5)}/c.jpg": os.urandom(300_000),  # small: still fits after it
    }
    make_tree(cong(wsgidav_server), files)
    with small_disk(isolated_env / "card", "8m") as card:
        m = member_for(wsgidav_server, isolated_env)
        set_local(m, media_dir=str(card / "media"))
        rc, out, err = run_cli(m, "update", "--json")
        assert rc == 1, err
        result = json.loads(out)
        assert m.files() == {k.removeprefix("Media/"): v for k, v in files.items() if "video" not in k}
        [problem] = result["errors"]
        assert problem["path"] == f"{iso(3)}/video.mp4" and problem["kind"] == "NotEnoughSpace"
        assert re.fullmatch(
            rf"Not enough space on the disk for Media/{iso(3)}/video\.mp4 \(5\.0 MB\); free [0-9.]+ MB, "
            r"of which m3daemon keeps 419 kB for the rest of the computer\.", problem["message"]), problem
        assert m.staged() == []
        # A person deletes the near meeting's video: the next run restores it before anything later.
        (card / "media" / iso(1) / "talk.mp4").unlink()
        code, again = m.update_json()
    assert code == 1 and (again["downloaded"], again["failed"]) == (1, 1)
    assert [e["path"] for e in again["errors"]] == [f"{iso(3)}/video.mp4"]


def test_a_new_layout_on_a_nearly_full_disk_keeps_each_file_it_cannot_copy_where_it_was(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    """The files move to the layout's new folders by a copy; one that does not fit stays under
    its old name (M³ 24 still shows it there) instead of being deleted with nothing in its place."""
    MB = 1_000_000
    files = {f"Media/{iso(1)}/talk.mp4": os.urandom(3 * MB), f"Media/{iso(3)}/video.mp4": os.urandom(3 * MB)}
    make_tree(cong(wsgidav_server), files)
    with small_disk(isolated_env / "card", "8m") as card:
        m = member_for(wsgidav_server, isolated_env)
        set_local(m, media_dir=str(card / "media"), layout="classic")
        rc, _out, err = run_cli(m, "update")
        assert rc == 0, err
        before = m.files()
        assert len(before) == 2
        set_local(m, layout="watch")
        code, result = m.update_json()
        assert code == 1 and (result["copied"], result["downloaded"], result["failed"]) == (0, 0, 2)
        assert {e["kind"] for e in result["errors"]} == {"NotEnoughSpace"}
        assert result["removed"] == 0 and m.files() == before


# --- 9. files in use (a Windows sharing violation, injected at the OS boundary) ----------------



def test_a_file_in_use_waits_downloaded_and_is_replaced_at_the_next_sync(
    wsgidav_server: DavServer, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = f"Media/{iso(1)}"
    make_tree(cong(wsgidav_server), {f"{d}/talk.jpg": b"version 1", f"{d}/old.jpg": b"old", f"{d}/x.jpg": b"x"})
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        assert m.update().ok
        talk, old = m.media / iso(1) / "talk.jpg", m.media / iso(1) / "old.jpg"
        (cong(wsgidav_server) / d / "talk.jpg").write_bytes(b"version 2, for the meeting")
        (cong(wsgidav_server) / d / "old.jpg").unlink()
        in_use = SharingViolation(monkeypatch, talk, old)
        report = m.update()
        assert not report.ok and report.failed == 0
        assert sorted((w["path"], w["message"]) for w in report.waiting) == [
            (f"{iso(1)}/old.jpg", f"{iso(1)}/old.jpg is in use by another program; it will be removed after the meeting."),
            (f"{iso(1)}/talk.jpg",
             f"{iso(1)}/talk.jpg is in use by another program; it will be replaced after the meeting."),
        ]
        assert talk.read_bytes() == b"version 1" and old.exists()
        from m3daemon.engine.staging import waiting_targets

        assert waiting_targets(m.media / ".m3daemon" / "staging") == [f"{iso(1)}/talk.jpg"]
        gets = lambda: sum(1 for meth, p, _s in proxy.log if meth == "GET" and p.endswith("/talk.jpg"))
        before = gets()
        in_use.release()  # the meeting is over
        report = m.update()
    assert report.ok, (report.errors, report.waiting)
    assert gets() == before, "placed from the waiting download, not downloaded again"
    assert talk.read_bytes() == b"version 2, for the meeting" and not old.exists()
    assert report.conflicts == 0 and trash_files(isolated_env) == []
    assert m.staged() == []


# --- 7. the watcher after the media folder was deleted and restored ---------------------------


def test_the_watcher_watches_a_media_folder_again_after_it_was_deleted_and_restored(tmp_path: Path) -> None:
    import shutil
    import threading

    from conftest import wait_until

    from m3daemon.daemon.watcher import MediaWatcher

    media = tmp_path / "media"
    (media / iso(1)).mkdir(parents=True)
    (media / iso(1) / "a.jpg").write_bytes(b"a")
    changes: list[Path] = []
    changed = threading.Event()

    def on_change(root: Path) -> None:
        changes.append(root)
        changed.set()

    watcher = MediaWatcher(on_change, debounce=0.05)
    watcher.start([media])
    try:
        assert watcher.mode == "events"
        shutil.rmtree(media)  # a person deletes the whole media folder
        wait_until("the repair request for the deleted folder", changed.is_set)
        wait_until("the quiet period", lambda: not watcher.pending)
        changed.clear()
        (media / iso(1)).mkdir(parents=True)  # the repair (or a person) brings it back
        (media / iso(1) / "a.jpg").write_bytes(b"a")
        wait_until("the folder to be watched again (it asks for a repair)", changed.is_set, timeout=5)
        wait_until("the quiet period after the restore", lambda: not watcher.pending)
        changed.clear()
        (media / iso(1) / "a.jpg").unlink()  # later, a person deletes one synced file
        wait_until("the repair request for the later deletion", changed.is_set)
    finally:
        watcher.stop()
    assert set(changes) == {media}


# --- 3. names that collide on Windows and macOS, on a real case-insensitive file system ------------


@pytest.mark.parametrize("windows_volume", ["exfat"], indirect=True)
def test_names_that_differ_only_in_case_or_unicode_form_sync_one_file_and_stay_put(
    wsgidav_server: DavServer, isolated_env: Path, windows_volume: Volume
) -> None:
    assert windows_volume.case_insensitive
    d = f"Media/{iso(1)}"
    nfc, nfd = "caf\u00e9.jpg", "cafe\u0301.jpg"
    make_tree(cong(wsgidav_server), {
        f"{d}/Talk.jpg": b"T", f"{d}/talk.jpg": b"t", f"{d}/{nfc}": b"nfc", f"{d}/{nfd}": b"nfd",
        "Media/Recurring/TALK.jpg": b"recurring",  # a dated file of the same name wins, in any case
    })
    m = member_for(wsgidav_server, isolated_env)
    set_local(m, media_dir=str(windows_volume.folder("collide") / "media"))
    first = m.update()
    assert first.ok and first.downloaded == 2, first.errors
    why = "only in upper and lower case or in Unicode form, and Windows and macOS cannot hold both in one folder."
    assert sorted(w for w in first.warnings if w.startswith("Skipped")) == sorted([
        f"Skipped '{d}/talk.jpg' on the server: its name differs from 'Talk.jpg' {why}",
        f"Skipped '{d}/{nfd}' on the server: its name differs from '{nfc}' {why}",
    ])
    expected = {f"{iso(1)}/Talk.jpg": b"T", f"{iso(1)}/{nfc}": b"nfc"}
    assert m.files() == expected
    for _ in range(2):  # no flip-flop: nothing to do, nothing trashed (so no watcher loop either)
        again = m.update()
        assert (again.downloaded, again.copied, again.removed, again.conflicts) == (0, 0, 0, 0), again
    assert m.files() == expected and trash_files(isolated_env) == []
