"""Running a batch: prepare, upload, create, poll and download many jobs at once, resumably.

Stages and where they run:

- **prepare** is CPU-bound (ffmpeg): it runs on the `cpu` executor, 1-2 workers on a small
  machine. Its unit of work is `prepare_clip(ClipWork) -> PreparedClip`, a module-level function
  of picklable values, so a process pool or Dask's `Client.get_executor()` can take it instead.
- **upload, create, poll, download** are network-bound: they run on the `io` executor
  (`--concurrency` workers) and overlap with preparing, so a batch takes about as long as its
  slowest stage rather than the sum of all of them.

One coordinator thread owns the schedule and writes the journal; workers only do the work and
return values. Every step is journaled as it completes, and a create request is journaled before
it is sent, so the run can be killed at any moment and resumed by running the same command.

Reconciliation rules on resume (never guess; EvoLink documents no way to list tasks):
- a job with a task id is followed by querying that task;
- a job whose create request was journaled but never answered is `unknown`: it is NOT sent again.
  The user resolves it with `prep batch resolve DIR JOB --task-id ID` (the task they found in the
  dashboard) or `--not-created` (they checked: there is none), or runs with `--resubmit-unknown`,
  which re-sends the journaled request under the SAME Idempotency-Key: safe when the server
  honours the key (it replays the first task), a second bill when it does not.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prep.core import rules
from prep.core.clipspec import ClipSpec
from prep.core.plan import Extend
from prep.errors import (
    ApiError,
    AuthError,
    Interrupted,
    NetworkError,
    OutcomeUnknownError,
    PrepError,
    QuotaError,
    RateLimitError,
    RequestRejected,
    TaskFailedError,
    UsageError,
)
from prep.files import file_sha256
from prep.jobs.batch import BatchPlan, JobPlan, JobStatus, batch_status
from prep.jobs.journal import ClipRecord, JobRecord, Journal

if TYPE_CHECKING:
    from prep.api.client import Client, Task
    from prep.media.prepare import PrepareOptions
    from prep.settings import Settings

__all__ = [
    "FAULT_POINTS",
    "BatchOptions",
    "BatchResult",
    "ClipWork",
    "PreparedClip",
    "RateGate",
    "clip_key",
    "default_cpu_workers",
    "journaled_picks",
    "prepare_clip",
    "read_journaled_picks",
    "resolve_unknown",
    "run_batch",
]

# Test-only fault points (hidden --test-fault): the process SIGKILLs itself there.
FAULT_POINTS = ("prepare", "upload", "before-create", "after-create", "download")
# Redo an upload whose URL expires sooner than this: the server fetches references after create.
UPLOAD_MARGIN_S = 3600.0
# How many times one operation may be put back after 429s / unreachable server before its job
# is given up for this run (each time after the client's own retries and a batch-wide pause).
MAX_DEFERRALS = 8
PREPARED_DIR = "prepared"


def default_cpu_workers() -> int:
    """ffmpeg at a time: 1 on a 2-core machine (ffmpeg itself uses the cores), else 2."""
    return 1 if (os.cpu_count() or 1) <= 2 else 2


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _fault_matches(fault: str | None, point: str, job: str | None = None) -> bool:
    if not fault:
        return False
    where, _, name = fault.partition(":")
    return where == point and (not name or job is None or name == job)


# -- the CPU stage -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClipWork:
    """One clip to prepare: picklable, so any executor (threads, processes, Dask) can run it."""

    key: str
    spec: ClipSpec
    out_dir: Path
    options: PrepareOptions
    fault: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedClip:
    """What preparing one clip produced."""

    key: str
    path: Path
    sha256: str
    size_bytes: int
    duration_ms: int
    action: str


def prepare_clip(work: ClipWork) -> PreparedClip:
    """Prepare one clip into its own folder and checksum the result (the CPU-bound stage)."""
    from prep.media.prepare import prepare

    def progress(label: str, done_ms: int, total_ms: int) -> None:
        if done_ms > 0 and _fault_matches(work.fault, "prepare"):
            _kill_self()

    (result,) = prepare([work.spec], work.out_dir, work.options,
                        on_progress=progress if work.fault else None)
    if result.output is None or result.output_info is None:
        raise ValueError("prepare returned no output")
    return PreparedClip(key=work.key, path=result.output, sha256=file_sha256(result.output),
                        size_bytes=result.output.stat().st_size,
                        duration_ms=result.output_info.duration_ms, action=result.action)


def clip_key(spec: ClipSpec, start_ms: int, end_ms: int, extend: Extend | None) -> str:
    """Identity of a prepared clip: the source file as it is now, and the window used.

    Jobs that use the same source and window share one prepared file and one upload.
    """
    path = spec.path.resolve()
    stat = path.stat()
    raw = json.dumps([str(path), stat.st_size, stat.st_mtime_ns, start_ms, end_ms, extend])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


# -- a batch-wide brake for the API -------------------------------------------------------------


class RateGate:
    """Shared by every API call of a batch, so that 429s slow the whole batch instead of failing jobs.

    Any back-off (a 429 with its Retry-After, a 5xx, an unreachable server) pauses every call for
    that long and halves how many calls may run at once; each success lets one more run again,
    up to the batch's --concurrency.
    """

    def __init__(self, max_concurrent: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self.limit = max_concurrent
        self.in_flight = 0
        self.paused_until = 0.0
        self.backoffs = 0
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()

    def backoff(self, delay_s: float) -> None:
        """Pause every API call for `delay_s` and run fewer at once for a while."""
        with self._cond:
            self.paused_until = max(self.paused_until, self._clock() + max(delay_s, 0.0))
            self.limit = max(1, self.limit // 2)
            self.backoffs += 1
            self._cond.notify_all()

    def sleep(self, delay_s: float) -> None:
        """The client's retry sleep: every back-off anywhere brakes the whole batch."""
        self.backoff(delay_s)
        self._sleep(delay_s)

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """Hold one of the allowed concurrent API calls (waiting out any pause first)."""
        with self._cond:
            while True:
                wait_s = self.paused_until - self._clock()
                if wait_s <= 0 and self.in_flight < self.limit:
                    break
                self._cond.wait(timeout=wait_s if wait_s > 0 else None)
            self.in_flight += 1
        ok = False
        try:
            yield
            ok = True
        finally:
            with self._cond:
                self.in_flight -= 1
                if ok and self.limit < self.max_concurrent:
                    self.limit += 1
                self._cond.notify_all()


