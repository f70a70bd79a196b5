"""The rules for the server address and the congregation folder (see :mod:`m3daemon.settings.config`):
https only, the origin normalised, a path in the address turned into a prefix of the folder."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from m3daemon.errors import ConfigError, InsecureURLError
from m3daemon.i18n import _
from m3daemon.settings.checker import _Checker, _show
from m3daemon.settings.values import LOOPBACK_HOSTS


def _authority(raw: str) -> str:
    rest = raw.split("://", 1)[1] if "://" in raw else raw
    for sep in "/?#":
        rest = rest.split(sep, 1)[0]
    return rest


def _path_segments(path: str, where: str, checker: _Checker) -> list[str]:
    if "\\" in path:
        raise checker.error(
            where,
            _('{value} contains "\\": use "/" between folder names').format(value=_show(path)),
        )
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise checker.error(
            where,
            _(
                '{value} contains "." or "..": write the full path, for example "/dav/Koofr/Congregation"'
            ).format(value=_show(path)),
        )
    return segments


def _parse_url(raw: str, allow_loopback: bool, checker: _Checker) -> tuple[str, list[str]]:
    """(origin, path segments of the address). See the module docstring."""
    where = "[connection] url"
    https_fix = _("use an https:// address")
    if "@" in _authority(raw):
        # May hold "name:password@": never shown back.
        raise checker.error(
            where,
            _(
                'the address contains a user name or password: remove the "…@" part, put the user '
                "name in [connection] username and store the password with `m3daemon setup`"
            ),
        )
    if "://" not in raw:
        raise checker.error(
            where,
            _('{value} has no https:// in front: write "https://{raw}"').format(value=_show(raw), raw=raw),
            InsecureURLError,
        )
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment:
        raise checker.error(
            where,
            _('{value} must not contain "?" or "#": keep only https://host[:port] and the path').format(
                value=_show(raw)
            ),
        )
    host = parts.hostname or ""
    if scheme == "http":
        if not allow_loopback:
            problem = _("{value} is not allowed: {fix}").format(value=_show(raw), fix=https_fix)
            if host in LOOPBACK_HOSTS:
                problem += _(" (for local tests, set [connection] allow_insecure_loopback = true)")
            raise checker.error(where, problem, InsecureURLError)
        if host not in LOOPBACK_HOSTS:
            raise checker.error(
                where,
                _(
                    "{value} is not allowed: allow_insecure_loopback only permits http:// to 127.0.0.1, "
                    "::1 or localhost; {fix}"
                ).format(value=_show(raw), fix=https_fix),
                InsecureURLError,
            )
    elif scheme != "https":
        raise checker.error(
            where,
            _("{value} is not allowed: {fix}").format(value=_show(raw), fix=https_fix),
            InsecureURLError,
        )
    if not host:
        raise checker.error(
            where,
            _('{value} has no server name: write it as "https://server.example.org"').format(
                value=_show(raw)
            ),
        )
    try:
        port = parts.port
    except ValueError:
        raise checker.error(
            where,
            _("{value} has an invalid port: use a number from 1 to 65535 after the colon").format(
                value=_show(raw)
            ),
        ) from None
    shown_host = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    origin = f"{scheme}://{shown_host}" + (f":{port}" if port is not None and port != default_port else "")
    return origin, _path_segments(unquote(parts.path), where, checker)


def _join_folder(prefix: list[str], folder: str | None, checker: _Checker) -> str:
    if folder is None:
        segments = prefix
    else:
        own = _path_segments(folder, "[connection] folder", checker)
        if folder.startswith("/") and own[: len(prefix)] == prefix:
            segments = own
        else:
            segments = prefix + own
    return "/" + "/".join(segments)




class _TypedChecker(_Checker):
    """The same rules for an address typed in setup: the message speaks of the answer, not of a file."""

    def __init__(self) -> None:
        super().__init__(Path("setup"))

    def error(self, where: str, problem: str, cls: type[ConfigError] = ConfigError) -> ConfigError:
        return cls(_("The server address is not right: {problem}.").format(problem=problem.rstrip(".")),
                   _("Type it again, for example https://cloud.example.org or https://192.168.1.10:8443."))


def check_address(raw: str, *, allow_loopback: bool = False) -> str:
    """An address as typed in setup, checked at once: a bare host name gets ``https://`` in front,
    anything else must be https:// (``InsecureURLError``) with a host and a valid port."""
    text = raw.strip()
    if text and "://" not in text:
        text = "https://" + text
    origin, segments = _parse_url(text, allow_loopback, _TypedChecker())
    return origin + ("/" + "/".join(segments) if segments else "")
