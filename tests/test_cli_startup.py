"""A command builds, and imports, only what it needs: ``--version`` and ``--help`` start without
any command's module, and the command is told from a file name that looks like one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from m3daemon.cli.main import COMMANDS, build_parser, command_in


def imported_by(args: list[str], home: Path) -> tuple[str, set[str]]:
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               XDG_STATE_HOME=str(home / "state"))
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "m3daemon", *args], env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    names = {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    return run.stdout, names


def test_version_and_help_import_no_command_module(tmp_path: Path) -> None:
    command_modules = {module for module, _f, _h in COMMANDS.values()}
    out, names = imported_by(["--version"], tmp_path)
    assert out.startswith("m3daemon ")
    assert not names & command_modules, names & command_modules
    out, names = imported_by(["--help"], tmp_path)
    assert all(name in out for name in COMMANDS)
    assert not names & command_modules, names & command_modules
    assert "m3daemon.engine.sync" not in names and "httpx" not in names


def test_the_command_is_the_first_word_that_is_not_an_option_value() -> None:
    assert command_in(["--config", "update", "status", "--json"]) == "status"
    assert command_in(["--lang", "fr", "-v", "update"]) == "update"
    assert command_in(["--config=update", "status"]) == "status"
    assert command_in(["updte"]) is None
    args = build_parser(["--config", "update", "status", "--json"]).parse_args(
        ["--config", "update", "status", "--json"])
    assert args.command == "status" and args.json and callable(args.run)
