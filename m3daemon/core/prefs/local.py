"""The configuration's local ``[prefs]`` table and what applies on this computer.

Pure module: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from m3daemon.core.prefs.keys import _KNOWN, DEFAULTS, FORCABLE
from m3daemon.i18n import _


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
