"""``m3daemon service``: every start-at-login backend, checked on Linux.

No test calls the real ``systemctl``, ``launchctl`` or the Windows registry: the backends get a
:class:`Host` with a temporary home, a runner that records the commands, and a dict registry.
What is checked for real: the systemd unit with ``systemd-analyze verify`` (Debian package
systemd; required when CI=true), the launchd plist with :mod:`plistlib`, and the quoting of every
command line by parsing it back with the reader's own rules.
"""

from __future__ import annotations

import argparse
import configparser
import fnmatch
import json
import os
import plistlib
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from servers import _which, skip_or_fail

from m3daemon import service
from m3daemon.cli import service_cmd
from m3daemon.service import Host, ServiceError, ServiceSpec, daemon_spec, program_argv
from m3daemon.service.core import (
    ClearStartupDisabled,
    CommandResult,
    SetRunValue,
    StartNow,
    WriteFile,
    template,
)
from m3daemon.service.linux import WATCHDOG_SEC, desktop_text, systemd_user_session, unit_text
from m3daemon.service.macos import plist_data, plist_path
from m3daemon.service.quoting import desktop_exec, systemd_exec, windows_cmdline
from m3daemon.service.windows import run_value

REPO = Path(__file__).resolve().parents[1]
LABEL = "org.m3daemon.m3daemon"


# --- fakes --------------------------------------------------------------------------------------


Answers = dict[tuple[str, ...], CommandResult]


class FakeRunner:
    """Records every command; answers by the longest matching prefix (default: exit 0, no output)."""

    def __init__(self, answers: Mapping[Any, CommandResult] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.answers: Answers = dict(answers or {})

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.calls.append(list(argv))
        best: tuple[str, ...] | None = None
        for prefix in self.answers:
            if tuple(argv[: len(prefix)]) == prefix and (best is None or len(prefix) > len(best)):
                best = prefix
        return self.answers[best] if best is not None else CommandResult(0)

    def changing(self) -> list[list[str]]:
        """The calls that change something (not the read-only questions)."""
        readonly = {"is-system-running", "is-active", "is-enabled", "list"}
        return [c for c in self.calls if not readonly & set(c)]


class FakeRegistry:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.disabled_names: set[str] = set()

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, data: str) -> None:
        self.values[name] = data

    def delete(self, name: str) -> bool:
        return self.values.pop(name, None) is not None

    def disabled(self, name: str) -> bool:
        return name in self.disabled_names

    def clear_disabled(self, name: str) -> bool:
        found = name in self.disabled_names
        self.disabled_names.discard(name)
        return found


SESSION: Answers = {("systemctl", "--user", "is-system-running"): CommandResult(0, "running\n")}


def linux_host(tmp_path: Path, runner: FakeRunner | None = None, *, systemd: bool = True,
               runtime_dir: bool = True, **kw: Any) -> Host:
    marker = tmp_path / ("run-systemd-system" if systemd else "not-booted-with-systemd")
    if systemd:
        marker.mkdir(exist_ok=True)
    environ = {"XDG_CONFIG_HOME": str(tmp_path / "home" / "cfg")}
    if runtime_dir:
        environ["XDG_RUNTIME_DIR"] = str(tmp_path / "runtime")
    return Host(platform="linux", home=tmp_path / "home", environ=environ, log_dir=tmp_path / "log",
                executable=sys.executable, run=runner or FakeRunner(SESSION), systemd_marker=marker, **kw)


def mac_host(tmp_path: Path, runner: FakeRunner, **kw: Any) -> Host:
    return Host(platform="darwin", home=tmp_path / "home", environ={}, log_dir=tmp_path / "home" / "Logs",
                executable=sys.executable, uid=501, run=runner, **kw)


WIN_PY = r"C:\Program Files\Python311\python.exe"


def win_host(registry: FakeRegistry, executable: str = WIN_PY, *, frozen: bool = False,
             exists: Callable[[str], bool] = lambda p: True, **kw: Any) -> Host:
    def no_commands(argv: Sequence[str]) -> CommandResult:
        raise AssertionError(f"no command may run on Windows: {argv}")

    return Host(platform="win32", home=Path("/nonexistent/home"), environ={}, log_dir=Path("/nonexistent/log"),
                executable=executable, frozen=frozen, run=no_commands, registry=registry, exists=exists, **kw)


# --- readers: each parses like the real consumer ---------------------------------------------


