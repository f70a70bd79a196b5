"""The coordinator's tools, end to end on every server kind: a coordinator command changes the
congregation folder, a member runs `update`, and the member's media folder is checked exactly.

Coordinator commands run as the real CLI: in-process through ``m3daemon.cli.main.main`` (fast), and
as a subprocess where the process boundary matters (stdin that is not a terminal).
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pytest
from member import Member, day, iso, run_cli
from servers import DavServer, make_tree

from m3daemon.coordinator.context import Coordinator
from m3daemon.coordinator.forced import edit_forced, forcing
from m3daemon.core.dates import format_folder_date
from m3daemon.core.prefs import parse_forced_prefs
from m3daemon.remote.http import RetryPolicy

FOLDER = "/dav/Cong"
QUICK = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


def cong(server: DavServer) -> Path:
    return server.root / "Cong"


run = run_cli  # the CLI in this process: (exit code, stdout, stderr)


def ok(m: Member, *args: str) -> str:
    rc, out, err = run(m, *args)
    assert rc == 0, f"{args}: exit {rc}\n{out}\n{err}"
    return out


def meeting_prefs() -> dict[str, int]:
    # Meeting dates in the 14-day window: days 2 and 9 (midweek), 5 and 12 (weekend).
    return {"meeting.mwDay": day(2).weekday(), "meeting.weDay": day(5).weekday()}


def server_files(server: DavServer) -> dict[str, bytes]:
    return {p.relative_to(cong(server)).as_posix(): p.read_bytes()
            for p in sorted(cong(server).rglob("*")) if p.is_file()}


def no_temporary_names(server: DavServer) -> bool:
    return not [p for p in cong(server).rglob(".m3daemon-*")]


@pytest.fixture
def local(tmp_path: Path) -> Path:
    """A folder of files on the coordinator's computer."""
    d = tmp_path / "to-upload"
    d.mkdir()
    return d


def file_in(folder: Path, name: str, data: bytes) -> str:
    p = folder / name
    p.write_bytes(data)
    return str(p)


@pytest.fixture
def member(dav_server: DavServer, isolated_env: Path) -> Member:
    cong(dav_server).mkdir(parents=True, exist_ok=True)
    return Member.create(isolated_env, dav_server.url, FOLDER, dav_server.username, dav_server.password,
                         dav_server.ca_file, prefs=meeting_prefs())


@pytest.fixture
def coordinator(dav_server: DavServer, isolated_env: Path) -> Member:
    cong(dav_server).mkdir(parents=True, exist_ok=True)
    return Member.create(isolated_env, dav_server.url, FOLDER, dav_server.username, dav_server.password,
                         dav_server.ca_file, name="coordinator", prefs={"app.congregationName": "North"})


# --- media -----------------------------------------------------------------------------------------


def test_a_dated_upload_with_a_prefix_and_a_section_reaches_the_member(
    dav_server: DavServer, coordinator: Member, member: Member, local: Path
) -> None:
    outline = file_in(local, "Talk outline.jpg", b"outline")
    talk = file_in(local, "Talk.jpg", b"talk-image")
    out = ok(coordinator, "media", "add", iso(2), outline, "--prefix", "01-05")
    assert f"Media/{iso(2)}/01-05 - Talk outline.jpg" in out
    ok(coordinator, "media", "add", iso(2), talk, "--section", "pt")
    report = member.update()
    assert report.ok and not report.warnings
    assert member.files() == {
        f"{iso(2)}/01-05 - Talk outline.jpg": b"outline",
        f"{iso(2)}/Section-pt - Talk.jpg": b"talk-image",
    }
    assert no_temporary_names(dav_server)
    # The same command again is safe: same names, same content.
    ok(coordinator, "media", "add", iso(2), outline, "--prefix", "01-05")
    member.update()
    assert len(member.files()) == 2
    assert server_files(dav_server)[f"Media/{iso(2)}/01-05 - Talk outline.jpg"] == b"outline"


def test_recurring_media_added_then_removed(coordinator: Member, member: Member, local: Path) -> None:
    yeartext = file_in(local, "Year text.mp4", b"yeartext-video")
    ok(coordinator, "recurring", "add", yeartext)
    assert "Year text.mp4" in ok(coordinator, "recurring", "ls")
    member.update()
    assert member.files() == {f"{iso(n)}/Year text.mp4": b"yeartext-video" for n in (2, 5, 9, 12)}
    ok(coordinator, "recurring", "rm", "Year text.mp4")
    # Every media file gone at once looks like a broken listing to the member's mass-deletion guard,
    # which holds the removals until a person confirms them.
    assert len(member.update().held_deletions) == 4
    member.update(allow_deletions=True)
    assert member.files() == {}
    assert "already gone" in ok(coordinator, "recurring", "rm", "Year text.mp4")