# -- options and results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchOptions:
    """How a batch runs (defaults are the CLI's)."""

    output_dir: Path
    concurrency: int = 4
    cpu_workers: int = field(default_factory=default_cpu_workers)
    retry_failed: bool = False
    resubmit_unknown: bool = False
    upload_mode: Literal["base64", "stream"] = "base64"
    upload_margin_s: float = UPLOAD_MARGIN_S
    poll_initial_s: float | None = None  # None: 1 s against EvoLink, 0.2 s against a sandbox
    poll_max_s: float | None = None  # None: the settings' poll_max_interval_s (8 s; 2 s sandbox)
    max_cost_units: int | None = None  # checked again once the clips are prepared and measured
    fault: str | None = None  # test only: "POINT[:JOB]", see FAULT_POINTS

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.cpu_workers < 1:
            raise UsageError("--concurrency must be at least 1")
        if self.fault and self.fault.partition(":")[0] not in FAULT_POINTS:
            raise UsageError(f"unknown fault point {self.fault!r}")


Outcome = Literal["done", "failed", "unknown", "running", "not run"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    """Every job's outcome after a run, from the journal."""

    jobs: tuple[JobStatus, ...]
    interrupted: bool = False
    halted: str | None = None
    rate_limit_pauses: int = 0
    elapsed_s: float = 0.0

    @property
    def exit_code(self) -> int:
        """The worst job outcome: the highest exit code of any job (0 when all are done)."""
        if self.interrupted:
            return 130
        return max((j.exit_code for j in self.jobs), default=0)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `prep batch --json` (contract: extend, never rename)."""
        return {
            "jobs": [{**j.as_dict(), "outcome": outcome_of(j)} for j in self.jobs],
            "counts": {o: sum(1 for j in self.jobs if outcome_of(j) == o)
                       for o in ("done", "failed", "unknown", "running", "not run")},
            "exit_code": self.exit_code,
            "interrupted": self.interrupted,
            "halted": self.halted,
            "rate_limit_pauses": self.rate_limit_pauses,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def outcome_of(job: JobStatus) -> Outcome:
    """A job's outcome in words: done, failed, unknown, running (task still going) or not run."""
    if job.state in ("done", "failed", "unknown"):
        return job.state  # type: ignore[return-value]
    if job.state in ("running", "completed", "submitting"):
        return "running"
    return "not run"


@dataclass(slots=True, kw_only=True)
class Hooks:
    """How a run reports progress (the CLI draws it; the library never prints)."""

    on_state: Callable[[str, str, str], None] | None = None  # (job, state, detail)
    on_progress: Callable[[int, int], None] | None = None  # (jobs finished, jobs in the run)
    on_warning: Callable[[str], None] | None = None

    def state(self, job: str, state: str, detail: str = "") -> None:
        if self.on_state is not None:
            self.on_state(job, state, detail)


# -- journal <-> plan --------------------------------------------------------------------------


def _job_clips(plan: JobPlan, extend: Extend | None) -> list[tuple[str, str, int, int]]:
    return [(clip_key(c.spec, c.window.start_ms, c.window.end_ms, extend), str(c.spec.path.resolve()),
             c.window.start_ms, c.window.end_ms) for c in plan.clips]


def _spec_hash(plan: JobPlan, clips: list[tuple[str, str, int, int]]) -> str:
    # `pick: false` is left out, so journals written before the field existed still match.
    spec = {k: v for k, v in plan.job.as_dict().items()
            if k != "line" and not (k == "pick" and v is False)}
    spec["aspect_ratio"] = plan.aspect_ratio
    spec["clip_keys"] = [c[0] for c in clips]
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


_SUBMITTED = ("submitting", "running", "completed", "done", "unknown")


def sync_journal(plan: BatchPlan, journal: Journal, *, extend: Extend | None = None) -> list[str]:
    """Bring the journal in line with the manifest; returns warnings for people.

    New jobs are added; a job whose row changed starts over if it was never submitted, and keeps
    its task (with a warning) if it was: a submitted job is never submitted again by accident.
    """
    warnings: list[str] = []
    _record_picks(plan, journal)
    known = {j.name: j for j in journal.jobs()}
    for position, job_plan in enumerate(plan.jobs):
        clips = _job_clips(job_plan, extend)
        digest = _spec_hash(job_plan, clips)
        spec = {**job_plan.job.as_dict(), "aspect_ratio": job_plan.aspect_ratio}
        record = known.pop(job_plan.name, None)
        args: dict[str, Any] = {"name": job_plan.name, "position": position,
                                "line": job_plan.job.line, "spec": spec, "spec_hash": digest,
                                "estimate_units": job_plan.estimate.credits_units, "clips": clips}
        if record is None:
            journal.add_job(**args)
        elif record.spec_hash == digest:
            if (record.position, record.line) != (position, job_plan.job.line):
                journal.update_position(job_plan.name, position, job_plan.job.line)
        elif record.state in _SUBMITTED or (record.state == "failed" and record.task_id):
            warnings.append(f"job {job_plan.name!r} changed in the manifest after it was submitted "
                            f"(task {record.task_id or 'unknown'}); its task is kept: give the job "
                            "a new name to make another")
        else:
            journal.replan_job(**args)
    for name in known:
        warnings.append(f"job {name!r} is in the journal but no longer in the manifest; left as it is")
    return warnings


PICKS_META = "picks"


def journaled_picks(journal: Journal) -> dict[str, dict[str, Any]]:
    """The windows picked for this batch's clips so far, by pick key (see `prep.picks`)."""
    text = journal.meta(PICKS_META)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def read_journaled_picks(folder: Path) -> dict[str, dict[str, Any]]:
    """`journaled_picks` of the batch in `folder`, or nothing when it has no journal yet."""
    from prep.jobs.journal import journal_path

    if not journal_path(folder).is_file():
        return {}
    with Journal.open(folder, create=False) as journal:
        return journaled_picks(journal)


def _record_picks(plan: BatchPlan, journal: Journal) -> None:
    """Keep every picked window in the journal, so the next run plans the same windows."""
    picks = journaled_picks(journal)
    new = {p.key: p.record() for job in plan.jobs for p in job.picks if p is not None}
    if any(picks.get(k) != v for k, v in new.items()):
        journal.set_meta(PICKS_META, json.dumps({**picks, **new}, sort_keys=True))


def _parse_expiry(text: str | None, now: float) -> float:
    if text:
        try:
            when = datetime.fromisoformat(text.strip().replace(" ", "T", 1).replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return when.timestamp()
        except ValueError:
            pass
    return now + rules.UPLOAD_TTL_S


# -- the run -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Poll:
    due: float
    interval: float
    failures: int = 0


class _Runner:
    """The coordinator: one thread schedules every step and writes the journal."""

    def __init__(self, plan: BatchPlan, journal: Journal, settings: Settings, options: BatchOptions,
                 *, api: Client, fetch: Client, gate: RateGate, cpu: Executor, io: Executor,
                 hooks: Hooks, prepare_options: PrepareOptions, extend: Extend | None) -> None:
        self.plan = plan
        self.journal = journal
        self.settings = settings
        self.options = options
        self.api = api
        self.fetch = fetch
        self.gate = gate
        self.cpu = cpu
        self.io = io
        self.hooks = hooks
        self.prepare_options = prepare_options
        self.extend = extend
        self.futures: dict[Future[Any], tuple[str, str]] = {}
        self.busy: set[tuple[str, str]] = set()  # (kind, clip key or job name) in flight
        self.clip_errors: dict[str, PrepError] = {}
        self.polls: dict[str, _Poll] = {}
        self.deferrals: dict[tuple[str, str], int] = {}
        self.retry_at: dict[tuple[str, str], float] = {}
        self.halted: PrepError | None = None
        self.given_up: set[str] = set()
        self.names = [j.name for j in plan.jobs]
        self.clip_specs: dict[str, ClipSpec] = {}
        for job_plan in plan.jobs:
            for (key, *_), planned in zip(_job_clips(job_plan, extend), job_plan.clips, strict=True):
                self.clip_specs[key] = planned.spec
        from prep.api.client import PollPolicy

        pace = PollPolicy.for_settings(settings, initial_s=options.poll_initial_s,
                                       max_s=options.poll_max_s or None)
        self.poll_initial_s = pace.initial_s
        self.poll_max_s = pace.max_s

    # -- start-up: what the journal says about each job

    def reconcile(self) -> None:
        """Decide, before anything is sent, what each job still needs (see the module docstring)."""
        now = time.time()
        checked: dict[str, bool] = {}
        for name in self.names:
            job = self._job(name)
            if job.state == "submitting":
                sub = self.journal.last_submission(name)
                if sub is not None and sub.outcome == "sending":
                    self.journal.record_unknown(sub.id, error=(
                        "prep stopped after journaling the create request and before recording an "
                        "answer; the request may have reached EvoLink and the task may exist"))
                job = self._job(name)
            if job.state == "failed" and self.options.retry_failed:
                self.journal.reset_for_retry(name)
                job = self._job(name)
            if job.state == "done" and not _result_intact(job):
                if job.result_url:
                    self.journal.record_task(name, status="completed", progress=100,
                                             credits_reserved=None)
                else:
                    self.journal.set_state(name, "failed", error="the result file is missing or "
                                           "changed, and no result URL is known", error_exit=6)
            if job.state in ("pending", "prepared", "uploaded"):
                for key in job.clip_keys:
                    if key not in checked:
                        checked[key] = self._check_prepared(key)
            if job.state in ("running", "submitting"):
                self.polls[name] = _Poll(due=now, interval=self.poll_initial_s)

    def _check_prepared(self, key: str) -> bool:
        clip = self.journal.clip(key)
        if clip is None or not clip.prepared_path:
            return False
        path = Path(clip.prepared_path)
        try:
            intact = path.is_file() and path.stat().st_size == clip.prepared_bytes \
                and file_sha256(path) == clip.prepared_sha256
        except OSError:
            intact = False
        if not intact:
            self.journal.forget_prepared(key, "the prepared file is missing or changed")
        return intact

    def _job(self, name: str) -> JobRecord:
        job = self.journal.job(name)
        assert job is not None
        return job

    # -- the loop

    def run(self) -> None:
        while True:
            self._schedule()
            if not self.futures:
                if self._waiting_for_time():
                    time.sleep(self._next_wake())
                    continue
                break
            done, _ = wait(list(self.futures), timeout=self._next_wake(), return_when=FIRST_COMPLETED)
            for future in done:
                kind, ident = self.futures.pop(future)
                self.busy.discard((kind, ident))
                self._finish(kind, ident, future)

    def _waiting_for_time(self) -> bool:
        """Whether a poll or a deferred step is still due (nothing else may be in flight)."""
        for kind, ident in self.retry_at:
            if kind == "download" and ident not in self.given_up:
                return True
            if kind in ("create", "upload") and self.halted is None and ident not in self.given_up:
                return True
        return any(name not in self.given_up and self._job(name).state in ("running", "submitting")
                   for name in self.polls)

    def _next_wake(self) -> float:
        now = time.time()
        times = [p.due for n, p in self.polls.items() if n not in self.given_up]
        times += list(self.retry_at.values())
        if not times:
            return 0.5
        return min(max(min(times) - now, 0.01), 0.5)

    def _submit(self, executor: Executor, kind: str, ident: str, fn: Callable[..., Any],
                *args: Any) -> None:
        self.busy.add((kind, ident))
        self.futures[executor.submit(fn, *args)] = (kind, ident)

    def _ready(self, kind: str, ident: str) -> bool:
        when = self.retry_at.get((kind, ident))
        if when is None:
            return True
        if when <= time.time():
            del self.retry_at[(kind, ident)]
            return True
        return False

    def _schedule(self) -> None:
        now = time.time()
        for name in self.names:
            if name in self.given_up:
                continue
            job = self._job(name)
            if job.state in ("pending", "prepared", "uploaded"):
                self._advance_clips(job, now)
            elif job.state == "unknown" and self.options.resubmit_unknown:
                self._resubmit(job)
            elif job.state == "running":
                poll = self.polls.setdefault(name, _Poll(due=now, interval=self.poll_initial_s))
                if poll.due <= now and ("poll", name) not in self.busy:
                    self._submit(self.io, "poll", name, self._poll, job.task_id)
            elif job.state == "completed" and ("download", name) not in self.busy \
                    and self._ready("download", name):
                self._submit(self.io, "download", name, self._download, name, job.result_url,
                             job.task_id)
        if self.hooks.on_progress is not None:
            states = [self._job(n).state for n in self.names]
            self.hooks.on_progress(sum(1 for s in states if s in ("done", "failed", "unknown")),
                                   len(states))

    def _advance_clips(self, job: JobRecord, now: float) -> None:
        clips = [self.journal.clip(k) for k in job.clip_keys]
        failed = [self.clip_errors[k] for k in job.clip_keys if k in self.clip_errors]
        if failed:
            err = failed[0]
            self.journal.set_state(job.name, "failed", error=err.message, error_exit=err.exit_code)
            self.hooks.state(job.name, "failed", err.message)
            return
        all_prepared = all(c is not None and c.prepared_path for c in clips)
        all_uploaded = all(c is not None and c.upload_fresh(now, self.options.upload_margin_s)
                           for c in clips)
        if all_prepared and job.measured_units is None:
            self._measure(job, [c.prepared_duration_ms or 0 for c in clips if c is not None])
            job = self._job(job.name)
        if all_uploaded:
            if job.state != "uploaded":
                self.journal.set_state(job.name, "uploaded")
                self.hooks.state(job.name, "uploaded")
            if self.halted is None and ("create", job.name) not in self.busy \
                    and self._ready("create", job.name):
                self._create(job, [c.file_url for c in clips if c is not None and c.file_url])
            return
        if all_prepared and job.state == "pending":
            self.journal.set_state(job.name, "prepared")
            self.hooks.state(job.name, "prepared")
        for clip in clips:
            assert clip is not None
            if not clip.prepared_path:
                if ("prepare", clip.key) not in self.busy:
                    self.hooks.state(job.name, "preparing", clip.source)
                    work = ClipWork(key=clip.key, spec=self.clip_specs[clip.key],
                                    out_dir=self.options.output_dir / PREPARED_DIR / clip.key[:16],
                                    options=self.prepare_options, fault=self.options.fault)
                    self._submit(self.cpu, "prepare", clip.key, prepare_clip, work)
            elif not clip.upload_fresh(now, self.options.upload_margin_s) and self.halted is None \
                    and ("upload", clip.key) not in self.busy and self._ready("upload", clip.key):
                self.hooks.state(job.name, "uploading", clip.source)
                self._submit(self.io, "upload", clip.key, self._upload, clip)

    def _measure(self, job: JobRecord, durations_ms: list[int]) -> None:
        """Bill the job again from its prepared clips as measured: what EvoLink will see."""
        from prep.core.billing import estimate_durations

        est = estimate_durations([(str(i), d) for i, d in enumerate(durations_ms)],
                                 output_s=int(job.spec["duration"]), quality=job.spec["quality"],
                                 prices=self.plan.prices)
        self.journal.record_measured(job.name, est.credits_units)

    def _over_budget(self) -> str | None:
        """Why no more jobs may be created: the batch as measured costs more than --max-cost."""
        budget = self.options.max_cost_units
        if budget is None:
            return None
        total = sum(j.measured_units if j.measured_units is not None else (j.estimate_units or 0)
                    for j in (self._job(n) for n in self.names))
        if total <= budget:
            return None
        from prep.core.billing import credits_text

        return (f"with the clips prepared and measured, the batch costs {credits_text(total)} "
                f"credits, above --max-cost {credits_text(budget)}")

    # -- create

    def _key_for(self, name: str) -> str:
        """Reuse the last key when the last request provably made no task or may have made one."""
        from prep.api.client import new_idempotency_key

        last = self.journal.last_submission(name)
        if last is not None and last.outcome in ("deferred", "abandoned", "unknown", "sending"):
            return last.idempotency_key
        return new_idempotency_key()

    def _request(self, job: JobRecord, urls: list[str]) -> dict[str, Any]:
        from prep.core.request import GenerationRequest

        spec = job.spec
        return GenerationRequest(
            prompt=spec["prompt"], video_urls=tuple(urls), duration_s=int(spec["duration"]),
            quality=spec["quality"], aspect_ratio=spec["aspect_ratio"], shot_type=spec["shot_type"],
            callback_url=spec.get("callback_url"),
        ).body()

    def _create(self, job: JobRecord, urls: list[str]) -> None:
        over = self._over_budget()
        if over is not None:
            self._halt(UsageError(over, hint="raise --max-cost, or remove jobs from the manifest"))
            return
        body = self._request(job, urls)
        key = self._key_for(job.name)
        # Journaled (and committed) BEFORE the request leaves: a crash after this line is seen
        # on resume as a request that may have reached EvoLink.
        sub = self.journal.begin_submission(job.name, idempotency_key=key, request=body)
        self.hooks.state(job.name, "submitting")
        if _fault_matches(self.options.fault, "before-create", job.name):
            _kill_self()
        self._submit(self.io, "create", job.name, self._send_create, sub, body, key, job.name)

    def _resubmit(self, job: JobRecord) -> None:
        if ("create", job.name) in self.busy or self.halted is not None:
            return
        last = self.journal.last_submission(job.name)
        if last is None:
            return
        # The very same body under the very same key: a server that honours the key replays the
        # first task; one that does not may bill twice (the user asked for this knowingly).
        sub = self.journal.begin_submission(job.name, idempotency_key=last.idempotency_key,
                                            request=last.request)
        self.hooks.state(job.name, "submitting", "re-sending under the same Idempotency-Key")
        self._submit(self.io, "create", job.name, self._send_create, sub, last.request,
                     last.idempotency_key, job.name)

    def _send_create(self, sub: int, body: dict[str, Any], key: str, name: str) -> tuple[int, Task]:
        with self.gate.call():
            task = self.api.create_task(body, idempotency_key=key)
        if _fault_matches(self.options.fault, "after-create", name):
            _kill_self()
        return sub, task

    # -- I/O work (runs on the io executor; returns values, never touches the journal)

    def _upload(self, clip: ClipRecord) -> tuple[str, str | None, float]:
        from prep.api.upload import upload_file

        assert clip.prepared_path is not None
        fault = _fault_matches(self.options.fault, "upload")

        def progress(sent: int, total: int) -> None:
            if fault and sent >= total // 2:
                _kill_self()

        with self.gate.call():
            uploaded = upload_file(self.api, Path(clip.prepared_path), mode=self.options.upload_mode,
                                   sha256=clip.prepared_sha256, on_progress=progress if fault else None)
        return uploaded.file_url, uploaded.file_id, _parse_expiry(uploaded.expires_at, time.time())

    def _poll(self, task_id: str) -> Task:
        with self.gate.call():
            return self.api.get_task(task_id)

    def _download(self, name: str, url: str | None, task_id: str | None) -> tuple[Path, str, int]:
        if _fault_matches(self.options.fault, "download", name):
            _kill_self()
        if not url:
            with self.gate.call():
                task = self.api.get_task(task_id or "")
            if not task.results:
                raise TaskFailedError(f"task {task_id} is {task.status} but lists no result",
                                      task_id=task_id or "")
            url = task.results[0]
        dest = self.options.output_dir / f"{name}.mp4"
        self.fetch.download(url, dest)
        return dest, file_sha256(dest), dest.stat().st_size

    # -- results of work (coordinator thread: the only journal writer)

    def _finish(self, kind: str, ident: str, future: Future[Any]) -> None:
        try:
            value = future.result()
        except PrepError as err:
            self._failed(kind, ident, err)
            return
        except Exception as err:  # a bug in one job must not take the others down
            self._failed(kind, ident, PrepError(f"internal error ({type(err).__name__}: {err}); "
                                                "this is a bug in prep"))
            return
        self.deferrals.pop((kind, ident), None)
        if kind == "prepare":
            prepared: PreparedClip = value
            self.journal.record_prepared(ident, path=str(prepared.path), sha256=prepared.sha256,
                                         size_bytes=prepared.size_bytes,
                                         duration_ms=prepared.duration_ms, action=prepared.action)
        elif kind == "upload":
            url, file_id, expires = value
            self.journal.record_upload(ident, file_url=url, file_id=file_id, expires_at=expires)
        elif kind == "create":
            sub, task = value
            self.journal.record_created(
                sub, task_id=task.id, status=task.status, credits_reserved=_credits(task),
                outcome="replayed" if task.replayed else "created")
            self.polls[ident] = _Poll(due=time.time() + self.poll_initial_s,
                                      interval=self.poll_initial_s)
            self.hooks.state(ident, "running", f"task {task.id}" + (" (replayed)" if task.replayed
                                                                    else ""))
        elif kind == "poll":
            self._polled(ident, value)
        elif kind == "download":
            path, digest, size = value
            self.journal.record_result(ident, path=str(path), sha256=digest, size_bytes=size)
            self.hooks.state(ident, "done", str(path))

    def _polled(self, name: str, task: Task) -> None:
        poll = self.polls[name]
        poll.failures = 0
        if task.status in ("failed", "cancelled"):
            reason = task.error_message or task.status
            self.journal.record_task(name, status=task.status, progress=task.progress,
                                     credits_reserved=_credits(task))
            self.journal.set_state(name, "failed", error=f"task {task.id} {task.status}: {reason} "
                                   "(failed tasks are not billed)", error_exit=7)
            self.hooks.state(name, "failed", reason)
            return
        result_url = task.results[0] if task.results else None
        self.journal.record_task(name, status=task.status, progress=task.progress,
                                 credits_reserved=_credits(task), result_url=result_url)
        if task.status == "completed":
            self.hooks.state(name, "completed", f"task {task.id}")
            return
        self.hooks.state(name, "running", f"{task.progress}%")
        poll.due = time.time() + poll.interval
        poll.interval = min(poll.interval * 1.5, self.poll_max_s)

    def _failed(self, kind: str, ident: str, err: PrepError) -> None:
        if kind == "prepare":
            self.clip_errors[ident] = err
            return
        if kind == "upload":
            if self._defer(kind, ident, err):
                return
            self.clip_errors[ident] = err
            return
        if kind == "create":
            self._create_failed(ident, err)
            return
        if kind == "poll":
            poll = self.polls[ident]
            if isinstance(err, (AuthError, QuotaError)):
                self._halt(err)
            poll.failures += 1
            if poll.failures >= 3 or isinstance(err, (AuthError, RequestRejected, UsageError)):
                self.journal.note_error(ident, f"stopped following the task: {err.message}",
                                        err.exit_code)
                self.given_up.add(ident)
                self.hooks.state(ident, "running", f"stopped following: {err.message}")
            else:
                poll.due = time.time() + max(poll.interval, 1.0) * 2
            return
        if kind == "download":
            if self._defer(kind, ident, err):
                return
            expired = isinstance(err, ApiError) and err.status in (401, 403, 404, 410)
            self.journal.set_state(ident, "failed", error=err.message,
                                   error_exit=6 if expired else err.exit_code)
            self.hooks.state(ident, "failed", err.message)

    def _defer(self, kind: str, ident: str, err: PrepError) -> bool:
        """Put an operation back after a 429 / unreachable server, braking the whole batch."""
        if not isinstance(err, (RateLimitError, NetworkError)) and not (
                isinstance(err, ApiError) and err.status is not None and err.status >= 500):
            return False
        count = self.deferrals.get((kind, ident), 0) + 1
        self.deferrals[(kind, ident)] = count
        if count > MAX_DEFERRALS:
            return False
        delay = min(2.0 ** count, 60.0)
        self.gate.backoff(delay)
        self.retry_at[(kind, ident)] = time.time() + delay
        return True

    def _create_failed(self, name: str, err: PrepError) -> None:
        sub = self.journal.last_submission(name)
        assert sub is not None
        if isinstance(err, OutcomeUnknownError):
            self.journal.record_unknown(sub.id, error=err.message)
            self.hooks.state(name, "unknown", err.message)
            return
        status = err.status if isinstance(err, ApiError) else None
        # 429, or a connection that was never made: the server provably did not take it.
        if isinstance(err, (RateLimitError, NetworkError)):
            self.journal.record_retryable(sub.id, error=err.message, http_status=status)
            if not self._defer("create", name, err):
                self.journal.note_error(name, f"not submitted: {err.message}", err.exit_code)
                self.given_up.add(name)
            self.hooks.state(name, "uploaded", "waiting: rate limited")
            return
        if isinstance(err, (QuotaError, AuthError)):
            # Not this job's fault and no task was made: every later create would fail the same
            # way. Stop creating; the jobs stay ready for a re-run after the account is fixed.
            self.journal.record_retryable(sub.id, error=err.message, http_status=status)
            self._halt(err)
            return
        if isinstance(err, RequestRejected) and any(
                word in err.message.lower() for word in ("expire", "not found", "fetch", "download")):
            # The server could not use an uploaded reference (expired early or deleted): upload
            # afresh, and send again (the 400 proves no task was made).
            self.journal.record_retryable(sub.id, error=err.message, http_status=status)
            if self.deferrals.get(("refresh", name), 0) < 1:
                self.deferrals[("refresh", name)] = 1
                for key in self._job(name).clip_keys:
                    self.journal.forget_upload(key, f"the server refused it: {err.message}")
                self.journal.set_state(name, "prepared", detail="references refused: uploading again")
                return
        self.journal.record_rejected(sub.id, error=err.message, error_exit=err.exit_code,
                                     http_status=status)
        self.hooks.state(name, "failed", err.message)

    def _halt(self, err: PrepError) -> None:
        if self.halted is None:
            self.halted = err

    def finalize(self) -> None:
        """Say on each job that never got its turn why not (the batch stopped submitting)."""
        if self.halted is None:
            return
        for name in self.names:
            job = self._job(name)
            if job.state in ("pending", "prepared", "uploaded") and not job.error:
                self.journal.note_error(name, f"not submitted: {self.halted.message}",
                                        self.halted.exit_code)

    def stop_in_flight_creates(self, timeout_s: float = 30.0) -> None:
        """After Ctrl-C: wait a little for create requests already sent, and journal their answers."""
        creates = [f for f, (kind, _) in self.futures.items() if kind == "create"]
        if not creates:
            return
        done, _ = wait(creates, timeout=timeout_s)
        for future in done:
            kind, ident = self.futures.pop(future)
            self._finish(kind, ident, future)


def _credits(task: Task) -> float | None:
    units = task.credits_reserved_units
    return None if units is None else units / 10_000


def _result_intact(job: JobRecord) -> bool:
    if not job.result_path:
        return False
    path = Path(job.result_path)
    try:
        return path.is_file() and path.stat().st_size == job.result_bytes
    except OSError:
        return False


def run_batch(
    plan: BatchPlan,
    settings: Settings,
    options: BatchOptions,
    *,
    extend: Extend | None = None,
    hooks: Hooks | None = None,
    cpu_executor: Executor | None = None,
    io_executor: Executor | None = None,
    client: Client | None = None,
) -> BatchResult:
    """Run (or resume) every job of `plan` into `options.output_dir`; see the module docstring.

    `cpu_executor` takes `prepare_clip` calls (default: a thread pool of `options.cpu_workers`);
    any concurrent.futures-style Executor works, e.g. Dask's `Client.get_executor()`.
    """
    from prep.api.client import Client, RetryPolicy
    from prep.media.prepare import PrepareOptions

    if not settings.api_key:
        raise AuthError("no EvoLink API key is configured",
                        hint="set EVOLINK_API_KEY, or run `prep config set api_key`; --dry-run "
                             "works without one")
    started = time.monotonic()
    hooks = hooks or Hooks()
    out = options.output_dir
    try:
        (out / PREPARED_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{out}: the output folder cannot be written ({err.strerror or err})",
                         hint="choose another folder with -o") from err
    gate = RateGate(options.concurrency)
    retry = RetryPolicy(attempts=4, base_delay_s=1.0, max_delay_s=20.0)
    api = client or Client.from_settings(settings, retry=retry, sleep=gate.sleep)
    fetch = Client.from_settings(settings, retry=retry)
    own_cpu = cpu_executor is None
    own_io = io_executor is None
    cpu = cpu_executor or ThreadPoolExecutor(options.cpu_workers, thread_name_prefix="prep-cpu")
    io = io_executor or ThreadPoolExecutor(options.concurrency + 2, thread_name_prefix="prep-io")
    prepare_options = PrepareOptions(extend=extend, cache_dir=settings.cache_dir,
                                     ffmpeg=settings.ffmpeg)
    interrupted = False
    halted: PrepError | None = None
    with Journal.open(out) as journal:
        journal.set_meta("manifest", plan.manifest.source)
        journal.set_meta("base_url", settings.base_url)
        runner = _Runner(plan, journal, settings, options, api=api, fetch=fetch, gate=gate, cpu=cpu,
                         io=io, hooks=hooks, prepare_options=prepare_options, extend=extend)
        try:
            for warning in sync_journal(plan, journal, extend=extend):
                if hooks.on_warning is not None:
                    hooks.on_warning(warning)
            runner.reconcile()
            runner.run()
            runner.finalize()
        except KeyboardInterrupt:
            interrupted = True
            runner.stop_in_flight_creates()
        finally:
            if own_cpu:
                cpu.shutdown(wait=not interrupted, cancel_futures=True)
            if own_io:
                io.shutdown(wait=not interrupted, cancel_futures=True)
            if client is None:
                api.close()
            fetch.close()
        halted = runner.halted
        rows = batch_status(journal, now=time.time(), upload_margin_s=0)
    names = {j.name for j in plan.jobs}
    result = BatchResult(jobs=tuple(r for r in rows if r.name in names), interrupted=interrupted,
                         halted=halted.message if halted else None,
                         rate_limit_pauses=gate.backoffs, elapsed_s=time.monotonic() - started)
    if interrupted:
        raise Interrupted("the batch was stopped; finished steps are kept in the journal",
                          hint=f"run the same command again to resume ({out})")
    return result


def resolve_unknown(folder: Path, name: str, *, task_id: str | None, not_created: bool,
                    client: Client | None = None) -> str:
    """Settle a job whose create outcome is unknown; returns what was done, for people.

    `task_id`: the user found the task (it is read first, to check it exists). `not_created`: the
    user checked that no task exists; the job will be submitted again under the same key.
    """
    if (task_id is None) == (not not_created):
        raise UsageError("give --task-id ID (the task exists) or --not-created (it does not)")
    with Journal.open(folder, create=False) as journal:
        job = journal.job(name)
        if job is None:
            raise UsageError(f"{folder}: no job called {name!r} in this batch")
        sub = journal.last_submission(name)
        if job.state not in ("unknown", "submitting") or sub is None:
            raise UsageError(f"job {name!r} is {job.state}, not unknown; nothing to resolve")
        if task_id is not None:
            if client is not None:
                task = client.get_task(task_id)
                task_id = task.id
            journal.attach_task(name, task_id=task_id, reason="the user named the task")
            return f"job {name!r} follows task {task_id}; run the batch again to download it"
        journal.abandon_submission(sub.id, "the user says no task was created")
        return (f"job {name!r} will be submitted on the next run (same Idempotency-Key "
                f"{sub.idempotency_key})")
