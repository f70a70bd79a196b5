"""The dashboard: a Flask app mounted in the daemon's loopback web server (``ControlApp.fallback``).

Why Flask: it is kept by the Pallets team (with Jinja2 and Werkzeug, which it is built on), it
escapes everything a template prints by default, and Werkzeug parses form posts and streams file
uploads to temporary files, so no request parsing is written by hand. It brings no server or
process model of its own: the app is a plain WSGI callable that runs on the daemon's cheroot
threads, next to the JSON control API.

Pages are rendered on the server; a small script (``static/dashboard.js``) adds the live status
(short polling: Server-Sent Events would hold one of cheroot's few worker threads per open tab),
drag-and-drop uploads with progress, the folder browser and the provider presets. Every change is a
POST form that also works without the script.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from flask import Flask, Response, abort, g, redirect, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as WerkzeugResponse

from m3daemon.engine.language import UI_LANGUAGE_KEY, language_for
from m3daemon.engine.status import CongregationStatus, SyncState
from m3daemon.engine.wording import on_screen_remedy
from m3daemon.errors import M3Error
from m3daemon.i18n import _, choose_language, ngettext, pop_language, push_language
from m3daemon.settings.config import Config

from .access import AccessMemo
from .security import CSRF_FIELD, CSRF_HEADER, SECURITY_HEADERS, Guard, Session

log = logging.getLogger(__name__)

LANGUAGE_RECHECK_SECONDS = 60.0

def N_(message: str) -> str:
    """Marks a text for translation where it is defined; ``_()`` translates it where it is shown."""
    return message


PAGES: tuple[tuple[str, str], ...] = (
    ("status", N_("Status")),
    ("upcoming", N_("Upcoming meetings")),
    ("manage", N_("Manage media")),
    ("history", N_("What changed")),
    ("connection", N_("Connection")),
    ("settings", N_("Congregation settings")),
    ("logs", N_("Logs")),
)


class DashboardHost(Protocol):
    """What the dashboard needs of the running daemon."""

    def statuses(self) -> list[CongregationStatus]: ...

    def update_now(self, name: str | None = None, *, during_meeting: bool = False,
                   allow_deletions: bool = False) -> None: ...

    def pause(self, name: str | None = None) -> None: ...

    def resume(self, name: str | None = None) -> None: ...

    def congregation_configs(self) -> list[Config]: ...

    def replace_config(self, cfg: Config) -> None: ...


StartResponse = Callable[..., Any]


class Dashboard:
    """One dashboard per daemon run: its secret, its sessions and its Flask app."""

    def __init__(self, host: DashboardHost, *, log_path: Path | None = None, launch_folder: Path | None = None) -> None:
        self.host = host
        self.guard = Guard()
        self.log_path = log_path
        self.launch_folder = launch_folder
        self.access = AccessMemo()
        self._languages: dict[tuple[str, str | None, str], tuple[str, float]] = {}
        self._pages: dict[str, Path] = {}  # login key -> its launch page
        self._pages_lock = threading.Lock()
        self.app = _create_app(self)

    def bind(self, host: str, port: int) -> None:
        """The address of the web server that carries the dashboard (known once it listens)."""
        self.guard.bind(host, port)

    @property
    def base_url(self) -> str | None:
        """Where the dashboard answers (without a key: its pages need a session)."""
        return self.guard.base_url

    def login_url(self, cid: int | None = None) -> str | None:
        """``/login?key=…`` with a new key: it works once, within a minute."""
        base = self.guard.base_url
        if base is None:
            return None
        extra = f"&c={cid}" if cid else ""
        return f"{base}/login?key={self.guard.keys.issue()}{extra}"

    def launch(self, cid: int | None = None, page: str | None = None) -> Path | None:
        """A new launch page (0600) that logs the browser in with a new key: the way to open the
        dashboard without the key on the browser's command line (:mod:`.launch`)."""
        from .launch import remove_page, write_launch_page

        base = self.guard.base_url
        if base is None:
            return None
        for old in self.guard.keys.expired():
            with self._pages_lock:
                remove_page(self._pages.pop(old, None))
        key = self.guard.keys.issue()
        written = write_launch_page(base, key, cid, self.launch_folder, page)
        with self._pages_lock:
            self._pages[key] = written
        return written

    def key_used(self, key: str) -> None:
        from .launch import remove_page

        with self._pages_lock:
            remove_page(self._pages.pop(key, None))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self.app.wsgi_app(environ, start_response)

    # --- congregations -----------------------------------------------------------------------

    def configs(self) -> list[Config]:
        return self.host.congregation_configs()

    def config(self, cid: int) -> Config:
        configs = self.configs()
        if not 0 <= cid < len(configs):
            abort(404)
        return configs[cid]

    def cid_of(self, path: str | Path) -> int | None:
        return next((i for i, c in enumerate(self.configs()) if str(c.path) == str(path)), None)

    def language(self, cid: int) -> str:
        """The language of congregation ``cid``'s pages; remembered for a minute, so a page does not
        open the record on every request (a newly forced ``app.localAppLang`` shows within a minute)."""
        configs = self.configs()
        if not configs:
            return choose_language()
        cfg = configs[cid] if 0 <= cid < len(configs) else configs[0]
        key = (str(cfg.path), cfg.language, str(cfg.prefs.get(UI_LANGUAGE_KEY)))
        now = time.monotonic()
        cached = self._languages.get(key)
        if cached is None or now - cached[1] > LANGUAGE_RECHECK_SECONDS:
            cached = self._languages[key] = (language_for(cfg), now)
        return cached[0]

    def status(self, cid: int) -> CongregationStatus:
        cfg = self.config(cid)
        found = next((s for s in self.host.statuses() if s.config == str(cfg.path)), None)
        if found is None:
            return CongregationStatus(cfg.display_name, str(cfg.path), SyncState.NOT_CONFIGURED, str(cfg.local.media_dir))
        return found

    @contextmanager
    def coordinator(self, cfg: Config) -> Iterator[Any]:
        """A coordinator session; a refused write marks the account read-only for later pages."""
        from m3daemon.coordinator.context import Coordinator

        try:
            with Coordinator.open(cfg) as coord:
                yield coord
        except M3Error as err:
            self.note_refusal(cfg, err)
            raise

    def note_refusal(self, cfg: Config, err: M3Error | None) -> None:
        """Remember a refused write (``err.read_only``): the account may only read."""
        if err is not None and err.read_only:
            self.access.read_only(cfg, err)


