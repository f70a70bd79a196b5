"""The member contract's core scenarios with the media folder on real exFAT and NTFS volumes.

Most Kingdom Hall computers run Windows, and the media often go to a USB stick: exFAT keeps
whole-second times, folds case and refuses ``: ? " < > | *``; NTFS (here ntfs-3g with
``windows_names``) refuses what Windows refuses. The volumes are real file systems through FUSE
(tests/fsmounts.py); the server is WsgiDAV on the Linux disk, which can hold any name.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fsmounts import Volume
from member import Member, day, iso
from servers import DavServer, make_tree

from m3daemon.core.names import name_problem

FOLDER = "/dav/Cong"


def cong(server: DavServer) -> Path:
    return server.root / "Cong"


@pytest.fixture
def member(wsgidav_server: DavServer, isolated_env: Path, windows_volume: Volume) -> Member:
    cong(wsgidav_server).mkdir(parents=True, exist_ok=True)
    return Member.create(
        isolated_env, wsgidav_server.url, FOLDER, wsgidav_server.username, wsgidav_server.password,
        wsgidav_server.ca_file, media=windows_volume.folder("media") / "Media",
        prefs={"meeting.mwDay": day(2).weekday(), "meeting.weDay": day(5).weekday()},
    )


def test_the_volumes_are_what_windows_computers_have(windows_volume: Volume) -> None:
    """What the scenarios rely on, measured on the mounted volume itself."""
    if windows_volume.kind == "exfat":
        assert windows_volume.case_insensitive
        assert windows_volume.mtime_resolution_ns == 1_000_000_000  # exfat-fuse: whole seconds
    else:
        assert not windows_volume.case_insensitive  # ntfs-3g's POSIX name space
        assert windows_volume.mtime_resolution_ns == 100  # NTFS: 100 ns
    folder = windows_volume.folder()
    with pytest.raises(OSError):
        (folder / "a:b.jpg").write_bytes(b"x")


def test_first_sync_then_a_second_one_after_a_remount_changes_nothing(
    wsgidav_server: DavServer, member: Member, windows_volume: Volume
) -> None:
    make_tree(cong(wsgidav_server), {
        f"Media/{iso(1)}/01 - Outline.jpg": b"outline",
        f"Media/{iso(2)}/Talk.mp4": os.urandom(200_000),
        "Media/Recurring/Year text.mp4": b"yeartext",
    })
    first = member.update()
    assert first.ok and first.downloaded == 3 and first.copied > 0
    synced = member.files()
    times = {rel: (member.media / rel).stat().st_mtime_ns for rel in synced}
    assert all(t % 2_000_000_000 == 0 for t in times.values()), "placed times are on FAT's 2 s grid"
    windows_volume.remount()  # the times now come from the disk, at its resolution
    second = member.update()
    assert (second.downloaded, second.copied, second.removed, second.failed, second.conflicts) == (0, 0, 0, 0, 0)
    assert second.unchanged == len(synced) and second.ok and second.warnings == []
    assert member.files() == synced
    assert {rel: (member.media / rel).stat().st_mtime_ns for rel in synced} == times


def test_a_file_changed_on_the_server_with_the_same_size_is_fetched_again(
    wsgidav_server: DavServer, member: Member
) -> None:
    target = cong(wsgidav_server) / "Media" / iso(1) / "a.jpg"
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/a.jpg": b"AAAA"})
    member.update()
    tmp = target.with_name("a.tmp")
    tmp.write_bytes(b"BBBB")
    later = time.time() + 5
    os.utime(tmp, (later, later))
    os.replace(tmp, target)
    report = member.update()
    assert report.downloaded == 1 and report.ok
    assert member.files() == {f"{iso(1)}/a.jpg": b"BBBB"}


def test_a_file_deleted_on_the_server_is_removed_here(wsgidav_server: DavServer, member: Member) -> None:
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/{n}.jpg": n.encode() for n in "abcd"})
    member.update()
    (cong(wsgidav_server) / "Media" / iso(1) / "d.jpg").unlink()
    report = member.update()
    assert report.removed == 1 and report.ok
    assert sorted(member.files()) == [f"{iso(1)}/{n}.jpg" for n in "abc"]


def test_a_hand_placed_file_is_left_untouched(
    wsgidav_server: DavServer, member: Member, windows_volume: Volume
) -> None:
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/a.jpg": b"a", f"Media/{iso(1)}/b.jpg": b"b"})
    mine = member.media / iso(1) / "my notes.jpg"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"mine")
    member.update()
    windows_volume.remount()
    (cong(wsgidav_server) / "Media" / iso(1) / "a.jpg").unlink()
    report = member.update()
    assert report.removed == 1 and report.ok, report.to_json()
    assert member.files() == {f"{iso(1)}/my notes.jpg": b"mine", f"{iso(1)}/b.jpg": b"b"}


FAT_CANNOT_HOLD = ["colon: here.jpg", "why?.jpg", 'say "hi".jpg', "a<b.jpg", "a>b.jpg", "pipe|.jpg", "star*.jpg",
                   "trailing dot.", "trailing space "]


def test_names_that_fat_cannot_hold_are_skipped_with_a_warning_and_the_rest_syncs(
    wsgidav_server: DavServer, member: Member
) -> None:
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/{n}": b"x" for n in [*FAT_CANNOT_HOLD, "good.jpg"]})
    report = member.update()
    assert report.ok
    assert member.files() == {f"{iso(1)}/good.jpg": b"x"}
    for name in FAT_CANNOT_HOLD:
        assert name_problem(name) is not None
        assert any(repr(name) in w or name in w for w in report.warnings), f"no warning names {name!r}"
    again = member.update()
    assert (again.downloaded, again.removed, again.failed) == (0, 0, 0)


def test_names_that_differ_only_in_case_sync_as_one_file_and_stay_put(
    wsgidav_server: DavServer, member: Member, windows_volume: Volume
) -> None:
    """Two server files "Talk.jpg" and "talk.jpg" in one folder: a Windows or macOS folder holds
    only one (issue 11.3's rule, the same on every volume so that the computers of one hall agree):
    "Talk.jpg" wins, "talk.jpg" is skipped with a warning, and later syncs change nothing."""
    make_tree(cong(wsgidav_server), {
        f"Media/{iso(1)}/Talk.jpg": b"upper", f"Media/{iso(1)}/talk.jpg": b"lower",
        f"Media/{iso(1)}/other.jpg": b"other",
    })
    first = member.update()
    assert first.ok
    assert any(w.startswith(f"Skipped 'Media/{iso(1)}/talk.jpg' on the server") for w in first.warnings), first.warnings
    files = member.files()
    assert files == {f"{iso(1)}/Talk.jpg": b"upper", f"{iso(1)}/other.jpg": b"other"}
    windows_volume.remount()
    for _ in range(2):
        again = member.update()
        assert (again.downloaded, again.removed, again.conflicts) == (0, 0, 0), "the case collision flips"
        assert member.files() == files


def test_a_small_stick_is_filled_without_a_hidden_64_mb_reserve(
    wsgidav_server: DavServer, member: Member, windows_volume: Volume
) -> None:
    """A 64 MB volume: the first update used to refuse 1 MB of media because 64 MiB were kept back."""
    if windows_volume.kind != "exfat":
        pytest.skip("the USB stick case is exFAT")
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/song.mp4": os.urandom(1_000_000)})
    report = member.update()
    assert report.ok and report.downloaded == 1, report.errors


def test_a_stick_too_small_for_the_media_says_what_is_kept_free(
    wsgidav_server: DavServer, member: Member, windows_volume: Volume
) -> None:
    if windows_volume.kind != "exfat":
        pytest.skip("the USB stick case is exFAT")
    big = windows_volume.free_bytes() - 1_000_000  # fits the disk, not the disk less its reserve
    path = cong(wsgidav_server) / "Media" / iso(1) / "big.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(big)
    try:
        proc = member.cli("update")
    finally:
        path.unlink()
    assert proc.returncode == 1, proc.stderr
    assert "for the rest of the computer" in proc.stderr and "Free some space" in proc.stderr
    assert "of which m3daemon keeps 3.4 MB" in proc.stderr, proc.stderr
    assert member.files() == {}


def test_the_reserve_scales_with_the_volume_and_times_sit_on_the_2_s_grid() -> None:
    from m3daemon.engine.staging import on_time_grid
    from m3daemon.local.space import RESERVE_MAX, reserve_for

    assert reserve_for(64 * 1024 * 1024) == 64 * 1024 * 1024 // 20  # a 64 MB stick keeps 3.4 MB
    assert reserve_for(500 * 10**9) == RESERVE_MAX  # a system disk keeps 64 MiB
    assert on_time_grid(1_764_600_001.999) == 1_764_600_000 * 10**9
    assert on_time_grid(1_764_600_002.0) == 1_764_600_002 * 10**9
