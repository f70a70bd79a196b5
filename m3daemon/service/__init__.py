"""Start m3daemon at login: ``m3daemon service install | uninstall | status``.

One daemon serves every configured congregation, so the entry runs ``m3daemon run --all``
(:func:`daemon_spec`). Per platform (decided in :func:`choose_backend`, and only there):

============  ===========================================================================
Linux         systemd user unit ``$XDG_CONFIG_HOME/systemd/user/m3daemon.service``
              (``Type=notify``, watchdog, restart on failure); without a systemd user
              session an XDG autostart entry ``$XDG_CONFIG_HOME/autostart/m3daemon.desktop``
macOS         launchd agent ``~/Library/LaunchAgents/org.m3daemon.m3daemon.plist``
Windows       Run key value ``HKCU\\…\\CurrentVersion\\Run\\m3daemon`` (``pythonw.exe``)
============  ===========================================================================

The file templates are package data in ``m3daemon/service/templates/`` so that they exist in a
clone, an installed wheel and a frozen build alike (the top-level ``service/README.md`` points
here). Everything a backend touches goes through a :class:`Host`, so the tests run every backend
on Linux with a temporary home, a recording command runner and a dict for the registry.
"""

from __future__ import annotations

from typing import Protocol

from m3daemon.errors import ServiceError
from m3daemon.service.core import (
    CommandResult,
    Host,
    Plan,
    RunKeyStore,
    ServiceSpec,
    ServiceStatus,
    Step,
    apply,
    daemon_spec,
    describe,
    program_argv,
)

__all__ = [
    "Backend", "CommandResult", "Host", "Plan", "RunKeyStore", "ServiceError", "ServiceSpec",
    "ServiceStatus", "Step", "apply", "choose_backend", "daemon_spec", "describe", "install",
    "plan_install", "plan_uninstall", "program_argv", "status", "uninstall",
]


class Backend(Protocol):
    kind: str

    def plan_install(self, spec: ServiceSpec, start: bool = True) -> Plan: ...

    def plan_uninstall(self, spec: ServiceSpec) -> Plan: ...

    def status(self, spec: ServiceSpec) -> ServiceStatus: ...


def choose_backend(host: Host) -> Backend:
    """The one place that decides the start-up mechanism for ``host``."""
    if host.platform == "win32":
        from m3daemon.service.windows import WindowsRunKeyBackend

        return WindowsRunKeyBackend(host)
    if host.platform == "darwin":
        from m3daemon.service.macos import LaunchdBackend

        return LaunchdBackend(host)
    from m3daemon.service.linux import SystemdBackend, XdgAutostartBackend, systemd_user_session

    usable, why = systemd_user_session(host)
    return SystemdBackend(host) if usable else XdgAutostartBackend(host, why)


def plan_install(spec: ServiceSpec, host: Host, start: bool = True) -> Plan:
    """What :func:`install` would do (reads, asks read-only questions, changes nothing)."""
    return choose_backend(host).plan_install(spec, start)


def install(spec: ServiceSpec, host: Host, start: bool = True) -> Plan:
    """Install (or bring up to date) the start-at-login entry; running it again changes nothing."""
    plan = plan_install(spec, host, start)
    apply(plan, host)
    return plan


def plan_uninstall(spec: ServiceSpec, host: Host) -> Plan:
    return choose_backend(host).plan_uninstall(spec)


def uninstall(spec: ServiceSpec, host: Host) -> Plan:
    """Stop the service where the mechanism can, and remove everything :func:`install` wrote."""
    plan = plan_uninstall(spec, host)
    apply(plan, host)
    return plan


def status(spec: ServiceSpec, host: Host) -> ServiceStatus:
    """Installed (the entry exists) and running (asked from the service manager, else the engine)."""
    return choose_backend(host).status(spec)
