"""M³ settings: the 49 forcable keys, forcedPrefs.json (current and legacy), and the local [prefs]."""

from __future__ import annotations

import json
from datetime import date, time
from typing import Any

import pytest

from m3daemon.core.prefs import (
    DEFAULTS,
    FORCABLE,
    ForcedPrefs,
    dump_forced_prefs,
    effective_prefs,
    flatten,
    locked_keys,
    migrate_legacy,
    migrate_legacy_key,
    nest,
    normalize_local_prefs,
    parse_forced_prefs,
    parse_pref_text,
    unknown_keys,
    validate_pref,
)

# Reference §3.2 (constants/prefs.ts FORCABLE at v24.4.1), written out so a change is deliberate.
REFERENCE_FORCABLE = {
    "app.congregationName", "app.outputFolderDateFormat",
    "app.obs.cameraScene", "app.obs.enable", "app.obs.imageScene", "app.obs.mediaScene",
    "app.obs.password", "app.obs.port",
    "app.zoom.autoRename", "app.zoom.autoStartMeeting", "app.zoom.autoStartTime", "app.zoom.enable",
    "app.zoom.hideComponent", "app.zoom.id", "app.zoom.name", "app.zoom.password", "app.zoom.spotlight",
    "media.autoPlayFirst", "media.autoPlayFirstTime",
    "media.enableMediaDisplayButton", "media.enableMp4Conversion", "media.enablePp", "media.enableSubtitles",
    "media.enableVlcPlaylistCreation",
    "media.excludeLffImages", "media.excludeTh", "media.hideMediaLogo", "media.hideWinAfterMedia",
    "media.includePrinted", "media.keepOriginalsAfterConversion",
    "media.lang", "media.langFallback", "media.langSubs",
    "media.maxRes", "media.ppBackward", "media.ppForward", "media.preferredOutput",
    "meeting.autoStartMusic", "meeting.coWeek", "meeting.enableMusicButton", "meeting.enableMusicFadeOut",
    "meeting.musicFadeOutTime", "meeting.musicFadeOutType", "meeting.musicVolume",
    "meeting.mwDay", "meeting.mwStartTime", "meeting.specialCong", "meeting.weDay", "meeting.weStartTime",
}


def test_exactly_the_49_keys_m3_allows_to_force() -> None:
    assert len(REFERENCE_FORCABLE) == 49
    assert set(FORCABLE) == REFERENCE_FORCABLE
    assert all(spec.key == key for key, spec in FORCABLE.items())


# --- one good and one bad value for every key ----------------------------------------------------

# (key, good value, normalized, bad value)
KEY_TYPES: list[tuple[str, Any, Any, Any]] = [
    ("app.congregationName", "Springfield North", "Springfield North", 42),
    ("app.outputFolderDateFormat", "DD-MM-YYYY - dddd", "DD-MM-YYYY - dddd", "MM/DD/YYYY"),
    ("app.obs.cameraScene", "Camera", "Camera", ["Camera"]),
    ("app.obs.enable", True, True, 1),
    ("app.obs.imageScene", "Image", "Image", False),
    ("app.obs.mediaScene", "Media", "Media", 3),
    ("app.obs.password", "s3cret", "s3cret", {"p": 1}),
    ("app.obs.port", "4455", "4455", "http"),
    ("app.zoom.autoRename", ["Kingdom Hall=KH"], ["Kingdom Hall=KH"], "Kingdom Hall=KH"),
    ("app.zoom.autoStartMeeting", False, False, "false"),
    ("app.zoom.autoStartTime", 3, 3, 11),
    ("app.zoom.enable", True, True, 0),
    ("app.zoom.hideComponent", False, False, "false"),
    ("app.zoom.id", "123 456 789", "123 456 789", 123456789),
    ("app.zoom.name", "KH Springfield", "KH Springfield", True),
    ("app.zoom.password", "abc", "abc", 1.5),
    ("app.zoom.spotlight", True, True, "yes"),
    ("media.autoPlayFirst", True, True, 1),
    ("media.autoPlayFirstTime", 15, 15, 16),
    ("media.enableMediaDisplayButton", True, True, "true"),
    ("media.enableMp4Conversion", False, False, 0),
    ("media.enablePp", True, True, [True]),
    ("media.enableSubtitles", False, False, "off"),
    ("media.enableVlcPlaylistCreation", True, True, 1.0),
    ("media.excludeLffImages", True, True, "1"),
    ("media.excludeTh", False, False, 0),
    ("media.hideMediaLogo", True, True, 1),
    ("media.hideWinAfterMedia", False, False, "no"),
    ("media.includePrinted", True, True, 1),
    ("media.keepOriginalsAfterConversion", False, False, 0),
    ("media.lang", "E", "E", "../E"),
    ("media.langFallback", "S", "S", ""),
    ("media.langSubs", "TPO", "TPO", "E F"),
    ("media.maxRes", "480p", "480p", "1080p"),
    ("media.ppBackward", "PageUp", "PageUp", 33),
    ("media.ppForward", "PageDown", "PageDown", 34),
    ("media.preferredOutput", "window", "window", True),
    ("meeting.autoStartMusic", True, True, "true"),
    ("meeting.coWeek", "2024-07-15", "2024-07-15", "2024-02-30"),
    ("meeting.enableMusicButton", True, True, 1),
    ("meeting.enableMusicFadeOut", False, False, 0),
    ("meeting.musicFadeOutTime", 35, 35, 7),
    ("meeting.musicFadeOutType", "timer", "timer", "fade"),
    ("meeting.musicVolume", 100, 100, 0),
    ("meeting.mwDay", 2, 2, 7),
    ("meeting.mwStartTime", "19:30", "19:30", "24:00"),
    ("meeting.specialCong", False, False, "false"),
    ("meeting.weDay", 6, 6, "6"),
    ("meeting.weStartTime", "10:00", "10:00", "10h00"),
]


