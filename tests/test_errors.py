"""The error family: every exception of the package belongs to it, its classes own the rules, and an
error that crosses a boundary travels as one value that carries those rules."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil

import m3daemon
from m3daemon.errors import (
    CredentialsError,
    DiskFullError,
    ErrorInfo,
    ExitCode,
    M3Error,
    M3Signal,
    ReadOnlyAccountError,
    ServerError,
    ServerUnreachableError,
    TLSError,
    UsageError,
)


def _package_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for mod in pkgutil.walk_packages(m3daemon.__path__, "m3daemon."):
        if mod.name.endswith("__main__"):
            continue
        module = importlib.import_module(mod.name)
        for _name, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def test_every_exception_of_the_package_is_an_error_or_a_signal_of_the_one_family() -> None:
    found = _package_exceptions()
    assert found, "the walk found no exception classes at all"
    strays = [f"{c.__module__}.{c.__qualname__}" for c in found if not issubclass(c, (M3Error, M3Signal))]
    assert strays == []
    # The family lives in one module; only the WebDAV server's 413 (a WsgiDAV DAVError) lives elsewhere.
    elsewhere = {f"{c.__module__}.{c.__qualname__}" for c in found if c.__module__ != "m3daemon.errors"}
    assert elsewhere == {"m3daemon.server.guard._TooLarge"}


def test_a_signal_is_never_caught_as_an_error_for_a_person() -> None:
    assert not issubclass(M3Signal, M3Error) and not issubclass(M3Error, M3Signal)


def test_the_class_owns_exit_code_http_status_and_needs_a_person() -> None:
    rows = [  # error, exit code, dashboard status, needs a person, read-only account
        (UsageError("x"), ExitCode.USAGE, 400, True, False),
        (CredentialsError("x"), ExitCode.AUTH, 403, True, False),
        (ReadOnlyAccountError("x"), ExitCode.AUTH, 403, True, True),
        (ServerUnreachableError("x"), ExitCode.UNREACHABLE, 502, False, False),
        (TLSError("x"), ExitCode.UNREACHABLE, 502, True, False),
        (DiskFullError("x"), ExitCode.PARTIAL, 500, True, False),
        (ServerError("x"), ExitCode.PARTIAL, 500, False, False),
    ]
    for err, code, status, person, read_only in rows:
        got = (err.exit_code, err.http_status, err.needs_person, err.read_only)
        assert got == (code, status, person, read_only), err.kind


def test_an_error_crosses_a_boundary_as_json_and_comes_back_with_its_rules() -> None:
    sent = ReadOnlyAccountError("This account may only read.", "Ask the coordinator.").info("Media/a.jpg")
    wire = json.loads(json.dumps(sent.to_dict()))
    assert {"path", "kind", "message", "remedy"} <= wire.keys()  # the fields SPEC fixes for update --json
    assert ErrorInfo.from_dict(wire) == sent
    # The rules come from the fields, not from the class name or the remedy text.
    renamed = ErrorInfo.from_dict({**wire, "kind": "SomethingElse", "remedy": "other words"})
    assert (renamed.exit_code, renamed.read_only, renamed.needs_person) == (ExitCode.AUTH, True, True)
