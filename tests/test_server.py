"""`m3daemon server` over the wire: roles, a member's sync, credentials, throttling, limits, TLS, binding.

One server folder per module (``server_dir``: a coordinator anna and a member bob), served by an
in-process :class:`ServerHandle` on a free loopback port. Tests that need their own limits (or
a throttle nobody else has tripped) start their own handle on the same folder.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from member import Member, day, iso
from servers import make_tree

from m3daemon.server import (
    Role,
    ServerHandle,
    UserStore,
    fetch_server_ca_fingerprint,
    init_server,
    save_pinned_ca,
)
from m3daemon.server.settings import Limits

COORD, COORD_PW = "anna", "coordinator-pw-1"
MEMBER, MEMBER_PW = "bob", "member-pw-123"


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("srv") / "server"
    init_server(root, ["kh.example.org"])
    store = UserStore(root / "users.json")
    store.add(COORD, Role.COORDINATOR, COORD_PW)
    store.add(MEMBER, Role.MEMBER, MEMBER_PW)
    return root


@pytest.fixture(scope="module")
def server(server_dir: Path) -> Iterator[ServerHandle]:
    with ServerHandle(server_dir, port=0) as handle:
        yield handle


@pytest.fixture(autouse=True)
def clean_data(server_dir: Path) -> None:
    data = server_dir / "data"
    for child in (data / "Media").iterdir():
        if child.name != "Recurring":
            _rm(child)
    for folder in (data / "Media" / "Recurring", data / "Hidden"):
        for child in folder.iterdir():
            _rm(child)
    for child in data.iterdir():
        if child.name not in ("Media", "Hidden"):
            _rm(child)


def _rm(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def client(srv: ServerHandle, user: str, password: str, *, source: str | None = None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(srv.ca_file))
    transport = httpx.HTTPTransport(verify=ctx, local_address=source) if source else None
    return httpx.Client(base_url=srv.url, auth=(user, password), verify=ctx, transport=transport, timeout=30)


PROPFIND_BODY = b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>'
PROPPATCH_BODY = (b'<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:z="urn:x"><d:set><d:prop>'
                  b"<z:colour>red</z:colour></d:prop></d:set></d:propertyupdate>")
LOCK_BODY = (b'<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope>'
             b"<d:locktype><d:write/></d:locktype></d:lockinfo>")


# --- roles ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPPATCH", "LOCK", "UNLOCK", "POST"])
def test_a_member_cannot_change_anything(server: ServerHandle, server_dir: Path, method: str) -> None:
    make_tree(server_dir / "data", {"Media/Recurring/keep.jpg": b"keep"})
    headers: dict[str, str] = {}
    body = b""
    target = "/Media/Recurring/keep.jpg"
    if method == "PUT":
        body = b"replaced"
    elif method == "MKCOL":
        target = "/Media/2030-01-01/"
    elif method in ("MOVE", "COPY"):
        headers["Destination"] = server.url + "/Media/Recurring/moved.jpg"
    elif method == "PROPPATCH":
        body = PROPPATCH_BODY
    elif method == "LOCK":
        body = LOCK_BODY
    elif method == "UNLOCK":
        headers["Lock-Token"] = "<opaquelocktoken:x>"
    with client(server, MEMBER, MEMBER_PW) as c:
        resp = c.request(method, target, content=body, headers=headers)
    assert resp.status_code == 403, resp.text
    assert (server_dir / "data/Media/Recurring/keep.jpg").read_bytes() == b"keep"
    assert not (server_dir / "data/Media/Recurring/moved.jpg").exists()
    assert not (server_dir / "data/Media/2030-01-01").exists()


def test_a_member_can_read(server: ServerHandle, server_dir: Path) -> None:
    make_tree(server_dir / "data", {"Media/Recurring/year.mp4": b"video"})
    with client(server, MEMBER, MEMBER_PW) as c:
        assert c.request("PROPFIND", "/Media/", headers={"Depth": "1"}, content=PROPFIND_BODY).status_code == 207
        assert c.get("/Media/Recurring/year.mp4").content == b"video"
        assert c.head("/Media/Recurring/year.mp4").status_code == 200
        assert c.options("/").status_code == 200


def test_a_coordinator_can_write(server: ServerHandle, server_dir: Path) -> None:
    data = server_dir / "data"
    with client(server, COORD, COORD_PW) as c:
        assert c.request("MKCOL", "/Media/2030-01-01/").status_code == 201
        assert c.put("/Media/2030-01-01/.upload-tmp", content=b"slide").status_code == 201
        moved = c.request("MOVE", "/Media/2030-01-01/.upload-tmp",
                          headers={"Destination": server.url + "/Media/2030-01-01/01%20Slide.jpg"})
        assert moved.status_code == 201
        assert (data / "Media/2030-01-01/01 Slide.jpg").read_bytes() == b"slide"
        assert c.request("MKCOL", "/Hidden/2030-01-01/").status_code == 201
        assert c.put("/Hidden/2030-01-01/Year text.mp4", content=b"").status_code == 201
        assert c.request("PROPPATCH", "/Media/2030-01-01/01%20Slide.jpg", content=PROPPATCH_BODY).status_code == 207
        assert c.request("DELETE", "/Media/2030-01-01/").status_code == 204
    assert not (data / "Media/2030-01-01").exists()
    assert (data / "Hidden/2030-01-01/Year text.mp4").exists()


def test_a_member_syncs_from_the_server(server: ServerHandle, server_dir: Path, isolated_env: Path) -> None:
    make_tree(server_dir / "data", {
        f"Media/{iso(2)}/01 - Outline.jpg": b"outline",
        "Media/Recurring/Year text.mp4": b"yeartext",
        f"Hidden/{iso(2)}/Year text.mp4": b"",
        "forcedPrefs.json": json.dumps({"meeting": {"mwDay": day(2).weekday(), "weDay": day(5).weekday()}}),
    })
    member = Member.create(isolated_env, server.url, server.folder, MEMBER, MEMBER_PW, server.ca_file)
    report = member.update()
    assert report.ok, report
    files = member.files()
    assert files[f"{iso(2)}/01 - Outline.jpg"] == b"outline"
    assert f"{iso(2)}/Year text.mp4" not in files  # hidden on that date
    assert files[f"{iso(5)}/Year text.mp4"] == b"yeartext"
    again = member.update()
    assert again.ok and again.downloaded == 0


def test_a_member_cli_update_exits_0(server: ServerHandle, server_dir: Path, isolated_env: Path) -> None:
    make_tree(server_dir / "data", {f"Media/{iso(1)}/a.jpg": b"a"})
    member = Member.create(isolated_env, server.url, "/", MEMBER, MEMBER_PW, server.ca_file)
    code, out = member.update_json()
    assert code == 0, out
    assert out["downloaded"] == 1


# --- credentials ----------------------------------------------------------------------------------


def test_a_wrong_password_gets_401_and_no_anonymous_access(server: ServerHandle) -> None:
    with client(server, MEMBER, "not-the-password") as c:
        resp = c.request("PROPFIND", "/", headers={"Depth": "0"})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic ")
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with httpx.Client(base_url=server.url, verify=ctx) as anon:
        assert anon.request("PROPFIND", "/", headers={"Depth": "0"}).status_code == 401
        assert anon.get("/").status_code == 401


def test_a_wrong_member_sync_exits_3(server: ServerHandle, isolated_env: Path) -> None:
    member = Member.create(isolated_env, server.url, "/", MEMBER, "wrong-password", server.ca_file,
                           name="wrongpw")
    proc = member.cli("update")
    assert proc.returncode == 3, proc.stderr


def _own_server(server_dir: Path, **limits: float) -> ServerHandle:
    base = ServerHandle(server_dir, port=0).settings
    return ServerHandle(server_dir, port=0, settings=replace(base, limits=replace(Limits(), **limits)))


def test_too_many_failures_from_an_address_get_429_with_retry_after(server_dir: Path) -> None:
    with _own_server(server_dir, auth_max_failures=3, auth_window_seconds=600) as srv:
        with client(srv, MEMBER, "bad-password") as bad:
            codes = [bad.get("/").status_code for _ in range(3)]
            assert codes == [401, 401, 401]
            blocked = bad.get("/")
        assert blocked.status_code == 429
        retry_after = int(blocked.headers["Retry-After"])
        assert 1 <= retry_after <= 600
        # the right password does not help from that address while it is blocked
        with client(srv, MEMBER, MEMBER_PW) as good:
            assert good.get("/Media/Recurring/").status_code == 429
        # nor does another account's name
        with client(srv, COORD, COORD_PW) as good:
            assert good.request("PROPFIND", "/", headers={"Depth": "0"}).status_code == 429


def test_an_account_under_attack_is_throttled_but_not_from_its_usual_address(server_dir: Path) -> None:
    with _own_server(server_dir, auth_max_failures=3, auth_window_seconds=600) as srv:
        with client(srv, COORD, COORD_PW, source="127.0.0.1") as usual:
            assert usual.request("PROPFIND", "/", headers={"Depth": "0"}).status_code == 207
        # guesses for anna from two other addresses: the account's limit is 3 in all
        for source in ("127.0.0.2", "127.0.0.3"):
            with client(srv, COORD, "guess", source=source) as attacker:
                for _ in range(2):
                    attacker.get("/")
        with client(srv, COORD, COORD_PW, source="127.0.0.4") as elsewhere:
            resp = elsewhere.request("PROPFIND", "/", headers={"Depth": "0"})
            assert resp.status_code == 429 and "Retry-After" in resp.headers
        with client(srv, COORD, COORD_PW, source="127.0.0.1") as usual:
            assert usual.request("PROPFIND", "/", headers={"Depth": "0"}).status_code == 207
        with client(srv, MEMBER, MEMBER_PW, source="127.0.0.4") as other_account:
            assert other_account.request("PROPFIND", "/", headers={"Depth": "0"}).status_code == 207


def test_parallel_guesses_for_one_account_get_no_more_checks_than_the_limit(server_dir: Path) -> None:
    """40 wrong passwords at once, from 40 addresses: the documented 10 are checked, the others get
    429 without a check (the failure is counted when the check is allowed, not after it)."""
    import concurrent.futures

    limit = Limits().auth_max_failures
    assert limit == 10
    with _own_server(server_dir) as srv:
        def guess(i: int) -> int:
            with client(srv, COORD, f"guess-{i}", source=f"127.0.0.{i + 2}") as attacker:
                return attacker.request("PROPFIND", "/", headers={"Depth": "0"}).status_code

        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            codes = list(pool.map(guess, range(40)))
        assert codes.count(401) == limit and codes.count(429) == 40 - limit, codes
        # the account's owner, from an address it used before the attack, is not locked out;
        # a right password from a new address is not checked either while the account is blocked
        with client(srv, COORD, COORD_PW, source="127.0.0.100") as elsewhere:
            assert elsewhere.request("PROPFIND", "/", headers={"Depth": "0"}).status_code == 429


def test_a_path_above_the_root_gets_a_complete_400(server: ServerHandle) -> None:
    """The whole answer arrives at once (body as long as Content-Length), so the client is not left
    waiting for a body that never comes."""
    import base64

    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    auth = base64.b64encode(f"{MEMBER}:{MEMBER_PW}".encode()).decode()
    for path, keep_alive in (("/Media/../../etc/passwd", False), ("/../x", True), ("/%2e%2e/x", True)):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            connection = "keep-alive" if keep_alive else "close"
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n"
                        f"Connection: {connection}\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = tls.recv(65536)
                assert chunk, data
                data += chunk
            head, _sep, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400 "), head
            length = int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            while len(body) < length:
                chunk = tls.recv(65536)  # a missing body would time out here (5 s)
                assert chunk, (head, body)
                body += chunk
            assert len(body) == length and b"leaves the served folder" in body


def test_a_malformed_authorization_header_is_a_clean_400(server: ServerHandle) -> None:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with httpx.Client(base_url=server.url, verify=ctx) as c:
        assert c.get("/", headers={"Authorization": "Basic !!!notbase64"}).status_code == 400
        assert c.get("/", headers={"Authorization": "Basic bm9jb2xvbg=="}).status_code == 400  # "nocolon"


def test_the_password_file_holds_only_salted_hashes(server_dir: Path) -> None:
    users = server_dir / "users.json"
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    text = users.read_text()
    for password in (COORD_PW, MEMBER_PW):
        assert password not in text
        assert password.encode().hex() not in text
    doc = json.loads(text)["users"]
    assert doc[COORD]["role"] == "coordinator" and doc[MEMBER]["role"] == "member"
    assert doc[COORD]["hash"].startswith("$scrypt$ln=15,r=8,p=3$")
    assert doc[COORD]["hash"].split("$")[3] != doc[MEMBER]["hash"].split("$")[3]  # own salts


def test_account_changes_apply_to_a_running_server(server: ServerHandle, server_dir: Path) -> None:
    store = UserStore(server_dir / "users.json")
    store.add("carl", Role.MEMBER, "carl-password")
    try:
        with client(server, "carl", "carl-password") as c:
            assert c.request("PROPFIND", "/", headers={"Depth": "0"}).status_code == 207
        store.set_password("carl", "carl-new-password")
        with client(server, "carl", "carl-password") as c:  # the remembered check is void
            assert c.request("PROPFIND", "/", headers={"Depth": "0"}).status_code == 401
        store.set_role("carl", Role.COORDINATOR)
        with client(server, "carl", "carl-new-password") as c:
            assert c.request("MKCOL", "/Media/2031-01-01/").status_code == 201
    finally:
        store.remove("carl")
    with client(server, "carl", "carl-new-password") as c:
        assert c.request("PROPFIND", "/", headers={"Depth": "0"}).status_code == 401


# --- limits and the access log ---------------------------------------------------------------------


def test_request_size_limits(server_dir: Path) -> None:
    with _own_server(server_dir, max_upload_bytes=1000, max_body_bytes=200) as srv, \
            client(srv, COORD, COORD_PW) as c:
        assert c.put("/Media/Recurring/small.jpg", content=b"x" * 1000).status_code == 201
        too_big = c.put("/Media/Recurring/big.jpg", content=b"x" * 1001)
        assert too_big.status_code == 413
        assert not (server_dir / "data/Media/Recurring/big.jpg").exists()

        def chunks() -> Iterator[bytes]:
            for _ in range(5):
                yield b"y" * 400

        chunked = c.put("/Media/Recurring/chunked.jpg", content=chunks())
        assert chunked.status_code == 413
        assert not (server_dir / "data/Media/Recurring/chunked.jpg").exists()  # no half file left
        body = b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>' + b" " * 300
        assert c.request("PROPFIND", "/", content=body, headers={"Depth": "0"}).status_code == 413


def test_request_rate_limit_per_address(server_dir: Path) -> None:
    with _own_server(server_dir, requests_per_second=0.5, request_burst=3) as srv, \
            client(srv, MEMBER, MEMBER_PW) as c:
        codes = [c.head("/Media/").status_code for _ in range(4)]
        assert 429 not in codes[:3] and codes[3] == 429
        with client(srv, MEMBER, MEMBER_PW) as again:
            resp = again.get("/")
        assert resp.status_code == 429
        assert int(resp.headers["Retry-After"]) >= 1


def test_the_access_log_names_requests_but_never_passwords(server: ServerHandle, server_dir: Path) -> None:
    with client(server, MEMBER, MEMBER_PW) as c:
        c.request("PROPFIND", "/Media/", headers={"Depth": "1"})
        c.put("/Media/Recurring/nope.jpg", content=b"12345")
    with client(server, MEMBER, "a-wrong-secret") as c:
        c.get("/")
    log = (server_dir / "logs" / "access.log").read_text()
    assert stat.S_IMODE((server_dir / "logs" / "access.log").stat().st_mode) == 0o600
    lines = log.splitlines()
    assert any(f'127.0.0.1 {MEMBER} "PROPFIND /Media/" 207' in line for line in lines)
    put = next(line for line in lines if '"PUT /Media/Recurring/nope.jpg"' in line)
    assert " 403 " in put and " in=0 " in put and put.endswith("s")
    assert any(f'{MEMBER} "GET /" 401' in line for line in lines)
    for secret in (MEMBER_PW, COORD_PW, "a-wrong-secret"):
        assert secret not in log


# --- TLS ------------------------------------------------------------------------------------------


def test_tls_verifies_with_the_ca_from_init_and_fails_without(server: ServerHandle, isolated_env: Path) -> None:
    for name in ("localhost", "127.0.0.1", "kh.example.org"):
        ctx = ssl.create_default_context(cafile=str(server.ca_file))
        with socket.create_connection(("127.0.0.1", server.port)) as raw, \
                ctx.wrap_socket(raw, server_hostname=name) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    member = Member.create(isolated_env, server.url, "/", MEMBER, MEMBER_PW, None, name="noca")
    proc = member.cli("update")
    assert proc.returncode == 4, proc.stderr
    assert "certificate" in proc.stderr.lower()


def test_setup_can_fetch_and_pin_the_ca(server: ServerHandle, server_dir: Path, isolated_env: Path) -> None:
    pem, sha256 = fetch_server_ca_fingerprint(server.url)
    from m3daemon.server.layout import ServerLayout

    assert sha256 == ServerLayout(server_dir).ca_fingerprint()
    assert pem.strip() == server.ca_file.read_bytes().strip()
    pinned = save_pinned_ca(pem, server.url)
    assert pinned.is_relative_to(isolated_env / ".config" / "m3daemon")
    member = Member.create(isolated_env, server.url, "/", MEMBER, MEMBER_PW, pinned, name="pinned")
    assert member.update().ok


# --- binding --------------------------------------------------------------------------------------


def test_the_server_listens_on_loopback_only_by_default(server: ServerHandle, server_dir: Path) -> None:
    assert server.settings.host == "127.0.0.1"
    assert server.address[0] == "127.0.0.1"
    lan = _lan_address()
    if lan is None:
        pytest.skip("this computer has no non-loopback address")
    with pytest.raises(OSError), socket.create_connection((lan, server.port), timeout=2):
        pass


def test_the_server_listens_everywhere_only_when_asked(server_dir: Path) -> None:
    from m3daemon.server import exposure_warning

    with ServerHandle(server_dir, host="0.0.0.0", port=0) as srv:
        assert srv.address[0] == "0.0.0.0"
        assert srv.url.startswith("https://127.0.0.1:")
    assert exposure_warning("0.0.0.0") and "every network interface" in (exposure_warning("0.0.0.0") or "")
    assert exposure_warning("127.0.0.1") is None and exposure_warning("localhost") is None


def _lan_address() -> str | None:
    from m3daemon.server.tls import primary_address

    return primary_address()


# --- what setup and the demo use ---------------------------------------------------------------------


def test_offer_to_pin_asks_and_saves_only_on_yes(server: ServerHandle, server_dir: Path) -> None:
    from m3daemon.errors import TLSError
    from m3daemon.server import offer_to_pin
    from m3daemon.server.layout import ServerLayout

    expected = ServerLayout(server_dir).ca_fingerprint()
    assert expected
    said: list[str] = []
    questions: list[str] = []

    def ask(q: str) -> str:
        questions.append(q)
        return "n"

    assert offer_to_pin(server.url, ask=ask, say=said.append) is None
    assert "[y/N]" in questions[0] and any(expected in line for line in said)
    saved = offer_to_pin(server.url, ask=lambda q: "y", say=said.append)
    assert saved is not None and saved.read_bytes().strip() == server.ca_file.read_bytes().strip()
    silent = offer_to_pin(server.url, expected=expected.lower().replace(":", ""),
                          ask=lambda q: pytest.fail("asked"), say=said.append)
    assert silent == saved
    with pytest.raises(TLSError):
        offer_to_pin(server.url, expected="00" * 32, ask=lambda q: "y", say=said.append)


def test_the_whole_loop_coordinator_uploads_and_hides_member_syncs(tmp_path: Path, isolated_env: Path) -> None:
    from m3daemon.server import local_server

    accounts = {"coordinator": ("coordinator-pw", Role.COORDINATOR), "member": ("member-pw-1", Role.MEMBER)}
    date = iso(3)
    with local_server(tmp_path / "srv", accounts) as srv:
        assert srv.address[0] == "127.0.0.1"
        with client(srv, "coordinator", "coordinator-pw") as c:
            assert c.request("MKCOL", f"/Media/{date}/").status_code == 201
            assert c.put(f"/Media/{date}/01 - Talk.jpg", content=b"talk").status_code == 201
            assert c.put("/Media/Recurring/Year text.jpg", content=b"year").status_code == 201
            assert c.request("MKCOL", f"/Hidden/{date}/").status_code == 201
            assert c.put(f"/Hidden/{date}/Year text.jpg", content=b"").status_code == 201
        member = Member.create(isolated_env, srv.url, srv.folder, "member", "member-pw-1", srv.ca_file, name="loop")
        report = member.update()
        assert report.ok
        assert member.files() == {f"{date}/01 - Talk.jpg": b"talk"}
        with client(srv, "member", "member-pw-1") as c:
            assert c.delete(f"/Media/{date}/01 - Talk.jpg").status_code == 403


def test_the_access_log_rotates(tmp_path: Path) -> None:
    from m3daemon.server.guard import AccessLog

    log = AccessLog(tmp_path / "logs" / "access.log", max_bytes=300, backups=2)
    try:
        for i in range(20):
            log.write(method="GET", path=f"/Media/{i}", status=200, user="bob", address="10.0.0.1", bytes_in=0,
                      bytes_out=i, seconds=0.01)
    finally:
        log.close()
    names = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert names == ["access.log", "access.log.1", "access.log.2"]
    for p in (tmp_path / "logs").iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert p.stat().st_size <= 300
