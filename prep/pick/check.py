"""Will this clip make a good reference? `prep check`, from the analysis behind `prep pick`.

`check_clip` decodes a clip (or its window) once at reduced size (`analyze.analyze` with the audio
levels and sharpness switched on) and `grade` turns the measurements into named checks, each
`pass`, `warn` or `fail` with the value it measured and a one-line message saying what to do.
`grade` is pure: no I/O, no clock, so it is tested on made-up analyses as well as real footage.

A clip's verdict is `good` (no fail, at most one warn), `fair` (no fail) or `poor` (a fail).

Every threshold below is a named constant with where it comes from. What other hosts of
reference-video models ask for (see `docs/spec/evolink-api.md`, section 6): one character per reference
(EvoLink's Wan 2.7 page), one face facing the camera, in frame the whole time, no cuts (Runway's
Act-One), a character filling more than 5% of the image (Kling via fal), the voice taken from the
clip's own audio (Alibaba's Wan 2.6), clear speech of one speaker with no music under it (Sarvam,
Amazon Polly), SNR above 20 dB (Azure's custom avatar), spoken audio at -23 to -16 LUFS with peaks
well under full scale (ACX), at least 16 fps (fal's Wan 2.6), a short side of at least 240 px
(EvoLink's Wan 2.7) and at least 3 s (some hosts; EvoLink's own minimum is 2 s).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from prep.core import rules
from prep.core.clipinfo import ClipInfo
from prep.core.clipspec import ClipSpec
from prep.core.keys import digest, model_part
from prep.core.modelspec import ModelSpec
from prep.core.timecode import format_ms
from prep.errors import MediaError, PrepError
from prep.pick.analyze import SPEECH_CHUNK_MS, Analysis, FaceSample

__all__ = [
    "CHECK_ANALYSIS",
    "CHECK_NAMES",
    "Check",
    "CheckCache",
    "CheckReport",
    "Checker",
    "Status",
    "Verdict",
    "check_clip",
    "check_each",
    "check_face_fps",
    "check_key",
    "check_window",
    "face_counts",
    "grade",
    "meets",
    "refuse_below",
]

Status = Literal["pass", "warn", "fail"]
Verdict = Literal["good", "fair", "poor"]
VERDICTS: tuple[Verdict, ...] = ("poor", "fair", "good")  # worst first
CHECK_NAMES = ("one_person", "face_size", "face_share", "face_visible", "face_light", "speech",
               "music", "loudness", "clipping", "noise", "cuts", "frame_rate", "resolution",
               "sharpness", "duration")

# --- faces (sampled at the analysis' face rate) --------------------------------------------------
# The face detector is most of the check's work (`pick.faces`, OpenCV's ResNet-10 SSD); a range
# this long or longer is sampled once a second instead of twice, which still gives it 20 samples
# or more.
SPARSE_FACES_FROM_MS = 20_000
# Faces as small as this share of the frame height are looked for, so that a small face is
# reported as small, not as missing (the detector finds faces down to about 5% of the height).
CHECK_FACE_MIN_HEIGHT = 0.05
# Before the shares below are counted, a sample whose face count differs from both of its
# neighbours, which agree, takes theirs: one missed or doubled detection is the detector's glitch,
# not the footage (a person does not leave the frame, or a second one enter it, for half a second).
# One person (EvoLink's Wan 2.7 page: "each video should contain a single character"; wan2.7 and
# wan3.0 ask for one character per reference): two or more faces in the same samples for at least
# half of the clip fails; for over a tenth of it warns.
TWO_PEOPLE_SHARE = 0.50
TWO_FACES_SHARE = 0.10
# A face scored under this (the detector keeps faces from 0.7) is enough to say a face is on
# screen, not to say there is a second one: the SSD's stray finds beside a face (a shoulder, a
# collar) score 0.6-0.85 on the carphone footage, while the faces of two people score over 0.95.
SECOND_FACE_SCORE = 0.9
# Fewer samples with a face than this is no person at all (a stray detection or two).
NO_FACE_SHARE = 0.10
# Face height over frame height. A face a fifth of the frame high is a shoulders-up shot (Runway's
# Act-One asks for shoulders up); under a tenth, the person is small in the picture.
FACE_HEIGHT_PASS = 0.20
FACE_HEIGHT_WARN = 0.10
# The face's box over the frame's area. Kling via fal asks for a character filling more than 5%
# of the image; in a shoulders-up shot the face's box is about a quarter of the character's, so a
# face box under 1.25% of the frame leaves the character under 5%; under 0.5%, far under.
FACE_SHARE_PASS = 0.0125
FACE_SHARE_WARN = 0.005
# Share of the clip with a face on screen (Act-One: "in frame the whole time").
FACE_VISIBLE_PASS = 0.90
FACE_VISIBLE_WARN = 0.50
# Brightness of the face (mean luma of its box, 0-255, median over the samples). A face exposed
# for skin sits at about 90-180; under 60 the model sees a dark face with little detail, under 35
# hardly a face; over 215 the skin is washed out (prep's own choice, measured on the labelled
# set's faces dimmed to 35% and 20%: 50-60 and 30-35).
FACE_LIGHT_PASS = (60.0, 215.0)
FACE_LIGHT_WARN = (35.0, 235.0)

# --- audio -------------------------------------------------------------------------------------
SPEECH_PROBABILITY = 0.5  # as `prep pick` (choose.SPEECH_THRESHOLD)
# Speech: under 0.5 s (or 5% of the clip) is none; under 40% of the clip is little for a voice.
SPEECH_NONE_MS = 500
SPEECH_NONE_SHARE = 0.05
SPEECH_WARN_SHARE = 0.40
# A chunk quieter than this (dBFS RMS) is silence: it says nothing about music or noise.
AUDIBLE_DB = -50.0
# Music or a tonal hum: the share of audible chunks holding a steady tone (`AudioLevels.tonal`).
# Calibrated on the committed espeak-ng speech (fixtures/pick: speech_a 4%, speech_b 18%, its
# flat pitch being the hardest case), a chord mixed 14-24 dB under either (38-61%) and music
# alone (over 90%); 0.25 sits near the geometric middle of 18% and 38%. Held in
# tests/test_check_media.py.
MUSIC_TONAL_SHARE = 0.25
# Loudness of spoken audio, EBU R128 integrated: ACX asks for -23 to -16 LUFS; half a LU either
# side is measurement and normalisation tolerance. Past the warn band the voice is far off.
LOUDNESS_PASS = (-23.5, -15.5)
LOUDNESS_WARN = (-30.0, -12.0)
LOUDNESS_TARGET = -16  # what `prepare --loudness` is told in the advice
# Peaks: 0 dBTP or more is clipped (or will be, once decoded); EBU R128 broadcast keeps true peaks
# at or under -1 dBTP (ACX asks for -3 dB, `prepare --loudness` makes -1.5).
TRUE_PEAK_FAIL = 0.0
TRUE_PEAK_WARN = -1.0
# Runs of samples stuck at the peak (astats' flat factor above 0) at this many places: clipped.
CLIPPED_PEAKS = 10
# Signal to noise, speech against the rest: Azure's custom avatar asks for over 20 dB.
SNR_PASS = 20.0
SNR_WARN = 10.0
# Non-speech chunks needed to measure the background directly; with fewer (speech all the way),
# the quietest tenth of the chunks stands for it.
NOISE_MIN_CHUNKS = 8
NON_SPEECH_PROBABILITY = 0.2

# --- picture -------------------------------------------------------------------------------------
# Cuts in the first half second are encoder or fade-in artefacts (as in `prep pick`).
IGNORE_CUTS_BEFORE_MS = 500
MIN_FPS = 16  # fal's Wan 2.6 reference-to-video: under this fails
# What the newer models and other hosts expect of a reference (spec section 6 and 7): 24 to 60
# frames a second, constant. Outside that (but at MIN_FPS or more), or variable, warns.
GOOD_FPS = (24, 60)
MIN_SHORT_SIDE = 240  # EvoLink's Wan 2.7: 240-4096 px
# Under 360 lines a face has little detail to learn from (prep's own choice).
GOOD_SHORT_SIDE = 360
# `analyze.sharpness` (share of the detail that is fine), median over the samples. Sharp faces
# and scenes measure 0.10-0.30 at the analysis size; a picture blurred by 2 px (at 360 lines)
# under 0.03. Calibrated in tests/test_check_media.py.
SHARPNESS_PASS = 0.06
SHARPNESS_WARN = 0.035
# Duration: EvoLink's minimum is 2 s, some hosts want 3 s; over 30 s the API refuses the clip.
DURATION_WARN_MS = 3_000


# What `analyze` is asked for when the analysis is graded (by `prep check`, or by a job that
# checks a picked window from the analysis that picked it).
CHECK_ANALYSIS: dict[str, Any] = {"face_min_height": CHECK_FACE_MIN_HEIGHT, "levels": True,
                                  "sharpness": True}


def check_face_fps(duration_ms: int) -> int:
    """Face samples per second for a check of `duration_ms` (see SPARSE_FACES_FROM_MS)."""
    return 1 if duration_ms >= SPARSE_FACES_FROM_MS else 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One named check: its status, what it measured (`value`, in `unit`) and what to do."""

    name: str
    status: Status
    value: float | int | None
    message: str
    unit: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {"status": self.status, "value": self.value, "unit": self.unit,
                "message": self.message}


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckReport:
    """How good one clip (or its window) is as a reference."""

    path: Path
    spec: str
    start_ms: int
    end_ms: int
    checks: tuple[Check, ...]
    elapsed_s: float = 0.0
    analysis: Analysis | None = field(default=None, repr=False, compare=False)
    # Graded from the analysis that picked the window (no decode of its own).
    reused: bool = False
    # Taken from the check cache (graded before, by this run or an earlier one).
    cached: bool = False
    model: str = rules.MODEL  # the model whose rules the model's checks were graded by

    @property
    def verdict(self) -> Verdict:
        """good: no fail and at most one warn; fair: no fail; poor: a fail."""
        statuses = [c.status for c in self.checks]
        if "fail" in statuses:
            return "poor"
        return "good" if statuses.count("warn") <= 1 else "fair"

    @property
    def duration_ms(self) -> int:
        """Length of the checked range."""
        return self.end_ms - self.start_ms

    @property
    def reasons(self) -> tuple[Check, ...]:
        """The checks that did not pass, fails first (in check order within each)."""
        return (tuple(c for c in self.checks if c.status == "fail")
                + tuple(c for c in self.checks if c.status == "warn"))

    def check(self, name: str) -> Check:
        """The check called `name` (KeyError if there is none)."""
        for item in self.checks:
            if item.name == name:
                return item
        raise KeyError(name)

    def summary(self) -> dict[str, Any]:
        """The short JSON shape a job shows per clip: verdict, reasons, and every check."""
        return {"verdict": self.verdict,
                "reasons": [f"{c.name}: {c.message}" for c in self.reasons],
                "start_s": self.start_ms / 1000, "end_s": self.end_ms / 1000,
                "checks": {c.name: c.as_dict() for c in self.checks},
                "reused_pick_analysis": self.reused, "cached": self.cached, "model": self.model}

    def as_dict(self) -> dict[str, Any]:
        """JSON shape (`prep check --json` lists these)."""
        return {
            "path": str(self.path), "spec": self.spec, "model": self.model,
            "verdict": self.verdict,
            "reasons": [f"{c.name}: {c.message}" for c in self.reasons],
            "start_s": self.start_ms / 1000, "end_s": self.end_ms / 1000,
            "duration_s": self.duration_ms / 1000,
            "checks": {c.name: c.as_dict() for c in self.checks},
            "elapsed_s": round(self.elapsed_s, 3), "cached": self.cached,
        }


