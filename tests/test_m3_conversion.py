"""PDF, SVG and HEIC in the watch layout: M³ 25+ shows none of them, so each becomes the images
M³ 22–24 made of it (PDF pages → `<name>-NN.png`, SVG → `<name>.png`, HEIC → `<name>.jpg`), once per
version, placed like any download. Real files made here (pypdfium2, pillow-heif), a real server.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from member import Member, day, run_cli
from servers import DavServer, bump, make_tree

FOLDER = "/dav/Cong"
D = day(2)


def pdf(pages: list[tuple[float, float]]) -> bytes:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument.new()
    for width, height in pages:
        doc.new_page(width, height)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def heic(colour: tuple[int, int, int] = (20, 160, 60)) -> bytes:
    import pillow_heif
    from PIL import Image

    out = io.BytesIO()
    pillow_heif.from_pillow(Image.new("RGB", (64, 48), colour)).save(out, quality=90)
    return out.getvalue()


SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100">'
       b'<rect width="200" height="100" fill="#c00"/></svg>')


def image(path: Path) -> tuple[str, tuple[int, int]]:
    from PIL import Image

    with Image.open(path) as im:
        return str(im.format), im.size


@pytest.fixture
def cong(wsgidav_server: DavServer) -> Path:
    root = wsgidav_server.root / "Cong"
    make_tree(root, {
        f"Media/{D}/Slides.pdf": pdf([(595, 842), (842, 595)]),  # portrait, then landscape
        f"Media/{D}/Logo.svg": SVG,
        f"Media/{D}/IMG_0001.HEIC": heic(),
        f"Media/{D}/Notes.docx": b"PK\x03\x04 not a meeting file",
    })
    return root


def member(server: DavServer, home: Path, layout: str = "watch", **prefs: object) -> Member:
    return Member.create(home, server.url, FOLDER, server.username, server.password, server.ca_file,
                         layout=layout, name=f"m-{layout}", prefs=prefs or None)


def test_pdf_svg_and_heic_become_the_images_m3_24_made(
    wsgidav_server: DavServer, cong: Path, isolated_env: Path
) -> None:
    """Before: `Slides.pdf`, `Logo.svg`, `IMG_0001.HEIC` in the date folder, and M³ 25+ showed none.
    After: `Slides-01.png`, `Slides-02.png`, `Logo.png`, `IMG_0001.jpg`; `update` says which file M³
    will never show."""
    m = member(wsgidav_server, isolated_env)
    report = m.update()
    folder = m.media / D.isoformat()
    assert sorted(p.name for p in folder.iterdir()) == [
        "IMG_0001.jpg", "Logo.png", "Notes.docx", "Slides-01.png", "Slides-02.png"]
    assert image(folder / "Slides-01.png") == ("PNG", (1527, 2160))  # 2160 high, as M³ 24 rendered
    assert image(folder / "Slides-02.png") == ("PNG", (3057, 2160))
    assert image(folder / "Logo.png") == ("PNG", (4320, 2160))
    assert image(folder / "IMG_0001.jpg") == ("JPEG", (64, 48))
    assert report.failed == 0 and report.copied == 4
    assert any(f"M³ 25+ does not show {D}/Notes.docx" in w for w in report.warnings), report.warnings
    assert not [p for p in (m.media / ".m3daemon").rglob("*") if p.name.endswith((".tmp", ".download", ".part"))]

    # converted once per version: the next update downloads nothing and converts nothing
    before = {p.name: p.stat().st_ino for p in (m.media / ".m3daemon" / "converted").rglob("*")}
    again = m.update()
    assert (again.downloaded, again.copied, again.unchanged) == (0, 0, 5), again
    assert again.bytes < 4000  # the listing only, no file body
    assert {p.name: p.stat().st_ino for p in (m.media / ".m3daemon" / "converted").rglob("*")} == before

    # what `m3daemon update` prints
    proc = m.cli("update")
    assert proc.returncode == 0, proc.stderr
    assert f"M³ 25+ does not show {D}/Notes.docx" in proc.stdout + proc.stderr

    # a new version with one page: page 1 replaced, page 2 gone
    bump(cong / "Media" / D.isoformat() / "Slides.pdf", pdf([(842, 595)]))
    third = m.update(allow_deletions=True)
    assert third.failed == 0
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("Slides")) == ["Slides-01.png"]
    assert image(folder / "Slides-01.png") == ("PNG", (3057, 2160))


def test_a_file_that_cannot_be_converted_is_reported_and_the_rest_arrives(
    wsgidav_server: DavServer, cong: Path, isolated_env: Path
) -> None:
    (cong / "Media" / D.isoformat() / "Broken.pdf").write_bytes(b"%PDF-1.4 this is not a PDF")
    m = member(wsgidav_server, isolated_env, **{"meeting.mwDay": D.weekday(), "meeting.mwStartTime": "19:00"})
    code, result = m.update_json()
    assert code == 1 and result["failed"] == 1
    [err] = [e for e in result["errors"] if "Broken.pdf" in e["path"]]
    assert "Broken.pdf cannot be converted into images for M³" in err["message"]
    assert "upload images instead" in err["remedy"]
    assert (m.media / D.isoformat() / "Slides-02.png").is_file()
    # readiness names it; and the same broken version is not downloaded again
    status = json.loads(m.cli("status", "--json").stdout)
    day_ready = next(r for r in status["readiness"] if r["date"] == D.isoformat())
    assert day_ready["missing"] == ["Broken.pdf"] and not day_ready["complete"]
    code, again = m.update_json()
    assert code == 1 and again["failed"] == 1 and again["downloaded"] == 0


def test_the_classic_layout_keeps_the_originals_for_m3_24_to_convert(
    wsgidav_server: DavServer, cong: Path, isolated_env: Path
) -> None:
    m = member(wsgidav_server, isolated_env, layout="classic")
    assert m.update().ok
    assert sorted(p.rpartition("/")[2] for p in m.files()) == ["IMG_0001.HEIC", "Logo.svg", "Notes.docx", "Slides.pdf"]


def test_the_coordinator_hears_before_the_upload_and_media_ls_says_what_m3_shows(
    wsgidav_server: DavServer, cong: Path, isolated_env: Path, tmp_path: Path
) -> None:
    coordinator = member(wsgidav_server, isolated_env)
    notes = tmp_path / "Agenda.txt"
    notes.write_text("points")
    slides = tmp_path / "Talk.pdf"
    slides.write_bytes(pdf([(595, 842)]))
    rc, out, err = run_cli(coordinator, "media", "add", D.isoformat(), str(notes), str(slides))
    assert rc == 0, out + err
    assert "Warning: M³ 25+ will not show Agenda.txt" in err
    assert "Talk.pdf is shown as images" in err
    assert err.index("Warning: M³ 25+ will not show") < len(err)
    coordinator.update()
    rc, out, err = run_cli(coordinator, "media", "ls", D.isoformat(), "--json")
    entries = {e["name"]: e for e in json.loads(out)["dates"][0]["entries"]}
    assert entries["Agenda.txt"]["m3"] == "never" and entries["Talk.pdf"]["m3"] == "converted"
    assert entries["Slides.pdf"]["here"] is True  # its images are here
    assert entries["Logo.svg"]["m3"] == "converted" and entries["IMG_0001.HEIC"]["m3"] == "converted"
    rc, table, err = run_cli(coordinator, "media", "ls", D.isoformat())
    assert any(line.split()[0] == "Agenda.txt" and line.rstrip().endswith("never") for line in table.splitlines())
