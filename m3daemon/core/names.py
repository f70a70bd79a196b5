"""Remote names are never trusted as paths.

Every name that comes from the server (a file under ``Media/<date>/``, a hidden marker, a folder) is
used verbatim as a *single* local file name (SPEC, reference §4.3). The server is shared by the whole
congregation and may be written by any M³ client, a web interface, or a sync tool; so before a name
touches the local disk it must be one that

* cannot escape its folder (``..``, ``/``, ``\\``),
* cannot hide (``.DS_Store``, ``._x`` from macOS),
* can be created on every platform the congregation uses, Windows included (reserved device names,
  forbidden characters, a trailing space or dot),
* fits: M³ itself caps file names at 200 UTF-8 bytes (``constants/general.ts:24``).

The rules are deliberately one list for all platforms: the same folder must come out identical on the
Windows, macOS and Linux computers of one Kingdom Hall. The list is also the strictest of the file
systems the media go to (NTFS, FAT, exFAT on a USB stick, HFS+/APFS, ext4): checked on real exFAT and
NTFS volumes in tests/test_member_windows_fs.py. What the media folder's own volume does (case folding,
name rules, time resolution) is measured by local/longpaths.py's probe, once per folder and process.

Pure module: no I/O.
"""

from __future__ import annotations

import re
import unicodedata

from m3daemon.errors import UsageError
from m3daemon.i18n import _

__all__ = ["MAX_NAME_BYTES", "WINDOWS_FORBIDDEN", "check_name", "fold_name", "is_safe_name", "name_problem",
           "one_per_folded_name"]

MAX_NAME_BYTES = 200
"""M³'s own limit for a file name (UTF-8 bytes); also well under every file system's 255."""

WINDOWS_FORBIDDEN = frozenset('<>:"|?*')
"""Characters Windows refuses in a file name (besides ``/``, ``\\`` and control characters)."""

_DIGITS = "0123456789¹²³"  # Windows also reserves COM¹, COM², COM³, LPT¹, LPT², LPT³.
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{d}" for d in _DIGITS}
    | {f"LPT{d}" for d in _DIGITS}
)


# The same two checks as one regex scan each (a listing checks every name: about 20 µs per name
# with per-character generators, a few µs this way). Category Cc is exactly C0, DEL and C1.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")
_FORBIDDEN_RE = re.compile("[" + re.escape("".join(sorted(WINDOWS_FORBIDDEN))) + "]")


def _is_control(ch: str) -> bool:
    """C0 (including NUL), DEL and C1: Unicode category ``Cc``."""
    return unicodedata.category(ch) == "Cc"


def _is_reserved_on_windows(name: str) -> bool:
    """``CON``, ``con.txt``, ``Com1.tar.gz``, ``LPT¹``: the part before the first dot names a device.

    Windows ignores spaces before the extension, so ``CON .txt`` is reserved too.
    """
    stem = name.split(".", 1)[0].rstrip(" ")
    return stem.upper() in _RESERVED


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be used as one local file name, or ``None`` when it can.

    The reason is short and translated; callers add the name itself (see :func:`check_name`).
    """
    if not name:
        return _("the name is empty")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return _("the name is not valid Unicode")
    if name in (".", ".."):
        return _("the name is '.' or '..'")
    if "/" in name or "\\" in name:
        return _("the name contains a slash or a backslash")
    if _CONTROL_RE.search(name):
        return _("the name contains a control character")
    if name.startswith("."):
        return _("the name starts with a dot (a hidden file)")
    if _FORBIDDEN_RE.search(name):
        return _('the name contains a character that Windows does not allow (< > : " | ? *)')
    if name.endswith((" ", ".")):
        return _("the name ends with a space or a dot, which Windows cannot create")
    if _is_reserved_on_windows(name):
        return _("the name is reserved on Windows (CON, PRN, AUX, NUL, COM1, LPT1 …)")
    if len(encoded) > MAX_NAME_BYTES:
        return _("the name is longer than {limit} bytes").format(limit=MAX_NAME_BYTES)
    return None


def is_safe_name(name: str) -> bool:
    """Shorthand for ``name_problem(name) is None``."""
    return name_problem(name) is None


def check_name(name: str) -> str:
    """Return ``name`` if it is safe, else raise :class:`UsageError` (exit 2).

    Coordinator commands call this before sending any request, so that nothing the other computers
    would have to skip is ever uploaded. The name is shown with ``repr`` so that control characters and
    lone surrogates are visible instead of garbling the terminal.
    """
    problem = name_problem(name)
    if problem is None:
        return name
    raise UsageError(
        _("Cannot use the name {name}: {problem}.").format(name=repr(name), problem=problem),
        _("Rename the file and try again."),
    )


def fold_name(name: str) -> str:
    """The name as Windows and macOS compare names in one folder: Unicode NFC, then case folded.

    ``Talk.jpg`` and ``talk.jpg``, or ``café`` written with one code point or two (NFC/NFD), are
    one file there. A congregation's computers must all hold the same set of files, so the rule
    applies on every platform, Linux included.
    """
    return unicodedata.normalize("NFC", name).casefold()


def _preference(name: str) -> tuple[bool, str]:
    # The name already in NFC first (what Windows and most tools write), then plain sorted order.
    return (unicodedata.normalize("NFC", name) != name, name)


def one_per_folded_name(names: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Of ``names`` in one folder, those that stay (one per :func:`fold_name`) and, for each name
    left out, ``(name, the name that stays)``. The choice is the same on every computer: the name
    already in Unicode NFC wins, then the first in sorted (code point) order."""
    if len(set(map(fold_name, names))) == len(names):
        return list(names), []  # (nearly always: no two names are one there)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(fold_name(n), []).append(n)
    kept: list[str] = []
    dropped: list[tuple[str, str]] = []
    for group in groups.values():
        winner = min(group, key=_preference)
        kept.append(winner)
        dropped.extend((n, winner) for n in sorted(group) if n != winner)
    return kept, dropped
