""""Nothing changed" in one request, on servers whose folder tag says so.

Some servers (Nextcloud's and ownCloud's SabreDAV) change a folder's ETag whenever anything below
it changes; then one ``Depth: 0`` PROPFIND of the congregation folder tells the daemon that its
last listing still holds. Most do not (Apache, nginx, WsgiDAV and rclone change a folder's tag, if
they list one, only when its own entries change, or never). Which kind a server is, is found out
by watching, never from its name:

* every full listing notes the folder's tag next to a digest of what it listed;
* when the digest changed (something below changed) and the tag changed too, that is one
  agreement; when the digest changed and the tag did not, the tag is refuted for good;
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
META_KEY = "root_tag"


@dataclass
class TagState:
    tag: str | None = None
    digest: str | None = None
    window: str | None = None
    agreed: int = 0
    refuted: bool = False
    since_full: int = 0  # polls answered by the tag alone since the last full listing

    @property
    def trusted(self) -> bool:
        return not self.refuted and self.agreed >= TRUST_AFTER and self.tag is not None

    @classmethod
    def load(cls, record: Record) -> TagState:
        raw = record.get_meta(META_KEY)
        if not isinstance(raw, dict):
            return cls()
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
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


def after_full_listing(
    state: TagState, tag: str | None, entries: list[RemoteEntry], window: str, *, unchanged: bool = False
) -> TagState:
    """What a full listing says about the folder tag. ``unchanged``: the caller knows the entries
    are those of the last listing (then the digest is not computed again)."""
    new = state.digest if unchanged and state.digest is not None and state.window == window else digest(entries)
    agreed, refuted = state.agreed, state.refuted
    if state.digest is not None and state.window == window and new != state.digest:
        if tag is not None and tag != state.tag:
            agreed += 1
        else:
            refuted = True
    return TagState(tag, new, window, agreed, refuted, 0)


def may_skip_listing(state: TagState, window: str) -> bool:
    """Whether a poll may ask for the tag alone instead of listing."""
    return state.trusted and state.window == window and state.since_full < RECHECK_EVERY
