"""Translation: every user-facing string goes through ``_()`` (``ngettext`` where a number decides).

Catalogues live in ``m3daemon/locale/<lang>/LC_MESSAGES/m3daemon.po``; the build compiles each into
an ``.mo`` beside it (``setup.py``, ``packaging/build.sh``). A checkout without compiled catalogues
compiles the ``.po`` in memory on first use, so a ``.mo`` can never be out of step with its ``.po``:
an ``.mo`` older than its ``.po`` is ignored.

The language is chosen per context (:func:`use_language`), not once per process: the daemon's
dashboard serves several congregations, each in its own language, from one process. The CLI and
the tray set it once (:func:`set_language`). Which language: :func:`choose_language`.

Exit codes, JSON output and log files stay English: log messages are not passed through ``_()``.
"""

from __future__ import annotations

import gettext
import io
import locale
import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Self

DOMAIN = "m3daemon"
LOCALE_DIR = Path(__file__).parent / "locale"
SOURCE_LANGUAGE = "en"

_cache: dict[str, gettext.NullTranslations] = {}
_cache_lock = threading.Lock()
_process_language = SOURCE_LANGUAGE
_current: ContextVar[str | None] = ContextVar("m3daemon_language", default=None)


def available_languages() -> list[str]:
    """The catalogue languages shipped (``["de", "es", …, "pt_BR"]``), English not included."""
    if not LOCALE_DIR.is_dir():
        return []
    return sorted(
        d.name for d in LOCALE_DIR.iterdir()
        if (d / "LC_MESSAGES" / f"{DOMAIN}.po").is_file() or (d / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file()
    )


def _load(lang: str) -> gettext.NullTranslations:
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    try:
        if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
            with mo.open("rb") as f:
                return gettext.GNUTranslations(f)
        if po.is_file():
            return gettext.GNUTranslations(io.BytesIO(compile_po(po)))
    except (OSError, ValueError):
        pass
    return gettext.NullTranslations()


def compile_po(po: Path) -> bytes:
    """The ``.mo`` bytes of a ``.po`` file (Babel). Fuzzy entries are left out, as msgfmt does."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as f:
        catalog = read_po(f, locale=po.parent.parent.name, domain=DOMAIN)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def translation(lang: str) -> gettext.NullTranslations:
    if lang == SOURCE_LANGUAGE or not lang:
        return gettext.NullTranslations()
    with _cache_lock:
        t = _cache.get(lang)
        if t is None:
            t = _cache[lang] = _load(lang)
        return t


def current_language() -> str:
    return _current.get() or _process_language


def set_language(lang: str) -> None:
    """The language of this process (CLI, tray, notifications)."""
    global _process_language
    _process_language = lang or SOURCE_LANGUAGE


def push_language(lang: str) -> Token[str | None]:
    """Set this context's language until :func:`pop_language` (for request hooks)."""
    return _current.set(lang or SOURCE_LANGUAGE)


def pop_language(token: Token[str | None]) -> None:
    _current.reset(token)


@contextmanager
def use_language(lang: str) -> Iterator[None]:
    """The language of one request or task, in this thread or coroutine only."""
    token = _current.set(lang or SOURCE_LANGUAGE)
    try:
        yield
    finally:
        _current.reset(token)


class Translated(str):
    """A translated text that remembers its English source (:func:`english`), so that log files can
    stay English while people read their own language. ``format`` keeps both in step."""

    english: str

    def __new__(cls, text: str, source: str | None = None) -> Self:
        obj = super().__new__(cls, text)
        obj.english = text if source is None else source
        return obj

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]  # copy, deepcopy, pickle
        return (str.__str__(self), self.english)

    def format(self, *args: object, **kwargs: object) -> str:
        return Translated(
            str.format(self, *args, **kwargs),
            self.english.format(*(_source(a) for a in args), **{k: _source(v) for k, v in kwargs.items()}),
        )


def _source(value: object) -> object:
    if isinstance(value, Translated):
        return value.english
    if isinstance(value, LazyText):
        return value.msgid
    return value


def english(value: object) -> object:
    """The English form of a text made with ``_()`` (any other value as it is)."""
    return _source(value)


