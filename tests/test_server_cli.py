"""`m3daemon server init | user | info | cert | run` as a person runs them, and the start-at-boot spec."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from m3daemon.errors import TLSError
from m3daemon.server import Role, ServerHandle, UserStore, server_spec
from m3daemon.server import tls as tlsmod
from m3daemon.server.layout import ServerLayout
from m3daemon.service import CommandResult, Host, plan_install
from m3daemon.service.core import WriteFile


def m3(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "m3daemon", *args], input=stdin if stdin is not None else "",
                          capture_output=True, text=True, timeout=timeout, env=dict(os.environ), check=False)


@pytest.fixture
def srv_dir(tmp_path: Path) -> Path:
    return tmp_path / "server"


def test_init_creates_the_layout_and_prints_the_ca_fingerprint(srv_dir: Path) -> None:
    proc = m3("server", "init", str(srv_dir), "--host-name", "kh.example.org", "--host-name", "10.1.2.3")
    assert proc.returncode == 0, proc.stderr
    layout = ServerLayout(srv_dir)
    for rel in ("data/Media", "data/Media/Recurring", "data/Hidden", "logs", "tls"):
        assert (srv_dir / rel).is_dir(), rel
    for secret in (layout.ca_key, layout.default_key, layout.users_file):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert stat.S_IMODE(srv_dir.stat().st_mode) == 0o700
    fp = layout.ca_fingerprint()
    assert fp and fp in proc.stdout
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fp)
    assert fp == _openssl_style_fingerprint(layout.ca_file)
    names = tlsmod.cert_names(layout.default_cert.read_bytes())
    for name in ("kh.example.org", "10.1.2.3", "localhost", "127.0.0.1"):
        assert name in names
    ca = tlsmod.load_pem_certs(layout.ca_file.read_bytes())[0]
    days = (ca.not_valid_after_utc - ca.not_valid_before_utc).days
    assert 3600 < days < 3700  # about ten years
    assert 'host = "127.0.0.1"' in layout.settings_file.read_text()

    again = m3("server", "init", str(srv_dir))
    assert again.returncode == 0, again.stderr
    assert layout.ca_fingerprint() == fp  # nothing replaced


def _openssl_style_fingerprint(path: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(path.read_text())
    import hashlib

    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def test_init_refuses_a_folder_that_holds_something_else(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"x")
    proc = m3("server", "init", str(tmp_path / "photos"))
    assert proc.returncode == 2
    assert "not empty" in proc.stderr


def test_user_commands(srv_dir: Path) -> None:
    assert m3("server", "init", str(srv_dir)).returncode == 0
    added = m3("server", "user", "add", str(srv_dir), "anna", "--role", "coordinator", stdin="first-password\n")
    assert added.returncode == 0, added.stderr
    assert m3("server", "user", "add", str(srv_dir), "bob", "--role", "member", stdin="bobs-password\n").returncode == 0
    dup = m3("server", "user", "add", str(srv_dir), "anna", "--role", "member", stdin="whatever-pw\n")
    assert dup.returncode == 2 and "already" in dup.stderr
    short = m3("server", "user", "add", str(srv_dir), "carl", "--role", "member", stdin="short\n")
    assert short.returncode == 2 and "too short" in short.stderr
    bad_name = m3("server", "user", "add", str(srv_dir), "a:b", "--role", "member", stdin="long-enough-pw\n")
    assert bad_name.returncode == 2
    listed = json.loads(m3("server", "user", "list", str(srv_dir), "--json").stdout)
    assert [(u["name"], u["role"]) for u in listed] == [("anna", "coordinator"), ("bob", "member")]
    store = UserStore(srv_dir / "users.json")
    old_hash = store.get("anna").password_hash  # type: ignore[union-attr]
    assert m3("server", "user", "passwd", str(srv_dir), "anna", stdin="second-password\n").returncode == 0
    assert store.get("anna").password_hash != old_hash  # type: ignore[union-attr]
    assert m3("server", "user", "role", str(srv_dir), "bob", "coordinator").returncode == 0
    assert store.get("bob").role.can_write  # type: ignore[union-attr]
    assert m3("server", "user", "rm", str(srv_dir), "bob").returncode == 0
    assert store.get("bob") is None
    assert m3("server", "user", "rm", str(srv_dir), "bob").returncode == 2
    text = (srv_dir / "users.json").read_text()
    for password in ("first-password", "second-password", "bobs-password"):
        assert password not in text
    assert stat.S_IMODE((srv_dir / "users.json").stat().st_mode) == 0o600
    not_a_server = m3("server", "user", "list", str(srv_dir / "data"))
    assert not_a_server.returncode == 2 and "server init" in not_a_server.stderr


def test_info_and_cert(srv_dir: Path) -> None:
    assert m3("server", "init", str(srv_dir)).returncode == 0
    info = json.loads(m3("server", "info", str(srv_dir), "--json").stdout)
    fp = info["ca_fingerprint_sha256"]
    assert fp == ServerLayout(srv_dir).ca_fingerprint()
    assert info["listen"] == "127.0.0.1:8443" and info["running"] is False
    proc = m3("server", "cert", str(srv_dir), "--host-name", "media.example.org")
    assert proc.returncode == 0, proc.stderr
    info2 = json.loads(m3("server", "info", str(srv_dir), "--json").stdout)
    assert info2["ca_fingerprint_sha256"] == fp  # members pin the CA: nothing changes for them
    assert "media.example.org" in info2["certificate_names"]
    assert set(info["certificate_names"]) <= set(info2["certificate_names"])


def _start_cli_server(srv_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "m3daemon", "server", "run", str(srv_dir), "--port", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("Serving"):
            return proc, line
    proc.kill()
    raise AssertionError(f"the server did not start: {proc.communicate()}")


def test_run_serves_on_loopback_and_stops_cleanly_on_sigterm(srv_dir: Path) -> None:
    assert m3("server", "init", str(srv_dir)).returncode == 0
    assert m3("server", "user", "add", str(srv_dir), "bob", "--role", "member", stdin="bobs-password\n").returncode == 0
    proc, line = _start_cli_server(srv_dir)
    try:
        match = re.search(r"at (https://127\.0\.0\.1:(\d+)/) \(listening on 127\.0\.0\.1 port (\d+)\)", line)
        assert match, line
        ctx = ssl.create_default_context(cafile=str(srv_dir / "ca.pem"))
        with httpx.Client(verify=ctx, auth=("bob", "bobs-password")) as c:
            assert c.request("PROPFIND", match.group(1), headers={"Depth": "1"}).status_code == 207
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Stopped." in out
    assert "WARNING" not in err


def test_run_on_every_interface_warns(srv_dir: Path) -> None:
    assert m3("server", "init", str(srv_dir)).returncode == 0
    proc, line = _start_cli_server(srv_dir, "--host", "0.0.0.0")
    try:
        assert "listening on 0.0.0.0" in line
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert "WARNING" in err and "every network interface" in err
    assert "No accounts yet" in err


def test_run_reports_a_busy_port(srv_dir: Path) -> None:
    assert m3("server", "init", str(srv_dir)).returncode == 0
    with ServerHandle(srv_dir, port=0, access_log=False) as first:
        proc = m3("server", "run", str(srv_dir), "--port", str(first.port), timeout=30)
    assert proc.returncode == 1
    assert "Cannot listen" in proc.stderr


def test_own_certificate(tmp_path: Path, srv_dir: Path) -> None:
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_pem = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "their-ca.pem"
    cert.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems) + ca.cert_pem.bytes())
    key.write_bytes(leaf.private_key_pem.bytes())
    ca_pem.write_bytes(ca.cert_pem.bytes())
    proc = m3("server", "init", str(srv_dir), "--cert", str(cert), "--key", str(key), "--ca", str(ca_pem))
    assert proc.returncode == 0, proc.stderr
    assert not (srv_dir / "tls" / "ca-key.pem").exists()
    assert (srv_dir / "ca.pem").read_bytes() == ca_pem.read_bytes()
    UserStore(srv_dir / "users.json").add("bob", Role.MEMBER, "bobs-password")
    with ServerHandle(srv_dir, port=0) as srv:
        _pem, sha = tlsmod.fetch_server_ca_fingerprint(srv.url)
        assert sha == tlsmod.fingerprint(ca_pem.read_bytes())
        ctx = ssl.create_default_context(cafile=str(ca_pem))
        with httpx.Client(verify=ctx, auth=("bob", "bobs-password")) as c:
            assert c.request("PROPFIND", srv.folder_url, headers={"Depth": "0"}).status_code == 207
    leaf_only = tmp_path / "leaf-only.pem"
    leaf_only.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    other = tmp_path / "other"
    assert m3("server", "init", str(other), "--cert", str(leaf_only), "--key", str(key)).returncode == 0
    assert not (other / "ca.pem").exists()
    with ServerHandle(other, port=0, access_log=False) as srv, pytest.raises(TLSError, match="ca.pem"):
        tlsmod.fetch_server_ca_fingerprint(srv.url)
    missing_key = m3("server", "init", str(tmp_path / "third"), "--cert", str(cert))
    assert missing_key.returncode == 2


# --- start at boot --------------------------------------------------------------------------------


def _runner(argv: Sequence[str]) -> CommandResult:
    if list(argv[:3]) == ["systemctl", "--user", "is-system-running"]:
        return CommandResult(0, "running\n")
    return CommandResult(0)


def test_server_spec_installs_like_the_daemon(tmp_path: Path, srv_dir: Path) -> None:
    spec = server_spec(srv_dir)
    assert spec.name == "m3daemon-server"
    assert spec.argv == ("server", "run", str(srv_dir.absolute()))
    assert spec.notify
    marker = tmp_path / "run-systemd"
    marker.mkdir()
    host = Host(platform="linux", home=tmp_path / "home", environ={"XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                "XDG_RUNTIME_DIR": str(tmp_path / "rt")}, log_dir=tmp_path / "log", executable=sys.executable,
                run=_runner, systemd_marker=marker)
    plan = plan_install(spec, host, start=False)
    unit = next(s for s in plan.steps if isinstance(s, WriteFile))
    assert unit.path.name == "m3daemon-server.service"
    assert "server run" in unit.content and str(srv_dir.absolute()) in unit.content
    assert "Type=notify" in unit.content


def test_init_again_with_a_port_keeps_the_other_settings(srv_dir: Path) -> None:
    assert m3("server", "init", str(srv_dir)).returncode == 0
    toml = srv_dir / "server.toml"
    toml.write_text(toml.read_text().replace('host = "127.0.0.1"', 'host = "0.0.0.0"'))
    assert m3("server", "init", str(srv_dir), "--port", "9443").returncode == 0
    s = ServerLayout(srv_dir).settings()
    assert (s.host, s.port) == ("0.0.0.0", 9443)
