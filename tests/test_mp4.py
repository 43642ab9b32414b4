"""The mp4 sample-table reader: raw durations, keyframes, edit lists, index position, damage."""

from __future__ import annotations

import hashlib
import struct
import subprocess
from pathlib import Path

import mp4build
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from media_cases import case
from mediagen import ffmpeg_exe

from prep.errors import MediaError
from prep.media import mp4
from prep.media.mp4 import read_mp4, read_samples


@pytest.mark.media
def test_reads_tracks_keyframes_and_index_position() -> None:
    info = read_mp4(case("compliant"))  # keyframe every 30 frames at 30 fps, +faststart
    video, audio = info.track("vide"), info.track("soun")
    assert video is not None and audio is not None
    assert video.duration_ms == 3000 and video.sample_count == 90
    assert video.keyframe_ms == (0, 1000, 2000)
    assert info.moov_first
    # ffmpeg hides the AAC encoder delay with an edit list on the audio track: the raw track
    # is one AAC frame longer than what a player shows
    assert audio.has_edit_list and 3000 < audio.duration_ms < 3050
    assert info.data_end_ms is None  # every sample is in the file
    assert not read_mp4(case("quicktime")).moov_first


@pytest.mark.parametrize("data", [b"", b"\x00" * 100, b"\x00\x00\x00\x10ftypisom" + b"x" * 8])
def test_not_an_mp4_is_a_media_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(data)
    with pytest.raises(MediaError, match="damaged mp4 index") as caught:
        read_mp4(path)
    assert str(path) in str(caught.value) and caught.value.hint


@pytest.mark.media
def test_media_bytes_sum_the_sample_sizes() -> None:
    path = case("compliant")
    video = read_mp4(path).track("vide")
    assert video is not None
    done = subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-map",
                           "0:v:0", "-c", "copy", "-f", "framemd5", "-"],
                          capture_output=True, text=True, check=True)
    sizes = [int(line.split(",")[4]) for line in done.stdout.splitlines()
             if not line.startswith("#")]
    assert video.media_bytes == sum(sizes)


@pytest.mark.media
@pytest.mark.parametrize("name", ["compliant", "ntsc_bframes"])
def test_sample_table_matches_ffmpegs_packets(name: str) -> None:
    """Every sample's bytes (found by the chunk tables) hash as ffmpeg's packets do, in decode
    order, and the presentation times keep ffmpeg's spacing and order (B-frames reordered)."""
    path = case(name)
    samples = read_samples(path)
    assert samples is not None and read_samples(path, "none") is None
    done = subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-map",
                           "0:v:0", "-c", "copy", "-f", "framemd5", "-"],
                          capture_output=True, text=True, check=True)
    rows = [[f.strip() for f in line.split(",")] for line in done.stdout.splitlines()
            if line and not line.startswith("#")]
    assert len(samples) == len(rows)
    with open(path, "rb") as fh:
        hashes = [hashlib.md5(data).hexdigest() for data in samples.read(fh, 0, len(samples))]
    assert hashes == [row[5] for row in rows]
    assert [int(row[4]) for row in rows] == list(samples.sizes)
    # ffmpeg's times are in its own timebase and shifted; the order and spacing are the same
    ffmpeg_pts = [int(row[2]) for row in rows]
    assert sorted(range(len(rows)), key=ffmpeg_pts.__getitem__) == sorted(
        range(len(rows)), key=samples.presentation_times.__getitem__)
    assert samples.sync is not None and 0 in samples.sync
    assert list(samples.decode_times) == sorted(samples.decode_times)


def test_sample_table_of_a_missing_file_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot be read"):
        read_samples(tmp_path / "absent.mp4")


# --- long clips: one pass over the tables ----------------------------------------------------

def test_long_clip_keyframes_with_b_frames(tmp_path: Path) -> None:
    """A 20-minute synthetic clip: every keyframe, at its presentation time from the first
    frame shown (the ctts offsets of the reorder pattern taken into account)."""
    path = mp4build.write(tmp_path / "long.mp4", mp4build.long_clip(20))
    info = read_mp4(path)
    video = info.track("vide")
    assert video is not None and video.keyframe_ms is not None
    assert video.sample_count == 36_000 and video.duration_ms == 1_200_000
    # keyframe n is sample 30n, shown 2 frames late; the first frame shown is sample 0 (at 2)
    assert video.keyframe_ms == tuple(range(0, 1_200_000, 1000))
    assert info.data_end_ms is None


def _unpack_calls(monkeypatch: pytest.MonkeyPatch, path: Path) -> int:
    calls = 0
    real = struct.unpack_from

    def counting(fmt: str | bytes, buffer: bytes, offset: int = 0) -> tuple[object, ...]:
        nonlocal calls
        calls += 1
        return real(fmt, buffer, offset)

    with monkeypatch.context() as patch:
        patch.setattr(mp4.struct, "unpack_from", counting)
        read_mp4(path)
    return calls


