"""Experiment (a): one 200 MiB file over loopback HTTPS, client by client.

    .venv/bin/python bench/experiments/bulk.py [--server apache|wsgidav|all] [--runs 5] [--size-mib 200]

Variants (same server, same file, interleaved run by run so drift hits all alike):

  curl                      the raw transfer limit (a subprocess, like everything it is compared to)
  httpx                     httpx.Client().stream + iter_raw(1 MiB): what m3daemon does today
  httpx+drain               the same over bench/experiments/draining.py's DrainingTransport
  httpx+drain raw           ... and iter_raw() without re-chunking (the chunks are <= 1 MiB already)
  urllib3                   PoolManager, preload_content=False, resp.stream(1 MiB)
  pycurl                    Curl with WRITEDATA = the file (libcurl writes straight to it)
  m3 update                 m3daemon's update() in this process, as shipped
  m3 update+drain           update() with DavSession built on DrainingTransport (patched in this
                            process only, see patched.py)
  m3 update+drain raw       ... and transfer.download using resp.iter_raw() (no re-chunking)
  m3 update+multi           update() with downloads on one pycurl.CurlMulti thread (patched.py)
  m3 CLI / m3 CLI+drain     the whole `python -m m3daemon update --json` process, without / with
                            the patch (bench/experiments/patched_cli.py)

Times are the median of --runs; ratios are against curl's median in the same run.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import httpx
import patched
from common import MIB, PYTHON, Member, Server, curl_one, lay_out_bulk, median, rm, run_timed, start_server
from draining import DrainingTransport


def httpx_client(server: Server, transport: httpx.BaseTransport | None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    return httpx.Client(auth=(server.username, server.password), verify=ctx, transport=transport,
                        timeout=30)


def via_httpx(server: Server, rel: str, out: Path, *, drain: bool, chunk: int | None) -> None:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    transport = DrainingTransport(ssl_context=ctx) if drain else None
    with httpx_client(server, transport) as client, client.stream("GET", server.url_for(rel)) as r:
        r.raise_for_status()
        with open(out, "wb") as f:
            f.writelines(r.iter_raw(chunk))


def via_urllib3(server: Server, rel: str, out: Path) -> None:
    import urllib3

    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with urllib3.PoolManager(ssl_context=ctx) as pm:
        headers = urllib3.make_headers(basic_auth=f"{server.username}:{server.password}")
        r = pm.request("GET", server.url_for(rel), headers=headers, preload_content=False)
        assert r.status == 200, r.status
        with open(out, "wb") as f:
            f.writelines(r.stream(MIB, decode_content=False))
        r.release_conn()


def via_pycurl(server: Server, rel: str, out: Path) -> None:
    import pycurl

    c = pycurl.Curl()
    with open(out, "wb") as f:
        c.setopt(pycurl.URL, server.url_for(rel))
        c.setopt(pycurl.CAINFO, str(server.ca_file))
        c.setopt(pycurl.USERPWD, f"{server.username}:{server.password}")
        c.setopt(pycurl.WRITEDATA, f)
        c.perform()
        assert c.getinfo(pycurl.RESPONSE_CODE) == 200
    c.close()


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_server(kind: str, work: Path, runs: int, size: int) -> dict[str, list[float]]:
    server = start_server(kind, work / "servers")
    try:
        rel = lay_out_bulk(server, size)
        out = work / "out.bin"
        member = Member.create(work / "home", server, f"bulk-{kind}")
        results: dict[str, list[float]] = {}

        def add(name: str, seconds: float) -> None:
            results.setdefault(name, []).append(seconds)

        def m3(drain: bool, raw: bool = False, multi: bool = False) -> float:
            member.clean()
            with patched.drain(drain), patched.raw_chunks(raw), patched.multi_downloads(multi):
                _plan, total, rep = member.update_inprocess()
            assert rep.downloaded == 1
            return total

        def m3_cli(drain: bool, raw: bool = False) -> float:
            member.clean()
            env = dict(member.env)
            env["M3BENCH_DRAIN"] = "1" if drain else "0"
            env["M3BENCH_RAW"] = "1" if raw else "0"
            r = run_timed([PYTHON, str(HERE / "patched_cli.py"), "update", "--json"], env=env).check("m3 cli")
            return r.seconds

        variants: dict[str, Callable[[], float]] = {
            "curl": lambda: curl_one(server, rel, out).seconds,
            "httpx": lambda: timed(lambda: via_httpx(server, rel, out, drain=False, chunk=MIB)),
            "httpx+drain": lambda: timed(lambda: via_httpx(server, rel, out, drain=True, chunk=MIB)),
            "httpx+drain raw": lambda: timed(lambda: via_httpx(server, rel, out, drain=True, chunk=None)),
            "urllib3": lambda: timed(lambda: via_urllib3(server, rel, out)),
            "pycurl": lambda: timed(lambda: via_pycurl(server, rel, out)),
            "m3 update": lambda: m3(False),
            "m3 update+drain": lambda: m3(True),
            "m3 update+drain raw": lambda: m3(True, raw=True),
            "m3 update+multi": lambda: m3(False, multi=True),
            "m3 CLI": lambda: m3_cli(False),
            "m3 CLI+drain": lambda: m3_cli(True),
            "m3 CLI+drain raw": lambda: m3_cli(True, raw=True),
        }
        for _ in range(runs):
            for name, fn in variants.items():
                rm(out)
                add(name, fn())
                if not name.startswith("m3 "):
                    assert out.stat().st_size == size, (name, out.stat().st_size)
        rm(out)
        return results
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="all", choices=["apache", "wsgidav", "all"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=200)
    ap.add_argument("--work", default="/dev/shm/m3bench-exp-bulk")
    args = ap.parse_args()
    work = Path(args.work)
    rm(work)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as bench/run.py: CLI children use a .pyc cache
    os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    kinds = ["apache", "wsgidav"] if args.server == "all" else [args.server]
    size = args.size_mib * MIB
    for kind in kinds:
        res = run_server(kind, work / kind, args.runs, size)
        base = median(res["curl"])
        print(f"\n{kind}: {args.size_mib} MiB, median of {args.runs} runs")
        print(f"{'variant':<20} {'median s':>9} {'MB/s':>7} {'x curl':>7}   runs")
        for name, xs in res.items():
            m = median(xs)
            print(f"{name:<20} {m:9.3f} {size / m / 1e6:7.0f} {m / base:7.2f}   "
                  + " ".join(f"{x:.3f}" for x in xs))
    rm(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
