"""Which part of a clip prep uses, pure: the window asked for, or the first 30 s of a long clip.

`choose_window` keeps every output prep cuts or encodes at least one frame inside the API's
2-30 s (`edge_margin_ms`), and extends a clip too short for 2 s when asked (`--extend loop` or
`freeze`). A source that already complies and needs no re-encoding is used whole as it is, even on
the edge (exactly 2.0 s, say): what probe calls compliant, estimate bills and prepare copies.
What is then made of the window (copied, remuxed, re-encoded) is `prep.core.plan`'s decision.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

from prep.core import rules
from prep.core.billing import ClipBill
from prep.core.clipinfo import ClipInfo
from prep.core.clipspec import ClipSpec, Window
from prep.core.modelspec import Span
from prep.core.record import record
from prep.core.streams import usable_as_is
from prep.core.timecode import format_ms
from prep.errors import MediaError

__all__ = [
    "DEFAULT_FPS",
    "OPEN_WINDOW",
    "ClipWindow",
    "Extend",
    "PlannedClip",
    "choose_window",
    "edge_margin_ms",
]

Extend = Literal["loop", "freeze"]
OPEN_WINDOW = Window()
# Used for margins when a clip's frame rate is unknown: one frame at 25 fps.
DEFAULT_FPS = Fraction(25)


# One AAC frame at 48 kHz (1024 samples) is 21.3 ms: the margin never gets smaller than that, so
# the audio also stays inside 2-30 s for a reader that skips the encoder's delay.
MIN_MARGIN_MS = 22


def edge_margin_ms(fps: Fraction | None) -> int:
    """One frame (at least 22 ms), in whole ms rounded up: how far inside 2-30 s outputs stay."""
    rate = fps or DEFAULT_FPS
    return max(MIN_MARGIN_MS, -(-1000 * rate.denominator // rate.numerator))


@record(frozen=True, slots=True, kw_only=True)
class ClipWindow:
    """The part of the source that becomes the output; `extend_to_ms` is set for short clips."""

    start_ms: int
    end_ms: int
    source_duration_ms: int
    extend: Extend | None = None
    extend_to_ms: int | None = None
    trimmed: bool = False
    notes: tuple[str, ...] = ()
    # The whole source, used as it is although it sits within a frame of the API's 2-30 s: it
    # may be copied or remuxed, never cut or re-encoded (that would take the margin).
    as_is: bool = False

    @property
    def duration_ms(self) -> int:
        """Duration of the output as planned."""
        return self.extend_to_ms or (self.end_ms - self.start_ms)


@record(frozen=True, slots=True)
class PlannedClip:
    """A clip spec, what probing found, and the window prep will use."""

    spec: ClipSpec
    info: ClipInfo
    window: ClipWindow

    def bill(self) -> ClipBill:
        """This clip as billing sees it: its planned duration."""
        return ClipBill(label=str(self.spec), duration_ms=self.window.duration_ms, billed_ms=0,
                        source_duration_ms=self.info.duration_ms, start_ms=self.window.start_ms,
                        notes=self.window.notes)


#: wan2.6's clip durations: what prep prepares for unless a model with others is chosen.
DEFAULT_CLIP_MS = Span(rules.MIN_CLIP_MS, rules.MAX_CLIP_MS)


def choose_window(
    info: ClipInfo, window: Window = OPEN_WINDOW, *, label: str | None = None,
    extend: Extend | None = None, as_is: bool = True, clip_ms: Span = DEFAULT_CLIP_MS,
) -> ClipWindow:
    """Which part of `info` prep will use. MediaError when it cannot reach the shortest.

    With no window asked for, a source the API takes as it is (and that prep would not re-encode)
    is used whole, even within a frame of 2 or 30 s; `as_is=False` applies the margin anyway, for
    a plan that finds it must cut or encode after all. `clip_ms` is the chosen model's range of
    clip durations (wan2.6's 2-30 s unless told: wan3.0 takes 1-15 s).
    """
    name = label or str(info.path)
    margin = edge_margin_ms(info.fps)
    longest = info.max_duration_ms
    notes: list[str] = []
    low_ms, high_ms = clip_ms.low, clip_ms.high
    if (window.is_open and as_is and usable_as_is(info)
            and low_ms <= info.min_duration_ms and longest <= high_ms):
        shortest = info.min_duration_ms
        if shortest < low_ms + margin or longest > high_ms - margin:
            low = shortest < low_ms + margin
            edge, measured = (low_ms, shortest) if low else (high_ms, longest)
            notes.append(
                f"{name} is {format_ms(measured)} s, within a frame of the API's {format_ms(edge)} s "
                "limit: prep uses it whole as it is (a stream copy); to cut or re-encode it, prep "
                f"would need it {'at least' if low else 'at most'} "
                f"{format_ms(edge + margin if low else edge - margin)} s"
            )
            return ClipWindow(start_ms=0, end_ms=info.duration_ms,
                              source_duration_ms=info.duration_ms, notes=tuple(notes), as_is=True)
    if window.is_open:
        start, end = 0, info.duration_ms
        trimmed = False
    else:
        start, end = window.resolve(info.fps, info.duration_ms, name)
        trimmed = True
        past = window.end_past(info.fps, info.duration_ms)
        if past is not None:
            notes.append(f"the window of {name} ends at {format_ms(past)} s, past the clip's "
                         f"end ({format_ms(info.duration_ms)} s): prep stops there")
    max_len = high_ms - margin
    if end - start > max_len or (window.is_open and longest > high_ms):
        if window.is_open:
            notes.append(
                f"{name} is {format_ms(longest)} s; prep uses its first {format_ms(max_len)} s "
                f"(choose another part with {name}@START-END, --start/--length, or prep pick)"
            )
        else:
            notes.append(
                f"the window of {name} is {format_ms(end - start)} s; prep keeps its first "
                f"{format_ms(max_len)} s, the API takes at most {high_ms // 1000} s"
            )
        end = start + max_len
        trimmed = True
    min_len = low_ms + margin
    available = min(end, info.min_duration_ms) - start
    if available < min_len:
        if extend is None:
            length = format_ms(max(available, 0))
            need = (f"at least {format_ms(low_ms)} s" if available < low_ms
                    else f"{format_ms(min_len)} s, to stay a frame inside its "
                         f"{format_ms(low_ms)} s minimum")
            raise MediaError(
                name,
                f"is {length} s long{' in the chosen window' if trimmed else ''}; the API needs "
                f"{need}",
                hint="choose a longer window, or pass --extend loop or --extend freeze",
            )
        target = low_ms + 2 * margin
        notes.append(f"{name} is {format_ms(max(available, 0))} s; prep extends it to "
                     f"{format_ms(target)} s ({extend})")
        return ClipWindow(start_ms=start, end_ms=start + max(available, 0),
                          source_duration_ms=info.duration_ms, extend=extend, extend_to_ms=target,
                          trimmed=trimmed, notes=tuple(notes))
    return ClipWindow(start_ms=start, end_ms=end, source_duration_ms=info.duration_ms,
                      trimmed=trimmed, notes=tuple(notes))