def meets(verdict: Verdict, required: Verdict) -> bool:
    """Whether `verdict` is `required` or better."""
    return VERDICTS.index(verdict) >= VERDICTS.index(required)


def check_clip(clip: ClipSpec | Path | str, *, workers: int | None = None,
               progress: Callable[[int, int], None] | None = None,
               ffmpeg: str | None = None, cache: CheckCache | None = None,
               model: ModelSpec | str | None = None) -> CheckReport:
    """Analyse a clip (its window, when the spec has one) in one decode pass and grade it, by
    `model`'s rules where a check depends on the model (a table, or its id or alias; default
    wan2.6; see `grade`).
    `ffmpeg` is the configured ffmpeg (`Settings.ffmpeg`; None: PATH, then the bundled one).
    With a `cache`, a clip and window graded before (unchanged since) is not decoded again: its
    report comes from the cache, marked `cached`, and a new one is kept there.

    MediaError for a missing or unreadable clip, one without video, or missing `pick` extras.
    """
    from prep.core.models import model_spec
    from prep.media.clips import parse_clip_spec
    from prep.media.probe import probe
    from prep.pick.analyze import require_extras

    model = model_spec(model) if isinstance(model, str) else model
    spec = clip if isinstance(clip, ClipSpec) else parse_clip_spec(str(clip))
    path = spec.path
    if not path.exists():
        raise MediaError(path, "no such file", hint="check the path")
    require_extras(path)
    started = time.perf_counter()
    info = probe(path)
    start_ms, end_ms = 0, info.video_duration_ms or info.duration_ms
    if spec.window is not None and not spec.window.is_open:
        start_ms, end_ms = spec.window.resolve(info.fps, end_ms, str(spec))
    if end_ms <= start_ms:
        raise MediaError(str(spec), "has nothing to check in the chosen part",
                         hint="give a window inside the clip")
    table = model or rules.WAN26
    key = check_key(path, start_ms, end_ms, table.id) if cache is not None else ""
    report = cache.get(key, spec=str(spec)) if cache is not None else None
    if report is None:
        report = check_window(path, start_ms, end_ms, info=info, spec=str(spec), workers=workers,
                              progress=progress, started=started, ffmpeg=ffmpeg, model=table)
        if cache is not None:
            cache.put(key, report)
    return report


