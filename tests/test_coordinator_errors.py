"""The coordinator's tools when things go wrong: bad input is refused before any request, a read-only
account is told so, a killed or failed upload never leaves a file under its real name, and a
large upload is streamed."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import wait_until
from faultproxy import FaultProxy, Rule
from member import Member, day, iso, run_cli
from servers import DavServer, ServerPool, make_tree

from m3daemon.coordinator.context import Coordinator
from m3daemon.coordinator.forced import edit_forced, forcing
from m3daemon.coordinator.media import add_media, plan_uploads
from m3daemon.errors import LockedError
from m3daemon.remote.http import RetryPolicy

FOLDER = "/dav/Cong"
QUICK = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


def cong(server: DavServer) -> Path:
    return server.root / "Cong"


run = run_cli  # the CLI in this process: (exit code, stdout, stderr)


def on_disk(server: DavServer) -> dict[str, int]:
    return {p.relative_to(cong(server)).as_posix(): p.stat().st_size
            for p in sorted(cong(server).rglob("*")) if p.is_file()}


def coordinator_for(server: DavServer, home: Path, *, url: str | None = None, name: str = "coordinator",
                    username: str | None = None, password: str | None = None) -> Member:
    cong(server).mkdir(parents=True, exist_ok=True)
    proxied = url is not None and url.startswith("http://")
    return Member.create(home, url or server.url, FOLDER, username or server.username,
                         password or server.password, None if proxied else server.ca_file,
                         insecure_loopback=proxied, name=name)


# --- refused before any request --------------------------------------------------------------------


def _hostile_cases(tmp: Path, create: bool = True) -> list[tuple[str, list[str]]]:
    def f(name: str, data: bytes = b"data") -> str:
        p = tmp / "files" / name
        if create:
            p.parent.mkdir(exist_ok=True)
            p.write_bytes(data)
        return str(p)

    good = f("good.jpg")
    return [
        ("dot-dot", ["media", "rm", iso(1), "../escape.jpg"]),
        ("slash", ["media", "rm", iso(1), "a/b.jpg"]),
        ("backslash", ["recurring", "rm", "a\\b.jpg"]),
        ("only-dots", ["recurring", "rm", ".."]),
        ("reserved", ["media", "hide", iso(1), "CON"]),
        ("reserved-ext", ["media", "hide", iso(1), "com1.mp4"]),
        ("control", ["media", "unhide", iso(1), "x\x01y.jpg"]),
        ("too-long", ["media", "rm", iso(1), "é" * 100 + ".jpg"]),
        ("hidden-name", ["media", "add", iso(1), f(".secret.jpg")]),
        ("windows-char", ["media", "add", iso(1), f("bad:name.jpg")]),
        ("windows-device", ["recurring", "add", f("NUL.mp4")]),
        ("slash-date", ["media", "add", "17/07/2024", good]),
        ("impossible-date", ["media", "add", "2024-02-30", good]),
        ("dmy-date", ["media", "hide", "17-07-2024", "x.jpg"]),
        ("past-date", ["media", "add", iso(-1), good]),
        ("bad-prefix", ["media", "add", iso(1), good, "--prefix", "1-2"]),
        ("four-groups", ["media", "add", iso(1), good, "--prefix", "01-02-03-04"]),
        ("bad-section", ["media", "add", iso(1), good, "--section", "opening"]),
        ("empty-file", ["media", "add", iso(1), f("empty.jpg", b"")]),
        ("missing-file", ["media", "add", iso(1), str(tmp / "missing.jpg")]),
        ("same-name-twice", ["media", "add", iso(1), good, good]),
        ("not-forcable", ["settings", "force", "app.localAppLang=fr"]),
        ("unknown-key", ["settings", "force", "cong.server=example.org"]),
        ("bad-value", ["settings", "force", "meeting.mwDay=9"]),
        ("not-key-value", ["settings", "force", "meeting.mwDay"]),
        ("unforce-nothing", ["settings", "unforce"]),
        ("background-not-image", ["background", "set", f("notes.txt")]),
        ("prune-future", ["media", "prune", "--before", iso(3)]),
        ("ls-backwards", ["media", "ls", "--from", iso(3), "--to", iso(1)]),
    ]


HOSTILE_IDS = [case for case, _args in _hostile_cases(Path("/nonexistent"), create=False)]


@pytest.mark.parametrize("case", HOSTILE_IDS)
def test_bad_input_is_refused_before_any_request(
    dav_server: DavServer, isolated_env: Path, tmp_path: Path, case: str
) -> None:
    args = dict(_hostile_cases(tmp_path))[case]
    if dav_server.has_request_log:
        c = coordinator_for(dav_server, isolated_env)
        rc, out, err = run(c, *args)
        log = dav_server.request_log()
    else:  # rclone logs no requests: point the client at a listener and check that nobody connected
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.setblocking(False)
            port = listener.getsockname()[1]
            c = coordinator_for(dav_server, isolated_env, url=f"https://127.0.0.1:{port}")
            rc, out, err = run(c, *args)
            try:
                log = [("connection", str(listener.accept()[1]), 0)]
            except BlockingIOError:
                log = []
    assert rc == 2, f"{args}: exit {rc}\n{out}\n{err}"
    assert err.startswith("Error: ") and "What to do: " in err
    assert log == []
    assert on_disk(dav_server) == {}


# --- accounts --------------------------------------------------------------------------------------


def test_a_read_only_account_gets_exit_3_and_changes_nothing(
    dav_server: DavServer, isolated_env: Path, tmp_path: Path
) -> None:
    if dav_server.readonly_username is None:
        pytest.skip(f"{dav_server.kind} has no read-only account (see tests/servers.py)")
    make_tree(cong(dav_server), {f"Media/{iso(-2)}/old.jpg": b"old", "Media/Recurring/r.jpg": b"r"})
    before = on_disk(dav_server)
    upload = tmp_path / "talk.jpg"
    upload.write_bytes(b"talk")
    bob = coordinator_for(dav_server, isolated_env, name="bob", username=dav_server.readonly_username,
                          password=dav_server.readonly_password)
    for args in (
        ["media", "add", iso(1), str(upload)],
        ["recurring", "add", str(upload)],
        ["recurring", "rm", "r.jpg"],
        ["media", "hide", iso(1), "r.jpg"],
        ["media", "prune", "--yes"],
        ["settings", "force", "meeting.mwDay=2"],
        ["background", "set", str(upload)],
    ):
        rc, out, err = run(bob, *args)
        assert rc == 3, f"{args}: exit {rc}\n{out}\n{err}"
        assert "may only read" in err, err
        assert "user name or password" not in err
    assert on_disk(dav_server) == before
    # Reading is allowed.
    assert run(bob, "recurring", "ls")[0] == 0
    # A wrong password is a different message.
    rc, _out, err = run(bob, "media", "add", iso(1), str(upload), password="wrong")
    assert rc == 3 and "user name or password" in err


# --- uploads that fail -----------------------------------------------------------------------------


def settled(server: DavServer, quiet: float = 0.3, timeout: float = 15) -> None:
    """Wait until nothing on the server's disk has changed for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        now = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in cong(server).rglob("*") if p.is_file()}
        if now == last:
            return
        last = now
        time.sleep(quiet)  # the subject: "nothing changed for `quiet` seconds" is observed over time


