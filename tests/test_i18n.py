"""m3daemon in the user's language: the catalogues, the choice of language, and every screen.

The catalogue checks live in tests/catalogues.py (``./dev i18n`` prints the same report).
"""

from __future__ import annotations

import argparse
import gettext
import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import catalogues
import httpx
import pytest
from test_dashboard_browser import browser  # noqa: F401 - the browser fixture

from m3daemon import i18n
from m3daemon.cli.main import build_parser, main
from m3daemon.i18n import (
    EnglishLogs,
    LazyText,
    _,
    _l,
    choose_language,
    english,
    ngettext,
    normalize_language,
    use_language,
)

LANGUAGES = catalogues.COMPLETE


# --- the catalogues ----------------------------------------------------------------------------


def test_the_template_holds_exactly_the_messages_of_the_code() -> None:
    fresh = catalogues.extracted_ids()
    committed = catalogues.ids(catalogues.read(catalogues.POT))
    assert not fresh - committed, f"new messages: run ./dev i18n: {sorted(fresh - committed)[:10]}"
    assert not committed - fresh, f"messages no longer used: run ./dev i18n: {sorted(committed - fresh)[:10]}"


def test_every_promised_language_has_a_catalogue() -> None:
    shipped = {p.parent.parent.name for p in catalogues.catalogues()}
    assert set(LANGUAGES) <= shipped


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_catalogue_is_complete_in_step_and_compiles(lang: str) -> None:
    po = catalogues.LOCALE / lang / "LC_MESSAGES" / "m3daemon.po"
    problems = catalogues.check_po(po, catalogues.read(catalogues.POT)).all(complete=True)
    assert not problems, "\n".join(problems[:30])


def test_a_broken_placeholder_is_found(tmp_path: Path) -> None:
    po = tmp_path / "xx" / "LC_MESSAGES" / "m3daemon.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                  'msgid "{n} files"\nmsgstr "{count} Dateien"\n', encoding="utf-8")
    template = catalogues.Catalog()
    template.add("{n} files")
    problems = catalogues.check_po(po, template)
    assert problems.placeholders and not problems.missing


# --- which language ----------------------------------------------------------------------------


def test_the_language_is_chosen_in_the_documented_order() -> None:
    env = {"LANG": "de_DE.UTF-8"}
    assert choose_language("fr", "es", env) == "fr"           # [congregation] language / --lang
    assert choose_language(None, "es", env) == "es"           # M³'s app.localAppLang
    assert choose_language(None, None, env) == "de"           # the operating system
    assert choose_language(None, None, {"LANG": "C"}) == "en"  # English last
    assert choose_language("xx", None, {"LANG": "sv_SE"}) == "en"  # nothing shipped fits


def test_language_codes_of_every_kind_find_their_catalogue() -> None:
    assert normalize_language("pt-BR") == "pt_BR"
    assert normalize_language("pt") == "pt_BR"
    assert normalize_language("fr_CA.UTF-8") == "fr"
    assert normalize_language("ja-JP") == "ja"
    assert normalize_language("en-GB") == "en"
    assert normalize_language("C.UTF-8") is None


def test_a_congregations_language_setting_changes_the_commands_language(tmp_path: Path) -> None:
    cfg = tmp_path / "cong.toml"
    cfg.write_text('[congregation]\nname = "Nord"\nlanguage = "fr"\n', encoding="utf-8")
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit):
        main(["--config", str(cfg), "status", "--help"])
    with use_language("fr"):
        assert _("usage: ").strip() in out.getvalue()
        assert _("show the sync state") in out.getvalue()


def test_m3s_own_language_setting_applies_when_the_congregation_sets_none(tmp_path: Path) -> None:
    cfg = tmp_path / "cong.toml"
    cfg.write_text('[congregation]\nname = "Norte"\n[prefs]\n"app.localAppLang" = "es"\n', encoding="utf-8")
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit):
        main(["--config", str(cfg), "--help"])
    with use_language("es"):
        assert _("update the media folders now") in out.getvalue()


def test_json_output_stays_english(tmp_path: Path) -> None:
    cfg = tmp_path / "cong.toml"
    cfg.write_text('[congregation]\nlanguage = "de"\n', encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["--config", str(cfg), "update", "--json"])
    assert rc == 2
    assert "Congregation sync is not set up" in out.getvalue()
    with use_language("de"):
        assert _("Congregation sync is not set up in {path}.") != "Congregation sync is not set up in {path}."


def test_log_files_stay_english_while_people_read_their_language() -> None:
    with use_language("fr"):
        text = _("Error: {message}").format(message=_("Stopped."))
        assert text != "Error: Stopped."
    record = logging.LogRecord("m3daemon", logging.WARNING, __file__, 1, "%s", (text,), None)
    EnglishLogs().filter(record)
    assert record.getMessage() == "Error: Stopped."
    assert english(text) == "Error: Stopped."


