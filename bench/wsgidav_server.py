"""Run the test suite's WsgiDAV server (tests/servers.py) in its own process.

WsgiDAV is pure Python; hosted in the benchmark process it would share the GIL with the
in-process m3daemon runs and with the timing code. This child prints one JSON line
(url, root, ca_file, ...) and then answers line commands on stdin:

    log    -> one JSON line: [[method, path, status], ...] since the last clear
    clear  -> "ok"
    EOF    -> stop and exit
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from servers import ServerPool


def main() -> int:
    workdir = Path(sys.argv[1])
    pool = ServerPool(workdir)
    srv = pool.get("wsgidav")
    print(json.dumps({
        "url": srv.url, "root": str(srv.root), "ca_file": str(srv.ca_file),
        "username": srv.username, "password": srv.password,
    }), flush=True)
    try:
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "log":
                print(json.dumps(srv.request_log()), flush=True)
            elif cmd == "clear":
                srv.clear_log()
                print("ok", flush=True)
            elif cmd == "stop":
                break
            else:
                print(json.dumps({"error": f"unknown command {cmd!r}"}), flush=True)
    finally:
        pool.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