def test_hide_and_unhide_a_recurring_item_on_one_date(coordinator: Member, member: Member, local: Path) -> None:
    ok(coordinator, "recurring", "add", file_in(local, "Year text.mp4", b"yeartext-video"))
    ok(coordinator, "media", "hide", iso(5), "Year text.mp4")
    ok(coordinator, "media", "hide", iso(5), "Year text.mp4")  # a set, not a toggle
    report = member.update()
    assert report.hidden == 1
    assert sorted(member.files()) == [f"{iso(n)}/Year text.mp4" for n in (2, 9, 12)]
    ok(coordinator, "media", "unhide", iso(5), "Year text.mp4")
    assert "was not hidden" in ok(coordinator, "media", "unhide", iso(5), "Year text.mp4")
    member.update()
    assert sorted(member.files()) == [f"{iso(n)}/Year text.mp4" for n in (2, 5, 9, 12)]


def test_rm_removes_a_name_from_every_folder_of_that_date(dav_server: DavServer, coordinator: Member) -> None:
    d = day(3)
    make_tree(cong(dav_server), {
        f"Media/{d.isoformat()}/x.jpg": b"x",
        f"Media/{d.isoformat()}/y.jpg": b"y",
        f"Media/{format_folder_date(d, 'DD-MM-YYYY')}/x.jpg": b"x2",
    })
    ok(coordinator, "media", "rm", iso(3), "x.jpg")
    assert server_files(dav_server) == {f"Media/{d.isoformat()}/y.jpg": b"y"}
    assert "already gone" in ok(coordinator, "media", "rm", iso(3), "x.jpg")


def test_prune_removes_past_date_folders_and_nothing_else(
    dav_server: DavServer, coordinator: Member, member: Member
) -> None:
    past, yesterday = day(-3), day(-1)
    pruned = {
        f"Media/{past.isoformat()}/a.jpg": b"a",
        f"Media/{format_folder_date(yesterday, 'DD-MM-YYYY - dddd')}/b.jpg": b"b",
        f"Hidden/{format_folder_date(past, 'DD-MM-YYYY')}/x.jpg": b"",
    }
    make_tree(cong(dav_server), {
        **pruned,
        f"Media/{iso(0)}/today.jpg": b"today",
        f"Media/{iso(1)}/keep.jpg": b"keep",
        "Media/Recurring/r.jpg": b"r",
        "Media/notes/old.txt": b"not a date",
        f"Archive/{past.isoformat()}/mine.txt": b"outside Media and Hidden",
    })
    before = server_files(dav_server)
    out = ok(coordinator, "media", "prune", "--dry-run")
    assert out.count("\n  ") >= 2 and "3 folders" in out
    assert server_files(dav_server) == before
    proc = coordinator.cli("media", "prune")  # stdin is not a terminal: no question asked
    assert proc.returncode == 0, proc.stderr
    assert "3 done, 0 not done." in proc.stdout
    assert server_files(dav_server) == {k: v for k, v in before.items() if k not in pruned}
    assert sorted(p.name for p in (cong(dav_server) / "Media").iterdir()) == sorted(
        [iso(0), iso(1), "Recurring", "notes"])
    assert not (cong(dav_server) / "Hidden").exists() or not any((cong(dav_server) / "Hidden").iterdir())
    member.update()
    recurring = {f"{iso(n)}/r.jpg": b"r" for n in (0, 1, 2, 5, 9, 12)}
    assert member.files() == {f"{iso(0)}/today.jpg": b"today", f"{iso(1)}/keep.jpg": b"keep"} | recurring
    assert "No date folders" in ok(coordinator, "media", "prune", "--yes")


# --- settings --------------------------------------------------------------------------------------


