"""M³ settings: the key schema (the 49 forcable keys and the local ones, their types and ranges),
and the dotted ⇄ nested forms.

Why this module exists: ``forcedPrefs.json`` is written by whoever has write access to the shared
folder, with any M³ version since 2021 or by hand. M³ merges *every* key of it into the local settings
without filtering (reference §3.3). m3daemon applies only the 49 keys M³ allows a coordinator to force
(reference §3.2, ``constants/prefs.ts`` FORCABLE), each checked against the type and range of M³'s
settings schema (``plugins/prefs.ts``), and reports everything else so the user can be warned.

Keys are handled in their dotted form (``"meeting.mwDay"``, ``"app.obs.port"``) everywhere; the nested
form exists only at the edges (the JSON file, the TOML tables).

Pure module: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from types import MappingProxyType
from typing import Any

from m3daemon.core.dates import DATE_FORMATS, DEFAULT_DATE_FORMAT
from m3daemon.i18n import _, _l

ROOTS: tuple[str, ...] = ("app", "cong", "media", "meeting")
"""Root sections of M³'s settings. ``cong`` (the connection) is never forcable."""

GROUPS: tuple[str, ...] = ("app.obs", "app.zoom")
"""The only sections that nest one level deeper (reference §3.1)."""

MAX_RES: tuple[str, ...] = ("240p", "360p", "480p", "720p")
MUSIC_FADE_OUT_TYPES: tuple[str, ...] = ("smart", "timer")


# --- the key table -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What one M³ setting may hold.

    ``value_type`` is a short machine tag (``bool``, ``int``, ``str``, ``enum``, ``time``, ``date``,
    ``list``, ``port``, ``lang``, ``output``) for front ends that build forms; ``kind`` says the same for
    a person. ``null`` is accepted for every key: M³ writes it for a forced setting that is not set.
    """

    key: str
    value_type: str
    kind: str
    validator: Callable[[Any], Any] = field(repr=False, compare=False)

    def check(self, value: Any) -> Any:
        """Return the normalized value, or raise ``ValueError`` with a short reason."""
        if value is None:
            return None
        try:
            return self.validator(value)
        except (ValueError, TypeError):
            raise ValueError(
                _("expected {kind} or null, got {value}").format(kind=self.kind, value=_show(value))
            ) from None


def _show(value: Any) -> str:
    """A value as the user wrote it (JSON spelling: ``true``, ``null``), cut to a readable length."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bool(value: Any) -> bool:
    # JSON true/false only: 0/1 or "true" would mean a hand-edited or foreign file, and M³'s schema
    # refuses them too.
    if type(value) is not bool:
        raise ValueError
    return value


def _whole(value: Any) -> int:
    """A JSON number with no fraction. ``2.0`` is the same JSON number as ``2``; ``true`` is not one."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise ValueError


def _int_range(low: int, high: int, step: int = 1) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        n = _whole(value)
        if not low <= n <= high or (n - low) % step:
            raise ValueError
        return n

    return check


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _enum(values: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in values:
            raise ValueError
        return value

    return check


_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")


def _time(value: Any) -> str:
    """``"HH:mm"``; ``"9:30"`` is accepted and written back as ``"09:30"``. A TOML local time
    (``mwStartTime = 19:30:00``, unquoted) arrives as ``datetime.time`` and is accepted too."""
    if isinstance(value, time) and value.second == 0 and value.microsecond == 0 and value.tzinfo is None:
        return f"{value.hour:02d}:{value.minute:02d}"
    if not isinstance(value, str):
        raise TypeError
    m = _TIME.fullmatch(value)
    if m is None:
        raise ValueError
    hour, minute = int(m.group(1)), int(m.group(2))
    if hour > 23 or minute > 59:
        raise ValueError
    return f"{hour:02d}:{minute:02d}"


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> str:
    """``"YYYY-MM-DD"``; a TOML date (``coWeek = 2024-07-15``, unquoted) is accepted too."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if not isinstance(value, str) or _ISO_DATE.fullmatch(value) is None:
        raise ValueError
    return date.fromisoformat(value).isoformat()  # raises ValueError for 2024-02-30


