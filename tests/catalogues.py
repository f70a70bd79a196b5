"""Checks of the translation catalogues, shared by ``tests/test_i18n.py`` and ``./dev i18n``.

A catalogue is in step when its messages are exactly the template's, every one is translated (not
fuzzy, not empty), every translation keeps the placeholders of its source text, and it compiles.
"""

from __future__ import annotations

import re
import string
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "m3daemon" / "locale"
POT = LOCALE / "m3daemon.pot"
EXTRACT_ARGS = ["-F", str(LOCALE / "babel.cfg"), "-k", "_l", "-k", "ngettext:1,2", "--no-location", "--sort-output"]

# The languages the project translates completely (issue 15); others may be partial.
COMPLETE = ("de", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt_BR", "ru")

_PERCENT = re.compile(r"%(?:\((\w+)\))?[-#0+]*\d*(?:\.\d+)?([srdifxXeEgGc%])")


def read(path: Path) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=path.parent.parent.name if path.suffix == ".po" else None, domain="m3daemon")


def ids(catalog: Catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def placeholders(text: str) -> list[str]:
    """Brace fields with their format spec (``{n}``, ``{s:.2f}``) and %-fields (``%(prog)s``, ``%s``)."""
    found: list[str] = []
    try:
        for _lit, name, spec, conv in string.Formatter().parse(text):
            if name is not None:
                found.append("{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}")
    except ValueError:
        found.append("{<broken braces>}")
    found += [f"%({m.group(1)}){m.group(2)}" if m.group(1) else f"%{m.group(2)}"
              for m in _PERCENT.finditer(text) if m.group(2) != "%"]
    return sorted(found)


def is_brace(message: Message) -> bool:
    return "python-brace-format" in message.flags or "{" in (message.id if isinstance(message.id, str) else
                                                              message.id[0])


@dataclass
class Problems:
    lang: str
    missing: list[str] = field(default_factory=list)
    obsolete: list[str] = field(default_factory=list)
    untranslated: list[str] = field(default_factory=list)
    fuzzy: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)
    compile_error: str = ""

    def all(self, complete: bool) -> list[str]:
        out = [f"{self.lang}: not in the .po (run ./dev i18n): {m!r}" for m in self.missing]
        out += [f"{self.lang}: no longer in the .pot (run ./dev i18n): {m!r}" for m in self.obsolete]
        out += [f"{self.lang}: placeholders differ: {m}" for m in self.placeholders]
        if self.compile_error:
            out.append(f"{self.lang}: does not compile: {self.compile_error}")
        if complete:
            out += [f"{self.lang}: not translated: {m!r}" for m in self.untranslated]
            out += [f"{self.lang}: fuzzy: {m!r}" for m in self.fuzzy]
        return out


def check_po(po: Path, template: Catalog) -> Problems:
    lang = po.parent.parent.name
    problems = Problems(lang)
    cat = read(po)
    want, have = ids(template), ids(cat)
    problems.missing = sorted(want - have)
    problems.obsolete = sorted(have - want)
    for message in cat:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        if key not in want:
            continue
        if message.fuzzy:
            problems.fuzzy.append(key)
        strings = [message.string] if isinstance(message.string, str) else list(message.string or ())
        if not strings or not all(strings):
            problems.untranslated.append(key)
            continue
        sources = [message.id] if isinstance(message.id, str) else list(message.id)
        expected = placeholders(sources[-1])
        for translated in strings:
            got = placeholders(translated)
            # A language with one plural form (ja, ko) uses the plural source's fields.
            if got != expected and got != placeholders(sources[0]):
                problems.placeholders.append(f"{key!r} → {translated!r} ({got} ≠ {expected})")
    try:
        sys.path.insert(0, str(ROOT))
        from m3daemon.i18n import compile_po

        compile_po(po)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        problems.compile_error = f"{type(exc).__name__}: {exc}"
    return problems


def extracted_ids() -> set[str]:
    """The messages the code and templates hold now (a fresh extraction)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "fresh.pot"
        pybabel = Path(sys.executable).with_name("pybabel")
        subprocess.run([str(pybabel), "-q", "extract", *EXTRACT_ARGS, "-o", str(out), str(ROOT)],
                       check=True, cwd=ROOT, capture_output=True)
        return ids(read(out))


def catalogues() -> list[Path]:
    return sorted(LOCALE.glob("*/LC_MESSAGES/m3daemon.po"))


def main() -> int:
    template = read(POT)
    total = len(ids(template))
    bad = 0
    for po in catalogues():
        p = check_po(po, template)
        complete = p.lang in COMPLETE
        done = total - len(p.untranslated) - len(p.missing)
        print(f"{p.lang}: {done} of {total} translated, {len(p.fuzzy)} fuzzy, "
              f"{len(p.placeholders)} placeholder problems" + ("" if not p.compile_error else ", DOES NOT COMPILE"))
        for line in p.all(complete)[:20]:
            print("   ", line)
        bad += bool(p.all(complete))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
