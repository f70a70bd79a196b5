"""m3daemon performance benchmark: one command, every scenario, real servers, ratios in the same run.

    .venv/bin/python bench/run.py [--runs N] [--quick] [--server apache|wsgidav|all]
                                  [--scenarios bulk,small,noop,daemon,scale] [--work /dev/shm/m3bench]
                                  [--json FILE] [--markdown FILE] [--keep] [--editable]

Servers: the test suite's private Apache 2.4 mod_dav (HTTPS, Basic auth, Depth infinity refused,
so m3daemon walks with Depth 1) and WsgiDAV 4.4 (in its own process; Depth infinity allowed).
Everything (server roots, targets, m3daemon's config/state/media) lives on tmpfs under --work.

Scenarios (see docs/performance.md for the goals and the analysis):

  bulk   one 200 MiB file: `m3daemon update` vs curl vs `rclone copy`            (runs: 3)
  small  2,000 files of 100 KB in 10 date folders: vs `curl --parallel --parallel-max 3 -K`
         and `rclone copy`                                                         (runs: N; rclone 1)
  noop   everything synced: the whole CLI process vs `rclone copy` again; requests from the
         server's access log; files opened (strace) and atimes; `-X importtime`   (runs: N)
  daemon the CLI while `m3daemon run` runs (it hands the sync to the daemon): the same no-op vs
         `rclone copy`, and a new version of one 200 MiB file vs curl           (runs: N; bulk 3)
  scale  listings of 10k, 25k, 50k entries: `update --dry-run` time and ru_maxrss (runs: 2)

m3daemon runs as `python -m m3daemon update --json` in a subprocess (the whole process is timed;
from a copy installed as `pip install .` installs it, or with `--editable` from the dev venv)
and, for the breakdowns, as `update()` in this process. Medians of the runs; every ratio compares
figures measured in the same run against the same server.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import ssl
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common
import floors
from common import (
    MIB,
    OLD,
    Member,
    Server,
    count_files,
    curl_many,
    curl_one,
    curl_version,
    lay_out_bulk,
    lay_out_scale,
    lay_out_small,
    median,
    rclone_copy,
    rm,
    start_server,
    write_curl_config,
    write_file,
)

from m3daemon.core.m3 import REPLACE_PAUSE_NATIVE

BULK_SIZE = 200 * MIB
SMALL_COUNT, SMALL_SIZE, SMALL_FOLDERS = 2000, 100_000, 10
CURL_PARALLEL = 3  # the same concurrency as m3daemon's 3 download workers
REPLACED = 200  # of the 2,000 small files, new versions (a coordinator re-exported a meeting's slides)
# Seconds a replaced file stays away so that M³ 25+ sees it removed, then added: the media folder
# here is a local one, where M³ gets native events.
M3_REPLACE_PAUSE = REPLACE_PAUSE_NATIVE
SCALE_SIZES = (10_000, 25_000, 50_000)

# Imported by `update` although a no-op sync with the password in the environment needs none of them
# (click, rich and pygments arrive through httpx/__init__.py's `from ._main import main` when they
# are installed; Flask brings click.) A no-op does use platformdirs (its state folder) and tzlocal
# (the computer's time zone, as the benchmark's config names none).
NOT_NEEDED_FOR_UPDATE = ("rich", "click", "pygments", "flask", "pystray", "PIL", "apscheduler", "watchdog",
                         "webdav4", "wsgidav", "cheroot", "trustme", "send2trash", "tomli_w", "keyring", "jaraco")


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    server: str
    m3: str
    curl: str = "—"
    rclone: str = "—"
    r_curl: str = "—"
    r_rclone: str = "—"
    goal: str = ""
    met: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print("   ", " | ".join(str(v) for v in row.__dict__.values()), flush=True)


def s(x: float) -> str:
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×"


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def floor_row(what: str, server: Server, floor: float, *, curl: float | None = None, rclone: float | None = None,
              goal: str, verdict: str) -> Row:
    """The floor under a row (bench/floors.py), in the row's own columns."""
    return Row(f"floor: {what}", server.kind, s(floor), s(curl) if curl else "—", s(rclone) if rclone else "—",
               ratio(floor, curl) if curl else "—", ratio(floor, rclone) if rclone else "—", goal, verdict)


# --------------------------------------------------------------------------------------------
# Scenario 1: bulk
# --------------------------------------------------------------------------------------------