def test_forced_settings_set_the_members_meeting_days_and_date_format(
    dav_server: DavServer, coordinator: Member, isolated_env: Path, local: Path
) -> None:
    fmt = "DD-MM-YYYY - dddd"
    ok(coordinator, "settings", "force", f"meeting.mwDay={day(3).weekday()}",
       f"meeting.weDay={day(6).weekday()}", f"app.outputFolderDateFormat={fmt}")
    ok(coordinator, "recurring", "add", file_in(local, "Year text.mp4", b"yeartext"))
    ok(coordinator, "media", "add", iso(1), file_in(local, "Talk.jpg", b"talk"))
    # The coordinator wrote the date folder in the congregation's (forced) format.
    assert (cong(dav_server) / "Media" / format_folder_date(day(1), fmt) / "Talk.jpg").read_bytes() == b"talk"
    assert not (cong(dav_server) / "Media" / iso(1)).exists()
    forced = json.loads((cong(dav_server) / "forcedPrefs.json").read_text())
    assert forced == {"app": {"outputFolderDateFormat": fmt},
                      "meeting": {"mwDay": day(3).weekday(), "weDay": day(6).weekday()}}
    # A member with no meeting days of its own, in M³ 22–24's classic layout.
    m = Member.create(isolated_env, dav_server.url, FOLDER, dav_server.username, dav_server.password,
                      dav_server.ca_file, layout="classic", name="classic")
    report = m.update()
    assert report.meeting_days_known and report.ok
    folder = {n: f"E/{format_folder_date(day(n), fmt)}" for n in (1, 3, 6, 10, 13)}
    assert m.files() == {f"{folder[1]}/Talk.jpg": b"talk"} | {
        f"{folder[n]}/Year text.mp4": b"yeartext" for n in (1, 3, 6, 10, 13)
    }
    out = ok(coordinator, "settings", "unforce", "app.outputFolderDateFormat")
    assert "no longer forced" in out
    ok(coordinator, "settings", "unforce", "--all")
    assert (cong(dav_server) / "forcedPrefs.json").read_text() == "{}\n"


def test_publish_forces_this_computers_own_values(dav_server: DavServer, isolated_env: Path) -> None:
    cong(dav_server).mkdir()
    c = Member.create(isolated_env, dav_server.url, FOLDER, dav_server.username, dav_server.password,
                      dav_server.ca_file, name="publisher",
                      prefs={"meeting.mwDay": 3, "meeting.mwStartTime": "19:30", "app.localAppLang": "fr"})
    # This computer's M³ speaks French, and so would m3daemon's messages: these checks read English.
    ok(c, "--lang", "en", "settings", "publish", "meeting.mwDay", "meeting.mwStartTime", "media.lang")
    assert json.loads((cong(dav_server) / "forcedPrefs.json").read_text()) == {
        "media": {"lang": "E"}, "meeting": {"mwDay": 3, "mwStartTime": "19:30"}}
    assert "nothing was written" in ok(c, "--lang", "en", "settings", "publish", "meeting.mwDay")
    rc, _out, err = run(c, "--lang", "en", "settings", "publish", "meeting.weDay")  # not set here
    assert rc == 2 and "not set on this computer" in err
    rc, _out, err = run(c, "--lang", "en", "settings", "publish", "app.localAppLang")  # never forcable
    assert rc == 2 and "may force" in err


def test_two_coordinators_forcing_different_keys(dav_server: DavServer, coordinator: Member) -> None:
    # An old file: Apache hands out weak ETags (useless for If-Match) for files younger than 1 s.
    make_tree(cong(dav_server), {"forcedPrefs.json": json.dumps({"media": {"lang": "E"}})},
              mtime=time.time() - 60)
    cfg = coordinator.config
    second: list[object] = []

    def other_coordinator_writes_now(attempt: int) -> None:
        """Runs between the first coordinator's read and its write."""
        if attempt == 1:
            with Coordinator.open(cfg, password=dav_server.password, retry=QUICK) as b:
                second.append(edit_forced(b.writer, forcing({"app.congregationName": "Springfield North"})))

    with Coordinator.open(cfg, password=dav_server.password, retry=QUICK) as a:
        first = edit_forced(a.writer, forcing({"meeting.mwDay": 2}), before_write=other_coordinator_writes_now)
    final = parse_forced_prefs((cong(dav_server) / "forcedPrefs.json").read_text()).values
    if dav_server.honours_if_match:  # nginx and rclone ignore the header
        # The first write was refused (412), re-read, re-applied: both changes survive.
        assert first.guarded and first.attempts == 2 and not first.warnings
        assert final == {"media.lang": "E", "meeting.mwDay": 2, "app.congregationName": "Springfield North"}
    else:
        # Documented behaviour: the server cannot tell, so the last writer wins, and says so.
        assert not first.guarded and first.attempts == 1
        assert any("last writer wins" in w for w in first.warnings)
        assert final == {"media.lang": "E", "meeting.mwDay": 2}
    assert no_temporary_names(dav_server)


# --- overview, background --------------------------------------------------------------------------


