"""Turn files M³ 25+ cannot show into images, the way M³ 22–24 did (``converters.ts`` of 24.x).

* PDF: every page becomes ``<name>-NN.png`` (NN from 01, two digits at least, page order),
  rendered 2160 pixels high (M³: twice full HD) on white, with pdfium (pypdfium2).
* SVG: ``<name>.png``, 2160 pixels high on white, with resvg (resvg-py).
* HEIC/HEIF: ``<name>.jpg``, with libheif (pillow-heif), JPEG quality 92 (heic-convert's default).

Each conversion is made once per version of the server's file, in a cache folder
``<media>/.m3daemon/converted/<key>/`` built under a temporary name and renamed when complete (so
it is there whole or not at all). The date folders get copies from it through the executor's usual
staging-then-rename, like any download. M³ 24 removed the original; the watch layout never places
it (M³ 25+ ignores it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from m3daemon.core.m3 import Conversion
from m3daemon.errors import M3Error, SyncError
from m3daemon.i18n import _

log = logging.getLogger(__name__)

HEIGHT = 2160  # M³ 24: FULL_HD[1] * 2
MAX_WIDTH = 4 * HEIGHT  # a panorama page is scaled down rather than made huge
MAX_PAGES = 300
JPEG_QUALITY = 92
DONE = "converted.json"


@dataclass(frozen=True)
class Output:
    name: str
    size: int


def cache_key(remote_path: str, version: str) -> str:
    return hashlib.sha256(f"{remote_path}\n{version}".encode("utf-8", "surrogateescape")).hexdigest()[:24]


def cached(cache_dir: Path) -> list[Output] | None:
    """The outputs of a complete conversion in ``cache_dir``, or None."""
    try:
        names = json.loads((cache_dir / DONE).read_text("utf-8"))
        return [Output(n, (cache_dir / n).stat().st_size) for n in names]
    except (OSError, ValueError, TypeError):
        return None


def convert_into(src: Path, kind: Conversion, name: str, cache_dir: Path) -> list[Output]:
    """Convert ``src`` (the server's ``name``) into ``cache_dir``, made whole and atomically; raises
    SyncError with the reason."""
    stem = name.rpartition(".")[0] or name
    tmp = cache_dir.with_name(cache_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        names = _CONVERTERS[kind](src, stem, name, tmp)
        (tmp / DONE).write_text(json.dumps(names), "utf-8")
        for made in [*names, DONE]:
            with open(tmp / made, "rb") as f:
                os.fsync(f.fileno())
        shutil.rmtree(cache_dir, ignore_errors=True)
        os.replace(tmp, cache_dir)
    except M3Error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SyncError(
            _("{name} cannot be converted into images for M³: {reason}").format(name=name, reason=exc),
            _("Ask the coordinator to check the file (open it on a computer), or to upload images instead."),
        ) from exc
    return [Output(n, (cache_dir / n).stat().st_size) for n in names]


def _pdf(src: Path, stem: str, shown: str, out: Path) -> list[str]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(src))
    try:
        if len(doc) > MAX_PAGES:
            raise SyncError(
                _("{name} has {n} pages; at most {max} are converted.").format(name=shown, n=len(doc),
                                                                             max=MAX_PAGES),
                _("Ask the coordinator to split the file."),
            )
        names = []
        for number, page in enumerate(doc, 1):
            width, height = page.get_width(), page.get_height()
            scale = min(HEIGHT / height, MAX_WIDTH / width) if width > 0 and height > 0 else 1.0
            image = page.render(scale=scale, fill_color=(255, 255, 255, 255)).to_pil()
            name = f"{stem}-{number:02d}.png"
            image.save(out / name, "PNG")
            names.append(name)
            page.close()
        return names
    finally:
        doc.close()


def _svg(src: Path, stem: str, shown: str, out: Path) -> list[str]:
    import resvg_py

    # resources_dir: an empty folder, so an <image href> can never pull in another file of this computer
    empty = out / ".resources"
    empty.mkdir()
    try:
        png = resvg_py.svg_to_bytes(svg_path=str(src), height=HEIGHT, background="#ffffff",
                                    resources_dir=str(empty))
    finally:
        empty.rmdir()
    name = f"{stem}.png"
    (out / name).write_bytes(bytes(png))
    return [name]


def _heic(src: Path, stem: str, shown: str, out: Path) -> list[str]:
    import pillow_heif
    from PIL import Image, ImageOps

    pillow_heif.register_heif_opener()
    with Image.open(src) as image:
        rgb = ImageOps.exif_transpose(image).convert("RGB")
    name = f"{stem}.jpg"
    rgb.save(out / name, "JPEG", quality=JPEG_QUALITY)
    return [name]


_CONVERTERS = {"pdf": _pdf, "svg": _svg, "heic": _heic}
