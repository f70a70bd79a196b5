"""Linux (and other XDG desktops): a systemd user unit, or an XDG autostart entry without systemd.

Why two: a systemd user service is restarted when it crashes or hangs (``Restart=on-failure``,
``Type=notify`` with ``WatchdogSec=``) and logs to the journal; but not every computer has a
systemd user session (non-systemd distributions, some containers and WSL set-ups), and a desktop
session there still runs the XDG autostart entries. Only one of the two is installed at a time:
installing either removes the other, and uninstall removes both, so a change of session type
between install and uninstall leaves nothing behind.
"""

from __future__ import annotations

from string import Template

from m3daemon.errors import ServiceError
from m3daemon.i18n import _
from m3daemon.service.core import (
    Host,
    Plan,
    RemoveFile,
    RunCommand,
    ServiceSpec,
    ServiceStatus,
    Step,
    WriteFile,
    program_argv,
    read_text,
    start_now_steps,
    template,
)
from m3daemon.service.quoting import desktop_exec, desktop_string, systemd_exec, systemd_value

#: systemd restarts the daemon when no ``WATCHDOG=1`` came for this long. Generous, because the
#: engine pings from its own heartbeat thread, and a false restart in the middle of a download
#: costs more than noticing a real hang a minute later.
WATCHDOG_SEC = 120

#: ``systemctl --user is-system-running`` states in which the user manager is up and usable.
_USABLE_STATES = {"initializing", "starting", "running", "degraded", "maintenance"}


