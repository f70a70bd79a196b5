"""Tray icons drawn with Pillow: one per :class:`SyncState`, plus progress variants of "syncing".

Every icon is a coloured disc with a white sign, drawn at 4× and scaled down for smooth edges,
so it reads on light and dark panels alike:

==============  ==========  =============================
state           colour      sign
==============  ==========  =============================
up to date      green       a tick
syncing         blue        two turning arrows (+ a progress ring)
offline         grey        a cloud, struck through
error           red         an exclamation mark
paused          amber       two bars
starting        light blue  three dots
not configured  dark grey   a question mark
==============  ==========  =============================

Images are cached and shared: treat them as read-only (copy one before changing it).
Pure module: no I/O.
"""

from __future__ import annotations

import functools
import math

from PIL import Image, ImageDraw

from m3daemon.engine.status import SyncState

__all__ = ["ICON_SIZE", "STATE_COLOURS", "app_icon", "icon_for", "quantize_percent"]

ICON_SIZE = 64
_SCALE = 4
_S = ICON_SIZE * _SCALE  # drawing canvas: 256 × 256
_C = _S // 2  # centre
_WHITE = (255, 255, 255, 255)

STATE_COLOURS: dict[SyncState, tuple[int, int, int]] = {
    SyncState.UP_TO_DATE: (46, 158, 68),
    SyncState.SYNCING: (31, 111, 209),
    SyncState.OFFLINE: (122, 127, 135),
    SyncState.ERROR: (209, 47, 47),
    SyncState.PAUSED: (224, 161, 0),
    SyncState.STARTING: (90, 143, 199),
    SyncState.NOT_CONFIGURED: (85, 91, 99),
}

#: Progress variants are drawn in steps of this many percent (so at most 21 of them exist).
PERCENT_STEP = 5


def quantize_percent(percent: int | None) -> int | None:
    """Round a progress percentage down to a drawable step (None stays None)."""
    if percent is None:
        return None
    clamped = max(0, min(100, int(percent)))
    return clamped - clamped % PERCENT_STEP


def icon_for(state: SyncState, percent: int | None = None) -> Image.Image:
    """The 64×64 RGBA icon of ``state``; ``percent`` adds a progress ring to "syncing"."""
    return _icon(state, quantize_percent(percent) if state is SyncState.SYNCING else None)


def app_icon(size: int = 256) -> Image.Image:
    """The application icon (for packaging): the "up to date" drawing at ``size`` pixels."""
    big = _draw(SyncState.UP_TO_DATE, None, size * _SCALE)
    return big.resize((size, size), Image.Resampling.LANCZOS)


@functools.lru_cache(maxsize=64)
def _icon(state: SyncState, percent: int | None) -> Image.Image:
    big = _draw(state, percent, _S)
    return big.resize((ICON_SIZE, ICON_SIZE), Image.Resampling.LANCZOS)


def _darker(rgb: tuple[int, int, int], factor: float = 0.7) -> tuple[int, int, int, int]:
    r, g, b = rgb
    return (int(r * factor), int(g * factor), int(b * factor), 255)


def _draw(state: SyncState, percent: int | None, size: int) -> Image.Image:
    """Draw on a 256-unit canvas, scaled to ``size`` pixels."""
    k = size / _S
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    colour = STATE_COLOURS.get(state, STATE_COLOURS[SyncState.NOT_CONFIGURED])

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return (x0 * k, y0 * k, x1 * k, y1 * k)

    def pts(*xy: tuple[float, float]) -> list[tuple[float, float]]:
        return [(x * k, y * k) for x, y in xy]

    def w(width: float) -> int:
        return max(1, round(width * k))

    # the disc, with a darker rim for contrast on light panels
    d.ellipse(box(6, 6, 250, 250), fill=_darker(colour))
    d.ellipse(box(16, 16, 240, 240), fill=(*colour, 255))

    if state is SyncState.UP_TO_DATE:
        d.line(pts((68, 134), (110, 176), (190, 88)), fill=_WHITE, width=w(30), joint="curve")
        for x, y in ((68, 134), (190, 88)):  # round line ends
            d.ellipse(box(x - 15, y - 15, x + 15, y + 15), fill=_WHITE)
    elif state is SyncState.SYNCING:
        _sync_arrows(d, k)
        if percent is not None:
            d.arc(box(10, 10, 246, 246), 0, 360, fill=_darker(colour, 0.45), width=w(16))
            if percent > 0:
                d.arc(box(10, 10, 246, 246), -90, -90 + 360 * percent / 100, fill=_WHITE, width=w(16))
    elif state is SyncState.OFFLINE:
        d.ellipse(box(58, 104, 130, 176), fill=_WHITE)
        d.ellipse(box(96, 72, 178, 154), fill=_WHITE)
        d.ellipse(box(144, 112, 204, 172), fill=_WHITE)
        d.rectangle(box(94, 140, 176, 176), fill=_WHITE)
        d.line(pts((62, 62), (194, 194)), fill=(*colour, 255), width=w(30))
        d.line(pts((62, 62), (194, 194)), fill=_WHITE, width=w(14))
    elif state is SyncState.ERROR:
        d.rounded_rectangle(box(112, 52, 144, 158), radius=16 * k, fill=_WHITE)
        d.ellipse(box(110, 172, 146, 208), fill=_WHITE)
    elif state is SyncState.PAUSED:
        d.rounded_rectangle(box(84, 70, 116, 186), radius=8 * k, fill=_WHITE)
        d.rounded_rectangle(box(140, 70, 172, 186), radius=8 * k, fill=_WHITE)
    elif state is SyncState.STARTING:
        for x in (78, 128, 178):
            d.ellipse(box(x - 17, 111, x + 17, 145), fill=_WHITE)
    else:  # NOT_CONFIGURED: a question mark
        d.arc(box(84, 52, 172, 140), 180, 90, fill=_WHITE, width=w(26))
        d.line(pts((128, 138), (128, 164)), fill=_WHITE, width=w(26))
        d.ellipse(box(112, 178, 144, 210), fill=_WHITE)
    return img


def _sync_arrows(d: ImageDraw.ImageDraw, k: float) -> None:
    """Two arcs chasing each other, each with an arrow head."""
    r = 64.0
    bbox = ((_C - r) * k, (_C - r) * k, (_C + r) * k, (_C + r) * k)
    width = max(1, round(24 * k))
    for start in (200.0, 20.0):
        end = start + 130.0
        d.arc(bbox, start, end, fill=_WHITE, width=width)
        # arrow head at the arc's end, pointing along the direction of travel (clockwise)
        a = math.radians(end)
        cx, cy = _C + r * math.cos(a), _C + r * math.sin(a)
        tx, ty = -math.sin(a), math.cos(a)  # tangent, clockwise on screen
        nx, ny = math.cos(a), math.sin(a)  # outward normal
        head = [
            (cx + tx * 34, cy + ty * 34),
            (cx + nx * 30, cy + ny * 30),
            (cx - nx * 30, cy - ny * 30),
        ]
        d.polygon([(x * k, y * k) for x, y in head], fill=_WHITE)