def _text_list(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError
    return list(value)


def _port(value: Any) -> str | None:
    """M³ stores the OBS port as a string; a number is accepted and stored the way M³ does."""
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return None
        if not text.isascii() or not text.isdigit():
            raise ValueError
        n = int(text)
    else:
        n = _whole(value)
    if not 1 <= n <= 65535:
        raise ValueError
    return str(n)


_JW_LANG = re.compile(r"[A-Za-z0-9_-]{1,16}")


def _jw_lang(value: Any) -> str:
    """A JW language symbol (``E``, ``S``, ``TPO``, ``ASL``). It becomes a folder name in the classic
    layout (``<media>/<lang>/<date>/``), so only a short run of letters, digits, ``-`` and ``_`` passes."""
    if not isinstance(value, str) or _JW_LANG.fullmatch(value) is None:
        raise ValueError
    return value


_UI_LANG = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*")


def _ui_lang(value: Any) -> str:
    if not isinstance(value, str) or _UI_LANG.fullmatch(value) is None:
        raise ValueError
    return value


def _output(value: Any) -> str | int:
    """``media.preferredOutput``: ``"window"`` or a display id (M³ schema: string or number)."""
    if isinstance(value, str):
        return value
    return _whole(value)


def _spec(key: str, value_type: str, kind: str, validator: Callable[[Any], Any]) -> tuple[str, KeySpec]:
    return key, KeySpec(key, value_type, kind, validator)


_BOOL = _l("true or false")
_TEXT = _l("a text")


def _one_of(values: tuple[str, ...]) -> str:
    return _l("one of {values}").format(values=", ".join(f'"{v}"' for v in values))


# The 49 keys of M³ 24.4.1 FORCABLE (reference §3.2), alphabetical as in constants/prefs.ts; types,
# ranges and enums from the electron-store schema in plugins/prefs.ts.
FORCABLE: Mapping[str, KeySpec] = MappingProxyType(
    dict(
        [
            _spec("app.congregationName", "str", _TEXT, _text),
            _spec("app.obs.cameraScene", "str", _TEXT, _text),
            _spec("app.obs.enable", "bool", _BOOL, _bool),
            _spec("app.obs.imageScene", "str", _TEXT, _text),
            _spec("app.obs.mediaScene", "str", _TEXT, _text),
            _spec("app.obs.password", "str", _TEXT, _text),
            _spec("app.obs.port", "port", _l("a port number 1–65535"), _port),
            _spec("app.outputFolderDateFormat", "enum", _one_of(DATE_FORMATS), _enum(DATE_FORMATS)),
            _spec("app.zoom.autoRename", "list", _l("a list of texts"), _text_list),
            _spec("app.zoom.autoStartMeeting", "bool", _BOOL, _bool),
            _spec("app.zoom.autoStartTime", "int", _l("a whole number 1–10"), _int_range(1, 10)),
            _spec("app.zoom.enable", "bool", _BOOL, _bool),
            _spec("app.zoom.hideComponent", "bool", _BOOL, _bool),
            _spec("app.zoom.id", "str", _TEXT, _text),
            _spec("app.zoom.name", "str", _TEXT, _text),
            _spec("app.zoom.password", "str", _TEXT, _text),
            _spec("app.zoom.spotlight", "bool", _BOOL, _bool),
            _spec("media.autoPlayFirst", "bool", _BOOL, _bool),
            _spec("media.autoPlayFirstTime", "int", _l("a whole number 1–15"), _int_range(1, 15)),
            _spec("media.enableMediaDisplayButton", "bool", _BOOL, _bool),
            _spec("media.enableMp4Conversion", "bool", _BOOL, _bool),
            _spec("media.enablePp", "bool", _BOOL, _bool),
            _spec("media.enableSubtitles", "bool", _BOOL, _bool),
            _spec("media.enableVlcPlaylistCreation", "bool", _BOOL, _bool),
            _spec("media.excludeLffImages", "bool", _BOOL, _bool),
            _spec("media.excludeTh", "bool", _BOOL, _bool),
            _spec("media.hideMediaLogo", "bool", _BOOL, _bool),
            _spec("media.hideWinAfterMedia", "bool", _BOOL, _bool),
            _spec("media.includePrinted", "bool", _BOOL, _bool),
            _spec("media.keepOriginalsAfterConversion", "bool", _BOOL, _bool),
            _spec("media.lang", "lang", _l("a JW language code such as E or S"), _jw_lang),
            _spec("media.langFallback", "lang", _l("a JW language code such as E or S"), _jw_lang),
            _spec("media.langSubs", "lang", _l("a JW language code such as E or S"), _jw_lang),
            _spec("media.maxRes", "enum", _one_of(MAX_RES), _enum(MAX_RES)),
            _spec("media.ppBackward", "str", _TEXT, _text),
            _spec("media.ppForward", "str", _TEXT, _text),
            _spec("media.preferredOutput", "output", _l('"window" or a display number'), _output),
            _spec("meeting.autoStartMusic", "bool", _BOOL, _bool),
            _spec("meeting.coWeek", "date", _l("a date YYYY-MM-DD"), _iso_date),
            _spec("meeting.enableMusicButton", "bool", _BOOL, _bool),
            _spec("meeting.enableMusicFadeOut", "bool", _BOOL, _bool),
            _spec(
                "meeting.musicFadeOutTime", "int", _l("a multiple of 5 from 5 to 60"), _int_range(5, 60, 5)
            ),
            _spec(
                "meeting.musicFadeOutType", "enum", _one_of(MUSIC_FADE_OUT_TYPES), _enum(MUSIC_FADE_OUT_TYPES)
            ),
            _spec("meeting.musicVolume", "int", _l("a whole number 1–100"), _int_range(1, 100)),
            _spec("meeting.mwDay", "int", _l("a weekday number 0–6 (0 = Monday)"), _int_range(0, 6)),
            _spec("meeting.mwStartTime", "time", _l("a time HH:mm (00:00–23:59)"), _time),
            _spec("meeting.specialCong", "bool", _BOOL, _bool),
            _spec("meeting.weDay", "int", _l("a weekday number 0–6 (0 = Monday)"), _int_range(0, 6)),
            _spec("meeting.weStartTime", "time", _l("a time HH:mm (00:00–23:59)"), _time),
        ]
    )
)

LOCAL_KEYS: Mapping[str, KeySpec] = MappingProxyType(
    dict(
        [
            # Not forcable in M³, but it decides the weekday names of ``dddd`` date folders (§1.2).
            _spec("app.localAppLang", "lang", _l("a language code such as en or fr"), _ui_lang),
        ]
    )
)
"""Settings m3daemon reads locally that a congregation cannot force."""

_KNOWN: Mapping[str, KeySpec] = MappingProxyType({**FORCABLE, **LOCAL_KEYS})

DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "app.localAppLang": None,
        "app.outputFolderDateFormat": DEFAULT_DATE_FORMAT,
        "media.lang": "E",
        "meeting.coWeek": None,
        "meeting.mwDay": None,
        "meeting.mwStartTime": None,
        "meeting.weDay": None,
        "meeting.weStartTime": None,
    }
)
"""Values used when neither the local ``[prefs]`` nor the congregation sets the key."""