# --- replies -------------------------------------------------------------------------------------


def wants_json() -> bool:
    return request.headers.get("X-Requested-With") == "m3daemon" or (
        request.accept_mimetypes.best == "application/json")


def keeps_flash() -> bool:
    """A form post shows its message on the next page; a script gets JSON, and asks with ``X-Flash: 1``
    when it reloads the page to show the message there."""
    return not wants_json() or request.headers.get("X-Flash") == "1"


def note(kind: str, message: str, remedy: str = "") -> None:
    """A message for the next page (kind: ok, warning, error)."""
    if keeps_flash():
        session: Session = g.session
        session.flash(kind, message, remedy)


def reply(ok: bool, message: str, remedy: str = "", *, to: str, data: dict[str, Any] | None = None,
          status: int | None = None) -> ResponseReturnValue:
    """A JSON answer for scripts, else a message shown on the next page (post, redirect, get)."""
    note("ok" if ok else "error", message, remedy)
    if wants_json():
        body = {"ok": ok, "message": message, "remedy": remedy, **(data or {})}
        return body, status or (200 if ok else 400)
    return redirect(to, 303)


def error_reply(err: M3Error, *, to: str) -> ResponseReturnValue:
    return reply(False, err.message, on_screen_remedy(err.kind, err.remedy), to=to, data={"kind": err.kind},
                 status=err.http_status)


def unexpected_reply(exc: Exception, *, to: str) -> ResponseReturnValue:
    log.exception("dashboard request %s failed", request.path)
    return reply(False, _("Unexpected error: {what}").format(what=f"{type(exc).__name__}: {exc}"),
                 _("Nothing was changed by this request. Try again; if it happens again, send the log."),
                 to=to, status=500)


def forbidden(message: str) -> Response:
    html = render_template("forbidden.html", message=message)
    return Response(html, 403, content_type="text/html; charset=utf-8")


# --- the app -------------------------------------------------------------------------------------


