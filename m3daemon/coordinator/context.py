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

from m3daemon.core.dates import DEFAULT_DATE_FORMAT, format_folder_date, weekday_name_for
from m3daemon.engine.context import Context
from m3daemon.i18n import _
from m3daemon.remote.http import DavSession, RetryPolicy
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

    def date_folder(self, d: date) -> str:
        """The name of ``d``'s folder under ``Media/`` and ``Hidden/`` in the congregation's format."""
        effective = self.effective()
        fmt = str(effective.get("app.outputFolderDateFormat") or DEFAULT_DATE_FORMAT)
        ui_lang = str(effective.get("app.localAppLang") or "en")
        return format_folder_date(d, fmt, weekday_name_for(d, ui_lang))

    def congregation_name(self) -> str:
        """``app.congregationName`` (forced or local), else the configuration's name."""
        return str(self.effective().get("app.congregationName") or self.cfg.name)
