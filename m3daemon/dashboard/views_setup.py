"""Connection setup: provider presets, the folder browser, *Test connection*, save.

The same steps as ``m3daemon setup``: the connection is tested before anything is saved, the
password goes to the keyring (:func:`m3daemon.settings.credentials.store_password`), never into the file or
back to the page, and the running daemon switches to the new connection at once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue

from m3daemon.errors import M3Error, MissingPasswordError, UsageError
from m3daemon.i18n import _
from m3daemon.settings import config as cfgmod
from m3daemon.settings import registry
from m3daemon.settings.credentials import StoredWhere, file_storage_notice, get_password, store_password
from m3daemon.settings.providers import PROVIDERS

from .app import error_reply, note, reply, unexpected_reply

if TYPE_CHECKING:
    from m3daemon.settings.config import Config

    from .app import Dashboard


def candidate(cfg: Config, form: Any, folder: str | None = None) -> Config:
    """The configuration the form describes (checked like the file), with ``folder`` if given."""
    old = cfg.connection
    url = (form.get("url") or "").strip()
    username = (form.get("username") or "").strip()
    folder = (folder if folder is not None else form.get("folder") or "").strip()
    if not url or not username or not folder:
        raise UsageError(_("The server address, the user name and the folder are all needed."),
                         _("Fill in the fields marked as needed."))
    doc = cfgmod.config_to_dict(cfg)
    ca = (form.get("ca_file") or "").strip()
    conn: dict[str, Any] = {"url": url, "username": username, "folder": folder}
    if ca:
        conn["ca_file"] = str(Path(ca).expanduser())
    if old is not None:
        conn["timeout_seconds"] = old.timeout_seconds
        if old.allow_insecure_loopback:
            conn["allow_insecure_loopback"] = True
    doc["connection"] = conn
    media = (form.get("media_dir") or "").strip()
    if media:
        doc.setdefault("local", {})["media_dir"] = str(Path(media).expanduser())
    return cfgmod.config_from_document(doc, cfg.path)


def password_for(new: Config, form: Any) -> str:
    typed = form.get("password") or ""
    if typed:
        return str(typed)
    assert new.connection is not None
    stored = get_password(new.connection)
    if not stored:
        raise MissingPasswordError(_("No password is stored for {account}.").format(account=new.connection.account),
                                   _("Enter the password (an app password for Box, Koofr and Nextcloud)."))
    return stored


def parent_of(folder: str) -> str | None:
    if folder in ("", "/"):
        return None
    return folder.rstrip("/").rsplit("/", 1)[0] or "/"


def register(app: Flask, dash: Dashboard) -> None:
    def form_data() -> Any:
        return request.get_json(silent=True) if request.is_json else request.form

    @app.get("/c/<int:cid>/connection")
    def connection_page(cid: int) -> ResponseReturnValue:
        cfg = dash.config(cid)
        conn = cfg.connection
        stored = bool(conn and get_password(conn))
        return render_template("connection.html", cfg=cfg, conn=conn, providers=PROVIDERS, stored=stored)

    @app.post("/c/<int:cid>/connection/browse")
    def connection_browse(cid: int) -> ResponseReturnValue:
        from m3daemon.engine.context import open_session
        from m3daemon.remote.listing import list_children

        cfg = dash.config(cid)
        form = form_data()
        try:
            new = candidate(cfg, form, folder=(form.get("path") or form.get("folder") or "/"))
            assert new.connection is not None
            with open_session(new, password=password_for(new, form)) as session:
                entries = list_children(session, ())
            folder = new.connection.folder
            base = folder.rstrip("/")
            folders = [{"name": e.name, "path": f"{base}/{e.name}"}
                       for e in sorted(entries, key=lambda e: e.name.lower()) if e.is_dir]
            return {"ok": True, "path": folder, "parent": parent_of(folder), "folders": folders,
                    "files": sum(1 for e in entries if not e.is_dir)}
        except M3Error as err:
            return {"ok": False, "message": err.message, "remedy": err.remedy, "kind": err.kind}, 400
        except Exception as exc:  # noqa: BLE001 - shown in the browser panel
            return unexpected_reply(exc, to=f"/c/{cid}/connection")

    @app.post("/c/<int:cid>/connection/test")
    def connection_test(cid: int) -> ResponseReturnValue:
        from m3daemon.engine.connection import check_connection

        cfg = dash.config(cid)
        form = form_data()
        try:
            new = candidate(cfg, form)
            summary = check_connection(new, password_for(new, form))
            return reply(True, summary, to=f"/c/{cid}/connection")
        except M3Error as err:
            return error_reply(err, to=f"/c/{cid}/connection")
        except Exception as exc:  # noqa: BLE001
            return unexpected_reply(exc, to=f"/c/{cid}/connection")

    @app.post("/c/<int:cid>/connection/save")
    def connection_save(cid: int) -> ResponseReturnValue:
        from m3daemon.engine.connection import check_connection

        cfg = dash.config(cid)
        form = form_data()
        try:
            new = candidate(cfg, form)
            assert new.connection is not None
            password = password_for(new, form)
            summary = check_connection(new, password)  # nothing is saved unless this passes
            registry.check_media_dir_unique(new)
            where = store_password(new.connection, password)
            new = replace(new, warnings=())
            if not new.prefs.get("app.localAppLang"):
                # new date folders get the weekday names the server's folders have (M³ 22–24)
                from m3daemon.engine.connection import server_weekday_language

                if lang := server_weekday_language(new, password):
                    new = replace(new, prefs={**new.prefs, "app.localAppLang": lang})
            cfgmod.save_config(new)
            registry.register_config(new)
            dash.access.forget(cfg)
            dash.host.replace_config(cfgmod.load_config(cfg.path))
        except M3Error as err:
            return error_reply(err, to=f"/c/{cid}/connection")
        except Exception as exc:  # noqa: BLE001
            return unexpected_reply(exc, to=f"/c/{cid}/connection")
        if where is StoredWhere.FILE:
            note("warning", file_storage_notice())
        return reply(True, _("Saved. {summary} The media folders are being updated.").format(summary=summary),
                     to=f"/c/{cid}/status")
