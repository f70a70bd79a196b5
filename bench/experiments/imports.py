"""What the `update` command's imports cost: wall time of `python -c "import X"` minus
`python -c pass`, median of --runs fresh processes, with a warm bytecode cache.

    .venv/bin/python bench/experiments/imports.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BLOCK_HTTPX_CLI = "import sys; sys.modules['httpx._main'] = None\n"

MODULES = [
    "m3daemon.cli.main, m3daemon.cli.update_cmd, m3daemon.engine.sync",  # what `update` imports up front
    # httpx/__init__.py tries `from ._main import main`; with click (Flask's), rich and pygments
    # installed that imports all three. Blocking the module makes httpx fall back to its stub.
    BLOCK_HTTPX_CLI + "import m3daemon.cli.main, m3daemon.cli.update_cmd, m3daemon.engine.sync",
    "m3daemon.settings.credentials",
    "keyring, keyring.backend, keyring.backends.chainer",
    "httpx",
    BLOCK_HTTPX_CLI + "import httpx",
    "urllib3",
    "pycurl",
    "sqlite3",
    "platformdirs",
    "tomli_w",
    "email.utils",
    "urllib.request",
]


def wall(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = "/dev/shm/m3bench-imports-pycache"
    codes = [m if m.startswith(BLOCK_HTTPX_CLI) else f"import {m}" for m in MODULES]
    for code in codes:  # warm the bytecode cache
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
    base = statistics.median(wall("pass", env) for _ in range(args.runs))
    print(f"python -c pass: {base * 1000:.1f} ms")
    for code in codes:
        t = statistics.median(wall(code, env) for _ in range(args.runs))
        label = code.replace(BLOCK_HTTPX_CLI, "[httpx._main blocked] ")
        print(f"{label}: +{(t - base) * 1000:.1f} ms")
    subprocess.run(["rm", "-rf", env["PYTHONPYCACHEPREFIX"]], check=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    raise SystemExit(main())
