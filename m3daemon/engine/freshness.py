""""Nothing changed" in one request, on servers whose folder tag says so.

Some servers (Nextcloud's and ownCloud's SabreDAV) change a folder's ETag whenever anything below
it changes; then one ``Depth: 0`` PROPFIND of the congregation folder tells the daemon that its
last listing still holds. Most do not (Apache, nginx, WsgiDAV, rclone and lighttpd change a folder's tag, if
they list one, only when its own entries change, or never). Which kind a server is, is found out
by watching, never from its name:

* every full listing notes the folder's tag next to a digest of what it listed, and a digest of
  its top two levels (the files there, and the folders' names: ``Media``, ``Media/2026-12-07``);
* when something changed below those (a file in a date folder) while they did not, and the tag
  changed too, that is one agreement. Only such a change is evidence: an ordinary server's folder
  tag moves with the folder's own entries (Apache's and lighttpd's do, from the folder's date), so
  a new ``forcedPrefs.json`` moves it there too, and a server might let a folder's tag follow its
  subfolders' dates one level down;
* when anything changed and the tag did not, the tag is refuted for good;
* after :data:`TRUST_AFTER` agreements and no refutation, a poll first asks for the tag alone,
  and only lists again when it moved, when the window moved, or every :data:`RECHECK_EVERY`
  polls (each recheck is another chance to refute it).

Only the digest of the same window is compared, because a walk lists only the window's folders.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from m3daemon.core.entries import RemoteEntry
from m3daemon.local.record import Record

TRUST_AFTER = 2
RECHECK_EVERY = 12
TOP_LEVELS = 2  # a change only below these is evidence of a tag that follows every change
META_KEY = "root_tag"


@dataclass
class TagState:
    tag: str | None = None
    digest: str | None = None
    window: str | None = None
    agreed: int = 0
    refuted: bool = False
    since_full: int = 0  # polls answered by the tag alone since the last full listing
    top: str | None = None  # the digest of the top two levels (see top_digest)

    @property
    def trusted(self) -> bool:
        return not self.refuted and self.agreed >= TRUST_AFTER and self.tag is not None

    @classmethod
    def load(cls, record: Record) -> TagState:
        raw = record.get_meta(META_KEY)
        if not isinstance(raw, dict):
            return cls()
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        if "top" not in known:
            known["agreed"] = 0  # agreed before changes beside the folder were told apart: again
        try:
            return cls(**known)
        except TypeError:
            return cls()

    def save(self, record: Record) -> None:
        record.set_meta(**{META_KEY: self.__dict__.copy()})

    def as_meta(self) -> dict[str, Any]:
        return self.__dict__.copy()


def digest(entries: list[RemoteEntry]) -> str:
    h = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e.parts):
        h.update(repr((e.parts, e.is_dir, e.size, e.etag, e.modified)).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def top_digest(entries: list[RemoteEntry]) -> str:
    """The top :data:`TOP_LEVELS` levels: their files, and their folders' names (a folder's own
    date and tag move with what is inside it)."""
    h = hashlib.sha256()
    for e in sorted((e for e in entries if len(e.parts) <= TOP_LEVELS), key=lambda e: e.parts):
        seen = (e.parts, True) if e.is_dir else (e.parts, False, e.size, e.etag, e.modified)
        h.update(repr(seen).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def after_full_listing(
    state: TagState, tag: str | None, entries: list[RemoteEntry], window: str, *, unchanged: bool = False
) -> TagState:
    """What a full listing says about the folder tag. ``unchanged``: the caller knows the entries
    are those of the last listing (then the digest is not computed again)."""
    same = unchanged and state.digest is not None and state.window == window
    new = state.digest if same else digest(entries)
    top = state.top if same else top_digest(entries)
    agreed, refuted = state.agreed, state.refuted
    if state.digest is not None and state.window == window and new != state.digest:
        if tag is None or tag == state.tag:
            refuted = True
        elif state.top is not None and top == state.top:
            agreed += 1
    return TagState(tag, new, window, agreed, refuted, 0, top)


def may_skip_listing(state: TagState, window: str) -> bool:
    """Whether a poll may ask for the tag alone instead of listing."""
    return state.trusted and state.window == window and state.since_full < RECHECK_EVERY
