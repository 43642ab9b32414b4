"""The ffmpeg pipe (`prep.media.stream`) that the pick analysis and the frame grabbing share:
records out, errors named, ffmpeg never left running."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from prep.errors import FfmpegError
from prep.media.ffmpeg import find_ffmpeg
from prep.media.stream import FfmpegPipe, ffmpeg_input, records

pytestmark = pytest.mark.media
FRAME_BYTES = 16 * 16 * 3


def _argv(*args: str) -> list[str]:
    return [find_ffmpeg(None).path, "-nostdin", "-hide_banner", "-nostats", *args]


def _testsrc(seconds: str) -> list[str]:
    return _argv("-f", "lavfi", "-i", "testsrc=size=16x16:rate=10", "-t", seconds,
                 "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")


def test_records_are_whole_and_a_short_tail_is_dropped_or_padded() -> None:
    data = io.BytesIO(b"abcdefg")
    assert list(records(data, 3)) == [b"abc", b"def"]
    assert list(records(io.BytesIO(b"abcdefg"), 3, pad=True)) == [b"abc", b"def", b"g\0\0"]


def test_ffmpeg_input_names_any_file_as_a_file(tmp_path: Path) -> None:
    odd = tmp_path / "-odd:name.mp4"
    assert ffmpeg_input(odd) == f"file:{odd.resolve()}"


def test_a_pipe_streams_every_frame_and_ends_well() -> None:
    with FfmpegPipe.start(_testsrc("1"), path="testsrc") as pipe:
        frames = list(pipe.records(FRAME_BYTES))
        pipe.check("could not be read")
    assert len(frames) == 10 and all(len(f) == FRAME_BYTES for f in frames)


def test_a_failure_names_the_file_with_ffmpegs_own_words(tmp_path: Path) -> None:
    missing = tmp_path / "gone.mp4"
    with FfmpegPipe.start(_argv("-i", ffmpeg_input(missing), "-f", "rawvideo", "pipe:1"),
                          path=missing) as pipe:
        assert list(pipe.records(FRAME_BYTES)) == []
        with pytest.raises(FfmpegError) as caught:
            pipe.check("could not be decoded")
    assert caught.value.message.startswith(f"{missing}: could not be decoded (")
    assert "No such file" in caught.value.message and caught.value.detail


def test_stderr_lines_go_to_the_reader_and_the_rest_to_the_tail() -> None:
    taken: list[str] = []

    def reader(line: str) -> bool:
        if "Input #0" in line:
            taken.append(line)
            return True
        return False

    argv = _argv("-loglevel", "info", "-f", "lavfi", "-i", "testsrc=size=16x16:rate=10",
                 "-t", "0.2", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
    with FfmpegPipe.start(argv, path="testsrc", on_line=reader) as pipe:
        list(pipe.records(FRAME_BYTES))
        assert pipe.wait() == 0
    assert taken and not any("Input #0" in line for line in pipe.tail)
    assert pipe.tail  # the other lines are kept for an error message


def test_an_error_in_the_reader_stops_ffmpeg_and_is_raised() -> None:
    def broken(line: str) -> bool:
        raise ValueError("a line it could not read")

    argv = _argv("-loglevel", "info", "-f", "lavfi", "-i", "testsrc=size=16x16:rate=10",
                 "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")  # endless: only a kill ends it
    with FfmpegPipe.start(argv, path="testsrc", on_line=broken) as pipe:
        for _ in pipe.records(FRAME_BYTES):
            pass
        with pytest.raises(ValueError, match="could not read"):
            pipe.wait()


def test_stop_kills_a_running_ffmpeg_and_closes_its_pipes() -> None:
    pipe = FfmpegPipe.start(_testsrc("3600"), path="testsrc")
    next(pipe.records(FRAME_BYTES))
    pipe.stop()
    assert pipe.proc.returncode is not None and pipe.proc.returncode < 0
    assert pipe.proc.stdout is not None and pipe.proc.stdout.closed


def test_a_missing_binary_is_an_ffmpeg_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(FfmpegError, match="could not start ffmpeg"):
        FfmpegPipe.start([str(tmp_path / "no-ffmpeg"), "-version"], path="clip.mp4")
