"""The download core: new files on libcurl (one CurlMulti), httpx where libcurl cannot be used, one
bandwidth limit for both. The fault suites (test_faults_*.py, test_member_faults.py) run through the
same core; these tests pin what only the core decides."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pycurl  # (a dependency on every platform: an import that fails is a broken install, not a skip)
import pytest
import trustme
from faulthelpers import cong, member_for, set_connection
from member import iso
from servers import DavServer, ServerPool, make_tree

from m3daemon.remote.curl import trust_options
from m3daemon.remote.curl_download import HandBack, Job, MultiDownloader
from m3daemon.remote.http import DavSession, Endpoint


def session_for(server: DavServer, ca_file: Path | None) -> DavSession:
    return DavSession(Endpoint(server.url, "/dav/Cong", server.username, ca_file), server.password)


def fetch_one(session: DavSession, staging: Path, rel: str, data: bytes) -> tuple[HandBack | None, bytes]:
    results: list[HandBack | None] = []
    multi = MultiDownloader.for_session(session)
    assert multi is not None
    part = staging / "x.part"
    multi.run([Job(tuple(rel.split("/")), part, len(data), None, None)], lambda job, back: results.append(back))
    [back] = results
    return back, part.read_bytes() if part.exists() else b""


def test_libcurl_trusts_only_the_configured_ca(dav_server_pool: ServerPool, tmp_path: Path) -> None:
    apache_server = dav_server_pool.fresh("apache")
    data = os.urandom(50_000)
    rel = f"Media/{iso(1)}/a.jpg"
    make_tree(cong(apache_server), {rel: data})
    assert trust_options(apache_server.ca_file) == [
        (pycurl.SSL_VERIFYPEER, 1), (pycurl.SSL_VERIFYHOST, 2),
        (pycurl.CAINFO, str(apache_server.ca_file)), (pycurl.CAPATH, None),
    ]
    with session_for(apache_server, apache_server.ca_file) as session:
        back, got = fetch_one(session, tmp_path, rel, data)
    assert back is None and got == data

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with session_for(apache_server, other) as session:
        back, _got = fetch_one(session, tmp_path, rel, data)
    assert back is not None and back.final is None, "httpx tries again and names the TLS problem"
    assert "certificate" in back.reason.lower() or "SSL" in back.reason


@pytest.mark.parametrize("core", ["libcurl", "httpx"])
def test_the_bandwidth_limit_paces_all_downloads_together(
    dav_server_pool: ServerPool, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, core: str
) -> None:
    dav_server = dav_server_pool.fresh("apache")
    if core == "httpx":
        monkeypatch.setenv("M3DAEMON_NO_CURL", "1")
    files = {f"Media/{iso(1)}/{n}.jpg": os.urandom(100_000) for n in "abc"}
    make_tree(cong(dav_server), files)
    m = member_for(dav_server, isolated_env)
    set_connection(m, bandwidth_limit_kbps=2400)  # 300 kB/s: 300 kB take about a second
    started = time.monotonic()
    report = m.update()
    elapsed = time.monotonic() - started
    assert report.ok and report.downloaded == 3
    assert m.files() == {rel.removeprefix("Media/"): data for rel, data in files.items()}
    assert elapsed >= 0.7, f"300 kB at 300 kB/s took only {elapsed:.2f} s"
