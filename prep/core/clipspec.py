"""Clip specs, the one syntax every command takes for clips: `PATH` or `PATH@START-END`.

Either side of the window may be empty (`a.mov@1:05-` runs from 1:05 to the end). A path that
exists as written is a path, even if it contains `@`. The window is checked for syntax here; SMPTE
frames are resolved once the clip's frame rate is known (see `Window.resolve`).

Pure: whether a path exists is asked of the caller's `exists` function, so this module never touches
the file system. `prep.media.clips` is the edge that answers it from the disk and lists folders.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from prep.core import timecode
from prep.core.record import record
from prep.core.timecode import Timepoint
from prep.errors import UsageError

__all__ = ["TIMELINE_SUFFIXES", "VIDEO_EXTENSIONS", "ClipSpec", "Window", "apply_trim_options",
           "is_timeline", "parse_clip_spec", "spec_text"]

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mxf", ".mts", ".m2ts", ".ts", ".mpg",
     ".mpeg", ".3gp", ".wmv", ".flv", ".dv", ".ogv"}
)
# Files read as an editor's timeline, by suffix (prep.jobs.timeline reads them).
TIMELINE_SUFFIXES = (".otio", ".edl", ".fcpxml", ".fcpxmld", ".xml")


def is_timeline(path: Path | str) -> bool:
    """True for a file name prep reads as a timeline (by its suffix)."""
    return Path(path).suffix.lower() in TIMELINE_SUFFIXES


@record(frozen=True, slots=True)
class Window:
    """A requested trim: start and end timecodes (either may be open), or a length."""

    start: Timepoint | None = None
    end: Timepoint | None = None
    length: Timepoint | None = None

    @property
    def is_open(self) -> bool:
        """True when no trim was asked for."""
        return self.start is None and self.end is None and self.length is None

    def _asked(self, fps: Fraction | None) -> tuple[int, int | None]:
        """(start_ms, end_ms) as asked for; the end None when it is open. ValueError from a
        timecode that does not fit the clip's rate."""
        start = self.start.resolve(fps) if self.start else 0
        if self.end is not None:
            return start, self.end.resolve(fps)
        if self.length is not None:
            return start, start + self.length.resolve(fps)
        return start, None

    def end_past(self, fps: Fraction | None, duration_ms: int) -> int | None:
        """The end asked for, in ms, when it lies past a clip of `duration_ms`; else None."""
        try:
            _start, end = self._asked(fps)
        except ValueError:
            return None
        return end if end is not None and end > duration_ms else None

    def resolve(self, fps: Fraction | None, duration_ms: int, label: str) -> tuple[int, int]:
        """(start_ms, end_ms) inside a clip of `duration_ms` (an end past it is cut to it);
        UsageError when it makes no sense."""
        try:
            start, asked = self._asked(fps)
        except ValueError as err:
            raise UsageError(f"{label}: {err}") from err
        end = duration_ms if asked is None else asked
        if start >= duration_ms:
            raise UsageError(
                f"{label}: the window starts at {timecode.format_ms(start)} s but the clip is only "
                f"{timecode.format_ms(duration_ms)} s long"
            )
        if end <= start:
            raise UsageError(
                f"{label}: the window starts at {timecode.format_ms(start)} s and ends at "
                f"{timecode.format_ms(end)} s; START must come before END"
            )
        return start, min(end, duration_ms)


@record(frozen=True, slots=True)
class ClipSpec:
    """A clip on disk and the part of it to use."""

    path: Path
    window: Window = Window()
    text: str = ""

    def __str__(self) -> str:
        return self.text or str(self.path)


def spec_text(path: Path | str, start_ms: int, end_ms: int) -> str:
    """A window as a clip spec people can paste back: `take.mov@1.5-6.5` (seconds)."""
    return f"{path}@{timecode.format_ms(start_ms)}-{timecode.format_ms(end_ms)}"


def _parse_point(text: str, spec: str) -> Timepoint | None:
    if not text:
        return None
    try:
        return timecode.parse(text)
    except ValueError as err:
        raise UsageError(f"clip spec {spec!r}: {err}") from err


def _check_order(window: Window, spec: str) -> None:
    start, end = window.start, window.end
    if start and end and start.ms is not None and end.ms is not None and end.ms <= start.ms:
        raise UsageError(f"clip spec {spec!r}: START ({start.text}) must come before END ({end.text})")


def parse_clip_spec(text: str, *, exists: Callable[[str], bool]) -> ClipSpec:
    """Parse `PATH` or `PATH@START-END`; UsageError for a malformed window.

    `exists(path)` says whether a path is on disk (the caller's I/O, kept out of this module): a
    spec that exists as written is a path even with an `@` in it, and when the part before the
    last `@` exists, what follows must be a window.
    """
    if not text:
        raise UsageError("an empty clip spec was given; pass a file path")
    if "@" not in text or exists(text):
        return ClipSpec(Path(text), Window(), text)
    path, _, window_text = text.rpartition("@")
    if "-" not in window_text:
        if path and exists(path):
            # `clip.mp4@abc`: the clip is there, so what follows '@' was meant as a window.
            raise _not_a_window(text, path, window_text)
        # No window syntax after the '@': treat the whole thing as a (missing) file name.
        return ClipSpec(Path(text), Window(), text)
    start_text, _, end_text = window_text.partition("-")
    window = Window(_parse_point(start_text.strip(), text), _parse_point(end_text.strip(), text))
    _check_order(window, text)
    if not path:
        raise UsageError(f"clip spec {text!r} has a window but no file path before '@'")
    return ClipSpec(Path(path), window, text)


def _not_a_window(text: str, path: str, window_text: str) -> UsageError:
    example = f"{path}@1:05-1:20 (either side may be empty)"
    try:
        timecode.parse(window_text)
    except ValueError as err:
        return UsageError(f"clip spec {text!r}: {err}", hint=f"after '@' give START-END: {example}")
    return UsageError(f"clip spec {text!r}: {window_text!r} is one time, not a window START-END",
                      hint=f"{path}@{window_text}- runs from {window_text} to the end; or {example}")


def apply_trim_options(
    specs: list[ClipSpec], start: str | None, end: str | None, length: str | None
) -> list[ClipSpec]:
    """Fold --start/--end/--length into the one clip they may apply to."""
    if start is None and end is None and length is None:
        return specs
    if len(specs) != 1:
        raise UsageError(
            f"--start/--end/--length apply to exactly one clip, but {len(specs)} were given; "
            "use PATH@START-END for each clip instead"
        )
    if end is not None and length is not None:
        raise UsageError("give --end or --length, not both")
    spec = specs[0]
    if not spec.window.is_open:
        raise UsageError(f"{spec.text}: the clip spec already has a window; drop --start/--end/--length")
    label = "--start/--end/--length"
    window = Window(
        _parse_point(start or "", label),
        _parse_point(end or "", label),
        _parse_point(length or "", label),
    )
    if window.length is not None and window.length.ms == 0:
        raise UsageError("--length must be more than 0")
    _check_order(window, label)
    return [ClipSpec(spec.path, window, spec.text)]
