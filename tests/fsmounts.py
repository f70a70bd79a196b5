"""Real file systems with Windows semantics, mounted through FUSE for the tests.

This kernel has no vfat, exfat or ext4-casefold driver, but FUSE works:

* **exFAT** (the USB stick, the SD card): ``exfat-fuse`` on a loop device (it needs a block
  device; ``losetup -f --show IMG``). Measured here: case-insensitive (``CASE.TXT`` opens
  ``Case.txt``), refuses ``: ? " < > | * \\`` (with ENOENT), accepts a trailing dot or space and
  ``CON``, keeps whole-second mtimes, no hard links.
* **NTFS** (a Windows disk read from Linux): ``ntfs-3g -o windows_names`` on the image file.
  Measured here: case-sensitive (POSIX name space), refuses everything Windows refuses (EINVAL),
  keeps 100 ns mtimes.

Debian packages: exfatprogs and exfat-fuse; ntfs-3g (mkntfs comes with it). Mounting needs root.
Outside CI a missing package or privilege skips the test naming it; under ``CI=true`` it fails.

The volumes are session-scoped (mounted once, unmounted at the end); each test takes a fresh
folder on them (:meth:`Volume.folder`). Other tests reuse them: ``from fsmounts import ...`` and
the ``windows_volume`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from servers import skip_or_fail

__all__ = ["KINDS", "Volume", "mounted", "windows_volume"]

#: Volume kind → (Debian packages, programs needed).
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "exfat": ("exfatprogs exfat-fuse", ("mkfs.exfat", "mount.exfat-fuse", "losetup")),
    "ntfs": ("ntfs-3g", ("mkntfs", "ntfs-3g")),
}

SIZE_BYTES = 64 * 1024 * 1024


def _tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(Path(d) / name) for d in ("/usr/sbin", "/sbin") if (Path(d) / name).exists()), None)


def _run(*args: str) -> None:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")


@dataclass
class Volume:
    """One mounted file system: its kind, mount point, and what it does to names and times."""

    kind: str
    mountpoint: Path
    image: Path
    case_insensitive: bool
    mtime_resolution_ns: int
    device: str | None = None
    _folders: list[Path] = field(default_factory=list)

    def folder(self, name: str = "t") -> Path:
        """A fresh, empty folder on the volume for one test."""
        path = self.mountpoint / f"{name}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        self._folders.append(path)
        return path

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.mountpoint).free

    def remount(self) -> None:
        """Unmount and mount again: what is read afterwards comes from the disk, not a cache."""
        _unmount(self.mountpoint)
        _mount(self.kind, self.device or str(self.image), self.mountpoint)


def _mount(kind: str, source: str, mountpoint: Path) -> None:
    if kind == "exfat":
        _run(_tool("mount.exfat-fuse") or "mount.exfat-fuse", source, str(mountpoint))
    else:
        _run(_tool("ntfs-3g") or "ntfs-3g", "-o", "windows_names", source, str(mountpoint))


def _unmount(mountpoint: Path) -> None:
    # fusermount is not always there; umount works for root on every FUSE mount
    _run("umount", str(mountpoint))


def _probe(mountpoint: Path) -> tuple[bool, int]:
    """(case-insensitive?, mtime resolution in ns) measured on the mounted volume."""
    probe = mountpoint / "Probe.tmp"
    probe.write_bytes(b"")
    try:
        insensitive = (mountpoint / "PROBE.TMP").exists()
        wanted = 1_700_000_000_123_456_789
        os.utime(probe, ns=(wanted, wanted))
        got = probe.stat().st_mtime_ns
    finally:
        probe.unlink()
    resolution = 1  # the coarsest power of ten that the kept time is a multiple of
    while wanted != got and got % (resolution * 10) == 0 and resolution < 10**9:
        resolution *= 10
    return insensitive, resolution


@contextlib.contextmanager
def mounted(kind: str, workdir: Path) -> Iterator[Volume]:
    """Make and mount a fresh 64 MB ``kind`` volume under ``workdir``; unmounted (and its loop
    device freed) at the end. Skips (fails under CI=true) naming what is missing."""
    packages, tools = KINDS[kind]
    missing = [t for t in tools if _tool(t) is None]
    if missing:
        skip_or_fail(f"the {kind} tests need {', '.join(missing)} (Debian packages: {packages})")
    if os.geteuid() != 0:
        skip_or_fail(f"mounting an {kind} image needs root (CI runs as root)")
    if not Path("/dev/fuse").exists():
        skip_or_fail("mounting a FUSE file system needs /dev/fuse")
    image = workdir / f"{kind}.img"
    mountpoint = workdir / kind
    mountpoint.mkdir()
    with image.open("wb") as f:
        f.truncate(SIZE_BYTES)
    device: str | None = None
    try:
        if kind == "exfat":
            _run(_tool("mkfs.exfat") or "mkfs.exfat", "-L", "M3TEST", str(image))
            out = subprocess.run([_tool("losetup") or "losetup", "-f", "--show", str(image)],
                                 capture_output=True, text=True, timeout=30, check=False)
            if out.returncode != 0:
                skip_or_fail(f"exfat-fuse needs a loop device and losetup failed: {out.stderr.strip()}")
            device = out.stdout.strip()
        else:
            _run(_tool("mkntfs") or "mkntfs", "-F", "-q", "-f", "-L", "M3TEST", str(image))
        _mount(kind, device or str(image), mountpoint)
    except RuntimeError as exc:
        if device is not None:
            subprocess.run(["losetup", "-d", device], check=False)
        skip_or_fail(f"cannot mount an {kind} volume here: {exc}")
    try:
        insensitive, resolution = _probe(mountpoint)
        yield Volume(kind, mountpoint, image, insensitive, resolution, device)
    finally:
        subprocess.run(["umount", str(mountpoint)], capture_output=True, check=False, timeout=60)
        if device is not None:
            subprocess.run(["losetup", "-d", device], capture_output=True, check=False, timeout=60)


@pytest.fixture(scope="session", params=list(KINDS))
def windows_volume(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Volume]:
    """An exFAT and an NTFS volume, each mounted once per session (registered in conftest.py)."""
    with mounted(request.param, tmp_path_factory.mktemp(f"fs-{request.param}")) as volume:
        yield volume
