"""One error hierarchy for everything a user can run into.

Each error carries a plain-words ``message`` (what is wrong) and a ``remedy`` (what to do), and maps
to one of the CLI's exit codes, so every front end (CLI, tray, dashboard) can show the same text.
"""

from __future__ import annotations

from enum import IntEnum

from m3daemon.i18n import _


class ExitCode(IntEnum):
    OK = 0
    PARTIAL = 1
    USAGE = 2
    AUTH = 3
    UNREACHABLE = 4


class M3Error(Exception):
    """Base of every error m3daemon reports to a person."""

    exit_code: ExitCode = ExitCode.PARTIAL
    default_remedy: str = ""

    def __init__(self, message: str, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy if remedy is not None else self.default_remedy

    def __str__(self) -> str:
        return f"{self.message}\n{self.remedy}" if self.remedy else self.message

    @property
    def kind(self) -> str:
        return type(self).__name__


# --- exit 2: usage and configuration ---------------------------------------------------------


class UsageError(M3Error):
    exit_code = ExitCode.USAGE


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


class CredentialsError(AuthError):
    """The server refused the user name or password (401)."""


class PermissionDeniedError(AuthError):
    """The account may not read (or write) this folder (403)."""


# --- exit 4: the server cannot be reached or spoken to ---------------------------------------


class ConnectionProblem(M3Error):
    exit_code = ExitCode.UNREACHABLE


class ServerUnreachableError(ConnectionProblem):
    pass


class TLSError(ConnectionProblem):
    pass


class NotWebDAVError(ConnectionProblem):
    """The address answers, but not as a WebDAV server (405/501 on PROPFIND, or HTML)."""


# --- exit 1: the sync ran but could not finish everything ------------------------------------


class SyncError(M3Error):
    exit_code = ExitCode.PARTIAL


class ServerError(SyncError):
    """The server answered with an error we cannot work around (5xx, malformed listing)."""


class LockedError(SyncError):
    """423 Locked: another client holds a lock."""


class ListingError(ServerError):
    """The listing could not be read completely."""


class MassDeletionRefused(SyncError):
    """The listing looks empty or much smaller than before; deleting would be unsafe."""


class DiskFullError(SyncError):
    pass


class LocalFolderError(SyncError):
    """The local media folder cannot be written (read-only, permissions, missing drive)."""


class AnotherSyncRunning(SyncError):
    pass


def remedy_for_status(status: int) -> str:
    """A short hint for an HTTP status that has no dedicated error class."""
    if status == 423:
        return _("Another client is changing this item. Try again in a minute.")
    if status == 429:
        return _("The server asks us to slow down. m3daemon will try again later.")
    if status >= 500:
        return _("The server had a problem. Try again later; if it persists, tell the server's administrator.")
    return ""
