"""The floors under the rows that time m3daemon's CLI: what any process on its stack (CPython,
pycurl, the modules an ``update`` imports) takes before m3daemon does any work of its own.

Why: after nine rounds of work, the CLI rows still missing their goals were all near a cost that
no change to how m3daemon syncs can remove: the interpreter's start, the imports of the code an
update runs, and the requests themselves. A goal below that floor can only be met by importing
much less, by another runtime, or by a resident process (the daemon, whose rows meet theirs), so
each floor is measured in the same run, against the same server, as the row it explains, and
shown beside it.

A floor is what an ``update`` process cannot avoid::

    its start: a Python that imports what ``m3daemon update`` imports (whole process, warm caches)
  + the row's requests, on the faster of curl (its whole process, where the row has a curl run)
    and a bare pycurl loop (bench/floor_fetch.py, the loop's own time: nothing read, planned,
    recorded or flushed; m3daemon's transfer settings)

For the daemon's poll, which runs in a process already started, the floor is the requests alone.
They go on new connections there, while the daemon's stay open, so on a server that answers fast
this floor is a little high. Each part is a median of a few runs on a busy 2-core machine, so a
row can come out a little below its floor: it is then at the floor, within the noise.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import common
from common import Server, median, run_timed

FETCH = Path(__file__).resolve().parent / "floor_fetch.py"
# The listing on libcurl (with pycurl) is imported lazily, by a process's first sync; every sync
# imports it, so it belongs to the start.
UPDATE_MODULES = ("import m3daemon.cli.main, m3daemon.cli.update_cmd, m3daemon.engine.sync, "
                  "m3daemon.remote.curl_listing")


def startup(runs: int, env: dict[str, str]) -> dict[str, float]:
    """Medians, in seconds, of a Python that does nothing, one that imports pycurl, and one that
    imports what ``m3daemon update`` imports (pycurl among them)."""
    def timed(code: str) -> float:
        return median([run_timed([common.PYTHON, "-c", code], env=env).check(code).seconds for _ in range(runs)])

    return {"python_c_pass_s": timed("pass"), "import_pycurl_s": timed("import pycurl"),
            "import_update_modules_s": timed(UPDATE_MODULES)}


def cli_floor(start: dict[str, float], requests: float, curl: float | None = None) -> float:
    """The start of ``m3daemon update`` plus the faster way to make the row's requests."""
    return start["import_update_modules_s"] + (min(requests, curl) if curl is not None else requests)


def bare_loop(server: Server, jobs: list[tuple[str, str]], work: Path, runs: int, *, parallel: int = 3,
              propfind: str | None = None) -> tuple[list[float], list[float]]:
    """``runs`` runs of the bare loop: the whole process's seconds, and the requests' own."""
    listing = work / "floor-jobs.txt"
    listing.write_text("".join(f"{url}\t{out}\n" for url, out in jobs), encoding="utf-8")
    cmd = [common.PYTHON, str(FETCH), str(listing), "--ca", str(server.ca_file), "--user", server.username,
           "--parallel", str(parallel)] + (["--propfind", propfind] if propfind else [])
    env = dict(os.environ, FLOOR_PASSWORD=server.password)
    whole, inner = [], []
    for _ in range(runs):
        for _url, out in jobs:
            if out != "-" and os.path.exists(out):
                os.unlink(out)
        run = run_timed(cmd, env=env).check("the bare pycurl loop")
        found = re.search(r"in ([0-9.]+) s", run.stdout)
        assert found, run.stdout
        whole.append(run.seconds)
        inner.append(float(found.group(1)))
    return whole, inner


def noop_jobs(server: Server) -> tuple[list[tuple[str, str]], str]:
    """The requests of a no-op's listing, and their depth: the congregation folder at Depth
    infinity where the server allows it, else each folder a Depth 1 walk lists."""
    root = f"{server.url}{common.FOLDER}/"
    if server.infinity:
        return [(root, "-")], "infinity"
    return [(server.url_for(rel) + "/" if rel else root, "-") for rel in common.walked_folders(server)], "1"


def verdict(floor_ratio: float, goal_ratio: float, *, faster: bool = False) -> str:
    """Whether the row's goal lies below the floor (no process on this stack can meet it here).
    ``faster``: the goal is a speed-up (≥ N× faster), the ratio the floor's speed-up."""
    below = floor_ratio < goal_ratio if faster else floor_ratio > goal_ratio
    return "goal below the floor" if below else "goal above the floor"
