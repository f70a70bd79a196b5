"""The test servers behave as tests/servers.py says they do."""

from __future__ import annotations

import os
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest
from servers import DavServer, make_tree, skip_or_fail

PROPFIND_ETAG = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/><d:getcontentlength/>'
    b"<d:resourcetype/></d:prop></d:propfind>"
)


def client(server: DavServer, user: str | None = None, password: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        verify=server.ssl_context(),
        auth=(user or server.username, password or server.password),
        timeout=10,
    )


@pytest.fixture
def dav(dav_server: DavServer) -> Iterator[httpx.Client]:
    with client(dav_server) as c:
        yield c


def hrefs(body: bytes) -> dict[str, ET.Element]:
    """PROPFIND multistatus -> {decoded href path: <response> element}."""
    out = {}
    for resp in ET.fromstring(body).iter("{DAV:}response"):
        href = resp.findtext("{DAV:}href") or ""
        out[urllib.parse.unquote(urllib.parse.urlsplit(href).path)] = resp
    return out


def test_propfind_depth1_lists_files(dav_server: DavServer, dav: httpx.Client) -> None:
    assert list(dav_server.root.iterdir()) == []  # emptied before each test
    make_tree(dav_server.root, {"hello.txt": b"hi", "Lieder/ä & b.mp3": b"x" * 10})
    r = dav.request("PROPFIND", "/dav/", headers={"Depth": "1"})
    assert r.status_code == 207
    found = hrefs(r.content)
    assert {"/dav/", "/dav/hello.txt", "/dav/Lieder/"} <= found.keys()
    assert "/dav/Lieder/ä & b.mp3" not in found  # Depth 1 only
    r = dav.request("PROPFIND", "/dav/Lieder/", headers={"Depth": "1"})
    assert r.status_code == 207
    assert "/dav/Lieder/ä & b.mp3" in hrefs(r.content)


def test_wrong_password_is_401(dav_server: DavServer) -> None:
    make_tree(dav_server.root, {"a.txt": b"a"})
    with client(dav_server, password="wrong") as c:
        assert c.get("/dav/a.txt").status_code == 401
        assert c.request("PROPFIND", "/dav/", headers={"Depth": "1"}).status_code == 401


def test_get_and_range(dav_server: DavServer, dav: httpx.Client) -> None:
    data = bytes(range(256)) * 40
    make_tree(dav_server.root, {"sub/data.bin": data})
    r = dav.get("/dav/sub/data.bin")
    assert r.status_code == 200 and r.content == data
    r = dav.get("/dav/sub/data.bin", headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206
    assert r.content == data[1000:2000]
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(data)}"


def test_put_lands_in_root(dav_server: DavServer, dav: httpx.Client) -> None:
    make_tree(dav_server.root, {"existing/": b""})  # a dir created by root on disk
    r = dav.put("/dav/existing/new.txt", content=b"uploaded")
    assert r.status_code in (201, 204)
    assert (dav_server.root / "existing/new.txt").read_bytes() == b"uploaded"


def test_request_log(dav_server: DavServer, dav: httpx.Client) -> None:
    make_tree(dav_server.root, {"a b.txt": b"abc"})
    if not dav_server.has_request_log:
        with pytest.raises(NotImplementedError):
            dav_server.request_log()
        return
    assert dav_server.request_log() == []
    dav.request("PROPFIND", "/dav/", headers={"Depth": "1"})
    dav.get("/dav/a%20b.txt")
    dav.get("/dav/missing.txt")
    assert dav_server.request_log() == [
        ("PROPFIND", "/dav/", 207),
        ("GET", "/dav/a b.txt", 200),
        ("GET", "/dav/missing.txt", 404),
    ]
    dav_server.clear_log()
    assert dav_server.request_log() == []


def test_depth_infinity(dav_server: DavServer, dav: httpx.Client) -> None:
    make_tree(dav_server.root, {"a/b/c.txt": b"deep"})
    r = dav.request("PROPFIND", "/dav/", headers={"Depth": "infinity"})
    if dav_server.supports_depth_infinity:
        assert r.status_code == 207
        assert "/dav/a/b/c.txt" in hrefs(r.content)
    else:
        assert r.status_code == 403  # Apache (DavDepthInfinity Off) and nginx dav-ext


def test_etags_in_propfind(dav_server: DavServer, dav: httpx.Client) -> None:
    make_tree(dav_server.root, {"f.txt": b"12345"})
    r = dav.request("PROPFIND", "/dav/", headers={"Depth": "1", "Content-Type": "application/xml"}, content=PROPFIND_ETAG)
    assert r.status_code == 207
    resp = hrefs(r.content)["/dav/f.txt"]
    etags = [e.text for e in resp.iter("{DAV:}getetag") if e.text]
    assert bool(etags) == dav_server.etags
    assert bool(dav.head("/dav/f.txt").headers.get("etag")) == dav_server.get_etags


def test_stop_and_restart_same_port(dav_server: DavServer) -> None:
    make_tree(dav_server.root, {"x.txt": b"x"})
    url = dav_server.url
    with client(dav_server) as c:
        assert c.get("/dav/x.txt").status_code == 200
    dav_server.stop()
    assert not dav_server.is_running()
    with client(dav_server) as c, pytest.raises(httpx.ConnectError):
        c.get("/dav/x.txt")
    dav_server.restart()
    assert dav_server.url == url
    with client(dav_server) as c:
        assert c.get("/dav/x.txt").content == b"x"
    dav_server.restart()  # also while running
    assert dav_server.url == url
    with client(dav_server) as c:
        assert c.get("/dav/x.txt").status_code == 200


def test_readonly_user(dav_server: DavServer) -> None:
    if dav_server.readonly_username is None:
        pytest.skip(f"{dav_server.kind}: no read-only user")
    make_tree(dav_server.root, {"r.txt": b"read me"})
    with client(dav_server, dav_server.readonly_username, dav_server.readonly_password) as c:
        assert c.get("/dav/r.txt").content == b"read me"
        assert c.request("PROPFIND", "/dav/", headers={"Depth": "1"}).status_code == 207
        assert c.put("/dav/w.txt", content=b"no").status_code in (401, 403)
        assert c.delete("/dav/r.txt").status_code in (401, 403)
    assert not (dav_server.root / "w.txt").exists()
    assert (dav_server.root / "r.txt").exists()


def test_wsgidav_server_fixture(wsgidav_server: DavServer) -> None:
    assert wsgidav_server.kind == "wsgidav"
    assert wsgidav_server.url.startswith("https://127.0.0.1:")
    assert not wsgidav_server.url.endswith("/")
    assert list(wsgidav_server.root.iterdir()) == []


def test_isolated_env(isolated_env: object) -> None:
    home = os.environ["HOME"]
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        assert os.environ[var].startswith(home)
    assert "M3DAEMON_CONFIG" not in os.environ
    assert "M3DAEMON_PASSWORD" not in os.environ
    assert os.environ["PYTHON_KEYRING_BACKEND"] == "keyring.backends.fail.Keyring"


@pytest.mark.parametrize("ci", ["true", ""])
def test_missing_package_skips_or_fails_in_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if ci == "true" else pytest.skip.Exception
    with pytest.raises(expected, match="needs Debian package apache2"):
        skip_or_fail("needs Debian package apache2")
