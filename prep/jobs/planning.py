"""Batch planning: a validated manifest becomes probed, windowed, costed jobs, before anything runs.

(Where a job stands once it runs is `prep.jobs.status`.)

`plan_batch` probes every distinct clip once (on an executor, so the work can run on a pool or a
cluster), picks a window for the clips of `pick` jobs given without one (as `prep pick` does; see
`prep.pick.picker` for how picks are remembered), chooses each clip's window exactly as `prep estimate`
does, and bills every job with `prep.core.billing`. Every problem is collected with its manifest line,
as manifest parsing does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prep.core import billing, rules
from prep.core.billing import DEFAULT_PRICES, Estimate, PriceTable
from prep.core.clipinfo import ClipInfo
from prep.core.request import RequestOptions
from prep.core.window import Extend, PlannedClip, choose_window
from prep.errors import (
    ExitCode,
    PrepError,
    UsageError,
)
from prep.jobs.manifest import JobSpec, Manifest, ManifestError, Problem
from prep.jobs.references import PlannedReference, is_footage, judge_references, resolve_references
from prep.media.probe import probe

if TYPE_CHECKING:
    from prep.pick.check import Checker, CheckReport
    from prep.pick.picker import PickedWindow, Picker

__all__ = [
    "BatchPlan",
    "JobPlan",
    "check_budget",
    "plan_batch",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPlan:
    """One job with its probed and windowed clips, its resolved aspect ratio and its bill."""

    job: JobSpec
    clips: tuple[PlannedClip, ...]
    aspect_ratio: str
    estimate: Estimate
    picks: tuple[PickedWindow | None, ...] = ()  # per clip: the picked window, or None
    checks: tuple[CheckReport | None, ...] = ()  # per clip: how good a reference it is, or None
    references: tuple[PlannedReference, ...] = ()  # images, audio and voices, judged

    def pick_of(self, index: int) -> PickedWindow | None:
        """The window picked for clip `index`, or None when it was given (or too short to pick)."""
        return self.picks[index] if index < len(self.picks) else None

    def check_of(self, index: int) -> CheckReport | None:
        """The check of clip `index` (its planned window), or None when it was not checked."""
        return self.checks[index] if index < len(self.checks) else None

    @property
    def name(self) -> str:
        """The job's name from the manifest."""
        return self.job.name

    @property
    def request(self) -> RequestOptions:
        """The job's request options with the aspect ratio resolved: what is sent."""
        return replace(self.job.request, aspect_ratio=self.aspect_ratio)

    @property
    def notes(self) -> tuple[str, ...]:
        """What prep will do to the clips that the bill depends on (cuts, extensions, edges)."""
        return tuple(note for c in self.clips for note in c.window.notes)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of one job in `prep batch --dry-run --json`."""
        est = self.estimate
        billed = est.as_dict()  # computed once: it prices the job on the other model too
        return {
            "name": self.job.name,
            "line": self.job.line,
            "clips": [
                {"path": str(c.spec.path), "spec": str(c.spec), "start_s": c.window.start_ms / 1000,
                 "duration_s": c.window.duration_ms / 1000, "billed_s": b.billed_ms / 1000,
                 "picked": (picked.as_dict() if (picked := self.pick_of(i)) is not None else None),
                 "check": (report.summary() if (report := self.check_of(i)) is not None else None),
                 "notes": list(c.window.notes)}
                for i, (c, b) in enumerate(zip(self.clips, est.clips, strict=True))
            ],
            "pick": self.job.pick,
            "references": [r.as_dict() for r in self.references],
            **self.request.as_dict(),
            "generate_audio": billed["generate_audio"],  # what the job gets, the default resolved
            "input_billed_s": est.input_billed_ms / 1000,
            "output_billed_s": est.output_billed_ms / 1000,
            "total_billed_s": est.total_billed_ms / 1000,
            "credits": billing.credits_number(est.credits_units),
            "credits_units": est.credits_units,
            "credits_by_quality": {q: billing.credits_number(est.credits_at(q)) for q in rules.QUALITIES},
            "minimum_applied": est.minimum_applied,
            "other_models": billed["other_models"],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchPlan:
    """Every job of a manifest, planned and billed."""

    manifest: Manifest
    jobs: tuple[JobPlan, ...]
    prices: PriceTable = DEFAULT_PRICES

    @property
    def credits_units(self) -> int:
        """What the whole batch costs, each job at its own quality."""
        return sum(j.estimate.credits_units for j in self.jobs)

    def credits_at(self, quality: str) -> int:
        """What the whole batch would cost with every job at `quality`."""
        return sum(j.estimate.credits_at(quality) for j in self.jobs)

    @property
    def input_billed_ms(self) -> int:
        """Billed input milliseconds of all jobs."""
        return sum(j.estimate.input_billed_ms for j in self.jobs)

    @property
    def output_billed_ms(self) -> int:
        """Billed output milliseconds of all jobs."""
        return sum(j.estimate.output_billed_ms for j in self.jobs)

    @property
    def total_billed_ms(self) -> int:
        """Billed milliseconds of all jobs."""
        return self.input_billed_ms + self.output_billed_ms

    def job(self, name: str) -> JobPlan:
        """The plan of the job called `name`."""
        for plan in self.jobs:
            if plan.name == name:
                return plan
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `prep batch --dry-run --json` (contract: extend, never rename)."""
        return {
            "manifest": self.manifest.source,
            "jobs": [j.as_dict() for j in self.jobs],
            "total": {
                "jobs": len(self.jobs),
                "input_billed_s": self.input_billed_ms / 1000,
                "output_billed_s": self.output_billed_ms / 1000,
                "total_billed_s": self.total_billed_ms / 1000,
                "credits": billing.credits_number(self.credits_units),
                "credits_units": self.credits_units,
                "credits_by_quality": {q: billing.credits_number(self.credits_at(q))
                                       for q in rules.QUALITIES},
                "usd": round(self.credits_units / self.prices.units_per_usd, 4),
            },
            "price_source": self.prices.label,
        }