def test_the_type_table_covers_every_forcable_key() -> None:
    assert sorted(row[0] for row in KEY_TYPES) == sorted(FORCABLE)
    assert list(FORCABLE) == sorted(FORCABLE)  # M³'s alphabetical FORCABLE order, used when writing


@pytest.mark.parametrize(("key", "good", "normalized"), [r[:3] for r in KEY_TYPES], ids=[r[0] for r in KEY_TYPES])
def test_a_good_value_is_accepted(key: str, good: Any, normalized: Any) -> None:
    assert validate_pref(key, good) == normalized
    assert FORCABLE[key].check(good) == normalized


@pytest.mark.parametrize(("key", "bad"), [(r[0], r[3]) for r in KEY_TYPES], ids=[r[0] for r in KEY_TYPES])
def test_a_bad_value_is_refused_naming_the_key_and_what_it_expects(key: str, bad: Any) -> None:
    with pytest.raises(ValueError) as info:
        validate_pref(key, bad)
    message = str(info.value)
    assert message.startswith(key)
    assert FORCABLE[key].kind in message


@pytest.mark.parametrize("key", sorted(FORCABLE))
def test_null_is_a_legal_forced_value_for_every_key(key: str) -> None:
    assert validate_pref(key, None) is None


RANGES = [
    ("weekday-monday", "meeting.mwDay", 0, 0),
    ("weekday-sunday", "meeting.weDay", 6, 6),
    ("weekday-as-json-float", "meeting.mwDay", 2.0, 2),
    ("time-midnight", "meeting.mwStartTime", "00:00", "00:00"),
    ("time-last-minute", "meeting.weStartTime", "23:59", "23:59"),
    ("time-one-digit-hour", "meeting.mwStartTime", "9:30", "09:30"),
    ("fade-out-min", "meeting.musicFadeOutTime", 5, 5),
    ("fade-out-max", "meeting.musicFadeOutTime", 60, 60),
    ("volume-min", "meeting.musicVolume", 1, 1),
    ("autoplay-min", "media.autoPlayFirstTime", 1, 1),
    ("zoom-autostart-max", "app.zoom.autoStartTime", 10, 10),
    ("obs-port-as-number", "app.obs.port", 4455, "4455"),
    ("obs-port-empty-is-unset", "app.obs.port", "", None),
    ("display-number", "media.preferredOutput", 2, 2),
    ("rename-list-empty", "app.zoom.autoRename", [], []),
    ("co-week-leap-day", "meeting.coWeek", "2024-02-29", "2024-02-29"),
    ("congregation-name-unicode", "app.congregationName", "Congrégation Saint-Éloi", "Congrégation Saint-Éloi"),
]


@pytest.mark.parametrize(("key", "value", "normalized"), [r[1:] for r in RANGES], ids=[r[0] for r in RANGES])
def test_range_edges_and_normalization(key: str, value: Any, normalized: Any) -> None:
    assert validate_pref(key, value) == normalized