def check_window(path: Path, start_ms: int, end_ms: int, *, info: ClipInfo | None = None,
                 analysis: Analysis | None = None, spec: str | None = None,
                 workers: int | None = None, progress: Callable[[int, int], None] | None = None,
                 started: float | None = None, ffmpeg: str | None = None,
                 model: ModelSpec | None = None) -> CheckReport:
    """Grade [start_ms, end_ms) of `path`. From `analysis` when it covers that range and was made
    with CHECK_ANALYSIS (a job that picked the window hands over the analysis that picked it):
    nothing is decoded again. Otherwise one decode pass of the range."""
    from prep.pick.analyze import analyze

    started = time.perf_counter() if started is None else started
    if analysis is not None and _covers(analysis, start_ms, end_ms):
        report = grade(analysis.part(start_ms, end_ms), spec=spec, model=model)
        return replace(report, analysis=analysis, reused=True,
                       elapsed_s=time.perf_counter() - started)
    analysis = analyze(path, start_ms=start_ms, end_ms=end_ms, info=info, workers=workers,
                       thumbnails=0, face_fps=check_face_fps(end_ms - start_ms),
                       skip_b_frames=True, progress=progress, ffmpeg=ffmpeg, **CHECK_ANALYSIS)
    report = grade(analysis, spec=spec, model=model)
    return replace(report, analysis=analysis, elapsed_s=time.perf_counter() - started)