def desktop_exec_split(value: str) -> list[str]:
    """Desktop Entry spec 1.5: string unescaping first, then the quoting rule, then ``%%``."""
    plain, i = "", 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            plain += {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(value[i + 1], "\\" + value[i + 1])
            i += 2
        else:
            plain += value[i]
            i += 1
    args: list[str] = []
    cur: str | None = None
    i = 0
    while i < len(plain):
        c = plain[i]
        if c == " ":
            if cur is not None:
                args.append(cur)
            cur, i = None, i + 1
        elif c == '"':
            cur, i = cur or "", i + 1
            while plain[i] != '"':
                if plain[i] == "\\" and plain[i + 1] in '"`$\\':
                    cur, i = cur + plain[i + 1], i + 2
                else:
                    assert plain[i] not in '"`$\\', f"unescaped {plain[i]!r} inside quotes: {value}"
                    cur, i = cur + plain[i], i + 1
            i += 1
        else:
            assert c not in "\"'\\><~|&;$*?#()`\t\n", f"reserved {c!r} outside quotes: {value}"
            cur, i = (cur or "") + c, i + 1
    if cur is not None:
        args.append(cur)
    for a in args:
        assert "%" not in a.replace("%%", ""), f"a field code slipped in: {a}"
    return [a.replace("%%", "%") for a in args]


def ms_split(line: str) -> list[str]:
    """The Microsoft C runtime's argument splitting (CommandLineToArgvW for the arguments)."""
    args: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        cur, quoted = "", False
        while i < n and (quoted or line[i] not in " \t"):
            if line[i] == "\\":
                j = i
                while j < n and line[j] == "\\":
                    j += 1
                if j < n and line[j] == '"':
                    cur += "\\" * ((j - i) // 2)
                    if (j - i) % 2:
                        cur, i = cur + '"', j + 1
                    else:
                        i = j
                else:
                    cur, i = cur + "\\" * (j - i), j
            elif line[i] == '"':
                quoted, i = not quoted, i + 1
            else:
                cur, i = cur + line[i], i + 1
        args.append(cur)
    return args


NASTY_ARGS = ["plain", "with space", "100%", "$HOME", 'say "hi"', "back\\slash", "trail\\", "tab\there",
              "semi;colon", "it's", "", "ümlaut", "a\\\"b"]


# --- which program is started --------------------------------------------------------------------


def test_the_daemon_spec_runs_every_congregation() -> None:
    spec = daemon_spec()
    assert (spec.name, spec.argv, spec.notify) == ("m3daemon", ("run", "--all"), True)
    assert spec.label == LABEL


def test_program_is_this_interpreter_with_dash_m_and_a_venv_link_is_not_resolved(tmp_path: Path) -> None:
    venv_python = tmp_path / "venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(sys.executable)
    host = linux_host(tmp_path)
    host = replace(host, executable=str(venv_python))
    assert program_argv(host, daemon_spec()) == [str(venv_python), "-m", "m3daemon", "run", "--all"]


def test_a_frozen_build_starts_its_own_executable(tmp_path: Path) -> None:
    host = replace(linux_host(tmp_path), executable="/opt/m3daemon/m3daemon", frozen=True)
    assert program_argv(host, daemon_spec()) == ["/opt/m3daemon/m3daemon", "run", "--all"]


@pytest.mark.parametrize("exe", ["", "python3", "bin/python"])
def test_an_unknown_or_relative_interpreter_is_refused(tmp_path: Path, exe: str) -> None:
    host = replace(linux_host(tmp_path), executable=exe)
    with pytest.raises(ServiceError, match="Python interpreter"):
        program_argv(host, daemon_spec())


def test_host_current_uses_xdg_config_home_only_when_absolute(monkeypatch: pytest.MonkeyPatch,
                                                               isolated_env: Path) -> None:
    host = Host.current()
    assert host.platform == sys.platform and host.executable == sys.executable
    assert host.config_home == Path(os.environ["XDG_CONFIG_HOME"])
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/cfg")
    assert Host.current().config_home == isolated_env / ".config"


def test_templates_are_package_data() -> None:
    for name in ("systemd-user.service", "xdg-autostart.desktop", "launchd.plist"):
        assert template(name).strip()
    doc = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = doc["tool"]["setuptools"]["package-data"]["m3daemon"]
    for name in ("systemd-user.service", "xdg-autostart.desktop", "launchd.plist"):
        rel = f"service/templates/{name}"
        assert any(fnmatch.fnmatch(rel, pat) for pat in patterns), \
            f"pyproject.toml [tool.setuptools.package-data] does not ship {rel}: a wheel would lack it"


# --- systemd ------------------------------------------------------------------------------------


def systemd_analyze() -> str:
    found = _which("systemd-analyze")
    if found is None:
        skip_or_fail("needs systemd-analyze (Debian package systemd, see .ci/install-system-packages.sh)")
        raise AssertionError("unreachable")
    return found


def analyze_verify(unit: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze --user verify``: no running systemd needed, as root or not, given a private
    runtime folder (the user manager it simulates wants one)."""
    runtime = Path(tmp_path / "rt")
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    return subprocess.run([systemd_analyze(), "--user", "verify", str(unit)], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def assert_verifies(unit: Path, tmp_path: Path) -> None:
    proc = analyze_verify(unit, tmp_path)
    # verify exits 0 even for "Unknown key" / "Failed to parse" warnings: those name the file
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if unit.name in line]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr


def test_the_generated_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    text = unit_text(linux_host(tmp_path), daemon_spec())
    unit = tmp_path / "units" / "m3daemon.service"
    unit.parent.mkdir()
    unit.write_text(text, encoding="utf-8")
    assert_verifies(unit, tmp_path)
    lines = text.splitlines()
    assert f"ExecStart={sys.executable} -m m3daemon run --all" in lines
    for wanted in ("Type=notify", "NotifyAccess=main", f"WatchdogSec={WATCHDOG_SEC}", "Restart=on-failure",
                   "Environment=PYTHONUNBUFFERED=1", "WantedBy=default.target"):
        assert wanted in lines
    assert "password" not in text.lower() and "secret" not in text.lower()


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above would notice a mistake: a bad value and a missing program both show up."""
    unit = tmp_path / "m3daemon.service"
    unit.write_text("[Service]\nType=notfy\nExecStart=/nonexistent/python -m m3daemon\n", encoding="utf-8")
    proc = analyze_verify(unit, tmp_path)
    out = proc.stdout + proc.stderr
    assert "notfy" in out and "/nonexistent/python" in out


@pytest.mark.parametrize("folder", ["with space", "100%", "dollar$HOME", "ümlaut", 'quo"te', "back\\slash", "it's"])
def test_odd_program_paths_are_quoted_so_systemd_finds_the_program(tmp_path: Path, folder: str) -> None:
    exe = tmp_path / folder / "python"
    host = replace(linux_host(tmp_path), executable=str(exe))
    unit = tmp_path / "m3daemon.service"
    unit.write_text(unit_text(host, daemon_spec()), encoding="utf-8")
    if not re.search(r"[\\\"']", folder):
        # before the program exists, systemd names the path it decoded: exactly ours
        proc = analyze_verify(unit, tmp_path)
        assert f"Command {exe} is not executable" in proc.stdout + proc.stderr
    exe.parent.mkdir()
    exe.symlink_to(sys.executable)
    assert_verifies(unit, tmp_path)


def test_arguments_escape_systemd_specifiers_and_variables() -> None:
    line = systemd_exec(["/usr/bin/python3", "-m", "m3daemon", "100%", "$HOME", 'a"b', "x y"])
    assert line == '/usr/bin/python3 -m m3daemon "100%%" "$$HOME" "a\\"b" "x y"'
    assert systemd_exec(["/a b/p"]) == '"/a b/p"'
    assert systemd_exec(["/a'b/p", "run"]) == "/usr/bin/env \"/a'b/p\" run"  # systemd refuses ' in a program path
    with pytest.raises(ValueError):
        systemd_exec(["/a'b=c/p"])  # env would read it as NAME=VALUE


def test_a_second_service_kind_is_one_more_spec(tmp_path: Path) -> None:
    server = ServiceSpec("m3daemon-server", "M³ WebDAV server", ("serve",), notify=False)
    text = unit_text(linux_host(tmp_path), server)
    assert "Type=exec" in text.splitlines() and "WatchdogSec" not in text
    unit = tmp_path / "m3daemon-server.service"
    unit.write_text(text, encoding="utf-8")
    assert_verifies(unit, tmp_path)
    runner = FakeRunner(SESSION)
    plan = service.install(server, linux_host(tmp_path, runner))
    assert (tmp_path / "home/cfg/systemd/user/m3daemon-server.service").is_file()
    assert ["systemctl", "--user", "enable", "m3daemon-server.service"] in runner.calls
    assert plan.kind == "systemd"


def test_systemd_install_is_idempotent_and_uninstall_removes_everything(tmp_path: Path) -> None:
    runner = FakeRunner(SESSION)
    host = linux_host(tmp_path, runner)
    unit = tmp_path / "home/cfg/systemd/user/m3daemon.service"

    plan = service.install(daemon_spec(), host)
    assert plan.kind == "systemd"
    assert unit.read_text(encoding="utf-8") == unit_text(host, daemon_spec())
    assert runner.changing() == [["systemctl", "--user", "daemon-reload"],
                                 ["systemctl", "--user", "enable", "m3daemon.service"],
                                 ["systemctl", "--user", "restart", "m3daemon.service"]]
    assert any("journalctl --user -u m3daemon.service" in n for n in plan.notes)
    # what `systemctl enable` would have done
    wants = unit.parent / "default.target.wants" / "m3daemon.service"
    wants.parent.mkdir()
    wants.symlink_to(unit)

    mtime = unit.stat().st_mtime_ns
    runner.calls.clear()
    again = service.install(daemon_spec(), host)
    assert not [s for s in again.steps if isinstance(s, WriteFile)]
    assert unit.stat().st_mtime_ns == mtime
    assert runner.changing()[-1] == ["systemctl", "--user", "start", "m3daemon.service"]  # no needless restart

    runner.calls.clear()
    service.uninstall(daemon_spec(), host)
    assert runner.changing() == [["systemctl", "--user", "disable", "--now", "m3daemon.service"],
                                 ["systemctl", "--user", "daemon-reload"],
                                 ["systemctl", "--user", "reset-failed", "m3daemon.service"]]
    assert not unit.exists() and not wants.is_symlink()
    runner.calls.clear()
    assert service.uninstall(daemon_spec(), host).steps == ()
    assert runner.changing() == []


def test_no_start_enables_without_starting(tmp_path: Path) -> None:
    runner = FakeRunner(SESSION)
    plan = service.install(daemon_spec(), linux_host(tmp_path, runner), start=False)
    assert runner.changing() == [["systemctl", "--user", "daemon-reload"],
                                 ["systemctl", "--user", "enable", "m3daemon.service"]]
    assert any("systemctl --user start m3daemon.service" in n for n in plan.notes)


def test_a_failing_systemctl_is_reported_with_its_message(tmp_path: Path) -> None:
    runner = FakeRunner({**SESSION, ("systemctl", "--user", "restart"): CommandResult(
        1, "", "Job for m3daemon.service failed because the control process exited with error code.")})
    with pytest.raises(ServiceError, match="control process exited") as caught:
        service.install(daemon_spec(), linux_host(tmp_path, runner))
    assert "systemctl --user restart m3daemon.service" in caught.value.message


def test_systemd_status_asks_systemctl(tmp_path: Path) -> None:
    runner = FakeRunner({**SESSION, ("systemctl", "--user", "is-active"): CommandResult(0, "active\n"),
                         ("systemctl", "--user", "is-enabled"): CommandResult(0, "enabled\n")})
    host = linux_host(tmp_path, runner)
    before = service.status(daemon_spec(), host)
    assert (before.kind, before.installed, before.running, before.up_to_date) == ("systemd", False, None, None)
    service.install(daemon_spec(), host)
    st = service.status(daemon_spec(), host)
    assert (st.installed, st.running, st.up_to_date, st.detail) == (True, True, True, "active, enabled")
    assert st.files == (str(tmp_path / "home/cfg/systemd/user/m3daemon.service"),)
    runner.answers[("systemctl", "--user", "is-active")] = CommandResult(3, "failed\n")
    assert service.status(daemon_spec(), host).running is False
    moved = replace(host, executable="/elsewhere/bin/python")
    assert service.status(daemon_spec(), moved).up_to_date is False
    assert json.loads(json.dumps(st.to_json()))["installed"] is True


# --- no systemd user session: XDG autostart -----------------------------------------------------


@pytest.mark.parametrize("case", ["not booted with systemd", "no runtime dir", "offline", "no systemctl"])
def test_without_a_systemd_user_session_the_xdg_entry_is_used(tmp_path: Path, case: str) -> None:
    runner = FakeRunner({
        "offline": {("systemctl",): CommandResult(1, "offline\n")},
        "no systemctl": {("systemctl",): CommandResult(127, "", "systemctl: not found")},
    }.get(case, {}))
    host = linux_host(tmp_path, runner, systemd=case != "not booted with systemd",
                      runtime_dir=case != "no runtime dir")
    usable, why = systemd_user_session(host)
    assert not usable and why
    plan = service.install(daemon_spec(), host)
    assert plan.kind == "xdg-autostart" and why in plan.notes[0]
    assert (tmp_path / "home/cfg/autostart/m3daemon.desktop").is_file()
    assert not (tmp_path / "home/cfg/systemd").exists()
    assert runner.changing() == []


def test_a_degraded_user_manager_still_counts_as_a_session(tmp_path: Path) -> None:
    runner = FakeRunner({("systemctl", "--user", "is-system-running"): CommandResult(1, "degraded\n")})
    assert systemd_user_session(linux_host(tmp_path, runner)) == (True, "degraded")


def test_the_desktop_entry_is_valid_and_its_exec_parses_back(tmp_path: Path) -> None:
    host = linux_host(tmp_path, systemd=False)
    text = desktop_text(host, daemon_spec())
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(text)
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["X-GNOME-Autostart-enabled"] == "true"
    assert entry["Terminal"] == "false" and entry["Name"]
    assert desktop_exec_split(entry["Exec"]) == [sys.executable, "-m", "m3daemon", "run", "--all"]
    assert "password" not in text.lower()


def test_desktop_exec_quoting_round_trips_odd_arguments() -> None:
    argv = ["/home/ana maría/100% \"x\"/bin/python", *NASTY_ARGS]
    assert desktop_exec_split(desktop_exec(argv)) == argv
    assert desktop_exec(["/usr/bin/python3", "-m", "m3daemon"]) == "/usr/bin/python3 -m m3daemon"
    # a literal backslash inside a quoted argument is four backslashes in the file (the spec's example)
    assert desktop_exec(["/a b\\c"]) == '"/a b\\\\\\\\c"'


def test_xdg_install_starts_the_daemon_only_when_none_is_running(tmp_path: Path) -> None:
    started: list[list[str]] = []
    argv = [sys.executable, "-m", "m3daemon", "run", "--all"]

    def host(running: Callable[[], bool] | None) -> Host:
        return linux_host(tmp_path, systemd=False, spawn=lambda a: started.append(list(a)), is_daemon_running=running)

    plan = service.install(daemon_spec(), host(lambda: False))
    assert StartNow(tuple(argv)) in plan.steps and started == [argv]
    plan = service.install(daemon_spec(), host(lambda: True))
    assert started == [argv] and "already running" in plan.notes[-1]
    plan = service.install(daemon_spec(), host(None))
    assert started == [argv] and "next login" in plan.notes[-1]
    service.install(daemon_spec(), host(lambda: False), start=False)
    assert started == [argv]


def test_switching_between_systemd_and_xdg_leaves_one_entry(tmp_path: Path) -> None:
    desktop = tmp_path / "home/cfg/autostart/m3daemon.desktop"
    unit = tmp_path / "home/cfg/systemd/user/m3daemon.service"
    wants = unit.parent / "default.target.wants" / "m3daemon.service"

    service.install(daemon_spec(), linux_host(tmp_path, systemd=False))
    assert desktop.is_file()
    plan = service.install(daemon_spec(), linux_host(tmp_path))
    assert unit.is_file() and not desktop.exists()
    assert any("XDG autostart" in n for n in plan.notes)

    wants.parent.mkdir()
    wants.symlink_to(unit)
    runner = FakeRunner()
    plan = service.install(daemon_spec(), linux_host(tmp_path, runner, systemd=False))
    assert desktop.is_file() and not unit.exists() and not wants.is_symlink()
    assert runner.calls == []  # without a session there is no systemctl to ask

    service.install(daemon_spec(), linux_host(tmp_path))
    desktop.parent.mkdir(exist_ok=True)
    desktop.write_text("stale", encoding="utf-8")  # both present: uninstall removes both
    service.uninstall(daemon_spec(), linux_host(tmp_path, systemd=False))
    assert not desktop.exists() and not unit.exists()


def test_xdg_status_uses_the_engines_probe(tmp_path: Path) -> None:
    host = linux_host(tmp_path, systemd=False)
    assert service.status(daemon_spec(), host).running is None
    service.install(daemon_spec(), host, start=False)
    st = service.status(daemon_spec(), replace(host, is_daemon_running=lambda: True))
    assert (st.kind, st.installed, st.running, st.up_to_date) == ("xdg-autostart", True, True, True)

    def broken() -> bool:
        raise RuntimeError("probe failed")

    assert service.status(daemon_spec(), replace(host, is_daemon_running=broken)).running is None


# --- macOS: launchd --------------------------------------------------------------------------------


NOT_LOADED: Answers = {("launchctl", "list"): CommandResult(113, "", f'Could not find service "{LABEL}" in domain')}


def test_the_launchd_plist_round_trips_with_the_right_keys(tmp_path: Path) -> None:
    host = mac_host(tmp_path, FakeRunner(NOT_LOADED))
    service.install(daemon_spec(), host)
    path = tmp_path / "home/Library/LaunchAgents" / f"{LABEL}.plist"
    assert path == plist_path(host, daemon_spec())
    with path.open("rb") as fh:
        data = plistlib.load(fh)
    assert data == plist_data(host, daemon_spec())
    assert data["Label"] == LABEL
    assert data["ProgramArguments"] == [sys.executable, "-m", "m3daemon", "run", "--all"]
    assert data["RunAtLoad"] is True
    assert data["KeepAlive"] == {"SuccessfulExit": False}
    assert data["ProcessType"] == "Interactive"
    assert data["StandardOutPath"] == str(tmp_path / "home/Logs/m3daemon.stdout.log")
    assert data["StandardErrorPath"] == str(tmp_path / "home/Logs/m3daemon.stderr.log")
    assert data["EnvironmentVariables"] == {"PYTHONUNBUFFERED": "1"}
    assert (tmp_path / "home/Logs").is_dir()  # launchd does not create it
    assert "password" not in path.read_text(encoding="utf-8").lower()


def test_a_plist_escapes_odd_paths(tmp_path: Path) -> None:
    host = replace(mac_host(tmp_path, FakeRunner(NOT_LOADED)), executable="/Users/ana & <bob>/.venv/bin/python")
    text = plistlib.dumps(plist_data(host, daemon_spec()))
    assert plistlib.loads(text)["ProgramArguments"][0] == "/Users/ana & <bob>/.venv/bin/python"


def test_launchd_install_loads_once_and_uninstall_unloads(tmp_path: Path) -> None:
    runner = FakeRunner(NOT_LOADED)
    host = mac_host(tmp_path, runner)
    path = str(plist_path(host, daemon_spec()))
    service.install(daemon_spec(), host)
    assert runner.changing() == [["launchctl", "enable", f"gui/501/{LABEL}"],
                                 ["launchctl", "bootstrap", "gui/501", path]]

    runner.answers = {("launchctl", "list"): CommandResult(0, '{\n\t"PID" = 4242;\n\t"Label" = "x";\n};\n')}
    runner.calls.clear()
    service.install(daemon_spec(), host)  # unchanged and loaded: only make sure it runs
    assert runner.changing() == [["launchctl", "enable", f"gui/501/{LABEL}"],
                                 ["launchctl", "kickstart", f"gui/501/{LABEL}"]]

    moved = replace(host, executable="/opt/new/bin/python")
    runner.calls.clear()
    service.install(daemon_spec(), moved)  # changed and loaded: reload
    assert runner.changing()[1:] == [["launchctl", "bootout", f"gui/501/{LABEL}"],
                                     ["launchctl", "bootstrap", "gui/501", path]]

    st = service.status(daemon_spec(), moved)
    assert (st.kind, st.installed, st.running, st.up_to_date) == ("launchd", True, True, True)
    assert "4242" in st.detail

    runner.calls.clear()
    service.uninstall(daemon_spec(), moved)
    assert runner.changing() == [["launchctl", "bootout", f"gui/501/{LABEL}"]]
    assert not Path(path).exists()


def test_launchd_status_of_a_loaded_but_stopped_agent(tmp_path: Path) -> None:
    runner = FakeRunner({("launchctl", "list"): CommandResult(0, '{\n\t"LastExitStatus" = 256;\n};\n')})
    host = mac_host(tmp_path, runner)
    service.install(daemon_spec(), host, start=False)
    st = service.status(daemon_spec(), host)
    assert st.installed and st.running is False and "256" in st.detail


# --- Windows: the Run key ----------------------------------------------------------------------------


def test_the_run_value_uses_pythonw_and_quotes_the_path() -> None:
    host = win_host(FakeRegistry())
    assert run_value(host, daemon_spec()) == r'"C:\Program Files\Python311\pythonw.exe" -m m3daemon run --all'
    assert ms_split(run_value(host, daemon_spec()))[1:] == ["-m", "m3daemon", "run", "--all"]
    no_pythonw = win_host(FakeRegistry(), exists=lambda p: False)
    assert run_value(no_pythonw, daemon_spec()).startswith(r'"C:\Program Files\Python311\python.exe"')


def test_a_frozen_windows_build_starts_its_exe() -> None:
    exe = r"C:\Users\Ana María\AppData\Local\Programs\m3daemon\m3daemon.exe"
    host = win_host(FakeRegistry(), exe, frozen=True, exists=lambda p: False)
    assert run_value(host, daemon_spec()) == f'"{exe}" run --all'


def test_a_frozen_windows_build_starts_its_windowed_twin_at_login() -> None:
    """m3daemonw.exe (console=False) next to m3daemon.exe: no console window opens at login."""
    folder = r"C:\Users\Ana María\AppData\Local\Programs\m3daemon"
    seen: list[str] = []
    host = win_host(FakeRegistry(), folder + r"\m3daemon.exe", frozen=True,
                    exists=lambda p: seen.append(p) or p == folder + r"\m3daemonw.exe")
    assert run_value(host, daemon_spec()) == f'"{folder}\\m3daemonw.exe" run --all'
    assert seen == [folder + r"\m3daemonw.exe"]


@pytest.mark.parametrize("exe, sibling_app", [
    ("/Applications/m3daemon.app/Contents/MacOS/m3daemon", False),
    ("/Users/ana/bin/m3daemon", True),
])
def test_a_frozen_macos_build_is_opened_as_an_app_at_login(tmp_path: Path, exe: str, sibling_app: bool) -> None:
    app = "/Applications/m3daemon.app" if not sibling_app else "/Users/ana/bin/m3daemon.app"
    host = replace(mac_host(tmp_path, FakeRunner({})), executable=exe, frozen=True,
                   exists=lambda p: sibling_app and p == app + "/Contents/Info.plist")
    assert program_argv(host, daemon_spec()) == ["/usr/bin/open", "-W", "-a", app, "--args", "run", "--all"]


def test_a_frozen_macos_command_line_build_without_an_app_starts_itself(tmp_path: Path) -> None:
    host = replace(mac_host(tmp_path, FakeRunner({})), executable="/usr/local/bin/m3daemon", frozen=True,
                   exists=lambda p: False)
    assert program_argv(host, daemon_spec()) == ["/usr/local/bin/m3daemon", "run", "--all"]


def test_windows_command_lines_round_trip_odd_arguments() -> None:
    argv = [r"C:\Program Files\x\pythonw.exe", *NASTY_ARGS]
    line = windows_cmdline(argv)
    assert line.startswith('"C:\\Program Files\\x\\pythonw.exe" ')
    assert ms_split(line) == argv


def test_a_too_long_command_line_is_refused() -> None:
    host = win_host(FakeRegistry(), "C:\\" + "d" * 250 + "\\python.exe")
    with pytest.raises(ServiceError, match="260"):
        run_value(host, daemon_spec())


def test_windows_install_is_idempotent_and_uninstall_deletes_the_value() -> None:
    registry = FakeRegistry()
    started: list[list[str]] = []
    host = win_host(registry, spawn=lambda a: started.append(list(a)), is_daemon_running=lambda: False)
    plan = service.install(daemon_spec(), host)
    data = r'"C:\Program Files\Python311\pythonw.exe" -m m3daemon run --all'
    assert plan.kind == "windows-run-key" and registry.values == {"m3daemon": data}
    assert started == [[r"C:\Program Files\Python311\pythonw.exe", "-m", "m3daemon", "run", "--all"]]
    again = service.install(daemon_spec(), win_host(registry, is_daemon_running=lambda: True))
    assert not [s for s in again.steps if isinstance(s, SetRunValue)]

    registry.disabled_names.add("m3daemon")  # switched off in Task Manager
    st = service.status(daemon_spec(), win_host(registry))
    assert st.installed and st.running is None and "Task Manager" in st.detail
    plan = service.install(daemon_spec(), win_host(registry), start=False)
    assert plan.steps == (ClearStartupDisabled("m3daemon"),) and not registry.disabled_names

    st = service.status(daemon_spec(), win_host(registry, is_daemon_running=lambda: True))
    assert (st.installed, st.running, st.up_to_date) == (True, True, True)
    service.uninstall(daemon_spec(), win_host(registry))
    assert registry.values == {}
    assert service.status(daemon_spec(), win_host(registry)).installed is False


# --- the command line ------------------------------------------------------------------------------


def run_cli(argv: list[str], host: Host, monkeypatch: pytest.MonkeyPatch, configured: bool = True) -> int:
    monkeypatch.setattr(service_cmd, "_host", lambda: host)
    monkeypatch.setattr(service_cmd, "_configured", lambda: configured)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    service_cmd.add_parser(sub, "service", "start m3daemon at login")
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


def test_cli_dry_run_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    runner = FakeRunner(SESSION)
    assert run_cli(["service", "install", "--dry-run"], linux_host(tmp_path, runner), monkeypatch) == 0
    out = capsys.readouterr().out
    assert "Would do (systemd)" in out and "ExecStart=" in out and "systemctl --user enable" in out
    assert runner.changing() == [] and not (tmp_path / "home").exists()


def test_cli_install_status_uninstall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    host = linux_host(tmp_path, systemd=False)
    assert run_cli(["service", "install", "--no-start"], host, monkeypatch) == 0
    assert "No systemd user session" in capsys.readouterr().out
    assert run_cli(["service", "status", "--json"], host, monkeypatch) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["installed"] is True and info["kind"] == "xdg-autostart" and info["running"] is None
    assert run_cli(["service"], host, monkeypatch) == 0
    assert "Installed:      yes" in capsys.readouterr().out
    assert run_cli(["service", "uninstall"], host, monkeypatch) == 0
    assert "no longer starts at login" in capsys.readouterr().out
    assert run_cli(["service", "uninstall"], host, monkeypatch) == 0
    assert "Nothing to remove" in capsys.readouterr().out


def test_cli_install_before_setup_does_not_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    runner = FakeRunner(SESSION)
    assert run_cli(["service", "install"], linux_host(tmp_path, runner), monkeypatch, configured=False) == 0
    assert "m3daemon setup" in capsys.readouterr().err
    assert not any("start" in c or "restart" in c for c in runner.calls)


def test_the_real_host_on_this_machine_is_only_read(isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """``service status`` with the real :meth:`Host.current` touches nothing (HOME is a temp dir)."""
    if sys.platform != "linux":
        pytest.skip("Linux only")
    calls: list[list[str]] = []
    real = Host.current()

    def recording(argv: Sequence[str]) -> CommandResult:
        calls.append(list(argv))
        return CommandResult(1, "offline\n")

    monkeypatch.setattr(Host, "current", classmethod(lambda cls, is_daemon_running=None: replace(real, run=recording)))
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    service_cmd.add_parser(sub, "service", "x")
    args = parser.parse_args(["service", "status", "--json"])
    assert args.run(args) == 0
    assert json.loads(capsys.readouterr().out)["installed"] is False
    assert all(c[:3] == ["systemctl", "--user", "is-system-running"] for c in calls)


def test_the_command_runs_through_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """With the COMMANDS entry ``m3daemon service …`` goes through the normal front door."""
    from m3daemon.cli import main as cli_main

    monkeypatch.setitem(cli_main.COMMANDS, "service",
                        ("m3daemon.cli.service_cmd", "add_parser", "start m3daemon at login"))
    monkeypatch.setattr(service_cmd, "_host", lambda: linux_host(tmp_path, systemd=False))
    assert cli_main.main(["service", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "xdg-autostart"
    failing = FakeRunner({**SESSION, ("systemctl", "--user", "enable"): CommandResult(1, "", "Access denied")})
    monkeypatch.setattr(service_cmd, "_host", lambda: linux_host(tmp_path, failing))
    monkeypatch.setattr(service_cmd, "_configured", lambda: True)
    assert cli_main.main(["service", "install"]) == 1
    err = capsys.readouterr().err
    assert "Access denied" in err and "What to do" in err