def scenario_bulk(server: Server, work: Path, runs: int, res: Results) -> None:
    log(f"{server.kind}: bulk, 1 file of {BULK_SIZE // MIB} MiB, {runs} runs")
    rel = lay_out_bulk(server, BULK_SIZE)
    member = Member.create(work / "home", server, f"bulk-{server.kind}")
    out = work / "curl-bulk.bin"
    dest = work / "rclone-bulk"
    t_curl, t_cli, t_rclone, t_inproc, t_plan, cpu_cli, cpu_curl = [], [], [], [], [], [], []
    bare, inner, bare_jobs = [], [], [(server.url_for(rel), str(work / "floor-bulk.bin"))]
    for _ in range(runs):
        rm(out)
        r = curl_one(server, rel, out)
        assert out.stat().st_size == BULK_SIZE
        t_curl.append(r.seconds)
        cpu_curl.append(r.user + r.sys)
        rm(out)

        whole, own = floors.bare_loop(server, bare_jobs, work, 1)  # the floor (bench/floors.py)
        bare, inner = bare + whole, inner + own
        rm(work / "floor-bulk.bin")

        member.clean()
        run, rep = member.update_json()
        assert rep["downloaded"] == 1 and rep["bytes"] >= BULK_SIZE, rep
        t_cli.append(run.seconds)
        cpu_cli.append(run.user + run.sys)

        rm(dest)
        r = rclone_copy(server, "Media", dest)
        assert count_files(dest) == (1, BULK_SIZE)
        t_rclone.append(r.seconds)
        rm(dest)

        member.clean()
        plan_s, total, report = member.update_inprocess()
        assert report.downloaded == 1
        t_inproc.append(total)
        t_plan.append(plan_s)
    member.clean()
    c, rc = median(t_curl), median(t_rclone)
    for label, xs in (("CLI process", t_cli), ("update() in-process", t_inproc)):
        m = median(xs)
        res.add(Row(f"bulk 200 MiB: {label}", server.kind, s(m), s(c), s(rc), ratio(m, c), ratio(m, rc),
                    "≤ 1.0× curl", yes(m <= c)))
    floor = floors.cli_floor(res.details["startup"], median(inner), c)
    res.add(floor_row("bulk 200 MiB, the update's start + the faster transfer (curl, a bare pycurl loop)", server,
                      floor, curl=c, rclone=rc,
                      goal="≤ 1.0× curl", verdict=floors.verdict(floor / c, 1.0)))
    res.details[f"bulk/{server.kind}"] = {
        "curl_s": t_curl, "cli_s": t_cli, "rclone_s": t_rclone, "inprocess_s": t_inproc,
        "inprocess_list_plan_s": t_plan, "cli_cpu_s": cpu_cli, "curl_cpu_s": cpu_curl, "bare_loop_s": bare,
        "bare_requests_s": inner, "MBps": {"curl": BULK_SIZE / c / 1e6, "m3_cli": BULK_SIZE / median(t_cli) / 1e6,
                 "m3_inprocess": BULK_SIZE / median(t_inproc) / 1e6, "rclone": BULK_SIZE / rc / 1e6},
    }


# --------------------------------------------------------------------------------------------
# Scenario 2: many small files
# --------------------------------------------------------------------------------------------


def scenario_small(server: Server, work: Path, runs: int, rclone_runs: int, inproc_runs: int,
                   res: Results) -> None:
    log(f"{server.kind}: small, {SMALL_COUNT} × {SMALL_SIZE // 1000} KB, {runs} runs (rclone {rclone_runs})")
    rels = lay_out_small(server, SMALL_COUNT, SMALL_SIZE, SMALL_FOLDERS)
    member = Member.create(work / "home", server, f"small-{server.kind}")
    out = work / "curl-small"
    cfg = write_curl_config(server, rels, out, work / f"curl-small-{server.kind}.cfg")
    dest = work / f"rclone-small-{server.kind}"  # kept: the no-op scenario re-runs rclone on it
    t_curl, t_cli, t_inproc, t_plan, t_rclone, cpu_cli, cpu_curl = [], [], [], [], [], [], []
    floor_out = work / "floor-small"
    bare, inner, bare_jobs = [], [], [(server.url_for(r), str(floor_out / r.split("/", 1)[1])) for r in rels]
    for i in range(runs):
        rm(out)
        r = curl_many(server, cfg, CURL_PARALLEL)
        assert count_files(out) == (SMALL_COUNT, SMALL_COUNT * SMALL_SIZE), count_files(out)
        t_curl.append(r.seconds)
        cpu_curl.append(r.user + r.sys)
        rm(out)

        whole, own = floors.bare_loop(server, bare_jobs, work, 1, parallel=CURL_PARALLEL)
        bare, inner = bare + whole, inner + own
        rm(floor_out)

        member.clean()
        run, rep = member.update_json()
        assert rep["downloaded"] == SMALL_COUNT, rep["downloaded"]
        t_cli.append(run.seconds)
        cpu_cli.append(run.user + run.sys)

        if i < inproc_runs:
            member.clean()
            plan_s, total, report = member.update_inprocess()
            assert report.downloaded == SMALL_COUNT
            t_inproc.append(total)
            t_plan.append(plan_s)
        if i < rclone_runs:
            rm(dest)
            r = rclone_copy(server, "Media", dest)
            assert count_files(dest) == (SMALL_COUNT, SMALL_COUNT * SMALL_SIZE)
            t_rclone.append(r.seconds)
    replaced_rows(server, work, member, rels[:REPLACED], runs, res)
    member.clean()
    c, rc = median(t_curl), median(t_rclone)
    for label, xs in (("CLI process", t_cli), ("update() in-process", t_inproc)):
        m = median(xs)
        ok_curl, ok_rclone = m <= 1.5 * c, rc / m >= 10
        res.add(Row(f"2,000 × 100 KB: {label}", server.kind, s(m), s(c), s(rc), ratio(m, c), ratio(m, rc),
                    "≤ 1.5× curl; ≥ 10× faster than rclone",
                    f"curl: {yes(ok_curl)}; rclone: {yes(ok_rclone)} ({rc / m:.1f}× faster)"))
    floor = floors.cli_floor(res.details["startup"], median(inner), c)
    res.add(floor_row("2,000 × 100 KB, the update's start + the faster transfer (curl, a bare pycurl loop)",
                      server, floor, curl=c, rclone=rc,
                      goal="≤ 1.5× curl; ≥ 10× faster than rclone",
                      verdict=f"curl: {floors.verdict(floor / c, 1.5)}; rclone: "
                              f"{floors.verdict(rc / floor, 10, faster=True)} ({rc / floor:.1f}× faster)"))
    res.details[f"small/{server.kind}"] = {
        "curl_parallel_max": CURL_PARALLEL, "curl_s": t_curl, "cli_s": t_cli, "inprocess_s": t_inproc,
        "inprocess_list_plan_s": t_plan, "rclone_s": t_rclone, "cli_cpu_s": cpu_cli, "curl_cpu_s": cpu_curl,
        "bare_loop_s": bare, "bare_requests_s": inner,
        "files_per_s": {"curl": SMALL_COUNT / c, "m3_cli": SMALL_COUNT / median(t_cli), "rclone": SMALL_COUNT / rc},
    }


