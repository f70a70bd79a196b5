"""What M³ shows is what the coordinator meant: meeting parts, weekday names in folder names, and
the classic layout's Recurring folder, checked against a real WebDAV server (WsgiDAV: these rules
are about names, not about how a server speaks WebDAV).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from member import Member, day, iso, run_cli
from servers import DavServer, make_tree

from m3daemon.coordinator.media import SECTIONS, section_of
from m3daemon.core.dates import format_folder_date, infer_weekday_language, weekday_name_for
from m3daemon.settings.config import load_config

FOLDER = "/dav/Cong"
WEEKDAY_FORMATS = ("DD-MM-YYYY - dddd", "YYYY-MM-DD - dddd")


def cong(server: DavServer) -> Path:
    return server.root / "Cong"


def person(server: DavServer, home: Path, name: str, **kwargs: object) -> Member:
    cong(server).mkdir(parents=True, exist_ok=True)
    return Member.create(home, server.url, FOLDER, server.username, server.password, server.ca_file,
                         name=name, **kwargs)  # type: ignore[arg-type]


def upload(tmp: Path, name: str, data: bytes) -> str:
    p = tmp / "up" / name
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(data)
    return str(p)


# --- 1. meeting parts M³ can honour through a name ----------------------------------------------------


# M³ 25+'s own pattern (src/helpers/jw-media.ts, getLegacyWatchedSection)
M3_LEGACY_SECTION = re.compile(r"^Section-([^-]+) - ")


def test_every_part_offered_is_one_m3_reads_back_from_the_name() -> None:
    for section in SECTIONS:
        name = f"Section-{section} - Outline.jpg"
        found = M3_LEGACY_SECTION.match(name)
        assert found is not None and found.group(1) == section
        assert section_of(name) == section
    # what an older m3daemon wrote: M³ reads no part from it, and neither do we
    assert M3_LEGACY_SECTION.match("Section-circuit-overseer - Slides.jpg") is None
    assert section_of("Section-circuit-overseer - Slides.jpg") is None


def test_the_circuit_overseer_part_is_refused_with_the_reason_and_what_to_do(
    wsgidav_server: DavServer, isolated_env: Path, tmp_path: Path
) -> None:
    coordinator = person(wsgidav_server, isolated_env, "coordinator")
    rc, out, err = run_cli(coordinator, "media", "add", iso(2), upload(tmp_path, "Slides.jpg", b"s"),
                           "--section", "circuit-overseer")
    assert rc == 2, out + err
    assert "M³ cannot put a file in the part 'circuit-overseer' through its name" in err
    assert "in the circuit overseer's week M³ puts a midweek file in his part by itself" in err
    assert not (cong(wsgidav_server) / "Media").exists()


# --- 3. weekday names in folder names ------------------------------------------------------------------


@pytest.mark.parametrize("names, lang", [
    (["06-12-2026 - dimanche", "10-12-2026 - jeudi"], "fr"),
    (["2026-12-06 - Sonntag", "2026-12-10 - Donnerstag"], "de"),
    (["06-12-2026 - Sunday"], "en"),
    (["2026-12-05 - sábado", "2026-12-10 - jueves"], "es"),  # sábado is Portuguese too; jueves decides
    (["2026-12-06", "Recurring", "06-12-2026"], None),  # no weekday in any name
    (["06-12-2026 - Mittwoch"], None),  # the 6th is a Sunday: no language calls it Mittwoch
])
def test_the_weekday_language_is_read_from_folder_names(names: list[str], lang: str | None) -> None:
    assert infer_weekday_language(names) == lang


@pytest.mark.parametrize("fmt", WEEKDAY_FORMATS)
@pytest.mark.parametrize("lang", ["fr", "de"])
def test_a_coordinator_with_default_settings_writes_into_m3s_own_folder(
    wsgidav_server: DavServer, isolated_env: Path, tmp_path: Path, fmt: str, lang: str
) -> None:
    """Before: `Media/06-12-2026 - Sunday` next to M³'s `06-12-2026 - dimanche` (two folders for French
    M³ 24 members, and a hide that does not apply for them). After: one folder, M³'s."""
    existing = format_folder_date(day(3), fmt, weekday_name_for(day(3), lang))
    make_tree(cong(wsgidav_server), {
        f"Media/{existing}/Outline.jpg": b"outline",
        "forcedPrefs.json": json.dumps({"app": {"outputFolderDateFormat": fmt}}),
    })
    coordinator = person(wsgidav_server, isolated_env, "coordinator")
    assert "app.localAppLang" not in coordinator.config.prefs  # default settings: English
    for args in (("media", "add", iso(3), upload(tmp_path, "Talk.jpg", b"talk")),
                 ("media", "hide", iso(3), "Outline.jpg"),
                 ("media", "add", iso(4), upload(tmp_path, "Next.jpg", b"next"))):
        rc, out, err = run_cli(coordinator, *args)
        assert rc == 0, out + err
    new = format_folder_date(day(4), fmt, weekday_name_for(day(4), lang))
    assert sorted(p.name for p in (cong(wsgidav_server) / "Media").iterdir()) == sorted([existing, new])
    assert (cong(wsgidav_server) / "Media" / existing / "Talk.jpg").read_bytes() == b"talk"
    assert [p.name for p in (cong(wsgidav_server) / "Hidden").iterdir()] == [existing]
    assert (cong(wsgidav_server) / "Media" / new / "Next.jpg").read_bytes() == b"next"


