"""Picking the best reference window in long footage: one shot, a face, speech, best part first.

`pick_window` analyses a clip (`analyze.analyze`: one decode pass) and hands the measurements to
`choose`, which is pure: no I/O, no clock, so it is tested on made-up analyses.

How a window is chosen:
  1. Cuts split the footage into shots; a window stays inside one shot, a couple of frames away
     from its cuts.
  2. On a 100 ms grid, each step is worth 1 when a face is on screen while someone speaks, and
     partly when only one of the two is there (a face is worth more than a voice).
  3. Every window of the wanted length in every shot is scored, mostly on its billed head (on
     wan2.6 the first 5 / 2.5 / 1.65 s, which is what the job pays for; the chosen model's table
     says) and partly on its whole length, so the best part comes first. Ties go to the longer
     window, then the earlier. The length stays within the model's per-clip range.
  4. Without an explicit length, a window may be shorter where it meets the end of its shot, and
     a tail with neither face nor speech is cut off.
  5. What `prep check` would fail or warn about lowers a step's worth, from the same analysis:
     two or more faces on screen (the model may take the wrong person), clipped audio (a true
     peak at or over 0 dBTP in those 100 ms) and music or a steady tone under the voice. Cuts and
     missing speech are already kept out by steps 1 and 2.
  6. On a model that bills every reference second (wan3.0, prime: the table's input rule), the
     whole window is the billed part, and without an explicit length the shortest window that
     passes the reference check is taken (`passes_check`), since every second costs money.
Footage with no face or no speech still gets the best window there is, with warnings that say what
is missing (`PickResult.usable` is False).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prep.core import rules
from prep.core.clipspec import spec_text
from prep.core.models import billed_head_ms, model_spec
from prep.core.modelspec import ModelSpec
from prep.core.modelspec import Span as _Range
from prep.core.timecode import format_ms, frame_ms, ms_to_frames
from prep.core.window import DEFAULT_FPS, edge_margin_ms
from prep.errors import MediaError, UsageError
from prep.pick.analyze import SPEECH_CHUNK_MS, Analysis, FaceSample

if TYPE_CHECKING:
    from prep.core.clipspec import Window

__all__ = [
    "DEFAULT_LENGTH_MS",
    "PickResult",
    "Shot",
    "Span",
    "choose",
    "passes_check",
    "pick_window",
]

DEFAULT_LENGTH_MS = 8_000
STEP_MS = 100
# Cuts in the first moments of footage are encoder or fade-in artefacts, not shot changes.
IGNORE_CUTS_BEFORE_MS = 500
# Frames kept clear of a cut. Before it: analysis skips non-reference frames, so a cut may be
# reported up to three frames late. After it: scdet may flag the frame after a soft cut.
CUT_GUARD_BEFORE_FRAMES = 4
CUT_GUARD_AFTER_FRAMES = 2
SPEECH_THRESHOLD = 0.5
# Pauses between words and sentences shorter than this are still speech; blips shorter than
# SPEECH_MIN_MS are clicks, not words.
SPEECH_BRIDGE_MS = 400
SPEECH_MIN_MS = 200
# Worth of a grid step: face and speech together, a face alone, a voice alone.
WORTH_BOTH, WORTH_FACE, WORTH_SPEECH = 1.0, 0.3, 0.2
HEAD_WEIGHT = 0.65
# Below this share of the billed head with face and speech together, the pick is not usable.
USABLE_HEAD_RATIO = 0.5
# Less than this of face and speech together in the whole footage is a coincidence, not a talk.
TOGETHER_MIN_MS = 500
# What a step is still worth when `prep check` would object to it (step 5 above): two people on
# screen fail its one_person check, so they cost the most; clipping fails the clipping check
# but the picture may still be the best there is; music only warns.
CROWDED_WORTH = 0.2
CLIPPED_WORTH = 0.4
MUSIC_WORTH = 0.7
# Lengths tried, shortest first, on a model that bills every reference second.
SHORTEST_STEP_MS = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """A stretch of time, in ms from the clip's start."""

    start_ms: int
    end_ms: int

    def as_dict(self) -> dict[str, float]:
        """JSON shape: seconds."""
        return {"start_s": self.start_ms / 1000, "end_s": self.end_ms / 1000}


