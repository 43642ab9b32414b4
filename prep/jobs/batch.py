"""Batch planning: a validated manifest becomes probed, windowed, costed jobs, before anything runs.

`plan_batch` probes every distinct clip once (on an executor, so the work can run on a pool or a
cluster), picks a window for the clips of `pick` jobs given without one (as `prep pick` does; see
`prep.pick.picks` for how picks are remembered), chooses each clip's window exactly as `prep estimate`
does, and bills every job with `prep.core.billing`. Every problem is collected with its manifest line,
as manifest parsing does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prep.core import billing, rules
from prep.core.billing import DEFAULT_PRICES, Estimate, PriceTable
from prep.core.clipinfo import ClipInfo
from prep.core.plan import Extend, PlannedClip, choose_window
from prep.core.request import check_clip_count, resolve_aspect_ratio
from prep.errors import (
    OutcomeUnknownError,
    PrepError,
    TaskFailedError,
    TaskTimeoutError,
    UsageError,
)
from prep.jobs.journal import ClipRecord, Journal
from prep.jobs.manifest import JobSpec, Manifest, ManifestError, Problem
from prep.media.probe import probe

if TYPE_CHECKING:
    from prep.pick.check import Checker, CheckReport
    from prep.pick.picks import PickedWindow, Picker

__all__ = [
    "BatchPlan",
    "JobPlan",
    "JobStatus",
    "batch_status",
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
            "prompt": self.job.prompt,
            "duration": self.job.duration_s,
            "quality": self.job.quality,
            "aspect_ratio": self.aspect_ratio,
            "shot_type": self.job.shot_type,
            "callback_url": self.job.callback_url,
            "model": self.job.model,
            "generate_audio": billed["generate_audio"],
            "input_billed_s": est.input_billed_ms / 1000,
            "output_billed_s": est.output_billed_ms / 1000,
            "total_billed_s": est.total_billed_ms / 1000,
            "credits": credits_number(est.credits_units),
            "credits_units": est.credits_units,
            "credits_by_quality": {q: credits_number(est.credits_at(q)) for q in rules.QUALITIES},
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
                "credits": credits_number(self.credits_units),
                "credits_units": self.credits_units,
                "credits_by_quality": {q: credits_number(self.credits_at(q)) for q in rules.QUALITIES},
                "usd": round(self.credits_units / self.prices.units_per_usd, 4),
            },
            "price_source": self.prices.label,
        }


def credits_number(units: int) -> float:
    """Integer credit units as a JSON number of credits (for display and JSON only)."""
    return float(Fraction(units, billing.UNITS_PER_CREDIT))


ProbeResult = ClipInfo | PrepError


def _probe_one(path: Path) -> ProbeResult:
    try:
        return probe(path)
    except PrepError as err:
        return err


def _problem(job: JobSpec, err: PrepError) -> Problem:
    return Problem(line=job.line, name=job.name,
                   message=err.message + (f" ({err.hint})" if err.hint else ""),
                   exit_code=3 if err.exit_code == 3 else 2)


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
            picked = picker(given.path, len(job.clips), length_ms, info=info)
            if picked is not None:
                spec = picked.spec(given)
                if on_pick is not None:
                    on_pick(picked)
        picks.append(picked)
        window = choose_window(info, spec.window, label=str(spec), extend=extend)
        planned.append(PlannedClip(spec, info, window))
        if checker is not None:
            analysis = picker.analysis(given.path) if picker is not None and picked else None
            checks.append(checker(given.path, window.start_ms, window.end_ms, spec=str(spec),
                                  info=info, analysis=analysis))
    check_clip_count(len(planned))
    est = billing.estimate_durations([p.bill() for p in planned], output_s=job.duration_s,
                                     quality=job.quality, prices=prices, model=job.model,
                                     generate_audio=job.generate_audio)
    aspect = resolve_aspect_ratio(job.aspect_ratio, [p.info.display_aspect for p in planned])
    return JobPlan(job=job, clips=tuple(planned), aspect_ratio=aspect, estimate=est,
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
) -> BatchPlan:
    """Probe, pick, window and bill every job. Raises ManifestError listing every problem (all rows).

    Each distinct clip file is probed once, through `executor` when one is given (a
    concurrent.futures Executor, or anything with the same `map`). The manifest's own problems
    are reported together with those probing finds, so one run lists every bad row. Clips of
    `pick` jobs given without a window get one from `picker` (default: a `prep.pick.picks.Picker`
    with no cache), one clip at a time since each analysis already uses every core; a missing
    `pick` extra is a MediaError (exit 3) naming the first such clip, before any analysis.
    With a `checker` (`prep.pick.check.Checker`), every clip's planned window is checked as a
    reference; a clip below its required verdict is a problem of its job (exit 3).
    """
    paths = sorted({spec.path for job in manifest.jobs for spec in job.clips})
    mapper: Callable[..., Iterable[ProbeResult]] = executor.map if executor is not None else map
    infos = dict(zip(paths, mapper(probe_clip, paths), strict=True))
    to_pick = [(job, i) for job in manifest.jobs for i in job.clips_to_pick]
    if to_pick:
        from prep.pick.analyze import require_extras
        from prep.pick.picks import Picker

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
                plans.append(plan_job(job, infos, prices=prices, extend=extend,  # type: ignore[arg-type]
                                      picker=picker, checker=checker))
            except PrepError as err:
                job_problems.append(_problem(job, err))
        problems.extend(job_problems)
    if problems:
        raise ManifestError(manifest.source, sorted(problems, key=lambda p: p.line))
    return BatchPlan(manifest=manifest, jobs=tuple(plans), prices=prices)


def check_budget(plan: BatchPlan, max_cost_units: int | None) -> None:
    """UsageError (exit 2) when the whole batch would cost more than `max_cost_units`."""
    if max_cost_units is None or plan.credits_units <= max_cost_units:
        return
    raise UsageError(
        f"the batch would cost {billing.credits_text(plan.credits_units)} credits, above "
        f"--max-cost {billing.credits_text(max_cost_units)}; nothing was run",
        hint="raise --max-cost, or remove jobs from the manifest",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatus:
    """Where one job of a batch stands, from its journal (no network)."""

    name: str
    line: int
    state: str
    clips_total: int
    clips_prepared: int
    clips_uploaded: int
    task_id: str | None
    task_status: str | None
    progress: int | None
    estimate_units: int | None
    measured_units: int | None
    credits_reserved_units: int | None
    result_path: str | None
    result_sha256: str | None
    result_bytes: int | None
    error: str | None
    error_exit: int | None
    submissions: int
    idempotency_key: str | None
    encoding: tuple[int, int] | None = None  # (encoded ms, total ms) of its clips being prepared

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of one job in `prep batch status --json` and the batch summary."""
        return {
            "name": self.name,
            "line": self.line,
            "state": self.state,
            "clips": {"total": self.clips_total, "prepared": self.clips_prepared,
                      "uploaded": self.clips_uploaded},
            "task_id": self.task_id,
            "task_status": self.task_status,
            "progress": self.progress,
            "estimate_credits": None if self.estimate_units is None else credits_number(self.estimate_units),
            "measured_credits": None if self.measured_units is None else credits_number(self.measured_units),
            "credits_reserved": (None if self.credits_reserved_units is None
                                 else credits_number(self.credits_reserved_units)),
            "credits_reserved_units": self.credits_reserved_units,
            "result_path": self.result_path,
            "result_sha256": self.result_sha256,
            "result_bytes": self.result_bytes,
            "error": self.error,
            "exit_code": self.exit_code,
            "submissions": self.submissions,
            "idempotency_key": self.idempotency_key,
            "encoding": (None if self.encoding is None else
                         {"encoded_s": self.encoding[0] / 1000, "total_s": self.encoding[1] / 1000}),
        }

    @property
    def exit_code(self) -> int:
        """What this job's outcome means as an exit code (0 done, 6 unknown, the error's code...)."""
        if self.state == "done":
            return 0
        if self.state == "unknown":
            return 6
        if self.error_exit:
            return self.error_exit
        # Unfinished with no error: the batch stopped before it (interrupted).
        return 130 if self.state not in ("failed",) else 1


