"""A member reads what the last syncs changed (`m3daemon history`), including why a file of theirs
went to the trash, and removes a congregation from the computer (`m3daemon forget`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from member import iso
from servers import DavServer, make_tree
from test_setup_cli import m3, setup_args

from m3daemon.local.paths import config_dir
from m3daemon.local.record import HISTORY_KEEP, Record


def test_history_says_what_each_sync_changed_and_why_a_persons_file_went_to_the_trash(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    day = iso(1)
    make_tree(wsgidav_server.root / "Cong", {f"Media/{day}/talk.jpg": b"talk", f"Media/{day}/song.jpg": b"song"})
    assert m3(*setup_args(wsgidav_server, isolated_env), stdin=wsgidav_server.password + "\n").returncode == 0
    mine = isolated_env / "media" / day / "talk.jpg"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own talk")  # a person's file with the congregation's name
    assert m3("update").returncode == 0
    (wsgidav_server.root / "Cong" / "Media" / day / "song.jpg").unlink()
    assert m3("update").returncode == 0
    assert m3("update").returncode == 0  # nothing changed: no entry

    shown = json.loads(m3("history", "--json").stdout)["history"]
    assert len(shown) == 2
    newest, first = shown
    assert newest["removed"] == [f"{day}/song.jpg"] and newest["dates"] == [day]
    assert first["added"] == [f"{day}/song.jpg"] and first["replaced"] == [f"{day}/talk.jpg"]
    assert first["trashed"] == [{"path": f"{day}/talk.jpg", "reason": "replaced"}]
    text = m3("history").stdout
    assert f"{day}/talk.jpg was moved to the trash: a file of the same name came from the congregation" in text
    assert "1 file removed" in text and " at " in text
    assert re.search(r"\d{4}-\d{2}-\d{2}T\d", text) is None, "times in words, not ISO stamps"


def test_the_record_keeps_only_the_last_syncs(tmp_path: Path) -> None:
    rec = Record(tmp_path / "record.sqlite")
    for i in range(HISTORY_KEEP + 5):
        rec.add_history({"at": str(i)})
    kept = rec.history(1000)
    assert len(kept) == HISTORY_KEEP and kept[0]["at"] == str(HISTORY_KEEP + 4)


def test_forget_removes_the_congregation_and_its_password_but_keeps_its_media(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/talk.jpg": b"talk"})
    assert m3(*setup_args(wsgidav_server, isolated_env), stdin=wsgidav_server.password + "\n").returncode == 0
    assert m3("update").returncode == 0
    assert wsgidav_server.password in (config_dir() / "secrets.json").read_text()
    refused = m3("forget", stdin="")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    gone = m3("forget", "--yes")
    assert gone.returncode == 0, gone.stderr
    assert "was kept" in gone.stdout
    assert not (config_dir() / "config.toml").exists()
    assert wsgidav_server.password not in (config_dir() / "secrets.json").read_text()
    assert (isolated_env / "media" / iso(1) / "talk.jpg").read_bytes() == b"talk"
    assert "not set up" in m3("status").stdout
