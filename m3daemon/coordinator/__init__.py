"""The coordinator's tools: write the congregation folder the way M³ 22–24 laid it out.

Members only ever read the shared folder; the coordinator (or whoever holds a writing account)
changes it. Everything here keeps the layout of SPEC.md "The shared folder on the server" and adds
only what M³ clients tolerate: hidden temporary names for uploads, conditional headers on
``forcedPrefs.json``, and idempotent hide/unhide instead of M³'s toggle.

Modules:

* :mod:`.writes` — MKCOL / streamed PUT-then-MOVE / DELETE primitives over a ``DavSession``, with the
  error mapping coordinator commands need (read-only accounts, ``423 Locked``).
* :mod:`.context` — one coordinator session: configuration, connection, the congregation's date
  format and name.
* :mod:`.forced` — the read-modify-write of ``forcedPrefs.json`` with ``If-Match``.
* :mod:`.media` — add, remove, hide, unhide, prune, recurring media and the background image.
* :mod:`.overview` — what each date will get (``media ls``).
"""

from __future__ import annotations
