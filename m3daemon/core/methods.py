"""Which HTTP/WebDAV methods only read, and which may be repeated: one list for client and server.

The client (:mod:`m3daemon.remote.retry`) repeats a request only when repeating it cannot change
the outcome; the server (:mod:`m3daemon.server.guard`) lets a member's account use only the methods
that read. Both ask this module, so the two can never disagree about what "reading" is.
"""

from __future__ import annotations

#: Methods that change nothing on the server (RFC 9110 §9.2.1 "safe", plus WebDAV's PROPFIND).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND"})

#: Methods whose effect is the same when sent twice (RFC 9110 §9.2.2): a lost answer may be asked for
#: again. MOVE, COPY, MKCOL, LOCK, PROPPATCH and POST are not: the second one may find the first's work.
IDEMPOTENT_METHODS = READ_METHODS | frozenset({"PUT", "DELETE"})
