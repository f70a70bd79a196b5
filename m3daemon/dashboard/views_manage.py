"""Manage media (coordinator): upload for a date or for every meeting, remove, hide and unhide.

Uploads come as ``multipart/form-data`` (a plain form, or the script's XHR that shows the progress
of the browser-to-daemon upload). Werkzeug streams each file part into a private temporary file
(:class:`UploadRequest`); the coordinator tools then upload it to the server under a hidden name and
MOVE it into place, exactly like ``m3daemon media add``. The temporary files are removed at the end
of the request, whatever happened.

Every name, prefix and date is checked before the first request to the server, so a typo never
leaves half a change; the answer lists what was done and what was not.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from flask import Flask, Request, g, render_template, request
from flask.typing import ResponseReturnValue

from m3daemon.coordinator import media as ops
from m3daemon.core.model import BACKGROUND_PREFIX
from m3daemon.errors import M3Error, UsageError
from m3daemon.i18n import _, ngettext
from m3daemon.settings.config import Config

from .access import UNKNOWN, Access
from .app import error_reply, note, reply, unexpected_reply
from .local import today_of
from .views_upcoming import date_view

if TYPE_CHECKING:
    from .app import Dashboard


class UploadRequest(Request):
    """File parts go to named temporary files (mode 0600), removed at the end of the request."""

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None) -> IO[bytes]:
        # Closed by Werkzeug at the end of the request, removed by _cleanup_uploads.
        f = tempfile.NamedTemporaryFile("wb+", prefix="m3daemon-upload-", suffix=".part", delete=False)  # noqa: SIM115
        g.setdefault("upload_temps", []).append(f.name)
        return f


def _cleanup_uploads(_exc: BaseException | None = None) -> None:
    files = request.__dict__.get("files")  # only if the form was parsed: never parse it here
    for f in files.values() if files is not None else ():
        with contextlib.suppress(Exception):
            f.close()
    for name in g.pop("upload_temps", []):
        with contextlib.suppress(OSError):
            os.unlink(name)


def batch_reply(dash: Dashboard, cfg: Config, result: ops.BatchResult, *, to: str) -> ResponseReturnValue:
    """One message for a batch: what was done, and the first reason for what was not."""
    first = result.fatal or next((i.error for i in result.failed if i.error is not None), None)
    dash.note_refusal(cfg, first)
    details = [f"{i.item.rsplit('/', 1)[-1]}: {i.detail}" for i in result.done]
    data = {"result": result.to_json()}
    if not result.failed:
        message = ngettext("Done: {items}.", "Done ({n}): {items}.", len(details)).format(
            n=len(details), items="; ".join(details))
        for w in dict.fromkeys(result.warnings):
            note("warning", w)
        return reply(True, message, to=to, data=data)
    message = first.message if first is not None else _("Not done.")
    if details:
        message += " " + _("Done anyway: {items}.").format(items="; ".join(details))
    not_done = [i.item.rsplit("/", 1)[-1] for i in result.failed]
    message += " " + _("Not done: {items}.").format(items=", ".join(not_done))
    return reply(False, message, first.remedy if first else "", to=to, data=data, status=409)


def _file_name(raw: str | None) -> str:
    """The file's own name as the browser sent it (some send a path)."""
    return (raw or "").replace("\\", "/").rsplit("/", 1)[-1]


def planned_uploads(prefix: str | None, section: str | None) -> list[ops.Upload]:
    uploads: list[ops.Upload] = []
    seen: set[str] = set()
    for fs in request.files.getlist("file"):
        if not fs.filename:
            continue
        stream: Any = fs.stream
        stream.flush()
        source = Path(stream.name)
        name = ops.remote_name(_file_name(fs.filename), prefix or None, section or None)
        size = source.stat().st_size
        if size == 0:
            raise UsageError(_("{name} is empty; every computer would skip it.").format(name=name),
                             _("Check that the file is complete."))
        if name in seen:
            raise UsageError(_("Two files would both be called {name!r} on the server.").format(name=name),
                             _("Upload them separately or rename one."))
        seen.add(name)
        uploads.append(ops.Upload(source, name, size))
    if not uploads:
        raise UsageError(_("No file was chosen."), _("Drop files on the area, or choose them."))
    return uploads


