"""Logs: the daemon's recent log, filtered by level and text, and downloadable for a bug report.

The log never holds a password (see :mod:`m3daemon.settings.credentials`), so it can be sent as it is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, Response, render_template, request
from flask.typing import ResponseReturnValue

from m3daemon.daemon.logs import BACKUPS, log_file, tail
from m3daemon.engine.clock import computer_now

if TYPE_CHECKING:
    from .app import Dashboard

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LINE = re.compile(r"^\d{4}-\d{2}-\d{2} [\d:,]+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
SHOWN = 500
READ = 5000


def parse(lines: list[str]) -> list[tuple[str, str]]:
    """(level, text) per entry; continuation lines (tracebacks) belong to the entry above."""
    out: list[tuple[str, str]] = []
    for line in lines:
        m = LINE.match(line)
        if m is None and out:
            level, text = out[-1]
            out[-1] = (level, text + line.rstrip("\n") + "\n")
            continue
        out.append((m.group(1) if m else "INFO", line.rstrip("\n") + "\n"))
    return out


def register(app: Flask, dash: Dashboard) -> None:
    def path() -> Path:
        return dash.log_path or log_file()

    @app.get("/c/<int:cid>/logs")
    def logs_page(cid: int) -> ResponseReturnValue:
        cfg = dash.config(cid)
        level = request.args.get("level", "INFO")
        level = level if level in LEVELS else "INFO"
        text = request.args.get("q", "").strip()
        floor = LEVELS.index(level)
        entries = [(lv, t) for lv, t in parse(tail(READ, path()))
                   if LEVELS.index(lv) >= floor and (not text or text.lower() in t.lower())]
        return render_template("logs.html", cfg=cfg, entries=entries[-SHOWN:], total=len(entries), level=level,
                               q=text, levels=LEVELS, log_path=str(path()))

    @app.get("/c/<int:cid>/logs/download")
    def logs_download(cid: int) -> ResponseReturnValue:
        dash.config(cid)
        base = path()
        parts: list[bytes] = []
        for i in range(BACKUPS, 0, -1):  # oldest first
            try:
                parts.append(Path(f"{base}.{i}").read_bytes())
            except OSError:
                pass
        try:
            parts.append(base.read_bytes())
        except OSError:
            pass
        name = f"m3daemon-log-{computer_now().strftime('%Y%m%d-%H%M')}.txt"
        resp = Response(b"".join(parts), 200, content_type="text/plain; charset=utf-8")
        resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return resp
