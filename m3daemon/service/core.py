"""What every start-at-login backend shares: the spec of a service, the host it is installed on,
and installs expressed as a list of steps.

Why steps: ``install --dry-run`` must show exactly what ``install`` would do, and the tests must
check the effect of every backend on Linux without calling ``systemctl``, ``launchctl`` or the
Windows registry. So a backend only *plans* (reading files and asking read-only questions through
the injected :class:`Host`), and :func:`apply` carries the plan out, through the same host.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from m3daemon.errors import ServiceError
from m3daemon.i18n import _
from m3daemon.local import paths

#: Reverse-DNS prefix of launchd labels (``org.m3daemon.m3daemon``).
LAUNCHD_PREFIX = "org.m3daemon"


@dataclass(frozen=True)
class ServiceSpec:
    """One program that starts at login.

    ``name`` names every file and entry (``<name>.service``, ``<name>.desktop``,
    ``org.m3daemon.<name>.plist``, Run value ``<name>``); ``argv`` are the m3daemon arguments
    (``("run", "--all")``). A second kind of service (the WebDAV server of a later issue) is one
    more spec, not more backend code. ``notify``: the program speaks the systemd notification
    protocol (``READY=1``, ``WATCHDOG=1``, see :mod:`m3daemon.daemon.sdnotify`); only then does the
    systemd unit use ``Type=notify`` with a watchdog.
    """

    name: str
    description: str
    argv: tuple[str, ...]
    notify: bool = True

    @property
    def label(self) -> str:
        return f"{LAUNCHD_PREFIX}.{self.name}"


def daemon_spec() -> ServiceSpec:
    """The sync daemon: one process serves every configured congregation."""
    return ServiceSpec("m3daemon", _("M³ congregation media sync"), ("run", "--all"))


# --- the host: everything a backend reads or changes, injectable -------------------------------


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


Runner = Callable[[Sequence[str]], CommandResult]


def run_command(argv: Sequence[str]) -> CommandResult:
    """Run a management command (``systemctl``, ``launchctl``) and capture its output. A missing
    program is exit code 127 rather than an exception, like a shell: "no systemctl" is an answer."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return CommandResult(127, "", f"{argv[0]}: not found")
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"{argv[0]}: timed out")
    except OSError as exc:
        return CommandResult(126, "", f"{argv[0]}: {exc}")
    return CommandResult(proc.returncode, proc.stdout, proc.stderr)


def spawn_detached(argv: Sequence[str]) -> None:
    """Start the daemon now, detached from this terminal (and with no console window on Windows),
    for the start-up mechanisms that only act at the next login (XDG autostart, the Run key)."""
    if sys.platform == "win32":
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, creationflags=flags, cwd=Path.home())
    else:
        subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, cwd=Path.home())


class RunKeyStore(Protocol):
    """The values of ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`` (and the flag that
    Task Manager's Startup tab keeps for each of them), so the tests can use a dict."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, data: str) -> None: ...

    def delete(self, name: str) -> bool: ...

    def disabled(self, name: str) -> bool:
        """Task Manager's "Disabled" for this value (``StartupApproved\\Run``)."""
        ...

    def clear_disabled(self, name: str) -> bool: ...


@dataclass(frozen=True)
class Host:
    """The computer a service is installed on. :meth:`current` describes this one; the tests build
    one with a temporary home, a fake runner and a fake registry, for any ``platform``."""

    platform: str  # sys.platform: "linux", "darwin", "win32", …
    home: Path
    environ: Mapping[str, str]
    log_dir: Path
    executable: str
    frozen: bool = False
    uid: int = 0
    run: Runner = run_command
    spawn: Callable[[Sequence[str]], None] = spawn_detached
    exists: Callable[[str], bool] = os.path.exists
    registry: RunKeyStore | None = None
    #: The engine's "is a daemon already running for this user?"; None: cannot tell.
    is_daemon_running: Callable[[], bool] | None = None
    #: Present when the computer was booted with systemd (sd_booted(3)).
    systemd_marker: Path = Path("/run/systemd/system")

    @classmethod
    def current(cls, is_daemon_running: Callable[[], bool] | None = None) -> Host:
        registry: RunKeyStore | None = None
        if sys.platform == "win32":
            from m3daemon.service.windows import WinRegRunKey

            registry = WinRegRunKey()
        return cls(
            platform=sys.platform, home=Path.home(), environ=dict(os.environ), log_dir=paths.log_dir(),
            executable=sys.executable or "", frozen=bool(getattr(sys, "frozen", False)),
            uid=os.getuid() if hasattr(os, "getuid") else 0, registry=registry,
            is_daemon_running=is_daemon_running,
        )

    @property
    def config_home(self) -> Path:
        """``$XDG_CONFIG_HOME`` (only an absolute path counts, as the spec says), else ``~/.config``."""
        value = self.environ.get("XDG_CONFIG_HOME", "")
        return Path(value) if value and os.path.isabs(value) else self.home / ".config"

    def daemon_running(self) -> bool | None:
        if self.is_daemon_running is None:
            return None
        try:
            return bool(self.is_daemon_running())
        except Exception:  # noqa: BLE001 - a broken probe means "cannot tell", not a failed status
            return None


