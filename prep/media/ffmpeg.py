"""The ffmpeg edge: finding the binary, building command lines, and running them.

Search order: the configured path (`PREP_FFMPEG` / config `ffmpeg`, which callers pass down from
their settings: nothing here reads them), an `ffmpeg` on PATH, then the static binary that the
imageio-ffmpeg package ships. Found lazily, never at import time.
`build_args` is the only place a command line is built (with ffmpeg-python, pure); `run` is the
only place ffmpeg runs a plan: progress as data, pipes drained, ffmpeg killed on any exit.
"""

from __future__ import annotations

import ctypes
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import IO, Any

from prep.core.plan import (
    HDR_REFERENCE_WHITE_NITS,
    SDR_HEADROOM,
    AudioEncode,
    Loudness,
    PrepPlan,
    VideoEncode,
)
from prep.errors import FfmpegError, PrepError, ToolMissingError, install_hint

__all__ = [
    "MIN_VERSION",
    "RUNNER_FLAGS",
    "FfmpegBinary",
    "FfmpegReport",
    "ProgressCallback",
    "RunResult",
    "build_args",
    "child_options",
    "decode_check_args",
    "decode_checks_args",
    "find_ffmpeg",
    "inspect_chosen",
    "inspect_ffmpeg",
    "keyframes_ms",
    "kill_group",
    "last_meaningful_line",
    "loopback_decoding",
    "run",
    "run_together",
    "safe_path",
    "smart_cut_audio_args",
    "smart_cut_piece_args",
    "stop_running",
    "too_old",
    "version_of",
]


# prep's command lines use -fps_mode, which came in ffmpeg 5.1: an older ffmpeg stops at
# "Option not found" before it reads a frame. Older binaries are passed over when found on PATH
# and refused when configured.
MIN_VERSION = (5, 1)
MIN_VERSION_REASON = "prep's command lines use -fps_mode"
_VERSION = re.compile(r"^ffmpeg version n?(\d+)\.(\d+)")


@dataclass(frozen=True, slots=True)
class FfmpegBinary:
    """An ffmpeg executable and where it was found (`PREP_FFMPEG`, `PATH` or `imageio-ffmpeg`).

    `note` says what was passed over to find it (an ffmpeg on PATH too old), for the user."""

    path: str
    source: str
    note: str = field(default="", compare=False)


