"""Experiment: one 200 MiB file over ranged streams, as rclone's ``--multi-thread-streams`` does.

    .venv/bin/python bench/experiments/streams.py [apache|wsgidav]

Variants, five rounds interleaved: curl; one pycurl stream (libcurl's buffer, and 512 KiB); two
and four ranged streams in as many threads (``pwrite`` into one file); two ranged streams on one
``CurlMulti``. The result (docs/performance.md, thirteenth stop): 10-15 % at best on two cores
the server shares, so m3daemon keeps one stream per file.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent / "tests"))

import common
import pycurl

SIZE = 200 * 1024 * 1024
ROUNDS = 5


def main(kind: str) -> None:
    work = Path("/dev/shm/m3bench-streams")
    common.rm(work)
    work.mkdir(parents=True)
    srv = common.start_server(kind, work / "servers")
    url = srv.url_for(common.lay_out_bulk(srv, SIZE))
    out = work / "out.bin"

    def easy(buf: int | None = None) -> pycurl.Curl:
        c = pycurl.Curl()
        c.setopt(pycurl.URL, url)
        c.setopt(pycurl.CAINFO, str(srv.ca_file))
        c.setopt(pycurl.USERPWD, f"{srv.username}:{srv.password}")
        c.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        if buf:
            c.setopt(pycurl.BUFFERSIZE, buf)
        return c

    def ranged(n: int, i: int, fd: int, buf: int | None) -> pycurl.Curl:
        part = -(-SIZE // n)
        start = i * part
        pos = [start]

        def write(b: bytes) -> None:
            os.pwrite(fd, b, pos[0])
            pos[0] += len(b)

        c = easy(buf)
        c.setopt(pycurl.RANGE, f"{start}-{min(SIZE, start + part) - 1}")
        c.setopt(pycurl.WRITEFUNCTION, write)
        return c

    def single(buf: int | None = None) -> None:
        with open(out, "wb") as f:
            c = easy(buf)
            c.setopt(pycurl.WRITEFUNCTION, f.write)
            c.perform()
            c.close()

    def threads(n: int, buf: int | None = None) -> None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(fd, SIZE)

        def run(i: int) -> None:
            c = ranged(n, i, fd, buf)
            c.perform()
            assert c.getinfo(pycurl.RESPONSE_CODE) == 206
            c.close()

        started = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in started:
            t.start()
        for t in started:
            t.join()
        os.close(fd)

    def multi(n: int, buf: int | None = None) -> None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(fd, SIZE)
        m = pycurl.CurlMulti()
        handles = [ranged(n, i, fd, buf) for i in range(n)]
        for c in handles:
            m.add_handle(c)
        while m.perform()[1]:
            m.select(1.0)
        os.close(fd)

    def curl() -> None:
        subprocess.run(["curl", "-sS", "--fail", "--cacert", str(srv.ca_file), "-u",
                        f"{srv.username}:{srv.password}", "-o", str(out), url], check=True)

    variants: dict[str, Callable[[], None]] = {
        "curl": curl, "pycurl, 1 stream": single, "pycurl, 1 stream, 512 KiB": lambda: single(512 * 1024),
        "2 streams, 2 threads": lambda: threads(2), "2 streams, 2 threads, 512 KiB": lambda: threads(2, 512 * 1024),
        "4 streams, 4 threads": lambda: threads(4), "2 streams, one CurlMulti": lambda: multi(2),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    try:
        for _ in range(ROUNDS):
            for name, fetch in variants.items():
                t = time.perf_counter()
                fetch()
                times[name].append(time.perf_counter() - t)
                assert out.stat().st_size == SIZE
        for name, xs in times.items():
            print(f"{name:32s} median {statistics.median(xs):.3f} s  fastest {min(xs):.3f} s")
    finally:
        srv.stop()
        common.rm(work)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "apache")