def _covers(analysis: Analysis, start_ms: int, end_ms: int) -> bool:
    """Whether `analysis` measured all of [start_ms, end_ms) with everything the check needs."""
    levels_ok = analysis.levels is not None or not analysis.has_audio
    sharp_ok = any(s.sharpness is not None for s in analysis.face_samples)
    return (analysis.start_ms <= start_ms and end_ms <= analysis.end_ms and levels_ok
            and sharp_ok and bool(analysis.levels is None or analysis.levels.block_lufs))


# Bumped whenever the grading or the face detector changes, so that older cached reports are not
# taken for new ones.
CHECK_CACHE_VERSION = "3-ssd"


def check_key(path: Path, start_ms: int, end_ms: int, model: str = rules.MODEL) -> str:
    """Identity of a check: the clip as it is now (as prepared files are keyed: its path, size and
    modification time), the window, the version of the grading and the model it is graded by."""
    resolved = path.resolve()
    stat = resolved.stat()
    return digest([CHECK_CACHE_VERSION, str(resolved), stat.st_size, stat.st_mtime_ns,
                   start_ms, end_ms, *model_part(model)])


class CheckCache:
    """Reports already graded, by clip and window: in memory for one run (20 jobs on one clip
    decode it once), and as small JSON files in `folder` across runs (a dry run, then the real
    run). A file that cannot be read is taken as absent."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self._memory: dict[str, CheckReport] = {}

    def get(self, key: str, *, spec: str) -> CheckReport | None:
        """The cached report for `key`, named `spec`, or None."""
        import json

        report = self._memory.get(key)
        if report is None and self.folder is not None and key.isalnum():
            try:
                data = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
                report = CheckReport(
                    path=Path(data["path"]), spec=data["spec"], start_ms=int(data["start_ms"]),
                    end_ms=int(data["end_ms"]), elapsed_s=float(data.get("elapsed_s", 0.0)),
                    checks=tuple(Check(name=c["name"], status=c["status"], value=c["value"],
                                       message=c["message"], unit=c.get("unit", ""))
                                 for c in data["checks"]))
            except (OSError, ValueError, KeyError, TypeError):
                return None
            self._memory[key] = report
        return None if report is None else replace(report, spec=spec, cached=True)

    def put(self, key: str, report: CheckReport) -> None:
        """Keep `report` (on disk too, when there is a folder; a disk that refuses is ignored)."""
        import contextlib
        import json

        from prep.files import write_text_atomic

        self._memory[key] = replace(report, analysis=None)
        if self.folder is None or not key.isalnum():
            return
        data = {"path": str(report.path), "spec": report.spec, "start_ms": report.start_ms,
                "end_ms": report.end_ms, "elapsed_s": round(report.elapsed_s, 3),
                "checks": [{"name": c.name, **c.as_dict()} for c in report.checks]}
        with contextlib.suppress(OSError):
            write_text_atomic(self.folder / f"{key}.json", json.dumps(data))


def refuse_below(report: CheckReport, required: Verdict) -> None:
    """MediaError (exit 3) when `report`'s verdict is below `required` (`--require`)."""
    if meets(report.verdict, required):
        return
    why = ", ".join(f"{c.name} {c.status}" for c in report.reasons[:3])
    raise MediaError(report.spec, f"is a {report.verdict} reference, below --require "
                                  f"{required} ({why})",
                     hint="choose another clip or window (`prep check`, `prep pick`), or lower "
                          "--require")


class Checker:
    """Checks the clips of a job before it is paid for (`prep generate`, `prep batch`).

    `checker(path, start_ms, end_ms, ...)` returns the clip's CheckReport (also handed to
    `on_report`, before a verdict below `required` is refused), or None when the
    `pick` extra is missing: then `on_note` hears it once and the job goes on, unless a verdict
    is `required`, which makes the missing extra a MediaError (exit 3) as `prep check` has it.
    A clip that cannot be analysed (a broken audio track, say) is not the job's problem either:
    its report is None, with a note. Every report is kept in `reports` for the caller. `ffmpeg`
    is the configured ffmpeg the clips are decoded with (`Settings.ffmpeg`).

    A clip and window checked once is not decoded again: its report comes from `cache` (by
    default one in memory only; give a CheckCache with a folder to keep reports across runs),
    and `on_report` hears each clip and window once however many jobs use it.
    """

    def __init__(self, *, required: Verdict | None = None,
                 on_note: Callable[[str], None] | None = None,
                 on_report: Callable[[CheckReport], None] | None = None,
                 progress: Callable[[Path], Any] | None = None,
                 ffmpeg: str | None = None, cache: CheckCache | None = None) -> None:
        self.required = required
        self.ffmpeg = ffmpeg
        self._note = on_note
        self._report = on_report
        self._progress = progress
        self._missing: bool | None = None
        self._cache = cache or CheckCache()
        self._shown: set[str] = set()
        self.reports: list[CheckReport] = []

    def available(self, path: Path | str) -> bool:
        """Whether the check can run (the `pick` extra is installed); says so once if not."""
        from prep.pick.analyze import require_extras

        if self._missing is None:
            try:
                require_extras(path)
                self._missing = False
            except MediaError as exc:
                if self.required is not None:
                    raise MediaError(path, f"cannot be checked for --require {self.required}: "
                                           f"{exc.problem}", hint=exc.hint) from exc
                self._missing = True
                if self._note is not None:
                    self._note(f"clips not checked as references: the check needs the pick "
                               f"extra ({exc.hint})")
        return not self._missing

    def __call__(self, path: Path, start_ms: int, end_ms: int, *, spec: str | None = None,
                 info: ClipInfo | None = None, analysis: Analysis | None = None,
                 model: ModelSpec | None = None) -> CheckReport | None:
        """The report of [start_ms, end_ms) of `path`, graded by `model`'s rules (default wan2.6)."""
        if not self.available(path):
            return None
        import contextlib

        factory = self._progress
        table = model or rules.WAN26
        try:
            key = check_key(path, start_ms, end_ms, table.id)
        except OSError:  # a clip that cannot be read is checked (and fails) without a cache
            key = f"{path}@{start_ms}-{end_ms}:{table.id}"
        try:
            report = self._cache.get(key, spec=spec or str(path))
            if report is None:
                with factory(path) if factory is not None else contextlib.nullcontext(None) as bar:
                    report = check_window(path, start_ms, end_ms, info=info, analysis=analysis,
                                          spec=spec, progress=bar, ffmpeg=self.ffmpeg, model=table)
                self._cache.put(key, report)
            report = replace(report, model=table.id)
        except (MediaError, ValueError) as exc:
            if self.required is not None:
                raise
            if self._note is not None:
                self._note(f"{spec or path}: not checked ({exc})")
            return None
        self.reports.append(report)
        if self._report is not None and key not in self._shown:
            self._report(report)
        self._shown.add(key)
        if self.required is not None:
            refuse_below(report, self.required)
        return report


