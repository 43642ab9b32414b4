"""Frames of a clip as small RGB pictures: what contact sheets, reports and the studio show.

`grab_frames(video, times_ms)` decodes the frames on screen at the given times, scaled to a
width, through one ffmpeg pipe (`prep.media.stream`): evenly spaced times within two minutes in
one decode pass, others by seeking to each. The pictures are numpy arrays (the `pick` extra);
drawing them is `prep.ui.pictures`' business.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prep.core.timecode import format_ms
from prep.errors import MediaError

if TYPE_CHECKING:
    from prep.core.clipinfo import ClipInfo

__all__ = ["ONE_PASS_MAX_MS", "Thumbnail", "grab_frames", "thumb_size"]

# Clips up to this long are sampled in one decode pass; longer ones by seeking to each frame.
ONE_PASS_MAX_MS = 120_000
_NUMPY_HINT = "pip install 'evolink-prep[pick]'"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Thumbnail:
    """A small RGB picture of the frame at `time_ms` (a numpy array, height x width x 3)."""

    time_ms: int
    rgb: Any = field(repr=False)


def thumb_size(info: ClipInfo, width: int) -> tuple[int, int]:
    """The (even) size of a thumbnail `width` pixels wide of `info`'s picture as shown.
    MediaError when the clip has no video to show."""
    dw, dh = info.display_size
    if not dw or not dh:
        raise MediaError(info.path, "has no video stream to draw", hint="pass a video file")
    return width // 2 * 2, max(2, round(width * dh / dw / 2) * 2)


def grab_frames(
    video: Path | str, times_ms: Sequence[int], *, width: int = 240, info: ClipInfo | None = None,
    ffmpeg: str | None = None,
) -> list[Thumbnail]:
    """RGB thumbnails `width` pixels wide of the frames at `times_ms` (ms from the clip's start).

    Evenly spaced times within two minutes are read in one decode pass; others by seeking.
    `ffmpeg` is the configured ffmpeg (`Settings.ffmpeg`; None: the one on PATH, else the
    bundled one). MediaError when numpy is missing or the clip has no video; FfmpegError when
    ffmpeg cannot read it. A frame past the end is left out.
    """
    path = Path(video)
    try:
        import numpy as np
    except ImportError as err:
        raise MediaError(path, "cannot be pictured without the optional package numpy",
                         hint=_NUMPY_HINT) from err
    from prep.media.ffmpeg import find_ffmpeg
    from prep.media.probe import probe
    from prep.media.stream import FfmpegPipe, ffmpeg_input

    info = info or probe(path)
    size = thumb_size(info, width)
    times = sorted(times_ms)
    if not times:
        return []
    binary = find_ffmpeg(ffmpeg).path
    frame_bytes = size[0] * size[1] * 3
    scale = f"scale={size[0]}:{size[1]}:flags=area,setsar=1,format=rgb24"

    def run(args: list[str], count: int) -> list[bytes]:
        with FfmpegPipe.start([binary, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error",
                               *args], path=path) as pipe:
            got = list(pipe.records(frame_bytes))[:count]
            pipe.check("could not be read for pictures")
        return got

    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    evenly = bool(gaps) and min(gaps) > 0 and max(gaps) - min(gaps) <= 1  # 1 ms of rounding
    frames: list[tuple[int, bytes]] = []
    if evenly and times[-1] - times[0] <= ONE_PASS_MAX_MS:
        step = Fraction(times[-1] - times[0], len(times) - 1) if len(times) > 1 else Fraction(1000)
        rate = Fraction(1000) / step
        # round=up: frame k is the one on screen at times[0] + k * step (not half a step later).
        args = ["-ss", format_ms(times[0]), "-i", ffmpeg_input(path), "-map", "0:v:0", "-an", "-sn",
                "-vf", f"fps={rate.numerator}/{rate.denominator}:start_time=0:round=up,{scale}",
                "-frames:v", str(len(times)), "-f", "rawvideo", "pipe:1"]
        frames = list(zip(times, run(args, len(times)), strict=False))
    else:
        def one(at: int) -> tuple[int, bytes] | None:
            args = ["-ss", format_ms(at), "-i", ffmpeg_input(path), "-map", "0:v:0", "-an", "-sn",
                    "-vf", scale, "-frames:v", "1", "-f", "rawvideo", "pipe:1"]
            got = run(args, 1)
            return (at, got[0]) if got else None

        with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
            frames = [f for f in pool.map(one, times) if f is not None]
    return [Thumbnail(time_ms=at, rgb=np.frombuffer(data, dtype=np.uint8).reshape(size[1], size[0], 3))
            for at, data in frames]
