"""The package's layers, as rules on its imports.

Each rule reads the modules with ``ast`` (every import: at the top, inside functions, under
``if TYPE_CHECKING``), so a rule holds whatever path the code takes at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "m3daemon"
SOURCES = PACKAGE.parent  # the folder that holds the package: module names are relative to it


@dataclass(frozen=True)
class Import:
    module: str  # the absolute module name, e.g. "m3daemon.core.dates" or "os.path"
    file: str  # relative to SOURCES, e.g. "m3daemon/core/model.py"
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: imports {self.module}"


def module_name(path: Path, sources: Path = SOURCES) -> str:
    parts = list(path.relative_to(sources).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in(path: Path, sources: Path = SOURCES) -> Iterator[Import]:
    """Every module that ``path`` imports, relative imports resolved; ``from m3daemon import x``
    counts as importing ``m3daemon.x``."""
    this = module_name(path, sources)
    file = path.relative_to(sources).as_posix()
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, file, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for alias in node.names:
                submodule = f"{stem}.{alias.name}"
                # `from m3daemon import errors` imports a module; `from os import path` too, but
                # for a library the stem decides the rule, so only our own names are expanded.
                own = stem.split(".")[0] == "m3daemon" and is_module(submodule, sources)
                yield Import(submodule if own else stem, file, node.lineno)


def is_module(name: str, sources: Path = SOURCES) -> bool:
    target = sources.joinpath(*name.split("."))
    return target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()


def modules_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def allowed(module: str, allow: frozenset[str]) -> bool:
    """True when ``module`` or one of its parent packages is on ``allow`` ("m3daemon.core"
    allows "m3daemon.core.prefs.keys"; "collections.abc" allows it alone, not "collections")."""
    parts = module.split(".")
    return any(".".join(parts[:n]) in allow for n in range(1, len(parts) + 1))


# --- core/ is pure -------------------------------------------------------------------------------

# The core decides (what to sync, where a file goes, which day is a meeting) and does no I/O, so it
# can be tested with values alone and reused by every front-end. An allow-list, not a deny-list:
# a new import must be argued for here. Not on it, on purpose: os, pathlib (the core handles remote
# names as strings; paths on disk belong to local/), sqlite3, httpx, threading, subprocess, time
# (the clock comes from the engine), and every other m3daemon package.
CORE_ALLOWED = frozenset({
    "__future__", "collections.abc", "copy", "dataclasses", "datetime", "enum", "json", "re",
    "types", "typing", "unicodedata", "zoneinfo",
    # logging: the model notes at debug level what it ignores in a listing; a log record is not a
    # side effect the core's results depend on, and the application decides where records go.
    "logging",
    "m3daemon.core",
    "m3daemon.errors",  # the one error family: a core rule can raise its user-facing error
    "m3daemon.i18n",  # gettext's `_`: the core words its problems ("name is too long")
})


def core_imports_outside_allow_list(sources: Path = SOURCES) -> list[Import]:
    return [imp for path in modules_under(sources / "m3daemon" / "core") for imp in imports_in(path, sources)
            if not allowed(imp.module, CORE_ALLOWED)]


def test_the_core_imports_only_the_standard_library_s_pure_modules_and_itself() -> None:
    assert modules_under(PACKAGE / "core"), "m3daemon/core/ has no modules: the rule checks nothing"
    offending = core_imports_outside_allow_list()
    assert not offending, "m3daemon/core/ must stay pure:\n" + "\n".join(map(str, offending))


def test_the_core_rule_catches_a_forbidden_import_even_inside_a_function(tmp_path: Path) -> None:
    # The same check on a copy of the core with one module that reads a file the way a slip would.
    core = tmp_path / "m3daemon" / "core"
    core.mkdir(parents=True)
    (core / "__init__.py").write_text("")
    (core / "pure.py").write_text("from __future__ import annotations\nimport re\nfrom . import sibling\n")
    (core / "sibling.py").write_text("def size(p: str) -> int:\n    import os\n    return os.path.getsize(p)\n")
    (core / "net.py").write_text("from httpx import Client\nfrom m3daemon.local import record\n")
    found = sorted((imp.file, imp.module) for imp in core_imports_outside_allow_list(tmp_path))
    assert found == [("m3daemon/core/net.py", "httpx"), ("m3daemon/core/net.py", "m3daemon.local"),
                     ("m3daemon/core/sibling.py", "os")]