def check_each(clips: Sequence[ClipSpec], *,
               progress: Callable[[ClipSpec], Any] | None = None,
               ffmpeg: str | None = None) -> Iterator[CheckReport | PrepError]:
    """`check_clip` for each clip in turn; a clip that cannot be checked yields its error, so
    the others are still answered. `progress(spec)` may return a callable for that clip."""
    for spec in clips:
        try:
            yield check_clip(spec, progress=progress(spec) if progress else None, ffmpeg=ffmpeg)
        except PrepError as exc:
            yield exc


def grade(analysis: Analysis, *, spec: str | None = None, model: ModelSpec | None = None) -> CheckReport:
    """The checks of an analysed clip (made with `levels=True, sharpness=True` for all of them).
    Pure: depends on `analysis` and the model's table alone (default wan2.6), which sets what
    one_person cites, the resolution's pixel and aspect range and the duration's range."""
    table = model or rules.WAN26
    checks = (*_faces(analysis, table), *_audio(analysis), _cuts(analysis), _frame_rate(analysis),
              _resolution(analysis, table), _sharpness(analysis), _duration(analysis, table))
    return CheckReport(path=analysis.path, spec=spec or str(analysis.path),
                       start_ms=analysis.start_ms, end_ms=analysis.end_ms, checks=checks,
                       model=table.id)


# --- faces ---------------------------------------------------------------------------------------

def face_counts(samples: Sequence[FaceSample]) -> list[int]:
    """Faces per sample (at least CHECK_FACE_MIN_HEIGHT high; beyond the first, only those scored
    SECOND_FACE_SCORE or more), a lone glitch smoothed over: a sample whose count differs from
    both neighbours (or, at an end, from the two next to it), which agree, takes theirs."""
    raw = []
    for sample in samples:
        faces = [f for f in sample.faces if f.height >= CHECK_FACE_MIN_HEIGHT * 0.98]
        sure = sum(f.score >= SECOND_FACE_SCORE for f in faces)
        raw.append(max(sure, min(1, len(faces))))
    counts = list(raw)
    for i in range(1, len(raw) - 1):
        if raw[i - 1] == raw[i + 1] != raw[i]:
            counts[i] = raw[i - 1]
    # At either end, a sample unlike the two next to it, which agree, takes theirs.
    for end, nxt, after in ((0, 1, 2), (-1, -2, -3)):
        if len(raw) >= 3 and raw[nxt] == raw[after] != raw[end]:
            counts[end] = raw[nxt]
    return counts


