"""Free space in the media folder: what is kept free, and what fits.

One rule, in one place: m3daemon leaves ``reserve_for(disk size)`` bytes free for the rest of the
computer (5 % of the disk, at most 64 MiB), and places the files that fit in the rest, nearest
meeting first. What does not fit is reported per file; the sync never refuses everything because
one video is too large.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from m3daemon.errors import NotEnoughSpace
from m3daemon.i18n import _

RESERVE_MAX = 64 * 1024 * 1024
RESERVE_SHARE = 20  # 1/20 = 5 % of the disk, for small disks and memory cards


def reserve_for(total: int) -> int:
    """Bytes left free for the rest of the computer (the system, other programs' temporary files)."""
    return min(RESERVE_MAX, total // RESERVE_SHARE)


def human_size(n: int) -> str:
    """``1.2 GB``, ``300 MB``, ``12 kB`` (decimal units, as file managers show them)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" or size >= 100 else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class SpaceBudget:
    """What may still be written in one sync: the disk's free space at the start, less the reserve,
    less what files already claimed. Claims are made in the order files should arrive."""

    folder: Path
    free: int
    reserve: int
    claimed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def measure(cls, folder: Path) -> SpaceBudget:
        usage = shutil.disk_usage(folder)
        return cls(folder, usage.free, reserve_for(usage.total))

    def claim(self, name: str, size: int) -> None:
        """Claim ``size`` bytes for ``name``, or raise :class:`NotEnoughSpace` naming both sizes."""
        with self._lock:
            left = self.free - self.reserve - self.claimed
            if size <= left:
                self.claimed += size
                return
        raise not_enough_space(name, size, max(0, self.free - self.claimed), self.reserve)


def not_enough_space(name: str, size: int, free: int, reserve: int) -> NotEnoughSpace:
    return NotEnoughSpace(
        _("Not enough space on the disk for {name} ({size}); free {free}, of which m3daemon keeps {reserve} "
          "for the rest of the computer.").format(
            name=name, size=human_size(size), free=human_size(free), reserve=human_size(reserve)),
        _("Free some space (empty the trash, remove old videos), then update again. "
          "The files of the nearest meetings were placed first."),
    )
