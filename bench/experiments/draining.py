"""The draining transport, measured here first, now lives in the package:
:mod:`m3daemon.remote.transport`. The experiments import it from here for their variants
(plain httpx vs httpx on the draining transport)."""

from m3daemon.remote.transport import DRAIN_BYTES, DrainingBackend, DrainingStream, DrainingTransport

__all__ = ["DRAIN_BYTES", "DrainingBackend", "DrainingStream", "DrainingTransport"]
