"""``forcedPrefs.json``: read what a coordinator forced, and write it as M³'s coordinator dialog does.

Pure module: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from m3daemon.core.prefs.keys import FORCABLE, _show, flatten, nest, validate_pref
from m3daemon.core.prefs.legacy import migrate_legacy
from m3daemon.i18n import _


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