def replaced_rows(server: Server, work: Path, member: Member, replaced: list[str], runs: int, res: Results) -> None:
    """New versions of files already synced, against the same files downloaded new: M³ 25+ must
    see each old file removed before the new one comes (a pause), and one pause serves them all
    (engine/swaps.py). curl fetches the same files in the same run."""
    member.clean()
    member.update_json()
    out = work / "curl-replaced"
    cfg = write_curl_config(server, replaced, out, work / f"curl-replaced-{server.kind}.cfg")
    t_rep, t_new, t_curl = [], [], []
    for i in range(runs):
        when = OLD + 10 + i  # a new date: a new ETag on every server here
        for rel in replaced:
            os.utime(server.cong / rel, (when, when))
        rm(out)
        t_curl.append(curl_many(server, cfg, CURL_PARALLEL).seconds)
        rm(out)
        run, rep = member.update_json()
        assert rep["downloaded"] == len(replaced) and not rep["errors"], rep
        t_rep.append(run.seconds)
        for rel in replaced:  # the same files, new on this computer (Media/<date>/<name> -> <date>/<name>)
            (member.media / rel.split("/", 1)[1]).unlink()
        run, rep = member.update_json()
        assert rep["downloaded"] == len(replaced), rep
        t_new.append(run.seconds)
    r, n, c = median(t_rep), median(t_new), median(t_curl)
    res.add(Row(f"{len(replaced)} of the 2,000 files replaced by new versions: CLI process", server.kind,
                f"{s(r)} (the same files new: {s(n)})", s(c), "—", ratio(r, c), "—",
                f"≤ the same files new + 2 × M³'s {M3_REPLACE_PAUSE} s pause",
                yes(r <= n + 2 * M3_REPLACE_PAUSE)))
    res.details[f"replaced/{server.kind}"] = {"files": len(replaced), "replaced_cli_s": t_rep,
                                              "new_cli_s": t_new, "curl_s": t_curl}


# --------------------------------------------------------------------------------------------
# Scenario 3: no-op re-run
# --------------------------------------------------------------------------------------------


def listed_folders(server: Server) -> int:
    return len(common.walked_folders(server))


def strace_opens(member: Member, work: Path) -> dict[str, Any]:
    trace = work / "strace.txt"
    rm(trace)
    run = member.cli("update", "--json", prefix=["strace", "-f", "-qq", "-e", "trace=open,openat,openat2",
                                                  "-o", str(trace)])
    run.check("m3daemon update under strace")
    media = str(member.media) + "/"
    files, dirs, total = [], [], 0
    pat = re.compile(r'open(?:at2?)?\((?:[^,]+, )?"([^"]*)", ([A-Z_|]+)')
    for line in trace.read_text(errors="replace").splitlines():
        m = pat.search(line)
        if not m:
            continue
        total += 1
        path, flags = m.group(1), m.group(2)
        if path.startswith(media) or path == media.rstrip("/"):
            (dirs if "O_DIRECTORY" in flags else files).append(path)
    rm(trace)
    return {"openat_total": total, "media_files_opened": files, "media_dirs_opened": len(dirs)}


