"""M³ settings: the forcable keys, their types, ``forcedPrefs.json`` and the local ``[prefs]`` table.

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

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from types import MappingProxyType
from typing import Any

from m3daemon.dates import DATE_FORMATS, DEFAULT_DATE_FORMAT
from m3daemon.i18n import _

__all__ = [
    "DEFAULTS",
    "FORCABLE",
    "LOCAL_KEYS",
    "ForcedPrefs",
    "KeySpec",
    "dump_forced_prefs",
    "effective_prefs",
    "flatten",
    "locked_keys",
    "migrate_legacy",
    "migrate_legacy_key",
    "nest",
    "normalize_local_prefs",
    "parse_forced_prefs",
    "parse_pref_text",
    "spec_for",
    "unknown_keys",
    "validate_pref",
]

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


_BOOL = _("true or false")
_TEXT = _("a text")


def _one_of(values: tuple[str, ...]) -> str:
    return _("one of {values}").format(values=", ".join(f'"{v}"' for v in values))


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
            _spec("app.obs.port", "port", _("a port number 1–65535"), _port),
            _spec("app.outputFolderDateFormat", "enum", _one_of(DATE_FORMATS), _enum(DATE_FORMATS)),
            _spec("app.zoom.autoRename", "list", _("a list of texts"), _text_list),
            _spec("app.zoom.autoStartMeeting", "bool", _BOOL, _bool),
            _spec("app.zoom.autoStartTime", "int", _("a whole number 1–10"), _int_range(1, 10)),
            _spec("app.zoom.enable", "bool", _BOOL, _bool),
            _spec("app.zoom.hideComponent", "bool", _BOOL, _bool),
            _spec("app.zoom.id", "str", _TEXT, _text),
            _spec("app.zoom.name", "str", _TEXT, _text),
            _spec("app.zoom.password", "str", _TEXT, _text),
            _spec("app.zoom.spotlight", "bool", _BOOL, _bool),
            _spec("media.autoPlayFirst", "bool", _BOOL, _bool),
            _spec("media.autoPlayFirstTime", "int", _("a whole number 1–15"), _int_range(1, 15)),
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
            _spec("media.lang", "lang", _("a JW language code such as E or S"), _jw_lang),
            _spec("media.langFallback", "lang", _("a JW language code such as E or S"), _jw_lang),
            _spec("media.langSubs", "lang", _("a JW language code such as E or S"), _jw_lang),
            _spec("media.maxRes", "enum", _one_of(MAX_RES), _enum(MAX_RES)),
            _spec("media.ppBackward", "str", _TEXT, _text),
            _spec("media.ppForward", "str", _TEXT, _text),
            _spec("media.preferredOutput", "output", _('"window" or a display number'), _output),
            _spec("meeting.autoStartMusic", "bool", _BOOL, _bool),
            _spec("meeting.coWeek", "date", _("a date YYYY-MM-DD"), _iso_date),
            _spec("meeting.enableMusicButton", "bool", _BOOL, _bool),
            _spec("meeting.enableMusicFadeOut", "bool", _BOOL, _bool),
            _spec(
                "meeting.musicFadeOutTime", "int", _("a multiple of 5 from 5 to 60"), _int_range(5, 60, 5)
            ),
            _spec(
                "meeting.musicFadeOutType", "enum", _one_of(MUSIC_FADE_OUT_TYPES), _enum(MUSIC_FADE_OUT_TYPES)
            ),
            _spec("meeting.musicVolume", "int", _("a whole number 1–100"), _int_range(1, 100)),
            _spec("meeting.mwDay", "int", _("a weekday number 0–6 (0 = Monday)"), _int_range(0, 6)),
            _spec("meeting.mwStartTime", "time", _("a time HH:mm (00:00–23:59)"), _time),
            _spec("meeting.specialCong", "bool", _BOOL, _bool),
            _spec("meeting.weDay", "int", _("a weekday number 0–6 (0 = Monday)"), _int_range(0, 6)),
            _spec("meeting.weStartTime", "time", _("a time HH:mm (00:00–23:59)"), _time),
        ]
    )
)

LOCAL_KEYS: Mapping[str, KeySpec] = MappingProxyType(
    dict(
        [
            # Not forcable in M³, but it decides the weekday names of ``dddd`` date folders (§1.2).
            _spec("app.localAppLang", "lang", _("a language code such as en or fr"), _ui_lang),
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


# --- legacy flat keys (M³ migrate2290) --------------------------------------------------------------

_LEGACY_ROOTS = frozenset({*ROOTS, "__internal__"})

# Keys that M³'s defaults place under media / meeting; any other legacy key goes under app.
# Union of the 22.9 defaults (constants/prefs.ts) and the 24.x schema (plugins/prefs.ts).
# excludeLffi / excludeLffiImages are listed as media on purpose: that is what they were, and the
# clean-up below then drops / renames them (24.x no longer had them in its media defaults and would
# have filed them under app, where they are dead).
_LEGACY_MEDIA_KEYS = frozenset(
    {
        "autoPlayFirst", "autoPlayFirstTime", "enableMediaDisplayButton", "enableMp4Conversion",
        "enablePp", "enableSubtitles", "enableVlcPlaylistCreation", "excludeFootnotes", "excludeLffi",
        "excludeLffiImages", "excludeLffImages", "excludeTh", "hideMediaLogo", "hideWinAfterMedia",
        "includePrinted", "keepOriginalsAfterConversion", "lang", "langFallback", "langSubs",
        "langUpdatedLast", "maxRes", "mediaWinShortcut", "ppBackward", "ppForward", "preferredOutput",
        "presentShortcut",
    }
)
_LEGACY_MEETING_KEYS = frozenset(
    {
        "autoStartMusic", "coWeek", "enableMusicButton", "enableMusicFadeOut", "musicFadeOutTime",
        "musicFadeOutType", "musicVolume", "mwDay", "mwStartTime", "shuffleShortcut", "specialCong",
        "weDay", "weStartTime",
    }
)

# migrate2290 replaces null (and invalid enum values) by the key's default. JWMMF ≤ 22.7 stored an
# unchecked box as null, so null must become false here, not "forced to nothing".
# Defaults from constants/prefs.ts (22.9); keys not listed default to null.
_LEGACY_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "app.autoOpenFolderWhenDone": False,
        "app.autoQuitWhenDone": False,
        "app.autoRunAtBoot": False,
        "app.autoStartSync": False,
        "app.disableAutoUpdate": False,
        "app.disableHardwareAcceleration": False,
        "app.obs.enable": False,
        "app.obs.useV4": True,
        "app.offline": False,
        "app.outputFolderDateFormat": DEFAULT_DATE_FORMAT,
        "app.theme": "system",
        "media.enableMediaDisplayButton": False,
        "media.enableMp4Conversion": False,
        "media.enablePp": False,
        "media.enableSubtitles": False,
        "media.enableVlcPlaylistCreation": False,
        "media.excludeLffi": False,
        "media.excludeLffiImages": False,
        "media.excludeTh": False,
        "media.hideMediaLogo": False,
        "media.hideWinAfterMedia": False,
        "media.keepOriginalsAfterConversion": False,
        "media.maxRes": "720p",
        "media.preferredOutput": "window",
        "meeting.enableMusicButton": False,
        "meeting.enableMusicFadeOut": False,
        "meeting.musicFadeOutTime": 5,
        "meeting.musicFadeOutType": "smart",
        "meeting.musicVolume": 100,
        "meeting.specialCong": False,
    }
)
_LEGACY_ENUMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "theme": ("system", "light", "dark"),
        "musicFadeOutType": MUSIC_FADE_OUT_TYPES,
        "outputFolderDateFormat": DATE_FORMATS,
        "maxRes": MAX_RES,
    }
)
_LEGACY_INT_KEYS = frozenset({"musicFadeOutTime", "musicVolume", "mwDay", "weDay"})
_JS_INT = re.compile(r"\s*([+-]?[0-9]+)")


def _legacy_target(key: str) -> str:
    """The nested (dotted) key migrate2290 gives to a flat JWMMF key."""
    if key == "enableObs":
        return "app.obs.enable"
    if key == "ppEnable":
        return "media.enablePp"
    if key.startswith("obs"):
        rest = key[3:]
        return f"app.obs.{rest[:1].lower()}{rest[1:]}"
    if key.startswith("congServer"):
        name = key.replace("congServer", "server", 1)
        for old, new in (("serverDir", "dir"), ("serverPass", "password"), ("serverPort", "port"),
                         ("serverUser", "user")):
            name = name.replace(old, new, 1)
        return f"cong.{name}"
    if key in _LEGACY_MEDIA_KEYS:
        return f"media.{key}"
    if key in _LEGACY_MEETING_KEYS:
        return f"meeting.{key}"
    return f"app.{key}"


def _js_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def migrate_legacy_key(key: str, value: Any) -> tuple[str, Any]:
    """One flat JWMMF key → ``(dotted key, value)``, with migrate2290's value clean-up.

    Kept from M³: null → the key's default; ``preferredOutput`` other than ``"window"`` → default; an
    invalid enum value → default; ``congServerPort`` → text; numeric text for ``mwDay``, ``weDay``,
    ``musicVolume``, ``musicFadeOutTime`` → integer (JS ``parseInt``), unreadable → default.
    Not kept: 24.x's final "schema type" check, which compared every single-typed key with
    ``"string"`` and so reset every legacy boolean (``enableMusicButton: true``) to its default; type
    checking is done afterwards, by :data:`FORCABLE`, and reports instead of rewriting.
    """
    target = _legacy_target(key)
    default = _LEGACY_DEFAULTS.get(target)
    if value is None:
        value = default
    if key == "preferredOutput" and isinstance(value, str) and value != "window":
        value = default
    enum = _LEGACY_ENUMS.get(key)
    if enum is not None and value not in enum:
        value = default
    if key == "congServerPort":
        value = None if value is None else _js_string(value)
    if key in _LEGACY_INT_KEYS and isinstance(value, str):
        m = _JS_INT.match(value)
        value = int(m.group(1)) if m else default
    return target, value


def migrate_legacy(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Bring a ``forcedPrefs.json`` object to the nested form, as M³ 24 did before applying it.

    Root keys other than ``app``, ``cong``, ``media``, ``meeting`` and ``__internal__`` are flat keys of
    JWMMF ≤ 22.7 (whose writer produced exactly such a flat object) and are moved into place by
    :func:`migrate_legacy_key`, overriding a nested value for the same key as M³ did. Then
    ``media.excludeLffi`` is dropped and ``media.excludeLffiImages`` renamed to ``excludeLffImages``.
    The input is not changed.
    """
    result: dict[str, Any] = {}
    legacy: list[tuple[str, Any]] = []
    for key, value in obj.items():
        if key in _LEGACY_ROOTS:
            result[key] = copy.deepcopy(value)
        else:
            legacy.append((key, value))
    for key, value in legacy:
        target, new_value = migrate_legacy_key(key, copy.deepcopy(value))
        parts = target.split(".")
        node = result
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = new_value
    media = result.get("media")
    if isinstance(media, dict):
        media.pop("excludeLffi", None)
        if "excludeLffiImages" in media:
            media["excludeLffImages"] = media.pop("excludeLffiImages")
    return result