def program_argv(host: Host, spec: ServiceSpec) -> list[str]:
    """The absolute command that runs ``m3daemon <spec.argv>`` on ``host``.

    Frozen (PyInstaller): the executable itself; on Windows its windowed twin ``m3daemonw.exe``
    when it is next to it (no console window at login); on macOS the ``m3daemon.app`` it is in
    (or next to), started with ``open -W -a``: LaunchServices starts a menu-bar program properly
    (LSUIElement, its own process), and ``-W`` keeps ``open`` running as long as the program, so
    the launchd job lasts as long as it does. (``open`` does not pass on the program's exit
    status, so KeepAlive cannot tell a crash from a quit there; not verified on a Mac.) Otherwise the interpreter of this installation (a venv
    or pipx venv: its ``python`` link is kept, not resolved, or the venv would be left) with
    ``-m m3daemon``, which needs no console script on PATH. On Windows ``pythonw.exe`` instead of
    ``python.exe``: it has no console window.
    """
    pathmod: Any = ntpath if host.platform == "win32" else posixpath
    exe = host.executable
    if not exe or not pathmod.isabs(exe):
        raise ServiceError(
            _("Cannot tell which program to start: the Python interpreter's path is unknown ({path!r})."
              ).format(path=exe),
            _("Run the command with the full path of m3daemon or of its Python interpreter."),
        )
    exe = pathmod.normpath(exe)
    if host.frozen:
        return _frozen_argv(host, exe, list(spec.argv))
    if host.platform == "win32":
        folder, base = pathmod.split(exe)
        if base.lower() == "python.exe":
            quiet = pathmod.join(folder, "pythonw.exe")
            if host.exists(quiet):
                exe = quiet
    return [exe, "-m", "m3daemon", *spec.argv]


def _frozen_argv(host: Host, exe: str, argv: list[str]) -> list[str]:
    if host.platform == "win32":
        folder, base = ntpath.split(exe)
        if base.lower() == "m3daemon.exe":
            windowed = ntpath.join(folder, "m3daemonw.exe")
            if host.exists(windowed):
                return [windowed, *argv]
        return [exe, *argv]
    if host.platform == "darwin":
        app = mac_app_of(exe)
        if app is None:
            sibling = posixpath.join(posixpath.dirname(exe), "m3daemon.app")
            app = sibling if host.exists(posixpath.join(sibling, "Contents", "Info.plist")) else None
        if app is not None:
            return ["/usr/bin/open", "-W", "-a", app, "--args", *argv]
    return [exe, *argv]


def mac_app_of(exe: str) -> str | None:
    """``/Applications/m3daemon.app`` for ``/Applications/m3daemon.app/Contents/MacOS/m3daemon``."""
    parts = exe.split("/")
    for i in range(len(parts) - 3, 0, -1):
        if parts[i].endswith(".app") and parts[i + 1:i + 3] == ["Contents", "MacOS"]:
            return "/".join(parts[:i + 1])
    return None


def template(name: str) -> str:
    """A file of ``m3daemon/service/templates`` (package data: present in a clone, a wheel and
    a PyInstaller bundle that collects m3daemon's data)."""
    return resources.files("m3daemon.service").joinpath("templates", name).read_text(encoding="utf-8")


# --- plans and steps ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteFile:
    path: Path
    content: str


@dataclass(frozen=True)
class RemoveFile:
    path: Path


@dataclass(frozen=True)
class MakeDir:
    path: Path


@dataclass(frozen=True)
class RunCommand:
    argv: tuple[str, ...]
    check: bool = True  # False: a failure is expected sometimes (stopping what is not running)


@dataclass(frozen=True)
class SetRunValue:
    name: str
    data: str


@dataclass(frozen=True)
class DeleteRunValue:
    name: str


@dataclass(frozen=True)
class ClearStartupDisabled:
    name: str


@dataclass(frozen=True)
class StartNow:
    argv: tuple[str, ...]


