"""M³ 22–24's legacy flat keys (its ``migrate2290``): old ``forcedPrefs.json`` files still hold them.

Pure module: no I/O.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from m3daemon.core.dates import DATE_FORMATS, DEFAULT_DATE_FORMAT
from m3daemon.core.prefs.keys import MAX_RES, MUSIC_FADE_OUT_TYPES, ROOTS

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