def _faces(a: Analysis, model: ModelSpec) -> tuple[Check, ...]:
    samples = a.face_samples
    total = len(samples)
    if not total:
        none = "no frames were sampled: the clip is too short to judge"
        return tuple(Check(name=n, status="fail", value=None, message=none)
                     for n in ("one_person", "face_size", "face_share", "face_visible",
                               "face_light"))
    counts = face_counts(samples)
    one = sum(c == 1 for c in counts) / total
    many = sum(c >= 2 for c in counts) / total
    seen = sum(c >= 1 for c in counts) / total
    rule = (f"{model.id} asks for one character per reference" if model.one_character
            else "the model may take the wrong person")
    if seen < NO_FACE_SHARE:
        person = Check(name="one_person", status="fail", value=_share(one), unit="share",
                       message="no person: no face was found; use a clip with one person "
                               "facing the camera")
    elif many >= TWO_PEOPLE_SHARE:
        person = Check(name="one_person", status="fail", value=_share(one), unit="share",
                       message=f"two people (two or more faces in {_pct(many)} of the frames; "
                               f"{rule}): crop to one, or pick a part with one")
    elif many > TWO_FACES_SHARE:
        person = Check(name="one_person", status="warn", value=_share(one), unit="share",
                       message=f"a second face in {_pct(many)} of the frames ({rule}); crop "
                               "or pick a part with one person")
    else:
        person = Check(name="one_person", status="pass", value=_share(one), unit="share",
                       message="one person" if seen >= FACE_VISIBLE_PASS
                       else f"one person when a face is on screen ({_pct(seen)} of the time)")

    # The main face of each sample: its largest.
    main = [max(s.faces, key=lambda f: f.height) for s, c in zip(samples, counts, strict=True)
            if c and s.faces]
    if not main:
        missing = "no face to measure"
        size = Check(name="face_size", status="fail", value=None, unit="share", message=missing)
        share = Check(name="face_share", status="fail", value=None, unit="share", message=missing)
    else:
        height = float(statistics.median(f.height for f in main))
        if height >= FACE_HEIGHT_PASS:
            size = Check(name="face_size", status="pass", value=_share(height), unit="share",
                         message=f"the face is {_pct(height)} of the frame height")
        else:
            size = Check(name="face_size", status="warn" if height >= FACE_HEIGHT_WARN else "fail",
                         value=_share(height), unit="share",
                         message=f"the face is only {_pct(height)} of the frame height; frame "
                                 f"shoulders up (a face of {_pct(FACE_HEIGHT_PASS)} or more)")
        area = float(statistics.median(f.width * f.height for f in main))
        value = round(area, 4)
        if area >= FACE_SHARE_PASS:
            share = Check(name="face_share", status="pass", value=value, unit="share",
                          message=f"the face covers {area * 100:.1f}% of the picture")
        else:
            share = Check(name="face_share",
                          status="warn" if area >= FACE_SHARE_WARN else "fail",
                          value=value, unit="share",
                          message=f"the face covers only {area * 100:.1f}% of the picture: the "
                                  "character should fill over 5% of it; frame closer")
    if seen >= FACE_VISIBLE_PASS:
        visible = Check(name="face_visible", status="pass", value=_share(seen), unit="share",
                        message=f"a face is on screen {_pct(seen)} of the time")
    else:
        visible = Check(name="face_visible", status="warn" if seen >= FACE_VISIBLE_WARN else "fail",
                        value=_share(seen), unit="share",
                        message=f"a face is on screen only {_pct(seen)} of the time; pick a part "
                                "where the face stays in frame (prep pick)")
    return person, size, share, visible, _face_light(samples, counts)


def _face_light(samples: Sequence[FaceSample], counts: Sequence[int]) -> Check:
    lumas = [s.face_luma for s, c in zip(samples, counts, strict=True)
             if c and s.face_luma is not None]
    if not lumas:
        return Check(name="face_light", status="pass", value=None,
                     message="not measured (no face, or analysed without it)")
    luma = round(float(statistics.median(lumas)), 1)
    return _banded("face_light", luma, "luma", FACE_LIGHT_PASS, FACE_LIGHT_WARN,
                   passed=f"the face is well lit ({luma:g} of 255)",
                   low=f"the face is dark ({luma:g} of 255): light the face, or use a brighter take",
                   high=f"the face is washed out ({luma:g} of 255): expose for the face")


def _banded(name: str, value: float, unit: str, passing: tuple[float, float],
            warning: tuple[float, float], *, passed: str, low: str, high: str) -> Check:
    """A check of a measure that passes inside `passing`, warns inside the wider `warning` and
    fails beyond it; `low` or `high` is the message on the side the value is off."""
    if passing[0] <= value <= passing[1]:
        return Check(name=name, status="pass", value=value, unit=unit, message=passed)
    status: Status = "warn" if warning[0] <= value <= warning[1] else "fail"
    return Check(name=name, status=status, value=value, unit=unit,
                 message=low if value < passing[0] else high)


# --- audio ---------------------------------------------------------------------------------------

def _audio(a: Analysis) -> tuple[Check, ...]:
    names = ("speech", "music", "loudness", "clipping", "noise")
    if not a.has_audio:
        return (Check(name="speech", status="fail", value=0, unit="s",
                      message="no audio track: the voice comes from the reference's audio; "
                              "use a clip with the person speaking"),
                *(Check(name=n, status="pass", value=None, message="no audio to measure")
                  for n in names[1:]))
    speech_chunks = [p >= SPEECH_PROBABILITY for p in a.speech]
    speech_ms = sum(speech_chunks) * SPEECH_CHUNK_MS
    share = speech_ms / max(1, a.duration_ms)
    seconds = round(speech_ms / 1000, 1)
    if speech_ms < SPEECH_NONE_MS or share < SPEECH_NONE_SHARE:
        speech = Check(name="speech", status="fail", value=seconds, unit="s",
                       message="no speech: the model learns the voice from this audio; use a clip "
                               "where the person talks")
    elif share < SPEECH_WARN_SHARE:
        speech = Check(name="speech", status="warn", value=seconds, unit="s",
                       message=f"little speech ({seconds:g} s, {_pct(share)} of the clip); "
                               "pick a part where the person talks most of the time")
    else:
        speech = Check(name="speech", status="pass", value=seconds, unit="s",
                       message=f"speech for {seconds:g} s ({_pct(share)} of the clip)")
    levels = a.levels
    if levels is None:
        missing = "not measured (analysed without audio levels)"
        return (speech, *(Check(name=n, status="pass", value=None, message=missing)
                          for n in names[1:]))
    return (speech, _music(levels.chunk_db, levels.tonal), _loudness(levels.integrated_lufs),
            _clipping(levels.true_peak_db, levels.flat_factor, levels.peak_count),
            _noise(a.speech, levels.chunk_db, bool(speech_ms >= SPEECH_NONE_MS)))