Step = WriteFile | RemoveFile | MakeDir | RunCommand | SetRunValue | DeleteRunValue | ClearStartupDisabled | StartNow


@dataclass(frozen=True)
class Plan:
    """What install or uninstall does, in order; ``notes`` are told to the user."""

    kind: str
    steps: tuple[Step, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    kind: str                # "systemd", "xdg-autostart", "launchd", "windows-run-key"
    installed: bool
    running: bool | None     # None: cannot tell
    up_to_date: bool | None  # the installed entry is what `install` would write now
    detail: str = ""
    files: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "installed": self.installed, "running": self.running,
                "up_to_date": self.up_to_date, "detail": self.detail, "files": list(self.files)}


def describe(step: Step) -> str:
    """One line per step, for ``--dry-run`` and for the report of what was done."""
    if isinstance(step, WriteFile):
        return _("write {path}").format(path=step.path)
    if isinstance(step, RemoveFile):
        return _("remove {path}").format(path=step.path)
    if isinstance(step, MakeDir):
        return _("create folder {path}").format(path=step.path)
    if isinstance(step, RunCommand):
        return _("run {command}").format(command=shlex.join(step.argv))
    if isinstance(step, SetRunValue):
        return _("set registry value HKCU\\{key}\\{name} = {data}").format(key=RUN_KEY, name=step.name,
                                                                          data=step.data)
    if isinstance(step, DeleteRunValue):
        return _("delete registry value HKCU\\{key}\\{name}").format(key=RUN_KEY, name=step.name)
    if isinstance(step, ClearStartupDisabled):
        return _("clear Task Manager's \"Disabled\" mark of {name}").format(name=step.name)
    return _("start now: {command}").format(command=shlex.join(step.argv))


RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"


def apply(plan: Plan, host: Host) -> None:
    """Carry out ``plan``. Files are written atomically, so a failure leaves old or new, never half."""
    for step in plan.steps:
        if isinstance(step, WriteFile):
            try:
                paths.write_private_file(step.path, step.content.encode("utf-8"))
            except OSError as exc:
                raise ServiceError(_("Cannot write {path}: {error}").format(path=step.path, error=exc),
                                   _("Check that you may write in that folder.")) from exc
        elif isinstance(step, RemoveFile):
            try:
                step.path.unlink(missing_ok=True)
            except OSError as exc:
                raise ServiceError(_("Cannot remove {path}: {error}").format(path=step.path, error=exc),
                                   _("Remove it by hand.")) from exc
        elif isinstance(step, MakeDir):
            try:
                paths.ensure_private_dir(step.path)
            except OSError as exc:
                raise ServiceError(_("Cannot create {path}: {error}").format(path=step.path, error=exc),
                                   _("Check that you may write in that folder.")) from exc
        elif isinstance(step, RunCommand):
            result = host.run(step.argv)
            if step.check and not result.ok:
                output = (result.stderr or result.stdout).strip()
                raise ServiceError(
                    _("`{command}` failed (exit code {code}): {output}").format(
                        command=" ".join(step.argv), code=result.returncode, output=output or "-"),
                    _("Run `m3daemon service status`; run the command again after fixing the cause."),
                )
        elif isinstance(step, (SetRunValue, DeleteRunValue, ClearStartupDisabled)):
            registry = host.registry
            if registry is None:
                raise ServiceError(_("The Windows registry is not available here."))
            if isinstance(step, SetRunValue):
                registry.set(step.name, step.data)
            elif isinstance(step, DeleteRunValue):
                registry.delete(step.name)
            else:
                registry.clear_disabled(step.name)
        else:
            try:
                host.spawn(step.argv)
            except OSError as exc:
                raise ServiceError(_("Cannot start {command}: {error}").format(
                    command=" ".join(step.argv), error=exc),
                    _("It will start at the next login.")) from exc


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def shown_command(host: Host, argv: Sequence[str]) -> str:
    """``argv`` as the user would type it in this platform's shell."""
    if host.platform == "win32":
        from m3daemon.service.quoting import windows_cmdline

        return windows_cmdline(argv)
    return shlex.join(argv)


def start_now_steps(host: Host, argv: Sequence[str]) -> tuple[tuple[Step, ...], tuple[str, ...]]:
    """For mechanisms that act only at the next login: start the daemon now when we can tell that
    none is running (the daemon allows one instance per user; starting blind could race it)."""
    running = host.daemon_running()
    if running is False:
        return (StartNow(tuple(argv)),), ()
    if running:
        return (), (_("The daemon is already running."),)
    return (), (_("It starts at the next login. To start it now, run: {command}").format(
        command=shown_command(host, argv)),)
