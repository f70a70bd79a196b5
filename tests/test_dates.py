"""Date folder names: what M³ clients write, and what m3daemon reads and writes back."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from m3daemon.core.dates import (
    DATE_FORMATS,
    DEFAULT_DATE_FORMAT,
    WEEKDAY_NAMES,
    format_folder_date,
    parse_folder_date,
    parse_user_date,
    validate_date_format,
    weekday_name_for,
)

WED = date(2024, 7, 17)  # a Wednesday


def test_the_four_formats_are_m3s_enum_in_m3s_order() -> None:
    assert DATE_FORMATS == ("YYYY-MM-DD", "YYYY-MM-DD - dddd", "DD-MM-YYYY", "DD-MM-YYYY - dddd")
    assert DEFAULT_DATE_FORMAT == "YYYY-MM-DD"


# --- reading folder names ------------------------------------------------------------------------

READ_ALL_FOUR = [
    ("2024-07-17", WED, "YYYY-MM-DD"),
    ("2024-07-17 - Wednesday", WED, "YYYY-MM-DD - dddd"),
    ("17-07-2024", WED, "DD-MM-YYYY"),
    ("17-07-2024 - Wednesday", WED, "DD-MM-YYYY - dddd"),
    ("2024-02-29", date(2024, 2, 29), "YYYY-MM-DD"),
    ("31-12-2024", date(2024, 12, 31), "DD-MM-YYYY"),
    ("01-01-2025 - mercredi", date(2025, 1, 1), "DD-MM-YYYY - dddd"),
]


@pytest.mark.parametrize(
    ("name", "expected_date", "expected_format"),
    READ_ALL_FOUR,
    ids=[row[0] for row in READ_ALL_FOUR],
)
def test_every_format_is_read_whatever_the_congregation_uses(
    name: str, expected_date: date, expected_format: str
) -> None:
    assert parse_folder_date(name) == (expected_date, expected_format)


WEEKDAYS_IN_MANY_LANGUAGES = [
    ("english", "Wednesday"),
    ("french", "mercredi"),
    ("german", "Mittwoch"),
    ("spanish", "miércoles"),
    ("italian", "mercoledì"),
    ("portuguese", "quarta-feira"),
    ("portuguese-old-dayjs", "Quarta-feira"),
    ("dutch", "woensdag"),
    ("russian", "среда"),
    ("russian-capitalised", "Среда"),
    ("polish", "środa"),
    ("romanian", "Miercuri"),
    ("ukrainian", "середа"),
    ("swedish", "onsdag"),
    ("finnish", "keskiviikko"),
    ("estonian", "kolmapäev"),
    ("hungarian", "szerda"),
    ("japanese", "水曜日"),
    ("korean", "수요일"),
    ("chinese", "星期三"),
    ("greek", "Τετάρτη"),
    ("arabic", "الأربعاء"),
    ("hebrew", "יום רביעי"),
    ("two-words", "Dia de reunião"),
]


@pytest.mark.parametrize(("language", "weekday"), WEEKDAYS_IN_MANY_LANGUAGES, ids=[r[0] for r in WEEKDAYS_IN_MANY_LANGUAGES])
@pytest.mark.parametrize(("head", "fmt"), [("2024-07-17", "YYYY-MM-DD - dddd"), ("17-07-2024", "DD-MM-YYYY - dddd")], ids=["iso", "dmy"])
def test_the_weekday_may_be_in_any_language(language: str, weekday: str, head: str, fmt: str) -> None:
    assert parse_folder_date(f"{head} - {weekday}") == (WED, fmt)


def test_the_date_decides_not_the_weekday_text() -> None:
    # A client whose clock or locale disagreed still named 17 July; the text is not checked.
    assert parse_folder_date("2024-07-17 - Monday") == (WED, "YYYY-MM-DD - dddd")


NOT_DATE_FOLDERS = [
    ("recurring", "Recurring"),
    ("empty", ""),
    ("impossible-february-30", "2024-02-30"),
    ("not-a-leap-year", "2023-02-29"),
    ("month-13", "2024-13-01"),
    ("day-zero", "2024-07-00"),
    ("dmy-impossible", "30-02-2024"),
    ("us-order", "07-17-2024"),
    ("trailing-letter", "2024-07-17x"),
    ("single-digit-month", "2024-7-17"),
    ("single-digit-day", "2024-07-7"),
    ("two-digit-year", "24-07-17"),
    ("slashes", "2024/07/17"),
    ("dots", "17.07.2024"),
    ("iso-datetime", "2024-07-17T19:00"),
    ("trailing-newline", "2024-07-17\n"),
    ("leading-space", " 2024-07-17"),
    ("trailing-space", "2024-07-17 "),
    ("arabic-indic-digits", "٢٠٢٤-٠٧-١٧"),
    ("fullwidth-digits", "２０２４-０７-１７"),
    ("weekday-missing", "2024-07-17 - "),
    ("dash-without-weekday", "2024-07-17 -"),
    ("no-spaces-around-dash", "2024-07-17-Wednesday"),
    ("double-space-before-weekday", "2024-07-17 -  Wednesday"),
    ("space-after-weekday", "2024-07-17 - Wednesday "),
    ("weekday-with-slash", "2024-07-17 - Wed/nesday"),
    ("weekday-with-backslash", "2024-07-17 - Wed\\nesday"),
    ("weekday-with-nul", "2024-07-17 - Wed\x00"),
    ("weekday-with-tab", "2024-07-17 - Wed\tnesday"),
    ("weekday-with-newline", "2024-07-17 - Wednesday\n"),
    ("weekday-with-c1-control", "2024-07-17 - Wed\x85"),
    ("weekday-with-lone-surrogate", "2024-07-17 - Wed\udc80"),
    ("weekday-without-letters", "2024-07-17 - 123"),
    ("weekday-first", "Wednesday - 2024-07-17"),
]


@pytest.mark.parametrize("name", [r[1] for r in NOT_DATE_FOLDERS], ids=[r[0] for r in NOT_DATE_FOLDERS])
def test_anything_else_is_not_a_date_folder(name: str) -> None:
    assert parse_folder_date(name) is None


# --- writing folder names ------------------------------------------------------------------------

FORMATTING = [
    ("iso", "YYYY-MM-DD", None, "2024-07-17"),
    ("iso-weekday-default-english", "YYYY-MM-DD - dddd", None, "2024-07-17 - Wednesday"),
    ("iso-weekday-french", "YYYY-MM-DD - dddd", "mercredi", "2024-07-17 - mercredi"),
    ("dmy", "DD-MM-YYYY", None, "17-07-2024"),
    ("dmy-weekday-default-english", "DD-MM-YYYY - dddd", None, "17-07-2024 - Wednesday"),
    ("dmy-weekday-japanese", "DD-MM-YYYY - dddd", "水曜日", "17-07-2024 - 水曜日"),
    ("weekday-ignored-without-dddd", "YYYY-MM-DD", "mercredi", "2024-07-17"),
]


@pytest.mark.parametrize(("fmt", "weekday", "expected"), [r[1:] for r in FORMATTING], ids=[r[0] for r in FORMATTING])
def test_format_folder_date(fmt: str, weekday: str | None, expected: str) -> None:
    assert format_folder_date(WED, fmt, weekday) == expected


def test_years_and_days_are_zero_padded() -> None:
    assert format_folder_date(date(987, 1, 2), "YYYY-MM-DD") == "0987-01-02"
    assert format_folder_date(date(987, 1, 2), "DD-MM-YYYY") == "02-01-0987"


@pytest.mark.parametrize("fmt", DATE_FORMATS)
@pytest.mark.parametrize("lang", sorted(WEEKDAY_NAMES))
def test_what_we_write_we_read_back(fmt: str, lang: str) -> None:
    for offset in range(7):
        d = date(2024, 12, 30) + timedelta(days=offset)  # a week across the year end
        name = format_folder_date(d, fmt, weekday_name_for(d, lang))
        assert parse_folder_date(name) == (d, fmt)


@pytest.mark.parametrize("bad_weekday", ["", "a/b", "x\n", " lundi"], ids=["empty", "slash", "newline", "edge-space"])
def test_an_unusable_weekday_name_is_refused(bad_weekday: str) -> None:
    with pytest.raises(ValueError):
        format_folder_date(WED, "YYYY-MM-DD - dddd", bad_weekday)


def test_an_unknown_format_is_refused_when_writing() -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        format_folder_date(WED, "MM/DD/YYYY")


# --- weekday names as dayjs writes them ----------------------------------------------------------

WEEKDAY_FOR_LANGUAGE = [
    ("en", "Wednesday"),
    ("fr", "mercredi"),
    ("fr-FR", "mercredi"),
    ("fr_CA", "mercredi"),
    ("de", "Mittwoch"),
    ("es", "miércoles"),
    ("it", "mercoledì"),
    ("pt", "quarta-feira"),
    ("pt-BR", "quarta-feira"),
    ("pt-pt", "quarta-feira"),
    ("nl", "woensdag"),
    ("ru", "среда"),
    ("pl", "środa"),
    ("ro", "Miercuri"),
    ("uk", "середа"),
    ("sv", "onsdag"),
    ("fi", "keskiviikko"),
    ("da", "onsdag"),
    ("et", "kolmapäev"),
    ("hu", "szerda"),
    ("ja", "水曜日"),
    ("ko", "수요일"),
    ("zh-CN", "星期三"),
    ("zh_TW", "星期三"),
    ("xx", "Wednesday"),
    ("", "Wednesday"),
]


@pytest.mark.parametrize(("lang", "expected"), WEEKDAY_FOR_LANGUAGE, ids=[r[0] or "empty" for r in WEEKDAY_FOR_LANGUAGE])
def test_weekday_name_for_a_ui_language(lang: str, expected: str) -> None:
    assert weekday_name_for(WED, lang) == expected


def test_tables_are_monday_first_with_seven_distinct_names() -> None:
    for lang, names in WEEKDAY_NAMES.items():
        assert len(set(names)) == 7, lang
    assert WEEKDAY_NAMES["en"][0] == "Monday"
    assert weekday_name_for(date(2024, 7, 15), "fr") == "lundi"
    assert weekday_name_for(date(2024, 7, 21), "de") == "Sonntag"


# --- the setting and the command line ------------------------------------------------------------


@pytest.mark.parametrize("fmt", DATE_FORMATS)
def test_every_allowed_date_format_validates(fmt: str) -> None:
    assert validate_date_format(fmt) == fmt


@pytest.mark.parametrize("fmt", ["", "yyyy-mm-dd", "YYYY-MM-DD ", "MM-DD-YYYY", "YYYY/MM/DD"])
def test_other_date_formats_are_refused_with_the_allowed_list(fmt: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_date_format(fmt)
    for allowed in DATE_FORMATS:
        assert allowed in str(info.value)


TODAY = date(2024, 12, 31)

USER_DATES = [
    ("2024-07-17", WED),
    ("  2025-01-05 ", date(2025, 1, 5)),
    ("today", TODAY),
    ("Today", TODAY),
    ("tomorrow", date(2025, 1, 1)),
    (" TOMORROW ", date(2025, 1, 1)),
]


@pytest.mark.parametrize(("text", "expected"), USER_DATES, ids=[r[0].strip() for r in USER_DATES])
def test_parse_user_date(text: str, expected: date) -> None:
    assert parse_user_date(text, TODAY) == expected


BAD_USER_DATES = ["", "17-07-2024", "2024-7-17", "2024-02-30", "yesterday", "next week", "2024-07-17 - Wednesday"]


@pytest.mark.parametrize("text", BAD_USER_DATES, ids=[t or "empty" for t in BAD_USER_DATES])
def test_a_bad_user_date_names_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_user_date(text, TODAY)