def atime_check(member: Member) -> dict[str, Any]:
    def snapshot() -> dict[str, int]:
        out = {}
        for p in member.media.rglob("*"):
            if p.is_file() and ".m3daemon" not in p.parts:
                out[str(p)] = p.stat().st_atime_ns
        return out

    before = snapshot()
    run = member.cli("update", "--json")
    run.check("m3daemon update (atime check)")
    after = snapshot()
    changed = [p for p, a in before.items() if after.get(p) != a]
    # Sanity: does a read of one of these files change its atime here (tmpfs, relatime)?
    probe = Path(next(iter(before)))
    st = probe.stat()
    with open(probe, "rb") as f:
        f.read(1)
    sensitive = probe.stat().st_atime_ns != st.st_atime_ns
    os.utime(probe, ns=(st.st_atime_ns, st.st_mtime_ns))
    return {"files": len(before), "atime_changed": len(changed), "method_sensitive": sensitive}


def import_profile(member: Member) -> dict[str, Any]:
    run = member.cli("update", "--json", pyflags=["-X", "importtime"])
    run.check("m3daemon update -X importtime")
    rows = []
    for line in run.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2, m.group(4)))
    total_us = sum(r[0] for r in rows)
    by_pkg: Counter[str] = Counter()
    for self_us, _cum, _lvl, name in rows:
        by_pkg[name.split(".")[0]] += self_us
    # the heaviest single imports by cumulative time, not counting m3daemon's own modules' totals
    heaviest = sorted(((cum, name) for _s, cum, _l, name in rows if not name.startswith("m3daemon")),
                      reverse=True)
    seen: list[tuple[int, str]] = []
    for cum, name in heaviest:
        if any(name.startswith(other + ".") for _c, other in seen):
            continue  # a part of a package already listed
        seen.append((cum, name))
        if len(seen) == 12:
            break
    loaded = {r[3].split(".")[0] for r in rows}
    return {
        "total_ms": total_us / 1000,
        "by_package_ms": {k: v / 1000 for k, v in by_pkg.most_common(15)},
        "heaviest_ms": [(name, cum / 1000) for cum, name in seen],
        "not_needed_but_imported": sorted(p for p in NOT_NEEDED_FOR_UPDATE if p in loaded),
    }


def rclone_synced(server: Server, work: Path) -> Path:
    """rclone's copy of the 2,000 files, made once (untimed) and kept for its no-op re-runs."""
    dest = work / f"rclone-small-{server.kind}"
    if count_files(dest) != (SMALL_COUNT, SMALL_COUNT * SMALL_SIZE):
        rm(dest)
        rclone_copy(server, "Media", dest)
    return dest


