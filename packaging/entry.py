"""PyInstaller's entry script: the same as ``python -m m3daemon``."""

from m3daemon.cli.main import main

raise SystemExit(main())
