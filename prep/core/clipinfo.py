"""What a probed clip is (`ClipInfo`) and the API's verdict on it (`assess`): pure data and rules.

`prep.media.probe` fills a `ClipInfo` from a file; everything here is a pure function of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import field
from fractions import Fraction
from pathlib import Path
from typing import Any

from prep.core import rules
from prep.core.modelspec import ModelSpec
from prep.core.record import record
from prep.core.timecode import format_ms

__all__ = ["ClipInfo", "Verdict", "assess"]

@record(frozen=True, slots=True, kw_only=True)
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
    # What is wrong with an mp4 / mov index that MediaInfo read past (prep's own reading of it).
    index_damage: str | None = None

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
            "index_damage": self.index_damage,
        }


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def _ratio_text(value: Fraction) -> str:
    return f"{value.numerator}:{value.denominator}"


@record(frozen=True, slots=True)
class Verdict:
    """`compliant` is strictly the API's verdict; `advice` is what prep would still change."""

    compliant: bool
    problems: tuple[str, ...]
    advice: tuple[str, ...]


def assess(info: ClipInfo, spec: ModelSpec = rules.WAN26) -> Verdict:
    """Judge a probed clip against a model's rules (wan2.6 unless told) and against a clean
    reference. Pure. The same clip can pass one model and fail another: a 1.2 s clip is too short
    for wan2.6 and fine for wan3.0; a 20 s clip is fine for wan2.6 and too long for wan3.0."""
    who = "the API" if spec.legacy else spec.id
    limits = spec.videos
    problems: list[str] = []
    if info.container not in limits.formats:
        problems.append(f"the container is {info.container}; {who} takes only "
                        f"{' or '.join(limits.formats)}")
    shortest, longest = info.min_duration_ms, info.max_duration_ms
    span = limits.duration_ms
    if span is not None and shortest < span.low:
        problems.append(
            f"it is {format_ms(shortest)} s long; {who} needs at least {format_ms(span.low)} s"
        )
    if span is not None and longest > span.high:
        problems.append(
            f"it is {format_ms(longest)} s long; {who} takes at most {format_ms(span.high)} s "
            f"(prep uses the first {span.high // 1000} s unless you give a window: "
            "PATH@START-END)"
        )
    if limits.max_bytes is not None and info.size_bytes > limits.max_bytes:
        problems.append(
            f"it is {info.size_bytes:,} bytes; {who} takes at most {limits.max_bytes:,} bytes"
        )
    width, height = info.display_size
    if limits.side_px is not None and width and height and not (
            width in limits.side_px and height in limits.side_px):
        problems.append(f"it is {width}x{height}; {who} takes {limits.side_px.text(' px')} a side")
    if limits.aspect is not None and width and height and not (
            limits.aspect[0] <= Fraction(width, height) <= limits.aspect[1]):
        problems.append(f"its aspect ratio {width}:{height} is beyond {who}'s 1:8 to 8:1")
    if info.index_damage:
        problems.append(f"its index is damaged ({info.index_damage}); a server reading it would "
                        "refuse the file")
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
        yield (f"{width}x{height} is above 1080p: prep scales it to fit "
               f"{rules.MAX_CLEAN_WIDTH}x{rules.MAX_CLEAN_HEIGHT}")
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