def register(app: Flask, dash: Dashboard) -> None:
    app.request_class = UploadRequest
    app.teardown_request(_cleanup_uploads)

    @app.get("/c/<int:cid>/manage")
    def manage_page(cid: int) -> ResponseReturnValue:
        from m3daemon.coordinator.overview import overview

        cfg = dash.config(cid)
        today = today_of(cfg)
        try:
            chosen = date.fromisoformat(request.args.get("date", ""))
        except ValueError:
            chosen = None
        end = today + timedelta(days=cfg.local.days_ahead)
        access: Access = UNKNOWN
        problem: M3Error | None = None
        dates: list[dict[str, Any]] = []
        recurring: list[dict[str, Any]] = []
        backgrounds: list[str] = []
        past: list[str] = []
        try:
            with dash.coordinator(cfg) as coord:
                access = dash.access.check(coord)
                view = overview(coord, today, max(end, chosen or end), extend=True)
                recurring = [{"name": e.name, "size": ops.human_size(e.size) if e.size is not None else "",
                              "section": ops.section_of(e.name)} for e in ops.list_recurring(coord)]
                stem = f"{BACKGROUND_PREFIX}{coord.congregation_name()}."
                backgrounds = sorted(e.name for e in coord.writer.list_dir(()) or []
                                     if not e.is_dir and e.name.startswith(stem))
                past = ["/".join(p) for p in ops.prune_candidates(coord, today)]
            dates = [date_view(cid, dv) for dv in view.dates]
        except M3Error as err:
            problem = err
            access = dash.access.get(cfg)
        if chosen is None or chosen < today:
            chosen = next((date.fromisoformat(d["iso"]) for d in dates if d["meeting"]), today)
        selected = next((d for d in dates if d["iso"] == chosen.isoformat()), None)
        return render_template(
            "manage.html", cfg=cfg, access=access, problem=problem, dates=dates, chosen=chosen.isoformat(),
            selected=selected, recurring=recurring, today=today.isoformat(), sections=ops.SECTIONS,
            backgrounds=backgrounds, past=past,
        )

    def back(cid: int) -> str:
        day = request.form.get("date", "")
        return f"/c/{cid}/manage" + (f"?date={day}" if day else "")

    def run(cid: int, work: Callable[[Config], ResponseReturnValue]) -> ResponseReturnValue:
        """Check, then do, one change; every failure becomes a message, never a half-shown state."""
        cfg = dash.config(cid)
        try:
            return work(cfg)
        except M3Error as err:
            dash.note_refusal(cfg, err)
            return error_reply(err, to=back(cid))
        except Exception as exc:  # noqa: BLE001 - shown as a message; the log has the traceback
            return unexpected_reply(exc, to=back(cid))

    @app.post("/c/<int:cid>/manage/upload")
    def manage_upload(cid: int) -> ResponseReturnValue:
        def work(cfg: Config) -> ResponseReturnValue:
            today = today_of(cfg)
            target = request.form.get("target", "date")
            d = ops.check_date(request.form.get("date", ""), today) if target == "date" else None
            uploads = planned_uploads(request.form.get("prefix", "").strip(), request.form.get("section", ""))
            with dash.coordinator(cfg) as coord:
                result = ops.add_media(coord, d, uploads) if d is not None else ops.add_recurring(coord, uploads)
            result.warnings.extend(ops.m3_warnings(uploads))
            return batch_reply(dash, cfg, result, to=back(cid))
        return run(cid, work)

    def names_action(cid: int, action: str) -> ResponseReturnValue:
        def work(cfg: Config) -> ResponseReturnValue:
            today = today_of(cfg)
            names = ops.check_names(request.form.getlist("name"))
            if not names:
                raise UsageError(_("No item was named."), _("Choose an item first."))
            with dash.coordinator(cfg) as coord:
                if action == "recurring-remove":
                    result = ops.remove_recurring(coord, names)
                else:
                    d = ops.check_date(request.form.get("date", ""), today, allow_past=action != "hide")
                    operation = {"remove": ops.remove_media, "hide": ops.hide, "unhide": ops.unhide}[action]
                    result = operation(coord, d, names)
            return batch_reply(dash, cfg, result, to=back(cid))
        return run(cid, work)

    @app.post("/c/<int:cid>/manage/remove")
    def manage_remove(cid: int) -> ResponseReturnValue:
        return names_action(cid, "remove")

    @app.post("/c/<int:cid>/manage/hide")
    def manage_hide(cid: int) -> ResponseReturnValue:
        return names_action(cid, "hide")

    @app.post("/c/<int:cid>/manage/unhide")
    def manage_unhide(cid: int) -> ResponseReturnValue:
        return names_action(cid, "unhide")

    @app.post("/c/<int:cid>/manage/recurring/remove")
    def manage_recurring_remove(cid: int) -> ResponseReturnValue:
        return names_action(cid, "recurring-remove")

    @app.post("/c/<int:cid>/manage/background")
    def manage_background(cid: int) -> ResponseReturnValue:
        def work(cfg: Config) -> ResponseReturnValue:
            fs = request.files.get("file")
            if fs is None or not fs.filename:
                raise UsageError(_("No file was chosen."), _("Choose an image."))
            name = _file_name(fs.filename)
            stream: Any = fs.stream
            stream.flush()
            folder = Path(tempfile.mkdtemp(prefix="m3daemon-background-"))
            try:  # the coordinator tool takes the extension from the file's name
                source = folder / f"background{Path(name).suffix}"
                shutil.copyfile(stream.name, source)
                ops.background_name("-", source)  # the extension, before any request
                with dash.coordinator(cfg) as coord:
                    result = ops.set_background(coord, source)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            return batch_reply(dash, cfg, result, to=back(cid))
        return run(cid, work)

    @app.post("/c/<int:cid>/manage/background/remove")
    def manage_background_remove(cid: int) -> ResponseReturnValue:
        def work(cfg: Config) -> ResponseReturnValue:
            with dash.coordinator(cfg) as coord:
                result = ops.remove_background(coord)
            return batch_reply(dash, cfg, result, to=back(cid))
        return run(cid, work)

    @app.post("/c/<int:cid>/manage/prune")
    def manage_prune(cid: int) -> ResponseReturnValue:
        def work(cfg: Config) -> ResponseReturnValue:
            with dash.coordinator(cfg) as coord:
                folders = ops.prune_candidates(coord, coord.today)  # only past date folders, ever
                if not folders:
                    return reply(True, _("There are no past date folders on the server."), to=back(cid))
                result = ops.prune(coord, folders)
            return batch_reply(dash, cfg, result, to=back(cid))
        return run(cid, work)

    @app.post("/c/<int:cid>/manage/recheck")
    def manage_recheck(cid: int) -> ResponseReturnValue:
        dash.access.forget(dash.config(cid))
        return reply(True, _("Checking again whether this account may change the congregation folder."),
                     to=back(cid))
