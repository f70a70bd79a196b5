"""Experiment (c): the Depth-1 walk on a 50,000-entry folder (250 date folders, 15 in the sync
window) against Apache, as shipped vs listing only the window's date folders.

    .venv/bin/python bench/experiments/listing.py [--runs 3] [--entries 50000]

Reports update(dry_run=True) in this process: seconds, PROPFIND requests, planned actions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import patched
from common import Member, lay_out_scale, median, rm, start_server


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--entries", type=int, default=50_000)
    ap.add_argument("--work", default="/dev/shm/m3bench-exp-listing")
    args = ap.parse_args()
    work = Path(args.work)
    rm(work)
    server = start_server("apache", work / "servers")
    try:
        info = lay_out_scale(server, args.entries)
        member = Member.create(work / "home", server, "listing")
        member.clean()
        member.update_inprocess(dry_run=True)  # remembers that Depth infinity is refused
        print(f"apache, {args.entries:,} entries ({info}), update(dry_run=True), median of {args.runs}")
        for label, on in (("walk as shipped", False), ("walk the window only", True)):
            times, reqs, planned = [], [], []
            for _ in range(args.runs):
                with patched.walk_window_only(on):
                    _plan, total, rep = member.update_inprocess(dry_run=True)
                times.append(total)
                reqs.append(rep.requests)
                planned.append(len(rep.planned))
            print(f"  {label:<22} {median(times):.3f} s  requests {max(reqs)}  planned {max(planned)}  "
                  f"runs {' '.join(f'{t:.3f}' for t in times)}")
    finally:
        server.stop()
        rm(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
