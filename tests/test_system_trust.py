"""Servers with a certificate from the operating system's trust store work without ca_file.

A congregation's server with a certificate from a public CA (or, at a company, from the CA its
TLS inspection installed in the Windows store) must just work. m3daemon verifies with truststore,
as pip does: Keychain on macOS, CryptoAPI on Windows, OpenSSL's CA paths on Linux. Here a fresh CA
is added to the Linux system store for real (/usr/local/share/ca-certificates and
update-ca-certificates, as root; removed again at the end) and a WsgiDAV server with a certificate
from it is trusted without ca_file; a configured ca_file still replaces the store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from member import Member, iso
from servers import DavServer, WsgiDavServer, make_tls_files, make_tree, skip_or_fail

STORE = Path("/usr/local/share/ca-certificates")


def _update_store() -> None:
    subprocess.run(["update-ca-certificates"], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def system_ca_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    """A WsgiDAV server whose CA is in the system store (and nowhere else) while the tests run."""
    if shutil.which("update-ca-certificates") is None:
        skip_or_fail("the system trust store test needs update-ca-certificates (Debian package ca-certificates)")
    if os.geteuid() != 0:
        skip_or_fail("adding a CA to the system trust store needs root (CI runs as root)")
    work = tmp_path_factory.mktemp("system-ca")
    tls = make_tls_files(work / "tls")
    added = STORE / f"m3daemon-test-{work.name}.crt"
    STORE.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tls.ca_file, added)
    server = WsgiDavServer(work / "wsgidav", tls)
    try:
        _update_store()
        server.start()
        yield server
    finally:
        server.stop()
        added.unlink(missing_ok=True)
        _update_store()


def _member(server: DavServer, home: Path, ca_file: Path | None) -> Member:
    (server.root / "Cong").mkdir(parents=True, exist_ok=True)
    make_tree(server.root / "Cong", {f"Media/{iso(1)}/a.jpg": b"a"})
    return Member.create(home, server.url, "/dav/Cong", server.username, server.password, ca_file)


def test_a_server_with_a_certificate_from_the_system_store_works_without_ca_file(
    system_ca_server: DavServer, isolated_env: Path
) -> None:
    m = _member(system_ca_server, isolated_env, ca_file=None)
    assert "ca_file" not in m.config_path.read_text()
    report = m.update()
    assert report.ok and m.files() == {f"{iso(1)}/a.jpg": b"a"}


def test_a_configured_ca_file_still_replaces_the_system_store(
    system_ca_server: DavServer, isolated_env: Path, tmp_path: Path
) -> None:
    other = make_tls_files(tmp_path / "other")  # a pinned CA that did not sign this server
    m = _member(system_ca_server, isolated_env, ca_file=other.ca_file)
    proc = m.cli("update")
    assert proc.returncode == 4, proc.stderr
    assert "certificate" in proc.stderr.lower()
    assert m.files() == {}


def test_the_context_without_ca_file_is_truststore() -> None:
    import truststore

    from m3daemon.remote.http import tls_context

    assert isinstance(tls_context(None), truststore.SSLContext)
