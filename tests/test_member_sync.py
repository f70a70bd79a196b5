"""What a member sees after `m3daemon update`, on every server kind (the contract suite).

The congregation folder is `/dav/Cong` on each server; files are laid out on the server's disk
the way M³ 22–24 wrote them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from member import Member, day, iso
from servers import DavServer, bump, make_tree

FOLDER = "/dav/Cong"


def cong(server: DavServer) -> Path:
    return server.root / "Cong"


def lay_out(server: DavServer, files: dict[str, bytes | str]) -> None:
    make_tree(cong(server), files)


@pytest.fixture
def member(dav_server: DavServer, isolated_env: Path) -> Member:
    (cong(dav_server)).mkdir(parents=True, exist_ok=True)
    return Member.create(
        isolated_env, dav_server.url, FOLDER, dav_server.username, dav_server.password, dav_server.ca_file,
        prefs={"meeting.mwDay": day(2).weekday(), "meeting.weDay": day(5).weekday()},
    )


def meetings_prefs() -> dict[str, int]:
    return {"mwDay": day(2).weekday(), "weDay": day(5).weekday()}


def test_first_sync_brings_exactly_the_congregation_media(dav_server: DavServer, member: Member) -> None:
    lay_out(dav_server, {
        f"Media/{iso(2)}/01 - Outline.jpg": b"outline",
        f"Media/{iso(2)}/02 - Map.png": b"map-map",
        f"Media/{iso(3)}/Section-pt - Talk.jpg": b"talk",
        "Media/Recurring/Year text.mp4": b"yeartext-video",
        f"Hidden/{iso(5)}/Year text.mp4": b"",
        "Media/not-a-date/ignored.jpg": b"x",
        f"Media/{iso(-3)}/past.jpg": b"old",
        "forcedPrefs.json": json.dumps({"meeting": meetings_prefs()}),
    })
    report = member.update()
    # Recurring media: every meeting date in the 14-day window (day 2, 5, 9, 12) but the one it is
    # hidden on (day 5), plus day 3, which has media of its own.
    recurring_days = [2, 3, 9, 12]
    assert member.files() == {
        f"{iso(2)}/01 - Outline.jpg": b"outline",
        f"{iso(2)}/02 - Map.png": b"map-map",
        f"{iso(3)}/Section-pt - Talk.jpg": b"talk",
    } | {f"{iso(n)}/Year text.mp4": b"yeartext-video" for n in recurring_days}
    assert (report.downloaded, report.copied, report.hidden, report.failed) == (4, 3, 1, 0)
    assert report.ok


def test_a_no_op_resync_downloads_nothing_and_lists_once_per_folder(dav_server: DavServer, member: Member) -> None:
    lay_out(dav_server, {
        f"Media/{iso(1)}/a.jpg": b"a" * 100,
        f"Media/{iso(2)}/b.jpg": b"b" * 100,
        "Media/Recurring/r.jpg": b"r" * 100,
        f"Hidden/{iso(2)}/x.jpg": b"",
    })
    member.update()
    dav_server.clear_log()
    report = member.update()
    assert (report.downloaded, report.copied, report.removed) == (0, 0, 0)
    if dav_server.supports_depth_infinity:
        assert report.requests == 1 and report.listing == "infinity"
    else:
        # root, Media, Hidden, and one per date or Recurring folder; the refused Depth: infinity
        # of the first sync is remembered and not asked again
        assert report.requests == 3 + 3 + 1 and report.listing == "walk"
    if dav_server.has_request_log:
        methods = [m for m, _p, _s in dav_server.request_log()]
        assert methods == ["PROPFIND"] * report.requests


def test_a_sync_through_the_command_lists_and_fetches_without_httpx(dav_server: DavServer, member: Member) -> None:
    """The listing goes over libcurl, which the downloads use anyway: httpx (about 70 ms of a
    command's start) is loaded only for an answer that needs its retries and plain words. With a
    CA file and no daemon running, Python's ``ssl``, ``email`` and the control client (with
    ``socket``) stay unloaded too (10 ms), and a no-op does not load the executor."""
    lay_out(dav_server, {f"Media/{iso(1)}/a.jpg": b"a" * 100, f"Media/{iso(2)}/b.jpg": b"b" * 100})
    unneeded = {"httpx", "httpcore", "h11", "ssl", "email.utils", "socket", "m3daemon.daemon.control"}
    for expected, executes in (({"downloaded": 2, "unchanged": 0}, True),  # first sync
                               ({"downloaded": 0, "unchanged": 2}, False)):  # no-op
        proc, loaded = member.cli_imports("update", "--json")
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert {k: report[k] for k in expected} == expected
        assert "pycurl" in loaded and not loaded & unneeded, sorted(loaded & unneeded)
        assert ("m3daemon.engine.executor" in loaded) is executes
    assert member.files() == {f"{iso(1)}/a.jpg": b"a" * 100, f"{iso(2)}/b.jpg": b"b" * 100}


def test_years_of_past_date_folders_cost_no_requests_on_a_server_that_walks(
    dav_server: DavServer, member: Member
) -> None:
    # A congregation folder kept for years: 40 past date folders (and one far beyond the window)
    # next to the coming dates. Only the window's folders are opened.
    lay_out(dav_server, {f"Media/{iso(-n)}/old{n}.jpg": b"o" for n in range(2, 42)} | {
        f"Media/{iso(1)}/a.jpg": b"a",
        f"Media/{iso(60)}/later.jpg": b"l",
        "Media/Recurring/r.jpg": b"r",
        f"Hidden/{iso(-30)}/x.jpg": b"",
    })
    member.update()
    report = member.update()
    assert report.ok and report.downloaded == 0
    assert set(member.files()) >= {f"{iso(1)}/a.jpg", f"{iso(1)}/r.jpg"}
    assert not any(p.startswith((iso(-2), iso(60))) for p in member.files())
    if dav_server.supports_depth_infinity:
        assert report.requests == 1
    else:
        # root, Media, Hidden, then the one date folder of the window and Recurring
        assert report.requests == 3 + 2 and report.listing == "walk"


def test_a_file_changed_on_the_server_with_the_same_size_is_fetched_again(
    dav_server: DavServer, member: Member
) -> None:
    lay_out(dav_server, {f"Media/{iso(1)}/a.jpg": b"AAAA"})
    member.update()
    bump(cong(dav_server) / "Media" / iso(1) / "a.jpg", b"BBBB")
    report = member.update()
    assert report.downloaded == 1
    assert member.files() == {f"{iso(1)}/a.jpg": b"BBBB"}


def test_a_file_deleted_on_the_server_is_removed_here(dav_server: DavServer, member: Member) -> None:
    lay_out(dav_server, {f"Media/{iso(1)}/{n}.jpg": n.encode() for n in "abcd"})
    member.update()
    (cong(dav_server) / "Media" / iso(1) / "d.jpg").unlink()
    report = member.update()
    assert report.removed == 1
    assert sorted(member.files()) == [f"{iso(1)}/{n}.jpg" for n in "abc"]


def test_a_hidden_marker_for_a_synced_file_removes_it(dav_server: DavServer, member: Member) -> None:
    lay_out(dav_server, {f"Media/{iso(1)}/a.jpg": b"a", f"Media/{iso(1)}/b.jpg": b"b"})
    member.update()
    lay_out(dav_server, {f"Hidden/{iso(1)}/a.jpg": b"hide"})  # 22.x markers said "hide"
    report = member.update()
    assert (report.removed, report.hidden) == (1, 1)
    assert member.files() == {f"{iso(1)}/b.jpg": b"b"}


def test_recurring_media_go_into_every_meeting_and_are_downloaded_once(
    dav_server: DavServer, member: Member
) -> None:
    lay_out(dav_server, {"Media/Recurring/yt.mp4": b"y" * 5000})
    report = member.update()
    meeting_dirs = sorted({p.split("/")[0] for p in member.files()})
    expected = sorted(d.isoformat() for d in (day(i) for i in range(15))
                      if d.weekday() in (day(2).weekday(), day(5).weekday()))
    assert meeting_dirs == expected
    assert report.downloaded == 1 and report.copied == len(expected) - 1
    if dav_server.has_request_log:
        assert [m for m, _p, _s in dav_server.request_log()].count("GET") == 1


def test_a_hand_placed_file_is_left_untouched(dav_server: DavServer, member: Member) -> None:
    lay_out(dav_server, {f"Media/{iso(1)}/a.jpg": b"a"})
    mine = member.media / iso(1) / "my notes.jpg"
    order = member.media / iso(1) / ".section-order.json"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"mine")
    order.write_text('{"a.jpg": {"order": 1, "section": "pt"}}')
    member.update()
    (cong(dav_server) / "Media" / iso(1) / "a.jpg").unlink()
    lay_out(dav_server, {f"Media/{iso(1)}/b.jpg": b"b"})
    member.update()
    assert mine.read_bytes() == b"mine"
    assert order.exists()
    assert set(member.files()) == {f"{iso(1)}/my notes.jpg", f"{iso(1)}/b.jpg", f"{iso(1)}/.section-order.json"}


@pytest.mark.parametrize("fmt, name", [
    ("YYYY-MM-DD", "{y}-{m}-{d}"),
    ("YYYY-MM-DD - dddd", "{y}-{m}-{d} - mercredi"),
    ("DD-MM-YYYY", "{d}-{m}-{y}"),
    ("DD-MM-YYYY - dddd", "{d}-{m}-{y} - Среда"),
])
@pytest.mark.parametrize("layout", ["watch", "classic"])
def test_every_date_format_and_layout(
    dav_server: DavServer, isolated_env: Path, fmt: str, name: str, layout: str
) -> None:
    d = day(3)
    folder = name.format(y=f"{d.year:04}", m=f"{d.month:02}", d=f"{d.day:02}")
    lay_out(dav_server, {
        f"Media/{folder}/a.jpg": b"a",
        "forcedPrefs.json": json.dumps({"app": {"outputFolderDateFormat": fmt}, "media": {"lang": "F"}}),
    })
    m = Member.create(isolated_env, dav_server.url, FOLDER, dav_server.username, dav_server.password,
                      dav_server.ca_file, layout=layout, name=f"m-{layout}")
    m.update()
    if layout == "watch":
        assert m.files() == {f"{d.isoformat()}/a.jpg": b"a"}
    else:
        # the server's folder name as it is, as M³ 22–24 used it (weekday language included)
        assert m.files() == {f"F/{folder}/a.jpg": b"a"}


def test_moving_from_the_classic_layout_to_watch_downloads_nothing_again(
    dav_server: DavServer, isolated_env: Path
) -> None:
    """A hall that moves from M³ 24 to M³ 25 switches the layout: every file of the window is
    already here under its old name, so it moves to its new place, and the old folders go."""
    lay_out(dav_server, {f"Media/{iso(1)}/talk.mp4": b"t" * 3000, f"Media/{iso(3)}/song.jpg": b"s" * 200,
                         "Media/Recurring/yeartext.mp4": b"y" * 500,
                         "forcedPrefs.json": json.dumps({"meeting": {"mwDay": day(1).weekday()}, "media": {"lang": "E"}})})
    m = Member.create(isolated_env, dav_server.url, FOLDER, dav_server.username, dav_server.password,
                      dav_server.ca_file, layout="classic", days_ahead=6)
    m.update()
    before = m.files()
    assert {f"E/{iso(1)}/talk.mp4", f"E/{iso(1)}/yeartext.mp4", f"E/{iso(3)}/song.jpg"} <= set(before)
    text = m.config_path.read_text("utf-8")
    m.config_path.write_text(text.replace('layout = "classic"', 'layout = "watch"'), "utf-8")
    if dav_server.has_request_log:
        dav_server.clear_log()
    proc = m.cli("update")
    assert proc.returncode == 0, proc.stderr
    # The year-text was in both meetings' folders: one moves, the other is copied from it (and the
    # old name of that one goes), so the person reads of moves, not of three files removed.
    assert proc.stdout.startswith("0 downloaded, 1 copied, 1 removed, 0 unchanged, 0 hidden, 0 failed")
    assert "3 files were moved to their new names on this computer; they were not downloaded again." in proc.stdout
    if dav_server.has_request_log:
        assert [meth for meth, _p, _s in dav_server.request_log()].count("GET") == 0
    assert m.files() == {path.removeprefix("E/"): data for path, data in before.items()}
    assert not (m.media / "E").exists()
    again = m.update()
    assert (again.moved, again.copied) == (0, 0)  # and the next sync has nothing to do


def test_forced_prefs_with_legacy_keys_and_a_disallowed_key(dav_server: DavServer, member: Member) -> None:
    # Old flat JWMMF keys, plus a key that may never be forced.
    lay_out(dav_server, {
        "forcedPrefs.json": json.dumps({"mwDay": day(1).weekday(), "weDay": day(4).weekday(),
                                        "app": {"localOutputPath": "/etc"}}),
        "Media/Recurring/r.jpg": b"r",
    })
    report = member.update()
    dirs = sorted({p.split("/")[0] for p in member.files()})
    expected = sorted(x.isoformat() for x in (day(i) for i in range(15))
                      if x.weekday() in (day(1).weekday(), day(4).weekday()))
    assert dirs == expected
    assert any("localOutputPath" in w for w in report.warnings)
    proc = member.cli("settings", "show", "--json")
    shown = json.loads(proc.stdout)
    assert shown["settings"]["meeting.mwDay"] == day(1).weekday()
    assert "meeting.mwDay" in shown["locked"]
    assert "app.localOutputPath" not in shown["settings"]
    refused = member.cli("settings", "set", "meeting.mwDay=3")
    assert refused.returncode == 2 and "coordinator" in refused.stderr


def test_a_wrong_password_exits_3_with_a_plain_message(dav_server: DavServer, member: Member) -> None:
    proc = member.cli("update", password="wrong")
    assert proc.returncode == 3, proc.stderr
    assert "user name or password" in proc.stderr
    assert "wrong" not in proc.stderr and "wrong" not in proc.stdout


def test_a_server_without_the_configured_ca_exits_4(dav_server: DavServer, isolated_env: Path) -> None:
    import trustme

    other = isolated_env / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    m = Member.create(isolated_env, dav_server.url, FOLDER, dav_server.username, dav_server.password, other)
    proc = m.cli("update")
    assert proc.returncode == 4, proc.stderr
    assert "certificate" in proc.stderr.lower()


def test_a_missing_folder_exits_2(dav_server: DavServer, isolated_env: Path) -> None:
    m = Member.create(isolated_env, dav_server.url, "/dav/NoSuchFolder", dav_server.username,
                      dav_server.password, dav_server.ca_file)
    proc = m.cli("update")
    assert proc.returncode == 2, proc.stderr
    assert "NoSuchFolder" in proc.stderr and "does not exist" in proc.stderr


def test_broken_congregation_settings_keep_the_last_good_ones(wsgidav_server: DavServer, isolated_env: Path) -> None:
    (cong(wsgidav_server)).mkdir()
    m = Member.create(isolated_env, wsgidav_server.url, FOLDER, wsgidav_server.username,
                      wsgidav_server.password, wsgidav_server.ca_file)
    lay_out(wsgidav_server, {"forcedPrefs.json": json.dumps({"meeting": meetings_prefs()}),
                             "Media/Recurring/r.jpg": b"r"})
    m.update()
    before = m.files()
    assert before
    bump(cong(wsgidav_server) / "forcedPrefs.json", b'{"meeting": {"mwDay": 2,')  # cut off mid-write
    report = m.update()
    assert m.files() == before, "meeting days stayed; no recurring media were removed"
    assert report.removed == 0
    assert any("forcedPrefs.json" in w for w in report.warnings)


def test_a_new_media_folder_starts_a_new_record_and_leaves_the_old_one_alone(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    lay_out(wsgidav_server, {f"Media/{iso(1)}/a.jpg": b"a"})
    m = Member.create(isolated_env, wsgidav_server.url, FOLDER, wsgidav_server.username,
                      wsgidav_server.password, wsgidav_server.ca_file)
    m.update()
    old = m.media
    new = isolated_env / "new-media"
    m.config_path.write_text(m.config_path.read_text().replace(str(old), str(new)))
    m.media = new
    report = m.update()
    assert report.downloaded == 1 and report.removed == 0
    assert (old / iso(1) / "a.jpg").read_bytes() == b"a"
    assert m.files() == {f"{iso(1)}/a.jpg": b"a"}
