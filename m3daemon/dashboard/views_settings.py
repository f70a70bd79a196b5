"""Congregation-wide settings: every key a coordinator may force, its value here, and its lock.

As in M³'s settings screen: each setting shows this computer's value; a coordinator (an account that
may write) has a switch to force it on every computer, which writes ``forcedPrefs.json`` with the
same read-modify-write as ``m3daemon settings force`` (:func:`edit_forced`). A forced setting is
locked for everyone else: its local value cannot be changed here.

The forced values are read from the server when the page opens; when the server cannot be reached,
the page shows what the last update fetched, and says so.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import escape

from m3daemon.core import prefs as m3prefs
from m3daemon.core.dates import DATE_FORMATS
from m3daemon.engine.context import local_prefs
from m3daemon.errors import LockedSettingError, M3Error, UsageError
from m3daemon.i18n import _, _l, weekday_name
from m3daemon.settings.config import load_config, save_config

from .access import Access
from .app import N_, error_reply, note, reply, unexpected_reply
from .local import forced_at_last_sync, record_meta

if TYPE_CHECKING:
    from m3daemon.settings.config import Config

    from .app import Dashboard

# M³ numbers the weekdays 0 = Monday … 6 = Sunday; their names come from CLDR in the page's language.
WEEKDAY_DATES = tuple(date(2024, 1, 1) + timedelta(days=i) for i in range(7))  # 2024-01-01 was a Monday


class _WeekdayName(str):
    """A weekday's name, looked up when the page is shown (in the page's language)."""

    def __str__(self) -> str:
        return weekday_name(WEEKDAY_DATES[int(str.__str__(self))])

    def __html__(self) -> str:
        return str(escape(str(self)))


WEEKDAYS = tuple(_WeekdayName(str(i)) for i in range(7))
CHOICES: dict[str, tuple[tuple[str, str], ...]] = {
    "app.outputFolderDateFormat": tuple((f, f) for f in DATE_FORMATS),
    "media.maxRes": tuple((r, r) for r in m3prefs.MAX_RES),
    "meeting.musicFadeOutType": (("smart", _l("Before the meeting starts (by its start time)")),
                                 ("timer", _l("After a set time of playing"))),
    "meeting.mwDay": tuple((str(i), d) for i, d in enumerate(WEEKDAYS)),
    "meeting.weDay": tuple((str(i), d) for i, d in enumerate(WEEKDAYS)),
}
# As M³'s settings screen groups them, meetings first (what a coordinator sets most).
SECTIONS = {"meeting": N_("Meetings"), "media": N_("Media"), "app": N_("Application")}

#: What each setting is called on the screen (the key is shown small below it, for those who know it).
LABELS: dict[str, str] = {
    "meeting.mwDay": N_("Midweek meeting day"),
    "meeting.mwStartTime": N_("Midweek meeting start time"),
    "meeting.weDay": N_("Weekend meeting day"),
    "meeting.weStartTime": N_("Weekend meeting start time"),
    "meeting.coWeek": N_("Circuit overseer's visit (the week of this date)"),
    "meeting.specialCong": N_("Special congregation (no regular meeting program)"),
    "meeting.autoStartMusic": N_("Play background music before the meeting"),
    "meeting.enableMusicButton": N_("Show the background music button"),
    "meeting.enableMusicFadeOut": N_("Fade out the background music"),
    "meeting.musicFadeOutTime": N_("Fade out the music this many seconds before the meeting"),
    "meeting.musicFadeOutType": N_("How the music fades out"),
    "meeting.musicVolume": N_("Background music volume (%)"),
    "media.lang": N_("Media language"),
    "media.langFallback": N_("Fallback media language"),
    "media.langSubs": N_("Subtitle language"),
    "media.maxRes": N_("Largest video resolution to download"),
    "media.enableSubtitles": N_("Download subtitles"),
    "media.includePrinted": N_("Include media of the printed publications"),
    "media.excludeTh": N_("Leave out media of the Teaching brochure"),
    "media.excludeLffImages": N_("Leave out images of the Enjoy Life Forever book"),
    "media.autoPlayFirst": N_("Play the first media item by itself"),
    "media.autoPlayFirstTime": N_("Minutes before the meeting to play the first item"),
    "media.enableMediaDisplayButton": N_("Show the media window button"),
    "media.hideMediaLogo": N_("Hide the logo in the media window"),
    "media.hideWinAfterMedia": N_("Hide the media window after each item"),
    "media.preferredOutput": N_("Display of the media window"),
    "media.enablePp": N_("Presentation remote (clicker)"),
    "media.ppForward": N_("Clicker key: next"),
    "media.ppBackward": N_("Clicker key: previous"),
    "media.enableMp4Conversion": N_("Convert media to MP4"),
    "media.keepOriginalsAfterConversion": N_("Keep the originals after conversion"),
    "media.enableVlcPlaylistCreation": N_("Make VLC playlists"),
    "app.congregationName": N_("Congregation name (in M³)"),
    "app.outputFolderDateFormat": N_("Date format of the date folders"),
    "app.obs.enable": N_("OBS Studio: switch scenes"),
    "app.obs.port": N_("OBS Studio: port"),
    "app.obs.password": N_("OBS Studio: password"),
    "app.obs.cameraScene": N_("OBS Studio: camera scene"),
    "app.obs.mediaScene": N_("OBS Studio: media scene"),
    "app.obs.imageScene": N_("OBS Studio: image scene"),
    "app.zoom.enable": N_("Zoom: integration"),
    "app.zoom.id": N_("Zoom: meeting ID"),
    "app.zoom.password": N_("Zoom: meeting password"),
    "app.zoom.name": N_("Zoom: name shown in the meeting"),
    "app.zoom.autoStartMeeting": N_("Zoom: start the meeting by itself"),
    "app.zoom.autoStartTime": N_("Zoom: minutes before the meeting to start it"),
    "app.zoom.autoRename": N_("Zoom: rename participants"),
    "app.zoom.hideComponent": N_("Zoom: hide its window"),
    "app.zoom.spotlight": N_("Zoom: spotlight the speaker"),
}
ORDER = list(LABELS)


def value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def rows(local: dict[str, Any], forced: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    keys = sorted(m3prefs.FORCABLE, key=lambda k: (ORDER.index(k) if k in ORDER else len(ORDER), k))
    for key in keys:
        spec = m3prefs.FORCABLE[key]
        is_forced = key in forced
        value = forced[key] if is_forced else local.get(key, m3prefs.DEFAULTS.get(key))
        choices = CHOICES.get(key)
        if spec.value_type == "bool":
            choices = (("true", _("on")), ("false", _("off")))
        out.append({
            "key": key, "label": _(LABELS[key]) if key in LABELS else key, "time": spec.value_type == "time",
            "section": key.split(".")[0], "kind": spec.kind, "value": value_text(value),
            "local": value_text(local.get(key)), "forced": is_forced,
            "choices": [(v, _(label)) for v, label in choices] if choices else None,
            "secret": key.endswith(".password"),
        })
    return out


def register(app: Flask, dash: Dashboard) -> None:
    def forced_now(cfg: Config) -> tuple[dict[str, Any], Access, M3Error | None, str | None]:
        """(forced values, access, problem, fetched_at): live from the server, else the last update's."""
        try:
            with dash.coordinator(cfg) as coord:
                forced = coord.forced()
                if forced.problem:
                    raise UsageError(_("forcedPrefs.json on the server cannot be read: {problem}").format(
                        problem=forced.problem), _("Fix or delete the file on the server."))
                access = dash.access.check(coord)
            return dict(forced.values), access, None, None
        except M3Error as err:
            values, fetched = forced_at_last_sync(record_meta(cfg))
            return values, dash.access.get(cfg), err, fetched or ""

    @app.get("/c/<int:cid>/settings")
    def settings_page(cid: int) -> ResponseReturnValue:
        cfg = dash.config(cid)
        forced, access, problem, fetched = forced_now(cfg)
        return render_template("settings.html", cfg=cfg, rows=rows(local_prefs(cfg), forced), access=access,
                               problem=problem, fetched=fetched, sections=SECTIONS,
                               coordinator=access.writable is True and problem is None)

    @app.post("/c/<int:cid>/settings")
    def settings_change(cid: int) -> ResponseReturnValue:
        cfg = dash.config(cid)
        key = request.form.get("key", "")
        action = request.form.get("action", "local")
        to = f"/c/{cid}/settings#row-{key.replace('.', '-')}"
        try:
            if key not in m3prefs.FORCABLE:
                raise UsageError(_("{key} is not a setting a congregation may force.").format(key=key),
                                 _("Reload the page."))
            text = request.form.get("value", "")
            value = None if text.strip() == "" else m3prefs.parse_pref_text(key, text)
            if action == "local":
                return set_local(cid, cfg, key, value, to)
            return set_forced(cid, cfg, key, value, action == "force", to)
        except ValueError as exc:
            return error_reply(UsageError(str(exc), _("Correct the value and try again.")), to=to)
        except M3Error as err:
            dash.note_refusal(cfg, err)
            return error_reply(err, to=to)
        except Exception as exc:  # noqa: BLE001
            return unexpected_reply(exc, to=to)

    def set_local(cid: int, cfg: Config, key: str, value: Any, to: str) -> ResponseReturnValue:
        forced, _access, _problem, _fetched = forced_now(cfg)
        if key in forced:
            raise LockedSettingError(
                _("{key} is set by the congregation coordinator and cannot be changed here.").format(key=key),
                _("Ask the coordinator to change it for the whole congregation."))
        prefs = dict(cfg.prefs)
        prefs.pop(key, None)
        if value is not None:
            prefs[key] = value
        save_config(replace(cfg, prefs=prefs))
        dash.host.replace_config(load_config(cfg.path))
        return reply(True, _("{setting} is now {value} on this computer.").format(
            setting=_(LABELS.get(key, key)), value=value_text(value) or _("not set")), to=to)

    def set_forced(cid: int, cfg: Config, key: str, value: Any, force: bool, to: str) -> ResponseReturnValue:
        from m3daemon.coordinator.forced import edit_forced, forcing, unforcing

        if force and value is None:
            raise UsageError(_("Give {key} a value before forcing it.").format(key=key),
                             _("A forced setting needs a value for every computer."))
        with dash.coordinator(cfg) as coord:
            change = edit_forced(coord.writer, forcing({key: value}) if force else unforcing([key]))
        for w in dict.fromkeys(change.warnings):
            note("warning", w)
        dash.host.update_now(str(cfg.path))  # this computer applies it now; the others at their next update
        if force:
            message = _("{setting} is now {value} on every computer of the congregation.").format(
                setting=_(LABELS.get(key, key)), value=value_text(value))
        else:
            message = _("{setting} is no longer forced; each computer uses its own value.").format(
                setting=_(LABELS.get(key, key)))
        return reply(True, message, to=to)
