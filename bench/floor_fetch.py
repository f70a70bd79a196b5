"""The least a Python process on m3daemon's stack can do for a benchmark row: a bare pycurl loop.

    python bench/floor_fetch.py JOBS --ca FILE --user NAME [--parallel N] [--propfind DEPTH]

JOBS holds one ``URL<TAB>OUTPUT`` line per request (OUTPUT ``-``: the body is dropped). The
password comes from ``FLOOR_PASSWORD``. Downloads are written to OUTPUT, ``--parallel`` at a
time on one ``CurlMulti`` with reused handles, as m3daemon's downloads are; ``--propfind`` asks
each URL with PROPFIND at that depth instead, all at once, as a no-op's listing does.

Nothing else happens: no listing read, no plan, no record, no fsync, no check of size or ETag,
no m3daemon import. The time it prints for the requests is what any Python process on libcurl
needs for them: the transfer part of the floors in bench/floors.py, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import pycurl

# the four properties m3daemon asks for (remote/multistatus.py), so the server does the same work
BODY = (b'<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/>'
        b"<d:getcontentlength/><d:getetag/><d:getlastmodified/></d:prop></d:propfind>")


class Sink:
    """A body that is only counted (a PROPFIND answer, an output of ``-``)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)

    def close(self) -> None:
        pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("jobs")
    ap.add_argument("--ca", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--parallel", type=int, default=3)
    ap.add_argument("--propfind", metavar="DEPTH")
    args = ap.parse_args()
    with open(args.jobs, encoding="utf-8") as f:
        jobs = [line.split("\t", 1) for line in f.read().splitlines() if line]
    parallel = len(jobs) if args.propfind else args.parallel
    credentials = f"{args.user}:{os.environ['FLOOR_PASSWORD']}"
    started = time.perf_counter()
    multi = pycurl.CurlMulti()
    free: list[pycurl.Curl] = []
    active: dict[int, tuple[pycurl.Curl, object]] = {}
    failed = 0
    queue = list(reversed(jobs))

    def handle() -> pycurl.Curl:
        if free:
            return free.pop()
        c = pycurl.Curl()
        c.setopt(pycurl.CAINFO, args.ca)
        c.setopt(pycurl.USERPWD, credentials)
        c.setopt(pycurl.HTTPAUTH, pycurl.HTTPAUTH_BASIC)
        # m3daemon's transfer settings (remote/curl.py, remote/curl_download.py), so that the floor is never above it
        c.setopt(pycurl.BUFFERSIZE, 256 * 1024)
        c.setopt(pycurl.NOSIGNAL, 1)
        c.setopt(pycurl.NOPROXY, "*")
        if args.propfind:
            c.setopt(pycurl.CUSTOMREQUEST, "PROPFIND")
            c.setopt(pycurl.HTTPHEADER, [f"Depth: {args.propfind}", "Content-Type: application/xml"])
            c.setopt(pycurl.POSTFIELDS, BODY)
        else:
            c.setopt(pycurl.HTTPHEADER, ["Accept-Encoding: identity"])
        return c

    while queue or active:
        while queue and len(active) < parallel:
            url, output = queue.pop()
            if output == "-":
                sink: object = Sink()
            else:
                os.makedirs(os.path.dirname(output), exist_ok=True)
                sink = open(output, "wb")  # noqa: SIM115 - closed when its transfer ends
            c = handle()
            c.setopt(pycurl.URL, url)
            c.setopt(pycurl.WRITEDATA if output != "-" else pycurl.WRITEFUNCTION,
                     sink if output != "-" else sink.write)  # type: ignore[attr-defined]
            multi.add_handle(c)
            active[id(c)] = (c, sink)
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        while True:
            left, ok, bad = multi.info_read()
            for c in [*ok, *(b[0] for b in bad)]:
                _c, sink = active.pop(id(c))
                multi.remove_handle(c)
                sink.close()  # type: ignore[attr-defined]
                if c.getinfo(pycurl.RESPONSE_CODE) not in (200, 207):
                    failed += 1
                free.append(c)
            if not left:
                break
        if active:
            wait = multi.timeout()
            if wait != 0:
                multi.select(0.1 if wait < 0 else min(wait / 1000, 0.1))
    print(f"{len(jobs)} requests in {time.perf_counter() - started:.3f} s, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
