"""``m3daemon server``: the congregation's own WebDAV server (WsgiDAV on cheroot, behind the TLS front of :mod:`m3daemon.web.front`).

It serves one congregation folder with real accounts: coordinators read and write, members only
read. Modules:

==============  ==================================================================================
``layout``      the server folder (``DIR``) and ``server init``
``settings``    ``DIR/server.toml``: address, port, URL path, TLS files, limits
``tls``         the CA and server certificate (``cryptography``); fetching and pinning a server's
                CA on a member's computer
``users``       accounts: roles, scrypt hashes, the 0600 ``users.json``; checking passwords
``guard``       rate limit, brute-force throttle, size limits, access log, roles (WSGI middleware
                and a WsgiDAV domain controller)
``app``         the WsgiDAV application on cheroot behind the front: :class:`ServerHandle`; the service spec
==============  ==================================================================================

Public API (for ``setup``, ``demo`` and ``service``)::

    init_server(DIR, ["kh.example.org"]) -> InitResult          # .fingerprint, .names
    UserStore(layout.users_file).add("anna", Role.COORDINATOR, password)
    with ServerHandle(DIR, port=0) as srv:                         # .url, .folder, .ca_file
        ...
    pem, sha256 = fetch_server_ca_fingerprint("https://192.168.1.10:8443")
    save_pinned_ca(pem, url) -> Path                               # for [connection] ca_file
    offer_to_pin(url) -> Path | None                               # fetch, show, ask [y/N], save
    with local_server(DIR, {"anna": (pw, Role.COORDINATOR)}) as srv:   # the demo's server
        ...
    server_spec(DIR) -> ServiceSpec                                # service install --server
"""

from __future__ import annotations

from m3daemon.server.app import (
    ServerHandle,
    ServerStartError,
    exposure_warning,
    local_server,
    server_running,
    server_spec,
)
from m3daemon.server.layout import InitResult, ServerLayout, init_server, open_layout, reissue_server_cert
from m3daemon.server.settings import DEFAULT_PORT, Limits, ServerSettings
from m3daemon.server.tls import (
    PresentedCA,
    fetch_server_ca_fingerprint,
    fingerprint,
    offer_to_pin,
    pinned_ca_path,
    save_pinned_ca,
)
from m3daemon.server.users import Account, Role, UserStore

__all__ = [
    "DEFAULT_PORT", "Account", "InitResult", "Limits", "PresentedCA", "Role", "ServerHandle", "ServerLayout",
    "ServerSettings", "ServerStartError", "UserStore", "exposure_warning", "fetch_server_ca_fingerprint",
    "fingerprint", "init_server", "local_server", "offer_to_pin", "open_layout", "pinned_ca_path",
    "reissue_server_cert", "save_pinned_ca", "server_running", "server_spec",
]
