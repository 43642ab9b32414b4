"""Planning, pure: a probed clip and the user's wishes become what prep will make of it.

`choose_window` decides which part of a clip is used (the window asked for, or the first 30 s of a
long clip), keeping every output at least one frame inside the API's 2-30 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from . import rules
from .clipspec import Window
from .errors import MediaError
from .media import ClipInfo
from .timecode import format_ms, frame_ms

__all__ = ["DEFAULT_FPS", "ClipWindow", "Extend", "choose_window", "edge_margin_ms"]

Extend = Literal["loop", "freeze"]
OPEN_WINDOW = Window()
# Used for margins when a clip's frame rate is unknown: one frame at 25 fps.
DEFAULT_FPS = Fraction(25)


def edge_margin_ms(fps: Fraction | None) -> int:
    """One frame, in whole ms rounded up: how far inside 2-30 s every output stays."""
    rate = fps or DEFAULT_FPS
    return -(-1000 * rate.denominator // rate.numerator)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClipWindow:
    """The part of the source that becomes the output; `extend_to_ms` is set for short clips."""

    start_ms: int
    end_ms: int
    source_duration_ms: int
    extend: Extend | None = None
    extend_to_ms: int | None = None
    trimmed: bool = False
    notes: tuple[str, ...] = ()

    @property
    def duration_ms(self) -> int:
        """Duration of the output as planned."""
        return self.extend_to_ms or (self.end_ms - self.start_ms)


def choose_window(
    info: ClipInfo, window: Window = OPEN_WINDOW, *, label: str | None = None,
    extend: Extend | None = None,
) -> ClipWindow:
    """Which part of `info` prep will use. MediaError when it cannot reach 2 s."""
    name = label or str(info.path)
    margin = edge_margin_ms(info.fps)
    longest = info.max_duration_ms
    notes: list[str] = []
    if window.is_open:
        start, end = 0, info.duration_ms
        trimmed = False
    else:
        start, end = window.resolve(info.fps, info.duration_ms, name)
        trimmed = True
    max_len = rules.MAX_CLIP_MS - margin
    if end - start > max_len or (window.is_open and longest > rules.MAX_CLIP_MS):
        if window.is_open:
            notes.append(
                f"{name} is {format_ms(longest)} s; prep uses its first {format_ms(max_len)} s "
                f"(choose another part with {name}@START-END, --start/--length, or prep pick)"
            )
        else:
            notes.append(
                f"the window of {name} is {format_ms(end - start)} s; prep keeps its first "
                f"{format_ms(max_len)} s, the API takes at most 30 s"
            )
        end = start + max_len
        trimmed = True
    min_len = rules.MIN_CLIP_MS + margin
    available = min(end, info.min_duration_ms) - start
    if available < min_len:
        if extend is None:
            length = format_ms(max(available, 0))
            raise MediaError(
                name,
                f"is {length} s long{' in the chosen window' if trimmed else ''}; the API needs "
                f"at least {format_ms(rules.MIN_CLIP_MS)} s",
                hint="choose a longer window, or pass --extend loop or --extend freeze",
            )
        target = rules.MIN_CLIP_MS + 2 * margin
        notes.append(f"{name} is {format_ms(max(available, 0))} s; prep extends it to "
                     f"{format_ms(target)} s ({extend})")
        return ClipWindow(start_ms=start, end_ms=start + max(available, 0),
                          source_duration_ms=info.duration_ms, extend=extend, extend_to_ms=target,
                          trimmed=trimmed, notes=tuple(notes))
    return ClipWindow(start_ms=start, end_ms=end, source_duration_ms=info.duration_ms,
                      trimmed=trimmed, notes=tuple(notes))


def frame_aligned_ms(ms: int, fps: Fraction | None) -> int:
    """`ms` moved to the start of the frame that contains it."""
    rate = fps or DEFAULT_FPS
    return frame_ms(int(Fraction(ms) * rate / 1000), rate)
