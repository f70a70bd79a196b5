"""``m3daemon demo``: a whole sync against a built-in server, with no internet and no setup.

It starts the congregation's own server (``m3daemon server``: WsgiDAV over HTTPS on loopback, with
a CA made for the run) with a coordinator and a member account. The coordinator forces the meeting
days, uploads media and hides one item with the coordinator tools; then the member updates twice:
the first run fills a temporary media folder, the second shows that nothing is fetched again.
"""

from __future__ import annotations

import argparse
import io
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


def make_sample_files(folder: Path) -> dict[str, Path]:
    """The coordinator's files on his own computer: talk images and a year-text slide."""
    files = {
        "outline": ("Talk outline.jpg", "Midweek: talk outline", (30, 60, 120)),
        "map": ("Map of the territory.jpg", "Territory map", (20, 110, 60)),
        "speaker": ("Visiting speaker.jpg", "Public talk", (120, 50, 30)),
        "yeartext": ("Year text.jpg", "Year text", (90, 20, 90)),
        "announce": ("Announcements.jpg", "Announcements", (60, 60, 60)),
    }
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for key, (name, text, color) in files.items():
        (folder / name).write_bytes(sample_image(text, color))
        out[key] = folder / name
    # Files M³ 25+ cannot show, which the member's watch layout turns into images (as M³ 24 did).
    out["handout"] = folder / "Talk handout.pdf"
    out["handout"].write_bytes(sample_pdf(2))
    out["logo"] = folder / "Hall logo.svg"
    out["logo"].write_text('<svg xmlns="http://www.w3.org/2000/svg" width="320" height="180">'
                           '<rect width="320" height="180" fill="#2a5caa"/>'
                           '<circle cx="160" cy="90" r="60" fill="#fff"/></svg>', "utf-8")
    out["photo"] = folder / "Kingdom Hall.heic"
    out["photo"].write_bytes(sample_heic())
    return out


def sample_pdf(pages: int) -> bytes:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument.new()
    for _n in range(pages):
        doc.new_page(595, 842)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def sample_heic() -> bytes:
    import pillow_heif
    from PIL import Image

    buf = io.BytesIO()
    pillow_heif.from_pillow(Image.open(io.BytesIO(sample_image("Kingdom Hall", (40, 90, 40), (640, 360))))).save(
        buf, quality=80)
    return buf.getvalue()


def coordinator_prepares(cfg: Any, password: str, files: dict[str, Path], mw: date, we: date) -> None:
    """What the coordinator does, with the same tools as `m3daemon media …` and `settings force`."""
    from m3daemon.coordinator import media
    from m3daemon.coordinator.context import Coordinator
    from m3daemon.coordinator.forced import edit_forced, forcing

    with Coordinator.open(cfg, password=password) as coord:
        edit_forced(coord.writer, forcing({
            "app.outputFolderDateFormat": "YYYY-MM-DD",
            "meeting.mwDay": mw.weekday(), "meeting.mwStartTime": "19:00",
            "meeting.weDay": we.weekday(), "meeting.weStartTime": "10:00",
        }))
        batches = [
            media.add_recurring(coord, media.plan_uploads([files["yeartext"], files["announce"]], "00", None)),
            media.add_media(coord, mw, media.plan_uploads([files["outline"]], "01", None)),
            media.add_media(coord, mw, media.plan_uploads([files["map"]], "02", None)),
            media.add_media(coord, mw, media.plan_uploads([files["handout"]], "03", None)),
            media.add_media(coord, we, media.plan_uploads([files["logo"], files["photo"]], None, None)),
            media.add_media(coord, we, media.plan_uploads([files["speaker"]], None, "pt")),
            media.hide(coord, we, ["00 - Announcements.jpg"]),
        ]
        for batch in batches:
            if batch.fatal is not None or batch.failed:
                raise RuntimeError(f"the demo coordinator failed: {batch}")


def tree(root: Path) -> list[str]:
    lines = []
    for path in sorted(p for p in root.rglob("*") if ".m3daemon" not in p.parts):
        rel = path.relative_to(root)
        indent = "  " * (len(rel.parts) - 1)
        lines.append(f"{indent}{rel.name}/" if path.is_dir() else f"{indent}{rel.name}  ({path.stat().st_size:,} bytes)")
    return lines


