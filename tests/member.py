"""A member's computer in tests: a config pointing at a server, a media folder, and ways to run
``update`` in-process (for reports) or as the real CLI (for exit codes and messages)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import tomli_w

from m3daemon.cli.main import main
from m3daemon.engine.sync import SyncReport, update
from m3daemon.settings.config import Config, load_config

TODAY = date.today()


def day(offset: int) -> date:
    return TODAY + timedelta(days=offset)


def iso(offset: int) -> str:
    return day(offset).isoformat()


@dataclass
class Member:
    config_path: Path
    media: Path
    password: str
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls, home: Path, url: str, folder: str, username: str, password: str, ca_file: Path | None,
        *, layout: str = "watch", days_ahead: int = 14, prefs: dict[str, Any] | None = None,
        insecure_loopback: bool = False, name: str = "member", media: Path | None = None,
    ) -> Member:
        media = media if media is not None else home / f"{name}-media"
        conn: dict[str, Any] = {"url": url, "username": username, "folder": folder}
        if ca_file is not None:
            conn["ca_file"] = str(ca_file)
        if insecure_loopback:
            conn["allow_insecure_loopback"] = True
        doc: dict[str, Any] = {
            "connection": conn,
            "local": {"media_dir": str(media), "layout": layout, "days_ahead": days_ahead},
        }
        if prefs:
            doc["prefs"] = prefs
        path = home / f"{name}.toml"
        path.write_text(tomli_w.dumps(doc), "utf-8")
        return cls(path, media, password)

    @property
    def config(self) -> Config:
        return load_config(self.config_path)

    def update(self, **kwargs: Any) -> SyncReport:
        os.environ["M3DAEMON_PASSWORD"] = self.password
        try:
            return update(self.config, **kwargs)
        finally:
            os.environ.pop("M3DAEMON_PASSWORD", None)

    def cli(
        self, *args: str, password: str | None = None, timeout: float = 120, limit_memory: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The real command; ``limit_memory`` caps its address space (RLIMIT_AS), so a test can
        show that an answer is not read whole."""
        env = dict(os.environ)
        env["M3DAEMON_PASSWORD"] = self.password if password is None else password
        env["M3DAEMON_CONFIG"] = str(self.config_path)
        env.update(self.env)
        return subprocess.run(
            [sys.executable, "-m", "m3daemon", *args], env=env, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL, check=False,
            preexec_fn=None if limit_memory is None else lambda: _limit_memory(limit_memory),
        )

    def cli_imports(self, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
        """The real command, as :meth:`cli`, and the modules it imported."""
        self.env["PYTHONPROFILEIMPORTTIME"] = "1"  # as -X importtime: each import on stderr
        try:
            proc = self.cli(*args)
        finally:
            del self.env["PYTHONPROFILEIMPORTTIME"]
        return proc, imported_modules(proc.stderr)

    def update_json(self, *args: str) -> tuple[int, dict[str, Any]]:
        proc = self.cli("update", "--json", *args)
        try:
            return proc.returncode, json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"no JSON from update: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}")

    def files(self) -> dict[str, bytes]:
        """Every file in the media folder except the staging area, by relative path."""
        out: dict[str, bytes] = {}
        if not self.media.exists():
            return out
        for p in sorted(self.media.rglob("*")):
            rel = p.relative_to(self.media)
            if p.is_file() and rel.parts[0] != ".m3daemon":
                out[rel.as_posix()] = p.read_bytes()
        return out

    def staged(self) -> list[str]:
        staging = self.media / ".m3daemon" / "staging"
        return sorted(p.name for p in staging.iterdir()) if staging.exists() else []


def imported_modules(stderr: str) -> set[str]:
    """The modules a Python run with ``-X importtime`` imported, read from its stderr."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def _limit_memory(limit: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_cli(m: Member, *args: str, password: str | None = None) -> tuple[int, str, str]:
    """``m3daemon ARGS`` in this process: (exit code, stdout, stderr).

    The same ``main()`` as the installed command, so exit codes and messages are the real ones;
    in-process so that a test can patch a hook (and the retry policy) into it.
    """
    out, err = io.StringIO(), io.StringIO()
    saved_env = {k: os.environ.get(k) for k in ("M3DAEMON_PASSWORD", "M3DAEMON_CONFIG")}
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    os.environ["M3DAEMON_PASSWORD"] = m.password if password is None else password
    os.environ["M3DAEMON_CONFIG"] = str(m.config_path)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            rc = main(list(args))
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    return rc, out.getvalue(), err.getvalue()
