"""Which language a congregation's screens and messages use (the rule itself: :func:`m3daemon.i18n.choose_language`).

In order: ``[congregation] language`` (or ``--lang``), M³'s own UI language ``app.localAppLang``
as it applies on this computer (forced by the congregation, else the local ``[prefs]``), the
operating system's language, English.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from m3daemon.i18n import choose_language
from m3daemon.settings.config import Config

UI_LANGUAGE_KEY = "app.localAppLang"


def recorded_effective_prefs(cfg: Config) -> dict[str, Any] | None:
    """The settings that applied at the last sync (kept in the record), without opening the network."""
    # Not through engine.context: that imports the network stack, which a command that only
    # starts (``--help``, ``status``) never needs.
    from m3daemon.local.record import Record, record_file

    path = record_file(cfg.state_dir)
    if not path.exists():
        return None

    try:
        rec = Record(path, readonly=True)
    except Exception:  # noqa: BLE001 - a damaged record must not stop a command from starting
        return None
    try:
        value = rec.get_meta("effective_prefs")
    finally:
        rec.close()
    return value if isinstance(value, dict) else None


def language_for(cfg: Config, *, explicit: str | None = None, effective: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> str:
    m3_lang = None
    prefs = effective if effective is not None else recorded_effective_prefs(cfg)
    if prefs is not None:
        m3_lang = prefs.get(UI_LANGUAGE_KEY)
    if not m3_lang:
        m3_lang = cfg.prefs.get(UI_LANGUAGE_KEY)
    return choose_language(explicit or cfg.language, str(m3_lang) if m3_lang else None, environ)
