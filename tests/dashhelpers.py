"""A running daemon's dashboard as a person's browser reaches it, for the tests that drive one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx


def csrf_of(html: str) -> str:
    """The page's CSRF token (every form posts it)."""
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


@contextmanager
def dashboard_of(daemon: Any) -> Iterator[tuple[httpx.Client, str, str]]:
    """Logged in with the daemon's one-time key: the client, the dashboard's address (the
    ``Origin`` a form post sends) and the text of the page the login leads to."""
    login = daemon.dashboard.login_url()
    assert login is not None
    base = login.split("/login", 1)[0]
    with httpx.Client(base_url=base, trust_env=False) as web:
        page = web.get(login.removeprefix(base), follow_redirects=True)
        assert page.status_code == 200, page.text[:500]
        yield web, base, page.text