def test_translated_texts_survive_copies_and_pickles() -> None:
    """The daemon's status values are copied by dataclasses.asdict (a deepcopy of each field)."""
    import copy
    import dataclasses
    import pickle

    @dataclasses.dataclass
    class Shown:
        items: list[str]

    with use_language("fr"):
        text = _("Error: {message}").format(message=_("Stopped."))
    for copied in (copy.deepcopy(text), pickle.loads(pickle.dumps(text)),
                   dataclasses.asdict(Shown([text]))["items"][0]):
        assert copied == text and english(copied) == "Error: Stopped."


def test_texts_defined_at_import_are_translated_when_shown() -> None:
    lazy = _l("show the sync state")
    assert isinstance(lazy, LazyText)
    with use_language("de"):
        assert str(lazy) == _("show the sync state") != "show the sync state"
        assert f"{lazy}" == str(lazy)
    assert str(lazy) == "show the sync state"
    assert json.dumps(lazy) == '"show the sync state"'


def test_a_number_decides_the_form() -> None:
    assert ngettext("{n} file", "{n} files", 1).format(n=1) == "1 file"
    assert ngettext("{n} file", "{n} files", 2).format(n=2) == "2 files"
    with use_language("ru"):
        forms = {ngettext("  ({n} file)", "  ({n} files)", n).format(n=n) for n in (1, 2, 5)}
        assert len(forms) == 3  # Russian has three forms: 1 файл, 2 файла, 5 файлов


def test_dates_and_weekdays_come_from_cldr() -> None:
    thursday = date(2026, 12, 3)
    with use_language("fr"):
        assert i18n.weekday_name(thursday) == "jeudi"
    with use_language("de"):
        assert i18n.weekday_name(thursday) == "Donnerstag"
    with use_language("ja"):
        assert i18n.weekday_name(thursday) == "木曜日"
    with use_language("en"):
        assert i18n.time_text(datetime(2026, 12, 3, 19, 0)) == "7:00\u202fPM"


# --- every screen ------------------------------------------------------------------------------


class _Recorder(gettext.NullTranslations):
    """Notes every message shown that the catalogue has no translation for."""

    def __init__(self, inner: gettext.NullTranslations) -> None:
        super().__init__()
        self.inner = inner
        self.catalog: dict[Any, str] = getattr(inner, "_catalog", {})
        self.misses: set[str] = set()

    def gettext(self, message: str) -> str:
        if not self.catalog.get(message):
            self.misses.add(message)
        return self.inner.gettext(message)

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        if not self.catalog.get((msgid1, 0)):
            self.misses.add(msgid1)
        return self.inner.ngettext(msgid1, msgid2, n)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, _Recorder]]:
    recorders: dict[str, _Recorder] = {}
    original = i18n.translation

    def recording(lang: str) -> gettext.NullTranslations:
        if lang == i18n.SOURCE_LANGUAGE:
            return original(lang)
        if lang not in recorders:
            recorders[lang] = _Recorder(original(lang))
        return recorders[lang]

    monkeypatch.setattr(i18n, "translation", recording)
    yield recorders


