"""A member's sync when things go wrong: it never loses a file, never leaves a half-written one
under a real name, and says in plain words what is wrong."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from faultproxy import FaultProxy, Rule
from member import Member, iso
from servers import DavServer, ServerPool, make_tree

from m3daemon.core.names import name_problem
from m3daemon.engine.results import Progress
from m3daemon.remote.http import RetryPolicy

FOLDER = "/dav/Cong"
BIG = 24 * 1024 * 1024
QUICK = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)


def member_for(server: DavServer, home: Path, **kw: object) -> Member:
    (server.root / "Cong").mkdir(parents=True, exist_ok=True)
    return Member.create(home, server.url, FOLDER, server.username, server.password, server.ca_file, **kw)  # type: ignore[arg-type]


def proxied_member(proxy: FaultProxy, server: DavServer, home: Path) -> Member:
    (server.root / "Cong").mkdir(parents=True, exist_ok=True)
    return Member.create(home, proxy.url, FOLDER, server.username, server.password, None,
                         insecure_loopback=True, name="proxied")


class StopServerAt(Progress):
    """Stops the server once ``limit`` bytes of the download have arrived."""

    def __init__(self, server: DavServer, limit: int) -> None:
        super().__init__()
        self.server, self.limit, self.stopped = server, limit, False

    def add_bytes(self, n: int) -> None:
        super().add_bytes(n)
        if not self.stopped and self.done_bytes >= self.limit:
            self.stopped = True
            # From another thread: the server may wait for this very download to drain.
            self.stopper = threading.Thread(target=self.server.stop)
            self.stopper.start()


def test_plain_http_is_refused_with_exit_2(isolated_env: Path) -> None:
    m = Member.create(isolated_env, "http://media.example.org", FOLDER, "u", "p", None)
    proc = m.cli("update")
    assert proc.returncode == 2
    assert "https://" in proc.stderr


def test_plain_http_to_loopback_needs_the_test_switch(isolated_env: Path) -> None:
    m = Member.create(isolated_env, "http://127.0.0.1:9", FOLDER, "u", "p", None)
    assert m.cli("update").returncode == 2


# An in-process server cannot be killed; the cut connection is tested through the proxy below.
@pytest.mark.parametrize("kind", ["apache", "nginx", "rclone", "lighttpd"])
def test_a_server_killed_mid_download_leaves_no_partial_file_and_the_next_run_completes_it(
    dav_server_pool: ServerPool, kind: str, isolated_env: Path
) -> None:
    """It resumes where the server's GET names the version (an ETag); lighttpd's names none, so
    nothing proves the rest is of the same file: it comes whole again."""
    dav_server = dav_server_pool.fresh(kind)
    payload = os.urandom(BIG)
    # An old file: Apache serves weak ETags for files younger than a second, and If-Range
    # needs a strong one.
    make_tree(dav_server.root / "Cong", {f"Media/{iso(1)}/talk.mp4": payload}, mtime=time.time() - 60)
    m = member_for(dav_server, isolated_env)
    stopper = StopServerAt(dav_server, BIG // 3)
    # At 12 MiB/s the server stops well before the end (libcurl on loopback is faster than a stop).
    report = m.update(progress=stopper, retry=QUICK, bandwidth_limit_bps=12 * 1024 * 1024)
    stopper.stopper.join()
    assert report.failed == 1 and not report.ok
    assert m.files() == {}, "nothing may appear under a real name"
    [part] = [n for n in m.staged() if n.endswith(".part")]
    kept = (m.media / ".m3daemon" / "staging" / part).stat().st_size
    assert 0 < kept < BIG
    assert report.errors[0]["path"] == f"{iso(1)}/talk.mp4"
    assert any(w in report.errors[0]["message"] for w in ("interrupted", "refused the connection"))

    dav_server.restart()
    dav_server.clear_log() if dav_server.has_request_log else None
    report = m.update()
    assert report.ok and report.downloaded == 1
    assert m.files() == {f"{iso(1)}/talk.mp4": payload}
    if dav_server.get_etags:
        assert report.bytes < BIG, "the second run fetched only the rest of the file"
    else:
        assert report.bytes >= BIG, "no validator: the whole file again, never a splice"
    if dav_server.has_request_log:
        status = 206 if dav_server.get_etags else 200
        assert ("GET", f"/dav/Cong/Media/{iso(1)}/talk.mp4", status) in dav_server.request_log()
    assert [n for n in m.staged() if n.endswith(".part")] == []


def test_a_download_cut_short_is_rejected_and_resumed(wsgidav_server: DavServer, isolated_env: Path) -> None:
    payload = os.urandom(BIG)
    make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/talk.mp4": payload})
    with FaultProxy(wsgidav_server.url, wsgidav_server.ca_file) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        # Each attempt gets only 1 MiB more; the sync resumes twice within the run, then gives up.
        cut = proxy.add(Rule("GET", lambda p: p.endswith("talk.mp4"), truncate_after=1 << 20, times=3))
        report = m.update(retry=QUICK)
        assert report.failed == 1 and m.files() == {}
        assert cut.hits == 3
        report = m.update(retry=QUICK)
        assert report.bytes < BIG - (3 << 20) + 100_000
    assert report.ok and m.files() == {f"{iso(1)}/talk.mp4": payload}
    assert ("GET", f"/dav/Cong/Media/{iso(1)}/talk.mp4", 206) in proxy.log


def test_a_listing_that_fails_mid_walk_deletes_nothing(dav_server_pool: ServerPool, isolated_env: Path) -> None:
    server = dav_server_pool.fresh("apache")
    make_tree(server.root / "Cong", {f"Media/{iso(1)}/a.jpg": b"a", f"Media/{iso(2)}/b.jpg": b"b"})
    with FaultProxy(server.url, server.ca_file) as proxy:
        m = proxied_member(proxy, server, isolated_env)
        assert m.update().downloaded == 2
        proxy.add(Rule("PROPFIND", lambda p: p.endswith(f"/Media/{iso(2)}/"), status=500))
        code, out = m.update_json()
    assert code == 1
    [error] = out["errors"]
    assert "500" in error["message"] and error["kind"] == "ServerError" and out["downloaded"] == 0
    assert m.files() == {f"{iso(1)}/a.jpg": b"a", f"{iso(2)}/b.jpg": b"b"}


def test_a_listing_cut_short_deletes_nothing(wsgidav_server: DavServer, isolated_env: Path) -> None:
    make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/{n}.jpg": n.encode() for n in "abc"})
    with FaultProxy(wsgidav_server.url, wsgidav_server.ca_file) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        assert m.update().downloaded == 3
        proxy.add(Rule("PROPFIND", lambda p: True, truncate_after=300))
        proc = m.cli("update")
    assert proc.returncode == 1
    assert "listing" in proc.stderr and "Nothing was changed" in proc.stderr
    assert len(m.files()) == 3


def test_a_listing_that_suddenly_lacks_most_files_is_held_by_the_guard(
    wsgidav_server: DavServer, isolated_env: Path
) -> None:
    make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/{n}.jpg": n.encode() for n in "abcdef"})
    m = member_for(wsgidav_server, isolated_env)
    m.update()
    for n in "bcdef":
        (wsgidav_server.root / "Cong" / "Media" / iso(1) / f"{n}.jpg").unlink()
    code, out = m.update_json()
    assert code == 1
    assert len(out["held_deletions"]) == 5
    assert len(m.files()) == 6
    code, out = m.update_json("--allow-deletions")
    assert code == 0 and out["removed"] == 5
    assert list(m.files()) == [f"{iso(1)}/a.jpg"]


HOSTILE_ON_DISK = [
    "back\\slash.jpg", "ctrl\x01char.jpg", "CON.jpg", "nul", ".DS_Store", "._talk.jpg",
    "trailing-dot.", "x" * 201 + ".jpg", "question?.jpg",
]


def test_hostile_names_on_the_server_are_skipped_and_the_rest_syncs(
    dav_server: DavServer, isolated_env: Path
) -> None:
    files = {f"Media/{iso(1)}/{n}": b"evil" for n in HOSTILE_ON_DISK}
    files[f"Media/{iso(1)}/good.jpg"] = b"good"
    files[f"Hidden/{iso(1)}/..\\..\\etc"] = b""
    make_tree(dav_server.root / "Cong", files)
    m = member_for(dav_server, isolated_env)
    report = m.update()
    assert report.ok
    local = m.files()
    assert local[f"{iso(1)}/good.jpg"] == b"good"
    # rclone serves control characters as visible symbols (\x01 as U+2401): then the name is safe.
    assert all(name_problem(p.split("/")[-1]) is None for p in local)
    assert not set(local) & {f"{iso(1)}/{n}" for n in HOSTILE_ON_DISK}
    assert len(report.warnings) >= len(HOSTILE_ON_DISK) - 1


def _inject(body: bytes, hrefs: list[str]) -> bytes:
    extra = "".join(
        f"<d:response><d:href>{h}</d:href><d:propstat><d:prop><d:resourcetype/>"
        f"<d:getcontentlength>4</d:getcontentlength><d:getetag>\"e\"</d:getetag></d:prop>"
        f"<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
        for h in hrefs
    ).encode()
    head, sep, tail = body.rpartition(b"</")
    if b"xmlns:d=" not in body:
        extra = extra.replace(b"<d:", b'<d:').replace(b"<d:response>", b'<d:response xmlns:d="DAV:">')
    return head + extra + sep + tail


@pytest.mark.parametrize("href", [
    f"/dav/Cong/Media/{iso(1)}/..%2F..%2F..%2Fescape.jpg",
    f"/dav/Cong/Media/{iso(1)}/%2Fetc%2Fpasswd",
    f"/dav/Cong/Media/{iso(1)}/a%00b.jpg",
    f"/dav/Cong/Media/{iso(1)}/..",
    "/dav/Cong/../../etc/passwd",
    f"/dav/Cong/Media/{iso(1)}/%5C..%5Cwin.jpg",
    f"https://evil.example/dav/Cong/Media/{iso(1)}/other-host.jpg",
    f"/elsewhere/Media/{iso(1)}/outside.jpg",
])
def test_hostile_hrefs_in_a_listing_never_become_paths(
    wsgidav_server: DavServer, isolated_env: Path, href: str
) -> None:
    make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/good.jpg": b"good"})
    with FaultProxy(wsgidav_server.url, wsgidav_server.ca_file) as proxy:
        proxy.add(Rule("PROPFIND", lambda p: True, rewrite=lambda b: _inject(b, [href])))
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        report = m.update()
    assert m.files() == {f"{iso(1)}/good.jpg": b"good"}
    assert report.failed == 0
    escaped = [p for p in isolated_env.rglob("*") if p.name in ("escape.jpg", "passwd", "win.jpg")]
    assert escaped == []


def test_an_xml_entity_bomb_is_refused_not_expanded(wsgidav_server: DavServer, isolated_env: Path) -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(f'<!ENTITY a{i} "{"&a;" * 10 if i == 0 else f"&a{i-1};" * 10}">'.encode() for i in range(9))
            + b']><d:multistatus xmlns:d="DAV:"><d:response><d:href>&a8;</d:href></d:response></d:multistatus>')
    make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/good.jpg": b"good"})
    with FaultProxy(wsgidav_server.url, wsgidav_server.ca_file) as proxy:
        m = proxied_member(proxy, wsgidav_server, isolated_env)
        m.update()
        proxy.add(Rule("PROPFIND", lambda p: True, status=207, body=bomb,
                       headers={"Content-Type": "application/xml"}))
        proc = m.cli("update")
    assert proc.returncode == 1
    assert "document type declaration" in proc.stderr
    assert m.files() == {f"{iso(1)}/good.jpg": b"good"}


@pytest.mark.skipif(getattr(os, "geteuid", lambda: -1)() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_a_full_disk_stops_the_sync_cleanly(wsgidav_server: DavServer, isolated_env: Path) -> None:
    small = isolated_env / "small-disk"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)], check=True)
    try:
        make_tree(wsgidav_server.root / "Cong", {f"Media/{iso(1)}/big.mp4": os.urandom(12 * 1024 * 1024)})
        (wsgidav_server.root / "Cong").mkdir(exist_ok=True)
        m = Member.create(isolated_env, wsgidav_server.url, FOLDER, wsgidav_server.username,
                          wsgidav_server.password, wsgidav_server.ca_file)
        m.media = small / "media"
        text = m.config_path.read_text().replace(str(isolated_env / "member-media"), str(m.media))
        m.config_path.write_text(text)
        proc = m.cli("update")
        assert proc.returncode == 1
        assert "disk" in proc.stderr and "Free some space" in proc.stderr
        assert m.files() == {}
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
