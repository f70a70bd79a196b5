"""What the dashboard says to do about an error never sends a person to a terminal: where a button
next to the error does the fix, its words name that button's page, and the files the
mass-deletion guard kept are listed with a button that removes them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from dashhelpers import csrf_of, dashboard_of
from faulthelpers import cong, member_for
from member import iso
from servers import DavServer, make_tree

from m3daemon.engine.status import SyncState
from m3daemon.engine.wording import on_screen_remedy, remedy_action
from m3daemon.errors import (
    AuthError,
    ConfigError,
    CredentialsError,
    FolderNotFoundError,
    MassDeletionRefused,
    MissingPasswordError,
    ServerError,
    TLSError,
)
from m3daemon.remote.http import classify_status


@pytest.mark.parametrize("error", [
    AuthError("Sign-in refused.", "Check them with m3daemon setup. Box and Koofr need an app password."),
    CredentialsError("Sign-in refused.", "Check them with m3daemon setup."),
    MissingPasswordError("No password.", "Run `m3daemon setup` to store it."),
    FolderNotFoundError("No such folder.", "Check [connection] folder; m3daemon browse lists the server's folders."),
    ConfigError("No configuration.", "Run `m3daemon setup` first."),
    TLSError("Untrusted certificate.", "Run `m3daemon setup` to pin it."),
    MassDeletionRefused("4 files kept.", "If the coordinator really removed them, run `m3daemon update --allow-deletions`."),
], ids=lambda e: type(e).__name__)
def test_an_error_with_a_button_is_told_without_a_command(error: Exception) -> None:
    kind = type(error).__name__
    assert remedy_action(kind) is not None, "a button next to the error does the fix"
    said = on_screen_remedy(kind, error.remedy)  # type: ignore[attr-defined]
    assert "m3daemon " not in said and "`" not in said, said
    assert "Connection page" in said or "button" in said, said


def test_an_error_nothing_on_this_computer_fixes_keeps_its_words() -> None:
    err = ServerError("The server failed.", "Try again later; if it persists, tell the server's administrator.")
    assert remedy_action(err.kind) is None
    assert on_screen_remedy(err.kind, err.remedy) == err.remedy


def test_a_refused_password_is_told_as_the_connection_page_fixes_it() -> None:
    request = httpx.Request("PROPFIND", "https://dav.example.org/dav/Cong/")
    err = classify_status(httpx.Response(401, request=request), "the congregation folder")
    assert "m3daemon setup" in err.remedy  # the terminal's words, for `m3daemon update`
    said = on_screen_remedy(err.kind, err.remedy)
    assert "Connection page" in said and "app password" in said and "m3daemon" not in said


def test_files_the_coordinator_removed_are_removed_from_the_dashboard_after_a_question(
    wsgidav_server: DavServer, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from m3daemon.daemon.app import Daemon

    names = [f"{n} - talk.jpg" for n in range(4)]
    make_tree(cong(wsgidav_server), {f"Media/{iso(1)}/{n}": n.encode() for n in names})
    m = member_for(wsgidav_server, isolated_env)
    assert m.update().downloaded == 4
    for n in names:  # the coordinator empties the date folder: the guard keeps the files
        (cong(wsgidav_server) / "Media" / iso(1) / n).unlink()

    monkeypatch.setenv("M3DAEMON_PASSWORD", m.password)
    daemon = Daemon([m.config], no_tray=True, watch=False)
    daemon.start()
    try:
        runner = next(iter(daemon.runners.values()))
        assert runner.wait_for(1, timeout=20), "the first sync"
        assert runner.state is SyncState.ERROR and runner.last_error is not None
        assert runner.last_error.kind == "MassDeletionRefused"
        with dashboard_of(daemon) as (web, base, text):
            assert "4 synced files are missing from the server listing; they were kept." in text
            assert all(f"{iso(1)}/{n}" in text for n in names)
            assert "Review the files kept…" in text and 'href="/c/0/status#kept"' in text
            assert "Remove them from this computer" in text
            assert "Do this only if the coordinator really removed them." in text  # the page asks first
            assert "--allow-deletions" not in text and "m3daemon update" not in text
            live = web.get("/c/0/status.json").json()
            assert "m3daemon" not in live["error"]["remedy"]

            token = csrf_of(text)
            done = runner.completed_seq
            removed = web.post("/c/0/allow-deletions", data={"csrf_token": token}, headers={"Origin": base})
            assert removed.status_code in (202, 303)
            assert runner.wait_for(done + 1, timeout=20)
            assert runner.state is SyncState.UP_TO_DATE, runner.last_error
            assert "they were kept" not in web.get("/c/0/status").text
    finally:
        daemon.shutdown()
    assert m.files() == {}
