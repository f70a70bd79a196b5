"""The dashboard: one local web page served by the running daemon (``m3daemon dashboard``).

Status and progress, upcoming meetings, the coordinator's tools, the connection setup with presets
and a folder browser, congregation-wide settings and the log. See :mod:`.app` for the framework and
:mod:`.security` for who may use it.
"""

from __future__ import annotations

from .app import Dashboard, DashboardHost

__all__ = ["Dashboard", "DashboardHost"]
