"""Testing a connection before it is saved, for ``m3daemon setup`` and the dashboard's setup page.

Both front-ends say the same thing about what they found, and neither imports the other. Browsing
works from the connection being typed (nothing saved yet): a folder that is wrong is answered with
the folders that are there, never with "run browse after setup".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from m3daemon.core.dates import infer_weekday_language, parse_folder_date
from m3daemon.core.model import FORCED_PREFS, HIDDEN, MEDIA
from m3daemon.engine.context import open_session
from m3daemon.errors import M3Error
from m3daemon.i18n import _
from m3daemon.remote.listing import list_children
from m3daemon.settings.config import Config

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class FolderView:
    """One folder on the server, as a folder browser shows it."""

    path: str
    parent: str | None
    folders: tuple[str, ...]
    files: int

    def child(self, name: str) -> str:
        return f"{self.path.rstrip('/')}/{name}"


@dataclass(frozen=True)
class LevelHint:
    """The folder looks one level too deep or too high: the likely right one, and why."""

    suggested: str
    reason: str


def parent_of(folder: str) -> str | None:
    if folder in ("", "/"):
        return None
    return folder.rstrip("/").rsplit("/", 1)[0] or "/"


def with_folder(cfg: Config, folder: str) -> Config:
    assert cfg.connection is not None
    return replace(cfg, connection=replace(cfg.connection, folder=folder))


def browse(cfg: Config, password: str, folder: str | None = None) -> FolderView:
    """The folders in ``folder`` (default: the configured one) of the connection ``cfg`` describes."""
    assert cfg.connection is not None
    target = with_folder(cfg, folder) if folder is not None else cfg
    assert target.connection is not None
    with open_session(target, password=password) as session:
        entries = list_children(session, ())
    path = target.connection.folder
    dirs = tuple(sorted((e.name for e in entries if e.is_dir), key=str.lower))
    return FolderView(path, parent_of(path), dirs, sum(1 for e in entries if not e.is_dir))


def level_hint(cfg: Config, password: str, view: FolderView | None = None) -> LevelHint | None:
    """A congregation folder holds ``Media``; one that *is* ``Media``, holds date folders, or has no
    ``Media`` while one of its folders has, is most likely one level off."""
    view = view or browse(cfg, password)
    if MEDIA in view.folders:
        return None
    name = view.path.rstrip("/").rsplit("/", 1)[-1]
    parent = view.parent
    dated = [f for f in view.folders if parse_folder_date(f) is not None]
    if parent is not None and (name == MEDIA or dated):
        why = (_("{folder} is the Media folder itself") if name == MEDIA
               else _("{folder} holds date folders ({example}), as a Media folder does")).format(
            folder=view.path, example=dated[0] if dated else "")
        return LevelHint(parent, _("{why}: the congregation folder is the one above it, {parent}.").format(
            why=why, parent=parent))
    for child in view.folders[:20]:  # a handful of requests at most
        try:
            inner = browse(cfg, password, view.child(child))
        except M3Error:  # a folder we may not read is simply not the one
            log.debug("no look into %s", view.child(child), exc_info=True)
            continue
        if MEDIA in inner.folders:
            return LevelHint(inner.path, _("{folder} has no Media folder, but {inner} has one: that is most "
                                           "likely the congregation folder.").format(folder=view.path,
                                                                                     inner=inner.path))
    return None


def check_connection(cfg: Config, password: str) -> str:
    """List the folder once and describe what is there, in words a member understands."""
    with open_session(cfg, password=password) as session:
        entries = list_children(session, ())
    names = {e.name for e in entries}
    media = _("Media folder: yes") if MEDIA in names else _("Media folder: not yet (the coordinator creates it)")
    settings = _("Congregation settings: yes") if FORCED_PREFS in names else _("Congregation settings: none")
    return _("Connected. {media}; {settings}.").format(media=media, settings=settings)


def server_weekday_language(cfg: Config, password: str) -> str | None:
    """The language of the weekday names in the server's date folders (``06-12-2026 - dimanche``),
    so that a folder this computer names matches the ones M³ 22–24 clients named."""
    with open_session(cfg, password=password) as session:
        tops = {e.name for e in list_children(session, ()) if e.is_dir}
        names = [e.name for top in (MEDIA, HIDDEN) if top in tops for e in list_children(session, (top,)) if e.is_dir]
    return infer_weekday_language(names)


def watch_folder_advice(cfg: Config) -> str:
    """The last step of a setup: exactly how to point M³ at the media folder."""
    if cfg.local.layout == "classic":
        return _("Last step, in M³ 22–24 on this computer: open its settings and set the folder where M³ "
                 "saves media to {dir} (M³'s app.localOutputPath). Leave M³'s own congregation sync off.").format(
            dir=cfg.local.media_dir)
    return _("Last step, in M³ 25 or later on this computer: open its settings, turn on \"Enable Folder "
             "Watcher\" and set \"Folder to Watch\" to {dir}. M³ then adds each date's media from there.").format(
        dir=cfg.local.media_dir)
