"""The mp4 sample-table reader: raw durations, keyframes, edit lists, index position."""

from __future__ import annotations

from pathlib import Path

import pytest
from media_cases import case

from prep.media.mp4 import read_mp4


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
    assert not read_mp4(case("quicktime")).moov_first


@pytest.mark.parametrize("data", [b"", b"\x00" * 100, b"\x00\x00\x00\x10ftypisom" + b"x" * 8])
def test_not_an_mp4_is_a_value_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(data)
    with pytest.raises(ValueError):
        read_mp4(path)


def test_media_bytes_sum_the_sample_sizes() -> None:
    import subprocess

    from mediagen import ffmpeg_exe

    path = case("compliant")
    video = read_mp4(path).track("vide")
    assert video is not None
    done = subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-map",
                           "0:v:0", "-c", "copy", "-f", "framemd5", "-"],
                          capture_output=True, text=True, check=True)
    sizes = [int(line.split(",")[4]) for line in done.stdout.splitlines()
             if not line.startswith("#")]
    assert video.media_bytes == sum(sizes)
