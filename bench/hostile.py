"""The congregation's server under hostile connections (issue 12): does a member still get answers?

Starts `m3daemon server run` (its own process, default settings) in a temporary folder with a
coordinator and a member, opens ``--idle`` silent TCP connections and ``--slow`` slowloris
connections (TLS done, then one header line a second, never finishing the head) from other
loopback addresses (127.0.0.2 …, ``--per-address`` from each), keeps that many open for
``--seconds`` (each one the server closes is opened again at once), and meanwhile lets the member
do a PROPFIND (Depth 1) and a GET of a 1 MB file every half second, each on a new connection.
Prints the member's times and what the hostile connections saw, as JSON. Stops by itself.

    .venv/bin/python bench/hostile.py                 # 200 idle + 200 slowloris, 30 s
    .venv/bin/python bench/hostile.py --idle 50 --slow 50 --seconds 15

Linux (the whole 127.0.0.0/8 is loopback). Needs the dev install (`pip install -e .`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from hostile import Timings, member_probe, run_attack, wait_until_open

from m3daemon.server.layout import open_layout

PY = sys.executable
MEMBER, MEMBER_PW = "av", "hostile-bench-member"


def m3(*args: str, stdin: str | None = None, env: dict[str, str]) -> None:
    subprocess.run([PY, "-m", "m3daemon", *args], input=stdin, text=True, check=True, env=env,
                   capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle", type=int, default=200)
    ap.add_argument("--slow", type=int, default=200)
    ap.add_argument("--per-address", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--port", type=int, default=18443)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="m3hostile-") as tmp:
        root = Path(tmp) / "server"
        env = {**os.environ, "HOME": tmp, "XDG_CONFIG_HOME": f"{tmp}/.config", "XDG_STATE_HOME": f"{tmp}/.state"}
        m3("server", "init", str(root), "--port", str(args.port), env=env)
        m3("server", "user", "add", str(root), MEMBER, "--role", "member", stdin=MEMBER_PW + "\n", env=env)
        (root / "data" / "Media" / "Recurring" / "year.jpg").write_bytes(os.urandom(1_000_000))
        server = subprocess.Popen([PY, "-m", "m3daemon", "server", "run", str(root)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            url = f"https://127.0.0.1:{args.port}"
            ca = open_layout(root).ca_file
            deadline = time.monotonic() + 30
            while not _answers(url, ca):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start: {server.stderr.read() if server.stderr else ''}")
                time.sleep(0.2)
            baseline = Timings()
            member_probe(url, ca, MEMBER, MEMBER_PW, "/Media/Recurring/year.jpg", time.monotonic() + 3, baseline)
            idle, slow, attack, until = run_attack("127.0.0.1", args.port, ca, idle=args.idle, slow=args.slow,
                                                   seconds=args.seconds, per_address=args.per_address)
            wait_until_open(idle, args.idle)
            wait_until_open(slow, args.slow)
            opened_at = {"idle": idle.open_now, "slow": slow.open_now}
            under = Timings()
            member_probe(url, ca, MEMBER, MEMBER_PW, "/Media/Recurring/year.jpg", until - 0.5, under)
            attack.join(args.seconds + 30)
        finally:
            server.terminate()
            server.wait(30)
    report = {
        "attack": {"idle": args.idle, "slow": args.slow, "per_address": args.per_address, "seconds": args.seconds,
                   "open_when_the_member_started": opened_at},
        "member_before": baseline.summary(),
        "member_during": under.summary(),
        "member_failures": under.failures[:5],
        "idle": {"opened": idle.opened, "most_open": idle.most_open, "closed_by_server": idle.cut,
                 "longest_s": round(max(idle.lifetimes, default=0), 2)},
        "slowloris": {"opened": slow.opened, "most_open": slow.most_open, "answered_408": slow.answered_408,
                      "longest_s": round(max(slow.lifetimes, default=0), 2)},
    }
    print(json.dumps(report, indent=2))
    ok = (not under.failures and under.propfind and max(under.propfind) < 1.0 and max(under.get) < 1.0)
    return 0 if ok else 1


def _answers(url: str, ca: Path) -> bool:
    import ssl

    import httpx

    try:
        httpx.get(url, verify=ssl.create_default_context(cafile=str(ca)), timeout=2, trust_env=False)
        return True
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
