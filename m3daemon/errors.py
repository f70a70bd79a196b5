"""One error hierarchy for everything a user can run into, and the rules that go with it.

Each error carries a plain-words ``message`` (what is wrong) and a ``remedy`` (what to do). Its class
owns every rule a front end needs, in one place: the CLI's exit code (``exit_code``), the HTTP status
the dashboard answers with (``http_status``), whether a person must act rather than wait for a retry
(``needs_person``), whether it says "this account may only read" (``read_only``) and whether it spoils
one item of a batch or the whole batch (``per_item``). Front ends ask these attributes and never test
classes themselves.

An error that crosses a boundary (daemon to CLI or dashboard, ``update --json``, a sync report)
travels as an :class:`ErrorInfo`, which carries those rules as values: the receiver reads them from
the value, never from a class name or a remedy text.

Internal control flow (a sync asked to stop, a lock held by another process, a tray backend that
cannot start) derives from :class:`M3Signal`, deliberately *not* from :class:`M3Error`: a signal is
never shown to a person as such, has no remedy, and must not be swallowed by the many
``except M3Error`` blocks that turn a person's errors into messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from m3daemon.i18n import _


class ExitCode(IntEnum):
    OK = 0
    PARTIAL = 1
    USAGE = 2
    AUTH = 3
    UNREACHABLE = 4


# --- internal control flow ---------------------------------------------------------------------


class M3Signal(Exception):
    """Base of the exceptions that steer the program rather than tell a person something.

    Each is caught close to where it is raised and either ends quietly or becomes an
    :class:`M3Error` with a message and a remedy there (or, for a broken invariant, is a defect).
    """


class DeadlineExceeded(M3Signal, TimeoutError):
    """A request ran past its overall deadline (``remote/transport.py``): a server that drips its
    answer never trips the per-read timeout. A ``TimeoutError``, so the transport reports it as a
    read timeout; ``remote/http.py`` turns it into a plain-words error."""


class Cancelled(M3Signal):
    """The sync was asked to stop; the staging file is kept for the next run to resume."""


class SourceChanged(M3Signal):
    """The local file changed size while it was being sent (becomes a :class:`LocalFolderError`)."""


class LockHeld(M3Signal):
    """Another process holds an inter-process lock (becomes "another sync/daemon is running")."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by {holder or 'another process'}")
        self.path = path
        self.holder = holder


class RetryDue(M3Signal):
    """An answer that asks for another attempt (503, 423 …); the retry loop waits and sends again."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"status {status}, retry after {retry_after}")
        self.status = status
        self.retry_after = retry_after


class TrayUnavailable(M3Signal):
    """This tray backend cannot show an icon here (import failed, no bus, no display...): try the next."""


# --- what a person is told ----------------------------------------------------------------------


class NotOnLoopThread(M3Signal, AssertionError):
    """A tray icon or menu change was about to run outside the tray's loop thread (a programming
    error: macOS's AppKit crashes on it, so every platform refuses it)."""


