"""Probing real (generated) clips, and every kind of bad input, one line each."""

from __future__ import annotations

import os
import re
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import mediagen
import pytest

from prep.core import clipinfo
from prep.errors import MediaError
from prep.media import probe as media

pytestmark = pytest.mark.media


def test_plain_clip() -> None:
    info = media.probe(mediagen.clip("plain", seconds=3, rate="30000/1001"))
    assert info.container == "mp4"
    assert info.video_codec == "h264"
    assert (info.width, info.height) == (640, 360)
    assert info.fps == Fraction(30000, 1001)
    assert 2_900 <= info.duration_ms <= 3_100
    assert info.has_audio and info.audio_codec == "aac" and info.audio_rate == 48_000
    assert info.bit_depth == 8 and info.chroma_subsampling == "4:2:0"
    verdict = clipinfo.assess(info)
    assert verdict.compliant and not verdict.problems


def test_rotated_portrait_mov() -> None:
    src = mediagen.clip("landscape-for-rotation", seconds=2.5, audio=False, suffix=".mov")
    rotated = mediagen.make("rotated", ["-display_rotation", "90", "-i", str(src), "-c", "copy"],
                            suffix=".mov")
    info = media.probe(rotated)
    assert info.container == "mov"
    assert info.rotation in (90, 270)
    assert info.display_size == (360, 640)
    advice = " ".join(clipinfo.assess(info).advice)
    assert "rotation flag" in advice and "no audio" in advice


def test_hevc_10bit_hlg() -> None:
    path = mediagen.clip(
        "hlg", seconds=2.5, audio=False, suffix=".mov",
        vcodec=["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-x265-params",
                "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc"],
    )
    info = media.probe(path)
    assert (info.video_codec, info.bit_depth, info.hdr) == ("hevc", 10, "HLG")
    advice = " ".join(clipinfo.assess(info).advice)
    assert "HEVC" in advice and "10-bit" in advice and "HDR (HLG)" in advice


def test_vfr_is_detected() -> None:
    path = mediagen.make("vfr", ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=3",
                                 "-vf", "setpts='if(gte(N,30),PTS+PTS/2,PTS)'", "-fps_mode", "vfr",
                                 "-c:v", "libx264", "-preset", "ultrafast"])
    assert media.probe(path).vfr


def test_too_long_too_short_and_wrong_container() -> None:
    long = clipinfo.assess(media.probe(mediagen.clip("long", seconds=31, size="160x90")))
    assert not long.compliant and "at most 30.0 s" in long.problems[0]
    short = clipinfo.assess(media.probe(mediagen.clip("short", seconds=1.2, size="160x90")))
    assert not short.compliant and "at least 2.0 s" in short.problems[0]
    mkv = clipinfo.assess(media.probe(mediagen.clip("mkv", seconds=2.5, size="160x90", suffix=".mkv")))
    assert not mkv.compliant and "mkv" in mkv.problems[0]


def test_odd_dimensions_444_and_no_audio() -> None:
    # lavfi sources round sizes to even numbers: scale afterwards to get truly odd dimensions.
    path = mediagen.clip("odd444", seconds=2.5, size="320x180", audio=False,
                         vcodec=["-vf", "scale=321:181,format=yuv444p", "-c:v", "libx264",
                                 "-preset", "ultrafast"])
    advice = " ".join(clipinfo.assess(media.probe(path)).advice)
    assert "odd dimensions" in advice and "4:4:4" in advice and "no voice" in advice