OUT_OF_RANGE = [
    ("weekday-negative", "meeting.mwDay", -1),
    ("weekday-fraction", "meeting.mwDay", 2.5),
    ("weekday-bool", "meeting.weDay", True),
    ("time-hour-24", "meeting.mwStartTime", "24:00"),
    ("time-minute-60", "meeting.mwStartTime", "19:60"),
    ("time-no-colon", "meeting.mwStartTime", "1930"),
    ("time-with-seconds", "meeting.weStartTime", "10:00:00"),
    ("time-as-number", "meeting.weStartTime", 1000),
    ("time-am-pm", "meeting.weStartTime", "7:30 PM"),
    ("fade-out-zero", "meeting.musicFadeOutTime", 0),
    ("fade-out-not-multiple-of-5", "meeting.musicFadeOutTime", 62),
    ("fade-out-too-long", "meeting.musicFadeOutTime", 65),
    ("volume-101", "meeting.musicVolume", 101),
    ("autoplay-zero", "media.autoPlayFirstTime", 0),
    ("zoom-autostart-zero", "app.zoom.autoStartTime", 0),
    ("co-week-dmy", "meeting.coWeek", "15-07-2024"),
    ("co-week-short-month", "meeting.coWeek", "2024-7-15"),
    ("obs-port-zero", "app.obs.port", 0),
    ("obs-port-too-big", "app.obs.port", "70000"),
    ("rename-list-of-numbers", "app.zoom.autoRename", [1, 2]),
    ("lang-with-slash", "media.lang", "E/../../x"),
    ("lang-too-long", "media.lang", "E" * 17),
    ("max-res-case", "media.maxRes", "720P"),
    ("date-format-lowercase", "app.outputFolderDateFormat", "yyyy-mm-dd"),
    ("volume-infinite", "meeting.musicVolume", float("inf")),
]


@pytest.mark.parametrize(("key", "value"), [r[1:] for r in OUT_OF_RANGE], ids=[r[0] for r in OUT_OF_RANGE])
def test_out_of_range_values_are_refused(key: str, value: Any) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        validate_pref(key, value)


def test_an_unknown_key_is_refused() -> None:
    with pytest.raises(ValueError, match="cong.server"):
        validate_pref("cong.server", "example.org")


def test_the_ui_language_is_a_local_only_setting() -> None:
    assert validate_pref("app.localAppLang", "fr") == "fr"
    assert "app.localAppLang" not in FORCABLE
    with pytest.raises(ValueError):
        validate_pref("app.localAppLang", "../fr")


# --- what a person types on the command line -----------------------------------------------------

TYPED = [
    ("meeting.mwDay", "2", 2),
    ("meeting.mwDay", " 0 ", 0),
    ("meeting.mwDay", "null", None),
    ("media.enablePp", "true", True),
    ("media.enablePp", "False", False),
    ("media.enablePp", "yes", True),
    ("media.enablePp", "off", False),
    ("media.enablePp", "null", None),
    ("meeting.mwStartTime", "19:30", "19:30"),
    ("meeting.mwStartTime", "7:00", "07:00"),
    ("meeting.coWeek", "2024-07-15", "2024-07-15"),
    ("app.zoom.autoRename", '["a","b"]', ["a", "b"]),
    ("app.zoom.autoRename", "[]", []),
    ("app.congregationName", "Springfield North", "Springfield North"),
    ("app.congregationName", "123", "123"),
    ("app.congregationName", "true", "true"),
    ("app.congregationName", '"Quoted Name"', "Quoted Name"),
    ("media.lang", "E", "E"),
    ("media.maxRes", "360p", "360p"),
    ("app.obs.port", "4455", "4455"),
    ("media.preferredOutput", "window", "window"),
    ("media.preferredOutput", "2", 2),
    ("meeting.musicVolume", "80", 80),
    ("app.outputFolderDateFormat", "YYYY-MM-DD - dddd", "YYYY-MM-DD - dddd"),
    ("app.localAppLang", "de", "de"),
]


@pytest.mark.parametrize(
    ("key", "text", "expected"), TYPED, ids=[f"{k}={t.strip() or 'blank'}" for k, t, _v in TYPED]
)
def test_parse_pref_text(key: str, text: str, expected: Any) -> None:
    assert parse_pref_text(key, text) == expected


TYPED_WRONG = [
    ("meeting.mwDay", "Monday"),
    ("meeting.mwDay", "7"),
    ("media.enablePp", "1"),
    ("media.enablePp", "maybe"),
    ("meeting.mwStartTime", "7pm"),
    ("app.zoom.autoRename", "a,b"),
    ("media.maxRes", "1080p"),
    ("meeting.coWeek", "tomorrow"),
    ("cong.password", "hunter2"),
    ("no.such.key", "1"),
]