@cache
def version_of(path: str) -> tuple[str, tuple[int, int] | None]:
    """The version an ffmpeg reports (its text, and (major, minor) when it is a release number;
    None for a git build such as N-112345-g..., whose age the text does not tell). Asked once
    per process for each path."""
    try:
        done = subprocess.run([path, "-hide_banner", "-version"], capture_output=True, text=True,
                              errors="replace", timeout=30, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown", None
    first = done.stdout.splitlines()[0] if done.stdout.strip() else ""
    text = first.split(" version ", 1)[1].split(" ")[0] if " version " in first else "unknown"
    found = _VERSION.match(first)
    return text, (int(found[1]), int(found[2])) if found else None


def too_old(version: tuple[int, int] | None) -> bool:
    """Whether a version (from `version_of`) is older than prep's command lines need."""
    return version is not None and version < MIN_VERSION


def _needs() -> str:
    return f"{MIN_VERSION[0]}.{MIN_VERSION[1]} or newer ({MIN_VERSION_REASON})"


@cache
def _find(configured: str | None) -> FfmpegBinary:
    if configured:
        resolved = shutil.which(configured) or (configured if Path(configured).is_file() else None)
        if not resolved or not os.access(resolved, os.X_OK):
            raise ToolMissingError(
                f"{configured}: the configured ffmpeg (PREP_FFMPEG) is missing or not executable",
                hint="fix PREP_FFMPEG, or unset it to use the bundled ffmpeg",
            )
        text, version = version_of(resolved)
        if too_old(version):
            raise _too_old(FfmpegBinary(resolved, "PREP_FFMPEG"), text,
                           "the configured ffmpeg (PREP_FFMPEG)",
                           "install a newer ffmpeg, or unset PREP_FFMPEG (`prep config unset "
                           "ffmpeg`) to use the bundled one")
        return FfmpegBinary(resolved, "PREP_FFMPEG")
    note = ""
    on_path = shutil.which("ffmpeg")
    if on_path:
        text, version = version_of(on_path)
        if not too_old(version):
            return FfmpegBinary(on_path, "PATH")
        note = (f"the ffmpeg on PATH ({on_path}) is version {text}, and prep needs {_needs()}: "
                f"using the one bundled with imageio-ffmpeg instead")
    try:
        import imageio_ffmpeg

        bundled = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as err:
        raise ToolMissingError(
            "no ffmpeg found: none configured, none on PATH"
            f"{' new enough' if note else ''}, and imageio-ffmpeg has no binary",
            hint=f"{install_hint(package='imageio-ffmpeg>=0.6')}, or set PREP_FFMPEG to your "
                 "ffmpeg",
        ) from err
    text, version = version_of(bundled)
    if too_old(version):
        raise _too_old(FfmpegBinary(bundled, "imageio-ffmpeg", note), text,
                       "the ffmpeg bundled with imageio-ffmpeg",
                       f"{install_hint(package='imageio-ffmpeg>=0.6')}, or set PREP_FFMPEG to a newer "
                       "ffmpeg")
    return FfmpegBinary(bundled, "imageio-ffmpeg", note)


def _too_old(binary: FfmpegBinary, version: str, what: str, hint: str) -> ToolMissingError:
    error = ToolMissingError(f"{binary.path}: {what} is version {version}; prep needs {_needs()}",
                             hint=hint)
    error.binary = binary  # type: ignore[attr-defined]  # for `inspect_chosen`
    return error


def inspect_chosen(configured: str | None) -> FfmpegReport:
    """`inspect_ffmpeg` of the ffmpeg prep would use, or of the one it refuses as too old
    (reported with `too_old` set, for `prep doctor`). ToolMissingError when there is none."""
    try:
        return inspect_ffmpeg(_find(configured or None))
    except ToolMissingError as err:
        refused: FfmpegBinary | None = getattr(err, "binary", None)
        if refused is None:
            raise
        return inspect_ffmpeg(refused)


def find_ffmpeg(configured: str | None = None) -> FfmpegBinary:
    """The ffmpeg prep uses, found where it runs: `configured` (the `Settings.ffmpeg` the caller
    passes down: PREP_FFMPEG or the config file's `ffmpeg`), else the one on PATH, else the
    bundled one. Found once per process for each `configured`; ToolMissingError (exit 6) when
    there is none."""
    return _find(configured or None)


# --- what the binary can do (`prep doctor`) ----------------------------------------------------

# What prep needs from ffmpeg, and what it is for.
REQUIRED_ENCODERS = {"libx264": "H.264 video", "aac": "AAC audio"}
REQUIRED_FILTERS = {"zscale": "HDR tone-mapping", "tonemap": "HDR tone-mapping",
                    "bwdif": "deinterlacing", "scale": "resizing"}


@dataclass(frozen=True, slots=True, kw_only=True)
class FfmpegReport:
    """What `prep doctor` says about the ffmpeg in use."""

    path: str
    source: str
    version: str
    features: dict[str, bool]
    too_old: bool = False
    note: str = ""

    @property
    def missing(self) -> tuple[str, ...]:
        """Features prep needs that this ffmpeg lacks."""
        return tuple(name for name, ok in self.features.items() if not ok)

    @property
    def version_problem(self) -> str:
        """Why this ffmpeg's version will not do ("" when it will)."""
        return f"version {self.version} is too old: prep needs {_needs()}" if self.too_old else ""

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of `prep doctor --json`."""
        return {"ffmpeg": self.path, "source": self.source, "version": self.version,
                "version_ok": not self.too_old, "minimum_version": ".".join(map(str, MIN_VERSION)),
                "note": self.note, "features": dict(self.features), "missing": list(self.missing),
                "ok": not self.missing and not self.too_old}


def inspect_ffmpeg(binary: FfmpegBinary | None = None) -> FfmpegReport:
    """Ask the ffmpeg binary for its version, encoders and filters."""
    binary = binary or find_ffmpeg()
    version, number = version_of(binary.path)
    encoders = _names(_capture(binary, ["-encoders"]))
    filters = _names(_capture(binary, ["-filters"]))
    features = {name: name in encoders for name in REQUIRED_ENCODERS}
    features.update({name: name in filters for name in REQUIRED_FILTERS})
    return FfmpegReport(path=binary.path, source=binary.source, version=version, features=features,
                        too_old=too_old(number), note=binary.note)


def _capture(binary: FfmpegBinary, args: list[str]) -> str:
    try:
        done = subprocess.run([binary.path, "-hide_banner", *args], capture_output=True,
                              text=True, timeout=30, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ToolMissingError(f"{binary.path}: ffmpeg could not be run ({err})",
                               hint="fix PREP_FFMPEG, or unset it to use the bundled ffmpeg") from err
    return done.stdout


def _names(listing: str) -> set[str]:
    """Second column of `ffmpeg -encoders` / `-filters` rows (flags, name, description)."""
    names = set()
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.startswith(" ="):
            names.add(parts[1])
    return names


# --- building the command line (pure) --------------------------------------------------------

def safe_path(path: Path | str) -> str:
    """A file name ffmpeg reads as a file: `file:` guards names starting with '-' or holding ':'."""
    text = str(path)
    if text.startswith("-") or ":" in text:
        return "file:" + text
    return text


def _seconds(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


# Outputs never carry an edit list (a server may ignore it, and see media the user cut away);
# negative composition offsets keep the first frame at time 0 without one.
_MOV_FLAGS = "+faststart+negative_cts_offsets"


def build_args(plan: PrepPlan, src: Path | str, out: Path | str) -> list[str]:
    """The ffmpeg arguments (without the binary and the runner's own flags) that carry out `plan`.

    Pure: the only place a command line is built. A `copy` plan needs no ffmpeg and is refused.
    """
    import ffmpeg

    if plan.action == "copy":
        raise ValueError("a copy plan is carried out without ffmpeg")
    input_opts: dict[str, str] = {}
    copy_cut = plan.video is None and plan.end_ms < plan.source_duration_ms
    # A stream copy starts on a keyframe whose time the plan holds in whole ms (rounded down
    # from mp4 tables, to the nearest from ffmpeg): seeking 1 ms later lands on that keyframe,
    # where seeking to the rounded time could land on the one before (a whole extra GOP).
    # Its end is a frame count (-frames:v); -t, 2 ms short of the next keyframe, ends the
    # other streams. A re-encode is cut by exact frame and sample counts.
    nudge_ms = 1 if plan.video is None and plan.start_ms else 0
    if plan.start_ms:
        input_opts["ss"] = _seconds(plan.start_ms + nudge_ms)
    if plan.extend == "loop":
        input_opts["t"] = _seconds(plan.end_ms - plan.start_ms)
    elif copy_cut:
        input_opts["t"] = _seconds(plan.end_ms - plan.start_ms - nudge_ms - 1)
    stream = ffmpeg.input(safe_path(src), **input_opts)
    output_opts: dict[str, object] = {"movflags": _MOV_FLAGS, "use_editlist": 0,
                                      "map_metadata": -1, "map_chapters": -1}
    video = plan.video
    if video is None:
        streams = [stream["v:0"]]
        output_opts["c:v"] = "copy"
        if plan.copy_frames is not None:
            output_opts["frames:v"] = plan.copy_frames
    else:
        streams = [_video_chain(stream["v:0"], plan, video)]
        output_opts.update({
            "c:v": "libx264", "preset": video.preset, "crf": video.crf,
            "maxrate": f"{video.maxrate_kbps}k", "bufsize": f"{video.bufsize_kbps}k",
            "profile:v": "high", "pix_fmt": "yuv420p", "frames:v": video.frame_count,
            "fps_mode": "cfr", "r": f"{video.fps.numerator}/{video.fps.denominator}",
        })
        if video.x264_params:
            output_opts["x264-params"] = ":".join(f"{k}={v}" for k, v in video.x264_params)
        if video.tonemap:
            output_opts.update({"color_primaries": "bt709", "color_trc": "bt709",
                                "colorspace": "bt709", "color_range": "tv"})
    if plan.has_audio:
        audio = plan.audio
        if audio is None:
            streams.append(stream["a:0"])
            output_opts["c:a"] = "copy"
        else:
            streams.append(_audio_chain(stream["a:0"], plan, audio))
            output_opts.update(_audio_options(audio))
    args: list[str] = ffmpeg.output(*streams, safe_path(out), format="mp4", **output_opts).compile()
    return args[1:]


def _audio_chain(chain: Any, plan: PrepPlan, audio: AudioEncode) -> Any:
    """Resampled (normalised, looped) and cut to exactly `audio.sample_count` samples."""
    if plan.loudness is not None:
        # loudnorm's frames can leave a gap in the timestamps (80 ms mid-clip seen with 29.97 fps
        # sources), which the muxer keeps as a longer track: number the samples again instead.
        chain = (chain.filter("loudnorm", **_loudnorm_options(plan.loudness))
                 .filter("asetpts", "STARTPTS+N/SR/TB"))
    chain = chain.filter("aresample", audio.rate)
    if plan.extend == "loop":
        chain = chain.filter("aloop", loop=-1, size=2**31 - 1)
    return chain.filter("apad").filter("atrim", end_sample=audio.sample_count)


def _audio_options(audio: AudioEncode) -> dict[str, object]:
    return {"c:a": "aac", "b:a": f"{audio.bitrate_kbps}k", "ac": audio.channels, "ar": audio.rate}


# --- smart cut: the re-encoded edges and the audio (prep/media/mp4write.py joins them) ---------

def smart_cut_piece_args(src: Path | str, out: Path | str, *, start_ms: int, frames: int,
                         timescale: int, encode: dict[str, str], fps: Fraction,
                         skip_frames: int = 0, decode_check: bool = False,
                         unread: Sequence[int] = (), threads: int | None = None) -> list[str]:
    """One re-encoded edge of a smart cut, video only: `frames` frames from `start_ms`,
    re-encoded with `encode` (libx264 options) at `fps`, leaving out the first `skip_frames`
    frames shown from `start_ms` (counted, not timed). With `decode_check` (an ffmpeg with
    `loopback_decoding`), the encoded frames are also decoded as they are made, and stderr
    holds only errors. `unread`: the file offsets of video packets that never reach the
    decoder (frames no other frame refers to, shown before the piece: an input bitstream
    filter, ffmpeg 7.1+, drops them). `threads`: the decoders' and x264's threads (ffmpeg's
    choice when None). Pure."""
    import ffmpeg

    input_options: dict[str, object] = {"ss": _seconds(start_ms)}
    if unread:
        # `noise` drops the packets its expression is true for: not(pos-N) is 1 at offset N only.
        input_options["bsf:v"] = "noise=drop=" + "+".join(f"not(pos-{n})" for n in unread)
    if threads:
        input_options["threads"] = threads
    stream = ffmpeg.input(safe_path(src), **input_options)["v:0"]
    if skip_frames:
        stream = stream.trim(start_frame=skip_frames).setpts("PTS-STARTPTS")
    options: dict[str, object] = {"frames:v": frames, "video_track_timescale": timescale,
                                  "movflags": "+negative_cts_offsets", "use_editlist": 0,
                                  "map_metadata": -1, "map_chapters": -1, "c:v": "libx264",
                                  "pix_fmt": "yuv420p", "fps_mode": "cfr",
                                  "r": f"{fps.numerator}/{fps.denominator}", **encode}
    if threads:
        options["threads"] = threads
    args: list[str] = ffmpeg.output(stream, safe_path(out), format="mp4", **options).compile()
    if decode_check:
        # A loopback decoder (ffmpeg 7.1+) decodes the encoder's packets in the same process,
        # and `-v error` leaves on stderr only what went wrong, as `decode_check_args` does.
        check = ["-threads", str(threads)] if threads else []
        return ["-v", "error", *args[1:], *check, "-dec", "0:0", "-filter_complex",
                "[dec:0]null[check]", "-map", "[check]", "-f", "null", "-"]
    return args[1:]


def loopback_decoding(path: str) -> bool:
    """Whether the ffmpeg at `path` has loopback decoders (`-dec`, ffmpeg 7.1 on): an encode
    can then decode its own output in the same process. False when its version is not a
    release number (a git build) or it cannot be run."""
    version = version_of(path)[1]
    return version is not None and version >= (7, 1)


def smart_cut_audio_args(plan: PrepPlan, src: Path | str, out: Path | str) -> list[str]:
    """The audio of a smart cut, made beside its video pieces: the source's audio from the plan's
    start, re-encoded to end with the video (as `build_args` cuts it). Pure."""
    import ffmpeg

    assert plan.audio is not None
    audio_in = ffmpeg.input(safe_path(src), ss=_seconds(plan.start_ms))["a:0"]
    args: list[str] = ffmpeg.output(_audio_chain(audio_in, plan, plan.audio), safe_path(out),
                                    format="mp4", use_editlist=0, map_metadata=-1,
                                    map_chapters=-1, **_audio_options(plan.audio)).compile()
    return args[1:]


def decode_check_args(src: Path | str, *, seek_ms: int = 0, frames: int | None = None) -> list[str]:
    """Decode the video of `src` and keep nothing: every frame, or from the keyframe at or before
    `seek_ms` up to `frames` frames shown. Run with `-v error`: any line on stderr is a decoding
    error. Pure."""
    return decode_checks_args(src, [(seek_ms, frames)])


def decode_checks_args(src: Path | str, ranges: Sequence[tuple[int, int | None]]) -> list[str]:
    """Several `decode_check_args` ranges of `src`, each `(seek_ms, frames)`, decoded by one
    ffmpeg (one start instead of one per range). Pure."""
    import ffmpeg

    outputs = []
    for seek_ms, frames in ranges:
        input_opts: dict[str, str] = {"ss": _seconds(seek_ms)} if seek_ms else {}
        options: dict[str, object] = {} if frames is None else {"frames:v": frames}
        outputs.append(ffmpeg.input(safe_path(src), **input_opts)["v:0"].output(
            "-", format="null", **options))
    args: list[str] = ffmpeg.merge_outputs(*outputs).compile()
    return ["-v", "error", *args[1:]]


def _loudnorm_options(loudness: Loudness) -> dict[str, Any]:
    options: dict[str, Any] = {"I": f"{loudness.target_lufs:g}",
                               "TP": f"{loudness.true_peak_db:g}", "LRA": f"{loudness.range_lu:g}"}
    measured = dict(loudness.measured)
    if measured:
        # The second pass: the first pass's figures let loudnorm apply one gain (linear).
        options.update({"measured_I": f"{measured['input_i']:g}",
                        "measured_TP": f"{measured['input_tp']:g}",
                        "measured_LRA": f"{measured['input_lra']:g}",
                        "measured_thresh": f"{measured['input_thresh']:g}",
                        "offset": f"{measured['target_offset']:g}", "linear": "true"})
    return options


def loudness_scan_args(src: Path | str, loudness: Loudness, *, start_ms: int = 0,
                       duration_ms: int | None = None) -> list[str]:
    """Arguments of loudnorm's measuring pass over the audio of `src` (from `start_ms`, for
    `duration_ms`); `parse_loudnorm` reads its answer from stderr. Pure."""
    import ffmpeg

    input_opts: dict[str, str] = {}
    if start_ms:
        input_opts["ss"] = _seconds(start_ms)
    if duration_ms is not None:
        input_opts["t"] = _seconds(duration_ms)
    chain = ffmpeg.input(safe_path(src), **input_opts)["a:0"].filter(
        "loudnorm", **_loudnorm_options(replace(loudness, measured=())), print_format="json")
    args: list[str] = ffmpeg.output(chain, "-", format="null").compile()
    return args[1:]


def parse_loudnorm(stderr: str) -> dict[str, float]:
    """The figures of loudnorm's JSON summary at the end of ffmpeg's stderr (empty if none)."""
    import json

    start, end = stderr.rfind("{"), stderr.rfind("}")
    if start < 0 or end < start:
        return {}
    try:
        data = json.loads(stderr[start:end + 1])
    except ValueError:
        return {}
    out: dict[str, float] = {}
    for key, value in data.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if number == number and abs(number) != float("inf"):
            out[key] = number
    return out


def _video_chain(stream: Any, plan: PrepPlan, video: VideoEncode) -> Any:
    """Filters in the order that keeps quality and speed: deinterlace, size/tone, rate, pixels."""
    if video.deinterlace:
        stream = stream.filter("bwdif", mode="send_frame")
    if video.tonemap:
        transfer = "smpte2084" if video.tonemap == "PQ" else "arib-std-b67"
        # Resize while still in HDR (cheaper at the smaller size), then go to linear light
        # scaled so that 1.0 is HDR reference white (npl; zimg applies HLG's OOTF at its
        # nominal 1000 cd/m2 and reads PQ as absolute levels), which becomes SDR white: up to
        # white the picture is the plain conversion's (zscale's, npl at reference white). Above
        # it, highlights up to the peak roll off into BT.709's headroom over white (up to code
        # 254, SDR_HEADROOM in linear light) instead of being clipped: Mobius leaves everything
        # below its knee as it is and maps the peak to 1.0, so the light is divided by the
        # headroom first (white lands on the knee) and multiplied back after. Mobius scales each
        # pixel by its brightest component, so it runs while the primaries are still
        # BT.2020's: there, a colour of the BT.709 gamut within white has every component
        # within white, and is not touched; the gamut conversion after it clips channel by
        # channel what lies outside BT.709.
        peak = Fraction(video.hdr_peak_nits, HDR_REFERENCE_WHITE_NITS)
        stream = (stream.filter("zscale", w=video.width, h=video.height, tin=transfer,
                                pin="bt2020", min="bt2020nc", t="linear",
                                npl=HDR_REFERENCE_WHITE_NITS)
                  .filter("format", "gbrpf32le"))
        if peak > 1:
            down, up = f"{float(1 / SDR_HEADROOM):.6f}", f"{float(SDR_HEADROOM):.6f}"
            stream = (stream.filter("colorchannelmixer", rr=down, gg=down, bb=down)
                      .filter("tonemap", tonemap="mobius", param=down, desat=0,
                              peak=f"{float(peak / SDR_HEADROOM):.4f}")
                      .filter("colorchannelmixer", rr=up, gg=up, bb=up))
        stream = stream.filter("zscale", p="bt709", t="bt709", m="bt709", r="tv")
    elif video.scale:
        stream = stream.filter("scale", video.width, video.height, flags="bicubic")
    stream = stream.filter("setsar", "1")
    if video.vfr_to_cfr:
        stream = stream.filter("fps", f"{video.fps.numerator}/{video.fps.denominator}")
    stream = stream.filter("format", "yuv420p")
    if plan.extend == "loop":
        # Loop the window's frames (counted at the output rate) until -frames:v stops it.
        window = -(-(plan.end_ms - plan.start_ms) * video.fps // 1000)
        stream = stream.filter("loop", loop=-1, size=max(1, min(32767, int(window))))
    elif plan.extend == "freeze":
        stream = stream.filter("tpad", stop_mode="clone", stop=-1)
    return stream


# --- running it ---------------------------------------------------------------------------------

RUNNER_FLAGS = ["-nostdin", "-hide_banner", "-y", "-progress", "pipe:1", "-nostats"]
ProgressCallback = Callable[[int, int], None]
# stderr lines that say nothing about what went wrong.
_NOISE = re.compile(r"^(\s|Input #|Output #|Stream #|Stream mapping|Press \[q\]|\s*Metadata|"
                    r"\s*Duration|Conversion failed|Exiting normally|\[out#|\[aost|\[vost|frame=)")


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished ffmpeg run: its stderr, for --verbose and debugging."""

    stderr: str


def run(args: list[str], *, total_ms: int, path: Path | str, on_progress: ProgressCallback | None = None,
        binary: FfmpegBinary | None = None) -> RunResult:
    """Run ffmpeg with `args` (from `build_args`), reporting (done_ms, total_ms) as it goes.

    Both pipes are drained by threads while ffmpeg runs (an unread pipe stalls it). ffmpeg is
    killed in `finally`, so Ctrl-C never leaves it running; and it runs in its own process group
    with the parent-death signal set (`child_options`), so even a prep killed with SIGKILL takes
    it along. A failure raises FfmpegError naming `path` with ffmpeg's last meaningful line; a
    full disk says so.
    """
    running = _start(args, path, binary or find_ffmpeg())
    try:
        return _wait(running, total_ms, on_progress)
    finally:
        _stop(running)


def run_together(jobs: Sequence[tuple[list[str], Path | str]], *,
                 binary: FfmpegBinary | None = None) -> list[RunResult]:
    """Run several independent ffmpegs at once, each `(args, path)` as `run` runs one; their
    results in the same order. The first failure is raised, and every ffmpeg still running is
    killed then, as on Ctrl-C."""
    binary = binary or find_ffmpeg()
    running: list[_Running] = []
    ended: queue.Queue[int] = queue.Queue()
    results: dict[int, RunResult] = {}
    try:
        for index, (args, path) in enumerate(jobs):
            running.append(_start(args, path, binary))
            threading.Thread(target=_tell_end, args=(running[-1].proc, index, ended),
                             daemon=True).start()
        while len(results) < len(running):  # in the order they end: a failure stops the rest
            index = ended.get()
            results[index] = _wait(running[index], 1, None)
        return [results[index] for index in range(len(running))]
    finally:
        for one in running:
            _stop(one)


# Every ffmpeg `run` and `run_together` have started and not yet stopped, in any thread: what
# `stop_running` kills when prepare works on several clips at once and is interrupted.
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def stop_running() -> None:
    """Kill every ffmpeg this process started through `run`/`run_together` that still runs (an
    interrupted prepare of several clips at once: the threads waiting on them then fail and
    clean up as on Ctrl-C)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        if proc.poll() is None:
            kill_group(proc)


def _tell_end(proc: subprocess.Popen[bytes], index: int, ended: queue.Queue[int]) -> None:
    proc.wait()
    ended.put(index)


@dataclass(slots=True)
class _Running:
    """An ffmpeg started by `_start`, with the threads draining its pipes."""

    proc: subprocess.Popen[bytes]
    path: Path | str
    events: queue.Queue[int | None]
    stderr_lines: deque[str]
    readers: list[threading.Thread]


def _start(args: list[str], path: Path | str, binary: FfmpegBinary) -> _Running:
    argv = [binary.path, *RUNNER_FLAGS, *args]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, **child_options())
    except OSError as err:
        raise ToolMissingError(f"{binary.path}: ffmpeg could not be started ({err})",
                               hint="fix PREP_FFMPEG, or unset it to use the bundled ffmpeg") from err
    with _LIVE_LOCK:
        _LIVE.add(proc)
    events: queue.Queue[int | None] = queue.Queue()
    stderr_lines: deque[str] = deque(maxlen=400)
    readers = [threading.Thread(target=_read_progress, args=(proc.stdout, events), daemon=True),
               threading.Thread(target=_read_lines, args=(proc.stderr, stderr_lines), daemon=True)]
    for reader in readers:
        reader.start()
    return _Running(proc, path, events, stderr_lines, readers)


def _wait(running: _Running, total_ms: int, on_progress: ProgressCallback | None) -> RunResult:
    """Follow an ffmpeg to its end: its progress, then its exit status (FfmpegError if not 0)."""
    while True:
        done_us = running.events.get()
        if done_us is None:
            break
        if on_progress:
            on_progress(min(total_ms, max(0, done_us // 1000)), total_ms)
    returncode = running.proc.wait()
    for reader in running.readers:
        reader.join(timeout=5)
    stderr = "\n".join(running.stderr_lines)
    if returncode != 0:
        raise _failure(running.path, returncode, list(running.stderr_lines), stderr)
    if on_progress:
        on_progress(total_ms, total_ms)
    return RunResult(stderr)


def _stop(running: _Running) -> None:
    """Kill an ffmpeg that is still running (Ctrl-C, or a sibling failed) and close its pipes."""
    if running.proc.poll() is None:
        kill_group(running.proc)
    for reader in running.readers:
        reader.join(timeout=5)
    for pipe in (running.proc.stdout, running.proc.stderr):
        if pipe is not None:
            pipe.close()
    with _LIVE_LOCK:
        _LIVE.discard(running.proc)


# prctl(2) option: the signal the kernel sends this process when its parent dies.
_PR_SET_PDEATHSIG = 1


@cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up once in the parent (the child only calls it). None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    call: Callable[..., int] = prctl
    return call


def child_options() -> dict[str, Any]:
    """Popen options for every ffmpeg prep starts, so none outlives prep.

    Its own process group: a terminal's Ctrl-C reaches prep alone, which stops ffmpeg itself
    and removes the temp file (ffmpeg would otherwise finish a half-written output), and the
    group is killed whole. On Linux, also the parent-death signal (SIGKILL): if prep is killed
    outright, the kernel kills ffmpeg too. The signal follows the thread that started ffmpeg,
    which `run` keeps waiting until ffmpeg ends.
    """
    options: dict[str, Any] = {"process_group": 0}
    prctl = _prctl()
    if prctl is not None:
        parent = os.getpid()

        def die_with_parent() -> None:  # runs in the child, between fork and exec
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # prep died before the signal was armed
                os._exit(1)

        options["preexec_fn"] = die_with_parent
    return options


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill ffmpeg and anything it started (its process group), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):  # AttributeError: not POSIX
        proc.kill()
    proc.wait()


def _read_progress(pipe: IO[bytes] | None, events: queue.Queue[int | None]) -> None:
    """`-progress pipe:1` prints key=value lines; out_time_us is how far the output has got."""
    try:
        if pipe is None:
            return
        for raw in pipe:
            key, _, value = raw.decode("utf-8", "replace").strip().partition("=")
            if key == "out_time_us" and value.lstrip("-").isdigit():
                events.put(int(value))
    finally:
        events.put(None)


def _read_lines(pipe: IO[bytes] | None, lines: deque[str]) -> None:
    if pipe is None:
        return
    for raw in pipe:
        lines.append(raw.decode("utf-8", "replace").rstrip())


def last_meaningful_line(lines: list[str]) -> str:
    """The stderr line that best says what went wrong (the last one that is not boilerplate)."""
    for line in reversed(lines):
        if line.strip() and not _NOISE.match(line):
            return line.strip()
    return lines[-1].strip() if lines else "no message"


def _failure(path: Path | str, returncode: int, lines: list[str], stderr: str) -> PrepError:
    text = stderr.lower()
    if returncode == -getattr(signal, "SIGXFSZ", 25) or "no space left" in text \
            or "file too large" in text or "disk quota" in text:  # SIGXFSZ: POSIX only
        return FfmpegError(path, "the output disk is full (or a file size limit was hit)",
                           hint="free some space or choose another -o folder", detail=stderr)
    if returncode < 0:
        return FfmpegError(path, f"ffmpeg was stopped by signal {-returncode}", detail=stderr)
    return FfmpegError(path, f"ffmpeg failed: {last_meaningful_line(lines)}",
                       hint="run with --verbose for ffmpeg's full output", detail=stderr)


def keyframes_ms(path: Path | str, *, binary: FfmpegBinary | None = None) -> tuple[int, ...]:
    """Times of the video keyframes, for containers without an mp4 index: ffmpeg decodes only
    the keyframes (-skip_frame nokey) and reports their times. MediaError if it cannot."""
    binary = binary or find_ffmpeg()
    argv = [binary.path, "-nostdin", "-hide_banner", "-nostats", "-skip_frame", "nokey",
            "-i", safe_path(path), "-map", "0:v:0", "-an", "-sn", "-dn",
            "-vf", "showinfo", "-f", "null", "-"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False,
                              stdin=subprocess.DEVNULL, timeout=600, **child_options())
    except (OSError, subprocess.TimeoutExpired) as err:
        raise FfmpegError(path, f"keyframes could not be read ({err})") from err
    if done.returncode != 0:
        raise FfmpegError(path, f"ffmpeg failed: {last_meaningful_line(done.stderr.splitlines())}",
                          detail=done.stderr)
    times = [round(float(m[1]) * 1000) for m in re.finditer(r"pts_time:\s*(-?[\d.]+)", done.stderr)]
    first = min(times, default=0)
    return tuple(t - first for t in times)
