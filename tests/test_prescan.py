"""The daemon's scan of the media folder, started with the listing (engine/prescan.py): the plan
takes it only for the very folders it needs, and never misses a file the record names."""

from __future__ import annotations

from pathlib import Path

from m3daemon.engine.prescan import LocalAhead


def put(root: Path, rel: str, data: bytes = b"x") -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)


def test_without_a_scan_under_way_the_plan_reads_the_folder_itself(tmp_path: Path) -> None:
    put(tmp_path, "2026-12-04/a.jpg")
    assert set(LocalAhead().take(tmp_path, set(), {"2026-12-04"})) == {"2026-12-04/a.jpg"}


def test_a_scan_of_other_folders_than_the_plan_needs_is_not_used(tmp_path: Path) -> None:
    put(tmp_path, "2026-12-04/a.jpg")
    put(tmp_path, "04-12-2026/a.jpg")
    ahead = LocalAhead()
    ahead.start(tmp_path, {"2026-12-04"})  # the last listing's layout
    assert set(ahead.take(tmp_path, set(), {"04-12-2026"})) == {"04-12-2026/a.jpg"}


def test_a_recorded_file_the_scan_did_not_know_of_is_read_as_well(tmp_path: Path) -> None:
    put(tmp_path, "2026-12-04/a.jpg")
    put(tmp_path, "Elsewhere/b.jpg", b"bb")
    ahead = LocalAhead()
    ahead.start(tmp_path, {"2026-12-04"})
    found = ahead.take(tmp_path, {"2026-12-04/a.jpg", "Elsewhere/b.jpg", "Gone/c.jpg"}, {"2026-12-04"})
    assert set(found) == {"2026-12-04/a.jpg", "Elsewhere/b.jpg"}
    assert found["Elsewhere/b.jpg"].size == 2
    # the next scan knows the recorded files from the start
    ahead.start(tmp_path, {"2026-12-04"})
    assert set(ahead.take(tmp_path, {"Elsewhere/b.jpg"}, {"2026-12-04"})) == {"2026-12-04/a.jpg", "Elsewhere/b.jpg"}


def test_a_scan_is_used_once(tmp_path: Path) -> None:
    put(tmp_path, "2026-12-04/a.jpg")
    ahead = LocalAhead()
    ahead.start(tmp_path, {"2026-12-04"})
    ahead.take(tmp_path, set(), {"2026-12-04"})
    put(tmp_path, "2026-12-04/b.jpg")
    assert set(ahead.take(tmp_path, set(), {"2026-12-04"})) == {"2026-12-04/a.jpg", "2026-12-04/b.jpg"}