class JobError(PrepError):
    """A job's recorded failure, with the exit code its journal gives it."""

    def __init__(self, message: str, *, exit_code: int, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def job_error(status: JobStatus, out_dir: Path, *, timed_out: bool = False) -> PrepError | None:
    """The one mapping from where a job stands to the error (and exit code) a command ends with.

    None when the job is done. `timed_out`: the run stopped following a running task at its
    deadline (the task goes on at EvoLink; running the same command again picks it up).
    """
    again = f"run the same command again to pick it up (journal in {out_dir})"
    if status.state == "done":
        return None
    if status.state == "unknown":
        return OutcomeUnknownError(
            f"job {status.name}: outcome unknown: the create request was sent and no answer came "
            "back, so the task may exist",
            hint=f"look for it in your EvoLink dashboard, then `prep batch resolve {out_dir} "
                 f"{status.name} --task-id ID` (or `--not-created`), or run again with --resubmit")
    if status.state == "failed" and status.error_exit == TaskFailedError.exit_code:
        return TaskFailedError(f"job {status.name}: {status.error}", task_id=status.task_id or "",
                               hint="failed tasks are not billed; change the prompt or clips and "
                                    "run again")
    if timed_out:
        return TaskTimeoutError(f"job {status.name}: task {status.task_id} is still "
                                f"{status.task_status or 'running'} at the deadline; it goes on at "
                                "EvoLink", task_id=status.task_id or "", hint=again)
    if status.state == "failed":
        return JobError(f"job {status.name}: {status.error}", exit_code=status.exit_code,
                        hint="fix the cause and run again" if not status.task_id else again)
    if status.error:
        return JobError(f"job {status.name} is {status.state}: {status.error}",
                        exit_code=status.exit_code, hint=again)
    return JobError(f"job {status.name} stopped while {status.state}", exit_code=status.exit_code,
                    hint=again)


def _encoding(out_dir: Path, clips: Sequence[ClipRecord]) -> tuple[int, int] | None:
    """How far the encodes of these clips are, from their workers' progress files (or None)."""
    from prep.jobs.layout import PREPARED_DIR, read_progress

    found = [p for p in (read_progress(out_dir / PREPARED_DIR / c.key[:16]) for c in clips) if p]
    if not found:
        return None
    return sum(p[0] for p in found), sum(p[1] for p in found)


def batch_status(journal: Journal, *, now: float, upload_margin_s: float = 0) -> list[JobStatus]:
    """Every job of the journal and where it stands, in manifest order."""
    clips = {c.key: c for c in journal.clips()}
    rows = []
    for job in journal.jobs():
        records = [clips[k] for k in job.clip_keys if k in clips]
        subs = journal.submissions(job.name)
        rows.append(JobStatus(
            name=job.name, line=job.line, state=job.state, clips_total=len(job.clip_keys),
            clips_prepared=sum(1 for c in records if c.prepared_path),
            clips_uploaded=sum(1 for c in records if c.upload_fresh(now, upload_margin_s)),
            task_id=job.task_id, task_status=job.task_status, progress=job.progress,
            estimate_units=job.estimate_units, measured_units=job.measured_units,
            credits_reserved_units=job.credits_reserved_units,
            result_path=job.result_path, result_sha256=job.result_sha256,
            result_bytes=job.result_bytes, error=job.error, error_exit=job.error_exit,
            submissions=len(subs), idempotency_key=subs[-1].idempotency_key if subs else None,
            encoding=_encoding(journal.path.parent, [c for c in records if not c.prepared_path]),
        ))
    return rows
