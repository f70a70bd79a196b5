"""Draw m3daemon's application icon with Pillow: ``python packaging/make_icon.py [OUT.png] [--size N]``.

It uses the tray's "up to date" drawing (``m3daemon.tray.icons.app_icon``) when the tray module is
there, so the application and the tray look alike; otherwise it draws the same idea itself: a
white tick on a green disc. Writes ``packaging/m3daemon.png`` (256 × 256) by default. Asks nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
GREEN = (46, 158, 68)


def tick_on_disc(size: int) -> Image.Image:
    """A white tick on a green disc with a darker rim, drawn at 4× and scaled down (smooth edges)."""
    big = size * 4
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    pad = big // 32
    rim = tuple(int(c * 0.7) for c in GREEN) + (255,)
    draw.ellipse((pad, pad, big - pad, big - pad), fill=rim)
    inner = pad + big // 40
    draw.ellipse((inner, inner, big - inner, big - inner), fill=GREEN + (255,))
    points = [(big * 0.28, big * 0.53), (big * 0.44, big * 0.69), (big * 0.74, big * 0.35)]
    draw.line(points, fill=(255, 255, 255, 255), width=big // 11, joint="curve")
    r = big // 22
    for x, y in (points[0], points[-1]):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, 255))
    return img.resize((size, size), Image.Resampling.LANCZOS)


def draw_icon(size: int) -> Image.Image:
    sys.path.insert(0, str(HERE.parent))  # a clone without m3daemon installed
    try:
        from m3daemon.tray import icons
    except Exception:  # noqa: BLE001 - no tray module (or its imports fail): draw it here
        return tick_on_disc(size)
    if hasattr(icons, "app_icon"):
        image: Image.Image = icons.app_icon(size)
        return image
    if hasattr(icons, "icon_for"):
        from m3daemon.daemon.state import SyncState

        return icons.icon_for(SyncState.UP_TO_DATE).resize((size, size), Image.Resampling.LANCZOS)
    return tick_on_disc(size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Draw m3daemon's application icon (PNG).")
    parser.add_argument("out", nargs="?", default=str(HERE / "m3daemon.png"))
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    draw_icon(args.size).save(out, "PNG", optimize=True)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