def run(args: argparse.Namespace) -> int:
    from m3daemon.engine.clock import clock_in
    from m3daemon.engine.sync import update
    from m3daemon.server import Role, local_server
    from m3daemon.settings.config import config_from_document

    base_ctx = tempfile.TemporaryDirectory(prefix="m3daemon-demo-") if not args.keep else None
    base = Path(args.keep) if args.keep else Path(base_ctx.name)  # type: ignore[union-attr]
    base.mkdir(parents=True, exist_ok=True)
    media, work = base / "media", base / "work"
    work.mkdir(exist_ok=True)
    # The demo's own config and state stay inside the demo folder, never in the user's.
    os.environ.setdefault("XDG_STATE_HOME", str(work / "state"))
    os.environ.setdefault("XDG_CONFIG_HOME", str(work / "config"))
    coord_pw, member_pw = "demo-" + os.urandom(6).hex(), "demo-" + os.urandom(6).hex()
    today = clock_in(None).today()  # the demo's congregations have no zone of their own: the computer's
    # The coming Thursday (midweek) and Sunday (weekend), at least a day away.
    mw = today + timedelta(days=(3 - today.weekday()) % 7 or 7)
    we = today + timedelta(days=(6 - today.weekday()) % 7 or 7)
    files = make_sample_files(work / "coordinator-files")
    accounts = {DEMO_USER: (coord_pw, Role.COORDINATOR), "member": (member_pw, Role.MEMBER)}
    try:
        with local_server(base / "server", accounts, access_log=False) as srv:
            print(_("Congregation server (m3daemon server, HTTPS, its own CA): {url}").format(url=srv.url))
            conn = {"url": srv.url, "folder": srv.folder, "ca_file": str(srv.ca_file)}
            coordinator = config_from_document({
                "congregation": {"name": "Demo"}, "connection": {**conn, "username": DEMO_USER},
                "local": {"media_dir": str(work / "coordinator-media")},
            }, work / "coordinator.toml")
            member = config_from_document({
                "congregation": {"name": "Demo"}, "connection": {**conn, "username": "member"},
                "local": {"media_dir": str(media), "layout": "watch", "days_ahead": 14},
            }, work / "member.toml")
            t0 = time.perf_counter()
            coordinator_prepares(coordinator, coord_pw, files, mw, we)
            t1 = time.perf_counter()
            print(_("The coordinator forced the meeting days, uploaded 8 files (one PDF, one SVG, one HEIC) "
                    "and hid one ({s:.2f} s).").format(s=t1 - t0))
            os.environ["M3DAEMON_PASSWORD"] = member_pw
            try:
                first = update(member)
                t2 = time.perf_counter()
                second = update(member)
                t3 = time.perf_counter()
            finally:
                os.environ.pop("M3DAEMON_PASSWORD", None)
            refused = _member_may_not_write(srv.folder_url, srv.ca_file, member_pw)
            converted = [media / mw.isoformat() / "03 - Talk handout-01.png", media / mw.isoformat() /
                         "03 - Talk handout-02.png", media / we.isoformat() / "Hall logo.png",
                         media / we.isoformat() / "Kingdom Hall.jpg"]
            images = all(p.is_file() for p in converted)
        print(_("Member's media folder after the update ({path}):").format(path=media))
        for line in tree(media):
            print("  " + line)
    finally:
        if base_ctx is not None:
            base_ctx.cleanup()
    print()
    print(_("Meetings: midweek {mw}, weekend {we}. The announcements slide is hidden on {we}.").format(
        mw=mw, we=we))
    print(_("Member's first update:  downloaded {d}, copied locally {c}, hidden {h}, requests {r}, {s:.2f} s")
          .format(d=first.downloaded, c=first.copied, h=first.hidden, r=first.requests, s=t2 - t1))
    print(_("Member's second update: downloaded {d}, unchanged {u}, requests {r}, {s:.2f} s (nothing to do)")
          .format(d=second.downloaded, u=second.unchanged, r=second.requests, s=t3 - t2))
    print(_("A member account trying to delete a file on the server: {status} (members may only read).")
          .format(status=refused))
    print(_("The PDF, SVG and HEIC files became images M³ 25+ shows: {ok}.").format(
        ok=_("yes") if images else _("no")))
    ok = first.ok and second.ok and second.downloaded == 0 and refused == 403 and images
    return int(ExitCode.OK if ok else ExitCode.PARTIAL)


def _member_may_not_write(folder_url: str, ca_file: Path, password: str) -> int:
    import ssl

    import httpx

    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file)), auth=("member", password)) as c:
        return c.delete(folder_url.rstrip("/") + "/Media/Recurring/00%20-%20Year%20text.jpg").status_code