def command_paths() -> list[list[str]]:
    """Every command and sub-command of ``m3daemon``, e.g. ``["media", "add"]``."""
    found: list[list[str]] = [[]]

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append([*prefix, name])
                    walk(sub, [*prefix, name])

    def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return dict(action.choices)

    for name in commands(build_parser(["--help"])):
        found.append([name])
        walk(commands(build_parser([name]))[name], [name])
    return [p for i, p in enumerate(found) if p not in found[:i]]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_help_of_every_command_is_translated(lang: str, recorder: dict[str, _Recorder]) -> None:
    paths = command_paths()
    assert ["media", "add"] in paths and ["server", "user", "add"] in paths
    for path in paths:
        out = io.StringIO()
        with redirect_stdout(out), pytest.raises(SystemExit):
            main(["--lang", lang, *path, "--help"])
        assert out.getvalue()
    misses = recorder[lang].misses if lang in recorder else set()
    assert not misses, f"{lang}: shown untranslated: {sorted(misses)[:20]}"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self._skip = 0
        self.lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag in ("script", "style"):
            self._skip += 1
        for name in ("title", "aria-label", "placeholder", "alt"):
            if a.get(name):
                self.chunks.append(str(a[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.chunks.append(" ".join(data.split()))


def page_text(html: str) -> _Text:
    p = _Text()
    p.feed(html)
    return p


# Words that are the same in every language: names of things, not messages.
PROPER_NAMES = {"m3daemon", "m³", "M³", "WebDAV", "Box", "Koofr", "4shared", "PowerFolder", "Nextcloud",
                "ownCloud", "OK", "CA", "URL", "HTTPS", "JSON", "PDF", "ETag"}


_LOG_LINE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")  # the log file's lines stay English
_DATE_FORMAT = re.compile(r"[DMY]+[-/. ][DMY]+[-/. ][DMY]+( - d+)?")  # M³'s folder date formats
_TECHNICAL = re.compile(r"[/\\:=@_\[\]{}<>]|\.\w|^-")  # paths, addresses, keys, file names, flags


def same_in_both(lang: str) -> set[str]:
    """Messages the catalogue translates with the very same text (German "Status", "Video")."""
    catalog = catalogues.read(catalogues.LOCALE / lang / "LC_MESSAGES" / "m3daemon.po")
    return {m.id for m in catalog if isinstance(m.id, str) and m.id and m.string == m.id}


def untranslated(english_page: list[str], page: list[str], data: set[str], same: set[str] = frozenset()) -> list[str]:
    """Chunks shown in both languages alike that are English words, not names, data or technical text."""
    out = []
    for chunk in sorted(set(english_page) & set(page)):
        if chunk in same or _LOG_LINE.match(chunk) or _DATE_FORMAT.fullmatch(chunk):
            continue
        rest = chunk
        for value in sorted(data | PROPER_NAMES, key=len, reverse=True):
            rest = rest.replace(value, " ")
        words = [t.strip(".,;:()\"«»!?…") for t in rest.split() if not _TECHNICAL.search(t)]
        if any(len(w) >= 3 and re.fullmatch(r"[A-Za-z'’-]*[a-z][A-Za-z'’-]*", w) for w in words):
            out.append(chunk)
    return out


PAGES = ("status", "upcoming", "manage", "connection", "settings", "logs")


def test_every_dashboard_page_in_every_language(wsgidav_server: Any, isolated_env: Path) -> None:
    from test_dashboard import make_member, sample_folder, start_hall

    sample_folder(wsgidav_server.root / "Cong")
    members = [make_member(wsgidav_server, "english", "North")]
    for lang in LANGUAGES:
        m = make_member(wsgidav_server, f"c-{lang}", f"North {lang}")
        m.config_path.write_text(m.config_path.read_text().replace(
            "[congregation]\n", f'[congregation]\nlanguage = "{lang}"\n', 1))
        members.append(m)
    hall = start_hall(members)
    try:
        data = {"North", *(f"North {lang}" for lang in LANGUAGES), "Outline.png", "Talk.mp4", "Year text.mp4", "Last week.png", wsgidav_server.url,
                wsgidav_server.username or "", "/dav/Cong", *(str(m.media) for m in members),
                *(str(m.config_path) for m in members)}
        with httpx.Client(base_url=hall.base(), trust_env=False, follow_redirects=True, timeout=30) as web:
            web.get(hall.login_url().removeprefix(hall.base()))
            english_pages = {p: page_text(web.get(f"/c/{hall.cid(members[0])}/{p}").text).chunks for p in PAGES}
            problems: list[str] = []
            for m, lang in zip(members[1:], LANGUAGES, strict=True):
                cid = hall.cid(m)
                for p in PAGES:
                    resp = web.get(f"/c/{cid}/{p}")
                    assert resp.status_code == 200, (lang, p, resp.text[:300])
                    text = page_text(resp.text)
                    assert text.lang == lang.replace("_", "-")
                    problems += [f"{lang} {p}: {c!r}"
                                 for c in untranslated(english_pages[p], text.chunks, data, same_in_both(lang))]
        assert not problems, "\n".join(problems[:40])
    finally:
        assert hall.stop() == 0


def test_the_status_page_speaks_french_and_russian_in_a_real_browser(
        wsgidav_server: Any, isolated_env: Path, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    """Screenshots: docs/screenshots/dashboard-status-fr.png and dashboard-status-ru.png."""
    from test_dashboard import make_member, sample_folder, start_hall
    from test_dashboard_browser import shoot

    sample_folder(wsgidav_server.root / "Cong")
    members = []
    for lang, name in (("fr", "Nord"), ("ru", "Север")):
        m = make_member(wsgidav_server, f"c-{lang}", name)
        m.config_path.write_text(m.config_path.read_text().replace(
            "[congregation]\n", f'[congregation]\nlanguage = "{lang}"\n', 1))
        members.append((lang, m))
    hall = start_hall([m for _lang, m in members])
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        for lang, m in members:
            page.goto(hall.login_url(m))
            assert page.locator("html").get_attribute("lang") == lang
            with use_language(lang):
                assert page.get_by_role("button", name=_("Update media folders now")).is_visible()
            shoot(page, f"status-{lang}", tmp_path)
        context.close()
    finally:
        assert hall.stop() == 0