def _create_app(dash: Dashboard) -> Flask:
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.update(MAX_FORM_MEMORY_SIZE=1 << 20, SEND_FILE_MAX_AGE_DEFAULT=60, JSON_SORT_KEYS=False)
    from m3daemon.coordinator.media import part_name

    app.jinja_env.globals.update(_=_, ngettext=ngettext, PAGES=PAGES, csrf_field=CSRF_FIELD, part_name=part_name)
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True
    guard = dash.guard

    @app.before_request
    def language() -> None:
        """Each page speaks its congregation's language (:mod:`m3daemon.engine.language`)."""
        cid = (request.view_args or {}).get("cid")
        g.language = dash.language(cid if isinstance(cid, int) else 0)
        g.language_token = push_language(g.language)

    @app.teardown_request
    def forget_language(_exc: BaseException | None) -> None:
        token = g.pop("language_token", None)
        if token is not None:
            pop_language(token)

    @app.before_request
    def check() -> ResponseReturnValue | None:
        if not guard.peer_ok(request.environ) or not guard.host_ok(request.host):
            return forbidden(_("The dashboard answers only on this computer's own address."))
        if request.endpoint in ("static", "login"):
            return None
        session = guard.sessions.get(request.cookies.get(guard.cookie_name))
        if session is None:
            return forbidden(_("This page needs the dashboard's key, which changes at every start of m3daemon."))
        g.session = session
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if not guard.origin_ok(request.headers.get("Origin"), request.headers.get("Referer")):
                return forbidden(_("The request did not come from the dashboard itself, so it was refused."))
            token = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
            if not guard.csrf_ok(session, token):
                return forbidden(_("The form has expired or did not come from the dashboard. Reload the page."))
        return None

    @app.after_request
    def harden(resp: Response) -> Response:
        for name, value in SECURITY_HEADERS:
            resp.headers.setdefault(name, value)
        if request.endpoint != "static":
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.route("/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        values = request.form if request.method == "POST" else request.args
        key = guard.use_key(values.get("key"))
        if key is None:
            return forbidden(_("This dashboard link is not valid any more: it works once, for a minute. Open the "
                               "dashboard again from the tray icon, or with `m3daemon dashboard`."))
        dash.key_used(key)
        session = guard.sessions.create()
        cid = values.get("c", "0")
        page = values.get("p", "status")
        page = page if page in dict(PAGES) else "status"
        target = f"/c/{int(cid) if cid.isdigit() else 0}/{page}"
        resp: Response | WerkzeugResponse
        if request.method == "POST":
            # The launch page is a file, so this request came from another site: a browser does not
            # send a SameSite=Strict cookie along a redirect that such a request started. A page of
            # our own that moves on does.
            resp = Response(render_template("login.html", target=target), 200,
                            content_type="text/html; charset=utf-8")
        else:
            resp = redirect(target, 303)
        resp.set_cookie(guard.cookie_name, session.sid, httponly=True, samesite="Strict", path="/")
        return resp

    @app.get("/")
    def home() -> ResponseReturnValue:
        return redirect("/c/0/status", 303)

    @app.get("/go")
    def go() -> ResponseReturnValue:
        """The congregation selector (a GET form, so it works without the script)."""
        cid = request.args.get("c", "0")
        page = request.args.get("page", "status")
        page = page if page in dict(PAGES) else "status"
        return redirect(f"/c/{int(cid) if cid.isdigit() else 0}/{page}", 303)

    @app.context_processor
    def common() -> dict[str, Any]:
        session: Session | None = g.get("session")
        cid = (request.view_args or {}).get("cid")
        return {
            "csrf_token": session.csrf if session else "",
            "flashes": session.take_flashes() if session else [],
            "congregations": [(i, c.display_name) for i, c in enumerate(dash.configs())],
            "cid": cid if isinstance(cid, int) else 0,
            "html_lang": g.get("language", "en").replace("_", "-"),
            "page": (request.endpoint or "").split(".")[-1].split("_")[0],
        }

    @app.errorhandler(404)
    def not_found(_e: Exception) -> ResponseReturnValue:
        return Response(_("Not found."), 404, content_type="text/plain; charset=utf-8")

    @app.errorhandler(500)
    def failed(e: Exception) -> ResponseReturnValue:
        original = getattr(e, "original_exception", None) or e
        log.error("dashboard page %s failed", request.path, exc_info=original)
        text = _("Unexpected error: {what}").format(what=f"{type(original).__name__}: {original}") + "\n" + _(
            "Nothing was changed. Try again; if it happens again, send the log (the Logs page can download it).")
        return Response(text, 500, content_type="text/plain; charset=utf-8")

    from . import views_logs, views_manage, views_settings, views_setup, views_status, views_upcoming

    for module in (views_status, views_upcoming, views_manage, views_setup, views_settings, views_logs):
        module.register(app, dash)
    return app
