"""Testing a connection before it is saved, for ``m3daemon setup`` and the dashboard's setup page.

Both front-ends say the same thing about what they found, and neither imports the other.
"""

from __future__ import annotations

from m3daemon.core.dates import infer_weekday_language
from m3daemon.core.model import FORCED_PREFS, HIDDEN, MEDIA
from m3daemon.engine.context import open_session
from m3daemon.i18n import _
from m3daemon.remote.listing import list_children
from m3daemon.settings.config import Config


def check_connection(cfg: Config, password: str) -> str:
    """List the folder once and describe what is there, in words a member understands."""
    with open_session(cfg, password=password) as session:
        entries = list_children(session, ())
    names = {e.name for e in entries}
    found = []
    found.append(_("Media folder: yes") if "Media" in names else _("Media folder: not yet (the coordinator creates it)"))
    found.append(_("Congregation settings: yes") if FORCED_PREFS in names else _("Congregation settings: none"))
    return _("Connected. ") + "; ".join(found) + "."


def server_weekday_language(cfg: Config, password: str) -> str | None:
    """The language of the weekday names in the server's date folders (``06-12-2026 - dimanche``),
    so that a folder this computer names matches the ones M³ 22–24 clients named."""
    with open_session(cfg, password=password) as session:
        tops = {e.name for e in list_children(session, ()) if e.is_dir}
        names = [e.name for top in (MEDIA, HIDDEN) if top in tops for e in list_children(session, (top,)) if e.is_dir]
    return infer_weekday_language(names)