# --- forcedPrefs.json ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ForcedPrefs:
    """The usable part of a ``forcedPrefs.json``.

    ``values``: dotted FORCABLE key → validated value (``None`` is a value: the key is forced unset).
    ``ignored``: ``(key, reason)`` for every key that is not forcable or holds a bad value, so the
    caller can warn about each one.
    """

    values: dict[str, Any] = field(default_factory=dict)
    ignored: list[tuple[str, str]] = field(default_factory=list)

    @property
    def locked(self) -> frozenset[str]:
        return locked_keys(self.values)


def parse_forced_prefs(text: str) -> ForcedPrefs:
    """Read the text of ``forcedPrefs.json``.

    Empty text and ``{}`` force nothing. Malformed JSON or a JSON value that is not an object raises
    ``ValueError``: whether that means "keep the last good settings" or "error" is the caller's choice.
    """
    text = text.removeprefix("\ufeff")  # a BOM from an editor on Windows
    if not text.strip():
        return ForcedPrefs()
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ValueError(_("forcedPrefs.json is not valid JSON ({error}).").format(error=e)) from None
    if not isinstance(obj, dict):  # bad file content, reported like malformed JSON
        raise ValueError(  # noqa: TRY004
            _("forcedPrefs.json must hold a JSON object, not {value}.").format(value=_show(obj))
        )
    values: dict[str, Any] = {}
    ignored: list[tuple[str, str]] = []
    for key, value in flatten(migrate_legacy(obj)).items():
        spec = FORCABLE.get(key)
        if spec is None:
            ignored.append((key, _("not a setting a congregation may force")))
            continue
        try:
            values[key] = spec.check(value)
        except ValueError as e:
            ignored.append((key, str(e)))
    return ForcedPrefs(values, ignored)


