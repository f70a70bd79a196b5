"""``m3daemon demo``: a whole sync against a built-in server, with no internet and no setup.

It starts a real WebDAV server (WsgiDAV over HTTPS on loopback, with a CA made for the run), lays
out a sample congregation folder the way M³ 22–24 wrote it, then runs ``update`` twice: the first
run fills a temporary media folder, the second shows that nothing is fetched again.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from m3daemon.errors import ExitCode
from m3daemon.i18n import _

DEMO_USER = "coordinator"


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--keep", metavar="DIR", help=_("keep the media folder and server files in DIR"))
    p.set_defaults(run=run)


def sample_image(text: str, color: tuple[int, int, int], size: tuple[int, int] = (1280, 720)) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(img)
    draw.rectangle((40, 40, size[0] - 40, size[1] - 40), outline=(255, 255, 255), width=8)
    draw.text((80, size[1] // 2 - 20), text, fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def make_sample_folder(root: Path, today: date) -> dict[str, Any]:
    """An M³ 22–24 congregation folder: dated media, recurring media, a hidden marker, settings."""
    # The coming Thursday (midweek) and Sunday (weekend), at least a day away.
    mw = today + timedelta(days=(3 - today.weekday()) % 7 or 7)
    we = today + timedelta(days=(6 - today.weekday()) % 7 or 7)
    files = {
        f"Media/{mw.isoformat()}/01 - Talk outline.jpg": sample_image("Midweek: talk outline", (30, 60, 120)),
        f"Media/{mw.isoformat()}/02 - Map of the territory.jpg": sample_image("Territory map", (20, 110, 60)),
        f"Media/{we.isoformat()}/Section-pt - Visiting speaker.jpg": sample_image("Public talk", (120, 50, 30)),
        "Media/Recurring/00 - Year text.jpg": sample_image("Year text", (90, 20, 90)),
        "Media/Recurring/99 - Announcements.jpg": sample_image("Announcements", (60, 60, 60)),
        f"Hidden/{we.isoformat()}/99 - Announcements.jpg": b"",
    }
    forced = {
        "app": {"outputFolderDateFormat": "YYYY-MM-DD"},
        "meeting": {"mwDay": mw.weekday(), "mwStartTime": "19:00", "weDay": we.weekday(), "weStartTime": "10:00"},
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "forcedPrefs.json").write_text(json.dumps(forced, indent=2) + "\n", "utf-8")
    return {"midweek": mw, "weekend": we, "files": len(files)}


def tree(root: Path) -> list[str]:
    lines = []
    for path in sorted(p for p in root.rglob("*") if ".m3daemon" not in p.parts):
        rel = path.relative_to(root)
        indent = "  " * (len(rel.parts) - 1)
        lines.append(f"{indent}{rel.name}/" if path.is_dir() else f"{indent}{rel.name}  ({path.stat().st_size:,} bytes)")
    return lines


def run(args: argparse.Namespace) -> int:
    from m3daemon.config import config_from_document
    from m3daemon.devserver import LocalDavServer
    from m3daemon.sync import update

    base_ctx = tempfile.TemporaryDirectory(prefix="m3daemon-demo-") if not args.keep else None
    base = Path(args.keep) if args.keep else Path(base_ctx.name)  # type: ignore[union-attr]
    base.mkdir(parents=True, exist_ok=True)
    server_root, media, work = base / "server", base / "media", base / "work"
    for d in (server_root, work):
        d.mkdir(exist_ok=True)
    # The demo's own config and state stay inside the demo folder, never in the user's.
    os.environ.setdefault("XDG_STATE_HOME", str(work / "state"))
    os.environ.setdefault("XDG_CONFIG_HOME", str(work / "config"))
    password = "demo-" + os.urandom(6).hex()
    today = date.today()
    sample = make_sample_folder(server_root / "Congregation", today)
    try:
        with LocalDavServer(server_root, {DEMO_USER: password}, workdir=work) as srv:
            print(_("Built-in WebDAV server: {url}/dav/Congregation (HTTPS, CA made for this run)").format(url=srv.url))
            cfg = config_from_document({
                "congregation": {"name": "Demo"},
                "connection": {"url": srv.url, "username": DEMO_USER, "folder": "/dav/Congregation",
                               "ca_file": str(srv.ca_file)},
                "local": {"media_dir": str(media), "layout": "watch", "days_ahead": 14},
            }, work / "demo.toml")
            os.environ["M3DAEMON_PASSWORD"] = password
            try:
                t0 = time.perf_counter()
                first = update(cfg)
                t1 = time.perf_counter()
                second = update(cfg)
                t2 = time.perf_counter()
            finally:
                os.environ.pop("M3DAEMON_PASSWORD", None)
        print(_("Media folder after the update ({path}):").format(path=media))
        for line in tree(media):
            print("  " + line)
    finally:
        if base_ctx is not None:
            base_ctx.cleanup()
    print()
    print(_("Meetings: midweek {mw}, weekend {we}. The announcements slide is hidden on {we}.").format(
        mw=sample["midweek"], we=sample["weekend"]))
    print(_("First update:  {d} downloaded, {c} copied locally, {h} hidden, {r} requests, {s:.2f} s").format(
        d=first.downloaded, c=first.copied, h=first.hidden, r=first.requests, s=t1 - t0))
    print(_("Second update: {d} downloaded, {u} unchanged, {r} requests, {s:.2f} s (nothing to do)").format(
        d=second.downloaded, u=second.unchanged, r=second.requests, s=t2 - t1))
    ok = first.ok and second.ok and second.downloaded == 0
    return int(ExitCode.OK if ok else ExitCode.PARTIAL)
