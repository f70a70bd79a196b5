"""Small previews of the images in the media folder, made with Pillow and cached on disk.

The cache key is the file's path, size and modification time, so a changed image gets a new
preview. The cache keeps at most :data:`MAX_CACHED` files (the oldest go first).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from pathlib import Path

from PIL import Image, ImageOps

from m3daemon.local import paths

log = logging.getLogger(__name__)

SIZE = (320, 240)
MAX_CACHED = 500
MAX_SOURCE_BYTES = 100 * 1024 * 1024


class Thumbnails:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or paths.cache_dir() / "thumbnails"
        self._lock = threading.Lock()

    def get(self, source: Path) -> bytes | None:
        """A JPEG preview of ``source``; None when it is not an image Pillow can read."""
        try:
            st = source.stat()
        except OSError:
            return None
        if st.st_size > MAX_SOURCE_BYTES:
            return None
        key = hashlib.sha256(f"{source}|{st.st_size}|{st.st_mtime_ns}".encode("utf-8", "surrogateescape"))
        cached = self.folder / f"{key.hexdigest()[:32]}.jpg"
        try:
            return cached.read_bytes()
        except OSError:
            pass
        data = _render(source)
        if data is not None:
            self._store(cached, data)
        return data

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


def _render(source: Path) -> bytes | None:
    try:
        with Image.open(source) as img:
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
            return out.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.debug("no thumbnail for %s: %s", source.name, exc)
        return None
