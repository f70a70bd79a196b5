"""Upcoming meetings: what this computer has and will show on each date, with image previews."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, abort, render_template
from flask.typing import ResponseReturnValue

from m3daemon.coordinator.media import human_size
from m3daemon.errors import M3Error
from m3daemon.i18n import _, weekday_name

from .app import N_
from .local import effective_of, kind_of, local_dates, local_file, today_of
from .thumbs import Preview, PreviewState, Thumbnails

if TYPE_CHECKING:
    from m3daemon.coordinator.overview import DateView, Entry

    from .app import Dashboard

ORIGINS = {
    "dated": N_("for this date"),
    "recurring": N_("recurring"),
    "marker": N_("hidden by the coordinator"),
}


def entry_view(cid: int, day: date, e: Entry) -> dict[str, Any]:
    kind = kind_of(e.name)
    if e.hidden:
        state, state_text = "hidden", _("hidden: not shown")
    elif e.here:
        state, state_text = "complete", _("on this computer")
    else:
        state, state_text = "missing", _("not downloaded yet")
    return {
        "name": e.name,
        "origin": e.origin,
        "origin_text": _(ORIGINS.get(e.origin, e.origin)),
        "hidden": e.hidden,
        "section": e.section,
        "size": human_size(e.size) if e.size is not None else "",
        "kind": kind,
        "state": state,
        "state_text": state_text,
        "thumb": f"/c/{cid}/thumb/{day.isoformat()}/{e.name}" if kind == "image" and e.here else None,
        "m3": e.m3,
        "m3_text": {"converted": _("M³ shows it as images"), "never": _("M³ 25+ never shows this file")}.get(e.m3),
    }


def date_view(cid: int, dv: DateView) -> dict[str, Any]:
    return {
        "iso": dv.date.isoformat(),
        "title": f"{weekday_name(dv.date)} {dv.date.isoformat()}",
        "meeting": dv.meeting,
        "entries": [entry_view(cid, dv.date, e) for e in dv.entries],
    }


def register(app: Flask, dash: Dashboard) -> None:
    thumbnails = Thumbnails()

    @app.get("/c/<int:cid>/upcoming")
    def upcoming_page(cid: int) -> ResponseReturnValue:
        from m3daemon.coordinator.overview import overview

        cfg = dash.config(cid)
        today = today_of(cfg)
        end = today + timedelta(days=cfg.local.days_ahead)
        dates: list[dict[str, Any]] = []
        problem: M3Error | None = None
        offline: list[tuple[str, list[dict[str, Any]]]] = []
        warnings: list[str] = []
        days_known = True
        try:
            with dash.coordinator(cfg) as coord:
                view = overview(coord, today, end, extend=True)
            dates = [date_view(cid, dv) for dv in view.dates]
            warnings = list(dict.fromkeys(view.warnings))
            days_known = view.meeting_days_known
        except M3Error as err:
            problem = err
            effective = effective_of(cfg)
            for d, names in local_dates(cfg, effective, today, end):
                offline.append((f"{weekday_name(d)} {d.isoformat()}", [
                    {"name": n, "kind": kind_of(n),
                     "thumb": f"/c/{cid}/thumb/{d.isoformat()}/{n}" if kind_of(n) == "image" else None}
                    for n in names]))
        return render_template("upcoming.html", cfg=cfg, dates=dates, problem=problem, offline=offline,
                               warnings=warnings, days_known=days_known)

    @app.get("/c/<int:cid>/thumb/<day>/<name>")
    def upcoming_thumb(cid: int, day: str, name: str) -> ResponseReturnValue:
        cfg = dash.config(cid)
        try:
            d = date.fromisoformat(day)
        except ValueError:
            abort(404)
        if kind_of(name) != "image":
            abort(404)
        path = local_file(cfg, effective_of(cfg), d, name)
        found = thumbnails.preview(path) if path is not None else Preview(PreviewState.NONE)
        if found.state is PreviewState.NONE:
            abort(404)
        if found.state is PreviewState.BUSY:
            resp = Response(_("Busy making other previews; try again."), 503, content_type="text/plain; charset=utf-8")
            resp.headers["Retry-After"] = "5"
        elif found.state is PreviewState.TOO_LARGE:
            resp = Response(placeholder_svg(found), 200, content_type="image/svg+xml")
        else:
            resp = Response(found.data, 200, content_type="image/jpeg")
        resp.headers["X-Preview"] = found.state.value
        resp.headers["Cache-Control"] = "private, max-age=60"
        return resp


def placeholder_svg(found: Preview) -> str:
    """The picture shown instead of an image too large to preview (the file itself is fine)."""
    from html import escape

    if found.width:
        text = _("Too large to preview ({width}×{height} pixels)").format(width=found.width, height=found.height)
    elif found.pixels:
        text = _("Too large to preview ({n} megapixels)").format(n=round(found.pixels / 1e6))
    else:
        text = _("Too large to preview")
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240" viewBox="0 0 320 240">'
            '<rect width="320" height="240" fill="#eee"/>'
            '<text x="160" y="125" font-family="sans-serif" font-size="14" text-anchor="middle" fill="#444">'
            f"{escape(text)}</text></svg>")
