"""Connection setup: an invitation, provider presets, the folder browser, *Test connection*, save.

The same steps as ``m3daemon setup``: the connection is tested before anything is saved, the
password goes to the keyring (:func:`m3daemon.settings.credentials.store_password`), never into the file or
back to the page, and the running daemon switches to the new connection at once.

Nothing here sends a person to a terminal: an invitation is pasted or dropped; a self-hosted
server's certificate authority is pinned by its fingerprint, as the terminal does (the page shows
the fingerprint the server presents and pins it when it matches the one given); browsing needs no
saved configuration; *Forget* removes the congregation from this computer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue

from m3daemon.engine.wording import on_screen_remedy
from m3daemon.errors import M3Error, MissingPasswordError, TLSError, UsageError
from m3daemon.i18n import _
from m3daemon.settings import config as cfgmod
from m3daemon.settings import registry
from m3daemon.settings.credentials import StoredWhere, file_storage_notice, get_password, store_password
from m3daemon.settings.providers import PROVIDERS

from .app import error_reply, note, reply, unexpected_reply

if TYPE_CHECKING:
    from m3daemon.settings.config import Config

    from .app import Dashboard


@dataclass(frozen=True)
class Prefill:
    """What the form shows: the saved connection, or an invitation just read."""

    url: str = ""
    username: str = ""
    folder: str = ""
    name: str = ""
    ca_file: str = ""
    ca_fingerprint: str = ""
    media_dir: str = ""
    bandwidth_kbps: int = 0
    layout: str = "watch"
    invited: bool = False


def prefill_of(cfg: Config) -> Prefill:
    conn = cfg.connection
    named = cfg.path.exists() and cfg.name != cfg.path.stem  # "config" is a file name, not a congregation
    return Prefill(
        url=conn.url if conn else "", username=conn.username if conn else "", folder=conn.folder if conn else "",
        name=cfg.name if named else "", ca_file=str(conn.ca_file) if conn and conn.ca_file else "",
        media_dir=str(cfg.local.media_dir), bandwidth_kbps=conn.bandwidth_limit_kbps if conn else 0,
        layout=cfg.local.layout)


def current_provider(conn: Any) -> str:
    """The preset the saved connection matches, so the list shows it (empty: none)."""
    if conn is None:
        return ""
    for p in PROVIDERS:
        if p.needs_host:
            continue
        if conn.url == p.url and conn.folder.startswith(p.folder.rstrip("/")):
            return p.id
    for p in PROVIDERS:
        base = p.folder.split("<")[0].rstrip("/")
        if p.needs_host and base and conn.folder.startswith(base):
            return p.id
    if conn.url.endswith(":8443"):
        return "self-hosted"
    return ""


def candidate(cfg: Config, form: Any, folder: str | None = None) -> Config:
    """The configuration the form describes (checked like the file), with ``folder`` if given."""
    from m3daemon.settings.urls import check_address

    old = cfg.connection
    url = (form.get("url") or "").strip()
    username = (form.get("username") or "").strip()
    folder = (folder if folder is not None else form.get("folder") or "").strip()
    if not url or not username or not folder:
        raise UsageError(_("The server address, the user name and the folder are all needed."),
                         _("Fill in the fields marked as needed."))
    url = check_address(url, allow_loopback=bool(old and old.allow_insecure_loopback))
    doc = cfgmod.config_to_dict(cfg)
    ca = (form.get("ca_file") or "").strip()
    conn: dict[str, Any] = {"url": url, "username": username, "folder": folder}
    if ca:
        conn["ca_file"] = str(Path(ca).expanduser())
    if old is not None:
        conn["timeout_seconds"] = old.timeout_seconds
        if old.allow_insecure_loopback:
            conn["allow_insecure_loopback"] = True
    kbps = str(form.get("bandwidth_limit_kbps") or "").strip()
    if kbps:
        if not kbps.isdigit():
            raise UsageError(_("The download limit must be a whole number of kilobits per second (0: no limit)."),
                             _("For example 2000 for 2 Mbit/s."))
        conn["bandwidth_limit_kbps"] = int(kbps)
    elif old is not None and old.bandwidth_limit_kbps:
        conn["bandwidth_limit_kbps"] = old.bandwidth_limit_kbps
    doc["connection"] = conn
    media = (form.get("media_dir") or "").strip()
    if media:
        doc.setdefault("local", {})["media_dir"] = str(Path(media).expanduser())
    layout = (form.get("layout") or "").strip()
    if layout in ("watch", "classic"):
        doc.setdefault("local", {})["layout"] = layout
    name = (form.get("name") or "").strip()
    if name:
        doc.setdefault("congregation", {})["name"] = name
    return cfgmod.config_from_document(doc, cfg.path)


def with_pinned_ca(new: Config, form: Any) -> Config:
    """Pin the CA the server presents when its fingerprint is the one typed (as setup does)."""
    from m3daemon.settings.pinning import fetch_server_ca_fingerprint, same_fingerprint, save_pinned_ca

    wanted = (form.get("ca_fingerprint") or "").strip()
    assert new.connection is not None
    if not wanted or new.connection.ca_file is not None:
        return new
    presented = fetch_server_ca_fingerprint(new.connection.url)
    if not same_fingerprint(wanted, presented.sha256):
        raise TLSError(
            _("The server presents a certificate authority with the fingerprint {presented}, not the one given "
              "({given}).").format(presented=presented.sha256, given=wanted),
            _("Check the fingerprint with the coordinator (m3daemon server info shows it on the server). If they "
              "really differ, someone may be intercepting the connection: do not go on."))
    saved = save_pinned_ca(presented.pem, new.connection.url)
    return replace(new, connection=replace(new.connection, ca_file=saved))


def tls_problem(new: Config, err: TLSError) -> tuple[M3Error, dict[str, Any]]:
    """An untrusted certificate in words: the fingerprint the server presents, to compare and pin
    (never a raw OpenSSL message)."""
    from m3daemon.settings.pinning import fetch_server_ca_fingerprint

    assert new.connection is not None
    if new.connection.ca_file is not None:
        return err, {}
    try:
        presented = fetch_server_ca_fingerprint(new.connection.url)
    except M3Error:
        return err, {}
    return TLSError(
        _("This computer does not know the server's certificate authority. The server presents one with the "
          "SHA-256 fingerprint {fp}.").format(fp=presented.sha256),
        _("Compare it with the fingerprint the coordinator gave you (m3daemon server info shows it). If it is the "
          "same, pin it: it is trusted from then on.")), {"fingerprint": presented.sha256}


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


def register(app: Flask, dash: Dashboard) -> None:
    def form_data() -> Any:
        return request.get_json(silent=True) if request.is_json else request.form

    def page(cid: int, fill: Prefill, provider: str = "") -> str:
        cfg = dash.config(cid)
        conn = cfg.connection
        stored = bool(conn and get_password(conn))
        return render_template("connection.html", cfg=cfg, conn=conn, fill=fill, providers=PROVIDERS,
                               stored=stored, current_provider=provider or current_provider(conn),
                               configured=conn is not None)

    @app.get("/c/<int:cid>/connection")
    def connection_page(cid: int) -> ResponseReturnValue:
        return page(cid, prefill_of(dash.config(cid)))

    @app.post("/c/<int:cid>/connection/invite")
    def connection_invite(cid: int) -> ResponseReturnValue:
        """Read an invitation (pasted code or dropped file) into the form; the password is typed next."""
        from m3daemon.settings.invite import read_invitation

        cfg = dash.config(cid)
        upload = request.files.get("invite_file")
        text = (upload.read(64 * 1024).decode("utf-8", "replace") if upload else "") or request.form.get("code", "")
        try:
            if not text.strip():
                raise UsageError(_("There is no invitation to read."),
                                 _("Paste the invitation code, or drop the .m3invite file on the box."))
            inv = read_invitation(text if text.strip().startswith(("M3I", "{")) else "M3I" + text)
        except M3Error as err:
            note("error", err.message, on_screen_remedy(err.kind, err.remedy))
            return page(cid, prefill_of(cfg)), 400
        fill = replace(prefill_of(cfg), url=inv.url, folder=inv.folder, name=inv.name, layout=inv.layout,
                       username=inv.username or "", ca_file="", ca_fingerprint=inv.ca_sha256 or "", invited=True)
        note("ok", _("Invitation to {name} read. Enter the password and save.").format(name=inv.name))
        return page(cid, fill, "self-hosted" if inv.ca_sha256 else "")

    @app.post("/c/<int:cid>/connection/browse")
    def connection_browse(cid: int) -> ResponseReturnValue:
        from m3daemon.engine.connection import browse, level_hint

        cfg = dash.config(cid)
        form = form_data()
        new: Config | None = None
        try:
            new = with_pinned_ca(candidate(cfg, form, folder=(form.get("path") or form.get("folder") or "/")), form)
            password = password_for(new, form)
            view = browse(new, password)
            hint = level_hint(new, password, view)
            return {"ok": True, "path": view.path, "parent": view.parent, "files": view.files,
                    "folders": [{"name": f, "path": view.child(f)} for f in view.folders],
                    "hint": {"suggested": hint.suggested, "reason": hint.reason} if hint else None}
        except TLSError as err:
            problem, data = tls_problem(new, err) if new is not None else (err, {})
            return {"ok": False, "message": problem.message, "remedy": on_screen_remedy(problem.kind, problem.remedy), "kind": problem.kind,
                    **data}, 400
        except M3Error as err:
            return {"ok": False, "message": err.message, "remedy": on_screen_remedy(err.kind, err.remedy), "kind": err.kind}, 400
        except Exception as exc:  # noqa: BLE001 - shown in the browser panel
            return unexpected_reply(exc, to=f"/c/{cid}/connection")

    @app.post("/c/<int:cid>/connection/test")
    def connection_test(cid: int) -> ResponseReturnValue:
        from m3daemon.engine.connection import check_connection

        cfg = dash.config(cid)
        form = form_data()
        new: Config | None = None
        try:
            new = with_pinned_ca(candidate(cfg, form), form)
            summary = check_connection(new, password_for(new, form))
            return reply(True, summary, to=f"/c/{cid}/connection")
        except TLSError as err:
            problem, data = tls_problem(new, err) if new is not None else (err, {})
            return reply(False, problem.message, on_screen_remedy(problem.kind, problem.remedy), to=f"/c/{cid}/connection",
                         data={"kind": problem.kind, **data}, status=problem.http_status)
        except M3Error as err:
            return error_reply(err, to=f"/c/{cid}/connection")
        except Exception as exc:  # noqa: BLE001
            return unexpected_reply(exc, to=f"/c/{cid}/connection")

    @app.post("/c/<int:cid>/connection/save")
    def connection_save(cid: int) -> ResponseReturnValue:
        from m3daemon.engine.connection import check_connection, watch_folder_advice

        cfg = dash.config(cid)
        form = form_data()
        new: Config | None = None
        try:
            new = with_pinned_ca(candidate(cfg, form), form)
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
        except TLSError as err:
            problem, data = tls_problem(new, err) if new is not None else (err, {})
            return reply(False, problem.message, on_screen_remedy(problem.kind, problem.remedy), to=f"/c/{cid}/connection",
                         data={"kind": problem.kind, **data}, status=problem.http_status)
        except M3Error as err:
            return error_reply(err, to=f"/c/{cid}/connection")
        except Exception as exc:  # noqa: BLE001
            return unexpected_reply(exc, to=f"/c/{cid}/connection")
        if where is StoredWhere.FILE:
            note("warning", file_storage_notice())
        note("ok", watch_folder_advice(new))
        return reply(True, _("Saved. {summary} The media folders are being updated.").format(summary=summary),
                     to=f"/c/{cid}/status")

    @app.post("/c/<int:cid>/connection/invitation")
    def connection_invitation(cid: int) -> ResponseReturnValue:
        """The coordinator invites another computer: the code, its QR code and the file (never a password)."""
        from markupsafe import Markup

        from m3daemon.settings.invite import invitation_for, qr_code

        cfg = dash.config(cid)
        username = (request.form.get("username") or "").strip()
        try:
            inv = invitation_for(cfg, username or None)
        except M3Error as err:
            return error_reply(err, to=f"/c/{cid}/connection")
        code = inv.code()
        svg = Markup(qr_code(code).svg_inline(scale=4, title=_("Invitation to {name}").format(name=inv.name)))
        made = {"code": code, "qr": svg, "name": inv.name, "username": username,
                "file_url": f"/c/{cid}/connection/invitation.m3invite?username={username}"}
        return render_template("connection.html", cfg=cfg, conn=cfg.connection, fill=prefill_of(cfg),
                               providers=PROVIDERS, stored=bool(cfg.connection and get_password(cfg.connection)),
                               current_provider=current_provider(cfg.connection), configured=True, invitation=made)

    @app.get("/c/<int:cid>/connection/invitation.m3invite")
    def connection_invitation_file(cid: int) -> ResponseReturnValue:
        from flask import Response

        from m3daemon.settings.invite import FILE_SUFFIX, invitation_for

        cfg = dash.config(cid)
        try:
            inv = invitation_for(cfg, (request.args.get("username") or "").strip() or None)
        except M3Error as err:
            return error_reply(err, to=f"/c/{cid}/connection")
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in inv.name).strip("-") or "congregation"
        return Response(inv.file_text(), 200, content_type="application/json; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{safe}{FILE_SUFFIX}"'})

    @app.post("/c/<int:cid>/connection/forget")
    def connection_forget(cid: int) -> ResponseReturnValue:
        """Remove the congregation from this computer: configuration, record, password; never its media."""
        from m3daemon.engine.forget import forget

        cfg = dash.config(cid)
        try:
            done = forget(cfg, media=False)
            dash.access.forget(cfg)
            dash.host.replace_config(cfgmod.default_config(cfg.path))  # the daemon contacts nothing for it now
        except M3Error as err:
            return error_reply(err, to=f"/c/{cid}/connection")
        except Exception as exc:  # noqa: BLE001
            return unexpected_reply(exc, to=f"/c/{cid}/connection")
        if done.media_kept:
            message = _("{name} is no longer set up on this computer. Its media folder {dir} was kept.").format(
                name=cfg.name, dir=done.media_kept)
        else:
            message = _("{name} is no longer set up on this computer.").format(name=cfg.name)
        return reply(True, message, to=f"/c/{cid}/connection")


__all__ = ["Prefill", "candidate", "current_provider", "password_for", "prefill_of", "register"]
