"""m3daemon: congregation media sync for M³ (Meeting Media Manager)."""

__version__ = "0.1.0"
APP_NAME = "m3daemon"

# httpx imports its own command-line tool (click, rich, pygments: ~40 ms) whenever click is
# installed, which Flask brings. m3daemon never uses it; marking it absent keeps `update` quick.
import sys as _sys

_sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
