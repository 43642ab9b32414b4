"""prep's own mp4 writer (the smart cut's join): runs of other files' samples, end to end in one
track beside another file's audio, decode as the same frames, in a file players and MediaInfo
read as ffmpeg's own mp4."""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path

import pytest
from smartcutmedia import frame_hashes, source, x264

from prep.media.mp4 import Samples, read_mp4, read_samples, read_track
from prep.media.mp4write import VideoRun, _chunks, _rle, _Track, join
from prep.media.probe import probe

# 5 s at 30 fps, a keyframe every second, 3 B-frames, AAC: 15360 units a second (ffmpeg's
# choice for 30 fps), 512 a frame.
FRAME_UNITS = 512


def _stsd(width: int, height: int) -> bytes:
    """A sample description with one avc1 entry of that size (and no avcC: the writer copies
    the description as it is, and reads only the picture's size)."""
    entry = struct.pack(">I4s6xH16xHH50x", 86, b"avc1", 1, width, height)
    return struct.pack(">I4sII", 16 + len(entry), b"stsd", 0, 1) + entry


_STSD = _stsd(320, 180)


def _source() -> tuple[Path, Samples, bytes]:
    path = source("x264", x264())
    found = read_track(path, "vide")
    assert found is not None
    samples, boxes = found
    assert samples.timescale == 15360
    return path, samples, boxes[b"stsd"]


def _bytes(path: Path, samples: Samples, first: int, count: int) -> list[bytes]:
    with open(path, "rb") as fh:
        return list(samples.read(fh, first, count))


@pytest.mark.media
def test_a_clip_cut_into_runs_and_joined_is_the_same_clip(tmp_path: Path) -> None:
    src, samples, stsd = _source()
    out = tmp_path / "joined.mp4"
    # Cut at the keyframes at 2 s and 3 s: three runs of the same file.
    runs = [VideoRun(src, samples, 0, 60), VideoRun(src, samples, 60, 30),
            VideoRun(src, samples, 90, len(samples) - 90)]
    join(out, runs, stsd=stsd, frame_units=FRAME_UNITS, audio=src)
    ours = read_samples(out)
    assert ours is not None
    assert _bytes(out, ours, 0, len(ours)) == _bytes(src, samples, 0, len(samples))
    # Decoded, every frame is the source's, in its order, evenly timed from 0.
    assert [h for _, h in frame_hashes(out)] == [h for _, h in frame_hashes(src)]
    assert ours.decode_times == tuple(range(0, len(ours) * FRAME_UNITS, FRAME_UNITS))
    first = min(samples.presentation_times)
    assert ours.presentation_times == tuple(t - first for t in samples.presentation_times)
    assert ours.sync == samples.sync
    # The audio is the source's, sample for sample, with its timing and description.
    theirs_audio, our_audio = read_samples(src, "soun"), read_samples(out, "soun")
    assert theirs_audio is not None and our_audio is not None
    assert our_audio.decode_times == theirs_audio.decode_times
    assert (_bytes(out, our_audio, 0, len(our_audio))
            == _bytes(src, theirs_audio, 0, len(theirs_audio)))
    ours_track, theirs_track = read_track(out, "soun"), read_track(src, "soun")
    assert ours_track is not None and theirs_track is not None
    assert ours_track[1][b"stsd"] == theirs_track[1][b"stsd"]
    # The index first, no edit list, and what MediaInfo reads is the clip's.
    index = read_mp4(out)
    assert index.moov_first and not index.has_edit_list
    info, original = probe(out), probe(src)
    assert (info.video_codec, info.width, info.height, info.frame_count) == (
        original.video_codec, original.width, original.height, original.frame_count)
    assert info.audio_codec == "aac" and info.video_duration_ms == 5000


@pytest.mark.media
def test_runs_are_laid_end_to_end_whatever_file_and_order_they_come_from(tmp_path: Path) -> None:
    """The GOP at 3 s, then the one at 1 s: each run starts where the one before ends."""
    src, samples, stsd = _source()
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(src.read_bytes())
    out = tmp_path / "joined.mp4"
    join(out, [VideoRun(copy, samples, 90, 30), VideoRun(src, samples, 30, 30)], stsd=stsd,
         frame_units=FRAME_UNITS)
    everything = [h for _, h in frame_hashes(src)]
    frames = frame_hashes(out)
    assert [h for _, h in frames] == everything[90:120] + everything[30:60]
    assert [pts for pts, _ in frames] == [i * frames[1][0] for i in range(60)]
    assert read_samples(out, "soun") is None


def test_the_kernel_copy_and_the_plain_copy_write_the_same_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(range(256)) * 100)
    samples = Samples(timescale=30, offsets=(10, 500, 20_000), sizes=(100, 300, 5_000),
                      decode_times=(0, 1, 2), presentation_times=(0, 1, 2), sync=None)
    stsd = _STSD
    join(tmp_path / "kernel.mp4", [VideoRun(src, samples, 0, 3)], stsd=stsd, frame_units=1)

    def refuse(*_args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    join(tmp_path / "plain.mp4", [VideoRun(src, samples, 0, 3)], stsd=stsd, frame_units=1)
    assert (tmp_path / "kernel.mp4").read_bytes() == (tmp_path / "plain.mp4").read_bytes()
    written = read_samples(tmp_path / "plain.mp4")
    assert written is not None and written.sizes == samples.sizes
    data = src.read_bytes()
    assert _bytes(tmp_path / "plain.mp4", written, 0, 3) == [data[10:110], data[500:800],
                                                              data[20_000:25_000]]


def test_samples_a_file_does_not_hold_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "short.bin"
    src.write_bytes(bytes(1000))
    samples = Samples(timescale=30, offsets=(0, 900), sizes=(100, 500), decode_times=(0, 1),
                      presentation_times=(0, 1), sync=None)
    with pytest.raises(ValueError, match="holds 2 video samples, not 3"):
        join(tmp_path / "a.mp4", [VideoRun(src, samples, 0, 3)], stsd=_STSD,
             frame_units=1)
    with pytest.raises(ValueError, match="ends before the samples its index lists"):
        join(tmp_path / "b.mp4", [VideoRun(src, samples, 0, 2)], stsd=_STSD,
             frame_units=1)


def test_the_tracks_are_interleaved_every_half_second() -> None:
    def track(times: range, timescale: int) -> _Track:
        return _Track((), tuple(times), timescale, 0, b"", b"", b"", b"", (0, 0))

    video = track(range(0, 30 * 512, 512), 15360)  # 1 s at 30 fps
    audio = track(range(0, 48_000, 1024), 48_000)  # 1 s of AAC frames
    assert _chunks([video, audio]) == [(0, 0, 15), (1, 0, 24), (0, 15, 15), (1, 24, 23)]


def test_composition_offsets_below_zero_are_written_signed() -> None:
    assert _rle([0, 0, 1024, -512], signed=True) == bytes.fromhex(
        "00000003" "00000002" "00000000" "00000001" "00000400" "00000001" "fffffe00")
    assert _rle([512] * 4) == bytes.fromhex("00000001" "00000004" "00000200")
