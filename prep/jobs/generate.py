"""`generate`: one job end to end, as a batch of one on the same engine as `prep batch`.

Validate -> (pick) -> check -> estimate -> confirm -> prepare -> upload -> submit -> follow ->
download.

Everything that can be judged locally is judged before anything slow or remote happens: the prompt,
the request options, the clip count, the key, the output folder, and every clip (probed once and
windowed once). The bill is the one `prep estimate` computes and is shown before any encoding or
upload, so a declined job costs nothing but the probe. Nothing leaves the machine until the user
agrees (or passed --yes).

Before the bill, each clip's planned window is checked as a reference (`prep check`), from the
analysis that picked it when it was picked; `on_check` hears each report. `require` refuses a
clip below a verdict (MediaError, exit 3) before anything is prepared or sent. Without the `pick`
extra the check is skipped with a note (and `require` is an error).

The job then runs on `prep.jobs.engine`, journaled in its output folder like a batch job (its name
is made from the command's inputs, so the same command names the same job). Running the same
command again therefore resumes: it follows the task it already has, downloads what is missing,
and never creates a second task for the same job. A create request whose answer was lost leaves
the job `unknown` in the journal; `--resubmit` re-sends it under the same Idempotency-Key, and
`prep batch resolve OUT JOB --task-id ID | --not-created` settles it by hand, as for a batch.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prep.core import billing
from prep.core.billing import ClipBill, Estimate, credits_number, credits_text
from prep.core.clipspec import ClipSpec
from prep.core.references import ReferenceSpec
from prep.core.request import RequestOptions, check_clip_count, check_prompt
from prep.errors import AuthError, PrepError, UsageError
from prep.files import file_sha256
from prep.jobs.journal import FOLLOWED, SENT
from prep.jobs.manifest import JobSpec, Manifest
from prep.jobs.planning import BatchPlan, JobPlan, plan_job
from prep.jobs.policy import DEFAULT_PACING, Pacing
from prep.jobs.status import JobStatus, job_error
from prep.media.clips import expand_paths, parse_clip_spec

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from prep.api.client import Client, Task
    from prep.core.clipinfo import ClipInfo
    from prep.core.plan import Profile
    from prep.core.window import Extend
    from prep.jobs.budget import RateGate
    from prep.jobs.journal import Journal, Submission
    from prep.pick.check import Checker, CheckReport, Verdict
    from prep.pick.picker import PickedWindow, Picker
    from prep.settings import Settings

__all__ = ["GenerateOptions", "GenerateResult", "GenerateHooks", "error_dict", "generate", "job_name"]

Stage = Literal["validate", "pick", "check", "estimate", "prepare", "upload", "submit", "wait", "download"]
Stopped = Literal["dry-run", "declined", "no-wait", "deadline"]

# The engine's job states, as the stages a person follows.
_STAGE_OF_STATE: dict[str, Stage] = {"preparing": "prepare", "uploading": "upload",
                                     "submitting": "submit", "running": "wait",
                                     "completed": "download"}
# How many API calls the job's engine runs at once.
_CONCURRENCY = 2
# Journal states that mean a create request has been sent for the job.


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerateOptions:
    """What to generate (the request, with its prompt) and how far to go (defaults are the CLI's)."""

    request: RequestOptions
    out_dir: Path
    upload_mode: Literal["auto", "base64", "stream"] = "auto"
    max_cost_units: int | None = None
    dry_run: bool = False
    wait: bool = True
    deadline_s: float | None = 30 * 60.0
    extend: Extend | None = None
    profile: Profile | None = None
    use_cache: bool = True
    resubmit: bool = False
    retry_failed: bool = False  # a job that failed (before submission, or its task) runs again
    wait_lock: bool = False  # another run holds the output folder: wait for it (else exit 8)
    pick: bool = False  # choose a window for clips given without one, as `prep pick` does
    check: bool = True  # check each clip as a reference (`prep check`) before the bill
    require: Verdict | None = None  # refuse clips below this verdict (exit 3)
    pacing: Pacing = DEFAULT_PACING  # the engine's retries and pauses (tests: a quick one)
    # Images, standalone audio and voices (a path to footage: made from it into the output folder).
    references: tuple[ReferenceSpec, ...] = ()


@dataclass(slots=True, kw_only=True)
class GenerateHooks:
    """Callbacks a generate job reports through (the CLI draws them; the library never prints).

    `confirm(estimate)` returns False to stop before anything is prepared or sent; None means yes.
    """

    confirm: Callable[[Estimate], bool] | None = None
    on_estimate: Callable[[Estimate], None] | None = None
    on_note: Callable[[str], None] | None = None
    on_stage: Callable[[str], None] | None = None
    on_pick: Callable[[PickedWindow], None] | None = None
    on_pick_progress: Callable[[str, int, int], None] | None = None
    on_check: Callable[[CheckReport], None] | None = None
    on_check_progress: Callable[[str, int, int], None] | None = None
    on_prepare_progress: Callable[[str, int, int], None] | None = None
    on_upload_progress: Callable[[Path, int, int], None] | None = None
    on_task: Callable[[Task], None] | None = None
    on_download_progress: Callable[[int, int | None], None] | None = None

    def note(self, text: str) -> None:
        if self.on_note is not None:
            self.on_note(text)


@dataclass(slots=True, kw_only=True)
class GenerateResult:
    """What a `generate` run did, stage by stage, and where its job stands in the journal."""

    estimate: Estimate
    aspect_ratio: str
    job: str
    out_dir: Path
    prepared: list[Path] = field(default_factory=list)
    picks: list[PickedWindow] = field(default_factory=list)
    checks: list[CheckReport | None] = field(default_factory=list)  # per clip, when checked
    uploads: list[dict[str, Any]] = field(default_factory=list)
    references: list[dict[str, Any]] = field(default_factory=list)  # judged (and uploaded) files
    request: dict[str, Any] | None = None
    idempotency_key: str | None = None
    task: Task | None = None
    status: JobStatus | None = None
    replayed: bool = False
    resumed: bool = False  # the journal already held this job's task: nothing new was paid
    files: list[Path] = field(default_factory=list)
    stage_s: dict[str, float] = field(default_factory=dict)
    stopped: Stopped | None = None
    halted: PrepError | None = field(default=None, repr=False)  # the account problem that stopped it

    @property
    def credits_reserved_units(self) -> int | None:
        """EvoLink's own figure for the job, once a task exists."""
        if self.task is not None and self.task.credits_reserved_units is not None:
            return self.task.credits_reserved_units
        return self.status.credits_reserved_units if self.status is not None else None

    @property
    def credits_differ(self) -> bool:
        """True when EvoLink reserved another amount than prep estimated."""
        reserved = self.credits_reserved_units
        return reserved is not None and reserved != self.estimate.credits_units

    @property
    def task_id(self) -> str | None:
        """The job's task, once one exists."""
        return self.task.id if self.task is not None else (self.status.task_id if self.status else None)

    def error(self) -> PrepError | None:
        """The job's outcome as an error (exit code included), or None when it went as asked."""
        if self.stopped in ("dry-run", "declined", "no-wait") or self.status is None:
            return None
        if self.halted is not None and self.status.state != "done" \
                and self.status.error_exit == self.halted.exit_code:
            return self.halted  # the account's problem (no credits, no access), as EvoLink said it
        return job_error(self.status, self.out_dir, timed_out=self.stopped == "deadline")

    @property
    def exit_code(self) -> int:
        """0 when the job went as asked, else its error's exit code."""
        err = self.error()
        return 0 if err is None else err.exit_code

    def raise_for_outcome(self) -> None:
        """Raise the job's error, if it has one (see `error`)."""
        err = self.error()
        if err is not None:
            raise err

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `prep generate --json` (contract: extend, never rename)."""
        reserved = self.credits_reserved_units
        task_status = self.task.status if self.task else (self.status.task_status if self.status else None)
        err = self.error()
        return {
            "task_id": self.task_id,
            "status": task_status,
            "stopped": self.stopped,
            "files": [str(p) for p in self.files],
            "credits_estimated": float(self.estimate.credits),
            "credits_reserved": None if reserved is None else credits_number(reserved),
            "credits_reserved_units": reserved,
            "credits_estimated_units": self.estimate.credits_units,
            "credits_differ": self.credits_differ,
            "aspect_ratio": self.aspect_ratio,
            "estimate": self.estimate.as_dict(),
            "prepared": [str(p) for p in self.prepared],
            "picks": [p.as_dict() for p in self.picks],
            "checks": [None if c is None else {"path": str(c.path), "spec": c.spec, **c.summary()}
                       for c in self.checks],
            "uploads": self.uploads,
            "references": self.references,
            "request": self.request,
            "idempotency_key": self.idempotency_key,
            "replayed": self.replayed,
            "resumed": self.resumed,
            "task": self.task.as_dict() if self.task else None,
            "job": self.job,
            "state": self.status.state if self.status else None,
            "journal": str(self.out_dir / "batch-journal.sqlite") if self.status else None,
            "exit_code": 0 if err is None else err.exit_code,
            "error": None if err is None else err.message,
            "hint": None if err is None else (err.hint or None),
            "stage_s": {k: round(v, 3) for k, v in self.stage_s.items()},
        }


def error_dict(message: str, exit_code: int, hint: str = "") -> dict[str, Any]:
    """`prep generate --json` for a run that stopped before it had a result (a bad option, no
    key, a clip that cannot be used, a declined cost): the result's shape, with what is unknown
    left null (contract: the same keys as `GenerateResult.as_dict` requires)."""
    return {"task_id": None, "status": None, "stopped": None, "files": [],
            "credits_estimated": None, "credits_reserved": None, "exit_code": exit_code,
            "error": message, "hint": hint or None}


def _specs(clips: Sequence[ClipSpec | str | Path]) -> list[ClipSpec]:
    specs = [c if isinstance(c, ClipSpec) else parse_clip_spec(str(c)) for c in clips]
    return expand_paths(specs)


def job_name(specs: Sequence[ClipSpec], options: GenerateOptions) -> str:
    """The job's name in the output folder's journal: the first clip's name and a digest of the
    command's inputs, so the same command finds the same job and another command makes another."""
    # The request's newer fields only when not at their defaults (RequestOptions.named), so a
    # standard job keeps the name it had before flash existed (its journal still finds it), and a
    # flash job (with or without audio) is another job.
    inputs: dict[str, Any] = {"clips": [str(replace(s, path=s.path.resolve())) for s in specs],
                              **options.request.named(), "pick": options.pick,
                              "extend": options.extend}
    if options.references:  # by content: a changed image is another job
        inputs["references"] = [[r.kind, file_sha256(r.path), r.binds] for r in options.references]
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:10]
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-"
                   for c in specs[0].path.stem)[:40].strip("-") or "job"
    return f"{stem}-{digest}"