@pytest.mark.parametrize("fmt, weekday, lang", [
    ("DD-MM-YYYY - dddd", "dimanche", "fr"),
    ("YYYY-MM-DD - dddd", "Sonntag", "de"),
    ("DD-MM-YYYY", None, None),
    ("YYYY-MM-DD", None, None),
])
def test_the_classic_layout_uses_the_servers_folder_name_as_it_is(
    wsgidav_server: DavServer, isolated_env: Path, fmt: str, weekday: str | None, lang: str | None
) -> None:
    """Before: an English member re-formatted `06-12-2026 - dimanche` as `06-12-2026 - Sunday`, so M³
    24's own media and the congregation's split into two folders. After: the server's name."""
    # today … today+6 holds each weekday once, whichever day the suite runs on
    sunday = next(day(n) for n in range(7) if day(n).weekday() == 6)
    name = format_folder_date(sunday, fmt, weekday_name_for(sunday, lang or "en"))
    if weekday:
        assert name.endswith(weekday)
    thursday = next(day(n) for n in range(7) if day(n).weekday() == 3)
    make_tree(cong(wsgidav_server), {
        f"Media/{name}/Outline.jpg": b"outline",
        "Media/Recurring/Year text.mp4": b"yeartext",
        "forcedPrefs.json": json.dumps({"app": {"outputFolderDateFormat": fmt},
                                        "meeting": {"mwDay": 3, "weDay": 6}}),
    })
    m = person(wsgidav_server, isolated_env, "classic", layout="classic", days_ahead=6)
    assert m.update().ok
    files = m.files()
    assert files[f"E/{name}/Outline.jpg"] == b"outline"
    # Thursday has no folder on the server: it is named in the language of the server's folders
    thursday_name = format_folder_date(thursday, fmt, weekday_name_for(thursday, lang or "en"))
    assert files[f"E/{thursday_name}/Year text.mp4"] == b"yeartext"
    assert sorted({p.split("/")[1] for p in files}) == sorted({name, thursday_name})


def test_setup_reads_the_weekday_language_from_the_servers_folders(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    make_tree(cong(wsgidav_server), {
        f"Media/{format_folder_date(day(3), 'DD-MM-YYYY - dddd', weekday_name_for(day(3), 'de'))}/a.jpg": b"a",
    })
    config = isolated_env / "north.toml"
    proc = subprocess.run(
        [sys.executable, "-m", "m3daemon", "--config", str(config), "setup", "--url", wsgidav_server.url,
         "--username", wsgidav_server.username, "--folder", FOLDER, "--ca-file", str(wsgidav_server.ca_file),
         "--media-dir", str(isolated_env / "media"), "--password-stdin"],
        input=wsgidav_server.password + "\n", capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Weekday names in folder names: de (as in the server's date folders)." in proc.stdout
    assert load_config(config).prefs["app.localAppLang"] == "de"


# --- 4. the classic layout's Recurring folder ----------------------------------------------------------


def test_the_classic_recurring_folder_stays_empty_so_m3_24_copies_nothing_back(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    """Before: `E/Recurring/Year text.mp4`, which M³ 24 copies into every date of the week, bringing
    back the item hidden for one date. After: `E/Recurring/` holds nothing of the sync's."""
    # today … today+6 holds each weekday once, whichever day the suite runs on
    thursday = next(day(n) for n in range(7) if day(n).weekday() == 3)
    sunday = next(day(n) for n in range(7) if day(n).weekday() == 6)
    make_tree(cong(wsgidav_server), {
        "Media/Recurring/Year text.mp4": b"yeartext",
        f"Hidden/{sunday.isoformat()}/Year text.mp4": b"",
        "forcedPrefs.json": json.dumps({"meeting": {"mwDay": 3, "weDay": 6}}),
    })
    m = person(wsgidav_server, isolated_env, "classic", layout="classic", days_ahead=6)
    # a person's own file there stays (what an older m3daemon put there goes: tests/test_planner.py)
    (m.media / "E" / "Recurring").mkdir(parents=True)
    mine = m.media / "E" / "Recurring" / "my own.mp4"
    mine.write_bytes(b"a person's file")
    report = m.update()
    assert report.ok and report.hidden == 1
    assert m.files() == {f"E/{thursday.isoformat()}/Year text.mp4": b"yeartext",
                         "E/Recurring/my own.mp4": b"a person's file"}
