"""Translation hook: every user-facing string goes through ``_()``.

Catalogues live in ``m3daemon/locale/<lang>/LC_MESSAGES/m3daemon.mo``; with none installed the
English source text is shown.
"""

from __future__ import annotations

import gettext
from pathlib import Path

_LOCALE_DIR = Path(__file__).parent / "locale"
_translation = gettext.translation("m3daemon", localedir=_LOCALE_DIR, fallback=True)


def _(message: str) -> str:
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation.ngettext(singular, plural, n)
