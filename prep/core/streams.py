"""What each stream of a probed clip needs from prep, pure: why its video or audio must be
re-encoded, and the picture size and frame rate a re-encode makes.

Both the window (`prep.core.window`: a clip used whole as it is must need no re-encoding) and the
plan (`prep.core.plan`: what is copied and what is encoded) ask these questions.
"""

from __future__ import annotations

from fractions import Fraction

from prep.core import rules
from prep.core.clipinfo import ClipInfo, assess
from prep.core.timecode import round_half_up

__all__ = [
    "MAX_OUTPUT_FPS",
    "audio_reasons",
    "output_fps",
    "output_size",
    "usable_as_is",
    "video_reasons",
]

MAX_OUTPUT_FPS = Fraction(60)
_COMMON_RATES = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001),
                 Fraction(30), Fraction(50), Fraction(60000, 1001), Fraction(60))
# AAC with one or two channels is what the API takes, at any sample rate: it is copied.
_PLAIN_AUDIO = ("aac",)


def usable_as_is(info: ClipInfo) -> bool:
    """The API takes the source as it is and prep would not re-encode any of its streams."""
    return assess(info).compliant and not video_reasons(info) and not audio_reasons(info)


def video_reasons(info: ClipInfo, min_side_px: int = 0) -> list[str]:
    """Why the video must be re-encoded for the API (empty: its packets can be copied);
    `min_side_px`: the chosen model's smallest side (see `output_size`)."""
    reasons = []
    if info.video_codec != "h264":
        reasons.append(f"{info.video_codec} video")
    if info.bit_depth and info.bit_depth > 8:
        reasons.append(f"{info.bit_depth}-bit video")
    if info.hdr:
        reasons.append(f"HDR ({info.hdr})")
    if info.chroma_subsampling and info.chroma_subsampling != "4:2:0":
        reasons.append(f"{info.chroma_subsampling} chroma")
    if (info.video_profile or "").lower().startswith(("high 10", "high 4:2:2", "high 4:4:4")):
        reasons.append(f"H.264 {info.video_profile} profile")
    if output_size(info, min_side_px) != info.display_size or info.width % 2 or info.height % 2:
        reasons.append(f"{info.width}x{info.height} needs resizing")
    if info.pixel_aspect != 1:
        reasons.append("non-square pixels")
    if info.rotation:
        reasons.append(f"rotation flag ({info.rotation})")
    if info.vfr:
        reasons.append("variable frame rate")
    if info.interlaced:
        reasons.append("interlaced")
    if info.fps and info.fps > MAX_OUTPUT_FPS:
        reasons.append(f"{float(info.fps):g} fps")
    return reasons


def audio_reasons(info: ClipInfo) -> list[str]:
    """Why the audio must be re-encoded to AAC (empty: copied, or there is none)."""
    if not info.has_audio:
        return []
    if info.audio_codec not in _PLAIN_AUDIO:
        return [f"{info.audio_codec} audio"]
    if (info.audio_channels or 2) > 2:
        return [f"{info.audio_channels}-channel audio"]
    return []


def output_size(info: ClipInfo, min_side_px: int = 0) -> tuple[int, int]:
    """Upright, square-pixel size that fits 1920x1080 (either orientation), both sides even; a
    picture whose short side is under `min_side_px` (the chosen model's smallest side: wan2.7
    and wan3.0 take 240 px and up) is scaled up to it."""
    width, height = info.display_size
    long_side, short_side = max(width, height), min(width, height)
    scale = min(Fraction(1), Fraction(rules.MAX_CLEAN_WIDTH, long_side),
                Fraction(rules.MAX_CLEAN_HEIGHT, short_side))
    if short_side * scale < min_side_px:
        scale = Fraction(-(-min_side_px // 2) * 2, short_side)  # even, and not below it
    return _even(width * scale), _even(height * scale)


def _even(value: Fraction) -> int:
    return max(2, 2 * round_half_up(value / 2))


def output_fps(info: ClipInfo, peak_fps: Fraction | None = None) -> Fraction:
    """The constant frame rate of a re-encode: the source's, snapped to a common rate if VFR.

    A variable-rate clip is made at its peak rate (`peak_fps`, from its sample tables) when that
    is above the average MediaInfo reports: a phone clip that runs at 30 fps and slows in the
    dark averages 18.6, and made at 23.976 it would drop a fifth of its frames where it moves."""
    rate = info.fps or Fraction(30)
    if info.vfr:
        if peak_fps is not None and peak_fps > rate:
            rate = peak_fps
        rate = min(_COMMON_RATES, key=lambda r: abs(r - rate))
    return min(rate, MAX_OUTPUT_FPS)
