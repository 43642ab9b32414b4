"""Timecodes and clip specs: table-driven, no media."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from prep.core import timecode
from prep.core.clipspec import Window, apply_trim_options
from prep.errors import UsageError
from prep.media.clips import expand_paths, parse_clip_spec

NTSC = Fraction(30000, 1001)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("12", 12_000), ("12.5", 12_500), ("12.5s", 12_500), ("0.001", 1), ("1:05", 65_000),
        ("01:05.250", 65_250), ("1:05.5", 65_500), ("00:01:05.250", 65_250),
        ("1:00:00", 3_600_000), ("0", 0),
    ],
)
def test_parse_to_ms(text: str, ms: int) -> None:
    assert timecode.parse(text).resolve(None) == ms


@pytest.mark.parametrize(
    ("text", "fps", "ms"),
    [
        ("00:00:12:05", Fraction(25), 12_200),
        ("00:00:01:00", NTSC, 1_001),          # 30 frames at 29.97 fps
        ("00:00:00:15", NTSC, 501),            # 15 * 1001/30 = 500.5 -> 501 (half up)
        ("00:01:00;02", NTSC, 60_060),         # drop-frame: first label after the minute skip
        ("00:10:00;00", NTSC, 599_999),        # ten minutes of DF is 17982 frames
        ("00:00:01:00", Fraction(24000, 1001), 1_001),
    ],
)
def test_smpte(text: str, fps: Fraction, ms: int) -> None:
    point = timecode.parse(text)
    assert point.needs_fps
    assert point.resolve(fps) == ms


def test_smpte_needs_a_frame_rate() -> None:
    with pytest.raises(ValueError, match="frame rate"):
        timecode.parse("00:00:01:00").resolve(None)


def test_smpte_frame_beyond_rate() -> None:
    with pytest.raises(ValueError, match="frame 30 does not exist"):
        timecode.parse("00:00:01:30").resolve(NTSC)


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4:5", "-3", "1:75", "12.5.5", "1.2345"])
def test_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="not understood|below 60"):
        timecode.parse(text)


@pytest.mark.parametrize(("ms", "text"), [(12_500, "12.5"), (65_000, "65.0"), (4_950, "4.95"),
                                          (1, "0.001")])
def test_format(ms: int, text: str) -> None:
    assert timecode.format_ms(ms) == text


def test_clip_spec_plain_and_window() -> None:
    spec = parse_clip_spec("a.mov@1:05-1:20")
    assert spec.path == Path("a.mov")
    assert spec.window.resolve(None, 100_000, "a") == (65_000, 80_000)
    open_end = parse_clip_spec("a.mov@1:05-")
    assert open_end.window.resolve(None, 100_000, "a") == (65_000, 100_000)
    open_start = parse_clip_spec("a.mov@-10")
    assert open_start.window.resolve(None, 100_000, "a") == (0, 10_000)
    assert parse_clip_spec("a.mov").window.is_open


def test_existing_path_with_at_sign_is_a_path(tmp_path: Path) -> None:
    odd = tmp_path / "take@1-2.mov"
    odd.write_bytes(b"x")
    assert parse_clip_spec(str(odd)).path == odd
    assert parse_clip_spec(str(odd)).window.is_open


def test_at_without_window_is_a_path() -> None:
    assert parse_clip_spec("me@home.mov").path == Path("me@home.mov")


@pytest.mark.parametrize("text", ["a.mov@5-2", "a.mov@x-2", "@1-2", "a.mov@1:99-"])
def test_bad_clip_specs(text: str) -> None:
    with pytest.raises(UsageError):
        parse_clip_spec(text)


def test_trim_options() -> None:
    (spec,) = apply_trim_options([parse_clip_spec("a.mov")], "10", None, "5")
    assert spec.window.resolve(None, 60_000, "a") == (10_000, 15_000)
    with pytest.raises(UsageError, match="exactly one clip"):
        apply_trim_options([parse_clip_spec("a"), parse_clip_spec("b")], "1", None, None)
    with pytest.raises(UsageError, match="not both"):
        apply_trim_options([parse_clip_spec("a")], None, "3", "5")
    with pytest.raises(UsageError, match="START"):
        apply_trim_options([parse_clip_spec("a")], "5", "3", None)


def test_window_past_the_end() -> None:
    with pytest.raises(UsageError, match="only 10.0 s long"):
        Window(timecode.parse("12"), None).resolve(None, 10_000, "a")


def test_folder_expands_to_sorted_videos(tmp_path: Path) -> None:
    for name in ("b.mov", "a.mp4", "notes.txt", "c.MKV"):
        (tmp_path / name).write_bytes(b"x")
    specs = expand_paths([parse_clip_spec(str(tmp_path))])
    assert [s.path.name for s in specs] == ["a.mp4", "b.mov", "c.MKV"]
