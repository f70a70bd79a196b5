"""``forcedPrefs.json``: read-modify-write so that two coordinators never silently overwrite each other.

M³ wrote the file with a plain PUT (last writer wins, reference §6). Here each write carries the
version it was based on: ``If-Match`` with the ETag exactly as the server sent it on GET, or
``If-None-Match: *`` for a new file. A ``412`` means someone changed the file in between: it is
read again, the same change is applied to the new content, and the write is tried again.

That protects only where the server honours the headers. Which servers do is found out by asking
(a scratch file, :meth:`Writer.honours_if_match`), never from a list of names: in our test servers
WsgiDAV and Apache do, nginx and rclone ignore ``If-Match`` on PUT. There, and where the server
sends no ETag, the coordinator is told that the last writer wins.

Where a GET sends no ETag but the listing names one (lighttpd), the file is read again with the
listed tag asked for first: a change between that PROPFIND and the GET then makes the PUT fail
(412), never succeed over it. A server that refuses its own listed tag (the same tag and content
read again after a 412) is written to without it, with the same warning.

Apache serves a *weak* ETag for a file changed less than a second ago, and a weak ETag never
matches ``If-Match``; we wait for the strong one instead of failing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from m3daemon.core import prefs as m3prefs
from m3daemon.core.model import FORCED_PREFS
from m3daemon.engine.context import local_prefs
from m3daemon.errors import ServerError, UsageError
from m3daemon.i18n import _, ngettext
from m3daemon.settings.config import Config

from .writes import Writer

log = logging.getLogger(__name__)

FORCED: tuple[str, ...] = (FORCED_PREFS,)
ATTEMPTS = 5
WEAK_WAIT = 1.1  # Apache's ETag turns strong once the file is a second old
WEAK_TRIES = 3

Change = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class ForcedFile:
    """What the server holds. ``etag`` is the header as sent (quotes and ``W/`` kept), or the
    tag listed just before the read (``listed``)."""

    exists: bool
    etag: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    problem: str | None = None  # the file is not a JSON object
    listed: bool = False


@dataclass
class ForcedChange:
    """The outcome of one edit."""

    before: dict[str, Any]
    after: dict[str, Any]
    written: bool
    attempts: int
    guarded: bool  # the write was conditional on a server that honours If-Match
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "forced": self.after, "written": self.written, "attempts": self.attempts,
            "guarded": self.guarded, "warnings": self.warnings,
        }


def read_forced(writer: Writer, *, listed_first: bool = False) -> ForcedFile:
    """The file and its version. ``listed_first``: its listed tag, asked for before the GET,
    stands in for the GET's ETag when that has none."""
    listed = writer.listed_etag(FORCED) if listed_first else None
    resp = writer.get(FORCED)
    if resp is None:
        return ForcedFile(exists=False)
    etag = resp.headers.get("ETag")
    from_listing = etag is None and listed is not None
    etag = etag or listed
    text = resp.content.decode("utf-8-sig", "replace")
    try:
        parsed = m3prefs.parse_forced_prefs(text)
    except ValueError as exc:
        return ForcedFile(True, etag, problem=str(exc), listed=from_listing)
    return ForcedFile(True, etag, dict(parsed.values), list(parsed.ignored), listed=from_listing)