class M3Error(Exception):
    """Base of every error m3daemon reports to a person."""

    exit_code: ExitCode = ExitCode.PARTIAL
    #: The status the dashboard answers with when a request fails with this error.
    http_status: int = 500
    #: No retry can fix it: a person must act (the tray notifies, the daemon stops retrying).
    needs_person: bool = False
    #: The account may read but not write (the dashboard then offers no writing tools).
    read_only: bool = False
    #: It spoils one item of a batch (one file); the others go on. Otherwise the batch stops.
    per_item: bool = False
    default_remedy: str = ""

    def __init__(self, message: str, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy if remedy is not None else self.default_remedy

    def __str__(self) -> str:
        return f"{self.message}\n{self.remedy}" if self.remedy else self.message

    @property
    def kind(self) -> str:
        """The class name: shown in JSON and logs for people and scripts, never used to rebuild rules."""
        return type(self).__name__

    def info(self, path: str = "") -> ErrorInfo:
        """This error as the value that crosses a boundary."""
        return ErrorInfo(
            kind=self.kind, message=self.message, remedy=self.remedy, needs_person=self.needs_person,
            exit_code=self.exit_code, http_status=self.http_status, read_only=self.read_only, path=path,
        )


@dataclass(frozen=True)
class ErrorInfo:
    """An error as a plain value: what the daemon hands to the tray, the CLI and the dashboard.

    ``to_dict`` is its JSON form (``update --json`` ``errors``, the control API's ``last_error``);
    ``from_dict`` rebuilds it from that form, taking every rule from the fields themselves. The
    field order keeps the positional form ``ErrorInfo(kind, message, remedy, needs_person)``.
    """

    kind: str
    message: str
    remedy: str
    needs_person: bool = False
    exit_code: ExitCode = ExitCode.PARTIAL
    http_status: int = 500
    read_only: bool = False
    path: str = ""  # the file or folder it is about, "" for the whole sync

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "kind": self.kind, "message": self.message, "remedy": self.remedy,
            "exit_code": int(self.exit_code), "needs_person": self.needs_person,
            "http_status": self.http_status, "read_only": self.read_only,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorInfo:
        """The value back from :meth:`to_dict`; a field that is missing takes the default of M3Error."""
        try:
            code = ExitCode(int(data.get("exit_code", M3Error.exit_code)))
        except (TypeError, ValueError):
            code = M3Error.exit_code
        return cls(
            kind=str(data.get("kind") or "M3Error"), message=str(data.get("message") or ""),
            remedy=str(data.get("remedy") or ""), needs_person=bool(data.get("needs_person", False)),
            exit_code=code, http_status=int(data.get("http_status") or M3Error.http_status),
            read_only=bool(data.get("read_only", False)), path=str(data.get("path") or ""),
        )


# --- exit 2: usage and configuration ---------------------------------------------------------


class UsageError(M3Error):
    exit_code = ExitCode.USAGE
    http_status = 400
    needs_person = True


class ConfigError(UsageError):
    """The configuration file is missing, malformed or holds a bad value."""


class InsecureURLError(ConfigError):
    """A plain ``http://`` address (or another scheme) was given."""


class MissingPasswordError(ConfigError):
    pass


class FolderNotFoundError(UsageError):
    """The congregation sync folder does not exist on the server (404)."""


class LockedSettingError(UsageError):
    """A local change to a key that the coordinator forces."""


# --- exit 3: authentication and permission ---------------------------------------------------


class AuthError(M3Error):
    exit_code = ExitCode.AUTH
    http_status = 403
    needs_person = True


class CredentialsError(AuthError):
    """The server refused the user name or password (401)."""


class PermissionDeniedError(AuthError):
    """The account may not read (or write) this folder (403)."""


class ReadOnlyAccountError(PermissionDeniedError):
    """The server refused a write of an account that may read (403, or 401 once the password was
    accepted): coordinator tools need another account."""

    read_only = True


# --- exit 4: the server cannot be reached or spoken to ---------------------------------------


class ConnectionProblem(M3Error):
    """The server cannot be reached now; the daemon goes offline and tries again with back-off."""

    exit_code = ExitCode.UNREACHABLE
    http_status = 502


class ServerUnreachableError(ConnectionProblem):
    pass


class TLSError(ConnectionProblem):
    """The certificate is not trusted: retrying cannot help, a person must fix the setup."""

    needs_person = True


class NotWebDAVError(ConnectionProblem):
    """The address answers, but not as a WebDAV server (405/501 on PROPFIND, or HTML)."""


# --- exit 1: the sync ran but could not finish everything ------------------------------------


class SyncError(M3Error):
    exit_code = ExitCode.PARTIAL
    per_item = True


class ServerError(SyncError):
    """The server answered with an error we cannot work around (5xx, malformed listing)."""


class LockedError(SyncError):
    """423 Locked: another client holds a lock."""


class ListingError(ServerError):
    """The listing could not be read completely."""


class MalformedListing(ListingError):
    """The listing's XML cannot be read (or carries a DTD, which we refuse)."""


class MassDeletionRefused(SyncError):
    """The listing looks empty or much smaller than before; deleting would be unsafe."""


class DiskFullError(SyncError):
    needs_person = True


class TooLarge(ServerError):
    """An answer went past one of the caps of ``remote/bounded.py`` (decoded size, entries, text)."""


class UnservableFile(ServerError):
    """The server lists a file but will not serve it (404 although listed, or the same 5xx sync
    after sync): nothing this computer can do; the coordinator must replace it."""


class FileInUse(SyncError):
    """Windows refused to replace or delete a file another program holds open (a sharing
    violation): M³ is showing it. The new version waits in the staging folder for the next sync."""


class NotEnoughSpace(DiskFullError):
    """One file does not fit in the free space left; the files that fit are still placed."""


class LocalFolderError(SyncError):
    """The local media folder cannot be written (read-only, permissions, missing drive)."""

    needs_person = True


class AnotherSyncRunning(SyncError):
    pass


class TransferError(SyncError):
    """One file could not be transferred; others go on, and the next sync tries again.

    ``resumable`` marks a broken connection: what arrived is kept and a new attempt resumes it.
    """

    resumable = False


class InterruptedTransfer(TransferError):
    resumable = True


class ServerStartError(M3Error):
    """The server could not start (port in use, unreadable certificate). Exit code 1: a service
    manager may try again later (the port may be free then)."""


class ServiceError(M3Error):
    """Installing, removing or inspecting the start-at-login entry failed."""


class DaemonRequestError(M3Error):
    """The running daemon answered a request of the CLI with an error (an older or a stuck daemon)."""

    default_remedy = _("Restart m3daemon (m3daemon quit, then m3daemon run) and try again.")

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class DaemonAnswerError(DaemonRequestError):
    """What answers on the daemon's control port does not speak the control API (another program
    took the port, or a daemon broke off its answer)."""

    def __init__(self, why: str) -> None:
        super().__init__(_("What answers on m3daemon's control port does not answer as m3daemon does ({why}).")
                         .format(why=why))


def remedy_for_status(status: int) -> str:
    """A short hint for an HTTP status that has no dedicated error class."""
    if status == 423:
        return _("Another client is changing this item. Try again in a minute.")
    if status == 429:
        return _("The server asks us to slow down. m3daemon will try again later.")
    if status >= 500:
        return _("The server had a problem. Try again later; if it persists, tell the server's administrator.")
    return ""
