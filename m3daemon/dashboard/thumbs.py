"""Small previews of the images in the media folder, made with Pillow and cached on disk.

The cache key is the file's path, size and modification time, so a changed image gets a new
preview. The cache keeps at most :data:`MAX_CACHED` files (the oldest go first).

An image file can be small on disk and huge in memory (a 685 kB PNG of 13000×13000 pixels needs
more than a gigabyte decoded). So the size in pixels is read from the header first (``Image.open``
decodes nothing) and an image above :data:`MAX_PIXELS` is not decoded at all: it gets a
placeholder. Pillow's own decompression-bomb limit is set to the same value for anything that
slips past, and at most :data:`PARALLEL` previews are made at once; others wait up to
:data:`WAIT_SECONDS`, then get "busy" (the browser asks again later).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import threading
import warnings
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from PIL import Image, ImageOps

from m3daemon.local import paths

log = logging.getLogger(__name__)

SIZE = (320, 240)
MAX_CACHED = 500
MAX_SOURCE_BYTES = 100 * 1024 * 1024
#: 50 megapixels: larger than any camera photo or 8K slide (33 MP) that a meeting shows.
MAX_PIXELS = 50_000_000
PARALLEL = 2
WAIT_SECONDS = 10.0

# Pillow warns at MAX_IMAGE_PIXELS and refuses at twice that; previews refuse at the limit itself
# (the warning is turned into an error in _render).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class PreviewState(Enum):
    OK = "ok"
    TOO_LARGE = "too-large"  # refused before decoding: the placeholder
    BUSY = "busy"  # other previews are being made; ask again
    NONE = "none"  # not an image Pillow reads, or not there


@dataclass(frozen=True)
class Preview:
    state: PreviewState
    data: bytes = b""  # JPEG when OK
    width: int = 0  # of the source, when known
    height: int = 0
    pixels: int = 0


class Thumbnails:
    def __init__(self, folder: Path | None = None, *, parallel: int = PARALLEL) -> None:
        self.folder = folder or paths.cache_dir() / "thumbnails"
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(parallel)

    def get(self, source: Path) -> bytes | None:
        """A JPEG preview of ``source``; None when there is none (see :meth:`preview` for why)."""
        found = self.preview(source)
        return found.data if found.state is PreviewState.OK else None

    def preview(self, source: Path) -> Preview:
        try:
            st = source.stat()
        except OSError:
            return Preview(PreviewState.NONE)
        if st.st_size > MAX_SOURCE_BYTES:
            return Preview(PreviewState.TOO_LARGE)
        key = hashlib.sha256(f"{source}|{st.st_size}|{st.st_mtime_ns}".encode("utf-8", "surrogateescape"))
        cached = self.folder / f"{key.hexdigest()[:32]}.jpg"
        try:
            return Preview(PreviewState.OK, cached.read_bytes())
        except OSError:
            pass
        if not self._slots.acquire(timeout=WAIT_SECONDS):
            return Preview(PreviewState.BUSY)
        try:
            found = _render(source)
        finally:
            self._slots.release()
        if found.state is PreviewState.OK:
            self._store(cached, found.data)
        return found

    def _store(self, path: Path, data: bytes) -> None:
        with self._lock:
            try:
                paths.ensure_private_dir(self.folder)
                paths.write_private_file(path, data)
                self._trim()
            except OSError as exc:
                log.debug("thumbnail cache: %s", exc)

    def _trim(self) -> None:
        files = sorted(self.folder.glob("*.jpg"), key=lambda p: p.stat().st_mtime)
        for old in files[:-MAX_CACHED]:
            try:
                os.unlink(old)
            except OSError:
                pass


def _render(source: Path) -> Preview:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:  # reads the header only
                width, height = img.size
                if width * height > MAX_PIXELS:
                    log.info("no preview for %s: %d×%d pixels is more than %d", source.name, width, height,
                             MAX_PIXELS)
                    return Preview(PreviewState.TOO_LARGE, width=width, height=height, pixels=width * height)
                img.draft("RGB", (SIZE[0] * 2, SIZE[1] * 2))  # JPEG: decode at a reduced size, fast
                img.thumbnail((SIZE[0] * 2, SIZE[1] * 2))  # before exif_transpose: large images stay cheap
                small = ImageOps.exif_transpose(img)
                small.thumbnail(SIZE)
                if small.mode in ("RGBA", "LA", "P"):
                    rgba = small.convert("RGBA")
                    flat = Image.new("RGB", rgba.size, (255, 255, 255))
                    flat.paste(rgba, mask=rgba.getchannel("A"))
                    small = flat
                elif small.mode != "RGB":
                    small = small.convert("RGB")
                out = io.BytesIO()
                small.save(out, "JPEG", quality=82)
                return Preview(PreviewState.OK, out.getvalue(), width, height)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # far above the limit, Image.open itself refuses, naming only the number of pixels
        log.info("no preview for %s: %s", source.name, exc)
        found = re.search(r"\((\d+) pixels\)", str(exc))
        return Preview(PreviewState.TOO_LARGE, pixels=int(found.group(1)) if found else 0)
    except (OSError, ValueError, SyntaxError) as exc:
        log.debug("no thumbnail for %s: %s", source.name, exc)
        return Preview(PreviewState.NONE)