def _bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n")
    elif kind == "image":
        path = mediagen.make("image", ["-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1"],
                             suffix=".png")
    elif kind == "audio":
        path = mediagen.make("audio-only", ["-f", "lavfi", "-i", "sine=duration=3", "-c:a", "aac"],
                             suffix=".m4a")
    elif kind == "truncated":
        whole = mediagen.clip("to-truncate", seconds=3, size="160x90").read_bytes()
        path.write_bytes(whole[: len(whole) // 2])  # ffmpeg writes moov last: the index is cut off
    elif kind == "unreadable":
        shutil.copy(mediagen.clip("plain", seconds=3, rate="30000/1001"), path)
        path.chmod(0)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "no such file"),
        ("empty", "is empty"),
        ("text", "not a video file"),
        ("image", "is an image"),
        ("audio", "no video stream"),
        ("truncated", "index (moov atom) is missing"),
        ("unreadable", "permission denied"),
    ],
)
def test_bad_inputs_are_media_errors(
    tmp_path: Path, kind: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "missing.mp4" if kind == "missing" else _bad_file(tmp_path, kind)
    if kind == "unreadable" and os.geteuid() == 0:
        # root reads anything: make the permission check see what a normal user would.
        monkeypatch.setattr(media.os, "access", lambda p, mode: False)
    with pytest.raises(MediaError, match=re.escape(message)) as caught:
        media.probe(path)
    assert str(path) in str(caught.value)
    assert caught.value.exit_code == 3
    assert "\n" not in str(caught.value)


def test_probe_many_keeps_going(tmp_path: Path) -> None:
    good = mediagen.clip("plain", seconds=3, rate="30000/1001")
    results = media.probe_many([tmp_path / "nope.mp4", good])
    assert isinstance(results[0], MediaError)
    assert isinstance(results[1], media.ClipInfo)


# --- truncated files whose index is at the front --------------------------------------------

def _cut_short(tmp_path: Path, keep: float = 0.43) -> Path:
    """An 8 s clip with its index first (+faststart), cut after `keep` of its bytes: what an
    interrupted copy or download leaves. Its index still lists all 8 s."""
    whole = mediagen.clip("eight-faststart", seconds=8, size="320x180",
                          extra=["-g", "30", "-movflags", "+faststart"]).read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(whole[: int(len(whole) * keep)])
    return path


def test_truncated_file_with_its_index_first_is_refused(tmp_path: Path) -> None:
    path = _cut_short(tmp_path)
    with pytest.raises(MediaError) as caught:
        media.probe(path)
    found = re.fullmatch(re.escape(f"{path}: truncated: the index lists 8.0 s but the data ends "
                                   "at ") + r"(\d+\.\d) s", str(caught.value))
    assert found is not None, str(caught.value)
    assert 2.5 <= float(found[1]) <= 4.5
    assert caught.value.exit_code == 3
    assert "re-export or re-copy" in caught.value.hint


def test_truncation_check_reads_only_the_index(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The check reads the moov box, never the media: a few KB of an 8 s clip."""
    from prep.media import mp4

    path = _cut_short(tmp_path, keep=0.9)
    read = 0
    real_open = open

    class Counting:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def read(self, size: int = -1) -> bytes:
            nonlocal read
            data: bytes = self.fh.read(size)
            read += len(data)
            return data

        def seek(self, *args: int) -> int:
            result: int = self.fh.seek(*args)
            return result

    monkeypatch.setattr(mp4, "open", lambda p, mode: Counting(real_open(p, mode)), raising=False)
    with pytest.raises(MediaError, match="truncated"):
        media.probe(path)
    assert 0 < read < 64 * 1024 < path.stat().st_size


def test_cli_refuses_a_truncated_file(tmp_path: Path) -> None:
    """estimate billed the 8 s its index promised, and prepare copied 3.4 s as 'ok'."""
    from click.testing import CliRunner

    from prep.ui.cli import cli

    path = _cut_short(tmp_path)
    runner = CliRunner()
    for args in (["probe", str(path)], ["estimate", str(path)],
                 ["prepare", str(path), "-o", str(tmp_path / "out")]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 3, (args, result.output)
        assert "truncated: the index lists 8.0 s" in result.output + result.stderr
    assert not list((tmp_path / "out").glob("*.mp4"))


def test_a_huge_stsz_count_is_not_api_ok(tmp_path: Path) -> None:
    """MediaInfo reads past a sample-size table that claims 2^31 entries; probe said "API ok"."""
    import struct

    from media_cases import case

    data = bytearray(case("compliant").read_bytes())
    at = data.find(b"stsz")
    struct.pack_into(">I", data, at + 12, 0x7FFF_FFFF)
    broken = tmp_path / "huge-stsz.mp4"
    broken.write_bytes(bytes(data))
    info = media.probe(broken)
    verdict = clipinfo.assess(info)
    assert not verdict.compliant
    assert info.index_damage and "2,147,483,647 entries" in info.index_damage
    assert any("index is damaged" in p for p in verdict.problems)


def test_an_impossible_picture_size_is_refused(tmp_path: Path) -> None:
    """A Matroska header claiming 30000x30000 over a 640x360 stream came out squashed to
    1080x1080, exit 0."""
    source = mediagen.make("probe-mkv-640", ["-f", "lavfi", "-i",
                                             "testsrc2=size=640x360:rate=30:duration=3",
                                             "-c:v", "libx264", "-preset", "ultrafast",
                                             "-pix_fmt", "yuv420p"], suffix=".mkv")
    data = bytearray(source.read_bytes())
    for element, value in ((0xB0, 640), (0xBA, 360)):  # PixelWidth, PixelHeight (2-byte)
        at = data.find(bytes([element, 0x82]) + value.to_bytes(2, "big"))
        assert at > 0
        data[at + 2:at + 4] = (30000).to_bytes(2, "big")
    broken = tmp_path / "huge-header.mkv"
    broken.write_bytes(bytes(data))
    with pytest.raises(MediaError, match="claims 30000x30000") as caught:
        media.probe(broken)
    assert caught.value.exit_code == 3