class EnglishLogs(logging.Filter):
    """Log files stay English: texts made with ``_()`` are logged in their English form."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = english(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(english(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: english(v) for k, v in record.args.items()}
        return True


def _(message: str) -> str:
    lang = current_language()
    if lang == SOURCE_LANGUAGE:
        return message
    return Translated(translation(lang).gettext(message), message)


def ngettext(singular: str, plural: str, n: int) -> str:
    lang = current_language()
    source = singular if n == 1 else plural
    if lang == SOURCE_LANGUAGE:
        return source
    return Translated(translation(lang).ngettext(singular, plural, n), source)


class LazyText(str):
    """A text defined at import time and translated when shown.

    Module-level tables (command help, setting descriptions, provider notes) are built before the
    language is known; their texts are marked with :func:`_l` instead of ``_()``. ``str()``,
    ``print``, ``format``/f-strings and Jinja (``__html__``) show the translation; ``json.dumps`` and
    ``+`` see the English source text, which is what JSON and logs want.
    """

    def __str__(self) -> str:
        return _(self.msgid)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(str(self)))

    @property
    def msgid(self) -> str:
        return str.__str__(self)

    def format(self, *args: object, **kwargs: object) -> str:
        return _LazyFormatted(self.msgid, args, kwargs)


class _LazyFormatted(LazyText):
    """``_l("one of {values}").format(values=…)``: translated first, then filled in, when shown."""

    def __new__(cls, msgid: str, args: tuple[object, ...], kwargs: dict[str, object]) -> Self:
        obj = super().__new__(cls, msgid.format(*args, **kwargs))
        obj._template, obj._args, obj._kwargs = msgid, args, kwargs
        return obj

    _template: str
    _args: tuple[object, ...]
    _kwargs: dict[str, object]

    def __getnewargs__(self) -> tuple[str, tuple[object, ...], dict[str, object]]:  # type: ignore[override]
        return (self._template, self._args, self._kwargs)

    def __str__(self) -> str:
        return _(self._template).format(*self._args, **self._kwargs)

    @property
    def msgid(self) -> str:
        return self._template


def _l(message: str) -> str:
    return LazyText(message)


# --- dates and times in the user's language (CLDR data, through Babel) ------------------------------


def babel_locale(lang: str | None = None) -> Any:
    from babel import Locale, UnknownLocaleError

    code = lang or current_language()
    try:
        return Locale.parse(code)
    except (ValueError, UnknownLocaleError):
        return Locale.parse(SOURCE_LANGUAGE)


def weekday_name(day: date | datetime, width: str = "wide") -> str:
    """"Thursday", "jeudi", "木曜日" (``width``: ``wide`` or ``abbreviated``)."""
    from babel.dates import format_date

    return str(format_date(day, "EEEE" if width == "wide" else "EEE", locale=babel_locale()))


def day_text(day: date | datetime, style: str = "full") -> str:
    """A date in words: ``full`` "Thursday, December 3, 2026", ``medium`` "Dec 3, 2026"."""
    from babel.dates import format_date

    return str(format_date(day, style, locale=babel_locale()))


def time_text(moment: datetime | time) -> str:
    """A time of day as the language writes it: "19:00", "7:00 PM", "19 h 00"."""
    from babel.dates import format_time

    return str(format_time(moment, "short", locale=babel_locale()))


# --- which language -----------------------------------------------------------------------------

# M³'s UI language codes that differ from our catalogue names (M³ uses BCP 47 such as "pt-BR").
_ALIASES: Mapping[str, str] = {"pt": "pt_BR", "zh": "zh_Hans"}


def normalize_language(code: str | None) -> str | None:
    """``"pt-BR"``, ``"pt_BR.UTF-8"``, ``"fr_FR"`` → the best shipped catalogue (``"pt_BR"``,
    ``"fr"``), ``"en"`` for English, ``None`` when nothing fits."""
    if not code:
        return None
    raw = code.strip().split(".", 1)[0].split("@", 1)[0].replace("-", "_")
    if not raw or raw.upper() in ("C", "POSIX"):
        return None
    parts = raw.split("_")
    base = parts[0].lower()
    if base == SOURCE_LANGUAGE:
        return SOURCE_LANGUAGE
    shipped = {lang.lower(): lang for lang in available_languages()}
    full = "_".join([base, *(p.upper() if len(p) == 2 else p.title() for p in parts[1:])])
    for candidate in (full, _ALIASES.get(base, ""), base):
        if candidate and candidate.lower() in shipped:
            return shipped[candidate.lower()]
    prefixed = sorted(name for key, name in shipped.items() if key.split("_")[0] == base)
    return prefixed[0] if prefixed else None


def system_language(environ: Mapping[str, str] | None = None) -> str | None:
    """The operating system's UI language: ``LANGUAGE``/``LC_ALL``/``LC_MESSAGES``/``LANG`` on Unix,
    the user's UI language on Windows, ``AppleLanguages`` on macOS."""
    env = os.environ if environ is None else environ
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var, "")
        for item in value.split(":"):
            found = normalize_language(item)
            if found:
                return found
    if sys.platform == "win32":  # pragma: no cover - Windows only
        try:
            import ctypes

            lcid = ctypes.windll.kernel32.GetUserDefaultUILanguage()
            return normalize_language(locale.windows_locale.get(lcid))
        except (AttributeError, OSError):
            return None
    if sys.platform == "darwin":  # pragma: no cover - macOS only
        try:
            import subprocess

            out = subprocess.run(["defaults", "read", "-g", "AppleLanguages"], capture_output=True,
                                 text=True, timeout=2, check=False).stdout
            for token in out.replace("(", " ").replace(")", " ").replace(",", " ").split():
                found = normalize_language(token.strip('"'))
                if found:
                    return found
        except (OSError, ValueError):
            return None
    return None


def choose_language(explicit: str | None = None, m3_ui_language: str | None = None,
                    environ: Mapping[str, str] | None = None) -> str:
    """In order: ``[congregation] language`` or ``--lang``, M³'s own UI language
    (``app.localAppLang``, forced or local), the operating system's, then English."""
    for candidate in (explicit, m3_ui_language):
        found = normalize_language(candidate)
        if found:
            return found
    return system_language(environ) or SOURCE_LANGUAGE