def scenario_noop(server: Server, work: Path, runs: int, res: Results) -> None:
    log(f"{server.kind}: no-op re-run of {SMALL_COUNT} files, {runs} runs")
    if not (server.cong / "Media").is_dir() or sum(1 for _ in (server.cong / "Media").rglob("*.jpg")) != SMALL_COUNT:
        lay_out_small(server, SMALL_COUNT, SMALL_SIZE, SMALL_FOLDERS)
    member = Member.create(work / "home", server, f"noop-{server.kind}")
    member.clean()
    member.update_json()  # the first sync (untimed)
    member.update_json()  # and one no-op to warm the page cache and the bytecode cache
    dest = rclone_synced(server, work)
    t_cli, t_rclone, t_inproc, reqs, rreqs, cpu = [], [], [], [], [], []
    t_poll, poll_reqs = [], []
    bare, inner = [], []
    bare_jobs, depth = floors.noop_jobs(server)
    from m3daemon.engine.sync import ListingCache

    cache = ListingCache()  # the daemon keeps the last listing between its polls
    member.update_inprocess(cache=cache)
    methods: Counter[str] = Counter()
    for _ in range(runs):
        server.clear_log()
        run, rep = member.update_json()
        log_entries = server.request_log()
        assert rep["downloaded"] == 0 and rep["unchanged"] == SMALL_COUNT, rep
        t_cli.append(run.seconds)
        cpu.append(run.user + run.sys)
        reqs.append(len(log_entries))
        methods = Counter(m for m, _p, _s in log_entries)

        server.clear_log()
        r = rclone_copy(server, "Media", dest)
        t_rclone.append(r.seconds)
        rreqs.append(len(server.request_log()))

        _plan, total, report = member.update_inprocess()
        assert report.downloaded == 0
        t_inproc.append(total)

        server.clear_log()
        _plan, total, report = member.update_inprocess(cache=cache)
        assert report.downloaded == 0
        t_poll.append(total)
        poll_reqs.append(len(server.request_log()))

        whole, own = floors.bare_loop(server, bare_jobs, work, 1, propfind=depth)
        bare, inner = bare + whole, inner + own
    folders = listed_folders(server)
    m, rc = median(t_cli), median(t_rclone)
    res.add(Row(f"no-op ({SMALL_COUNT:,} files): CLI process", server.kind, s(m), "—", s(rc), "—",
                ratio(m, rc), "≤ 0.8× rclone", yes(m <= 0.8 * rc)))
    in_file = member.with_password_in_file()
    t_file = [in_file.update_json()[0].seconds for _ in range(runs)]
    traced = in_file.cli("update", "--json", pyflags=["-X", "importtime"]).check("m3daemon update -X importtime")
    keyring_loaded = any(re.search(r"\| +keyring$", line) for line in traced.stderr.splitlines())
    res.add(Row("no-op: CLI process, the password in secrets.json (not in the environment)", server.kind,
                s(median(t_file)) + ("; keyring imported" if keyring_loaded else "; keyring not imported"), "—",
                s(rc), "—", ratio(median(t_file), rc), "≤ 0.8× rclone", yes(median(t_file) <= 0.8 * rc)))
    n_req = max(reqs)
    goal_req = 1 if server.infinity else folders
    res.add(Row("no-op: requests (server log)", server.kind,
                f"{n_req} ({', '.join(f'{k}×{v}' for k, v in methods.items())})", "—", f"{max(rreqs)}", "—", "—",
                "1 (Depth infinity)" if server.infinity else f"≤ 1 per listed folder ({folders})",
                yes(n_req <= goal_req)))
    mp = median(t_poll)
    res.add(Row("daemon poll, nothing changed: update() with the daemon's cache", server.kind, s(mp), "—", s(rc),
                "—", ratio(mp, rc), "≤ 0.25× rclone's no-op", yes(mp <= 0.25 * rc)))
    floor = floors.cli_floor(res.details["startup"], median(inner))
    res.add(floor_row(f"no-op, the update's start + the same {len(bare_jobs)} PROPFIND on a bare pycurl loop", server,
                      floor, rclone=rc, goal="≤ 0.8× rclone", verdict=floors.verdict(floor / rc, 0.8)))
    res.add(floor_row(f"daemon poll, the same {len(bare_jobs)} PROPFIND alone (new connections, no process start)",
                      server,
                      median(inner), rclone=rc, goal="≤ 0.25× rclone's no-op",
                      verdict=floors.verdict(median(inner) / rc, 0.25)))
    res.add(Row("daemon poll: requests (server log)", server.kind, f"{max(poll_reqs)}", "—", f"{max(rreqs)}", "—",
                "—", "1 (Depth infinity)" if server.infinity else f"≤ 1 per window folder + root, Media ({folders})",
                yes(max(poll_reqs) <= goal_req)))
    opens = strace_opens(member, work)
    atimes = atime_check(member)
    n_open = len(opens["media_files_opened"])
    res.add(Row("no-op: media files opened / read", server.kind,
                f"{n_open} opened (strace); {atimes['atime_changed']} atimes changed", "—", "—", "—", "—",
                "0", yes(n_open == 0 and atimes["atime_changed"] == 0)))
    imports = import_profile(member) if server.kind == "apache" or "imports" not in res.details else None
    if imports is not None:
        res.details["imports"] = imports
    res.details[f"noop/{server.kind}"] = {
        "cli_s": t_cli, "cli_cpu_s": cpu, "rclone_s": t_rclone, "inprocess_s": t_inproc, "requests": reqs,
        "rclone_requests": rreqs, "listed_folders": folders, "strace": opens, "atime": atimes,
        "daemon_poll_s": t_poll, "daemon_poll_requests": poll_reqs, "bare_loop_s": bare, "bare_requests_s": inner,
        "cli_password_in_file_s": t_file, "keyring_imported_with_password_in_file": keyring_loaded,
    }


