"""Plain values that cross the boundary between the WebDAV layer and the pure modules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    """One resource of a listing.

    ``parts`` are the decoded path segments below the congregation folder
    (``("Media", "2024-07-17", "01 Talk.jpg")``). Segments are decoded one by one, so a ``%2F``
    inside a name stays inside that segment, where name validation rejects it. The folder itself is
    never an entry.
    """

    parts: tuple[str, ...]
    is_dir: bool
    size: int | None = None
    etag: str | None = None
    modified: datetime | None = None

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def path(self) -> str:
        return "/".join(self.parts)


def normalize_etag(etag: str | None) -> str | None:
    """ETags compare without quotes and without the weak ``W/`` prefix (SPEC: Apache serves a weak
    ETag for a just-written file and a strong one later for the same content)."""
    if not etag:
        return None
    e = etag.strip()
    e = e.removeprefix("W/")
    return e.strip('"') or None
