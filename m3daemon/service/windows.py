"""Windows: a value under ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``.

Why the Run key (and not a shortcut or script in the Startup folder): it needs no file, no
administrator rights and no script host (VBScript is on its way out of Windows), it shows up in
Task Manager's Startup tab where people look for it, and removing it is deleting one value.
``pythonw.exe`` (or a windowed frozen build) gives no console window. The program path is always
quoted (see :func:`m3daemon.service.quoting.windows_cmdline`).

Explorer starts Run entries once per login; nothing restarts the daemon if it stops, so
``install`` also starts it right away when it can tell that none is running.
"""

from __future__ import annotations

import sys

from m3daemon.errors import ServiceError
from m3daemon.i18n import _
from m3daemon.service.core import (
    RUN_KEY,
    ClearStartupDisabled,
    DeleteRunValue,
    Host,
    Plan,
    RunKeyStore,
    ServiceSpec,
    ServiceStatus,
    SetRunValue,
    Step,
    program_argv,
    start_now_steps,
)
from m3daemon.service.quoting import windows_cmdline

#: Where Task Manager's Startup tab records "Disabled" for a Run value (odd first byte).
STARTUP_APPROVED_KEY = r"Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"

#: Run key command lines longer than this are not started (Microsoft's "Run and RunOnce" docs).
MAX_COMMAND_LINE = 260


def run_value(host: Host, spec: ServiceSpec) -> str:
    """The data of the Run value: the quoted command line that starts ``spec`` without a console."""
    line = windows_cmdline(program_argv(host, spec))
    if len(line) > MAX_COMMAND_LINE:
        raise ServiceError(
            _("The start-up command is {length} characters long; Windows runs at most {limit}: {line}").format(
                length=len(line), limit=MAX_COMMAND_LINE, line=line),
            _("Install m3daemon in a folder with a shorter path."),
        )
    return line


class WindowsRunKeyBackend:
    kind = "windows-run-key"

    def __init__(self, host: Host) -> None:
        self.host = host

    def _registry(self) -> RunKeyStore:
        if self.host.registry is None:
            raise ServiceError(_("The Windows registry is not available here."))
        return self.host.registry

    def plan_install(self, spec: ServiceSpec, start: bool = True) -> Plan:
        registry = self._registry()
        data = run_value(self.host, spec)
        steps: list[Step] = []
        notes: list[str] = []
        if registry.get(spec.name) != data:
            steps.append(SetRunValue(spec.name, data))
        if registry.disabled(spec.name):
            steps.append(ClearStartupDisabled(spec.name))
            notes.append(_("It was disabled in Task Manager's Startup tab; it is enabled again."))
        if start:
            more, said = start_now_steps(self.host, program_argv(self.host, spec))
            steps += more
            notes += said
        return Plan(self.kind, tuple(steps), tuple(notes))

    def plan_uninstall(self, spec: ServiceSpec) -> Plan:
        registry = self._registry()
        steps: list[Step] = []
        if registry.get(spec.name) is not None:
            steps.append(DeleteRunValue(spec.name))
        if registry.disabled(spec.name):
            steps.append(ClearStartupDisabled(spec.name))
        notes = () if self.host.daemon_running() is False else (
            _("A daemon that is running now keeps running until you quit it or log out."),)
        return Plan(self.kind, tuple(steps), notes)

    def status(self, spec: ServiceSpec) -> ServiceStatus:
        registry = self._registry()
        data = registry.get(spec.name)
        installed = data is not None
        if not installed:
            detail = _("not installed")
        elif registry.disabled(spec.name):
            detail = _("disabled in Task Manager's Startup tab")
        else:
            detail = _("starts at login")
        up_to_date = data == run_value(self.host, spec) if installed else None
        where = (f"HKCU\\{RUN_KEY}\\{spec.name}",) if installed else ()
        return ServiceStatus(spec.name, self.kind, installed, self.host.daemon_running(), up_to_date, detail,
                             where)


class WinRegRunKey:
    """The real :class:`RunKeyStore` (``winreg``, current user only: no administrator needed)."""

    def get(self, name: str) -> str | None:
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                    value, _kind = winreg.QueryValueEx(key, name)
            except FileNotFoundError:
                return None
            return str(value)
        raise ServiceError(_("The Windows registry is not available here."))

    def set(self, name: str, data: str) -> None:
        if sys.platform == "win32":
            import winreg

            with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                winreg.SetValueEx(key, name, 0, winreg.REG_SZ, data)
            return
        raise ServiceError(_("The Windows registry is not available here."))

    def _delete(self, key_path: str, name: str) -> bool:
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key_path, 0, winreg.KEY_SET_VALUE) as key:
                    winreg.DeleteValue(key, name)
            except FileNotFoundError:
                return False
            return True
        raise ServiceError(_("The Windows registry is not available here."))

    def delete(self, name: str) -> bool:
        return self._delete(RUN_KEY, name)

    def disabled(self, name: str) -> bool:
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, STARTUP_APPROVED_KEY) as key:
                    value, _kind = winreg.QueryValueEx(key, name)
            except FileNotFoundError:
                return False
            return isinstance(value, bytes) and len(value) > 0 and bool(value[0] & 1)
        raise ServiceError(_("The Windows registry is not available here."))

    def clear_disabled(self, name: str) -> bool:
        return self._delete(STARTUP_APPROVED_KEY, name)