def scenario_daemon(server: Server, work: Path, runs: int, res: Results) -> None:
    """The CLI while the daemon runs, as on an A/V computer: `m3daemon update` hands the sync to
    the daemon, which keeps its last listing and its connections. The same no-op and the same
    200 MiB download as above, the whole CLI process timed, against rclone and curl in this run."""
    log(f"{server.kind}: the CLI with the daemon running, {runs} runs")
    lay_out_small(server, SMALL_COUNT, SMALL_SIZE, SMALL_FOLDERS)
    member = Member.create(work / "home", server, f"daemon-{server.kind}")
    member.clean()
    member.update_json()  # the first sync, without the daemon (untimed)
    dest = rclone_synced(server, work)
    t_noop, t_rclone, t_big, t_curl, synced = [], [], [], [], []
    with member.daemon():
        member.update_json()  # the daemon's first sync of its own (untimed)
        for _ in range(runs):
            run, rep = member.update_json()
            assert rep["downloaded"] == 0 and rep["unchanged"] == SMALL_COUNT, rep
            t_noop.append(run.seconds)
            t_rclone.append(rclone_copy(server, "Media", dest).seconds)
    rel = lay_out_bulk(server, BULK_SIZE)
    big = server.cong / rel
    out = work / "curl-bulk.bin"
    member = Member.create(work / "home", server, f"daemon-bulk-{server.kind}")
    member.clean()
    with member.daemon():
        member.update_json()  # the first version, untimed
        for i in range(min(3, runs)):
            write_file(big, os.urandom(MIB) * (BULK_SIZE // MIB - 1) + os.urandom(MIB))
            os.utime(big, (OLD + 1 + i, OLD + 1 + i))  # a new version: Apache's ETag is inode, size and date
            rm(out)
            t_curl.append(curl_one(server, rel, out).seconds)
            rm(out)
            run, rep = member.update_json()
            assert rep["downloaded"] == 1 and rep["bytes"] >= BULK_SIZE, rep
            t_big.append(run.seconds)
            synced.append(rep["seconds"])
    member.clean()
    n, rc, b, c = median(t_noop), median(t_rclone), median(t_big), median(t_curl)
    res.add(Row("no-op: CLI process, daemon running", server.kind, s(n), "—", s(rc), "—", ratio(n, rc),
                "≤ 0.8× rclone", yes(n <= 0.8 * rc)))
    res.add(Row("bulk 200 MiB (a new version): CLI process, daemon running", server.kind, s(b), s(c), "—",
                ratio(b, c), "—", "≤ 1.0× curl", yes(b <= c)))
    floor = c + M3_REPLACE_PAUSE
    res.add(floor_row(f"bulk 200 MiB (a new version), curl's transfer + the {M3_REPLACE_PAUSE} s M³ 25+ needs to "
                      "see the old file removed before the new one comes", server, floor, curl=c,
                      goal="≤ 1.0× curl", verdict=floors.verdict(floor / c, 1.0)))
    res.details[f"daemon/{server.kind}"] = {"noop_cli_s": t_noop, "rclone_s": t_rclone, "bulk_cli_s": t_big,
                                           "bulk_daemon_sync_s": synced, "curl_s": t_curl}


# --------------------------------------------------------------------------------------------
# Scenario 4: scale
# --------------------------------------------------------------------------------------------


def scenario_scale(server: Server, work: Path, runs: int, sizes: tuple[int, ...], res: Results) -> None:
    log(f"{server.kind}: scale, listings of {', '.join(f'{n:,}' for n in sizes)} entries, {runs} runs")
    member = Member.create(work / "home", server, f"scale-{server.kind}")
    points = []
    for n in (0, *sizes):
        if n:
            info = lay_out_scale(server, n)
        else:
            server.clear_root()
            (server.cong / "Media").mkdir()
            info = {"entries": 1, "files": 0, "folders": 0, "files_in_window": 0}
        member.clean()
        times, rss, cpu, reqs = [], [], [], []
        for _ in range(runs):
            server.clear_log()
            run, rep = member.update_json("--dry-run", own_rss=True)
            times.append(run.seconds)
            rss.append(run.maxrss_kb / 1024)
            cpu.append(run.user + run.sys)
            reqs.append(len(server.request_log()))
        points.append({"entries": n, **info, "seconds": times, "maxrss_mb": rss, "client_cpu_s": cpu,
                       "requests": reqs, "planned": len(rep["planned"])})
        if n:
            t, mb = median(times), max(rss)
            # the window's folders (today-1 .. today+15: 16 of the 250 date folders) plus the
            # congregation folder and Media/, whatever the folder's history. After the first run:
            # it learnt that Depth infinity is refused, or (where it is allowed) that the history
            # outweighs the window (engine/listing_method.py).
            req_goal = 2 + 16
            n_req = max(reqs[1:] or reqs)
            if server.infinity and len(times) > 1:
                t = median(times[1:])
                first = f"; the first run {s(times[0])}, {reqs[0]} request"
            else:
                first = ""
            res.add(Row(f"scale {n // 1000}k entries: update --dry-run", server.kind,
                        f"{s(t)}, {mb:.0f} MB, {n_req} requests (client CPU {median(cpu):.2f} s){first}",
                        "—", "—", "—",
                        "—", f"RSS < 200 MB; requests ≤ {req_goal}", yes(mb < 200 and n_req <= req_goal)))
    server.clear_root()
    member.clean()
    xs = [p["entries"] for p in points if p["entries"]]
    ys = [max(p["maxrss_mb"]) for p in points if p["entries"]]
    slope, icpt = _fit(xs, ys)
    worst = max(abs(y - (icpt + slope * x)) / y for x, y in zip(xs, ys, strict=True))
    base = max(points[0]["maxrss_mb"])
    tx = [median(p["client_cpu_s"]) for p in points if p["entries"]]
    tslope, _ = _fit(xs, tx)
    res.add(Row("scale: memory growth", server.kind,
                f"{slope * 1024 * 1024:.0f} B/entry; empty listing {base:.0f} MB; "
                f"fit off by ≤ {worst * 100:.1f} %; 100k → {icpt + slope * 100_000:.0f} MB",
                "—", "—", "—", "—", "< 200 MB at 50k (a walk keeps only the window's entries)", yes(max(ys) < 200)))
    res.details[f"scale/{server.kind}"] = {"points": points, "rss_mb_per_1k_entries": slope * 1000,
                                           "rss_intercept_mb": icpt, "client_cpu_ms_per_1k_entries": tslope * 1e6}


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return slope, my - slope * mx


# --------------------------------------------------------------------------------------------
# Machine and versions
# --------------------------------------------------------------------------------------------


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def environment() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return {
        "date": subprocess.run(["date", "-u"], check=False, capture_output=True, text=True).stdout.strip(),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": mem,
        "kernel": platform.release(),
        "os": _first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": sys.version.split()[0],
        "openssl (python)": ssl.OPENSSL_VERSION,
        "httpx": v("httpx"), "httpcore": v("httpcore"), "h11": v("h11"),
        "urllib3": v("urllib3"), "pycurl": v("pycurl"),
        "curl": curl_version(),
        "rclone": _first_line(["rclone", "version"]),
        "apache2": _first_line(["/usr/sbin/apache2", "-v"]).replace("Server version: ", ""),
        "wsgidav": v("WsgiDAV"), "cheroot": v("cheroot"),
        "m3daemon": v("m3daemon"),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

HEADERS = ["scenario", "server", "m3daemon", "curl", "rclone", "m3/curl", "m3/rclone", "goal", "met?"]


def plain_table(rows: list[Row]) -> str:
    cells = [HEADERS] + [list(r.__dict__.values()) for r in rows]
    widths = [min(max(len(str(c[i])) for c in cells), 60) for i in range(len(HEADERS))]
    lines = []
    for k, c in enumerate(cells):
        lines.append("  ".join(str(x).replace("**", "").ljust(w) for x, w in zip(c, widths, strict=True)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(str(v) for v in r.__dict__.values()) + " |" for r in rows]
    return "\n".join(out)


def print_details(res: Results) -> None:
    d = res.details
    print("\nDetails")
    for key, val in d.items():
        if key.startswith("bulk/"):
            mb = val["MBps"]
            print(f"  {key}: MB/s curl {mb['curl']:.0f}, m3 CLI {mb['m3_cli']:.0f}, m3 in-process "
                  f"{mb['m3_inprocess']:.0f}, rclone {mb['rclone']:.0f}; in-process listing+plan "
                  f"{median(val['inprocess_list_plan_s']):.3f} s; CPU (user+sys) m3 CLI "
                  f"{median(val['cli_cpu_s']):.2f} s vs curl {median(val['curl_cpu_s']):.2f} s")
        elif key.startswith("small/"):
            fps = val["files_per_s"]
            print(f"  {key}: files/s curl {fps['curl']:.0f}, m3 CLI {fps['m3_cli']:.0f}, rclone {fps['rclone']:.0f};"
                  f" in-process listing+plan {median(val['inprocess_list_plan_s']):.3f} s of "
                  f"{median(val['inprocess_s']):.3f} s; CPU m3 CLI {median(val['cli_cpu_s']):.2f} s vs curl "
                  f"{median(val['curl_cpu_s']):.2f} s")
        elif key.startswith("noop/"):
            print(f"  {key}: CLI {median(val['cli_s']):.3f} s (CPU {median(val['cli_cpu_s']):.3f} s), update() "
                  f"in-process {median(val['inprocess_s']):.3f} s; requests m3 {val['requests']} vs rclone "
                  f"{val['rclone_requests']}; strace: {val['strace']['openat_total']} opens in all, "
                  f"{len(val['strace']['media_files_opened'])} media files, "
                  f"{val['strace']['media_dirs_opened']} media folders (scandir); atime: "
                  f"{val['atime']['atime_changed']} of {val['atime']['files']} changed (a read does change "
                  f"atime here: {val['atime']['method_sensitive']})")
        elif key == "startup":
            print(f"  startup: `python -c pass` {val['python_c_pass_s']:.3f} s; `import pycurl` "
                  f"{val['import_pycurl_s']:.3f} s; importing update's modules {val['import_update_modules_s']:.3f} s "
                  "(whole processes)")
        elif key == "imports":
            print(f"  imports of `update` (-X importtime): {val['total_ms']:.0f} ms in all")
            print("    heaviest (cumulative): " + ", ".join(f"{n} {ms:.1f} ms" for n, ms in val["heaviest_ms"]))
            print("    by package (self): " + ", ".join(f"{n} {ms:.1f}" for n, ms in val["by_package_ms"].items()))
            print("    imported although a no-op update with M3DAEMON_PASSWORD does not use them: "
                  + (", ".join(val["not_needed_but_imported"]) or "none"))
        elif key.startswith("scale/"):
            pts = "; ".join(f"{p['entries']:,}: {median(p['seconds']):.2f} s, {max(p['maxrss_mb']):.0f} MB, "
                            f"{max(p['requests'])} req" for p in val["points"])
            print(f"  {key}: {pts}; {val['rss_mb_per_1k_entries']:.2f} MB per 1k entries, client CPU "
                  f"{val['client_cpu_ms_per_1k_entries']:.0f} ms per 1k entries")


# --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs per scenario (bulk: min(3, N)); default 5")
    ap.add_argument("--quick", action="store_true", help="one run of everything but scale, which needs two (about 2 minutes)")
    ap.add_argument("--server", default="all", choices=["apache", "wsgidav", "all"])
    ap.add_argument("--scenarios", default="bulk,small,noop,daemon,scale")
    ap.add_argument("--rclone-small-runs", type=int, default=1,
                    help="rclone runs for the 2,000 files (each ~22 s: rclone 1.60's 10 ms pacer); default 1")
    ap.add_argument("--work", default="/dev/shm/m3bench", help="work folder, on tmpfs (default /dev/shm/m3bench)")
    ap.add_argument("--json", help="also write all figures as JSON here")
    ap.add_argument("--markdown", help="also write the table as Markdown here")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--editable", action="store_true",
                    help="run the CLI from the dev venv (with its editable finder) instead of an installed copy")
    args = ap.parse_args()

    runs = 1 if args.quick else args.runs
    bulk_runs = 1 if args.quick else min(3, runs)
    scale_runs = 2  # the first run learns whether Depth infinity is refused: the requests are the second's
    inproc_runs = 1 if args.quick else min(2, runs)
    kinds = ["apache", "wsgidav"] if args.server == "all" else [args.server]
    scenarios = [x.strip() for x in args.scenarios.split(",") if x.strip()]
    work = Path(args.work)
    rm(work)
    work.mkdir(parents=True)
    # Child Pythons (m3daemon's CLI) use a bytecode cache on tmpfs, as an installed package has
    # its .pyc files; this environment sets PYTHONDONTWRITEBYTECODE, which would make every CLI
    # start compile m3daemon from source.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")

    started = time.perf_counter()
    if not args.editable:
        common.PYTHON = common.install_cli(work)
    env_info = environment()
    env_info["m3daemon CLI"] = "dev venv (editable install)" if args.editable else "installed copy (pip install .)"
    res = Results()
    print("m3daemon benchmark — " + ", ".join(f"{k}: {v}" for k, v in env_info.items()), flush=True)
    print("\nRows as they are measured:", flush=True)
    for kind in kinds:
        server = start_server(kind, work / "servers")
        try:
            home = work / "home"
            warm = Member.create(home, server, "warm-up")
            server.clear_root()
            warm.cli("update", "--dry-run", "--json")  # fills the bytecode cache
            if kind == kinds[0]:  # the interpreter and the imports, for the floors (bench/floors.py)
                res.details["startup"] = floors.startup(runs if runs > 2 else 3, warm.env)
            if "bulk" in scenarios:
                scenario_bulk(server, work, bulk_runs, res)
            if "small" in scenarios:
                scenario_small(server, work, runs, args.rclone_small_runs, inproc_runs, res)
            if "noop" in scenarios:
                scenario_noop(server, work, runs, res)
            if "daemon" in scenarios:
                scenario_daemon(server, work, runs, res)
            if "scale" in scenarios:
                scenario_scale(server, work, scale_runs, SCALE_SIZES, res)
        finally:
            server.stop()
    elapsed = time.perf_counter() - started
    env_info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())

    print(f"\nResults (medians; runs: {runs}, bulk {bulk_runs}, scale {scale_runs}, rclone for 2,000 files "
          f"{args.rclone_small_runs}; curl --parallel-max {CURL_PARALLEL}); total {elapsed:.0f} s\n")
    print(plain_table(res.rows))
    print_details(res)
    payload = {"environment": env_info, "runs": {"default": runs, "bulk": bulk_runs, "scale": scale_runs,
                                                 "rclone_small": args.rclone_small_runs},
               "rows": [r.__dict__ for r in res.rows], "details": res.details, "elapsed_s": elapsed}
    (work / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str))
    if args.markdown:
        Path(args.markdown).write_text(markdown_table(res.rows) + "\n")
    if not args.keep:
        for child in work.iterdir():
            if child.name != "results.json":
                rm(child)
    print(f"\nAll figures: {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