ProbeResult = ClipInfo | PrepError


def _probe_one(path: Path) -> ProbeResult:
    try:
        return probe(path)
    except PrepError as err:
        return err


def _problem(job: JobSpec, err: PrepError) -> Problem:
    return Problem(line=job.line, name=job.name,
                   message=err.message + (f" ({err.hint})" if err.hint else ""),
                   exit_code=ExitCode.MEDIA if err.exit_code == ExitCode.MEDIA else ExitCode.USAGE)


def plan_job(
    job: JobSpec,
    infos: Mapping[Path, ClipInfo],
    *,
    prices: PriceTable = DEFAULT_PRICES,
    extend: Extend | None = None,
    picker: Picker | None = None,
    on_pick: Callable[[PickedWindow], None] | None = None,
    checker: Checker | None = None,
) -> JobPlan:
    """One job from its probed clips: picked windows, chosen windows, aspect ratio and the bill.

    The single place where a job is planned: `prep generate` (a batch of one) and every row of
    `prep batch` go through here. With a `checker`, each clip's planned window is checked as a
    reference (from the analysis that picked it, when it was picked now). Raises the first
    clip's PrepError (a clip below the checker's required verdict is one).
    """
    planned: list[PlannedClip] = []
    picks: list[PickedWindow | None] = []
    checks: list[CheckReport | None] = []
    for index, given in enumerate(job.clips):
        info = infos[given.path]
        spec = given
        picked = None
        if picker is not None and index in job.clips_to_pick:
            length = given.window.length
            try:
                length_ms = length.resolve(info.fps) if length is not None else None
            except ValueError as err:
                raise UsageError(f"{given}: the window's length: {err}") from err
            picked = picker(given.path, len(job.clips), length_ms, info=info,
                            model=job.request.spec)
            if picked is not None:
                spec = picked.spec(given)
                if on_pick is not None:
                    on_pick(picked)
        picks.append(picked)
        window = choose_window(info, spec.window, label=str(spec), extend=extend,
                               clip_ms=job.request.spec.clip_ms)
        planned.append(PlannedClip(spec, info, window))
    # What the bill and the model's table refuse is said before the check decodes anything.
    est = billing.bill_request([p.bill() for p in planned], job.request, prices)
    # Judged by the model's table before anything is encoded or uploaded (not billed by any).
    references = judge_references(job.request.spec, job.references, len(planned),
                                  manifest=job.line > 0)
    if checker is not None:
        for clip, picked in zip(planned, picks, strict=True):
            path, window = clip.spec.path, clip.window
            analysis = picker.analysis(path) if picker is not None and picked else None
            checks.append(checker(path, window.start_ms, window.end_ms, spec=str(clip.spec),
                                  info=clip.info, analysis=analysis, model=job.request.spec))
    request = job.request.resolved([p.info.display_aspect for p in planned])
    return JobPlan(job=job, clips=tuple(planned), aspect_ratio=request.aspect_ratio, estimate=est,
                   references=references,
                   picks=tuple(picks) if any(p is not None for p in picks) else (),
                   checks=tuple(checks) if any(c is not None for c in checks) else ())