class SlowRelay:
    """A TCP relay that passes the client's bytes on at ``rate`` bytes per second. TLS passes through
    untouched, so the client still verifies the real server's certificate (issued for 127.0.0.1)."""

    def __init__(self, port: int, rate: float) -> None:
        self.upstream, self.rate, self.sent_up = port, rate, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        # Small buffers: little is in flight when the client dies, so the server stops soon after.
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _addr = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, throttle: bool) -> None:
        try:
            while data := src.recv(64 * 1024):
                if throttle:
                    self.sent_up += len(data)
                    time.sleep(len(data) / self.rate)  # the subject: the relay's rate
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self.closed = True
        self.listener.close()


def test_an_upload_killed_midway_leaves_nothing_under_the_real_name(
    dav_server: DavServer, isolated_env: Path, tmp_path: Path
) -> None:
    big = tmp_path / "Circuit overseer talk.mp4"
    size = 64 * 1024 * 1024
    with open(big, "wb") as f:
        f.truncate(size)  # sparse
    relay = SlowRelay(dav_server.port, rate=4_000_000)
    try:
        slow = coordinator_for(dav_server, isolated_env, url=f"https://127.0.0.1:{relay.port}", name="slow")
        env = dict(os.environ, M3DAEMON_PASSWORD=slow.password, M3DAEMON_CONFIG=str(slow.config_path))
        proc = subprocess.Popen([sys.executable, "-m", "m3daemon", "media", "add", iso(1), str(big)],
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until("2 MB of the upload", lambda: relay.sent_up >= 2_000_000 or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    finally:
        relay.close()
    settled(dav_server)  # the relay still passes on what it had buffered, then the server notices the cut
    real = f"Media/{iso(1)}/{big.name}"
    leftovers = {k: v for k, v in on_disk(dav_server).items() if Path(k).name.startswith(".m3daemon-upload-")}
    print(f"{dav_server.kind}: left after the kill: {leftovers}")
    assert real not in on_disk(dav_server)
    assert set(on_disk(dav_server)) == set(leftovers), "only a hidden temporary name may remain"
    # Members never see the leftover (a name starting with a dot).
    member = Member.create(isolated_env, dav_server.url, FOLDER, dav_server.username, dav_server.password,
                           dav_server.ca_file)
    assert member.update().ok and member.files() == {}
    # Running the same command again succeeds, and sweeps a leftover that is old enough.
    for rel in leftovers:
        old = time.time() - 7200
        os.utime(cong(dav_server) / rel, (old, old))
    direct = coordinator_for(dav_server, isolated_env, name="direct")
    rc, out, err = run(direct, "media", "add", iso(1), str(big))
    assert rc == 0, out + err
    assert on_disk(dav_server) == {real: size}


def test_locked_folders_and_targets_are_retried_then_reported(
    wsgidav_server: DavServer, isolated_env: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.jpg", tmp_path / "b.jpg"
    first.write_bytes(b"a")
    second.write_bytes(b"b")
    with FaultProxy(wsgidav_server.url, wsgidav_server.ca_file) as proxy:
        cfg = coordinator_for(wsgidav_server, isolated_env, url=proxy.url).config
        mkcol_locked = proxy.add(Rule("MKCOL", lambda p: True, status=423, times=2))
        with Coordinator.open(cfg, password=wsgidav_server.password, retry=QUICK) as c:
            result = add_media(c, day(1), plan_uploads([first], None, None))
        assert result.exit_code == 0 and mkcol_locked.hits == 2
        assert on_disk(wsgidav_server) == {f"Media/{iso(1)}/a.jpg": 1}
        proxy.add(Rule("MOVE", lambda p: True, status=423))
        with Coordinator.open(cfg, password=wsgidav_server.password, retry=QUICK) as c:
            result = add_media(c, day(1), plan_uploads([second], None, None))
    assert result.exit_code == 1
    [item] = result.items
    assert not item.done and isinstance(item.error, LockedError)
    assert "locked by another client" in item.error.message
    assert on_disk(wsgidav_server) == {f"Media/{iso(1)}/a.jpg": 1}, "no temporary file, nothing under b.jpg"


def _without_etag(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != "etag"}


def test_forced_settings_are_written_with_a_warning_where_the_server_refuses_its_own_listed_tag(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    """A GET without an ETag sends the write to the listed tag; a server that then refuses that
    tag though nothing changed must not look like "another coordinator keeps writing"."""
    make_tree(cong(wsgidav_server), {"forcedPrefs.json": json.dumps({"media": {"lang": "E"}})},
              mtime=time.time() - 60)
    with FaultProxy(wsgidav_server.url, wsgidav_server.ca_file) as proxy:
        cfg = coordinator_for(wsgidav_server, isolated_env, url=proxy.url).config
        proxy.add(Rule("GET", lambda p: True, response_headers=_without_etag))
        proxy.add(Rule("PROPFIND", lambda p: True,
                       rewrite=lambda body: re.sub(rb"(<(?:\w+:)?getetag>)[^<]*", rb'\1"not-the-real-one"', body)))
        with Coordinator.open(cfg, password=wsgidav_server.password, retry=QUICK) as c:
            change = edit_forced(c.writer, forcing({"meeting.mwDay": 2}), sleep=lambda s: None)
        refused = [e for e in proxy.log if e[:2] == ("PUT", "/dav/Cong/forcedPrefs.json") and e[2] == 412]
    assert change.written and change.attempts == 2 and len(refused) == 1
    assert any("no usable version tag" in w for w in change.warnings)
    assert json.loads((cong(wsgidav_server) / "forcedPrefs.json").read_text()) == {
        "media": {"lang": "E"}, "meeting": {"mwDay": 2}}


def test_a_failure_mid_batch_lists_what_was_done_and_leaves_the_server_consistent(
    wsgidav_server: DavServer, isolated_env: Path, tmp_path: Path
) -> None:
    files = []
    for name in ("1.jpg", "2.jpg", "3.jpg"):
        (tmp_path / name).write_bytes(name.encode())
        files.append(str(tmp_path / name))
    puts = iter(range(1, 100))
    with FaultProxy(wsgidav_server.url, wsgidav_server.ca_file) as proxy:
        c = coordinator_for(wsgidav_server, isolated_env, url=proxy.url)
        proxy.add(Rule("PUT", lambda p: next(puts) == 2, status=507))  # the second upload: disk full
        rc, out, err = run(c, "media", "add", iso(1), *files)
    assert rc == 1, out + err
    lines = out.splitlines()
    assert lines[0].startswith("  done") and lines[0].endswith("1.jpg: uploaded, 5 B")
    assert lines[1].startswith("  NOT DONE") and "2.jpg" in lines[1] and "507" in lines[1]
    assert lines[2].startswith("  done") and "3.jpg" in lines[2]
    assert lines[3] == "2 done, 1 not done."
    assert on_disk(wsgidav_server) == {f"Media/{iso(1)}/1.jpg": 5, f"Media/{iso(1)}/3.jpg": 5}


def test_a_connection_cut_during_an_upload_is_retried(
    wsgidav_server: DavServer, isolated_env: Path, tmp_path: Path
) -> None:
    (tmp_path / "a.jpg").write_bytes(b"a" * 10_000)
    with FaultProxy(wsgidav_server.url, wsgidav_server.ca_file) as proxy:
        cfg = coordinator_for(wsgidav_server, isolated_env, url=proxy.url).config
        cut = proxy.add(Rule("PUT", lambda p: True, reset=True, times=1))
        with Coordinator.open(cfg, password=wsgidav_server.password, retry=QUICK) as c:
            result = add_media(c, day(1), plan_uploads([tmp_path / "a.jpg"], "02", None))
    assert result.exit_code == 0 and cut.hits == 1
    assert on_disk(wsgidav_server) == {f"Media/{iso(1)}/02 - a.jpg": 10_000}


def test_prune_asks_on_a_terminal(
    wsgidav_server: DavServer, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(cong(wsgidav_server), {f"Media/{iso(-1)}/a.jpg": b"a"})
    c = coordinator_for(wsgidav_server, isolated_env)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    rc, out, _err = run(c, "media", "prune")
    assert rc == 0 and "Nothing was removed." in out
    assert on_disk(wsgidav_server) == {f"Media/{iso(-1)}/a.jpg": 1}
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    rc, out, _err = run(c, "media", "prune")
    assert rc == 0 and "1 done, 0 not done." in out
    assert on_disk(wsgidav_server) == {}


# --- a large file ----------------------------------------------------------------------------------


# VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec and so counts the memory of the pytest
# process that started this one, which grows during the session.
PEAK_RSS = """
import sys
from m3daemon.cli.main import main
rc = main(sys.argv[1:])
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
print("peak-rss-kib", hwm, file=sys.stderr)
sys.exit(rc)
"""


def test_a_one_gigabyte_upload_is_streamed(dav_server_pool: ServerPool, isolated_env: Path, tmp_path: Path) -> None:
    server = dav_server_pool.fresh("apache")
    big = tmp_path / "Assembly video.mp4"
    size = 1 << 30
    with open(big, "wb") as f:
        f.truncate(size)  # sparse: no disk space, no time to write it
    c = coordinator_for(server, isolated_env)
    env = dict(os.environ, M3DAEMON_PASSWORD=c.password, M3DAEMON_CONFIG=str(c.config_path))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS, "media", "add", iso(1), str(big)], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, check=False)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    peak_mib = int(proc.stderr.split("peak-rss-kib")[1].split()[0]) / 1024
    print(f"1 GiB upload to apache: {seconds:.1f} s, {1024 / seconds:.0f} MiB/s, peak RSS {peak_mib:.0f} MiB")
    assert peak_mib < 100, f"peak memory {peak_mib:.0f} MiB: the upload was not streamed"
    landed = cong(server) / "Media" / iso(1) / big.name
    assert landed.stat().st_size == size
    landed.unlink()
