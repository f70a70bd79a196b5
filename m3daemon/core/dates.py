"""Congregation date folder names (``Media/<date>/``, ``Hidden/<date>/``).

M³ 22–24 names a date folder with the congregation's ``app.outputFolderDateFormat``, one of four
dayjs formats. The ``dddd`` variants append the weekday name in the *UI language of the client that
created the folder* (reference §1.2), so ``2024-07-17 - Wednesday`` and ``2024-07-17 - mercredi`` are
both "17 July 2024" written by two different machines.

Why the parser is lenient about the weekday and strict about everything else:

* We must read folders that any M³ client wrote, in any UI language, so the weekday text is never
  checked against a table or against the date: the date part alone decides (SPEC: all four formats are
  read whatever the congregation's format is).
* Every M³ client deletes directories whose name parses as a past date (reference §2.2). A lenient
  parser would let us treat ``2024-7-17`` or ``2024-07-17x`` as a date folder that no M³ client would
  produce; a strict one keeps us aligned with what M³ writes, and refuses Unicode digits (``٢٠٢٤``) that
  Python's ``\\d`` would accept.

Pure module: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from m3daemon.i18n import _

__all__ = [
    "DATE_FORMATS",
    "DEFAULT_DATE_FORMAT",
    "WEEKDAY_NAMES",
    "format_folder_date",
    "infer_weekday_language",
    "parse_folder_date",
    "parse_user_date",
    "validate_date_format",
    "weekday_name_for",
]

DATE_FORMATS: tuple[str, ...] = ("YYYY-MM-DD", "YYYY-MM-DD - dddd", "DD-MM-YYYY", "DD-MM-YYYY - dddd")
"""The enum of ``app.outputFolderDateFormat`` in M³'s settings schema, in M³'s order."""

DEFAULT_DATE_FORMAT = "YYYY-MM-DD"

# ASCII digits only: ``re``'s ``\d`` also matches Arabic-Indic and other Unicode digits.
_D = "[0-9]"
_ISO = re.compile(rf"({_D}{{4}})-({_D}{{2}})-({_D}{{2}})")
_DMY = re.compile(rf"({_D}{{2}})-({_D}{{2}})-({_D}{{4}})")
_WEEKDAY_SEP = " - "

# Weekday names as dayjs 1.11 writes them for ``dddd`` (its ``weekdays`` locale arrays), re-ordered
# Monday first so that ``names[d.weekday()]`` is the name of ``d``. M³ passes its UI language code to
# dayjs unchanged, so the keys are M³/dayjs locale codes (M³'s ``pt`` is Brazilian Portuguese but uses the
# dayjs ``pt`` table; both tables are lower case in dayjs 1.11).
WEEKDAY_NAMES: Mapping[str, tuple[str, str, str, str, str, str, str]] = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
    "pt": (
        "segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo",
    ),
    "pt-br": (
        "segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo",
    ),
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "ru": ("понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"),
    "pl": ("poniedziałek", "wtorek", "środa", "czwartek", "piątek", "sobota", "niedziela"),
    "ro": ("Luni", "Marți", "Miercuri", "Joi", "Vineri", "Sâmbătă", "Duminică"),
    "uk": ("понеділок", "вівторок", "середа", "четвер", "п’ятниця", "субота", "неділя"),
    "sv": ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"),
    "fi": ("maanantai", "tiistai", "keskiviikko", "torstai", "perjantai", "lauantai", "sunnuntai"),
    "da": ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag"),
    "et": ("esmaspäev", "teisipäev", "kolmapäev", "neljapäev", "reede", "laupäev", "pühapäev"),
    "hu": ("hétfő", "kedd", "szerda", "csütörtök", "péntek", "szombat", "vasárnap"),
    "ja": ("月曜日", "火曜日", "水曜日", "木曜日", "金曜日", "土曜日", "日曜日"),
    "ko": ("월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일"),
    "zh": ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
    "zh-cn": ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
}


def validate_date_format(fmt: str) -> str:
    """Return ``fmt`` if it is one of :data:`DATE_FORMATS`, else raise ``ValueError``.

    The message lists the allowed values, because this is what a person sees after a typo in the
    configuration or on the command line.
    """
    if fmt in DATE_FORMATS:
        return fmt
    allowed = ", ".join(f'"{f}"' for f in DATE_FORMATS)
    raise ValueError(
        _("Unknown date format {fmt!r}. Allowed values: {allowed}.").format(fmt=fmt, allowed=allowed)
    )


def _weekday_text_ok(text: str) -> bool:
    """A weekday name from any dayjs locale: some letters, nothing that could act as a path or control.

    Not compared with a table: a client with a UI language we do not know must still be understood.
    Edge spaces are refused because dayjs never writes them and ``"<date> -  x"`` is not M³'s shape.
    """
    if not text or text != text.strip():
        return False
    if "/" in text or "\\" in text:
        return False
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        return False
    return any(ch.isalpha() for ch in text)


def _make_date(year: str, month: str, day: str) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def parse_folder_date(name: str) -> tuple[date, str] | None:
    """Read a date folder name in any of the four M³ formats.

    Returns ``(date, format)`` where ``format`` is the member of :data:`DATE_FORMATS` the name is in,
    or ``None`` when the name is not exactly ``<date>`` or ``<date> - <weekday>`` (``Recurring``,
    ``2024-7-17``, ``2024-07-17x``, an impossible date such as ``2024-02-30`` …).
    """
    head, sep, weekday = name.partition(_WEEKDAY_SEP)
    if sep and not _weekday_text_ok(weekday):
        return None
    m = _ISO.fullmatch(head)
    if m is not None:
        d = _make_date(m.group(1), m.group(2), m.group(3))
        fmt = "YYYY-MM-DD - dddd" if sep else "YYYY-MM-DD"
    else:
        m = _DMY.fullmatch(head)
        if m is None:
            return None
        d = _make_date(m.group(3), m.group(2), m.group(1))
        fmt = "DD-MM-YYYY - dddd" if sep else "DD-MM-YYYY"
    if d is None:
        return None
    return d, fmt


def _lang_key(lang: str) -> str | None:
    """Find the table entry for a UI language code (``fr``, ``fr-FR``, ``pt_BR``, ``ZH-CN`` …)."""
    code = lang.strip().lower().replace("_", "-")
    if code in WEEKDAY_NAMES:
        return code
    base = code.split("-", 1)[0]
    if base in WEEKDAY_NAMES:
        return base
    return None


def weekday_name_for(d: date, lang: str) -> str:
    """The weekday name dayjs writes for ``dddd`` in UI language ``lang``; English if unknown.

    Used only when *we* create a ``dddd`` folder (coordinator uploads); reading never needs it.
    """
    key = _lang_key(lang) or "en"
    return WEEKDAY_NAMES[key][d.weekday()]


def infer_weekday_language(names: Iterable[str]) -> str | None:
    """The UI language whose weekday names the ``dddd`` folders among ``names`` use, or None.

    Each folder votes for every language whose name for that date's weekday is the folder's text
    (``17-07-2024 - mercredi`` votes ``fr``); the language with most votes wins, the table's order
    breaking ties (``sábado`` is Spanish and Portuguese alike). Folders without a weekday, or with
    one no table knows, do not vote.
    """
    votes: dict[str, int] = {}
    for name in names:
        parsed = parse_folder_date(name)
        if parsed is None or not parsed[1].endswith("dddd"):
            continue
        text = name.partition(_WEEKDAY_SEP)[2].casefold()
        for lang, table in WEEKDAY_NAMES.items():
            if table[parsed[0].weekday()].casefold() == text:
                votes[lang] = votes.get(lang, 0) + 1
    if not votes:
        return None
    order = list(WEEKDAY_NAMES)
    return max(votes, key=lambda lang: (votes[lang], -order.index(lang)))


def format_folder_date(d: date, fmt: str, weekday_name: str | None = None) -> str:
    """Write ``d`` the way M³ names the date folder in format ``fmt``.

    For the ``dddd`` formats the caller passes the weekday name in the congregation's UI language
    (see :func:`weekday_name_for`); without it the English name is used, as dayjs does by default.
    """
    validate_date_format(fmt)
    if fmt.startswith("YYYY"):
        text = f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    else:
        text = f"{d.day:02d}-{d.month:02d}-{d.year:04d}"
    if fmt.endswith("dddd"):
        name = weekday_name if weekday_name is not None else WEEKDAY_NAMES["en"][d.weekday()]
        if not _weekday_text_ok(name):
            raise ValueError(_("Unusable weekday name {name!r}.").format(name=name))
        text = f"{text}{_WEEKDAY_SEP}{name}"
    return text


_USER_WORDS: Mapping[str, int] = {"today": 0, "tomorrow": 1}


def parse_user_date(text: str, today: date) -> date:
    """A date typed on the command line: ``YYYY-MM-DD``, ``today`` or ``tomorrow``.

    ``today`` is passed in (not read from the clock) so that callers decide the time zone and tests
    are deterministic.
    """
    cleaned = text.strip()
    offset = _USER_WORDS.get(cleaned.lower())
    if offset is not None:
        return today + timedelta(days=offset)
    m = _ISO.fullmatch(cleaned)
    if m is not None:
        d = _make_date(m.group(1), m.group(2), m.group(3))
        if d is not None:
            return d
        raise ValueError(
            _("{text!r} is not a real date. Use the form YYYY-MM-DD, for example {example}.").format(
                text=text, example=today.isoformat()
            )
        )
    raise ValueError(
        _(
            "{text!r} is not a date. Use the form YYYY-MM-DD (for example {example}), "
            "or the word today or tomorrow."
        ).format(text=text, example=today.isoformat())
    )