def edit_forced(
    writer: Writer,
    change: Change,
    *,
    attempts: int = ATTEMPTS,
    before_write: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ForcedChange:
    """Apply ``change`` (current forced values → new ones, dotted keys) to ``forcedPrefs.json``.

    ``before_write`` runs between the read and the conditional PUT, with the attempt number; tests
    use it to let another coordinator write in between.
    """
    current = read_forced(writer)
    listed_first = current.exists and current.etag is None
    if listed_first:  # no ETag on GET: read again, the listed tag first
        current = read_forced(writer, listed_first=True)
    listed_refused = False  # the server answered 412 to its own listed tag, the file unchanged
    warnings: list[str] = []
    honoured: bool | None = None
    attempt = weak_waits = 0
    while True:
        if current.problem is not None:
            raise UsageError(
                _("forcedPrefs.json on the server cannot be read: {problem}").format(problem=current.problem),
                _("Fix or delete the file on the server (it must hold a JSON object), then try again."),
            )
        after = change(dict(current.values))
        if after == current.values and (current.exists or not after):
            return ForcedChange(current.values, after, False, attempt, bool(honoured), warnings)
        weak = (current.etag or "").startswith("W/")
        if weak and weak_waits < WEAK_TRIES:
            weak_waits += 1
            sleep(WEAK_WAIT)
            current = read_forced(writer)
            continue
        if honoured is None:
            honoured = writer.honours_if_match()
            if not honoured:
                warnings.append(_(
                    "This server ignores If-Match, so changes cannot be checked against each other: if "
                    "another coordinator changes the settings at the same moment, the last writer wins."
                ))
        attempt += 1
        text = m3prefs.dump_forced_prefs(after)
        headers: dict[str, str] = {}
        if not current.exists:
            headers["If-None-Match"] = "*"
        elif current.etag and not weak and not (current.listed and listed_refused):
            headers["If-Match"] = current.etag
        elif honoured:
            warnings.append(_(
                "The server gave no usable version tag (ETag) for forcedPrefs.json: if another "
                "coordinator changes the settings at the same moment, the last writer wins."
            ))
        if before_write is not None:
            before_write(attempt)
        resp = writer.put_small(FORCED, text.encode("utf-8"), headers)
        if resp.status_code in (200, 201, 204):
            warnings.extend(
                _("{key} was dropped from forcedPrefs.json: {reason}.").format(key=k, reason=r)
                for k, r in current.ignored
            )
            return ForcedChange(current.values, after, True, attempt, honoured and bool(headers), warnings)
        if resp.status_code != 412:
            raise writer.fail(resp, FORCED_PREFS)
        if attempt >= attempts:
            raise ServerError(
                ngettext("forcedPrefs.json kept changing while we tried to write it ({n} attempt).",
                         "forcedPrefs.json kept changing while we tried to write it ({n} attempts).",
                         attempts).format(n=attempts),
                _("Another coordinator is changing the settings right now. Try again in a minute."),
            )
        log.info("forcedPrefs.json changed since it was read; reading it again (attempt %d)", attempt)
        sleep(0.1 * attempt)
        before, current = current, read_forced(writer, listed_first=listed_first)
        if before.listed and (current.etag, current.values) == (before.etag, before.values):
            log.info("the server refused its own listed tag for forcedPrefs.json; writing without it")
            listed_refused = True
        weak_waits = 0


# --- the three commands' changes ------------------------------------------------------------------


def _check_forcable(key: str) -> str:
    if key not in m3prefs.FORCABLE:
        raise UsageError(
            _("{key} is not a setting a congregation may force.").format(key=key),
            _("The settings a coordinator may force are listed by `m3daemon settings force --help`."),
        )
    return key


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """``["meeting.mwDay=2", "app.outputFolderDateFormat=DD-MM-YYYY"]`` → checked dotted values."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(_("{item!r} is not KEY=VALUE.").format(item=item), _("Example: meeting.mwDay=2"))
        _check_forcable(key)
        try:
            values[key] = m3prefs.parse_pref_text(key, text)
        except ValueError as exc:
            raise UsageError(str(exc), _("Example: meeting.mwDay=2 (0 = Monday)")) from exc
    return values


def check_keys(keys: Sequence[str]) -> list[str]:
    return [_check_forcable(k.strip()) for k in keys]


def publish_values(cfg: Config, keys: Sequence[str]) -> dict[str, Any]:
    """This computer's own values (its ``[prefs]``, else m3daemon's default) of ``keys``."""
    own = m3prefs.effective_prefs(local_prefs(cfg), {})
    values: dict[str, Any] = {}
    for key in check_keys(keys):
        if own.get(key) is None:
            raise UsageError(
                _("{key} is not set on this computer, so there is nothing to publish.").format(key=key),
                _("Set it first (m3daemon settings set {key}=…) or use m3daemon settings force {key}=VALUE.")
                .format(key=key),
            )
        values[key] = own[key]
    return values


def forcing(values: Mapping[str, Any]) -> Change:
    return lambda current: {**current, **values}


def unforcing(keys: Sequence[str], everything: bool = False) -> Change:
    gone = set(keys)
    return lambda current: {} if everything else {k: v for k, v in current.items() if k not in gone}
