"""The server's parts without a network: hashing, the throttle, token buckets, settings, certificates."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest

from m3daemon.errors import ConfigError
from m3daemon.server import tls
from m3daemon.server.guard import MALFORMED, FailureThrottle, TokenBuckets, parse_basic
from m3daemon.server.layout import ServerLayout, init_server, renew_if_needed
from m3daemon.server.settings import ServerSettings, load_settings, settings_text
from m3daemon.server.users import Authenticator, Role, ScryptParams, UserStore, hash_password, verify_password

FAST = ScryptParams(ln=10, r=8, p=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_hashes_are_salted_and_verify() -> None:
    a, b = hash_password("correct horse", FAST), hash_password("correct horse", FAST)
    assert a != b and a.startswith("$scrypt$ln=10,r=8,p=1$")
    assert verify_password("correct horse", a) and verify_password("correct horse", b)
    assert not verify_password("correct horsE", a)
    assert not verify_password("x", "$scrypt$garbage") and not verify_password("x", "plain")


def test_authenticator_remembers_success_but_not_a_changed_password(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.json")
    store.add("anna", Role.COORDINATOR, "first-password")
    clock = Clock()
    auth = Authenticator(store, cache_seconds=60, clock=clock)
    assert auth.check("anna", "first-password") is not None
    assert auth.check("anna", "wrong-password") is None
    assert auth.check("nobody", "first-password") is None
    store.set_password("anna", "second-password")
    assert auth.check("anna", "first-password") is None
    acc = auth.check("anna", "second-password")
    assert acc is not None and acc.role is Role.COORDINATOR


def test_throttle_per_address_and_per_account() -> None:
    clock = Clock()
    t = FailureThrottle(max_failures=3, window=100, trusted_seconds=1000, clock=clock)
    for _ in range(3):
        assert t.blocked_for("10.0.0.1", None) == 0
        t.failed("10.0.0.1", None)
    assert t.blocked_for("10.0.0.1", None) == pytest.approx(100)
    assert t.blocked_for("10.0.0.2", None) == 0
    clock.now += 40
    assert t.blocked_for("10.0.0.1", None) == pytest.approx(60)
    clock.now += 60
    assert t.blocked_for("10.0.0.1", None) == 0  # the window moved on
    # an account: failures from many addresses add up …
    t.succeeded("10.0.0.9", "anna")
    for i in range(3):
        t.failed(f"10.1.0.{i}", "anna")
    assert t.blocked_for("10.2.0.1", "anna") > 0
    assert t.blocked_for("10.2.0.1", "bob") == 0
    # … but its usual address is not locked out
    assert t.blocked_for("10.0.0.9", "anna") == 0
    clock.now += 2000
    t.failed("10.1.0.5", "anna")
    t.failed("10.1.0.6", "anna")
    t.failed("10.1.0.7", "anna")
    assert t.blocked_for("10.0.0.9", "anna") > 0  # trust expires


def test_token_buckets() -> None:
    clock = Clock()
    b = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [b.take("a") for _ in range(3)] == [0, 0, 0]
    assert b.take("a") == pytest.approx(0.5)
    assert b.take("b") == 0
    clock.now += 0.5
    assert b.take("a") == 0


def test_parse_basic() -> None:
    def header(text: bytes) -> str:
        return "Basic " + base64.b64encode(text).decode()

    assert parse_basic(header(b"anna:pa:ss")) == ("anna", "pa:ss")
    assert parse_basic(header("jos\u00e9:\u00fc".encode())) == ("jos\u00e9", "\u00fc")
    assert parse_basic("Digest username=x") is None
    assert parse_basic("Basic ***") is MALFORMED
    assert parse_basic(header(b"nocolon")) is MALFORMED
    assert parse_basic(header(b"\xff\xfe:x")) is MALFORMED


def test_settings_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "server.toml"
    assert load_settings(path) == ServerSettings()
    path.write_text(settings_text(ServerSettings()))
    assert load_settings(path) == ServerSettings()
    path.write_text('[server]\nhost = "0.0.0.0"\nport = 9000\npath = "/cong/"\n[limits]\nrequests_per_second = 5\n')
    s = load_settings(path)
    assert (s.host, s.port, s.path, s.limits.requests_per_second) == ("0.0.0.0", 9000, "/cong", 5.0)
    for bad in ('[server]\nport = "x"\n', "[limits]\nmax_upload_bytes = -1\n", '[server]\npath = "/a/../b"\n',
                "not toml ["):
        path.write_text(bad)
        with pytest.raises(ConfigError):
            load_settings(path)


def test_server_certificate_is_renewed_from_the_same_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = init_server(tmp_path / "srv", ["kh.example.org"])
    layout = ServerLayout(tmp_path / "srv")
    before = layout.default_cert.read_bytes()
    assert not renew_if_needed(layout, layout.settings())
    monkeypatch.setattr(tls, "_now", lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=810))
    assert renew_if_needed(layout, layout.settings())
    after = layout.default_cert.read_bytes()
    assert after != before
    assert "kh.example.org" in tls.cert_names(after)
    assert layout.ca_fingerprint() == result.fingerprint


def test_pinning_refuses_what_is_not_one_certificate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        tls.save_pinned_ca(b"hello", "https://192.168.1.10:8443")
    init_server(tmp_path / "srv")
    pem = (tmp_path / "srv" / "ca.pem").read_bytes()
    target = tls.save_pinned_ca(pem, "https://192.168.1.10:8443")
    assert target.name == "192.168.1.10-8443.pem"
    assert tls.same_fingerprint(tls.fingerprint(target.read_bytes()), tls.fingerprint(pem).lower().replace(":", " "))
    with pytest.raises(ConfigError):
        tls.check_host_name("bad name!")
