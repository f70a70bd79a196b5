"""What m3daemon's own web servers share: the front door (:mod:`.front`) that takes every
connection in an event loop, with deadlines and caps, before cheroot. The congregation's server
uses it with TLS; the daemon's loopback control port (and the dashboard on it) without."""
