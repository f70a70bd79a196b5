"""Where a date's media go on this computer (pure).

``watch`` (default) is M³ 25+'s "Folder to Watch": ``<media>/YYYY-MM-DD/<file>``, ISO dates
whatever the server's format. ``classic`` is M³ 22–24's output folder:
``<media>/<lang>/<date in the congregation format>/`` plus ``<media>/<lang>/Recurring/``.
All paths here are relative to the media folder, ``/``-separated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from m3daemon.core.dates import format_folder_date, parse_folder_date, weekday_name_for

STAGING_DIR = ".m3daemon"
SECTION_ORDER = ".section-order.json"  # M³ 25+'s own file: never touched
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class Layout:
    kind: Literal["watch", "classic"] = "watch"
    lang: str = "E"
    date_format: str = "YYYY-MM-DD"
    ui_lang: str = "en"  # weekday names of a classic folder the server has no name for
    # classic: the server's own folder name per date, used as it is (as M³ 22–24 did), so the
    # congregation's media and M³'s own for that date share one folder
    server_names: Mapping[date, str] = field(default_factory=dict, compare=False)

    @property
    def root(self) -> str:
        """The folder that holds the date folders ('' for the media folder itself)."""
        return "" if self.kind == "watch" else self.lang

    def date_dir(self, d: date) -> str:
        if self.kind == "watch":
            return d.isoformat()
        name = self.server_names.get(d) or format_folder_date(
            d, self.date_format, weekday_name_for(d, self.ui_lang))
        return f"{self.lang}/{name}"

    def recurring_dir(self) -> str | None:
        return f"{self.lang}/Recurring" if self.kind == "classic" else None

    def parse_date_dir(self, relpath: str) -> date | None:
        """The date of a date folder of this layout, or None for anything else."""
        head, _, name = relpath.rpartition("/")
        if head != self.root:
            return None
        if self.kind == "watch":
            if not _ISO_DATE.fullmatch(name):
                return None
            try:
                return date.fromisoformat(name)
            except ValueError:
                return None
        parsed = parse_folder_date(name)
        return parsed[0] if parsed else None


def join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name
