"""Probing: a file on disk becomes a `ClipInfo` (pymediainfo), judged against the API's rules.

`probe` does the I/O; `assess` is a pure function of the `ClipInfo` that says whether EvoLink would
accept the file (`problems`) and what prep would still change for a clean reference (`advice`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from . import rules
from .errors import MediaError
from .timecode import format_ms

__all__ = ["ClipInfo", "Verdict", "assess", "probe", "probe_many"]

_CONTAINERS = {
    "matroska": "mkv", "webm": "webm", "avi": "avi", "mpeg-ps": "mpeg-ps", "mpeg-ts": "mpeg-ts",
    "bdav": "mpeg-ts", "mxf": "mxf", "flash video": "flv", "windows media": "wmv", "ogg": "ogg",
    "dv": "dv", "realmedia": "rm",
}
_VIDEO_CODECS = {
    "avc": "h264", "hevc": "hevc", "prores": "prores", "vp8": "vp8", "vp9": "vp9", "av1": "av1",
    "jpeg": "mjpeg", "mpeg-4 visual": "mpeg4", "dv": "dvvideo", "ffv1": "ffv1", "vc-1": "vc1",
    "dnxhd": "dnxhd", "vc-3": "dnxhd", "theora": "theora", "h.263": "h263", "cineform": "cfhd",
}
_AUDIO_CODECS = {
    "aac": "aac", "pcm": "pcm", "ac-3": "ac3", "e-ac-3": "eac3", "opus": "opus", "vorbis": "vorbis",
    "flac": "flac", "alac": "alac", "dts": "dts", "wma": "wma", "amr": "amr",
}
_NTSC = (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001), Fraction(120000, 1001))
_MEDIAINFO_OPTIONS = {"File_TestContinuousFileNames": "0", "ParseSpeed": "0.5"}
# libmediainfo keeps options process-wide: two threads parsing at once corrupt each other's
# output or crash the process, so every parse in the process takes this lock.
_MEDIAINFO_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True, kw_only=True)
class ClipInfo:
    """What a clip is, as far as EvoLink and prep care. Durations in ms, sizes in bytes."""

    path: Path
    size_bytes: int
    container: str
    container_format: str
    duration_ms: int
    video_duration_ms: int | None
    audio_duration_ms: int | None
    video_codec: str
    video_profile: str | None
    width: int
    height: int
    pixel_aspect: Fraction = Fraction(1)
    rotation: int = 0
    fps: Fraction | None = None
    vfr: bool = False
    frame_count: int | None = None
    bit_depth: int | None = 8
    chroma_subsampling: str | None = "4:2:0"
    color_primaries: str | None = None
    transfer: str | None = None
    hdr: str | None = None
    interlaced: bool = False
    audio_codec: str | None = None
    audio_channels: int | None = None
    audio_rate: int | None = None
    faststart: bool = True
    video_bitrate: int | None = None
    extra_streams: tuple[str, ...] = field(default=())

    @property
    def has_audio(self) -> bool:
        """Whether the clip carries an audio stream (the model takes the voice from it)."""
        return self.audio_codec is not None

    @property
    def durations_ms(self) -> tuple[int, ...]:
        """Container, video and audio durations, those that are known."""
        values = (self.duration_ms, self.video_duration_ms, self.audio_duration_ms)
        return tuple(v for v in values if v)

    @property
    def min_duration_ms(self) -> int:
        """The shortest of container, video and audio: what a strict server could measure."""
        return min(self.durations_ms)

    @property
    def max_duration_ms(self) -> int:
        """The longest of container, video and audio: what a generous server could measure."""
        return max(self.durations_ms)

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown: square pixels, rotation applied."""
        width = round(self.width * self.pixel_aspect)
        return (self.height, width) if self.rotation in (90, 270) else (width, self.height)

    @property
    def display_aspect(self) -> Fraction:
        """Display aspect ratio after pixel aspect and rotation."""
        width, height = self.display_size
        return Fraction(width, height) if height else Fraction(0)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `prep probe --json` (contract: extend, never rename)."""
        width, height = self.display_size
        return {
            "path": str(self.path),
            "duration_s": self.duration_ms / 1000,
            "video_duration_s": _seconds(self.video_duration_ms),
            "audio_duration_s": _seconds(self.audio_duration_ms),
            "size_bytes": self.size_bytes,
            "container": self.container,
            "video_codec": self.video_codec,
            "video_profile": self.video_profile,
            "width": self.width,
            "height": self.height,
            "display_width": width,
            "display_height": height,
            "display_aspect": _ratio_text(self.display_aspect),
            "pixel_aspect": _ratio_text(self.pixel_aspect),
            "rotation": self.rotation,
            "fps": float(self.fps) if self.fps else None,
            "fps_exact": _ratio_text(self.fps) if self.fps else None,
            "vfr": self.vfr,
            "frame_count": self.frame_count,
            "bit_depth": self.bit_depth,
            "chroma_subsampling": self.chroma_subsampling,
            "hdr": self.hdr,
            "color_primaries": self.color_primaries,
            "transfer": self.transfer,
            "interlaced": self.interlaced,
            "faststart": self.faststart,
            "has_audio": self.has_audio,
            "audio_codec": self.audio_codec,
            "audio_channels": self.audio_channels,
            "audio_rate": self.audio_rate,
        }


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def _ratio_text(value: Fraction) -> str:
    return f"{value.numerator}:{value.denominator}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """`compliant` is strictly the API's verdict; `advice` is what prep would still change."""

    compliant: bool
    problems: tuple[str, ...]
    advice: tuple[str, ...]


