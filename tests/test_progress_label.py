"""The progress label names a file being transferred, never one that has already finished."""

from __future__ import annotations

from m3daemon.engine.results import Progress


def test_while_a_large_file_downloads_the_label_names_it_not_the_small_one_that_finished() -> None:
    p = Progress(total_files=2)
    p.file_started("2026-12-03/Large video.mp4")
    p.file_started("2026-12-03/small.jpg")
    assert p.current == "2026-12-03/small.jpg"
    p.file_done("2026-12-03/small.jpg")
    assert p.current == "2026-12-03/Large video.mp4" and p.done_files == 1
    p.file_ended("2026-12-03/Large video.mp4")  # failed: not counted as done
    assert p.current == "" and p.done_files == 1