@dataclass(frozen=True, slots=True, kw_only=True)
class Coverage:
    """How much of a stretch shows a face, carries speech, and both at once (0-1 each)."""

    face: float
    speech: float
    both: float

    def as_dict(self) -> dict[str, float]:
        """JSON shape: ratios rounded to 0.001."""
        return {"face_ratio": round(self.face, 3), "speech_ratio": round(self.speech, 3),
                "both_ratio": round(self.both, 3)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Shot:
    """A shot between two cuts (or the clip's ends), and what is in it."""

    index: int
    start_ms: int
    end_ms: int
    coverage: Coverage

    def as_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {"index": self.index, "start_s": self.start_ms / 1000, "end_s": self.end_ms / 1000,
                **self.coverage.as_dict()}


@dataclass(frozen=True, slots=True, kw_only=True)
class PickResult:
    """The chosen window of a clip, its scores, and the findings behind the choice."""

    path: Path
    start_ms: int
    end_ms: int
    head_ms: int
    clips_in_job: int
    score: float
    window: Coverage
    head: Coverage
    shot: Shot
    shots: tuple[Shot, ...]
    cuts_ms: tuple[int, ...]
    faces: tuple[Span, ...]
    speech: tuple[Span, ...]
    usable: bool
    warnings: tuple[str, ...] = ()
    crosses_cuts: int = 0
    analysis: Analysis | None = field(default=None, repr=False, compare=False)
    model: str = rules.MODEL
    every_second_billed: bool = False  # the model bills the whole window, not a head
    shortest: bool = False  # the shortest window that passes the check (every_second_billed)
    flaws: tuple[str, ...] = ()  # what `prep check` would fail in the window
    notes: tuple[str, ...] = ()  # how the window was chosen, when it is worth saying

    @property
    def length_ms(self) -> int:
        """Length of the window."""
        return self.end_ms - self.start_ms

    @property
    def clip_spec(self) -> str:
        """`PATH@START-END`, which every prep command takes."""
        return spec_text(self.path, self.start_ms, self.end_ms)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `prep pick --json` (contract: extend, never rename)."""
        out: dict[str, Any] = {
            "path": str(self.path),
            "clip_spec": self.clip_spec,
            "start_s": self.start_ms / 1000,
            "end_s": self.end_ms / 1000,
            "length_s": self.length_ms / 1000,
            "billed_head_s": self.head_ms / 1000,
            "model": self.model,
            "billed_s": self.head_ms / 1000,
            "every_second_billed": self.every_second_billed,
            "shortest_passing": self.shortest,
            "notes": list(self.notes),
            "clips_in_job": self.clips_in_job,
            "score": round(self.score, 3),
            "usable": self.usable,
            "warnings": list(self.warnings),
            **self.window.as_dict(),
            "head": self.head.as_dict(),
            "shot": self.shot.as_dict(),
            "crosses_cuts": self.crosses_cuts,
            "cuts_s": [ms / 1000 for ms in self.cuts_ms],
            "shots": [s.as_dict() for s in self.shots],
            "faces": [s.as_dict() for s in self.faces],
            "speech": [s.as_dict() for s in self.speech],
        }
        if self.analysis is not None:
            a = self.analysis
            out["analysis"] = {
                "analysed_from_s": a.start_ms / 1000,
                "analysed_to_s": a.end_ms / 1000,
                "face_samples": len(a.face_samples),
                "face_fps": a.face_fps,
                "has_audio": a.has_audio,
                "elapsed_s": round(a.elapsed_s, 3),
                "realtime_factor": round(a.duration_ms / 1000 / a.elapsed_s, 2) if a.elapsed_s else None,
                "workers": a.workers,
            }
        return out


def pick_window(
    path: Path | str,
    length_ms: int | None = None,
    clips_in_job: int = 1,
    *,
    within: Window | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    for_check: bool = False,
    ffmpeg: str | None = None,
    model: ModelSpec | str | None = None,
) -> PickResult:
    """Analyse `path` and choose its best window (see the module docstring for how).

    `length_ms` is the wanted length (default 8 s, clamped to the model's per-clip range and to
    the shot); `clips_in_job` says which billed head applies; `model` is the table the window is
    chosen for, or its id or alias (default wan2.6; see `choose`); `within` limits the search to
    a part of the clip. `for_check` also measures what `prep check` needs (smaller faces, sharpness), so
    the window can be graded from the same analysis (`PickResult.analysis`). `ffmpeg` is the
    configured ffmpeg (`Settings.ffmpeg`; None: PATH, then the bundled one). MediaError for
    unreadable footage, footage under 2 s, or missing `pick` extras.
    """
    from prep.media.probe import probe
    from prep.pick.analyze import analyze, require_extras
    from prep.pick.check import CHECK_ANALYSIS

    model = model_spec(model) if isinstance(model, str) else model
    _check_args(length_ms, clips_in_job, model or rules.WAN26)
    require_extras(path)
    info = probe(path)
    start_ms, end_ms = 0, info.video_duration_ms or info.duration_ms
    if within is not None and not within.is_open:
        start_ms, end_ms = within.resolve(info.fps, end_ms, str(path))
    # The audio levels are always measured (the same audio process; little work): clipping and
    # music lower a window's worth.
    extra = CHECK_ANALYSIS if for_check else {"levels": True}
    analysis = analyze(path, start_ms=start_ms, end_ms=end_ms, info=info, workers=workers,
                       progress=progress, ffmpeg=ffmpeg, **extra)
    return choose(analysis, length_ms=length_ms, clips_in_job=clips_in_job, model=model)


def _check_args(length_ms: int | None, clips_in_job: int, spec: ModelSpec) -> None:
    most = spec.videos.count.high
    if not 1 <= clips_in_job <= most:
        raise UsageError(f"--clips-in-job must be 1 to {most} on {spec.id}, not {clips_in_job}")
    if length_ms is not None and length_ms <= 0:
        raise UsageError("--length must be more than 0")


def choose(analysis: Analysis, *, length_ms: int | None = None, clips_in_job: int = 1,
           model: ModelSpec | str | None = None) -> PickResult:
    """The best window of an analysed clip for `model` (default wan2.6). Pure: depends on
    `analysis` and the model's table alone.

    The window stays within the model's per-clip range. On a model that bills every reference
    second (its table's input rule, `full`), and without an asked-for length, the window is the
    SHORTEST that passes the reference check (`passes_check`), from the check's "short" length up; when none
    does, the best window of the default length, with a warning saying so.
    """
    spec = model_spec(model) if isinstance(model, str) else model or rules.WAN26
    _check_args(length_ms, clips_in_job, spec)
    scene = _Scene(analysis, spec, clips_in_job)
    if scene.every_second and length_ms is None:
        # Shorter than the check's "short" warning is cheaper still, but a poorer reference.
        from prep.pick.check import DURATION_WARN_MS

        floor = max(scene.min_len, DURATION_WARN_MS + 2 * scene.margin)
        for wanted in range(floor, scene.max_len + 1, SHORTEST_STEP_MS):
            found = scene.result(wanted, explicit=True)
            if passes_check(found):
                note = (f"{spec.id} bills every reference second: the shortest window that passes "
                        f"the reference check ({format_ms(found.length_ms)} s)")
                return replace(found, shortest=True, notes=(*found.notes, note))
        found = scene.result(scene.clamp(DEFAULT_LENGTH_MS), explicit=False)
        warning = (f"no window of {format_ms(floor)}-{format_ms(scene.max_len)} s passes the "
                   f"reference check; {spec.id} bills all {format_ms(found.length_ms)} s of this one")
        return replace(found, warnings=(*found.warnings, warning))
    return scene.result(scene.clamp(length_ms or DEFAULT_LENGTH_MS), explicit=length_ms is not None)


def passes_check(result: PickResult) -> bool:
    """Whether a window would pass `prep check` on what the pick measures: usable (a face while
    someone speaks over the billed part), inside one shot, and without what the check fails (two
    people on screen, clipped audio)."""
    return result.usable and not result.crosses_cuts and not result.flaws


# A candidate window: (its sort key: score, length, -start), shot index, start, length, latest end.
_Best = tuple[tuple[float, int, int], int, int, int, int]


class _Scene:
    """What every window of one analysis is scored on: shots, per-step worth and flaws."""

    def __init__(self, analysis: Analysis, spec: ModelSpec, clips_in_job: int) -> None:
        self.analysis, self.spec, self.clips_in_job = analysis, spec, clips_in_job
        fps = self.fps = analysis.fps or DEFAULT_FPS
        margin = self.margin = edge_margin_ms(fps)
        clip = self.clip = spec.videos.duration_ms or _Range(rules.MIN_CLIP_MS, rules.MAX_CLIP_MS)
        self.min_len = clip.low + 2 * margin
        self.max_len = clip.high - margin
        head = billed_head_ms(spec, clips_in_job)
        self.every_second = head is None
        self.head_cap = self.max_len if head is None else head
        begin, end = self.begin, self.end = analysis.start_ms, analysis.end_ms
        if end - begin < self.min_len:
            raise MediaError(str(analysis.path),
                             f"is {format_ms(end - begin)} s long{' in the chosen part' if begin else ''};"
                             f" a reference needs at least {format_ms(clip.low)} s on {spec.id}")
        self.cuts = sorted({c.time_ms for c in analysis.cuts
                            if begin + IGNORE_CUTS_BEFORE_MS <= c.time_ms < end - margin})
        self.bounds = bounds = [begin, *self.cuts, end]
        grid = self.grid = _Grid(begin, end)
        face = self.face = grid.fill(_face_spans(analysis, bounds))
        speech = self.speech = grid.fill(_speech_spans(analysis.speech, begin, end))
        both = self.both = [f * s for f, s in zip(face, speech, strict=True)]
        self.flaws = _Flaws(analysis, grid, bounds)
        self.worth = [(WORTH_BOTH * b + WORTH_FACE * f + WORTH_SPEECH * s)
                      / (WORTH_BOTH + WORTH_FACE + WORTH_SPEECH) * factor
                      for b, f, s, factor in zip(both, face, speech, self.flaws.factors, strict=True)]
        self.sums = _Prefix(self.worth)

    def clamp(self, length_ms: int) -> int:
        return min(max(length_ms, self.min_len), self.max_len)

    def result(self, wanted: int, *, explicit: bool) -> PickResult:
        """The best window of `wanted` ms (kept, clamped to the shot, when `explicit`; otherwise it
        may end early at its shot's end and lose a worthless tail)."""
        grid, bounds, sums, head_cap = self.grid, self.bounds, self.sums, self.head_cap
        warnings: list[str] = []
        crosses = 0
        best = self._best_in_a_shot(wanted, explicit=explicit)
        if best is None:
            best = self._best_across_cuts()
            crosses = sum(1 for c in self.cuts if best[2] < c < best[2] + best[3])
            warnings.append(f"every shot is shorter than {format_ms(self.min_len)} s, so the window "
                            f"crosses {crosses} cut{'s' * (crosses != 1)}")
        _, shot_index, start, length, limit = best
        start_al, end_al = self._aligned(start, length, limit, wanted, explicit=explicit)
        head_ms = min(head_cap, end_al - start_al)

        face, speech, both = self.face, self.speech, self.both
        window_cov = grid.coverage(face, speech, both, start_al, end_al)
        head_cov = grid.coverage(face, speech, both, start_al, start_al + head_ms)
        score = _score(sums, grid, start_al, end_al - start_al, head_cap)
        shots = tuple(
            Shot(index=i, start_ms=a, end_ms=b, coverage=grid.coverage(face, speech, both, a, b))
            for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
        )
        face_spans, speech_spans = grid.spans(face), grid.spans(speech)
        together = sum(both) * STEP_MS >= TOGETHER_MIN_MS
        warnings.extend(self._content_warnings(face_spans, speech_spans, together=together))
        warnings.extend(self.flaws.warnings(start_al, end_al))
        usable = head_cov.both >= USABLE_HEAD_RATIO and not crosses
        if face_spans and speech_spans and together and not usable:
            warnings.append(f"only {head_cov.both:.0%} of the billed head shows a face while someone "
                            "speaks")
        return PickResult(
            path=self.analysis.path, start_ms=start_al, end_ms=end_al, head_ms=head_ms,
            clips_in_job=self.clips_in_job, score=score, window=window_cov, head=head_cov,
            shot=shots[shot_index],
            shots=shots, cuts_ms=tuple(self.cuts), faces=face_spans, speech=speech_spans, usable=usable,
            warnings=tuple(warnings), crosses_cuts=crosses, analysis=self.analysis,
            model=self.spec.id, every_second_billed=self.every_second,
            flaws=self.flaws.failing(start_al, end_al),
        )

    def _best_in_a_shot(self, wanted: int, *, explicit: bool) -> _Best | None:
        """The best window inside one shot (kept clear of its cuts), or None when every shot is
        shorter than the shortest window."""
        bounds, fps, min_len = self.bounds, self.fps, self.min_len
        guard_before = frame_ms(CUT_GUARD_BEFORE_FRAMES, fps)
        guard_after = frame_ms(CUT_GUARD_AFTER_FRAMES, fps)
        best: _Best | None = None
        for index, (s0, s1) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            lo = s0 + (guard_after if index > 0 else 0)
            hi = s1 - (guard_before if index < len(bounds) - 2 else 0)
            if hi - lo < min_len:
                continue
            # An asked-for length is kept (clamped to the shot). Otherwise a window may also end
            # early at the shot's end, so a short shot's best part can still come first.
            latest = hi - min(wanted, hi - lo) if explicit else hi - min_len
            for start in _starts(lo, latest):
                length = min(wanted, hi - start)
                key = (round(_score(self.sums, self.grid, start, length, self.head_cap), 6),
                       length, -start)
                if best is None or key > best[0]:
                    best = (key, index, start, length, hi)
        return best

    def _best_across_cuts(self) -> _Best:
        """Every shot is too short: the best stretch of the shortest length, cuts or not."""
        length = self.min_len
        best: _Best | None = None
        for start in _starts(self.begin, self.end - length):
            key = (round(_score(self.sums, self.grid, start, length, self.head_cap), 6),
                   length, -start)
            if best is None or key > best[0]:
                best = (key, bisect.bisect_right(self.bounds, start) - 1, start, length, self.end)
        assert best is not None
        return best

    def _aligned(self, start: int, length: int, limit: int, wanted: int, *,
                 explicit: bool) -> tuple[int, int]:
        """The window on frames: from the first frame at or after `start`, to a frame boundary
        no later than the shot allows (and, when the length was not asked for, without a
        worthless tail)."""
        fps = self.fps
        shortest = self.clip.low + self.margin
        start_al = _frame_ceil(start, fps)
        end_al = _frame_floor(min(start_al + length, limit), fps)
        if end_al - start_al < shortest:
            end_al = _frame_ceil(start_al + shortest, fps)
        if not explicit:
            end_al = _trim_tail(self.worth, self.grid, start_al, end_al,
                                max(min(self.head_cap, wanted), shortest), fps)
        return start_al, end_al

    def _content_warnings(self, face_spans: Sequence[object], speech_spans: Sequence[object], *,
                          together: bool) -> list[str]:
        """What the whole analysed part lacks: a face, speech, or the two at once."""
        warnings = []
        if not face_spans:
            checked = len(self.analysis.face_samples)
            warnings.append(f"no face found ({checked} frame{'s' * (checked != 1)} checked at "
                            f"{self.analysis.face_fps} per second): the window shows no one")
        if not speech_spans:
            warnings.append("no audio track, so no speech" if not self.analysis.has_audio
                            else "no speech found (only music, noise or silence)")
        if face_spans and speech_spans and not together:
            warnings.append("faces and speech never occur together: the window has one or the other")
        return warnings


def _frame_ceil(ms: int, fps: Fraction) -> int:
    return frame_ms(ms_to_frames(ms, fps), fps)


def _frame_floor(ms: int, fps: Fraction) -> int:
    frames = ms_to_frames(ms, fps)
    at = frame_ms(frames, fps)
    return at if at <= ms else frame_ms(frames - 1, fps)


def _starts(lo: int, hi: int) -> list[int]:
    """Candidate starts from `lo` to `hi` on the grid, `hi` included."""
    out = list(range(lo, hi + 1, STEP_MS))
    if out[-1] != hi:
        out.append(hi)
    return out


def _score(sums: _Prefix, grid: _Grid, start: int, length: int, head_cap: int) -> float:
    head = min(head_cap, length)
    head_mean = sums.mean(grid.index(start), grid.index(start + head))
    whole_mean = sums.mean(grid.index(start), grid.index(start + length))
    return HEAD_WEIGHT * head_mean + (1 - HEAD_WEIGHT) * whole_mean


def _trim_tail(worth: Sequence[float], grid: _Grid, start: int, end: int, keep_ms: int,
               fps: Fraction) -> int:
    """Drop a tail where nothing is worth anything, keeping at least `keep_ms`."""
    last = grid.index(end)
    first = grid.index(start + keep_ms)
    while last > first and worth[last - 1] == 0:
        last -= 1
    if last == grid.index(end):
        return end
    return max(_frame_ceil(grid.time(last), fps), _frame_ceil(start + keep_ms, fps))


class _Grid:
    """Fixed STEP_MS steps over [begin, end); values per step are 0-1 shares of the step."""

    def __init__(self, begin: int, end: int) -> None:
        self.begin, self.end = begin, end
        self.size = -(-(end - begin) // STEP_MS)

    def index(self, ms: int) -> int:
        return min(self.size, max(0, round((ms - self.begin) / STEP_MS)))

    def time(self, index: int) -> int:
        return min(self.end, self.begin + index * STEP_MS)

    def fill(self, spans: Sequence[Span]) -> list[float]:
        values = [0.0] * self.size
        for span in spans:
            for i in range(self.index(span.start_ms - STEP_MS), min(self.size, self.index(span.end_ms) + 1)):
                lo, hi = self.begin + i * STEP_MS, min(self.end, self.begin + (i + 1) * STEP_MS)
                overlap = min(hi, span.end_ms) - max(lo, span.start_ms)
                if overlap > 0 and hi > lo:
                    values[i] = min(1.0, values[i] + overlap / (hi - lo))
        return values

    def spans(self, values: Sequence[float]) -> tuple[Span, ...]:
        out: list[Span] = []
        run_start: int | None = None
        for i, value in enumerate([*values, 0.0]):
            if value > 0 and run_start is None:
                run_start = i
            elif value <= 0 and run_start is not None:
                out.append(Span(start_ms=self.time(run_start), end_ms=self.time(i)))
                run_start = None
        return tuple(out)

    def coverage(self, face: Sequence[float], speech: Sequence[float], both: Sequence[float],
                 start: int, end: int) -> Coverage:
        lo, hi = self.index(start), self.index(end)
        if hi <= lo:
            return Coverage(face=0.0, speech=0.0, both=0.0)
        n = hi - lo
        return Coverage(face=sum(face[lo:hi]) / n, speech=sum(speech[lo:hi]) / n,
                        both=sum(both[lo:hi]) / n)


class _Prefix:
    def __init__(self, values: Sequence[float]) -> None:
        self.sums = [0.0]
        for value in values:
            self.sums.append(self.sums[-1] + value)

    def mean(self, lo: int, hi: int) -> float:
        return (self.sums[hi] - self.sums[lo]) / (hi - lo) if hi > lo else 0.0


class _Flaws:
    """Per grid step, what `prep check` would object to (step 5 of the module docstring), as a
    factor on the step's worth (1: nothing), and the warnings for a chosen window."""

    def __init__(self, analysis: Analysis, grid: _Grid, bounds: Sequence[int]) -> None:
        from prep.pick.check import (
            AUDIBLE_DB,
            MUSIC_TONAL_SHARE,
            SECOND_FACE_SCORE,
            TRUE_PEAK_FAIL,
            TWO_FACES_SHARE,
        )

        self.grid = grid
        self.two_faces_share, self.music_share = TWO_FACES_SHARE, MUSIC_TONAL_SHARE

        def crowded(sample: FaceSample) -> bool:  # two confident faces, as `prep check` counts
            return sum(f.score >= SECOND_FACE_SCORE for f in sample.faces) >= 2

        self.crowded = grid.fill(_sample_spans(analysis, bounds, crowded, drop_lone=False))
        self.clipped = [0.0] * grid.size
        self.music = [0.0] * grid.size
        levels = analysis.levels
        if levels is not None:
            from prep.pick.analyze import BLOCK_MS

            begin = analysis.start_ms
            self.clipped = grid.fill(_merge([
                Span(start_ms=begin + i * BLOCK_MS, end_ms=begin + (i + 1) * BLOCK_MS)
                for i, peak in enumerate(levels.block_peak_db) if peak >= TRUE_PEAK_FAIL], 0))
            self.music = grid.fill(_merge([
                Span(start_ms=begin + i * SPEECH_CHUNK_MS, end_ms=begin + (i + 1) * SPEECH_CHUNK_MS)
                for i, (tonal, db) in enumerate(zip(levels.tonal, levels.chunk_db, strict=False))
                if tonal and db > AUDIBLE_DB], 0))
        self.factors = [min(1 - (1 - CROWDED_WORTH) * c, 1 - (1 - CLIPPED_WORTH) * k,
                            1 - (1 - MUSIC_WORTH) * m)
                        for c, k, m in zip(self.crowded, self.clipped, self.music, strict=True)]

    def failing(self, start: int, end: int) -> tuple[str, ...]:
        """What `prep check` would fail in the window (its one_person and clipping checks)."""
        lo, hi = self.grid.index(start), self.grid.index(end)
        if hi <= lo:
            return ()
        out = []
        crowded = sum(self.crowded[lo:hi]) / (hi - lo)
        if crowded > self.two_faces_share:
            out.append(f"two or more faces in {crowded:.0%} of the window: the model may take "
                       "the wrong person")
        if any(self.clipped[lo:hi]):
            out.append("the audio clips in the window (true peak at or over 0 dBTP)")
        return tuple(out)

    def warnings(self, start: int, end: int) -> list[str]:
        lo, hi = self.grid.index(start), self.grid.index(end)
        if hi <= lo:
            return []
        out = list(self.failing(start, end))
        if sum(self.music[lo:hi]) / (hi - lo) >= self.music_share:
            out.append("music or a steady tone under the voice in the window")
        return out


def _face_spans(analysis: Analysis, bounds: Sequence[int]) -> list[Span]:
    """Where a face is on screen. Each sample stands for the time halfway to its neighbours; at a
    cut (`bounds` are the shots' edges) it stands for the rest of its shot on that side.

    A face seen in one sample while its neighbours see none is dropped as a likely false find.
    Faces smaller than FACE_MIN_HEIGHT (which `prep check`'s analysis also finds) do not count.
    """
    from prep.pick.analyze import FACE_MIN_HEIGHT

    floor = FACE_MIN_HEIGHT * 0.98  # the detector's own floor, rounded to pixels
    return _sample_spans(analysis, bounds,
                         lambda s: any(f.height >= floor for f in s.faces), drop_lone=True)


def _sample_spans(analysis: Analysis, bounds: Sequence[int], test: Callable[[FaceSample], bool],
                  *, drop_lone: bool) -> list[Span]:
    """Where the face samples pass `test`, each standing for the time around it (`_face_spans`)."""
    samples = analysis.face_samples
    half = 500 // analysis.face_fps
    times = [s.time_ms for s in samples]
    present = [test(s) for s in samples]
    spans: list[Span] = []
    for i, t in enumerate(times):
        if not present[i]:
            continue
        before = i > 0 and present[i - 1]
        after = i + 1 < len(samples) and present[i + 1]
        if drop_lone and not (before or after) and len(samples) > 1:
            continue
        at = bisect.bisect_right(bounds, t)
        shot_lo = bounds[max(0, at - 1)]
        shot_hi = bounds[min(len(bounds) - 1, at)]
        lo = (times[i - 1] + t) // 2 if i > 0 and times[i - 1] >= shot_lo else shot_lo
        hi = (t + times[i + 1]) // 2 if i + 1 < len(times) and times[i + 1] < shot_hi else shot_hi
        spans.append(Span(start_ms=max(shot_lo, lo, t - 2 * half), end_ms=min(shot_hi, hi, t + 2 * half)))
    return _merge(spans, 0)


def _speech_spans(probabilities: Sequence[float], begin: int, end: int) -> list[Span]:
    spans: list[Span] = []
    for i, p in enumerate(probabilities):
        if p >= SPEECH_THRESHOLD:
            a = begin + i * SPEECH_CHUNK_MS
            spans.append(Span(start_ms=a, end_ms=min(end, a + SPEECH_CHUNK_MS)))
    merged = _merge(spans, SPEECH_BRIDGE_MS)
    return [s for s in merged if s.end_ms - s.start_ms >= SPEECH_MIN_MS]


def _merge(spans: Sequence[Span], gap_ms: int) -> list[Span]:
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: s.start_ms):
        if out and span.start_ms - out[-1].end_ms <= gap_ms:
            last = out[-1]
            out[-1] = Span(start_ms=last.start_ms, end_ms=max(last.end_ms, span.end_ms))
        else:
            out.append(span)
    return out
