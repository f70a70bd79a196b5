"""Remote names: which ones may become a local file name, and why the others may not."""

from __future__ import annotations

import pytest

from m3daemon.core.names import MAX_NAME_BYTES, check_name, is_safe_name, name_problem
from m3daemon.errors import ExitCode, UsageError

SAFE_NAMES = [
    ("m3-order-prefix", "01-05 - Talk outline.jpg"),
    ("m3-upload-without-prefix", "- photo.jpg"),
    ("m25-section-prefix", "Section-pt - Public talk.mp4"),
    ("plain", "yeartext.mp4"),
    ("accents", "Cantique 151 - café.mp3"),
    ("japanese", "水曜日の集会.jpg"),
    ("emoji", "🎵 song.mp3"),
    ("dots-inside", "v1.2 final..png"),
    ("starts-with-con-but-longer", "CONSOLE.txt"),
    ("com-with-two-digits", "COM10.txt"),
    ("lpt-without-digit", "LPT.txt"),
    ("nul-inside-word", "NULL.png"),
    ("dash-first", "-x.jpg"),
    ("exactly-200-bytes", "a" * 196 + ".jpg"),
    ("exactly-200-bytes-multibyte", "é" * 98 + ".jpg"),
    ("inner-spaces", "a  b.jpg"),
]


@pytest.mark.parametrize("name", [r[1] for r in SAFE_NAMES], ids=[r[0] for r in SAFE_NAMES])
def test_names_m3_and_people_use_are_accepted(name: str) -> None:
    assert name_problem(name) is None
    assert is_safe_name(name)
    assert check_name(name) == name


# (id, name, a word the reason must contain)
HOSTILE_NAMES = [
    # empty and relative
    ("empty", "", "empty"),
    ("dot", ".", "'.'"),
    ("dot-dot", "..", "'.'"),
    # separators
    ("slash", "a/b.jpg", "slash"),
    ("parent-traversal", "../etc/passwd", "slash"),
    ("absolute", "/etc/passwd", "slash"),
    ("backslash", "a\\b.jpg", "slash"),
    ("windows-traversal", "..\\..\\boot.ini", "slash"),
    # control characters: C0, DEL, C1
    ("nul-alone", "\x00", "control"),
    ("nul-inside", "a\x00b.jpg", "control"),
    ("tab", "a\tb.jpg", "control"),
    ("newline", "a\nb.jpg", "control"),
    ("carriage-return", "a.jpg\r", "control"),
    ("escape-sequence", "\x1b[31mred.jpg", "control"),
    ("del", "a\x7f.jpg", "control"),
    ("c1-next-line", "a\x85.jpg", "control"),
    ("c1-csi", "a\x9b.jpg", "control"),
    # hidden files
    ("macos-ds-store", ".DS_Store", "dot"),
    ("macos-resource-fork", "._photo.jpg", "dot"),
    ("dotfile", ".hidden", "dot"),
    # Windows reserved device names, any case, any extension
    ("con", "CON", "reserved"),
    ("con-lower", "con", "reserved"),
    ("con-with-extension", "con.txt", "reserved"),
    ("con-two-extensions", "Con.tar.gz", "reserved"),
    ("con-space-before-extension", "CON .txt", "reserved"),
    ("prn", "PRN", "reserved"),
    ("aux", "aux.jpg", "reserved"),
    ("nul", "NUL", "reserved"),
    ("nul-with-extension", "nul.mp4", "reserved"),
    ("com0", "COM0", "reserved"),
    ("com1", "COM1", "reserved"),
    ("com9-with-extension", "com9.txt", "reserved"),
    ("lpt0", "LPT0", "reserved"),
    ("lpt1", "lpt1", "reserved"),
    ("lpt9-with-extension", "LPT9.doc", "reserved"),
    ("com-superscript-1", "COM¹", "reserved"),
    ("com-superscript-2-with-extension", "com².jpg", "reserved"),
    ("lpt-superscript-3", "LPT³.txt", "reserved"),
    ("conin", "CONIN$", "reserved"),
    ("conout", "conout$.log", "reserved"),
    # Windows cannot create these
    ("trailing-space", "photo.jpg ", "ends with"),
    ("trailing-dot", "photo.", "ends with"),
    ("less-than", "a<b.jpg", "Windows"),
    ("greater-than", "a>b.jpg", "Windows"),
    ("colon", "a:b.jpg", "Windows"),
    ("ntfs-stream", "photo.jpg:Zone.Identifier", "Windows"),
    ("double-quote", 'a"b.jpg', "Windows"),
    ("pipe", "a|b.jpg", "Windows"),
    ("question-mark", "what?.jpg", "Windows"),
    ("asterisk", "*.jpg", "Windows"),
    # too long
    ("201-bytes", "a" * 197 + ".jpg", "200"),
    ("202-bytes-multibyte", "é" * 99 + ".jpg", "200"),
    ("very-long", "x" * 5000, "200"),
    # not valid Unicode
    ("lone-low-surrogate", "bad\udc80.jpg", "Unicode"),
    ("lone-high-surrogate", "\ud800.jpg", "Unicode"),
]


@pytest.mark.parametrize(
    ("name", "reason_word"), [r[1:] for r in HOSTILE_NAMES], ids=[r[0] for r in HOSTILE_NAMES]
)
def test_hostile_names_are_refused_with_a_reason(name: str, reason_word: str) -> None:
    problem = name_problem(name)
    assert problem is not None
    assert reason_word in problem
    assert not is_safe_name(name)


def test_the_limit_is_m3s_200_bytes() -> None:
    assert MAX_NAME_BYTES == 200


@pytest.mark.parametrize(
    ("name", "visible"),
    [("a\x00b", "\\x00"), ("a\x1b[31m", "\\x1b"), ("x\udc80", "\\udc80"), ("../x", "'../x'")],
    ids=["nul", "escape", "surrogate", "traversal"],
)
def test_check_name_is_a_usage_error_that_shows_the_name_escaped(name: str, visible: str) -> None:
    with pytest.raises(UsageError) as info:
        check_name(name)
    assert info.value.exit_code == ExitCode.USAGE
    assert int(info.value.exit_code) == 2
    assert visible in info.value.message
    assert "\x00" not in str(info.value) and "\x1b" not in str(info.value)
    assert info.value.remedy


def test_names_that_one_folder_on_windows_or_macos_cannot_hold_twice_keep_one_deterministically() -> None:
    from m3daemon.core.names import fold_name, one_per_folded_name

    nfc, nfd = "caf\u00e9.jpg", "cafe\u0301.jpg"
    assert fold_name("Talk.JPG") == fold_name("talk.jpg") and fold_name(nfc) == fold_name(nfd)
    for order in (["talk.jpg", "Talk.jpg", nfd, nfc, "other.jpg"], ["other.jpg", nfc, "Talk.jpg", nfd, "talk.jpg"]):
        kept, dropped = one_per_folded_name(order)
        assert sorted(kept) == sorted(["Talk.jpg", nfc, "other.jpg"])  # NFC first, then sorted order
        assert sorted(dropped) == sorted([("talk.jpg", "Talk.jpg"), (nfd, nfc)])
    assert one_per_folded_name([nfd]) == ([nfd], [])  # alone, a decomposed name is kept as it is
