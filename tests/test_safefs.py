"""A new staging file replaces whatever is at its name, and never writes through a link: the
rule every download's first open follows (local/safefs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from m3daemon.local.safefs import open_new


@pytest.mark.parametrize("there", ["nothing", "a file", "a link to a precious file", "a dangling link"])
def test_a_new_file_replaces_what_is_there_and_writes_through_no_link(tmp_path: Path, there: str) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"precious")
    target = tmp_path / "a.part"
    if there == "a file":
        target.write_bytes(b"an older attempt")
    elif there == "a link to a precious file":
        target.symlink_to(precious)
    elif there == "a dangling link":
        target.symlink_to(tmp_path / "gone")
    with open_new(target) as f:
        f.write(b"new")
    assert not target.is_symlink() and target.read_bytes() == b"new"
    assert precious.read_bytes() == b"precious"
    assert not (tmp_path / "gone").exists()
