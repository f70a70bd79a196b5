"""Choosing and importing pystray's backend (pystray picks one when it is imported).

Split from :mod:`m3daemon.tray`, which uses these to try one backend after another: on Linux
``appindicator``, then ``gtk`` (both need PyGObject), then ``xorg``; a user's ``PYSTRAY_BACKEND``
wins; macOS and Windows have pystray's own. With :mod:`m3daemon.tray`, the only modules that import
pystray.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from typing import Any

from m3daemon.errors import TrayUnavailable

log = logging.getLogger("m3daemon.tray")

LINUX_BACKENDS = ("appindicator", "gtk", "xorg")


def backend_name(icon_cls: Any) -> str:
    """"gtk" for pystray._gtk.Icon; the dummy backend's Icon is pystray._base.Icon itself."""
    name = str(getattr(icon_cls, "__module__", "")).rsplit(".", 1)[-1].lstrip("_")
    return "dummy" if name == "base" else name or "unknown"


def has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def have_gi() -> bool:
    try:
        return importlib.util.find_spec("gi") is not None
    except (ImportError, ValueError):
        return False


def candidates() -> list[str]:
    forced = os.environ.get("PYSTRAY_BACKEND")
    if forced:
        return [forced]
    if sys.platform == "darwin":
        return ["darwin"]
    if sys.platform == "win32":
        return ["win32"]
    return list(LINUX_BACKENDS) if have_gi() else ["xorg"]


def forget_pystray() -> None:
    for name in [n for n in sys.modules if n == "pystray" or n.startswith("pystray.")]:
        del sys.modules[name]


def name_the_program() -> None:
    """GTK names windows (WM_CLASS) after the program; run as ``python -m m3daemon`` that would be
    ``__main__.py``. Desktops group and remember the tray icon by that name."""
    try:
        from gi.repository import GLib

        GLib.set_prgname("m3daemon")
        GLib.set_application_name("m3daemon")
    except Exception:
        log.debug("could not set the program name", exc_info=True)


def import_pystray(backend: str) -> Any:
    """Import pystray with ``backend`` (pystray chooses at import time; re-import for another)."""
    loaded = sys.modules.get("pystray")
    if loaded is not None:
        if backend_name(getattr(loaded, "Icon", None)) == backend:
            return loaded
        forget_pystray()
    previous = os.environ.get("PYSTRAY_BACKEND")
    os.environ["PYSTRAY_BACKEND"] = backend
    if backend in ("gtk", "appindicator"):
        name_the_program()
    try:
        return importlib.import_module("pystray")
    except Exception as exc:  # no DISPLAY raises Xlib's DisplayNameError, not ImportError
        forget_pystray()
        raise TrayUnavailable(f"{type(exc).__name__}: {exc}") from exc
    finally:
        if previous is None:
            os.environ.pop("PYSTRAY_BACKEND", None)
        else:
            os.environ["PYSTRAY_BACKEND"] = previous


def refresh_open_menu(backend: str, icon: Any, menu: Any) -> bool:
    """Show ``menu`` in the menu that is open on the screen now; False when none is open.

    pystray's gtk backend (and appindicator's fallback to a status icon, as under trayer) builds
    a new ``Gtk.Menu`` on every change and leaves the one on the screen as it was: a person
    watching "Updating… 30 %" would see it forever. While a menu is mapped, its items are
    replaced by the new menu's, so it changes where it stands. Through a StatusNotifier host the
    menu is drawn by the desktop (dbusmenu), never mapped here, and pystray's own update refreshes
    it. Called on the loop thread; any surprise in pystray's internals means False (the plain
    update then runs).
    """
    if backend not in ("gtk", "appindicator"):
        return False
    try:
        shown = getattr(icon, "_menu_handle", None)
        if shown is None or not shown.get_mapped():
            return False
        fresh = icon._create_menu(menu)
        if fresh is None:
            return False
        for child in shown.get_children():
            shown.remove(child)
        for child in fresh.get_children():
            fresh.remove(child)
            shown.append(child)
        shown.show_all()
        icon._menu = menu  # what the `menu` property returns; the open Gtk.Menu stays the handle
        return True
    except Exception:  # the plain update is always there to fall back on
        log.debug("could not refresh the open menu in place", exc_info=True)
        return False