def test_media_ls_shows_origin_section_and_what_this_computer_has(
    dav_server: DavServer, member: Member, local: Path
) -> None:
    # The coordinator's own computer is a member too: `here` is about its media folder.
    ok(member, "media", "add", iso(2), file_in(local, "Outline.jpg", b"outline"), "--prefix", "01")
    ok(member, "media", "add", iso(2), file_in(local, "Talk.jpg", b"talk"), "--section", "pt")
    ok(member, "recurring", "add", file_in(local, "Year text.mp4", b"yeartext"))
    ok(member, "media", "hide", iso(5), "Year text.mp4", "JW item.mp4")
    ok(member, "media", "add", iso(20), file_in(local, "Later.jpg", b"later"))  # beyond the window
    member.update()
    ok(member, "media", "add", iso(9), file_in(local, "New.jpg", b"new"))  # not synced yet
    view = json.loads(ok(member, "media", "ls", "--json"))
    by_date = {d["date"]: {e["name"]: e for e in d["entries"]} for d in view["dates"]}
    # the window, extended to the last date with media of its own (meeting dates on the way included)
    assert sorted(by_date) == [iso(n) for n in (2, 5, 9, 12, 16, 19, 20)]
    d2 = by_date[iso(2)]
    assert d2["01 - Outline.jpg"] | {"remote": None} == {
        "name": "01 - Outline.jpg", "origin": "dated", "hidden": False, "section": None, "size": 7,
        "here": True, "remote": None, "m3": "shows"}
    assert d2["Section-pt - Talk.jpg"]["section"] == "pt"
    assert d2["Year text.mp4"]["origin"] == "recurring" and d2["Year text.mp4"]["here"] is True
    d5 = by_date[iso(5)]
    assert d5["Year text.mp4"]["hidden"] and d5["Year text.mp4"]["here"] is None
    assert d5["JW item.mp4"]["origin"] == "marker" and d5["JW item.mp4"]["hidden"]
    assert by_date[iso(9)]["New.jpg"]["here"] is False
    assert list(by_date[iso(20)]) == ["Later.jpg", "Year text.mp4"]  # a date with its own media
    one = json.loads(ok(member, "media", "ls", iso(5), "--json"))
    assert [d["date"] for d in one["dates"]] == [iso(5)]
    table = ok(member, "media", "ls", "--from", iso(2), "--to", iso(2))
    assert "Section-pt - Talk.jpg" in table and "dated" in table and "pt" in table


def test_background_set_replaces_another_extension_and_rm(
    dav_server: DavServer, coordinator: Member, local: Path
) -> None:
    make_tree(cong(dav_server), {
        "custom-background-image-North.png": b"old",
        "custom-background-image-North Hill.png": b"another congregation",
    })
    ok(coordinator, "background", "set", file_in(local, "hall.jpg", b"new background"))
    assert server_files(dav_server) == {
        "custom-background-image-North.jpg": b"new background",
        "custom-background-image-North Hill.png": b"another congregation",
    }
    ok(coordinator, "background", "rm")
    assert server_files(dav_server) == {"custom-background-image-North Hill.png": b"another congregation"}
    rc, _out, err = run(coordinator, "background", "rm")
    assert rc == 0 and "no background image" in err


def test_today_is_a_date_not_a_day_in_the_past(coordinator: Member, local: Path, dav_server: DavServer) -> None:
    ok(coordinator, "media", "add", "today", file_in(local, "a.jpg", b"a"))
    assert (cong(dav_server) / "Media" / date.today().isoformat() / "a.jpg").exists()


def test_the_coordinator_is_warned_about_a_day_without_a_meeting_and_a_name_not_on_that_date(
    dav_server: DavServer, isolated_env: Path, local: Path
) -> None:
    cong(dav_server).mkdir(parents=True, exist_ok=True)
    coord = Member.create(isolated_env, dav_server.url, FOLDER, dav_server.username, dav_server.password,
                          dav_server.ca_file, name="coordinator", prefs=meeting_prefs())
    talk = file_in(local, "Talk.jpg", b"talk")
    rc, _out, err = run(coord, "media", "add", iso(3), talk)  # day 3: neither midweek (2) nor weekend (5)
    assert rc == 0 and "is not a meeting day of the congregation" in err
    rc, _out, err = run(coord, "media", "add", iso(2), talk)
    assert rc == 0 and "meeting day" not in err
    rc, _out, err = run(coord, "media", "hide", iso(2), "Tlak.jpg")  # a typo
    assert rc == 0 and "Tlak.jpg is not among the media of" in err
    rc, _out, err = run(coord, "media", "hide", iso(2), "Talk.jpg")
    assert rc == 0 and "not among" not in err
