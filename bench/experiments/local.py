"""Experiment (d): m3daemon's local work per downloaded file, without the network.

    .venv/bin/python bench/experiments/local.py [--runs 3] [--disk /var/tmp]

``update()`` for 2,000 files of 100 KB with ``transfer.download`` replaced by a stand-in that
writes the 100 KB from memory the way the real one does (sidecar JSON, write, fsync, remove the
sidecar), so what is left is the executor's per-file work: staging, fsync, utime, stat, mkdir,
``Record.note_pending`` (one SQLite autocommit per file), ``os.replace``. The listing still comes
from Apache (~0.13 s). Media folder and state on tmpfs and on a disk folder (``--disk``: ext4 on
this machine), as shipped and with the record in WAL mode (patched.record_wal), and with the
download workers run one at a time (to show the cost of three threads contending for the GIL).
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Self

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import patched
from common import Member, lay_out_small, median, rm, start_server

DATA = os.urandom(100_000)


def fake_download(session: Any, parts: tuple[str, ...], part_file: Path, *, size: int, etag: str | None,
                  modified: Any = None, on_bytes: Any = lambda n: None, cancel: Any = None) -> Any:
    from m3daemon.remote import transfer as t

    meta = part_file.with_suffix(".json")
    t._discard(part_file)
    t._write_meta(meta, etag, size)
    with open(part_file, "wb") as f:
        f.write(DATA)
        f.flush()
        os.fsync(f.fileno())
    on_bytes(size)
    t._discard(meta)
    return t.Downloaded(part_file, size, etag, size, 0)


class SerialPool:
    """ThreadPoolExecutor stand-in that runs each job at once in the calling thread."""

    def __init__(self, *a: Any, **k: Any) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001
            fut.set_exception(exc)
        return fut


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--disk", default="/var/tmp", help="a folder on a real disk")
    args = ap.parse_args()
    from m3daemon.engine import executor

    work = Path("/dev/shm/m3bench-exp-local")
    rm(work)
    server = start_server("apache", work / "servers")
    saved_download, saved_pool = executor.download, executor.ThreadPoolExecutor
    executor.download = fake_download
    try:
        lay_out_small(server, 2000, 100_000, 10)
        print("2,000 × 100 KB, download replaced by a local write; update() seconds, median of "
              f"{args.runs} (listing from Apache included)")
        for where in (work / "home", Path(args.disk) / "m3bench-exp-local-home"):
            rm(where)
            member = Member.create(where, server, "local")
            for label, wal, serial in (("as shipped (3 threads)", False, False),
                                       ("record in WAL mode", True, False),
                                       ("as shipped, 1 thread", False, True),
                                       ("WAL, 1 thread", True, True)):
                executor.ThreadPoolExecutor = SerialPool if serial else saved_pool  # type: ignore[misc]
                times = []
                for _ in range(args.runs):
                    member.clean()
                    with patched.record_wal(wal):
                        _plan, total, rep = member.update_inprocess()
                    assert rep.downloaded == 2000
                    times.append(total)
                kind = "tmpfs" if str(where).startswith("/dev/shm") else f"disk ({args.disk})"
                print(f"  {kind:<20} {label:<24} {median(times):.3f} s   runs "
                      + " ".join(f"{t:.3f}" for t in times))
            rm(where)
    finally:
        executor.download, executor.ThreadPoolExecutor = saved_download, saved_pool
        server.stop()
        rm(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