_ORDER = {key: i for i, key in enumerate(FORCABLE)}


def dump_forced_prefs(values: Mapping[str, Any]) -> str:
    """The text of ``forcedPrefs.json`` for these forced keys, as M³'s coordinator dialog writes it:
    nested ``{app, media, meeting}``, 2-space indentation, UTF-8 text unescaped, keys in FORCABLE order,
    a final newline; ``{}`` when nothing is forced.

    Every key must be forcable and every value valid (``ValueError`` otherwise): what is published here
    is applied by every computer of the congregation.
    """
    checked: dict[str, Any] = {}
    for key in sorted(values, key=lambda k: (_ORDER.get(k, len(_ORDER)), k)):
        if key not in FORCABLE:
            raise ValueError(_("{key} is not a setting a congregation may force.").format(key=key))
        checked[key] = validate_pref(key, values[key])
    return json.dumps(nest(checked), indent=2, ensure_ascii=False) + "\n"


def locked_keys(forced: Mapping[str, Any]) -> frozenset[str]:
    """Keys a person may not change locally: every FORCABLE key present in ``forced``, null included
    (M³ ``isLocked``: a defined value, null counts)."""
    return frozenset(key for key in forced if key in FORCABLE)


# --- the local [prefs] table ---------------------------------------------------------------------