@pytest.mark.parametrize(("key", "text"), TYPED_WRONG, ids=[f"{k}={t}" for k, t in TYPED_WRONG])
def test_parse_pref_text_refuses_what_does_not_fit(key: str, text: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        parse_pref_text(key, text)


# --- legacy flat forcedPrefs.json (JWMMF ≤ 22.7) -------------------------------------------------

LEGACY_KEYS = [
    # (flat key, value, dotted key after migrate2290, value after)
    ("lang", "E", "media.lang", "E"),
    ("mwDay", 2, "meeting.mwDay", 2),
    ("mwDay", "2", "meeting.mwDay", 2),
    ("weDay", "6", "meeting.weDay", 6),
    ("weDay", "abc", "meeting.weDay", None),
    ("mwStartTime", "19:30", "meeting.mwStartTime", "19:30"),
    ("weStartTime", "10:00", "meeting.weStartTime", "10:00"),
    ("maxRes", "720p", "media.maxRes", "720p"),
    ("maxRes", "1080p", "media.maxRes", "720p"),
    ("maxRes", None, "media.maxRes", "720p"),
    ("musicVolume", "80", "meeting.musicVolume", 80),
    ("musicFadeOutTime", "10", "meeting.musicFadeOutTime", 10),
    ("musicFadeOutType", "smart", "meeting.musicFadeOutType", "smart"),
    ("musicFadeOutType", "fade", "meeting.musicFadeOutType", "smart"),
    ("enableMusicButton", True, "meeting.enableMusicButton", True),
    ("enableMusicButton", None, "meeting.enableMusicButton", False),
    ("enableMusicFadeOut", True, "meeting.enableMusicFadeOut", True),
    ("specialCong", None, "meeting.specialCong", False),
    ("excludeTh", True, "media.excludeTh", True),
    ("enableMp4Conversion", True, "media.enableMp4Conversion", True),
    ("keepOriginalsAfterConversion", True, "media.keepOriginalsAfterConversion", True),
    ("enableVlcPlaylistCreation", None, "media.enableVlcPlaylistCreation", False),
    ("enableMediaDisplayButton", True, "media.enableMediaDisplayButton", True),
    ("hideMediaLogo", True, "media.hideMediaLogo", True),
    ("preferredOutput", "window", "media.preferredOutput", "window"),
    ("preferredOutput", "screen 2", "media.preferredOutput", "window"),
    ("preferredOutput", 2, "media.preferredOutput", 2),
    ("ppEnable", True, "media.enablePp", True),
    ("ppForward", "PageDown", "media.ppForward", "PageDown"),
    ("enableObs", True, "app.obs.enable", True),
    ("enableObs", None, "app.obs.enable", False),
    ("obsPort", "4455", "app.obs.port", "4455"),
    ("obsPassword", "pw", "app.obs.password", "pw"),
    ("obsMediaScene", "Media", "app.obs.mediaScene", "Media"),
    ("obsCameraScene", "Camera", "app.obs.cameraScene", "Camera"),
    ("congregationName", "Springfield", "app.congregationName", "Springfield"),
    ("outputFolderDateFormat", "DD-MM-YYYY", "app.outputFolderDateFormat", "DD-MM-YYYY"),
    ("outputFolderDateFormat", "D/M/Y", "app.outputFolderDateFormat", "YYYY-MM-DD"),
    ("localOutputPath", "C:\\M3", "app.localOutputPath", "C:\\M3"),
    ("localAppLang", "fr", "app.localAppLang", "fr"),
    ("autoStartSync", True, "app.autoStartSync", True),
    ("theme", "neon", "app.theme", "system"),
    ("congServer", "dav.example.org", "cong.server", "dav.example.org"),
    ("congServerPort", 443, "cong.port", "443"),
    ("congServerUser", "vo", "cong.user", "vo"),
    ("congServerPass", "pw", "cong.password", "pw"),
    ("congServerDir", "/dav/Cong", "cong.dir", "/dav/Cong"),
    ("excludeLffi", True, "media.excludeLffi", True),
    ("excludeLffiImages", True, "media.excludeLffiImages", True),
]


@pytest.mark.parametrize(
    ("flat_key", "value", "dotted", "expected"),
    LEGACY_KEYS,
    ids=[f"{r[0]}={json.dumps(r[1])}" for r in LEGACY_KEYS],
)
def test_migrate2290_key_mapping(flat_key: str, value: Any, dotted: str, expected: Any) -> None:
    assert migrate_legacy_key(flat_key, value) == (dotted, expected)


def test_a_legacy_flat_file_becomes_nested() -> None:
    legacy = {"lang": "E", "mwDay": 2, "weDay": 6, "maxRes": "720p"}
    assert migrate_legacy(legacy) == {
        "media": {"lang": "E", "maxRes": "720p"},
        "meeting": {"mwDay": 2, "weDay": 6},
    }
    assert legacy == {"lang": "E", "mwDay": 2, "weDay": 6, "maxRes": "720p"}  # input untouched


def test_legacy_lff_keys_are_dropped_or_renamed() -> None:
    assert migrate_legacy({"excludeLffi": True, "excludeLffiImages": True}) == {
        "media": {"excludeLffImages": True}
    }
    assert migrate_legacy({"media": {"excludeLffi": False, "excludeLffiImages": False, "lang": "F"}}) == {
        "media": {"excludeLffImages": False, "lang": "F"}
    }


def test_a_flat_key_overrides_the_nested_one_as_in_m3() -> None:
    assert migrate_legacy({"meeting": {"mwDay": 1, "weDay": 5}, "mwDay": "3"}) == {
        "meeting": {"mwDay": 3, "weDay": 5}
    }


def test_a_nested_file_is_left_as_it_is() -> None:
    nested = {"app": {"obs": {"enable": False}}, "meeting": {"coWeek": None}, "__internal__": {"x": 1}}
    assert migrate_legacy(nested) == nested


# --- reading forcedPrefs.json --------------------------------------------------------------------


def test_the_legacy_example_is_applied() -> None:
    forced = parse_forced_prefs('{"lang": "E", "mwDay": 2, "weDay": 6, "maxRes": "720p"}')
    assert forced == ForcedPrefs(
        {"media.lang": "E", "meeting.mwDay": 2, "meeting.weDay": 6, "media.maxRes": "720p"}, []
    )


def test_a_full_legacy_file_from_jwmmf() -> None:
    text = json.dumps({
        "lang": "F", "mwDay": "1", "weDay": "6", "mwStartTime": "19:00", "weStartTime": "10:00",
        "maxRes": "480p", "enableMusicButton": True, "musicVolume": "70", "enableObs": None,
        "obsPort": "4455", "congServer": "dav.example.org", "congServerPass": "pw",
        "localOutputPath": "C:\\JWMMF", "excludeLffi": True, "excludeLffiImages": True,
    })
    forced = parse_forced_prefs(text)
    assert forced.values == {
        "media.lang": "F", "meeting.mwDay": 1, "meeting.weDay": 6, "meeting.mwStartTime": "19:00",
        "meeting.weStartTime": "10:00", "media.maxRes": "480p", "meeting.enableMusicButton": True,
        "meeting.musicVolume": 70, "app.obs.enable": False, "app.obs.port": "4455",
        "media.excludeLffImages": True,
    }
    assert {key for key, _reason in forced.ignored} == {"cong.server", "cong.password", "app.localOutputPath"}


def test_a_current_nested_file() -> None:
    text = """{
      "app": { "outputFolderDateFormat": "YYYY-MM-DD - dddd", "obs": { "enable": false, "port": "4455" },
               "zoom": { "autoRename": ["A=B"], "autoStartTime": 3 } },
      "media": { "lang": "E", "maxRes": "720p", "enableSubtitles": false },
      "meeting": { "mwDay": 2, "mwStartTime": "19:00", "weDay": 6, "weStartTime": "10:00", "coWeek": null }
    }"""
    forced = parse_forced_prefs(text)
    assert forced.ignored == []
    assert forced.values == {
        "app.outputFolderDateFormat": "YYYY-MM-DD - dddd", "app.obs.enable": False, "app.obs.port": "4455",
        "app.zoom.autoRename": ["A=B"], "app.zoom.autoStartTime": 3,
        "media.lang": "E", "media.maxRes": "720p", "media.enableSubtitles": False,
        "meeting.mwDay": 2, "meeting.mwStartTime": "19:00", "meeting.weDay": 6, "meeting.weStartTime": "10:00",
        "meeting.coWeek": None,
    }
    assert forced.locked == frozenset(forced.values)


DISALLOWED = [
    ("app-local-output-path", '{"app": {"localOutputPath": "/home/x"}}', "app.localOutputPath"),
    ("cong-server", '{"cong": {"server": "evil.example"}}', "cong.server"),
    ("cong-dir", '{"cong": {"dir": "/elsewhere"}}', "cong.dir"),
    ("app-offline", '{"app": {"offline": true}}', "app.offline"),
    ("app-theme", '{"app": {"theme": "dark"}}', "app.theme"),
    ("media-exclude-footnotes", '{"media": {"excludeFootnotes": true}}', "media.excludeFootnotes"),
    ("shortcut", '{"media": {"mediaWinShortcut": "Alt+Z"}}', "media.mediaWinShortcut"),
    ("obs-use-v4", '{"app": {"obs": {"useV4": true}}}', "app.obs.useV4"),
    ("unknown-root-is-a-legacy-flat-key", '{"cloud": {"x": 1}}', "app.cloud"),
    ("electron-store-internal", '{"__internal__": {"migrations": {"version": "24.4.1"}}}', "__internal__.migrations"),
    ("app-obs-not-an-object", '{"app": {"obs": null}}', "app.obs"),
    ("root-not-an-object", '{"meeting": 5}', "meeting"),
]


@pytest.mark.parametrize(("text", "key"), [r[1:] for r in DISALLOWED], ids=[r[0] for r in DISALLOWED])
def test_keys_that_may_not_be_forced_are_ignored_with_a_reason(text: str, key: str) -> None:
    forced = parse_forced_prefs(text)
    assert forced.values == {}
    assert [k for k, _r in forced.ignored] == [key]
    assert "force" in forced.ignored[0][1]


INVALID_VALUES = [
    ("mwday-out-of-range", '{"meeting": {"mwDay": 7}}', "meeting.mwDay"),
    ("mwday-as-text", '{"meeting": {"mwDay": "2"}}', "meeting.mwDay"),
    ("boolean-as-number", '{"media": {"enablePp": 1}}', "media.enablePp"),
    ("time-bad", '{"meeting": {"weStartTime": "25:00"}}', "meeting.weStartTime"),
    ("co-week-bad", '{"meeting": {"coWeek": "next week"}}', "meeting.coWeek"),
    ("date-format-unknown", '{"app": {"outputFolderDateFormat": "MM/DD"}}', "app.outputFolderDateFormat"),
    ("value-is-an-object", '{"meeting": {"mwDay": {"day": 2}}}', "meeting.mwDay"),
    ("rename-not-a-list", '{"app": {"zoom": {"autoRename": "A=B"}}}', "app.zoom.autoRename"),
    ("lang-path-like", '{"media": {"lang": "../../etc"}}', "media.lang"),
]


@pytest.mark.parametrize(("text", "key"), [r[1:] for r in INVALID_VALUES], ids=[r[0] for r in INVALID_VALUES])
def test_invalid_values_are_ignored_with_the_expected_type(text: str, key: str) -> None:
    forced = parse_forced_prefs(text)
    assert forced.values == {}
    assert len(forced.ignored) == 1
    ignored_key, reason = forced.ignored[0]
    assert ignored_key == key
    assert FORCABLE[key].kind in reason


def test_good_keys_survive_next_to_bad_ones() -> None:
    forced = parse_forced_prefs('{"meeting": {"mwDay": 9, "weDay": 6}, "cong": {"user": "x"}}')
    assert forced.values == {"meeting.weDay": 6}
    assert [k for k, _r in forced.ignored] == ["meeting.mwDay", "cong.user"]


@pytest.mark.parametrize("text", ["", "   \n", "{}", "\ufeff{}", '{"app": {}, "media": {}}'],
                         ids=["empty", "blank", "empty-object", "bom", "empty-sections"])
def test_nothing_forced(text: str) -> None:
    assert parse_forced_prefs(text) == ForcedPrefs({}, [])


def test_a_bom_from_a_windows_editor_is_accepted() -> None:
    assert parse_forced_prefs('\ufeff{"meeting": {"weDay": 5}}').values == {"meeting.weDay": 5}


@pytest.mark.parametrize(
    "text",
    ["{", "{'meeting': 1}", "[]", '"text"', "3", "null", "true", '{"a": 1} trailing', "[" * 100000],
    ids=["truncated", "single-quotes", "array", "string", "number", "null", "true", "trailing-garbage", "deep"],
)
def test_malformed_json_or_a_non_object_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="forcedPrefs.json"):
        parse_forced_prefs(text)