def spec_for(key: str) -> KeySpec | None:
    """The spec of a forcable or local-only key, ``None`` for a key m3daemon does not know."""
    return _KNOWN.get(key)


def _known_spec(key: str) -> KeySpec:
    spec = _KNOWN.get(key)
    if spec is None:
        raise ValueError(_("{key} is not a setting m3daemon knows.").format(key=key))
    return spec


def validate_pref(key: str, value: Any) -> Any:
    """Check ``value`` for ``key`` and return it normalized.

    Raises ``ValueError`` whose message names the key and what it expects, ready to show.
    """
    spec = _known_spec(key)
    try:
        return spec.check(value)
    except ValueError as e:
        raise ValueError(_("{key}: {reason}.").format(key=key, reason=e)) from None


_TRUE_WORDS = frozenset({"true", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "no", "off"})


def parse_pref_text(key: str, text: str) -> Any:
    """Turn what a person typed (``2``, ``true``, ``null``, ``19:30``, ``["a","b"]``) into the value.

    ``null`` clears any key. Otherwise the text is read as JSON first, and as plain text when that does
    not fit the key, so ``E``, ``19:30`` or ``2024-07-15`` need no quotes, and a congregation called
    ``123`` stays a text.
    """
    spec = _known_spec(key)
    stripped = text.strip()
    if stripped == "null":
        return None
    candidates: list[Any] = []
    if spec.value_type == "bool":
        word = stripped.lower()
        if word in _TRUE_WORDS:
            candidates.append(True)
        elif word in _FALSE_WORDS:
            candidates.append(False)
    else:
        try:
            candidates.append(json.loads(stripped))
        except (ValueError, RecursionError):
            pass
        candidates.append(stripped)
    for candidate in candidates:
        try:
            return spec.check(candidate)
        except ValueError:
            continue
    return validate_pref(key, stripped)  # raises with the standard message


# --- nested <-> dotted ---------------------------------------------------------------------------


def flatten(nested: Mapping[str, Any]) -> dict[str, Any]:
    """``{"meeting": {"mwDay": 2}, "app": {"obs": {"port": "4455"}}}`` → dotted keys.

    Only the shape M³ uses is unfolded: root sections, and one level more for ``app.obs`` and
    ``app.zoom``. A mapping anywhere else stays a value (and then fails validation), so that nothing
    is silently re-interpreted. A root value that is not a mapping keeps its root key.
    """
    flat: dict[str, Any] = {}
    for root, section in nested.items():
        if not isinstance(section, Mapping):
            flat[root] = section
            continue
        for name, value in section.items():
            dotted = f"{root}.{name}"
            if dotted in GROUPS and isinstance(value, Mapping):
                for sub, sub_value in value.items():
                    flat[f"{dotted}.{sub}"] = sub_value
            else:
                flat[dotted] = value
    return flat


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys → nested dicts, in the order given. Raises ``ValueError`` when one key would be
    both a value and a section (``"app.obs"`` and ``"app.obs.port"``)."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        parts = dotted.split(".")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # a clash of keys, not a wrong argument type
                raise ValueError(_("{key} is both a value and a section.").format(key=dotted))  # noqa: TRY004
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise ValueError(_("{key} is both a value and a section.").format(key=dotted))  # noqa: TRY004
        node[parts[-1]] = value
    return out


