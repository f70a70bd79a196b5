"""Handing the dashboard's login key to the user's browser without showing it to anyone else.

A key on the browser's command line (``http://127.0.0.1:PORT/login?key=…``) can be read by every
local user with ``ps`` or ``/proc/*/cmdline``; on a Kingdom Hall computer several people have an
account. So the tray and ``m3daemon dashboard`` open a *launch page* instead: a file in a folder
only this user can enter (mode 0700; the file 0600), holding a form that posts the key to the
dashboard at once. The browser's command line then names only the file. The key in it is also
single-use and expires after :data:`~m3daemon.dashboard.security.KEY_SECONDS`, and the page is
deleted when the key is used, so a copy of the page is worth nothing either.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from html import escape
from pathlib import Path

import platformdirs

from m3daemon.i18n import _
from m3daemon.local import paths

PREFIX = "dashboard-"


def launch_folder() -> Path:
    """``$XDG_RUNTIME_DIR/m3daemon`` where there is one (a tmpfs only this user can enter), else a
    folder in the user's cache; made 0700 (an existing one is set to 0700: it is ours)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "m3daemon" if runtime and Path(runtime).is_dir() else (
        platformdirs.user_cache_path("m3daemon", appauthor=False) / "launch")
    folder = paths.ensure_private_dir(base)
    if os.name == "posix":
        os.chmod(folder, 0o700)
    return folder


def launch_page(base_url: str, key: str, cid: int | None, page: str | None = None) -> str:
    """The page's HTML: a form that posts ``key`` to ``base_url/login`` as soon as it loads
    (``page``: the dashboard page to open, such as ``connection``)."""
    congregation = f'<input type="hidden" name="c" value="{int(cid)}">' if cid else ""
    if page:
        congregation += f'<input type="hidden" name="p" value="{escape(page)}">'
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<title>{escape(_("m3daemon dashboard"))}</title></head>
<body><form id="login" method="post" action="{escape(base_url)}/login">
<input type="hidden" name="key" value="{escape(key)}">{congregation}
<p>{escape(_("Opening the dashboard …"))}</p>
<noscript><button type="submit">{escape(_("Open the dashboard"))}</button></noscript>
</form><script>document.getElementById("login").submit();</script></body></html>
"""


def write_launch_page(base_url: str, key: str, cid: int | None, folder: Path | None = None,
                      page: str | None = None) -> Path:
    """Write a launch page (0600, in :func:`launch_folder`) and return its path."""
    target = (folder or launch_folder()) / f"{PREFIX}{secrets.token_hex(8)}.html"
    paths.write_private_file(target, launch_page(base_url, key, cid, page).encode("utf-8"))
    return target


def remove_page(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()
