"""macOS: a launchd agent in ``~/Library/LaunchAgents``.

Why an agent (not a daemon): it runs in the user's GUI session, with the user's keychain (the
password) and the menu bar (the tray). ``RunAtLoad`` starts it at login; ``KeepAlive`` with
``SuccessfulExit: false`` restarts it after a crash but not after a deliberate quit;
``ProcessType: Interactive`` keeps macOS from throttling a process the user relies on.

The plist is built with :mod:`plistlib` from the template (so every path is escaped correctly),
and loaded with ``launchctl bootstrap gui/<uid>``, the replacement of the deprecated ``load``.
"""

from __future__ import annotations

import plistlib
import re
from pathlib import Path
from typing import Any

from m3daemon.i18n import _
from m3daemon.service.core import (
    Host,
    MakeDir,
    Plan,
    RemoveFile,
    RunCommand,
    ServiceSpec,
    ServiceStatus,
    Step,
    WriteFile,
    program_argv,
    read_text,
    template,
)

_PID = re.compile(r'"PID"\s*=\s*(\d+)\s*;')
_LAST_EXIT = re.compile(r'"LastExitStatus"\s*=\s*(-?\d+)\s*;')


def plist_path(host: Host, spec: ServiceSpec) -> Path:
    return host.home / "Library" / "LaunchAgents" / f"{spec.label}.plist"


def log_paths(host: Host, spec: ServiceSpec) -> tuple[Path, Path]:
    """Where launchd sends the daemon's stdout and stderr (a crash's traceback lands there)."""
    return host.log_dir / f"{spec.name}.stdout.log", host.log_dir / f"{spec.name}.stderr.log"


def plist_data(host: Host, spec: ServiceSpec) -> dict[str, Any]:
    data: dict[str, Any] = plistlib.loads(template("launchd.plist").encode("utf-8"))
    out, err = log_paths(host, spec)
    data.update(Label=spec.label, ProgramArguments=program_argv(host, spec),
                StandardOutPath=str(out), StandardErrorPath=str(err))
    return data


def plist_text(host: Host, spec: ServiceSpec) -> str:
    return plistlib.dumps(plist_data(host, spec), fmt=plistlib.FMT_XML).decode("utf-8")


class LaunchdBackend:
    kind = "launchd"

    def __init__(self, host: Host) -> None:
        self.host = host

    def _domain(self) -> str:
        return f"gui/{self.host.uid}"

    def _target(self, spec: ServiceSpec) -> str:
        return f"{self._domain()}/{spec.label}"

    def _loaded(self, spec: ServiceSpec) -> tuple[bool, str]:
        result = self.host.run(["launchctl", "list", spec.label])
        return result.ok, result.stdout

    def plan_install(self, spec: ServiceSpec, start: bool = True) -> Plan:
        path = plist_path(self.host, spec)
        text = plist_text(self.host, spec)
        changed = read_text(path) != text
        steps: list[Step] = [MakeDir(self.host.log_dir)]  # launchd does not create the log folder
        if changed:
            steps.append(WriteFile(path, text))
        # a service once disabled (launchctl disable) would not load, not even at login
        steps.append(RunCommand(("launchctl", "enable", self._target(spec))))
        notes: list[str] = []
        if start:
            loaded, _output = self._loaded(spec)
            if loaded and changed:  # reload so the new plist counts
                steps.append(RunCommand(("launchctl", "bootout", self._target(spec)), check=False))
            if changed or not loaded:
                steps.append(RunCommand(("launchctl", "bootstrap", self._domain(), str(path))))
            else:
                steps.append(RunCommand(("launchctl", "kickstart", self._target(spec))))
        else:
            notes.append(_("It starts at the next login."))
        out, err = log_paths(self.host, spec)
        notes.append(_("Output of the daemon: {out} and {err}").format(out=out, err=err))
        return Plan(self.kind, tuple(steps), tuple(notes))

    def plan_uninstall(self, spec: ServiceSpec) -> Plan:
        steps: list[Step] = []
        if self._loaded(spec)[0]:
            steps.append(RunCommand(("launchctl", "bootout", self._target(spec)), check=False))
        path = plist_path(self.host, spec)
        if path.exists():
            steps.append(RemoveFile(path))
        return Plan(self.kind, tuple(steps))

    def status(self, spec: ServiceSpec) -> ServiceStatus:
        path = plist_path(self.host, spec)
        installed = path.exists()
        loaded, output = self._loaded(spec)
        pid = _PID.search(output)
        if pid:
            detail = _("running (pid {pid})").format(pid=pid.group(1))
        elif loaded:
            last = _LAST_EXIT.search(output)
            detail = _("loaded, not running (last exit status {code})").format(
                code=last.group(1) if last else "?")
        else:
            detail = _("not loaded") if installed else _("not installed")
        up_to_date = read_text(path) == plist_text(self.host, spec) if installed else None
        running = bool(pid) if loaded else self.host.daemon_running()
        return ServiceStatus(spec.name, self.kind, installed, running, up_to_date, detail,
                             (str(path),) if installed else ())
