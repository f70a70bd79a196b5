"""Whether this computer's account may write the congregation folder, found out once and remembered.

Members usually have a read-only account. The *Manage media* and *Settings* pages then show the
coordinator's tools read-only, with the reason, instead of letting each click fail. It is found out
by a cheap probe (an empty hidden scratch file, put and removed again: members' syncs skip names that
start with a dot), or by the first write that fails with an error whose ``read_only`` is set. The answer
is kept for the account and folder until the connection changes or someone asks to check again.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass

from m3daemon.coordinator.context import Coordinator
from m3daemon.coordinator.writes import PROBE_PREFIX
from m3daemon.engine.wording import on_screen_remedy
from m3daemon.errors import M3Error
from m3daemon.settings.config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Access:
    writable: bool | None  # None: not known yet
    reason: str = ""
    remedy: str = ""


UNKNOWN = Access(None)


def account_of(cfg: Config) -> str:
    conn = cfg.connection
    return f"{cfg.path}|{conn.account}|{conn.folder}" if conn is not None else str(cfg.path)


class AccessMemo:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, Access] = {}

    def get(self, cfg: Config) -> Access:
        with self._lock:
            return self._known.get(account_of(cfg), UNKNOWN)

    def _set(self, cfg: Config, access: Access) -> Access:
        with self._lock:
            self._known[account_of(cfg)] = access
        return access

    def read_only(self, cfg: Config, err: M3Error) -> Access:
        log.info("%s: the account may only read (%s)", cfg.name, err.message)
        return self._set(cfg, Access(False, err.message, on_screen_remedy(err.kind, err.remedy)))

    def writable(self, cfg: Config) -> Access:
        return self._set(cfg, Access(True))

    def forget(self, cfg: Config) -> None:
        with self._lock:
            self._known.pop(account_of(cfg), None)

    def check(self, coord: Coordinator) -> Access:
        """The remembered answer, or a probe: PUT an empty hidden file, then remove it."""
        known = self.get(coord.cfg)
        if known.writable is not None:
            return known
        writer = coord.writer
        writer.ensure_authenticated()
        probe = (f"{PROBE_PREFIX}{secrets.token_hex(8)}",)
        resp = writer.put_small(probe, b"")
        if resp.status_code in (200, 201, 204):
            writer.discard(probe)
            return self.writable(coord.cfg)
        err = writer.fail(resp, writer.what(()))
        if err.read_only:
            return self.read_only(coord.cfg, err)
        raise err
