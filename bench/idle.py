"""The daemon at rest: CPU and memory of `m3daemon run --no-tray` over an idle period.

Starts the congregation's own server (`m3daemon server`) and a member daemon against it, waits for
the first sync, then samples /proc for the daemon process: CPU seconds used and RSS, over
`--seconds` (default 300: the five idle minutes of issue 5). Linux only (/proc).

    .venv/bin/python bench/idle.py [--seconds 300]
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

PY = sys.executable
PASSWORD = "idle-bench-password"


def sample(pid: int) -> tuple[float, int]:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as f:
        rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    return cpu, rss_kb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--port", type=int, default=18443)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="m3daemon-idle-"))
    env = {**os.environ, "HOME": str(base), "XDG_CONFIG_HOME": str(base / "cfg"),
           "XDG_STATE_HOME": str(base / "state"), "XDG_CACHE_HOME": str(base / "cache"),
           "XDG_DATA_HOME": str(base / "data"), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    env.pop("M3DAEMON_CONFIG", None)

    def m3(*a: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([PY, "-m", "m3daemon", *a], env=env, input=stdin, capture_output=True, text=True,
                              check=False)

    m3("server", "init", str(base / "srv"))
    m3("server", "user", "add", str(base / "srv"), "av", "--role", "member", stdin=PASSWORD + "\n")
    server = subprocess.Popen([PY, "-m", "m3daemon", "server", "run", str(base / "srv"), "--port", str(args.port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemon = None
    try:
        fp = json.loads(m3("server", "info", str(base / "srv"), "--json").stdout)["ca_fingerprint_sha256"]
        for _ in range(100):
            done = m3("setup", "--url", f"https://127.0.0.1:{args.port}", "--username", "av", "--folder", "/",
                      "--media-dir", str(base / "media"), "--password-stdin", "--ca-fingerprint", fp,
                      stdin=PASSWORD + "\n")
            if done.returncode == 0:
                break
            time.sleep(0.1)
        else:
            print(done.stderr, file=sys.stderr)
            return 1
        daemon = subprocess.Popen([PY, "-m", "m3daemon", "run", "--no-tray"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            st = m3("status", "--json")
            if st.returncode == 0 and json.loads(st.stdout).get("state") == "up-to-date":
                break
            time.sleep(0.1)
        cpu0, rss0 = sample(daemon.pid)
        t0, peak = time.monotonic(), rss0
        while time.monotonic() - t0 < args.seconds:
            time.sleep(min(10.0, args.seconds))
            peak = max(peak, sample(daemon.pid)[1])
        cpu1, rss1 = sample(daemon.pid)
        elapsed = time.monotonic() - t0
        print(json.dumps({
            "idle_seconds": round(elapsed, 1), "cpu_seconds": round(cpu1 - cpu0, 3),
            "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / elapsed, 3),
            "rss_mb_start": round(rss0 / 1024, 1), "rss_mb_end": round(rss1 / 1024, 1),
            "rss_mb_peak": round(peak / 1024, 1),
        }, indent=2))
        return 0
    finally:
        for proc in (daemon, server):
            if proc is not None:
                proc.terminate()
                proc.wait(30)


if __name__ == "__main__":
    raise SystemExit(main())
