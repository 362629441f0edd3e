"""witness.utils.files: safe local names for untrusted names, collision-free paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from witness.utils.files import MAX_NAME_BYTES, safe_filename, unique_path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ComfyUI_00001_.png", "ComfyUI_00001_.png"),
        ("../x", "x"),
        ("../../etc/passwd", "passwd"),
        ("/etc/passwd", "passwd"),
        ("..\\x", "x"),
        ("..\\..\\windows\\system32\\evil.dll", "evil.dll"),
        ("C:\\x", "x"),
        ("C:x.png", "x.png"),
        ("a\x00b.png", "a_b.png"),
        ("a\nb\tc.png", "a_b_c.png"),
        ('a<b>c:d"e|f?g*h.png', "a_b_c_d_e_f_g_h.png"),
        (".hidden", "hidden"),
        ("name. . ", "name"),
        ("  spaced.png  ", "spaced.png"),
        ("NUL", "_NUL"),
        ("con.txt", "_con.txt"),
        ("COM1.tar.gz", "_COM1.tar.gz"),
        ("LPT9", "_LPT9"),
        ("console.txt", "console.txt"),
        ("naïve café.png", "naïve café.png"),
        ("subdir/", "file"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


@pytest.mark.parametrize("name", ["", ".", "..", "...", "/", "\\", "../", "  "])
def test_empty_results_use_default(name: str) -> None:
    assert safe_filename(name, "fallback.png") == "fallback.png"
    assert safe_filename(name) == "file"


def test_bad_default_is_itself_sanitised() -> None:
    assert safe_filename("", "../evil.png") == "evil.png"
    assert safe_filename("", "..") == "file"
    assert safe_filename("", "") == "file"


def test_non_string_names() -> None:
    assert safe_filename(123) == "123"
    assert safe_filename(None) == "None"


def test_very_long_names_are_cut_keeping_the_extension() -> None:
    name = "x" * 1000 + ".png"
    cleaned = safe_filename(name)
    assert cleaned.endswith(".png")
    assert len(cleaned.encode()) <= MAX_NAME_BYTES
    multibyte = safe_filename("é" * 500 + ".webm")
    assert multibyte.endswith(".webm")
    assert len(multibyte.encode()) <= MAX_NAME_BYTES
    multibyte.encode().decode()  # still valid UTF-8


def test_a_huge_extension_is_not_kept_as_extension() -> None:
    cleaned = safe_filename("a." + "b" * 500)
    assert len(cleaned.encode()) <= MAX_NAME_BYTES
    assert "/" not in cleaned


@pytest.mark.parametrize(
    "name",
    ["../x", "/etc/passwd", "..\\x", "C:\\x", "a\x00b", "../../../../tmp/p", "..", "x/../../y"],
)
def test_result_never_escapes(tmp_path: Path, name: str) -> None:
    cleaned = safe_filename(name)
    target = (tmp_path / cleaned).resolve()
    assert target.parent == tmp_path.resolve()
    assert "/" not in cleaned
    assert "\\" not in cleaned
    assert "\x00" not in cleaned
    assert cleaned not in {"", ".", ".."}


def test_unique_path_adds_counters(tmp_path: Path) -> None:
    assert unique_path(tmp_path, "a.png") == tmp_path / "a.png"
    (tmp_path / "a.png").write_bytes(b"1")
    assert unique_path(tmp_path, "a.png") == tmp_path / "a_1.png"
    (tmp_path / "a_1.png").write_bytes(b"2")
    assert unique_path(tmp_path, "a.png") == tmp_path / "a_2.png"


def test_unique_path_honours_taken_case_insensitively(tmp_path: Path) -> None:
    assert unique_path(tmp_path, "A.png", taken={"a.png"}) == tmp_path / "A_1.png"
    assert unique_path(tmp_path, "noext", taken={"noext"}) == tmp_path / "noext_1"


def test_unique_path_sanitises(tmp_path: Path) -> None:
    path = unique_path(tmp_path, "../../escape.png")
    assert path == tmp_path / "escape.png"


def test_unique_path_long_names_stay_within_limit(tmp_path: Path) -> None:
    name = "y" * 400 + ".png"
    first = unique_path(tmp_path, name)
    first.write_bytes(b"")
    second = unique_path(tmp_path, name)
    assert second != first
    assert second.name.endswith("_1.png")
    assert len(second.name.encode()) <= MAX_NAME_BYTES