def assess(info: ClipInfo) -> Verdict:
    """Judge a probed clip against the API's rules and against a clean reference. Pure."""
    problems: list[str] = []
    if info.container not in rules.CONTAINERS:
        problems.append(f"the container is {info.container}; the API takes only mp4 or mov")
    shortest, longest = info.min_duration_ms, info.max_duration_ms
    if shortest < rules.MIN_CLIP_MS:
        problems.append(
            f"it is {format_ms(shortest)} s long; the API needs at least "
            f"{format_ms(rules.MIN_CLIP_MS)} s"
        )
    if longest > rules.MAX_CLIP_MS:
        problems.append(
            f"it is {format_ms(longest)} s long; the API takes at most {format_ms(rules.MAX_CLIP_MS)} s "
            "(prep uses the first 30 s unless you give a window: PATH@START-END)"
        )
    if info.size_bytes > rules.MAX_FILE_BYTES:
        problems.append(
            f"it is {info.size_bytes:,} bytes; the API takes at most {rules.MAX_FILE_BYTES:,} bytes"
        )
    return Verdict(not problems, tuple(problems), tuple(_advice(info)))


def _advice(info: ClipInfo) -> Iterable[str]:
    codec = info.video_codec
    if codec != "h264":
        yield f"{_codec_name(codec)} video: prep re-encodes it to H.264, which every decoder takes"
    if info.bit_depth and info.bit_depth > 8:
        yield f"{info.bit_depth}-bit video: prep converts it to 8-bit"
    if info.hdr:
        yield f"HDR ({info.hdr}): prep tone-maps it to SDR BT.709 so faces are not washed out"
    if info.chroma_subsampling and info.chroma_subsampling != "4:2:0":
        yield f"{info.chroma_subsampling} chroma: prep converts it to 4:2:0"
    width, height = info.display_size
    if max(width, height) > rules.MAX_CLEAN_WIDTH or min(width, height) > rules.MAX_CLEAN_HEIGHT:
        yield f"{width}x{height} is above 1080p: prep scales it to fit 1920x1080"
    if info.width % 2 or info.height % 2:
        yield f"odd dimensions ({info.width}x{info.height}): prep makes them even"
    if info.pixel_aspect != 1:
        yield f"non-square pixels ({_ratio_text(info.pixel_aspect)}): prep makes them square"
    if info.rotation:
        yield f"rotation flag of {info.rotation} degrees: prep bakes it into upright pixels"
    if info.vfr:
        yield "variable frame rate: prep converts it to a constant rate"
    if info.interlaced:
        yield "interlaced: prep deinterlaces it"
    if not info.has_audio:
        yield "no audio: a reference with no audio gives the model no voice to extract"
    elif info.audio_codec != "aac":
        yield f"{info.audio_codec} audio: prep converts it to AAC"
    if info.container in ("mp4", "mov") and not info.faststart:
        yield "the index (moov) sits at the end: prep moves it to the front (fast start)"
    if info.container == "mov":
        yield "QuickTime container: prep rewraps it as mp4"


def _codec_name(codec: str) -> str:
    names = {"hevc": "HEVC", "prores": "ProRes", "vp9": "VP9", "av1": "AV1", "mpeg2video": "MPEG-2",
             "mjpeg": "MJPEG", "vp8": "VP8", "mpeg4": "MPEG-4 Part 2"}
    return names.get(codec, codec)


# --- probing ---------------------------------------------------------------------------------

def probe(path: Path | str) -> ClipInfo:
    """Probe one file. Raises MediaError (exit 3) naming the file and what is wrong."""
    path = Path(path)
    _check_readable(path)
    from pymediainfo import MediaInfo  # heavy-ish: loads libmediainfo; keep `prep --help` fast

    try:
        with _MEDIAINFO_LOCK:
            media = MediaInfo.parse(path, mediainfo_options=_MEDIAINFO_OPTIONS)
    except Exception as err:  # pymediainfo raises bare Exceptions for library problems
        raise MediaError(path, f"could not be read by MediaInfo ({err})") from err
    return _clip_info(path, media)


def probe_many(paths: Iterable[Path | str]) -> list[ClipInfo | MediaError]:
    """Probe each file, in order; a bad file yields its MediaError in place, so the others answer.

    Serial on purpose: libmediainfo keeps some options process-wide, so parallel threads corrupt
    each other's output (seen: frame rates coming back as "30.000 FPS").
    """
    out: list[ClipInfo | MediaError] = []
    for path in paths:
        try:
            out.append(probe(path))
        except MediaError as err:
            out.append(err)
    return out


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise MediaError(path, "no such file", hint="check the path and its spelling")
    if path.is_dir():
        raise MediaError(path, "is a folder with no video files in it", hint="pass video files")
    if not os.access(path, os.R_OK):
        raise MediaError(path, "cannot be read (permission denied)", hint=f"chmod +r {path}")
    if path.stat().st_size == 0:
        raise MediaError(path, "is empty (0 bytes)", hint="re-export or re-copy the clip")