def systemd_user_session(host: Host) -> tuple[bool, str]:
    """Whether ``systemctl --user`` can manage units here, and if not, why (for the user).

    Checked from the cheapest to the most telling: booted with systemd (``/run/systemd/system``,
    sd_booted(3)), a login session (``$XDG_RUNTIME_DIR``, where the user manager's socket lives),
    and the user manager answering. ``is-system-running`` exits non-zero when "degraded" (one failed
    unit somewhere), so its output is what counts.
    """
    if not host.systemd_marker.is_dir():
        return False, _("this computer was not started with systemd")
    if not host.environ.get("XDG_RUNTIME_DIR"):
        return False, _("there is no login session (XDG_RUNTIME_DIR is not set)")
    result = host.run(["systemctl", "--user", "is-system-running"])
    state = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
    if state in _USABLE_STATES:
        return True, state
    why = state or (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[0]
    return False, _("the systemd user manager does not answer ({why})").format(why=why)


class _LinuxPaths:
    def __init__(self, host: Host, spec: ServiceSpec) -> None:
        self.host = host
        self.spec = spec
        self.unit_name = f"{spec.name}.service"
        self.unit_dir = host.config_home / "systemd" / "user"
        self.unit = self.unit_dir / self.unit_name
        #: ``systemctl enable`` links the unit here; removed by hand when systemctl is not there.
        self.wants_link = self.unit_dir / "default.target.wants" / self.unit_name
        self.desktop = host.config_home / "autostart" / f"{spec.name}.desktop"

    def systemctl(self, *args: str, check: bool = True) -> RunCommand:
        return RunCommand(("systemctl", "--user", *args), check)

    def remove_unit_steps(self, session: bool) -> list[Step]:
        steps: list[Step] = []
        if not (self.unit.exists() or self.wants_link.is_symlink() or self.wants_link.exists()):
            return steps
        if session:
            steps.append(self.systemctl("disable", "--now", self.unit_name, check=False))
        steps += [RemoveFile(self.wants_link), RemoveFile(self.unit)]
        if session:
            steps += [self.systemctl("daemon-reload", check=False),
                      self.systemctl("reset-failed", self.unit_name, check=False)]
        return steps

    def remove_desktop_steps(self) -> list[Step]:
        return [RemoveFile(self.desktop)] if self.desktop.exists() else []

    def present(self) -> tuple[str, ...]:
        return tuple(str(p) for p in (self.unit, self.desktop) if p.exists())


def unit_text(host: Host, spec: ServiceSpec) -> str:
    """The systemd user unit for ``spec`` (absolute ExecStart, no secrets: the password comes from
    the keyring when the daemon runs)."""
    if spec.notify:
        service_type = f"Type=notify\nNotifyAccess=main\nWatchdogSec={WATCHDOG_SEC}"
    else:
        service_type = "Type=exec"
    argv = program_argv(host, spec)
    try:
        exec_start = systemd_exec(argv)
    except ValueError:
        raise ServiceError(
            _("systemd cannot start a program whose path contains these characters: {path}").format(
                path=argv[0]),
            _("Install m3daemon in a folder whose path has no quotes, backslashes or '='."),
        ) from None
    return Template(template("systemd-user.service")).substitute(
        description=systemd_value(spec.description), service_type=service_type,
        exec_start=exec_start, name=spec.name,
    )


def desktop_text(host: Host, spec: ServiceSpec) -> str:
    """The XDG autostart entry for ``spec``."""
    return Template(template("xdg-autostart.desktop")).substitute(
        name=desktop_string(spec.description),
        comment=desktop_string(_("Starts {name} at login").format(name=spec.name)),
        exec=desktop_exec(program_argv(host, spec)),
    )


class SystemdBackend:
    kind = "systemd"

    def __init__(self, host: Host) -> None:
        self.host = host

    def plan_install(self, spec: ServiceSpec, start: bool = True) -> Plan:
        p = _LinuxPaths(self.host, spec)
        text = unit_text(self.host, spec)
        changed = read_text(p.unit) != text
        steps: list[Step] = p.remove_desktop_steps()
        notes = [_("Removed the XDG autostart entry: systemd starts the daemon now.")] if steps else []
        if changed:
            steps.append(WriteFile(p.unit, text))
        steps += [p.systemctl("daemon-reload"), p.systemctl("enable", p.unit_name)]
        if start:
            # `start` leaves a running daemon alone; after a change it must restart to use the new unit
            steps.append(p.systemctl("restart" if changed else "start", p.unit_name))
        else:
            notes.append(_("It starts at the next login. To start it now, run: {command}").format(
                command=f"systemctl --user start {p.unit_name}"))
        notes.append(_("Logs: journalctl --user -u {unit}").format(unit=p.unit_name))
        return Plan(self.kind, tuple(steps), tuple(notes))

    def plan_uninstall(self, spec: ServiceSpec) -> Plan:
        p = _LinuxPaths(self.host, spec)
        return Plan(self.kind, tuple(p.remove_unit_steps(True) + p.remove_desktop_steps()))

    def status(self, spec: ServiceSpec) -> ServiceStatus:
        p = _LinuxPaths(self.host, spec)
        files = p.present()
        if not p.unit.exists():
            if p.desktop.exists():
                return XdgAutostartBackend(self.host).status(spec)
            return ServiceStatus(spec.name, self.kind, False, self.host.daemon_running(), None,
                                 _("not installed"), files)
        active = self.host.run(["systemctl", "--user", "is-active", p.unit_name]).stdout.strip()
        enabled = self.host.run(["systemctl", "--user", "is-enabled", p.unit_name]).stdout.strip()
        detail = f"{active or 'unknown'}, {enabled or 'unknown'}"
        return ServiceStatus(spec.name, self.kind, True, active == "active",
                             read_text(p.unit) == unit_text(self.host, spec), detail, files)


class XdgAutostartBackend:
    kind = "xdg-autostart"

    def __init__(self, host: Host, why: str = "") -> None:
        self.host = host
        self.why = why  # why there is no systemd user session

    def plan_install(self, spec: ServiceSpec, start: bool = True) -> Plan:
        p = _LinuxPaths(self.host, spec)
        notes = [_("No systemd user session ({why}): using an XDG autostart entry, which your desktop "
                   "session starts at login. It is not restarted if it stops.").format(why=self.why)]
        steps: list[Step] = p.remove_unit_steps(False)
        if steps:
            notes.append(_("Removed the systemd unit of an earlier install."))
        text = desktop_text(self.host, spec)
        if read_text(p.desktop) != text:
            steps.append(WriteFile(p.desktop, text))
        if start:
            argv = program_argv(self.host, spec)
            more, said = start_now_steps(self.host, argv)
            steps += more
            notes += said
        return Plan(self.kind, tuple(steps), tuple(notes))

    def plan_uninstall(self, spec: ServiceSpec) -> Plan:
        p = _LinuxPaths(self.host, spec)
        notes = () if self.host.daemon_running() is False else (
            _("A daemon that is running now keeps running until you quit it or log out."),)
        return Plan(self.kind, tuple(p.remove_unit_steps(False) + p.remove_desktop_steps()), notes)

    def status(self, spec: ServiceSpec) -> ServiceStatus:
        p = _LinuxPaths(self.host, spec)
        installed = p.desktop.exists()
        detail = _("starts at login") if installed else _("not installed")
        if p.unit.exists():
            detail += "; " + _("a systemd unit is also installed but systemd is not usable ({why})").format(
                why=self.why)
        up_to_date = read_text(p.desktop) == desktop_text(self.host, spec) if installed else None
        return ServiceStatus(spec.name, self.kind, installed, self.host.daemon_running(), up_to_date, detail,
                             p.present())


__all__ = [
    "WATCHDOG_SEC",
    "SystemdBackend",
    "XdgAutostartBackend",
    "desktop_text",
    "systemd_user_session",
    "unit_text",
]
