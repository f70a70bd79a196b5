"""The systemd notification protocol (``sd_notify``), without a dependency.

Why: ``m3daemon service install`` writes a ``Type=notify`` unit with ``WatchdogSec=``, so systemd
considers the daemon started only when it says ``READY=1``, and restarts it when it stops sending
``WATCHDOG=1``: a daemon that hangs (a stuck network call, a deadlock) is restarted instead of
silently doing nothing. libsystemd is not available from the standard library and pulling in a
binding for three lines of socket code is not worth it, so this is the protocol itself: one
datagram of ``KEY=VALUE`` lines sent to the ``AF_UNIX`` socket named by ``$NOTIFY_SOCKET``.

Outside systemd (no ``$NOTIFY_SOCKET``: a terminal, launchd, Windows, XDG autostart) every call is
a cheap no-op returning ``False``, so the engine can call these functions unconditionally::

    notify("READY=1")                       # after start-up, before the first long sync
    interval = watchdog_interval()          # None: no watchdog wanted
    ...  every `interval` seconds, from a thread that proves the engine is alive:
    notify("WATCHDOG=1")
    notify("STOPPING=1")                    # when shutting down
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

__all__ = ["notify", "ready", "status", "stopping", "watchdog", "watchdog_interval"]


def _address(value: str) -> str | None:
    """The socket address for ``$NOTIFY_SOCKET``: a file-system path, or ``@name`` for Linux's
    abstract namespace (the kernel wants a leading NUL byte there instead of the ``@``)."""
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # e.g. "vsock:…" (systemd inside a VM): not something a user daemon meets


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` (one or more ``KEY=VALUE`` lines) to systemd.

    Returns ``True`` when the datagram was sent, ``False`` when there is no notification socket
    (not started by systemd, or not with ``Type=notify``) or sending failed. It never raises:
    a notification that cannot be delivered must not take the daemon down.
    """
    env = os.environ if environ is None else environ
    value = env.get("NOTIFY_SOCKET", "")
    address = _address(value) if value else None
    family = getattr(socket, "AF_UNIX", None)  # Windows has no AF_UNIX datagram sockets
    if address is None or family is None or not message:
        return False
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
    except OSError:
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings, or ``None`` when no watchdog is wanted.

    systemd sets ``$WATCHDOG_USEC`` from the unit's ``WatchdogSec=``; pinging at half that period
    (as sd_watchdog_enabled(3) recommends) leaves room for one late ping. ``$WATCHDOG_PID``, when
    set, names the process that is meant: a child that inherited the environment must not ping.
    """
    env = os.environ if environ is None else environ
    pid = env.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2 / 1_000_000


def ready(environ: Mapping[str, str] | None = None) -> bool:
    """``READY=1``: start-up is complete (``Type=notify`` units count as started only now)."""
    return notify("READY=1", environ)


def watchdog(environ: Mapping[str, str] | None = None) -> bool:
    """``WATCHDOG=1``: still alive; send every :func:`watchdog_interval` seconds."""
    return notify("WATCHDOG=1", environ)


def stopping(environ: Mapping[str, str] | None = None) -> bool:
    """``STOPPING=1``: shutting down on purpose (so a slow stop is not mistaken for a hang)."""
    return notify("STOPPING=1", environ)


def status(text: str, environ: Mapping[str, str] | None = None) -> bool:
    """``STATUS=…``: one line that ``systemctl --user status`` shows (e.g. "up to date")."""
    return notify("STATUS=" + " ".join(text.splitlines()), environ)
