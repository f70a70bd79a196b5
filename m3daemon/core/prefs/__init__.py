"""M³ settings, split by concern: the key schema (``keys``), M³ 22–24's legacy flat keys
(``legacy``), ``forcedPrefs.json`` (``forced``) and the local ``[prefs]`` table (``local``).

Why this module exists: ``forcedPrefs.json`` is written by whoever has write access to the shared
folder, with any M³ version since 2021 or by hand. M³ merges *every* key of it into the local settings
without filtering (reference §3.3). m3daemon applies only the 49 keys M³ allows a coordinator to force
(reference §3.2, ``constants/prefs.ts`` FORCABLE), each checked against the type and range of M³'s
settings schema (``plugins/prefs.ts``), and reports everything else so the user can be warned.

This package's public names are re-exported here, so callers write ``prefs.FORCABLE``.
"""

from m3daemon.core.prefs.forced import ForcedPrefs, dump_forced_prefs, locked_keys, parse_forced_prefs
from m3daemon.core.prefs.keys import (
    DEFAULTS,
    FORCABLE,
    GROUPS,
    LOCAL_KEYS,
    MAX_RES,
    MUSIC_FADE_OUT_TYPES,
    ROOTS,
    KeySpec,
    flatten,
    nest,
    parse_pref_text,
    spec_for,
    validate_pref,
)
from m3daemon.core.prefs.legacy import migrate_legacy, migrate_legacy_key
from m3daemon.core.prefs.local import effective_prefs, normalize_local_prefs, unknown_keys

__all__ = [
    "DEFAULTS",
    "FORCABLE",
    "GROUPS",
    "LOCAL_KEYS",
    "MAX_RES",
    "MUSIC_FADE_OUT_TYPES",
    "ROOTS",
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