# --- writing forcedPrefs.json --------------------------------------------------------------------


def test_dump_nothing_forced_is_an_empty_object() -> None:
    assert dump_forced_prefs({}) == "{}\n"


def test_dump_is_nested_2_space_json_in_m3_order() -> None:
    text = dump_forced_prefs({
        "meeting.weDay": 6, "media.lang": "E", "meeting.mwDay": 2, "app.obs.enable": False,
        "app.outputFolderDateFormat": "YYYY-MM-DD", "meeting.coWeek": None,
    })
    assert text == (
        "{\n"
        '  "app": {\n'
        '    "obs": {\n'
        '      "enable": false\n'
        "    },\n"
        '    "outputFolderDateFormat": "YYYY-MM-DD"\n'
        "  },\n"
        '  "media": {\n'
        '    "lang": "E"\n'
        "  },\n"
        '  "meeting": {\n'
        '    "coWeek": null,\n'
        '    "mwDay": 2,\n'
        '    "weDay": 6\n'
        "  }\n"
        "}\n"
    )


def test_dump_keeps_text_readable() -> None:
    assert '"Congrégation Saint-Éloi"' in dump_forced_prefs({"app.congregationName": "Congrégation Saint-Éloi"})


ROUND_TRIP_VALUES: dict[str, Any] = {
    "app.congregationName": "Springfield North",
    "app.outputFolderDateFormat": "DD-MM-YYYY - dddd",
    "app.obs.enable": True,
    "app.obs.port": "4455",
    "app.obs.cameraScene": None,
    "app.zoom.autoRename": ["Kingdom Hall=KH", "Zoom user=Smith"],
    "app.zoom.autoStartTime": 5,
    "media.lang": "E",
    "media.maxRes": "360p",
    "media.preferredOutput": 1,
    "meeting.coWeek": "2024-07-15",
    "meeting.musicFadeOutTime": 10,
    "meeting.mwDay": 1,
    "meeting.mwStartTime": "19:15",
    "meeting.weDay": 6,
    "meeting.weStartTime": None,
}


