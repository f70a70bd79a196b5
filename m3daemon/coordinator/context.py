"""One coordinator session: configuration, connection, and what the congregation has decided.

The date folder a coordinator writes must be in the congregation's format
(``app.outputFolderDateFormat``, normally forced in ``forcedPrefs.json``), else every member reads
it but M³ 22–24 clients in that congregation do not (reference §1.2). So it is read from the
server at the start of each command that names a date folder, not from the last sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from m3daemon.core.dates import (
    DEFAULT_DATE_FORMAT,
    format_folder_date,
    infer_weekday_language,
    parse_folder_date,
    weekday_name_for,
)
from m3daemon.core.model import HIDDEN, MEDIA
from m3daemon.engine.context import Context
from m3daemon.i18n import _
from m3daemon.remote.http import DavSession
from m3daemon.remote.retry import RetryPolicy
from m3daemon.settings.config import Config

from .forced import ForcedFile, read_forced
from .writes import Writer


@dataclass
class Coordinator:
    """The congregation's context (from the engine) with a writer, for one command."""

    ctx: Context
    writer: Writer
    today: date  # the congregation's today, from its clock, unless a command names another
    warnings: list[str] = field(default_factory=list)
    _forced: ForcedFile | None = None
    _folders: list[tuple[str, str]] | None = None

    @classmethod
    @contextmanager
    def open(
        cls, cfg: Config, *, today: date | None = None, retry: RetryPolicy | None = None,
        password: str | None = None,
    ) -> Iterator[Coordinator]:
        with Context.of(cfg, retry=retry, password=password) as ctx:
            yield cls(ctx, Writer(ctx.session), today or ctx.clock.today())

    @property
    def cfg(self) -> Config:
        return self.ctx.cfg

    @property
    def session(self) -> DavSession:
        return self.ctx.session

    def forced(self) -> ForcedFile:
        """``forcedPrefs.json`` as the server holds it now (read once per command)."""
        if self._forced is None:
            self._forced = read_forced(self.writer)
            if self._forced.problem:
                self.warnings.append(
                    _("forcedPrefs.json cannot be read ({problem}); this computer's settings are used.")
                    .format(problem=self._forced.problem)
                )
        return self._forced

    def effective(self) -> dict[str, Any]:
        """The congregation's forced settings over this computer's own."""
        return self.ctx.prefs(self.forced().values).effective

    def date_format(self) -> str:
        return str(self.effective().get("app.outputFolderDateFormat") or DEFAULT_DATE_FORMAT)

    def date_folder(self, d: date, top: str = MEDIA) -> str:
        """The name of ``d``'s folder under ``top`` (``Media`` or ``Hidden``).

        A folder that already exists for that date is used whatever its name: M³ 22–24 members
        match folder names exactly, so ``06-12-2026 - Sunday`` next to M³'s ``06-12-2026 -
        dimanche`` would be a second folder for them, and a hide written there would not apply.
        For ``Hidden`` the name of the date's ``Media`` folder comes next. A new folder is written in
        the congregation's format, with the weekday names the existing folders use, else
        ``app.localAppLang``, else English.
        """
        effective = self.effective()
        fmt = str(effective.get("app.outputFolderDateFormat") or DEFAULT_DATE_FORMAT)
        existing = self._date_folders()
        for where in dict.fromkeys((top, MEDIA)):
            names = [n for t, n in existing if t == where and (p := parse_folder_date(n)) and p[0] == d]
            if names:
                return min(names, key=lambda n: (parse_folder_date(n) or (d, ""))[1] != fmt)
        ui_lang = (infer_weekday_language(n for _t, n in existing)
                   or str(effective.get("app.localAppLang") or "") or "en")
        return format_folder_date(d, fmt, weekday_name_for(d, ui_lang))

    def _date_folders(self) -> list[tuple[str, str]]:
        """``(Media|Hidden, name)`` of every date folder on the server (listed once per command)."""
        if self._folders is None:
            self._folders = [
                (top, e.name) for top in (MEDIA, HIDDEN) for e in self.writer.list_dir((top,)) or []
                if e.is_dir and parse_folder_date(e.name) is not None
            ]
        return self._folders

    def congregation_name(self) -> str:
        """``app.congregationName`` (forced or local), else the configuration's name."""
        return str(self.effective().get("app.congregationName") or self.cfg.name)
