"""Experiment (b): 2,000 files of 100 KB (10 date folders), client by client, 2 and 3 threads.

    .venv/bin/python bench/experiments/small.py [--server apache|wsgidav|all] [--runs 3]
        [--threads 2,3] [--count 2000]

Every client downloads the same URLs into files on /dev/shm, with a thread pool like m3daemon's
executor (one shared client / connection pool; pycurl: one reused easy handle per thread), and
writes each body to its own file. Variants:

  curl -Z N        curl --parallel --parallel-max N -K config (the reference)
  httpx            httpx.Client().stream("GET") + iter_raw(1 MiB), as m3daemon's transfer does
  httpx+drain      the same on draining.DrainingTransport
  urllib3          PoolManager(maxsize=N), preload_content=False, stream(1 MiB)
  pycurl           one pycurl.Curl per thread, reused (keep-alive), WRITEDATA = the open file
  pycurl multi     one thread, pycurl.CurlMulti with N transfers at a time (what curl -Z does)
  m3 update        m3daemon's update() in this process (listing + plan + 3 download workers)
  m3 update+drain  update() with DavSession on DrainingTransport (patched.py)
  m3 update+wal    update() as shipped but the record's SQLite in WAL mode, synchronous=NORMAL
  m3 update+pycurl update() with the download path done by pycurl (patched.py, experiment only):
                   a Python WRITEFUNCTION per chunk, as close as possible to transfer.download
  m3 +pycurl direct  ... with the body written by libcurl straight into the file (WRITEDATA)
  m3 +pycurl dir+lean ... and no sidecar/unlink per file unless a transfer is interrupted
  m3 +pycurl d+l+wal  ... and the record's SQLite in WAL mode, synchronous=NORMAL
  ... w2 / w4         ... with 2 / 4 download workers instead of 3
  m3 multi            update() with every download in one thread on pycurl.CurlMulti (3 at a
                      time), each finished file placed by the executor's own _place (patched.py)
  m3 multi+wal (4)    ... plus the record in WAL mode (4: 4 transfers at a time)

Times: median of --runs; ratios against curl -Z 3 in the same run.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import httpx
import patched
from common import (
    MIB,
    Member,
    Server,
    count_files,
    curl_many,
    lay_out_small,
    median,
    rm,
    start_server,
    write_curl_config,
)
from draining import DrainingTransport


def jobs(server: Server, rels: list[str], out: Path) -> list[tuple[str, Path]]:
    todo = []
    for rel in rels:
        dest = out / rel.split("/", 1)[1]
        todo.append((server.url_for(rel), dest))
    for d in {dest.parent for _u, dest in todo}:
        d.mkdir(parents=True, exist_ok=True)
    return todo


def pool_run(threads: int, fn: Callable[[tuple[str, Path]], None], todo: list[tuple[str, Path]]) -> None:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(fn, todo):
            pass


def via_httpx(server: Server, todo: list[tuple[str, Path]], threads: int, drain: bool) -> None:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    transport = DrainingTransport(ssl_context=ctx, max_connections=threads) if drain else None
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    with httpx.Client(auth=(server.username, server.password), verify=ctx, limits=limits,
                      transport=transport, timeout=30) as client:

        def one(job: tuple[str, Path]) -> None:
            url, dest = job
            with client.stream("GET", url) as r:
                assert r.status_code == 200, r.status_code
                with open(dest, "wb") as f:
                    f.writelines(r.iter_raw(MIB))

        pool_run(threads, one, todo)


def via_urllib3(server: Server, todo: list[tuple[str, Path]], threads: int) -> None:
    import urllib3

    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    headers = urllib3.make_headers(basic_auth=f"{server.username}:{server.password}")
    with urllib3.PoolManager(num_pools=2, maxsize=threads, block=True, ssl_context=ctx) as pm:

        def one(job: tuple[str, Path]) -> None:
            url, dest = job
            r = pm.request("GET", url, headers=headers, preload_content=False, retries=False)
            assert r.status == 200, r.status
            with open(dest, "wb") as f:
                f.writelines(r.stream(MIB, decode_content=False))
            r.release_conn()

        pool_run(threads, one, todo)


def _curl_handle(server: Server) -> object:
    import pycurl

    c = pycurl.Curl()
    c.setopt(pycurl.CAINFO, str(server.ca_file))
    c.setopt(pycurl.USERPWD, f"{server.username}:{server.password}")
    c.setopt(pycurl.NOSIGNAL, 1)
    return c


def via_pycurl(server: Server, todo: list[tuple[str, Path]], threads: int) -> None:
    import pycurl

    local = threading.local()
    handles: list[object] = []

    def one(job: tuple[str, Path]) -> None:
        url, dest = job
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = _curl_handle(server)
            handles.append(c)
        with open(dest, "wb") as f:
            c.setopt(pycurl.URL, url)
            c.setopt(pycurl.WRITEDATA, f)
            c.perform()  # releases the GIL while transferring
        assert c.getinfo(pycurl.RESPONSE_CODE) == 200

    pool_run(threads, one, todo)
    for c in handles:
        c.close()


def via_pycurl_multi(server: Server, todo: list[tuple[str, Path]], parallel: int) -> None:
    import pycurl

    m = pycurl.CurlMulti()
    free = [_curl_handle(server) for _ in range(parallel)]
    files: dict[int, object] = {}
    queue = list(reversed(todo))
    active = 0
    while queue or active:
        while queue and free:
            url, dest = queue.pop()
            c = free.pop()
            f = open(dest, "wb")  # noqa: SIM115
            files[id(c)] = f
            c.setopt(pycurl.URL, url)
            c.setopt(pycurl.WRITEDATA, f)
            m.add_handle(c)
            active += 1
        while True:
            ret, _running = m.perform()
            if ret != pycurl.E_CALL_MULTI_PERFORM:
                break
        while True:
            _queued, ok, failed = m.info_read()
            for c in ok:
                assert c.getinfo(pycurl.RESPONSE_CODE) == 200
                m.remove_handle(c)
                files.pop(id(c)).close()
                free.append(c)
                active -= 1
            for c, errno, msg in failed:
                raise RuntimeError(f"pycurl: {errno} {msg}")
            if not _queued:
                break
        if active:
            wait_ms = m.timeout()  # libcurl may need a call soon (e.g. to start a queued transfer)
            if wait_ms != 0:
                m.select(1.0 if wait_ms < 0 else min(wait_ms, 1000) / 1000)
    for c in free:
        c.close()
    m.close()


def run_server(
    kind: str, work: Path, runs: int, threads: list[int], count: int, only: list[str], home: Path | None = None
) -> dict[str, list[float]]:
    server = start_server(kind, work / "servers")
    try:
        rels = lay_out_small(server, count, 100_000, 10)
        out = work / "out"
        cfg = write_curl_config(server, rels, out, work / "curl.cfg")
        member = Member.create(home or work / "home", server, f"small-{kind}")
        results: dict[str, list[float]] = {}

        def timed(fn: Callable[[], object]) -> float:
            rm(out)
            jobs(server, rels, out)  # the target folders, before the clock starts
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            assert count_files(out) == (count, count * 100_000), count_files(out)
            return dt

        def m3(mode: str) -> float:
            member.clean()
            nworkers = 2 if "w2" in mode else 4 if "w4" in mode else None
            with patched.drain(mode == "drain"), patched.pycurl_downloads(
                mode.startswith("pycurl"), direct="direct" in mode, lean="lean" in mode
            ), patched.record_wal("wal" in mode), patched.workers(nworkers), patched.multi_downloads(
                mode.startswith("multi"), parallel=nworkers or 3
            ):
                _plan, total, rep = member.update_inprocess()
            assert rep.downloaded == count, rep.downloaded
            return total

        variants: dict[str, Callable[[], float]] = {}
        for p in (3, 6):
            variants[f"curl -Z {p}"] = lambda p=p: (rm(out), curl_many(server, cfg, p).seconds)[1]
        for t in threads:
            variants[f"httpx {t}t"] = lambda t=t: timed(lambda: via_httpx(server, jobs(server, rels, out), t, False))
            variants[f"httpx+drain {t}t"] = lambda t=t: timed(
                lambda: via_httpx(server, jobs(server, rels, out), t, True))
            variants[f"urllib3 {t}t"] = lambda t=t: timed(lambda: via_urllib3(server, jobs(server, rels, out), t))
            variants[f"pycurl {t}t"] = lambda t=t: timed(lambda: via_pycurl(server, jobs(server, rels, out), t))
            variants[f"pycurl multi {t}"] = lambda t=t: timed(
                lambda: via_pycurl_multi(server, jobs(server, rels, out), t))
        variants["m3 update"] = lambda: m3("plain")
        variants["m3 update+drain"] = lambda: m3("drain")
        variants["m3 update+wal"] = lambda: m3("plain wal")
        variants["m3 update+pycurl"] = lambda: m3("pycurl")
        variants["m3 +pycurl direct"] = lambda: m3("pycurl direct")
        variants["m3 +pycurl dir+lean"] = lambda: m3("pycurl direct lean")
        variants["m3 +pycurl d+l+wal"] = lambda: m3("pycurl direct lean wal")
        variants["m3 +pycurl d+l+wal w2"] = lambda: m3("pycurl direct lean wal w2")
        variants["m3 +pycurl d+l+wal w4"] = lambda: m3("pycurl direct lean wal w4")
        variants["m3 multi"] = lambda: m3("multi")
        variants["m3 multi+wal"] = lambda: m3("multi wal")
        variants["m3 multi+wal 4"] = lambda: m3("multi wal w4")
        if only:
            variants = {k: v for k, v in variants.items() if k == "curl -Z 3" or any(k.startswith(o) for o in only)}
        for _ in range(runs):
            for name, fn in variants.items():
                results.setdefault(name, []).append(fn())
        rm(out)
        return results
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="all", choices=["apache", "wsgidav", "all"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", default="2,3")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--work", default="/dev/shm/m3bench-exp-small")
    ap.add_argument("--only", default="", help="comma-separated name prefixes (curl -Z 3 always runs)")
    ap.add_argument("--m3-home", help="m3daemon's home (media, state) elsewhere, e.g. on a disk; default tmpfs")
    args = ap.parse_args()
    work = Path(args.work)
    rm(work)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    kinds = ["apache", "wsgidav"] if args.server == "all" else [args.server]
    threads = [int(t) for t in args.threads.split(",")]
    for kind in kinds:
        only = [o.strip() for o in args.only.split(",") if o.strip()]
        home = Path(args.m3_home) / kind if args.m3_home else None
        res = run_server(kind, work / kind, args.runs, threads, args.count, only, home)
        if home is not None:
            rm(home)
        base = median(res["curl -Z 3"])
        print(f"\n{kind}: {args.count} x 100 KB, median of {args.runs} runs (ratio to curl -Z 3)")
        print(f"{'variant':<22} {'median s':>9} {'files/s':>8} {'x curl':>7}   runs")
        for name, xs in res.items():
            m = median(xs)
            print(f"{name:<22} {m:9.3f} {args.count / m:8.0f} {m / base:7.2f}   " + " ".join(f"{x:.3f}" for x in xs))
    rm(work)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
