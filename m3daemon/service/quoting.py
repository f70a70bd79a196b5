"""Command lines written into start-up files, quoted the way each reader parses them.

Why a module of its own: a path with a space, a ``%`` or a ``$`` (``C:\\Users\\Ana María``,
``/home/x/100%``) is ordinary, and each of the three readers — systemd, the XDG Desktop Entry
spec, the Windows C runtime — has different rules. A wrong quote does not fail at install time,
it silently stops the daemon from starting at the next login. The tests parse what these
functions produce with each reader's rules and get the original arguments back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# --- systemd (systemd.service(5) "Command lines", systemd.unit(5) "Specifiers") ---------------

_SYSTEMD_SAFE = re.compile(r"^[A-Za-z0-9_@+=:,./-]+$")

#: Characters systemd refuses in an executable's path ("Executable name contains special
#: characters", ``string_is_safe()``): control characters, quotes and the backslash.
_SYSTEMD_UNSAFE_PROGRAM = re.compile(r"[\x00-\x1f\x7f\\\"']")

#: Runs the real program when systemd refuses its path (env replaces itself with ``exec``, so the
#: daemon keeps the unit's main PID, which ``Type=notify`` with ``NotifyAccess=main`` needs).
SYSTEMD_ENV = "/usr/bin/env"


def systemd_quote(arg: str, program: bool = False) -> str:
    """One ``ExecStart=`` word. Plain words stay as they are; anything else is double-quoted with
    C-style escapes. ``%`` (specifiers) is doubled everywhere; ``$`` (environment expansion) is
    doubled in arguments only: systemd does not expand variables in the program's path, and
    ``$$`` there would stay two dollars (checked with ``systemd-analyze verify``)."""
    if _SYSTEMD_SAFE.match(arg):
        return arg
    escaped = (arg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
               .replace("%", "%%"))
    if not program:
        escaped = escaped.replace("$", "$$")
    return f'"{escaped}"'


def systemd_exec(argv: Sequence[str]) -> str:
    """The value of ``ExecStart=`` for ``argv`` (``argv[0]`` must be an absolute path). A program
    path that systemd refuses (a quote or backslash in a folder name) is run through
    ``/usr/bin/env``, where it is an ordinary, quotable argument."""
    program, *rest = argv
    if _SYSTEMD_UNSAFE_PROGRAM.search(program):
        if "=" in program:  # env would take it for a NAME=VALUE assignment
            raise ValueError(f"systemd cannot start a program with this path: {program!r}")
        program, rest = SYSTEMD_ENV, [program, *rest]
    return " ".join([systemd_quote(program, program=True), *(systemd_quote(a) for a in rest)])


def systemd_value(text: str) -> str:
    """A free-text setting such as ``Description=``: one line, ``%`` doubled (specifiers)."""
    return " ".join(text.splitlines()).replace("%", "%%")


# --- XDG Desktop Entry spec 1.5, "The Exec key" -----------------------------------------------

_DESKTOP_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def desktop_string(text: str) -> str:
    """A ``string``/``localestring`` value: backslash escapes for ``\\``, newline, tab and CR."""
    return (text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r"))


def desktop_exec_arg(arg: str) -> str:
    """One argument of ``Exec=`` before the string escaping: quoted when it holds a reserved
    character (or is empty), with ``"``, `````, ``$`` and ``\\`` backslash-escaped inside the quotes;
    ``%`` doubled everywhere (field codes)."""
    if arg and not any(c in _DESKTOP_RESERVED for c in arg):
        return arg.replace("%", "%%")
    inner = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return '"' + inner.replace("%", "%%") + '"'


def desktop_exec(argv: Sequence[str]) -> str:
    """The value of ``Exec=``. The spec applies the general string unescaping *before* the quoting
    rule, so the quoted command line is string-escaped once more (a literal backslash inside a
    quoted argument ends up as four backslashes in the file)."""
    return desktop_string(" ".join(desktop_exec_arg(a) for a in argv))


# --- Windows (CommandLineToArgvW / the Microsoft C runtime) ------------------------------------


def windows_arg(arg: str) -> str:
    """One argument as the Microsoft C runtime parses it (backslashes before a quote doubled)."""
    if arg and not any(c in arg for c in ' \t\n\v"'):
        return arg
    out = ['"']
    backslashes = 0
    for c in arg:
        if c == "\\":
            backslashes += 1
            continue
        if c == '"':
            out.append("\\" * (2 * backslashes + 1) + '"')
        else:
            out.append("\\" * backslashes + c)
        backslashes = 0
    out.append("\\" * (2 * backslashes) + '"')
    return "".join(out)


def windows_cmdline(argv: Sequence[str]) -> str:
    """A command line for the Run key. The program path is always quoted: an unquoted path with a
    space is tried piece by piece (``C:\\Program.exe`` first), a classic start-up hijack. Paths
    cannot contain ``"``, so no escaping is needed inside that first pair of quotes."""
    program, *rest = argv
    if '"' in program:
        raise ValueError(f"a Windows program path cannot contain a double quote: {program!r}")
    return " ".join([f'"{program}"', *(windows_arg(a) for a in rest)])
