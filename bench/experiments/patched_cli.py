"""``python -m m3daemon`` with the experiment patches of patched.py, chosen by environment:
M3BENCH_DRAIN=1 -> DavSession on DrainingTransport; M3BENCH_RAW=1 -> iter_raw() without
re-chunking. Experiment only."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

if __name__ == "__main__":
    import patched

    from m3daemon.cli.main import main

    with patched.drain(os.environ.get("M3BENCH_DRAIN") == "1"), \
            patched.raw_chunks(os.environ.get("M3BENCH_RAW") == "1"):
        raise SystemExit(main())
