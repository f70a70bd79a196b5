"""Before planning a ``watch`` sync: the images of every PDF, SVG and HEIC file the window wants.

M³ 25+ shows none of these (core/m3.py); M³ 22–24 converted them on every computer. Each server
file is converted once per version (its ETag, else size and time): the images wait in
``<media>/.m3daemon/converted/<key>/`` and the planner places copies of them like any download. A
file that cannot be downloaded or converted is reported; its earlier images stay.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from m3daemon.core.layout import STAGING_DIR
from m3daemon.core.m3 import conversion_of
from m3daemon.core.model import CongregationFolder, RemoteFile
from m3daemon.core.planner import Converted
from m3daemon.errors import (
    AuthError,
    ConnectionProblem,
    DiskFullError,
    LocalFolderError,
    M3Error,
    ServerError,
    SyncError,
    TransferError,
)
from m3daemon.local.convert import Output, cache_key, cached, convert_into
from m3daemon.remote.http import DavSession
from m3daemon.remote.transfer import Limiter, download

log = logging.getLogger(__name__)

CACHE = f"{STAGING_DIR}/converted"


@dataclass
class Prepared:
    conversions: dict[tuple[str, str], list[Converted]] = field(default_factory=dict)
    failed: list[tuple[str, M3Error]] = field(default_factory=list)  # (remote path, why)
    converted: int = 0  # files converted by this sync (not from the cache)


def wanted_convertibles(folder: CongregationFolder, days: Iterable[date], meetings: set[date]) -> list[RemoteFile]:
    """Every server file of the window that M³ 22–24 converted, once each."""
    found: dict[tuple[str, str], RemoteFile] = {}
    for d in days:
        dated = folder.dated.get(d, {})
        names = dict(dated)
        if d in meetings or dated:
            for n, rf in folder.recurring.items():
                names.setdefault(n, rf)
        hidden = folder.hidden.get(d, set())
        for n, rf in names.items():
            if n not in hidden and conversion_of(n):
                found.setdefault(("/".join(rf.parts), rf.version), rf)
    return list(found.values())


def prepare(
    session: DavSession | None, media_dir: Path, files: list[RemoteFile], *, dry_run: bool,
    cancel: threading.Event | None = None, limiter: Limiter | None = None,
) -> Prepared:
    """The images of ``files``: from the cache, else downloaded and converted (not on a dry run)."""
    out = Prepared()
    root = media_dir / CACHE
    keep: set[str] = set()
    for rf in files:
        path = "/".join(rf.parts)
        key = cache_key(path, rf.version)
        keep.add(key)
        outputs = cached(root / key)
        failed = _failed_before(root / f"{key}.failed")
        if failed is not None:  # this version could not be converted: not downloaded again
            out.failed.append((path, failed))
        elif outputs is None and not dry_run and session is not None:
            try:
                outputs = _convert(session, root, key, rf, cancel, limiter)
                out.converted += 1
            except (ConnectionProblem, AuthError, DiskFullError):
                raise  # every other file would fail too: the sync stops as a whole
            except M3Error as err:
                log.warning("%s: %s", path, err.message)
                out.failed.append((path, err))
                if isinstance(err, SyncError) and not isinstance(err, (TransferError, ServerError, LocalFolderError)):
                    (root / f"{key}.failed").write_text(json.dumps([err.message, err.remedy]), "utf-8")
        if outputs is not None:
            out.conversions[(path, rf.version)] = [Converted(o.name, o.size, f"{CACHE}/{key}/{o.name}")
                                                   for o in outputs]
    if not dry_run and root.is_dir():
        for old in root.iterdir():  # versions no longer wanted
            if old.name.removesuffix(".failed") not in keep:
                if old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    old.unlink(missing_ok=True)
    return out


def _failed_before(marker: Path) -> SyncError | None:
    try:
        message, remedy = json.loads(marker.read_text("utf-8"))
        return SyncError(str(message), str(remedy))
    except (OSError, ValueError, TypeError):
        return None


def _convert(session: DavSession, root: Path, key: str, rf: RemoteFile, cancel: threading.Event | None,
             limiter: Limiter | None) -> list[Output]:
    kind = conversion_of(rf.name)
    assert kind is not None
    root.mkdir(parents=True, exist_ok=True)
    part = root / f"{key}.download"
    try:
        download(session, rf.parts, part, size=rf.size, etag=rf.etag, modified=rf.modified, cancel=cancel,
                 weak_etag=rf.weak_etag, limiter=limiter)
        return convert_into(part, kind, rf.name, root / key)
    finally:
        part.unlink(missing_ok=True)
