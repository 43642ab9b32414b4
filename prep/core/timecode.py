"""Timecodes: text an editor types, turned into integer milliseconds.

Accepted forms:
    12 / 12.5 / 12.5s      seconds
    MM:SS(.mmm)            e.g. 1:05 or 01:05.250
    HH:MM:SS(.mmm)         e.g. 00:01:05.250
    HH:MM:SS:FF            SMPTE non-drop frames at the clip's frame rate
    HH:MM:SS;FF            SMPTE drop-frame (29.97 / 59.94 material)

SMPTE needs the clip's frame rate, which is known only after probing, so parsing returns a
`Timepoint` that is resolved to milliseconds later. Everything is exact (Fraction), never float.
"""

from __future__ import annotations

import re
from fractions import Fraction

from prep.core.record import record

__all__ = ["Timepoint", "format_ms", "frame_ms", "ms_to_frames", "parse", "round_half_up"]

_SECONDS = re.compile(r"^(\d+)(?:\.(\d{1,3}))?s?$")
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:\.(\d{1,3}))?$")
_SMPTE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;])(\d{2})$")


def round_half_up(value: Fraction) -> int:
    """Round a non-negative exact value to the nearest integer, halves going up."""
    return int((value + Fraction(1, 2)) // 1)


@record(frozen=True, slots=True)
class Timepoint:
    """A parsed timecode: milliseconds, or SMPTE frames that need the clip's frame rate."""

    text: str
    ms: int | None = None
    smpte: tuple[int, int, int, int, bool] | None = None  # hh, mm, ss, ff, drop_frame

    @property
    def needs_fps(self) -> bool:
        """True for SMPTE timecodes, which mean nothing until the frame rate is known."""
        return self.smpte is not None

    def resolve(self, fps: Fraction | None) -> int:
        """Milliseconds from the start of the clip. SMPTE frames need `fps`."""
        if self.ms is not None:
            return self.ms
        assert self.smpte is not None
        if fps is None or fps <= 0:
            raise ValueError(f"timecode {self.text!r} counts frames, but the frame rate is unknown")
        hh, mm, ss, ff, drop = self.smpte
        nominal = round_half_up(fps)
        if ff >= nominal:
            raise ValueError(f"timecode {self.text!r}: frame {ff} does not exist at {_fps_text(fps)} fps")
        frames = ((hh * 60 + mm) * 60 + ss) * nominal + ff
        if drop:
            frames -= _dropped_frames(hh * 60 + mm, nominal)
        return frame_ms(frames, fps)


def _dropped_frames(total_minutes: int, nominal: int) -> int:
    """Frame numbers skipped by drop-frame counting up to `total_minutes` (2 per minute at 30)."""
    per_minute = 2 * (nominal // 30)
    return per_minute * (total_minutes - total_minutes // 10)


def _fps_text(fps: Fraction) -> str:
    return f"{float(fps):.3f}".rstrip("0").rstrip(".")


def frame_ms(frames: int, fps: Fraction) -> int:
    """Start time of frame number `frames` at `fps`, in whole milliseconds (half-up)."""
    return round_half_up(Fraction(frames * 1000) / fps)


def ms_to_frames(ms: int, fps: Fraction) -> int:
    """Index of the first frame that starts at or after `ms`."""
    exact = Fraction(ms) * fps / 1000
    whole = int(exact)
    return whole if whole == exact else whole + 1


def parse(text: str) -> Timepoint:
    """Parse one timecode. Raises ValueError with a message that lists the accepted forms."""
    raw = text.strip()
    if m := _SECONDS.match(raw):
        return Timepoint(raw, ms=int(m[1]) * 1000 + _millis(m[2]))
    if m := _CLOCK.match(raw):
        hours = int(m[1] or 0)
        minutes, seconds = int(m[2]), int(m[3])
        if seconds >= 60 or (m[1] is not None and minutes >= 60):
            raise ValueError(f"timecode {text!r}: minutes and seconds must be below 60")
        return Timepoint(raw, ms=((hours * 60 + minutes) * 60 + seconds) * 1000 + _millis(m[4]))
    if m := _SMPTE.match(raw):
        hh, mm, ss, ff = int(m[1]), int(m[2]), int(m[3]), int(m[5])
        if mm >= 60 or ss >= 60:
            raise ValueError(f"timecode {text!r}: minutes and seconds must be below 60")
        return Timepoint(raw, smpte=(hh, mm, ss, ff, m[4] == ";"))
    raise ValueError(
        f"timecode {text!r} is not understood; use seconds (12.5), MM:SS(.mmm), "
        "HH:MM:SS(.mmm) or SMPTE HH:MM:SS:FF"
    )


def _millis(digits: str | None) -> int:
    return int((digits or "0").ljust(3, "0"))


def format_ms(ms: int, *, precise: bool = False) -> str:
    """Seconds for people: 12.5 s reads as '12.5', 65000 ms as '65.0' (or 1:05.000 if precise)."""
    if precise:
        minutes, rest = divmod(ms, 60_000)
        return f"{minutes}:{rest // 1000:02d}.{rest % 1000:03d}"
    whole, frac = divmod(ms, 1000)
    text = f"{whole}.{frac:03d}".rstrip("0")
    return text + "0" if text.endswith(".") else text
