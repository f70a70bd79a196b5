"""A command builds, and imports, only what it needs: ``--version`` and ``--help`` start without
any command's module, the command is told from a file name that looks like one, a one-shot
command collects its young objects less often, and the process ends without the final
collections. (What a sync through the command imports: tests/test_member_sync.py.)"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from member import imported_modules

from m3daemon.cli.main import COMMANDS, ONE_SHOT_GC_THRESHOLD, build_parser, command_in, main


def imported_by(args: list[str], home: Path) -> tuple[str, set[str]]:
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               XDG_STATE_HOME=str(home / "state"))
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "m3daemon", *args], env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    return run.stdout, imported_modules(run.stderr)


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


def test_a_command_ends_without_the_interpreters_final_collections(tmp_path: Path) -> None:
    """The objects left at exit are frozen, so shutdown's collections do not walk them (tens of
    ms after a sync), while the output is complete and the atexit handlers still run."""
    script = ("import atexit, gc, sys\n"
              "from m3daemon.cli.main import main\n"
              "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, flush=True))\n"
              "code = main(['providers'])\n"
              "print('before exit', gc.get_freeze_count(), flush=True)\n"
              "sys.exit(code)\n")
    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_STATE_HOME=str(tmp_path / "state"))
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "before exit 0" in lines  # nothing is frozen while the command runs
    assert lines[-1] == "frozen True"  # by the time the last handler runs
    assert len(lines) > 3  # the command's own output came first, whole


def test_a_command_that_hands_its_work_to_the_daemon_loads_no_http_library() -> None:
    """The control client is a socket: ``http.client`` (with ``email`` and ``ssl``) is 30-40 ms
    of a 0.2 s ``update`` that the daemon runs."""
    modules = "m3daemon.cli.main, m3daemon.cli.update_cmd, m3daemon.settings.config, m3daemon.daemon.control"
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {modules}"],
                         capture_output=True, text=True, timeout=60, check=True)
    names = imported_modules(run.stderr)
    assert "m3daemon.daemon.control" in names
    assert not names & {"http.client", "email.parser", "ssl", "httpx", "m3daemon.engine.sync"}, names


def test_a_command_collects_young_objects_less_often_and_the_daemon_as_python_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A one-shot command ends soon: collecting the youngest objects every 700 allocations was 3 %
    of a no-op ``update``. The daemon, which runs for months, keeps Python's collector as it is."""
    from m3daemon.cli import daemon_cmds, info_cmds

    seen: dict[str, int] = {}

    def noting(name: str) -> Any:
        def run(_args: argparse.Namespace) -> int:
            seen[name] = gc.get_threshold()[0]
            return 0
        return run

    monkeypatch.setattr(info_cmds, "run_providers", noting("providers"))
    monkeypatch.setattr(daemon_cmds, "run_daemon", noting("run"))
    before = gc.get_threshold()
    assert main(["providers"]) == 0
    assert main(["run", "--no-tray"]) == 0
    assert seen == {"providers": ONE_SHOT_GC_THRESHOLD, "run": before[0]}
    assert gc.get_threshold() == before  # and put back when main() returns