def _music(chunk_db: Sequence[float], tonal: Sequence[bool]) -> Check:
    audible = [t for t, db in zip(tonal, chunk_db, strict=False) if db > AUDIBLE_DB]
    if not audible:
        return Check(name="music", status="pass", value=None, message="no sound to judge")
    share = sum(audible) / len(audible)
    if share >= MUSIC_TONAL_SHARE:
        return Check(name="music", status="warn", value=_share(share), unit="share",
                     message=f"music or a steady tone in {_pct(share)} of the sound: the voice "
                             "may be learned with it; use a take without music")
    return Check(name="music", status="pass", value=_share(share), unit="share",
                 message="no music or hum under the voice")


def _loudness(lufs: float | None) -> Check:
    fix = f"run `prep prepare --loudness {LOUDNESS_TARGET}`"
    if lufs is None or lufs <= -70:
        return Check(name="loudness", status="fail", value=None, unit="LUFS",
                     message="the audio is silent or too quiet to measure")
    value = round(lufs, 1)
    check = _banded("loudness", lufs, "LUFS", LOUDNESS_PASS, LOUDNESS_WARN,
                    passed=f"{value:g} LUFS, within -23 to -16 for speech",
                    low=f"{value:g} LUFS is too quiet for speech (-23 to -16): {fix}",
                    high=f"{value:g} LUFS is too loud for speech (-23 to -16): {fix}")
    return replace(check, value=value)


def _clipping(true_peak: float | None, flat_factor: float, peak_count: int) -> Check:
    value = None if true_peak is None else round(true_peak, 1)
    if flat_factor > 0 and peak_count >= CLIPPED_PEAKS:
        return Check(name="clipping", status="fail", value=value, unit="dBTP",
                     message=f"clipped: samples stuck at the peak in {peak_count} places; the "
                             "voice is distorted, record again at a lower gain")
    if value is None:
        return Check(name="clipping", status="pass", value=None, unit="dBTP",
                     message="no peaks to measure")
    if true_peak is not None and true_peak >= TRUE_PEAK_FAIL:
        return Check(name="clipping", status="fail", value=value, unit="dBTP",
                     message=f"true peak {value:+g} dBTP: the peaks clip; record at a lower gain, "
                             f"or `prep prepare --loudness {LOUDNESS_TARGET}` keeps them under "
                             "-1.5 dBTP")
    if true_peak is not None and true_peak > TRUE_PEAK_WARN:
        return Check(name="clipping", status="warn", value=value, unit="dBTP",
                     message=f"true peak {value:+g} dBTP is close to clipping: "
                             f"`prep prepare --loudness {LOUDNESS_TARGET}` keeps it under -1.5")
    return Check(name="clipping", status="pass", value=value, unit="dBTP",
                 message=f"true peak {value:+g} dBTP")


