"""Reading one configuration file's tables with messages that name the key and the fix."""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from m3daemon.errors import ConfigError
from m3daemon.i18n import _


def _absolute_path(value: str | Path, base: Path | None = None) -> Path:
    """``~`` expanded; a relative path is taken relative to ``base`` (or the working folder);
    ``..`` collapsed, symlinks kept."""
    p = Path(value).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return Path(os.path.abspath(p))



_MISSING: Any = object()

_KNOWN: dict[str, frozenset[str]] = {
    "congregation": frozenset({"name", "language"}),
    "connection": frozenset(
        {"url", "username", "folder", "ca_file", "allow_insecure_loopback", "timeout_seconds",
         "request_deadline_seconds", "bandwidth_limit_kbps"}
    ),
    "local": frozenset({"media_dir", "layout", "days_ahead"}),
    "schedule": frozenset({"poll_minutes", "before_meeting_minutes", "timezone", "meeting_minutes",
                           "meeting_bandwidth_limit_kbps"}),
    "prefs": frozenset(),  # any key
}

_PASSWORD_NAMES = frozenset({"password", "passwd", "pwd", "pass"})


def _show(value: Any) -> str:
    """A value as it would look in the file, shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        text = _("a table")
    elif isinstance(value, list):
        text = _("a list")
    else:
        text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


class _Checker:
    """Reads one file's tables with error messages that name the key and the fix."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings: list[str] = []

    def error(self, where: str, problem: str, cls: type[ConfigError] = ConfigError) -> ConfigError:
        return cls(f"{where}: {problem}", _("Fix it in {path}.").format(path=self.path))

    def table(self, doc: Mapping[str, Any], name: str) -> dict[str, Any] | None:
        value = doc.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(
                name,
                _('{value} must be a table: write it as a "[{name}]" section').format(
                    value=_show(value), name=name
                ),
            )
        for key in value:
            if name != "prefs" and key not in _KNOWN[name]:
                self.warnings.append(
                    _("[{table}] {key}: unknown key, ignored (known keys: {known})").format(
                        table=name, key=key, known=", ".join(sorted(_KNOWN[name]))
                    )
                )
        return value

    def string(self, table: Mapping[str, Any], section: str, key: str, hint: str) -> str | None:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return None
        where = f"[{section}] {key}"
        if not isinstance(value, str):
            raise self.error(
                where,
                _("{value} must be text in quotes: {hint}").format(value=_show(value), hint=hint),
            )
        text = value.strip()
        if not text:
            raise self.error(where, _("is empty: {hint}").format(hint=hint))
        if any(unicodedata.category(ch) == "Cc" for ch in text):
            raise self.error(where, _("contains control characters: {hint}").format(hint=hint))
        return text

    def integer(
        self, table: Mapping[str, Any], section: str, key: str, default: int, low: int, high: int | None
    ) -> int:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return default
        where = f"[{section}] {key}"
        if high is None:
            fix = _("write a whole number of at least {low}, for example {key} = {default}")
        else:
            fix = _("write a whole number from {low} to {high}, for example {key} = {default}")
        fix = fix.format(low=low, high=high, key=key, default=default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(
                where, _("{value} is not a whole number: {fix}").format(value=_show(value), fix=fix)
            )
        if value < low or (high is not None and value > high):
            raise self.error(where, _("{value} is out of range: {fix}").format(value=value, fix=fix))
        return value

    def boolean(self, table: Mapping[str, Any], section: str, key: str, default: bool) -> bool:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise self.error(
                f"[{section}] {key}",
                _("{value} must be true or false (without quotes)").format(value=_show(value)),
            )
        return value