def generate(
    clips: Sequence[ClipSpec | str | Path],
    options: GenerateOptions,
    settings: Settings,
    *,
    client: Client | None = None,
    hooks: GenerateHooks | None = None,
    cpu_executor: Executor | None = None,
    raise_on_failure: bool = True,
) -> GenerateResult:
    """Run (or resume) one job; see the module docstring for the order.

    Raises prep errors (with their exit codes) for anything found before the job runs, and with
    `raise_on_failure` (the default) for the job's own outcome too (failed, unknown, still running
    at the deadline). With `raise_on_failure=False` the outcome is only in the result: `result.exit_code`,
    `result.error()`, `result.raise_for_outcome()` (the CLI prints its JSON first).
    """
    hooks = hooks or GenerateHooks()
    timings: dict[str, float] = {}
    stage = _stage_timer(hooks, timings)
    with stage("validate"):
        job, options = _validated(clips, options, settings)
    job_plan, picks = _planned(job, options, settings, hooks, stage, timings)
    result = GenerateResult(estimate=job_plan.estimate, aspect_ratio=job_plan.aspect_ratio,
                            job=job.name, out_dir=options.out_dir, stage_s=timings, picks=picks,
                            references=[r.as_dict() for r in job_plan.references],
                            checks=[job_plan.check_of(i) for i in range(len(job_plan.clips))]
                            if job_plan.checks else [])
    _show_estimate(job_plan, options, hooks)
    if options.dry_run:
        with stage("prepare"):
            _prepare_only(result, job_plan, options, settings, hooks)
        result.stopped = "dry-run"
        return result
    _pay_and_run(result, job_plan, options, settings, hooks, client=client,
                 cpu_executor=cpu_executor, timings=timings)
    if raise_on_failure:
        result.raise_for_outcome()  # nothing to raise when the cost was declined
    return result


