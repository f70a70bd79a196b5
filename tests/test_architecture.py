"""The package's layers, as rules on its imports, and who reads the clock.

Each rule reads the modules with ``ast`` (every import: at the top, inside functions, under
``if TYPE_CHECKING``), so a rule holds whatever path the code takes at run time.

The folders of ``m3daemon/`` are its architecture. Below: ``core`` (pure), ``local``, ``settings``,
``remote``, ``web`` (the front door of m3daemon's own web servers), ``engine`` (a congregation's context, clock, sync, status and its wording) and
``coordinator`` (the coordinator's tools). Above them the front-ends (``cli``, ``dashboard``,
``tray``, ``server``, ``service``, ``demo``) and ``daemon``, the host that runs the tray and the
dashboard. A front-end does not import another front-end: what two of them share (the status
wording, testing a connection, a congregation's context) lives below them, so a change made for
one cannot break the other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

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
    # functools: lru_cache, inside one call, so that each folder's date is read once, not per file
    "functools",
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


# --- front-ends do not import each other ---------------------------------------------------------

FRONT_ENDS = frozenset({"cli", "dashboard", "tray", "server", "service", "demo"})
HOST = "daemon"
#: Below every front-end and the host: none of these imports either.
BELOW = frozenset({"core", "local", "settings", "remote", "engine", "coordinator", "web", "errors", "i18n"})
#: (importer, imported): the edges between front-ends that are the point of the importer, with why.
FRONT_END_EDGES = {
    ("cli", "server"): "the CLI is the command line of the self-hosted server (`m3daemon server ...`)",
    ("cli", "service"): "the CLI is the command line of start at login (`m3daemon service ...`)",
    ("cli", "demo"): "the CLI runs `m3daemon demo`",
    ("server", "service"): "the server installs itself to start at login through service's plans",
    ("demo", "server"): "the demo runs a local `m3daemon server` to sync from",
}
#: What the host may import of the front-ends: the ones it starts.
HOST_MAY_IMPORT = frozenset({"tray", "dashboard"})


def layer(module: str) -> str | None:
    """``m3daemon.engine.sync`` → ``engine``; ``m3daemon.demo`` → ``demo``; None outside the package."""
    parts = module.split(".")
    return parts[1] if parts[0] == "m3daemon" and len(parts) > 1 else None


def crossings(sources: Path = SOURCES) -> list[tuple[str, str, Import]]:
    """(importer's layer, imported layer, the import) for every import from one layer into another."""
    out = []
    for path in modules_under(sources / "m3daemon"):
        importer = layer(module_name(path, sources))
        for imp in imports_in(path, sources):
            imported = layer(imp.module)
            if importer is not None and imported is not None and imported != importer:
                out.append((importer, imported, imp))
    return out


def front_end_crossings(sources: Path = SOURCES) -> list[Import]:
    return [imp for importer, imported, imp in crossings(sources)
            if importer in FRONT_ENDS and imported in FRONT_ENDS and (importer, imported) not in FRONT_END_EDGES]


def test_every_folder_of_the_package_is_in_a_layer() -> None:
    """A new or renamed folder must be placed in a layer here, or the rules below would skip it."""
    layers = {layer(module_name(path)) for path in modules_under(PACKAGE)} - {None, "__main__"}
    assert layers == FRONT_ENDS | BELOW | {HOST}


def test_front_ends_do_not_import_each_other() -> None:
    offending = front_end_crossings()
    assert not offending, ("front-ends share code through engine/, coordinator/ or settings/, never "
                           "directly:\n" + "\n".join(map(str, offending)))


def test_the_front_end_rule_catches_the_dashboard_importing_the_cli(tmp_path: Path) -> None:
    pkg = tmp_path / "m3daemon"
    for folder in ("cli", "dashboard", "engine"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "cli" / "setup_cmd.py").write_text("from m3daemon.engine import connection\n")
    (pkg / "dashboard" / "views.py").write_text("def test() -> None:\n    from m3daemon.cli.setup_cmd import x\n")
    found = [(imp.file, imp.module) for imp in front_end_crossings(tmp_path)]
    assert found == [("m3daemon/dashboard/views.py", "m3daemon.cli.setup_cmd")]


def test_the_host_imports_only_the_front_ends_it_starts() -> None:
    offending = [imp for importer, imported, imp in crossings()
                 if importer == HOST and imported in FRONT_ENDS - HOST_MAY_IMPORT]
    assert not offending, "\n".join(map(str, offending))


def test_nothing_below_the_front_ends_imports_them_or_the_host() -> None:
    offending = [imp for importer, imported, imp in crossings()
                 if importer in BELOW and (imported in FRONT_ENDS or imported == HOST)]
    assert not offending, "\n".join(map(str, offending))


# --- one clock: only engine/clock.py reads "today" -----------------------------------------------

CLOCK_MODULE = "m3daemon/engine/clock.py"


def clock_reads(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """``date.today()`` and ``datetime.now()`` without a zone: "today" in the computer's zone."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
        if owner_name == "date" and node.func.attr == "today":
            yield node.lineno, "date.today()"
        elif owner_name == "datetime" and node.func.attr == "now" and not node.args and not node.keywords:
            yield node.lineno, "datetime.now()"


@pytest.mark.parametrize("source", [
    "from datetime import date\nd = date.today()\n",
    "import datetime\nd = datetime.date.today()\n",
    "from datetime import datetime\nt = datetime.now()\n",
])
def test_the_clock_rule_finds_a_bare_reading_of_the_time(source: str) -> None:
    assert len(list(clock_reads(ast.parse(source)))) == 1


def test_only_the_clock_reads_today() -> None:
    """Each congregation's "today" comes from its own clock (``engine/clock.py``, in its own time
    zone); a bare ``date.today()`` would be the computer's day, wrong for a congregation in another
    zone. UTC timestamps (``datetime.now(UTC)``) for records and logs are not "today" and may stay."""
    found = []
    for path in modules_under(PACKAGE):
        file = path.relative_to(SOURCES).as_posix()
        if file == CLOCK_MODULE:
            continue
        for line, what in clock_reads(ast.parse(path.read_text(encoding="utf-8"))):
            # The self-hosted server stamps its own access log in the computer's time: no congregation's.
            if not (file.startswith("m3daemon/server/") and what == "datetime.now()"):
                found.append(f"{file}:{line}: {what}")
    assert not found, "read the congregation's clock (m3daemon.engine.context.clock_for):\n" + "\n".join(found)