def plan_batch(
    manifest: Manifest,
    *,
    prices: PriceTable = DEFAULT_PRICES,
    extend: Extend | None = None,
    executor: Executor | None = None,
    probe_clip: Callable[[Path], ProbeResult] = _probe_one,
    picker: Picker | None = None,
    checker: Checker | None = None,
    references_dir: Path | None = None,
    ffmpeg: str | None = None,
) -> BatchPlan:
    """Probe, pick, window and bill every job. Raises ManifestError listing every problem (all rows).

    Each distinct clip file is probed once, through `executor` when one is given (a
    concurrent.futures Executor, or anything with the same `map`). The manifest's own problems
    are reported together with those probing finds, so one run lists every bad row. Clips of
    `pick` jobs given without a window get one from `picker` (default: a `prep.pick.picker.Picker`
    with no cache), one clip at a time since each analysis already uses every core; a missing
    `pick` extra is a MediaError (exit 3) naming the first such clip, before any analysis.
    With a `checker` (`prep.pick.check.Checker`), every clip's planned window is checked as a
    reference; a clip below its required verdict is a problem of its job (exit 3). A reference
    given as footage (a voice or still made from a clip) is made into `references_dir` (the
    batch's output folder), with `ffmpeg`; without one it is a problem of its job.
    """
    paths = sorted({spec.path for job in manifest.jobs for spec in job.clips})
    mapper: Callable[..., Iterable[ProbeResult]] = executor.map if executor is not None else map
    infos = dict(zip(paths, mapper(probe_clip, paths), strict=True))
    to_pick = [(job, i) for job in manifest.jobs for i in job.clips_to_pick]
    if to_pick:
        from prep.pick.analyze import require_extras
        from prep.pick.picker import Picker

        require_extras(to_pick[0][0].clips[to_pick[0][1]].path)
        picker = picker or Picker()
    plans: list[JobPlan] = []
    problems: list[Problem] = list(manifest.problems)
    for job in manifest.jobs:
        job_problems: list[Problem] = []
        for given in job.clips:
            info = infos[given.path]
            if isinstance(info, PrepError):
                job_problems.append(_problem(job, info))
        if not job_problems:
            try:
                job = _made_references(job, references_dir, ffmpeg)
                plans.append(plan_job(job, infos, prices=prices, extend=extend,  # type: ignore[arg-type]
                                      picker=picker, checker=checker))
            except PrepError as err:
                job_problems.append(_problem(job, err))
        problems.extend(job_problems)
    if problems:
        raise ManifestError(manifest.source, sorted(problems, key=lambda p: p.line))
    return BatchPlan(manifest=manifest, jobs=tuple(plans), prices=prices)


def _made_references(job: JobSpec, folder: Path | None, ffmpeg: str | None) -> JobSpec:
    """The job with each reference given as footage replaced by the file made from it."""
    if not any(is_footage(r.path) for r in job.references):
        return job
    if folder is None:
        raise UsageError("a voice or still made from footage needs the output folder to keep it",
                         hint="give -o DIR (also with --dry-run)")
    return replace(job, references=resolve_references(
        job.references, folder, job.request.spec, videos=len(job.clips), ffmpeg=ffmpeg,
        manifest=True))


def check_budget(plan: BatchPlan, max_cost_units: int | None) -> None:
    """UsageError (exit 2) when the whole batch would cost more than `max_cost_units`."""
    if max_cost_units is None or plan.credits_units <= max_cost_units:
        return
    raise UsageError(
        f"the batch would cost {billing.credits_text(plan.credits_units)} credits, above "
        f"--max-cost {billing.credits_text(max_cost_units)}; nothing was run",
        hint="raise --max-cost, or remove jobs from the manifest",
    )
