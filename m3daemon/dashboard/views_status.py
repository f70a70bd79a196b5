"""Status: state and live progress, last and next sync, next meetings, last errors; update, pause."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import Flask, render_template
from flask.typing import ResponseReturnValue

from m3daemon.coordinator.media import human_size
from m3daemon.engine.status import CongregationStatus, SyncState
from m3daemon.engine.wording import (
    moved_sentence,
    on_screen_remedy,
    progress_text,
    remedy_action,
    short_time,
    state_label,
    waiting_text,
)
from m3daemon.i18n import _, day_text, time_text

from .app import N_, reply
from .local import effective_of, next_meetings, record_meta

if TYPE_CHECKING:
    from .app import Dashboard

MEETING_KINDS = {"midweek": N_("Midweek meeting"), "weekend": N_("Weekend meeting")}


def remedy_link(kind: str, cid: int) -> dict[str, str] | None:
    """The button that does what an error's remedy says (never "run … in a terminal")."""
    action = remedy_action(kind)
    if action is None:
        return None
    if action == "allow-deletions":
        return {"href": f"/c/{cid}/status#kept", "label": _("Review the files kept…")}
    label = _("Fix password…") if action == "fix-password" else _("Open the Connection page…")
    return {"href": f"/c/{cid}/connection", "label": label}


def meeting_when(start: datetime) -> str:
    """"Thursday, December 3, 2026 at 19:00": a weekday by its name and a time as a time."""
    return _("{day} at {time}").format(day=day_text(start), time=time_text(start))


def live_view(st: CongregationStatus, cid: int = 0) -> dict[str, Any]:
    """The status with its texts already written, for the page and for the script that polls."""
    syncing = st.state is SyncState.SYNCING
    p = st.progress
    bytes_text = ""
    if syncing and p.total_bytes:
        bytes_text = _("{done} of {total}").format(done=human_size(p.done_bytes), total=human_size(p.total_bytes))
    err = st.last_error
    return {
        "state": st.state.value,
        "state_label": state_label(st.state),
        "syncing": syncing,
        "paused": st.paused,
        "percent": p.percent if syncing else None,
        "progress_text": progress_text(p) if syncing else "",
        "bytes_text": bytes_text,
        "current": p.current if syncing else "",
        "done_bytes": p.done_bytes,
        "total_bytes": p.total_bytes,
        "done_files": p.done_files,
        "total_files": p.total_files,
        "last_sync": short_time(st.last_sync) or _("not yet"),
        "last_attempt": short_time(st.last_attempt) or _("not yet"),
        "next_sync": short_time(st.next_sync) or _("not planned"),
        "error": {"message": err.message, "remedy": on_screen_remedy(err.kind, err.remedy),
                  "action": remedy_link(err.kind, cid)} if err else None,
        # files whose new version waits because another program (M³ showing it) holds the old one
        "waiting": list(st.waiting),
        "waiting_text": waiting_text(st.waiting),
    }


def result_summary(result: dict[str, Any] | None) -> str:
    if not result:
        return ""
    text = _("{downloaded} downloaded, {copied} copied, {removed} removed, {unchanged} unchanged, "
             "{hidden} hidden, {failed} failed").format(**{k: result.get(k, 0) for k in (
                 "downloaded", "copied", "removed", "unchanged", "hidden", "failed")})
    if not result.get("moved"):
        return text
    # The counts, then a sentence about them: the punctuation between is the language's own.
    return _("{counts}. {moved}").format(counts=text, moved=moved_sentence(result["moved"]))