def snr_db(speech: Sequence[float], chunk_db: Sequence[float]) -> float | None:
    """Speech against background, in dB: the mean power of the speech chunks over the median
    power of the non-speech chunks (or the quietest tenth of all chunks, when speech fills the
    clip). None without speech. Capped at 60 dB (digital silence between words)."""
    pairs = list(zip(speech, chunk_db, strict=False))
    voiced = [10 ** (db / 10) for p, db in pairs if p >= SPEECH_PROBABILITY]
    if not voiced:
        return None
    quiet = sorted(10 ** (db / 10) for p, db in pairs if p < NON_SPEECH_PROBABILITY)
    if len(quiet) < NOISE_MIN_CHUNKS:
        quiet = sorted(10 ** (db / 10) for _, db in pairs)[:max(1, len(pairs) // 10)]
    noise = quiet[len(quiet) // 2]
    signal = sum(voiced) / len(voiced)
    return min(60.0, 10 * math.log10(signal / max(noise, 1e-14)))


def _noise(speech: Sequence[float], chunk_db: Sequence[float], has_speech: bool) -> Check:
    snr = snr_db(speech, chunk_db) if has_speech else None
    if snr is None:
        return Check(name="noise", status="pass", value=None, unit="dB",
                     message="no speech to measure the noise against")
    value = round(snr, 1)
    if snr >= SNR_PASS:
        return Check(name="noise", status="pass", value=value, unit="dB",
                     message=f"speech {value:g} dB over the background")
    status: Status = "warn" if snr >= SNR_WARN else "fail"
    return Check(name="noise", status=status, value=value, unit="dB",
                 message=f"speech only {value:g} dB over the background (20 dB or more is "
                         "clean): record somewhere quieter or closer to the microphone")


# --- picture and length --------------------------------------------------------------------------

def _cuts(a: Analysis) -> Check:
    from prep.core.window import DEFAULT_FPS, edge_margin_ms

    margin = edge_margin_ms(a.fps or DEFAULT_FPS)
    inside = sorted({c.time_ms for c in a.cuts
                     if a.start_ms + IGNORE_CUTS_BEFORE_MS <= c.time_ms < a.end_ms - margin})
    if not inside:
        return Check(name="cuts", status="pass", value=0, message="one shot, no cuts")
    where = ", ".join(f"{format_ms(t)} s" for t in inside[:3]) + (" ..." if len(inside) > 3 else "")
    return Check(name="cuts", status="fail", value=len(inside),
                 message=f"{len(inside)} hard cut{'s' if len(inside) != 1 else ''} (at {where}): "
                         "keep one shot, e.g. CLIP@START-END or `prep pick`")


def _frame_rate(a: Analysis) -> Check:
    fps = a.fps
    if fps is None:
        return Check(name="frame_rate", status="warn", value=None, unit="fps",
                     message="the frame rate is unknown (variable?): use footage at a constant "
                             "24-60 fps")
    value = round(float(fps), 3)
    if fps < MIN_FPS:
        return Check(name="frame_rate", status="fail", value=value, unit="fps",
                     message=f"{value:g} fps is under {MIN_FPS}: motion and lips will stutter; "
                             "use footage shot at 24 fps or more")
    low, high = GOOD_FPS
    if a.info.vfr:
        return Check(name="frame_rate", status="warn", value=value, unit="fps",
                     message=f"variable frame rate (about {value:g} fps): the models expect a "
                             "constant rate; `prep prepare` converts it")
    if not low <= fps <= high:
        return Check(name="frame_rate", status="warn", value=value, unit="fps",
                     message=f"{value:g} fps is outside the {low}-{high} fps the models expect")
    return Check(name="frame_rate", status="pass", value=value, unit="fps",
                 message=f"{value:g} fps, constant")


def _resolution(a: Analysis, model: ModelSpec) -> Check:
    width, height = a.info.display_size
    short, long = min(width, height), max(width, height)
    # The model's pixel range where its table has one (wan2.7, wan3.0: 240-4096 px a side).
    sides = model.videos.side_px
    least = sides.low if sides is not None else MIN_SHORT_SIDE
    if short < least:
        takes = f" ({model.id} takes {sides.text(' px')} a side)" if sides is not None else ""
        return Check(name="resolution", status="fail", value=short, unit="px",
                     message=f"{width}x{height}: the short side is under {least} px{takes}; "
                             "use a larger original")
    aspect = model.videos.aspect
    if aspect is not None and short and not aspect[0] <= Fraction(long, short) <= aspect[1]:
        return Check(name="resolution", status="fail", value=short, unit="px",
                     message=f"{width}x{height} is narrower than {model.id}'s 1:{aspect[1]} "
                             "aspect limit; crop it")
    if sides is not None and long > sides.high:
        return Check(name="resolution", status="warn", value=short, unit="px",
                     message=f"{width}x{height}: {model.id} takes at most {sides.high} px a side; "
                             "`prep prepare` scales it down")
    if short < GOOD_SHORT_SIDE:
        return Check(name="resolution", status="warn", value=short, unit="px",
                     message=f"{width}x{height}: the face has little detail under "
                             f"{GOOD_SHORT_SIDE} px; use a larger original if there is one")
    return Check(name="resolution", status="pass", value=short, unit="px",
                 message=f"{width}x{height}")


def _sharpness(a: Analysis) -> Check:
    values = [s.sharpness for s in a.face_samples if s.sharpness is not None]
    if not values:
        return Check(name="sharpness", status="pass", value=None,
                     message="not measured (a flat picture, or no frames)")
    value = round(float(statistics.median(values)), 3)
    if value >= SHARPNESS_PASS:
        return Check(name="sharpness", status="pass", value=value, message="sharp")
    status: Status = "warn" if value >= SHARPNESS_WARN else "fail"
    what = "soft" if status == "warn" else "blurred or out of focus"
    return Check(name="sharpness", status=status, value=value,
                 message=f"the picture is {what}: the model learns a face from its detail; "
                         "use a take in focus")


def _duration(a: Analysis, model: ModelSpec) -> Check:
    ms = a.duration_ms
    seconds = round(ms / 1000, 3)
    clip = model.videos.duration_ms
    least, most = (clip.low, clip.high) if clip is not None else (rules.MIN_CLIP_MS, rules.MAX_CLIP_MS)
    if ms < least:
        return Check(name="duration", status="fail", value=seconds, unit="s",
                     message=f"{format_ms(ms)} s is under {model.id}'s {least / 1000:g} s "
                             "minimum; use a longer part (or prepare --extend)")
    if ms < DURATION_WARN_MS:
        return Check(name="duration", status="warn", value=seconds, unit="s",
                     message=f"{format_ms(ms)} s is short: some hosts want {DURATION_WARN_MS // 1000}"
                             " s or more; give the model a longer take")
    if ms > most:
        return Check(name="duration", status="warn", value=seconds, unit="s",
                     message=f"{format_ms(ms)} s is over {model.id}'s {most / 1000:g} s: "
                             "choose the part to send (`prep pick`, or CLIP@START-END)")
    return Check(name="duration", status="pass", value=seconds, unit="s",
                 message=f"{format_ms(ms)} s")


def _share(value: float) -> float:
    return round(value, 3)


def _pct(value: float) -> str:
    return f"{round(value * 100)}%"