def _clip_info(path: Path, media: Any) -> ClipInfo:
    general = media.general_tracks[0] if media.general_tracks else None
    videos, audios = media.video_tracks, media.audio_tracks
    fmt = (general.format or "") if general else ""
    if not videos:
        if media.image_tracks:
            raise MediaError(path, f"is an image ({fmt or 'picture'}), not a video",
                             hint="pass a video clip")
        if audios:
            raise MediaError(path, "has audio but no video stream", hint="pass a video clip")
        if fmt in ("MPEG-4", "QuickTime"):
            raise MediaError(path, "is truncated or damaged: its index (moov atom) is missing",
                             hint="copy or re-export the clip again")
        raise MediaError(path, "is not a video file (no video stream found)",
                         hint="pass an mp4, mov, mkv or another video file")
    video = videos[0]
    audio = audios[0] if audios else None
    general_ms = _ms(general.duration) if general else None
    video_ms = _ms(video.duration)
    audio_ms = _ms(audio.duration) if audio else None
    duration_ms = general_ms or video_ms or audio_ms
    width, height = _int(video.width), _int(video.height)
    if not duration_ms or not width or not height:
        raise MediaError(path, "is damaged: its video stream has no duration or size",
                         hint="copy or re-export the clip again")
    transfer = video.transfer_characteristics
    hdr = "PQ" if transfer and "PQ" in transfer else "HLG" if transfer and "HLG" in transfer else None
    scan = (video.scan_type or "").lower()
    return ClipInfo(
        path=path,
        size_bytes=path.stat().st_size,
        container=_container(general),
        container_format=fmt,
        duration_ms=duration_ms,
        video_duration_ms=video_ms,
        audio_duration_ms=audio_ms,
        video_codec=_video_codec(video),
        video_profile=video.format_profile,
        width=width,
        height=height,
        pixel_aspect=_pixel_aspect(video.pixel_aspect_ratio),
        rotation=round(float(video.rotation or 0)) % 360,
        fps=_fps(video),
        vfr=(video.frame_rate_mode or "").upper() == "VFR",
        frame_count=_int(video.frame_count),
        bit_depth=_int(video.bit_depth),
        chroma_subsampling=video.chroma_subsampling,
        color_primaries=video.color_primaries,
        transfer=transfer,
        hdr=hdr,
        interlaced=scan in ("interlaced", "mbaff", "paff"),
        audio_codec=_audio_codec(audio) if audio else None,
        audio_channels=_int(audio.channel_s) if audio else None,
        audio_rate=_int(audio.sampling_rate) if audio else None,
        faststart=(general.isstreamable or "Yes") == "Yes" if general else True,
        video_bitrate=_int(video.bit_rate),
        extra_streams=tuple(t.track_type for t in media.tracks[1:]
                            if t.track_type not in ("Video", "Audio"))
        + (("Video",) * (len(videos) - 1)) + (("Audio",) * max(0, len(audios) - 1)),
    )


def _container(general: Any) -> str:
    fmt = (general.format or "").lower()
    if fmt in ("mpeg-4", "quicktime"):
        brand = (general.codec_id or "").strip().lower()
        profile = (general.format_profile or "").lower()
        if brand == "qt" or profile == "quicktime" or fmt == "quicktime":
            return "mov"
        if brand.startswith("m4v"):
            return "m4v"
        return "mp4"
    return _CONTAINERS.get(fmt, fmt or "unknown")


def _video_codec(video: Any) -> str:
    fmt = (video.format or "").lower()
    if fmt == "mpeg video":
        return "mpeg1video" if "1" in (video.format_version or "") else "mpeg2video"
    return _VIDEO_CODECS.get(fmt, fmt or "unknown")


def _audio_codec(audio: Any) -> str:
    fmt = (audio.format or "").lower()
    if fmt == "mpeg audio":
        return "mp3" if "3" in (audio.format_profile or "") else "mp2"
    return _AUDIO_CODECS.get(fmt, fmt or "unknown")


def _fps(video: Any) -> Fraction | None:
    num, den = _int(video.framerate_num), _int(video.framerate_den)
    if num and den:
        return Fraction(num, den)
    if not video.frame_rate:
        return None
    try:
        approx = Fraction(str(video.frame_rate).split()[0])
    except ValueError:
        return None
    for rate in _NTSC:
        if abs(approx - rate) < Fraction(1, 500):
            return rate
    return approx.limit_denominator(1001)


def _pixel_aspect(text: Any) -> Fraction:
    if not text:
        return Fraction(1)
    value = Fraction(str(text)).limit_denominator(100)
    return Fraction(1) if abs(value - 1) < Fraction(1, 200) else value


def _ms(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return round(float(value))
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(float(str(value).split("/")[0].split(" ")[0]))
    except ValueError:
        return None