def register(app: Flask, dash: Dashboard) -> None:
    register_history(app, dash)

    @app.get("/c/<int:cid>/status")
    def status_page(cid: int) -> ResponseReturnValue:
        cfg = dash.config(cid)
        st = dash.status(cid)
        meta = record_meta(cfg)
        meetings = [(meeting_when(m.start), _(MEETING_KINDS.get(m.kind, m.kind)))
                    for m in next_meetings(cfg, effective_of(cfg, meta))]
        result = next((r for r in (st.last_result, meta.get("last_result")) if isinstance(r, dict)), {})
        errors = [e for e in result.get("errors", []) if isinstance(e, dict)]
        problems = [(e.get("message", ""), on_screen_remedy(str(e.get("kind", "")), str(e.get("remedy", ""))),
                     remedy_link(str(e.get("kind", "")), cid)) for e in errors[:5]]
        kept = [p for p in result.get("held_deletions", []) if isinstance(p, str)]
        held = [(h["path"], h["change"]) for h in st.held_for_meeting]
        until = short_time(st.held_for_meeting[0]["until"]) if st.held_for_meeting else None
        return render_template(
            "status.html", cfg=cfg, st=st, live=live_view(st, cid), meetings=meetings,
            readiness=st.readiness, held=held, held_until=until,
            summary=result_summary(result), problems=problems, kept=kept,
            warnings=list(dict.fromkeys((result or {}).get("warnings", [])))[:5],
        )

    @app.get("/c/<int:cid>/status.json")
    def status_json(cid: int) -> ResponseReturnValue:
        return live_view(dash.status(cid), cid)

    @app.post("/c/<int:cid>/update")
    def status_update(cid: int) -> ResponseReturnValue:
        cfg = dash.config(cid)
        dash.host.update_now(str(cfg.path))
        return reply(True, _("Updating the media folders of {name}.").format(name=cfg.name),
                     to=f"/c/{cid}/status", status=202)

    def update_confirmed(cid: int, said: str, **confirmed: bool) -> ResponseReturnValue:
        """"Update now" with what the person confirmed on the page (it asked first)."""
        cfg = dash.config(cid)
        dash.host.update_now(str(cfg.path), **confirmed)
        return reply(True, said.format(name=cfg.name), to=f"/c/{cid}/status", status=202)

    @app.post("/c/<int:cid>/apply-held")
    def status_apply_held(cid: int) -> ResponseReturnValue:
        """Also apply what a running meeting holds back."""
        return update_confirmed(cid, _("Applying the held changes of {name} now."), during_meeting=True)

    @app.post("/c/<int:cid>/allow-deletions")
    def status_allow_deletions(cid: int) -> ResponseReturnValue:
        """Also remove the files the mass-deletion guard kept."""
        return update_confirmed(cid, _("Removing the files the coordinator removed from {name}."),
                                allow_deletions=True)

    @app.post("/c/<int:cid>/pause")
    def status_pause(cid: int) -> ResponseReturnValue:
        cfg = dash.config(cid)
        dash.host.pause(str(cfg.path))
        return reply(True, _("Paused: no scheduled updates until you resume."), to=f"/c/{cid}/status")

    @app.post("/c/<int:cid>/resume")
    def status_resume(cid: int) -> ResponseReturnValue:
        cfg = dash.config(cid)
        dash.host.resume(str(cfg.path))
        return reply(True, _("Resumed."), to=f"/c/{cid}/status")


def history_view(entry: dict[str, Any]) -> dict[str, Any]:
    """One sync of the history, in words."""
    from m3daemon.engine.history import entry_lines
    from m3daemon.engine.wording import long_time

    days = []
    for d in entry.get("dates", []):
        try:
            days.append(day_text(datetime.fromisoformat(d), "medium"))
        except ValueError:
            continue
    return {"when": long_time(str(entry.get("at", ""))) or "", "dates": ", ".join(days), "lines": entry_lines(entry),
            "trashed": bool(entry.get("trashed"))}


def register_history(app: Flask, dash: Dashboard) -> None:
    @app.get("/c/<int:cid>/history")
    def history_page(cid: int) -> ResponseReturnValue:
        from m3daemon.engine.context import record_path
        from m3daemon.local.record import Record

        cfg = dash.config(cid)
        entries: list[dict[str, Any]] = []
        path = record_path(cfg)
        if path.exists():
            rec = Record(path, readonly=True)
            try:
                entries = rec.history()
            finally:
                rec.close()
        return render_template("history.html", cfg=cfg, entries=[history_view(e) for e in entries])