def test_table_reads_do_not_grow_with_the_clip(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Each table is unpacked whole, once: the count of struct reads is the same for a 1- and a
    4-minute clip (a lookup per keyframe made it grow with keyframes x table entries)."""
    short = mp4build.write(tmp_path / "short.mp4", mp4build.long_clip(1))
    long = mp4build.write(tmp_path / "long.mp4", mp4build.long_clip(4))
    assert _unpack_calls(monkeypatch, short) == _unpack_calls(monkeypatch, long)


# --- truncated data ----------------------------------------------------------------------------

def test_data_end_is_where_the_file_stops(tmp_path: Path) -> None:
    tracks = mp4build.long_clip(8 / 60)  # 8 s: 240 frames, 1 s chunks, interleaved with audio
    head, payload = mp4build.build(tracks)
    whole = mp4build.write(tmp_path / "whole.mp4", tracks)
    assert read_mp4(whole).data_end_ms is None
    cut = mp4build.write(tmp_path / "cut.mp4", tracks, keep_bytes=len(head) + 8 + payload * 43 // 100)
    info = read_mp4(cut)
    video, audio = info.track("vide"), info.track("soun")
    assert video is not None and audio is not None
    assert info.index_ms >= 8000
    assert video.data_end_ms is not None and audio.data_end_ms is not None
    assert 3000 <= info.data_end_ms <= 4000  # type: ignore[operator]
    assert info.data_end_ms == min(video.data_end_ms, audio.data_end_ms)


@pytest.mark.media
def test_truncated_real_file(tmp_path: Path) -> None:
    source = case("compliant").read_bytes()  # faststart: the index is at the front
    path = tmp_path / "cut.mp4"
    path.write_bytes(source[: len(source) * 6 // 10])
    info = read_mp4(path)
    assert info.index_ms >= 3000
    assert info.data_end_ms is not None and 1000 < info.data_end_ms < 2500


# --- damage becomes MediaError -------------------------------------------------------------

def _moov_span(data: bytes) -> tuple[int, int]:
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"moov":
            return pos, pos + size
        pos += size
    raise AssertionError("no moov")


def _set_count(data: bytes, table: bytes, value: int) -> bytes:
    """Overwrite the entry count of the first `table` box."""
    at = data.index(table) + 8  # after the type: version/flags, then the count
    if table == b"stsz":
        at += 4
    return data[:at] + struct.pack(">I", value) + data[at + 4:]


DAMAGE = {
    "stts count": lambda d: _set_count(d, b"stts", 0x7FFF_FFFF),
    "stss count": lambda d: _set_count(d, b"stss", 0xFFFF_FFF0),
    "stsz count": lambda d: _set_count(d, b"stsz", 0x0FFF_FFFF),
    "stsc count": lambda d: _set_count(d, b"stsc", 9_999_999),
    "stco count": lambda d: _set_count(d, b"stco", 1_000_000),
    "ctts count": lambda d: _set_count(d, b"ctts", 123_456_789),
    "trak size": lambda d: d[: d.index(b"trak") - 4]
    + struct.pack(">I", 0x7FFF_0000) + d[d.index(b"trak"):],
    "mdhd cut": lambda d: d[: d.index(b"mdhd") - 4] + struct.pack(">I", 12) + d[d.index(b"mdhd"):],
    "64-bit size": lambda d: d[: d.index(b"stbl") - 4] + struct.pack(">I", 1)
    + d[d.index(b"stbl"):],
    "moov past end": lambda d: d[: _moov_span(d)[1] - 20],
}


@pytest.mark.media
@pytest.mark.parametrize("name", list(DAMAGE))
def test_damaged_tables_are_media_errors(tmp_path: Path, name: str) -> None:
    data = case("ntsc_bframes").read_bytes()  # mov with ctts; its moov is at the end
    path = tmp_path / "damaged.mov"
    path.write_bytes(DAMAGE[name](data))
    with pytest.raises(MediaError, match=r"damaged mp4 index \(") as caught:
        read_mp4(path)
    assert str(path) in str(caught.value) and caught.value.exit_code == 3
    assert "re-export" in caught.value.hint
    # A track whose header is cut is not found as a video track (None); every other damage is a
    # MediaError for the sample table too.
    if name == "mdhd cut":
        assert read_samples(path) is None
    else:
        with pytest.raises(MediaError, match=r"damaged mp4 index \("):
            read_samples(path)


# --- fuzz: data or MediaError, nothing else --------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every example's file (pytest's temporary folders are cleaned up)."""
    return tmp_path_factory.mktemp("mp4-fuzz")


def _read_or_media_error(scratch: Path, data: bytes) -> None:
    path = scratch / "fuzz.mp4"
    path.write_bytes(data)
    try:
        info = read_mp4(path)
    except MediaError as err:
        assert str(path) in str(err)
        return
    assert isinstance(info, mp4.Mp4Info)
    try:
        samples = read_samples(path)
    except MediaError as err:
        assert str(path) in str(err)
    else:
        assert samples is None or len(samples.offsets) == len(samples)
    for track in info.tracks:
        assert track.duration_ms >= 0 or track.duration_units < 0


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(scratch: Path, data: bytes) -> None:
    _read_or_media_error(scratch, data)


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_random_bytes_after_a_moov_header(scratch: Path, data: bytes) -> None:
    _read_or_media_error(scratch, struct.pack(">I4s", 8 + len(data), b"moov") + data)


@pytest.fixture(scope="module")
def real_files() -> dict[str, bytes]:
    """The generated clips whose moov the fuzzer mutates, read once."""
    return {name: case(name).read_bytes() for name in ("compliant", "ntsc_bframes")}


@pytest.mark.media
@FUZZ
@given(name=st.sampled_from(["compliant", "ntsc_bframes"]), data=st.data())
def test_fuzz_mutated_real_moov(scratch: Path, real_files: dict[str, bytes], name: str,
                                data: st.DataObject) -> None:
    """Real files with bytes of their moov overwritten, and cut at random points."""
    source = bytearray(real_files[name])
    start, end = _moov_span(bytes(source))
    for _ in range(data.draw(st.integers(1, 8), label="mutations")):
        at = data.draw(st.integers(start, end - 1), label="at")
        value = data.draw(st.sampled_from([0, 1, 0xFF, 0x7F, 0x80]) | st.integers(0, 255),
                          label="value")
        source[at] = value
    if data.draw(st.booleans(), label="cut"):
        del source[data.draw(st.integers(0, len(source)), label="keep"):]
    _read_or_media_error(scratch, bytes(source))
