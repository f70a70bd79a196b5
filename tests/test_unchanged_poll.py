"""The daemon's poll when nothing changed: one request, on servers whose folder tag follows every
change below it (Nextcloud/ownCloud's SabreDAV), found out by watching; the full listing elsewhere.

None of the test servers has that property (checked below on each), so the SabreDAV behaviour is
made by a fault proxy in front of a real Apache: it gives the congregation folder an ETag computed
from everything on the server's disk below it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import pytest
from faulthelpers import cong, file_responses, member_for, proxied_member
from faultproxy import FaultProxy, Rule
from member import Member, iso
from servers import DavServer, ServerPool, bump, make_tree

from m3daemon.engine.freshness import TRUST_AFTER
from m3daemon.engine.sync import ListingCache, SyncReport
from m3daemon.errors import CredentialsError


def tree_tag(root: Path) -> bytes:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        st = p.stat()
        h.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16].encode()


def sabredav_like(root: Path):  # type: ignore[no-untyped-def]
    """A PROPFIND rewrite: the congregation folder's ETag changes whenever anything below does."""

    def rewrite(body: bytes) -> bytes:
        for resp in file_responses(body):
            if re.search(rb"<(\w+:)?href>[^<]*/dav/Cong/?</(\w+:)?href>", resp):
                new = re.sub(rb"<(\w+):getetag[^>]*>.*?</\1:getetag>|<(\w+):getetag/>", b"", resp)
                new = re.sub(rb"(<(\w+):prop>)", rb'\1<D:getetag xmlns:D="DAV:">"' + tree_tag(root) + rb'"</D:getetag>',
                             new, count=1)
                body = body.replace(resp, new, 1)
        return body

    return rewrite


def add_file(server: DavServer, name: str) -> None:
    make_tree(cong(server), {f"Media/{iso(1)}/{name}.jpg": name.encode()})


def poll(m: Member, cache: ListingCache) -> SyncReport:
    report = m.update(cache=cache)
    assert report.ok
    return report


def test_an_unchanged_poll_is_one_request_once_the_folder_tag_proved_itself(
    dav_server_pool: ServerPool, isolated_env: Path
) -> None:
    server = dav_server_pool.fresh("apache")  # walks with Depth 1: a full listing is 5 requests here
    add_file(server, "a")
    with FaultProxy(server.url, server.ca_file) as proxy:
        proxy.add(Rule("PROPFIND", lambda p: p.rstrip("/").endswith("/dav/Cong"), rewrite=sabredav_like(cong(server))))
        m = proxied_member(proxy, server, isolated_env)
        cache = ListingCache()
        poll(m, cache)
        assert poll(m, cache).listing == "walk", "nothing changed yet: the tag has proved nothing"
        for n in range(TRUST_AFTER):
            add_file(server, f"new{n}")
            report = poll(m, cache)
            assert report.listing == "walk" and report.downloaded == 1

        report = poll(m, cache)
        assert (report.listing, report.requests, report.downloaded) == ("unchanged", 1, 0)
        assert [(meth, p) for meth, p, _s in proxy.log][-1] == ("PROPFIND", "/dav/Cong/")

        add_file(server, "later")
        report = poll(m, cache)
        assert report.listing == "walk" and report.downloaded == 1
    assert set(m.files()) == {f"{iso(1)}/{n}.jpg" for n in ["a", "later"] + [f"new{n}" for n in range(TRUST_AFTER)]}


def test_a_folder_tag_that_missed_a_change_is_never_trusted(dav_server: DavServer, isolated_env: Path) -> None:
    # Apache, nginx, WsgiDAV and rclone: a change inside a date folder does not change the
    # congregation folder's tag, so every poll lists.
    add_file(dav_server, "a")
    m = member_for(dav_server, isolated_env)
    cache = ListingCache()
    poll(m, cache)
    for n in range(TRUST_AFTER + 1):
        add_file(dav_server, f"new{n}")
        assert poll(m, cache).downloaded == 1
    report = poll(m, cache)
    assert report.listing in ("walk", "infinity")
    add_file(dav_server, "later")
    assert poll(m, cache).downloaded == 1


def test_the_daemons_polls_keep_one_https_session_and_count_their_own_requests(
    dav_server_pool: ServerPool, isolated_env: Path
) -> None:
    server = dav_server_pool.fresh("apache")
    add_file(server, "a")
    m = member_for(server, isolated_env)
    cache = ListingCache()
    first = poll(m, cache)
    session = cache.session
    assert session is not None
    second = poll(m, cache)
    assert cache.session is session, "the open connections are used again: no TLS handshakes"
    # this poll's own requests (root, Media, the date folder), not the session's total
    assert (first.requests, second.requests) == (5, 3)
    m.password = "another-password"  # the password changed (setup): a new session with it
    with pytest.raises(CredentialsError):
        m.update(cache=cache)
    assert cache.session is not session


@pytest.mark.parametrize("kind", ["apache", "lighttpd"])
def test_new_settings_beside_the_media_never_make_the_folder_tag_trusted(
    dav_server_pool: ServerPool, kind: str, isolated_env: Path
) -> None:
    """Apache's and lighttpd's congregation folder has a tag from its own date: a new
    forcedPrefs.json moves it, a file in a date folder does not. So however often the settings
    change, the next file in a date folder is still found."""
    server = dav_server_pool.fresh(kind)
    add_file(server, "a")
    m = member_for(server, isolated_env)
    cache = ListingCache()
    poll(m, cache)
    later = time.time()
    for n in range(TRUST_AFTER + 1):
        bump(cong(server) / "forcedPrefs.json", json.dumps({"app": {"congregationName": f"North {n}"}}).encode())
        later += 10  # each change at its own second, as a coordinator's are
        os.utime(cong(server), (later, later))
        assert poll(m, cache).listing == "walk"
    add_file(server, "later")
    assert poll(m, cache).downloaded == 1