def _stage_timer(hooks: GenerateHooks,
                 timings: dict[str, float]) -> Callable[[Stage], AbstractContextManager[None]]:
    """A context for each stage: it tells `on_stage`, and adds its time to `timings`."""

    @contextmanager
    def stage(name: Stage) -> Iterator[None]:
        if hooks.on_stage is not None:
            hooks.on_stage(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started

    return stage


def _validated(clips: Sequence[ClipSpec | str | Path], options: GenerateOptions,
               settings: Settings) -> tuple[JobSpec, GenerateOptions]:
    """Everything judged locally before anything slow: the clips, the prompt, the clip count,
    the key, the output folder and the references (the options come back with the references
    resolved, voices and stills made from footage). The job, as its journal names it."""
    specs = _specs(clips)
    # The rest was checked when it was built.
    check_prompt(options.request.prompt or "", options.request.model)
    check_clip_count(len(specs), options.request.model)
    if not options.dry_run and not settings.api_key:
        raise AuthError("no EvoLink API key is configured",
                        hint="set EVOLINK_API_KEY, or run `prep config set api_key` (stored "
                             "0600); --dry-run works without one")
    from prep.media.prepare import check_out_dir

    check_out_dir(options.out_dir)
    if options.references:
        # Kinds, counts and bindings judged first; then voices and stills made from footage.
        from prep.jobs.references import resolve_references

        options = replace(options, references=resolve_references(
            options.references, options.out_dir, options.request.spec, videos=len(specs),
            ffmpeg=settings.ffmpeg))
    job = JobSpec(line=0, name=job_name(specs, options), clips=tuple(specs),
                  request=options.request, pick=options.pick, references=options.references)
    return job, options


def _planned(job: JobSpec, options: GenerateOptions, settings: Settings, hooks: GenerateHooks,
             stage: Callable[[Stage], AbstractContextManager[None]],
             timings: dict[str, float]) -> tuple[JobPlan, list[PickedWindow]]:
    """The job's plan and the windows picked for it, timed as the stages a person follows: the
    check runs inside planning, and its own time is its own stage."""
    picks: list[PickedWindow] = []
    first: Stage = "pick" if job.clips_to_pick and options.pick else "estimate"
    with stage(first):
        job_plan = _plan(job, options, settings, hooks, picks)
    checked_s = sum(r.elapsed_s for r in job_plan.checks if r is not None)
    if job_plan.checks:
        timings[first] = max(0.0, timings[first] - checked_s)
        timings["check"] = checked_s
    return job_plan, picks


def _show_estimate(job_plan: JobPlan, options: GenerateOptions, hooks: GenerateHooks) -> None:
    """Say what each reference is, then the bill; a bill over --max-cost stops here."""
    for ref in job_plan.references:
        hooks.note(_reference_note(ref.as_dict(), options.request.model))
    if hooks.on_estimate is not None:
        hooks.on_estimate(job_plan.estimate)
    _check_cost(job_plan.estimate.credits_units, options.max_cost_units, "the job")


def _pay_and_run(result: GenerateResult, job_plan: JobPlan, options: GenerateOptions,
                 settings: Settings, hooks: GenerateHooks, *, client: Client | None,
                 cpu_executor: Executor | None, timings: dict[str, float]) -> None:
    """Past the bill: the folder's lock, the balance and the confirmation (unless the job was
    sent already), then the job on the engine. One client and one journal for the whole job:
    the balance, the engine and the read-back."""
    from prep.jobs import engine
    from prep.jobs.budget import RateGate
    from prep.jobs.lock import RunLock

    gate = RateGate(_CONCURRENCY)
    # One run per output folder, for the job's whole life, before its journal is opened.
    lock = RunLock(options.out_dir).acquire(wait=options.wait_lock, on_wait=hooks.on_note)
    try:
        api = client or engine.engine_client(settings, gate, options.pacing)
    except BaseException:
        lock.release()
        raise
    journal: Journal | None = None
    try:
        journal = _open_journal(options.out_dir, create=False)
        if not _go_ahead(result, journal, api, hooks):
            result.stopped = "declined"
            return
        journal = journal or _open_journal(options.out_dir, create=True)
        assert journal is not None
        _run(result, job_plan, options, settings, hooks, client=api, journal=journal, gate=gate,
             cpu_executor=cpu_executor, timings=timings)
    finally:
        if journal is not None:
            journal.close()
        if client is None:
            api.close()
        lock.release()


def _go_ahead(result: GenerateResult, journal: Journal | None, api: Client,
              hooks: GenerateHooks) -> bool:
    """Whether the job runs: one the journal shows as sent resumes (nothing new is paid, nothing
    is asked); any other is held to the balance (before anything is prepared or uploaded), then
    to the confirmation. False: the user declined."""
    earlier = _journaled(journal, result.job) if journal is not None else None
    if earlier is not None and earlier.state in SENT:
        result.resumed = True
        hooks.note(f"resuming job {result.job} from {result.out_dir}: its task "
                   f"{earlier.task_id or '(outcome unknown)'} was already submitted, so "
                   "nothing new is paid for")
        return True
    _check_balance(result.estimate, result.job, api, hooks)
    return hooks.confirm is None or hooks.confirm(result.estimate)


def _plan(job: JobSpec, options: GenerateOptions, settings: Settings, hooks: GenerateHooks,
          picks: list[PickedWindow]) -> JobPlan:
    """Probe each clip once, pick windows where asked, window and bill: the job's plan."""
    from prep.media.probe import probe

    infos: dict[Path, ClipInfo] = {}
    for spec in job.clips:
        if spec.path not in infos:
            infos[spec.path] = probe(spec.path)
    checker = _checker(job, options, settings, hooks) if options.check else None
    picker = (_picker(job, options, settings, hooks, for_check=checker is not None)
              if options.pick else None)
    job_plan = plan_job(job, infos, prices=settings.prices, extend=options.extend, picker=picker,
                        on_pick=_collect(picks, hooks.on_pick), checker=checker)
    for index in job.clips_to_pick:
        if job_plan.pick_of(index) is None:
            hooks.note(f"{job.clips[index]}: too short to choose a window in; used whole")
    return job_plan


def _reference_note(ref: dict[str, Any], model: str) -> str:
    """One line on a judged reference, for people: what it is and that it costs nothing."""
    shape = f"{ref['width']}x{ref['height']}" if ref["width"] else f"{ref['duration_s']:g} s"
    binds = f", the voice of {ref['binds']}" if ref["binds"] else ""
    return (f"{ref['kind']} reference {Path(ref['path']).name}: {ref['format']} {shape}{binds}; "
            f"{model} takes it and does not bill it")


def _collect(picks: list[PickedWindow],
             report: Callable[[PickedWindow], None] | None) -> Callable[[PickedWindow], None]:
    def on_pick(picked: PickedWindow) -> None:
        picks.append(picked)
        if report is not None:
            report(picked)

    return on_pick


def _checker(job: JobSpec, options: GenerateOptions, settings: Settings,
             hooks: GenerateHooks) -> Checker | None:
    """The reference check of the job's clips (reports kept in `<cache>/checks`), or None when
    the `pick` extra is missing (said once; a MediaError instead when a verdict is required)."""
    from prep.pick.check import CheckCache, Checker

    report = hooks.on_check_progress

    @contextmanager
    def progress(path: Path) -> Iterator[Callable[[int, int], None]]:
        yield (lambda done, total: report(path.name, done, total)) if report else (lambda d, t: None)

    cache = CheckCache(settings.cache_dir / "checks" if options.use_cache else None)
    checker = Checker(required=options.require, on_note=hooks.on_note, on_report=hooks.on_check,
                      progress=progress, ffmpeg=settings.ffmpeg, cache=cache)
    return checker if checker.available(job.clips[0].path) else None


def _picker(job: JobSpec, options: GenerateOptions, settings: Settings,
            hooks: GenerateHooks, *, for_check: bool = False) -> Picker | None:
    """The window picker for `--pick` (cached in `<cache>/picks`), or None when nothing needs one."""
    if not job.clips_to_pick:
        hooks.note("--pick: every clip has a window already; they are used as given")
        return None
    from prep.pick.analyze import require_extras
    from prep.pick.picker import Picker

    require_extras(job.clips[job.clips_to_pick[0]].path)
    report = hooks.on_pick_progress

    @contextmanager
    def progress(path: Path) -> Iterator[Callable[[int, int], None]]:
        yield (lambda done, total: report(path.name, done, total)) if report else (lambda d, t: None)

    return Picker(cache_dir=settings.cache_dir / "picks", refresh=not options.use_cache,
                  progress=progress, for_check=for_check, ffmpeg=settings.ffmpeg)


def _check_cost(units: int, budget_units: int | None, what: str) -> None:
    if budget_units is not None and units > budget_units:
        raise UsageError(
            f"{what} costs {credits_text(units)} credits, more than --max-cost "
            f"{credits_text(budget_units)}",
            hint="raise --max-cost, or lower --duration / --quality",
        )


def _check_balance(estimate: Estimate, name: str, api: Client, hooks: GenerateHooks) -> None:
    """QuotaError (exit 5) when the key cannot pay for the job (a smart duration: its hold); a
    note when the balance is not offered (an optional endpoint never blocks)."""
    from prep.jobs.budget import check_balance

    held = "" if estimate.smart_hold_s is None else (
        f"{estimate.model} holds {estimate.smart_hold_s} s of output for duration -1 until the "
        "task settles")
    check_balance([(name, estimate.credits_units)], api, on_note=hooks.on_note, held=held)


def _open_journal(out_dir: Path, *, create: bool) -> Journal | None:
    """The journal of `out_dir`, open; without `create`, None when the folder has none yet."""
    from prep.jobs.journal import Journal
    from prep.jobs.layout import journal_path

    if not create and not journal_path(out_dir).is_file():
        return None
    return Journal.open(out_dir, create=create, for_run=True)


def _journaled(journal: Journal, name: str) -> JobStatus | None:
    """Where `journal` says job `name` stands, or None when it has no such job."""
    from prep.jobs.status import batch_status

    return next((s for s in batch_status(journal, now=time.time()) if s.name == name), None)


def _prepare_only(result: GenerateResult, job_plan: JobPlan, options: GenerateOptions,
                  settings: Settings, hooks: GenerateHooks) -> None:
    """--dry-run: prepare the planned clips (nothing is uploaded or journaled) and bill them as
    measured."""
    from prep.jobs.layout import prepared_root
    from prep.media.prepare import PrepareOptions, prepare

    kwargs: dict[str, Any] = {"extend": options.extend, "use_cache": options.use_cache,
                              "cache_dir": settings.cache_dir, "ffmpeg": settings.ffmpeg}
    if options.profile:
        kwargs["profile"] = options.profile
    done = prepare(list(job_plan.clips), prepared_root(options.out_dir),
                   PrepareOptions(**kwargs).for_model(options.request.spec),
                   on_progress=hooks.on_prepare_progress)
    result.prepared = [r.output for r in done if r.output is not None]
    bills = [replace(c.bill(), duration_ms=r.output_info.duration_ms) if r.output_info else c.bill()
             for c, r in zip(job_plan.clips, done, strict=True)]
    _measured(result, bills, options, settings, hooks)
    _check_cost(result.estimate.credits_units, options.max_cost_units, "the prepared job")


def _measured(result: GenerateResult, bills: list[ClipBill], options: GenerateOptions,
              settings: Settings, hooks: GenerateHooks) -> None:
    """The bill of the prepared clips as measured (what EvoLink measures), said when it moved."""
    request = options.request
    measured = billing.estimate_durations(bills, output_s=request.duration_s,
                                          quality=request.quality, prices=settings.prices,
                                          model=request.model,
                                          generate_audio=request.generate_audio)
    if measured.credits_units != result.estimate.credits_units:
        hooks.note(f"the prepared clips measure {measured.input_billed_ms / 1000:g} s of billed "
                   f"input: the estimate is {credits_text(measured.credits_units)} credits "
                   f"(planned {credits_text(result.estimate.credits_units)})")
    result.estimate = measured


def _run(result: GenerateResult, job_plan: JobPlan, options: GenerateOptions, settings: Settings,
         hooks: GenerateHooks, *, client: Client, journal: Journal, gate: RateGate,
         cpu_executor: Executor | None, timings: dict[str, float]) -> None:
    """The job on the batch engine, then what the journal says about it."""
    from prep.jobs import engine

    plan = BatchPlan(manifest=Manifest(source="prep generate", base_dir=options.out_dir,
                                       format="command", jobs=(job_plan.job,)),
                     jobs=(job_plan,), prices=settings.prices)
    current: list[Any] = [None, time.perf_counter()]  # the stage being timed, since when

    def on_state(name: str, state: str, detail: str) -> None:
        now_stage = _STAGE_OF_STATE.get(state)
        if now_stage is None or now_stage == current[0]:
            return
        if current[0] is not None:
            timings[current[0]] = timings.get(current[0], 0.0) + time.perf_counter() - current[1]
        current[0], current[1] = now_stage, time.perf_counter()
        if hooks.on_stage is not None:
            hooks.on_stage(now_stage)

    def on_task(task: Task) -> None:
        result.task = task
        result.replayed = result.replayed or task.replayed
        if hooks.on_task is not None:
            hooks.on_task(task)

    engine_hooks = engine.RunHooks(on_state=on_state, on_warning=hooks.on_note, on_task=on_task,
                             on_prepare_progress=hooks.on_prepare_progress,
                             on_upload_progress=hooks.on_upload_progress,
                             on_download_progress=hooks.on_download_progress)
    batch_options = engine.BatchOptions(
        output_dir=options.out_dir, concurrency=_CONCURRENCY, resubmit_unknown=options.resubmit,
        retry_failed=options.retry_failed,
        upload_mode=options.upload_mode, max_cost_units=options.max_cost_units,
        follow=options.wait, deadline_s=options.deadline_s, use_cache=options.use_cache,
        profile=options.profile, pacing=options.pacing,
        check_credits=False)  # checked before the confirmation
    try:
        outcome = engine.run_batch(plan, settings, batch_options, extend=options.extend,
                                hooks=engine_hooks, client=client, cpu_executor=cpu_executor,
                                journal=journal, gate=gate)
    finally:
        if current[0] is not None:
            timings[current[0]] = timings.get(current[0], 0.0) + time.perf_counter() - current[1]
    (result.status,) = outcome.jobs
    result.halted = outcome.halted_error
    _read_back(result, job_plan, journal, options, settings, hooks)
    if outcome.timed_out and result.status.state in FOLLOWED:
        result.stopped = "deadline"
    elif not options.wait and result.status.state == "running":
        result.stopped = "no-wait"


def _read_back(result: GenerateResult, job_plan: JobPlan, journal: Journal,
               options: GenerateOptions, settings: Settings, hooks: GenerateHooks) -> None:
    """Fill the result from the journal: prepared files (and the bill as measured on them),
    uploads, the request, the result file."""
    record = journal.job(result.job)
    assert record is not None
    clips = [journal.clip(key) for key in record.clip_keys]
    result.prepared = [Path(c.prepared_path) for c in clips if c is not None and c.prepared_path]
    result.uploads = [{"path": c.prepared_path, "file_url": c.file_url, "file_id": c.file_id,
                       "expires_at": c.expires_at, "size_bytes": c.prepared_bytes,
                       "sha256": c.prepared_sha256}
                      for c in clips if c is not None and c.file_url]
    measured = [c.prepared_duration_ms for c in clips if c is not None and c.prepared_duration_ms]
    if len(measured) == len(job_plan.clips):
        _measured(result, [replace(p.bill(), duration_ms=ms) for p, ms in zip(job_plan.clips, measured,
                                                                               strict=True)],
                  options, settings, hooks)
    for ref, shown in zip(record.refs, result.references, strict=False):
        uploaded = journal.clip(ref.key)
        if uploaded is not None:
            shown["file_url"] = uploaded.file_url
    _read_submission(result, journal.last_submission(result.job))
    if record.state == "done" and record.result_path:
        result.files = [Path(record.result_path)]


def _read_submission(result: GenerateResult, sub: Submission | None) -> None:
    """The request the job was last sent with, its Idempotency-Key, and whether it was replayed."""
    if sub is not None:
        result.request = sub.request
        result.idempotency_key = sub.idempotency_key
        result.replayed = result.replayed or sub.outcome == "replayed"