def normalize_local_prefs(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The configuration's ``[prefs]`` table → ``(dotted values, problems)``.

    Accepts quoted dotted keys (``"meeting.mwDay" = 1``), nested tables (``[prefs.meeting]``,
    ``[prefs.app.obs]``) and any mix. Known keys (FORCABLE and :data:`LOCAL_KEYS`) are validated and
    normalized. Nothing raises: a problem is a ready-to-show warning, and the caller logs it —

    * a known key with a bad value is left out (its default or the forced value applies);
    * an unknown key is kept as it is (it may be an M³ setting m3daemon does not use) and reported;
    * a key given twice keeps its first value and is reported.
    """
    out: dict[str, Any] = {}
    problems: list[str] = []

    def put(key: str, value: Any) -> None:
        if key in out:
            problems.append(_("[prefs] {key} is set twice; the first value is used.").format(key=key))
            return
        spec = _KNOWN.get(key)
        if spec is None:
            problems.append(
                _("[prefs] {key} is not a setting m3daemon knows; it is kept but not used.").format(key=key)
            )
            out[key] = value
            return
        try:
            out[key] = spec.check(value)
        except ValueError as e:
            problems.append(_("[prefs] {key}: {reason}; the setting is ignored.").format(key=key, reason=e))

    def walk(prefix: str, mapping: Mapping[str, Any]) -> None:
        for name, value in mapping.items():
            dotted = f"{prefix}.{name}" if prefix else str(name)
            if dotted not in _KNOWN and isinstance(value, Mapping):
                walk(dotted, value)
            else:
                put(dotted, value)

    walk("", raw)
    return out, problems


def unknown_keys(flat: Mapping[str, Any]) -> list[str]:
    """Keys of a dotted mapping that m3daemon does not know (typos, M³ settings it does not use)."""
    return sorted(key for key in flat if key not in _KNOWN)


def effective_prefs(local: Mapping[str, Any], forced: Mapping[str, Any]) -> dict[str, Any]:
    """What applies on this computer: defaults, then the local settings, then the congregation's
    forced FORCABLE keys (a forced null wins too: the coordinator chose "not set")."""
    result = dict(DEFAULTS)
    result.update(local)
    result.update({key: value for key, value in forced.items() if key in FORCABLE})
    return result
