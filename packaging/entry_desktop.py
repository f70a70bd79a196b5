"""PyInstaller's entry script of the desktop builds: ``m3daemonw.exe`` (Windows, windowed) and
``m3daemon.app`` (macOS). Started from the login entry, a double click or ``open -a``.

Without arguments it runs the daemon for every configured congregation (``run --all``), as the
Linux desktop entry does. A windowed program has no console: ``sys.stdout``/``sys.stderr`` are
None, and a print would raise, so they go to the null device (the daemon logs to its log folder).
macOS's Finder may add a ``-psn_…`` argument (process serial number): it is dropped.
"""

import os
import sys

from m3daemon.cli.main import main

for name in ("stdout", "stderr"):
    if getattr(sys, name) is None:
        setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - for the process's life
args = [a for a in sys.argv[1:] if not a.startswith("-psn_")]
raise SystemExit(main(args or ["run", "--all"]))
