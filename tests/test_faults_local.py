"""The member's own computer getting in the way: a read-only media folder, and a media folder
(and configuration) on a path with spaces and non-ASCII characters; plus a failed update of a
file the sync placed, which must stay the sync's own."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from faulthelpers import (
    cong,
    member_for,
    proxied_member,
    proxy_for,
    quick_retries,  # noqa: F401 - a fixture, used by name
    trash_files,
)
from faultproxy import Rule
from member import day, iso, run_cli
from servers import DavServer, make_tree

PREFS = {"meeting": {"mwDay": day(2).weekday(), "weDay": day(5).weekday()}}


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` read-only for real. Root ignores permission bits, so as root the folder is
    a tmpfs remounted read-only; otherwise its directories lose their write bits."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
        return
    dirs = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
    for d in dirs:
        d.chmod(0o555)
    try:
        yield
    finally:
        for d in dirs:
            d.chmod(0o755)


@contextmanager
def own_mount(folder: Path) -> Iterator[None]:
    """As root, ``folder`` becomes a small tmpfs of its own (so it can be remounted read-only)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", str(folder)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.usefixtures("quick_retries")
def test_a_read_only_media_folder_changes_nothing_and_says_why(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    d = f"Media/{iso(1)}"
    make_tree(cong(wsgidav_server), {f"{d}/a.jpg": b"a", f"{d}/b.jpg": b"b"})
    m = member_for(wsgidav_server, isolated_env)
    with own_mount(m.media):
        assert m.update().downloaded == 2
        synced = m.files()
        # The coordinator adds c and removes b; this computer's folder cannot be written.
        make_tree(cong(wsgidav_server), {f"{d}/c.jpg": b"c"})
        (cong(wsgidav_server) / d / "b.jpg").unlink()
        with read_only(m.media):
            rc, out, err = run_cli(m, "update")
            assert rc == 1, out + err
            assert "may not write in" in err and "read-only" in err
            assert m.files() == synced, "nothing removed, nothing half-written"
        # Writable again: the same run now completes, and b is still known as the sync's own.
        rc, out, err = run_cli(m, "update", "--json")
        assert rc == 0, out + err
        result = json.loads(out)
        assert (result["downloaded"], result["removed"], result["conflicts"]) == (1, 1, 0)
        assert m.files() == {f"{iso(1)}/a.jpg": b"a", f"{iso(1)}/c.jpg": b"c"}
    assert trash_files(isolated_env) == []


@pytest.mark.usefixtures("quick_retries")
def test_a_read_only_empty_media_folder_on_the_first_sync(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/a.jpg": b"a"})
    m = member_for(wsgidav_server, isolated_env)
    with own_mount(m.media), read_only(m.media):
        rc, out, err = run_cli(m, "update")
        assert rc == 1, out + err
        assert "may not write in" in err and "not read-only" in err
        assert m.files() == {}


@pytest.mark.parametrize("layout", ["watch", "classic"])
def test_a_media_folder_on_a_path_with_spaces_and_non_ascii_characters(
    wsgidav_server: DavServer, isolated_env: Path, layout: str
) -> None:
    make_tree(cong(wsgidav_server), {
        "forcedPrefs.json": json.dumps(PREFS | {"app": {"outputFolderDateFormat": "DD-MM-YYYY - dddd"}}),
        f"Media/{day(2).strftime('%d-%m-%Y')} - Mittwoch/01 - Ñandú café.jpg": b"n",
        "Media/Recurring/Jahrestext 2026 – «Ψ».mp4": b"y" * 100,
    })
    home = isolated_env / "Données de l'assemblée" / "Salle du Royaume 会衆 ★"
    home.mkdir(parents=True)
    m = member_for(wsgidav_server, home, layout=layout, days_ahead=6, name="A V Ñandú 1")
    assert " " in str(m.media) and not str(m.media).isascii()
    proc = m.cli("update")
    assert proc.returncode == 0, proc.stderr
    files = m.files()
    ours = [p for p in files if "Ñandú café" in p]
    assert len(ours) == 1 and files[ours[0]] == b"n"
    years = [p for p in files if p.endswith("Jahrestext 2026 – «Ψ».mp4")]
    # day 2 and day 5 (classic's Recurring folder stays empty)
    assert len(years) == 2 and all(files[p] == b"y" * 100 for p in years)
    if layout == "watch":
        assert ours[0] == f"{iso(2)}/01 - Ñandú café.jpg"
    code, result = m.update_json()
    assert code == 0 and (result["downloaded"], result["copied"]) == (0, 0)
    assert result["unchanged"] == len(files)
    assert (m.media / ".m3daemon").is_dir()
    assert [p.name for p in (m.media / ".m3daemon" / "staging").iterdir()] == []


@pytest.mark.parametrize("kind", ["dated", "recurring"])
def test_a_failed_update_of_a_synced_file_keeps_it_as_the_syncs_own(
    wsgidav_server: DavServer, isolated_env: Path, kind: str
) -> None:
    rel = f"Media/{iso(1)}/a.jpg" if kind == "dated" else "Media/Recurring/a.jpg"
    make_tree(cong(wsgidav_server), {rel: b"version 1", "forcedPrefs.json": json.dumps(PREFS)})
    with proxy_for(wsgidav_server) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env, days_ahead=6)
        assert m.update().ok
        before = m.files()
        assert len(before) == (1 if kind == "dated" else 2)  # recurring: day 2 and day 5
        (cong(wsgidav_server) / rel).write_bytes(b"version 2, longer")
        proxy.add(Rule("GET", lambda p: p.endswith("/a.jpg"), status=500, times=10))
        report = m.update()
        assert report.failed == 1 and m.files() == before
        proxy.rules.clear()
        report = m.update()
    assert report.ok and m.files() == {p: b"version 2, longer" for p in before}
    assert report.conflicts == 0 and trash_files(isolated_env) == [], "version 1 was ours: replaced, not trashed"