def test_dump_then_parse_gives_the_same_values() -> None:
    forced = parse_forced_prefs(dump_forced_prefs(ROUND_TRIP_VALUES))
    assert forced.ignored == []
    assert forced.values == ROUND_TRIP_VALUES


def test_every_forcable_key_survives_a_round_trip() -> None:
    values = {key: good for key, good, _n, _b in KEY_TYPES}
    assert parse_forced_prefs(dump_forced_prefs(values)).values == values


@pytest.mark.parametrize(
    "values",
    [{"cong.server": "x"}, {"app.localOutputPath": "/x"}, {"meeting.mwDay": 8}, {"media.enablePp": "yes"}],
    ids=["cong-server", "local-output-path", "bad-day", "bad-boolean"],
)
def test_dump_refuses_what_clients_would_ignore(values: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        dump_forced_prefs(values)


# --- nested <-> dotted ---------------------------------------------------------------------------


def test_flatten_unfolds_roots_and_obs_zoom_only() -> None:
    nested = {
        "app": {"congregationName": "X", "obs": {"port": "1"}, "zoom": {"autoRename": ["a=b"]}},
        "meeting": {"mwDay": {"nested": 1}},
        "lang": "E",
    }
    assert flatten(nested) == {
        "app.congregationName": "X",
        "app.obs.port": "1",
        "app.zoom.autoRename": ["a=b"],
        "meeting.mwDay": {"nested": 1},
        "lang": "E",
    }


def test_nest_is_the_inverse_of_flatten() -> None:
    nested = {"app": {"obs": {"enable": True}, "congregationName": "X"}, "meeting": {"mwDay": 2}}
    assert nest(flatten(nested)) == nested


def test_nest_refuses_a_key_that_is_both_value_and_section() -> None:
    with pytest.raises(ValueError, match="app.obs"):
        nest({"app.obs": True, "app.obs.port": "1"})
    with pytest.raises(ValueError, match="app.obs"):
        nest({"app.obs.port": "1", "app.obs": True})


# --- the local [prefs] table ---------------------------------------------------------------------

LOCAL_TABLES = [
    ("quoted-dotted-keys", {"meeting.mwDay": 1, "meeting.mwStartTime": "19:00"},
     {"meeting.mwDay": 1, "meeting.mwStartTime": "19:00"}),
    ("nested-tables", {"meeting": {"mwDay": 1, "weDay": 6}}, {"meeting.mwDay": 1, "meeting.weDay": 6}),
    ("mixed", {"meeting.mwDay": 1, "meeting": {"weDay": 6}}, {"meeting.mwDay": 1, "meeting.weDay": 6}),
    ("obs-table", {"app": {"obs": {"port": 4455}}}, {"app.obs.port": "4455"}),
    ("dotted-inside-table", {"app": {"obs.enable": True}}, {"app.obs.enable": True}),
    ("list-value", {"app": {"zoom": {"autoRename": ["a=b"]}}}, {"app.zoom.autoRename": ["a=b"]}),
    ("toml-unquoted-time", {"meeting": {"weStartTime": time(10, 0)}}, {"meeting.weStartTime": "10:00"}),
    ("toml-unquoted-date", {"meeting": {"coWeek": date(2024, 7, 15)}}, {"meeting.coWeek": "2024-07-15"}),
    ("ui-language", {"app": {"localAppLang": "fr"}}, {"app.localAppLang": "fr"}),
    ("empty", {}, {}),
    ("empty-table", {"meeting": {}}, {}),
]


@pytest.mark.parametrize(("raw", "expected"), [r[1:] for r in LOCAL_TABLES], ids=[r[0] for r in LOCAL_TABLES])
def test_local_prefs_accept_dotted_keys_and_tables(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    assert normalize_local_prefs(raw) == (expected, [])


def test_unknown_local_keys_are_kept_and_reported() -> None:
    values, problems = normalize_local_prefs({"meeting": {"mwDay": 2, "mwDy": 3}, "app.theme": "dark"})
    assert values == {"meeting.mwDay": 2, "meeting.mwDy": 3, "app.theme": "dark"}
    assert len(problems) == 2
    assert any("meeting.mwDy" in p for p in problems) and any("app.theme" in p for p in problems)
    assert unknown_keys(values) == ["app.theme", "meeting.mwDy"]


def test_a_bad_local_value_is_left_out_and_reported() -> None:
    values, problems = normalize_local_prefs({"meeting": {"mwDay": 9, "weDay": 6}})
    assert values == {"meeting.weDay": 6}
    assert len(problems) == 1
    assert "meeting.mwDay" in problems[0] and FORCABLE["meeting.mwDay"].kind in problems[0]


def test_a_key_given_twice_keeps_the_first_and_is_reported() -> None:
    values, problems = normalize_local_prefs({"meeting.mwDay": 1, "meeting": {"mwDay": 2}})
    assert values == {"meeting.mwDay": 1}
    assert len(problems) == 1 and "meeting.mwDay" in problems[0]


# --- effective settings and locks ----------------------------------------------------------------


def test_defaults_for_the_meeting_keys() -> None:
    assert dict(DEFAULTS) == {
        "app.localAppLang": None,
        "app.outputFolderDateFormat": "YYYY-MM-DD",
        "media.lang": "E",
        "meeting.coWeek": None,
        "meeting.mwDay": None,
        "meeting.mwStartTime": None,
        "meeting.weDay": None,
        "meeting.weStartTime": None,
    }


EFFECTIVE = [
    ("defaults-only", {}, {}, "meeting.mwDay", None),
    ("default-format", {}, {}, "app.outputFolderDateFormat", "YYYY-MM-DD"),
    ("local-over-default", {"meeting.mwDay": 1}, {}, "meeting.mwDay", 1),
    ("forced-over-local", {"meeting.mwDay": 1}, {"meeting.mwDay": 3}, "meeting.mwDay", 3),
    ("forced-null-wins", {"meeting.mwDay": 1}, {"meeting.mwDay": None}, "meeting.mwDay", None),
    ("unforced-key-stays-local", {"media.lang": "F"}, {"meeting.mwDay": 3}, "media.lang", "F"),
    ("local-only-key-cannot-be-forced", {"app.localAppLang": "fr"}, {"app.localAppLang": "de"},
     "app.localAppLang", "fr"),
]


@pytest.mark.parametrize(
    ("local", "forced", "key", "expected"), [r[1:] for r in EFFECTIVE], ids=[r[0] for r in EFFECTIVE]
)
def test_effective_prefs(local: dict[str, Any], forced: dict[str, Any], key: str, expected: Any) -> None:
    assert effective_prefs(local, forced)[key] == expected


def test_a_non_forcable_key_in_forced_is_not_applied() -> None:
    assert "cong.server" not in effective_prefs({}, {"cong.server": "evil.example"})


def test_locked_keys_include_forced_nulls_and_only_forcable_keys() -> None:
    forced = {"meeting.mwDay": 2, "meeting.coWeek": None, "cong.server": "x", "app.localAppLang": "fr"}
    assert locked_keys(forced) == frozenset({"meeting.mwDay", "meeting.coWeek"})
    assert locked_keys({}) == frozenset()
