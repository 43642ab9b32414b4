"""Running jobs: prepare, upload, create, follow and download, resumably. The one engine.

`prep batch` runs every job of a manifest here, and `prep generate` runs its one job here too, so
both keep the same journal in their output folder and both resume instead of paying twice.

Stages and where they run:

- **prepare** is CPU-bound (ffmpeg): it runs on the `cpu` executor, 1-2 workers on a small
  machine. Its unit of work is `prep.jobs.steps.prepare_clip`, a module-level function of picklable
  values, so a process pool or Dask's `Client.get_executor()` can take it instead.
- **upload, create, poll, download** are network-bound: they run on the `io` executor
  (`--concurrency` workers) and overlap with preparing, so a batch takes about as long as its
  slowest stage rather than the sum of all of them.

One coordinator thread (`_Runner`) owns the schedule and writes the journal; workers only do the
work and return values (`prep.jobs.steps`). Every step is journaled as it completes, and a create
request is journaled before it is sent, so the run can be killed at any moment and resumed by
running the same command. What a resumed run does with each job is decided first, by
`prep.jobs.reconcile`; what a failed step leads to (pace, retry, stop following, fail the job, stop
creating) by `prep.jobs.policy.decide`, with the run's patience in `BatchOptions.pacing`; the rate
brake and the credit cap live in `prep.jobs.budget`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prep.core import rules
from prep.core.request import GenerationRequest
from prep.errors import (
    ApiError,
    AuthError,
    Interrupted,
    PrepError,
    TaskFailedError,
    UsageError,
)
from prep.jobs.budget import RateGate, check_balance, jobs_to_pay, measured_units, over_budget
from prep.jobs.journal import ClipRecord, JobRecord, Journal
from prep.jobs.layout import prepared_dir, prepared_root, read_progress, result_path
from prep.jobs.lock import RunLock
from prep.jobs.planning import BatchPlan, JobPlan
from prep.jobs.policy import DEFAULT_PACING, Decision, Pacing, Step, Verdict, decide
from prep.jobs.reconcile import job_clips, reconcile, sync_journal
from prep.jobs.recover import (
    LOST_JOURNAL,
    REBUILT_META,
    TaskList,
    fingerprint,
    idempotency_key,
    recent_tasks,
    sidecar_matches,
    write_sidecar,
)
from prep.jobs.references import REFERENCE_KEY_PREFIX
from prep.jobs.status import JobStatus, batch_status
from prep.jobs.steps import (
    FAULT_POINTS,
    ClipWork,
    PreparedClip,
    Uploaded,
    create_task,
    download_result,
    fault_matches,
    kill_self,
    prepare_clip,
    read_task,
    read_tasks,
    upload_clip,
)

if TYPE_CHECKING:
    from prep.api.client import Client, PollPolicy, RetryPolicy, Task
    from prep.api.upload import UploadCache
    from prep.core.plan import Profile
    from prep.core.window import Extend, PlannedClip
    from prep.media.prepare import PrepareOptions
    from prep.settings import Settings

__all__ = [
    "BatchOptions",
    "BatchResult",
    "RunHooks",
    "default_cpu_workers",
    "engine_client",
    "outcome_of",
    "result_path",
    "run_batch",
]

# Redo an upload whose URL expires sooner than this: the server fetches references after create.
UPLOAD_MARGIN_S = 3600.0


def default_cpu_workers() -> int:
    """ffmpeg at a time: 1 on a 2-core machine (ffmpeg itself uses the cores), else 2."""
    return 1 if (os.cpu_count() or 1) <= 2 else 2


# -- options and results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchOptions:
    """How a batch runs (defaults are the CLI's)."""

    output_dir: Path
    concurrency: int = 4
    cpu_workers: int = field(default_factory=default_cpu_workers)
    retry_failed: bool = False
    resubmit_unknown: bool = False
    wait_lock: bool = False  # another run holds the folder: wait for it (else FolderBusyError)
    upload_mode: Literal["auto", "base64", "stream"] = "auto"  # auto: base64, stream if refused
    upload_margin_s: float = UPLOAD_MARGIN_S
    pacing: Pacing = DEFAULT_PACING  # retries, pauses and poll intervals (tests: a quick one)
    max_cost_units: int | None = None  # checked again once the clips are prepared and measured
    follow: bool = True  # False: stop once every task is created (`generate --no-wait`)
    deadline_s: float | None = None  # stop following tasks after this long (they go on at EvoLink)
    use_cache: bool = True  # reuse prepared clips and live uploads from the cache folder
    profile: Profile | None = None  # the encoder profile for re-encoded clips (None: the default)
    check_credits: bool = True  # read GET /v1/credits first (False: the caller already did)
    batch_queries: bool = True  # follow several tasks with one POST /v1/tasks/batch where served
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
    timed_out: bool = False  # --deadline passed while tasks were still running
    halted_error: PrepError | None = field(default=None, repr=False, compare=False)  # why halted
    rate_limit_pauses: int = 0
    elapsed_s: float = 0.0
    batch_queries: int = 0  # POST /v1/tasks/batch calls made (each followed up to 50 tasks)

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
            "timed_out": self.timed_out,
            "rate_limit_pauses": self.rate_limit_pauses,
            "elapsed_s": round(self.elapsed_s, 3),
            "batch_queries": self.batch_queries,
        }


def outcome_of(job: JobStatus) -> Outcome:
    """A job's outcome in words: done, failed, unknown, running (task still going) or not run."""
    if job.state in ("done", "failed", "unknown"):
        return job.state  # type: ignore[return-value]
    if job.state in ("running", "completed", "submitting"):
        return "running"
    return "not run"


@dataclass(slots=True, kw_only=True)
class RunHooks:
    """How a run reports progress (the CLI draws it; the library never prints)."""

    on_state: Callable[[str, str, str], None] | None = None  # (job, state, detail)
    on_progress: Callable[[int, int], None] | None = None  # (jobs finished, jobs in the run)
    on_warning: Callable[[str], None] | None = None
    on_task: Callable[[Task], None] | None = None  # every answer about a task (create, query)
    on_prepare_progress: Callable[[str, int, int], None] | None = None  # (clip, done ms, total ms)
    on_upload_progress: Callable[[Path, int, int], None] | None = None  # (file, sent, total bytes)
    on_download_progress: Callable[[int, int | None], None] | None = None  # (bytes, total)

    def state(self, job: str, state: str, detail: str = "") -> None:
        if self.on_state is not None:
            self.on_state(job, state, detail)




# -- the run -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Poll:
    due: float
    interval: float


Work = tuple[Step, str]  # a step and what it works on: a clip key, or a job name


class _Runner:
    """The coordinator: one thread schedules every step, hands work to the pools and journals
    what comes back. What a failed step leads to is `prep.jobs.policy.decide`'s call."""

    def __init__(self, plan: BatchPlan, journal: Journal, settings: Settings, options: BatchOptions,
                 *, api: Client, fetch: Client, gate: RateGate, cpu: Executor, io: Executor,
                 hooks: RunHooks, prepare_options: PrepareOptions, extend: Extend | None,
                 poll: PollPolicy, upload_cache: UploadCache | None, in_process_cpu: bool) -> None:
        self.plan = plan
        self.journal = journal
        self.settings = settings
        self.options = options
        self.pacing = options.pacing
        self.api = api
        self.fetch = fetch
        self.gate = gate
        self.cpu = cpu
        self.io = io
        self.hooks = hooks
        self.prepare_options = prepare_options
        self.extend = extend
        self.upload_cache = upload_cache
        self.in_process_cpu = in_process_cpu
        self.futures: dict[Future[Any], Work] = {}
        self.busy: set[Work] = set()  # in flight (a query for several tasks: one POLL per job)
        self.clip_errors: dict[str, PrepError] = {}
        self.polls: dict[str, _Poll] = {}
        # Counted failures in a row of each step (a success clears them); the queries for several
        # tasks at once are counted as one, under (POLL_MANY, "").
        self.attempts: dict[Work, int] = {}
        self.retry_at: dict[Work, float] = {}
        self.halted: PrepError | None = None
        self.given_up: set[str] = set()
        self.resubmitted: set[str] = set()  # --resubmit-unknown sends a job again once per run
        # None: not tried yet; False: the server does not offer POST /v1/tasks/batch (for the run)
        self.batch_queries: bool | None = None if options.batch_queries else False
        self.batch_calls = 0
        self.timed_out = False
        self.task_list: TaskList | None = None  # what the service lists, after a lost journal
        self.started = time.monotonic()
        self.names = [j.name for j in plan.jobs]
        self.plans: dict[str, JobPlan] = {j.name: j for j in plan.jobs}
        self.clips: dict[str, PlannedClip] = {}
        self.jobs_of_clip: dict[str, list[str]] = {}
        self.encoding: dict[str, tuple[int, int]] = {}  # clip key -> (encoded ms, total ms)
        for job_plan in plan.jobs:
            for (key, *_), planned in zip(job_clips(job_plan, extend), job_plan.clips, strict=True):
                self.clips[key] = planned
                self.jobs_of_clip.setdefault(key, []).append(job_plan.name)
        self.poll_initial_s = poll.initial_s
        self.poll_max_s = poll.max_s
        self._finished: dict[Step, Callable[[str, Any], None]] = {
            Step.PREPARE: self._prepared, Step.UPLOAD: self._uploaded, Step.CREATE: self._created,
            Step.POLL: self._polled, Step.DOWNLOAD: self._downloaded,
        }

    def reconcile(self) -> None:
        """What the journal says about each job, settled before anything is sent."""
        found = reconcile(self.journal, self.names, retry_failed=self.options.retry_failed)
        now = time.time()
        for name in found.to_follow:
            self.polls[name] = _Poll(due=now, interval=self.poll_initial_s)

    def read_task_list(self) -> None:
        """After a lost journal: the service's recent tasks, read once before anything is sent
        (so no task this run makes can be taken for an earlier one)."""
        since = self.journal.meta(REBUILT_META)
        if since is None or all(self.journal.submissions(n) for n in self.names):
            return
        self.task_list = recent_tasks(self.api, float(since))
        if self.task_list.unavailable is not None and self.hooks.on_warning is not None:
            self.hooks.on_warning(f"the journal of {self.options.output_dir} was lost and the task "
                                  f"list cannot be read ({self.task_list.unavailable})")

    def _job(self, name: str) -> JobRecord:
        job = self.journal.job(name)
        assert job is not None
        return job

    # -- the loop

    def run(self) -> None:
        while True:
            self._check_deadline()
            self._report_encoding()
            self._schedule()
            if not self.futures:
                if self._waiting_for_time():
                    time.sleep(self._next_wake())
                    continue
                break
            done, _ = wait(list(self.futures), timeout=self._next_wake(), return_when=FIRST_COMPLETED)
            for future in done:
                step, ident = self.futures.pop(future)
                if step is Step.POLL_MANY:
                    self._polled_many(ident, future)
                    continue
                self.busy.discard((step, ident))
                self._finish(step, ident, future)

    def _prepared_dir(self, key: str) -> Path:
        return prepared_dir(self.options.output_dir, key)

    def _report_encoding(self) -> None:
        """How far each encode in flight is, from the progress file its worker keeps (threads,
        processes and Dask workers alike), as each of its jobs' state."""
        for step, key in list(self.busy):
            if step is not Step.PREPARE:
                continue
            found = read_progress(self._prepared_dir(key))
            if found is None or found == self.encoding.get(key):
                continue
            self.encoding[key] = found
            done_ms, total_ms = found
            name = self.clips[key].spec.path.name
            if self.hooks.on_prepare_progress is not None and not self.in_process_cpu:
                self.hooks.on_prepare_progress(name, done_ms, total_ms)
            for job in self.jobs_of_clip.get(key, ()):
                self.hooks.state(job, "preparing", f"{name} {done_ms / 1000:.1f}/{total_ms / 1000:.1f} s")

    def _following(self, name: str) -> bool:
        return self.options.follow and name not in self.given_up

    def _check_deadline(self) -> None:
        deadline = self.options.deadline_s
        if deadline is None or time.monotonic() - self.started < deadline:
            return
        for name in self.names:
            if name not in self.given_up and self._job(name).state in ("running", "submitting"):
                self.given_up.add(name)
                self.timed_out = True

    def _waiting_for_time(self) -> bool:
        """Whether a poll or a deferred step is still due (nothing else may be in flight)."""
        for step, ident in self.retry_at:
            if step is Step.DOWNLOAD and ident not in self.given_up:
                return True
            if step in (Step.CREATE, Step.UPLOAD) and self.halted is None \
                    and ident not in self.given_up:
                return True
        return any(self._following(name) and self._job(name).state in ("running", "submitting")
                   for name in self.polls)

    def _next_wake(self) -> float:
        now = time.time()
        times = [p.due for n, p in self.polls.items() if self._following(n)]
        times += list(self.retry_at.values())
        if not times:
            return 0.5
        return min(max(min(times) - now, 0.01), 0.5)

    def _submit(self, executor: Executor, step: Step, ident: str, fn: Callable[..., Any],
                *args: Any) -> None:
        self.busy.add((step, ident))
        self.futures[executor.submit(fn, *args)] = (step, ident)

    def _ready(self, step: Step, ident: str) -> bool:
        when = self.retry_at.get((step, ident))
        if when is None:
            return True
        if when <= time.time():
            del self.retry_at[(step, ident)]
            return True
        return False

    def _idle(self, step: Step, ident: str) -> bool:
        """Neither in flight nor waiting out a pause."""
        return (step, ident) not in self.busy and self._ready(step, ident)

    def _schedule(self) -> None:
        now = time.time()
        due: list[tuple[str, str]] = []  # (job, task id) whose query is due
        early: list[tuple[str, str]] = []  # followed tasks not due yet: they ride along
        for name in self.names:
            if name in self.given_up:
                continue
            job = self._job(name)
            if job.state in ("pending", "prepared", "uploaded"):
                self._advance_clips(job, now)
            elif job.state == "unknown" and self.options.resubmit_unknown:
                self._resubmit(job)
            elif job.state == "running" and self.options.follow:
                poll = self.polls.setdefault(name, _Poll(due=now, interval=self.poll_initial_s))
                if (Step.POLL, name) not in self.busy and job.task_id:
                    (due if poll.due <= now else early).append((name, job.task_id))
            elif job.state == "completed" and self._idle(Step.DOWNLOAD, name):
                if fault_matches(self.options.fault, "download", name):
                    kill_self()
                self._submit(self.io, Step.DOWNLOAD, name, self._download, job)
        self._poll(due, early)
        if self.hooks.on_progress is not None:
            states = [self._job(n).state for n in self.names]
            self.hooks.on_progress(sum(1 for s in states if s in ("done", "failed", "unknown")),
                                   len(states))

    def _poll(self, due: list[tuple[str, str]], early: list[tuple[str, str]]) -> None:
        """Query the due tasks: with POST /v1/tasks/batch while the server offers it, every
        followed task rides along in the same call (at most 50 a call), so a batch of many tasks
        costs one request where it would cost one each; else one GET per due task."""
        every = due + early
        if due and len(every) > 1 and self.batch_queries is not False:
            for start in range(0, len(every), rules.MAX_BATCH_TASK_IDS):
                chunk = every[start:start + rules.MAX_BATCH_TASK_IDS]
                names = [name for name, _task_id in chunk]
                self.busy.update((Step.POLL, name) for name in names)
                self.futures[self.io.submit(read_tasks, self.api, self.gate,
                                            [task_id for _name, task_id in chunk])] = (
                    Step.POLL_MANY, "\n".join(names))
                self.batch_calls += 1
            return
        for name, task_id in due:
            self._submit(self.io, Step.POLL, name, read_task, self.api, self.gate, task_id)

    def _polled_many(self, ident: str, future: Future[Any]) -> None:
        """The answer of one batch query: each job's task, or a fallback to one GET per task."""
        names = ident.split("\n")
        for name in names:
            self.busy.discard((Step.POLL, name))
        try:
            found: dict[str, Task] | None = future.result()
        except PrepError as err:
            # One failed query is one failure, however many tasks rode along in it.
            decision = self._decide(Step.POLL_MANY, "", err)
            for name in names:
                self._poll_failed(name, err, decision)
            return
        self.attempts.pop((Step.POLL_MANY, ""), None)
        if found is None:
            if self.batch_queries is None and self.hooks.on_warning is not None:
                self.hooks.on_warning("this server does not answer several tasks at once (POST "
                                      "/v1/tasks/batch); following each task on its own")
            self.batch_queries = False
            return  # each task is queried on its own when it is due
        self.batch_queries = True
        for name in names:
            task_id = self._job(name).task_id
            task = found.get(task_id or "")
            if task is not None:
                self._polled(name, task)
            else:
                # Unknown ids are simply absent from the answer: ask for this one on its own,
                # which says plainly whether it exists.
                self._submit(self.io, Step.POLL, name, read_task, self.api, self.gate, task_id)

    def _advance_clips(self, job: JobRecord, now: float) -> None:
        """A job before its create: prepare and upload its clips, then send it."""
        failed = [self.clip_errors[k] for k in job.clip_keys if k in self.clip_errors]
        if failed:
            self._fail(job.name, failed[0].message, failed[0].exit_code)
            return
        clips = [self._clip(key) for key in job.clip_keys]
        refs = [self._clip(ref.key) for ref in job.refs]  # ready as they are: only uploaded
        prepared = all(c.prepared_path for c in clips)
        if prepared and job.measured_units is None:
            self._measure(job, [c.prepared_duration_ms or 0 for c in clips])
            job = self._job(job.name)
        if all(c.upload_fresh(now, self.options.upload_margin_s) for c in clips + refs):
            self._send_when_ready(job, [c.file_url or "" for c in clips])
            return
        if prepared and job.state == "pending":
            self.journal.set_state(job.name, "prepared")
            self.hooks.state(job.name, "prepared")
        for clip in clips:
            if not clip.prepared_path and clip.key not in self.clips:
                # A journaled job kept under clips this run did not plan (its row changed).
                self._fail(job.name, f"job {job.name!r}: its clip {clip.source} is not the one the "
                           "manifest names now; give the job a new name to run it with the new "
                           "clips", 2)
                return
            self._advance_clip(job.name, clip, now)
        for ref in refs:
            self._advance_clip(job.name, ref, now)

    def _send_when_ready(self, job: JobRecord, urls: list[str]) -> None:
        """Every clip is uploaded: create the task, unless creating stopped or waits its turn."""
        if job.state != "uploaded":
            self.journal.set_state(job.name, "uploaded")
            self.hooks.state(job.name, "uploaded")
        if self.halted is None and self._idle(Step.CREATE, job.name):
            self._create(job, urls)

    def _clip(self, key: str) -> ClipRecord:
        clip = self.journal.clip(key)
        assert clip is not None
        return clip

    def _prepare_options(self, name: str) -> PrepareOptions:
        """The run's prepare options, held to the rules of job `name`'s model."""
        return self.prepare_options.for_model(self.plans[name].request.spec)

    def _advance_clip(self, name: str, clip: ClipRecord, now: float) -> None:
        """The next step of one clip of job `name`: prepare it, or upload it (again)."""
        if not clip.prepared_path:
            if (Step.PREPARE, clip.key) in self.busy:
                return
            self.hooks.state(name, "preparing", clip.source)
            work = ClipWork(key=clip.key, clip=self.clips[clip.key],
                            out_dir=self._prepared_dir(clip.key),
                            options=self._prepare_options(name), fault=self.options.fault)
            # Progress callbacks cannot cross a process boundary: only in-process pools.
            progress = self.hooks.on_prepare_progress if self.in_process_cpu else None
            self._submit(self.cpu, Step.PREPARE, clip.key, prepare_clip, work, progress)
        elif not clip.upload_fresh(now, self.options.upload_margin_s) and self.halted is None \
                and self._idle(Step.UPLOAD, clip.key):
            self.hooks.state(name, "uploading", clip.source)
            self._submit(self.io, Step.UPLOAD, clip.key, self._upload, clip)

    def _fail(self, name: str, message: str, exit_code: int) -> None:
        self.journal.set_state(name, "failed", error=message, error_exit=exit_code)
        self.hooks.state(name, "failed", message)

    def _measure(self, job: JobRecord, durations_ms: list[int]) -> None:
        """Bill the job again from its prepared clips as measured: what EvoLink will see."""
        request = self.plans[job.name].request
        self.journal.record_measured(job.name, measured_units(
            durations_ms, output_s=request.duration_s, quality=request.quality,
            prices=self.plan.prices, model=request.model, generate_audio=request.generate_audio))

    # -- create

    def _fingerprint(self, name: str, body: dict[str, Any]) -> str:
        """The job's request as `prep.jobs.recover` identifies it (references by content)."""
        job = self._job(name)
        keys = [*job.clip_keys, *(ref.key for ref in job.refs)]
        return fingerprint(body, [self._clip(k).prepared_sha256 for k in keys])

    def _key_for(self, name: str, print_: str) -> str:
        """Reuse the last key when the last request provably made no task or may have made one;
        else the key the request's fingerprint gives (the same after a lost journal)."""
        subs = self.journal.submissions(name)
        if subs and subs[-1].outcome in ("deferred", "abandoned", "unknown", "sending"):
            return subs[-1].idempotency_key
        answered = sum(1 for sub in subs if sub.outcome in ("created", "replayed", "rejected",
                                                            "resolved"))
        return idempotency_key(print_, self.options.output_dir, name, answered)

    def _made_before(self, job: JobRecord, body: dict[str, Any], print_: str, key: str) -> bool:
        """A job never sent from this journal: its result already on disk (its sidecar's
        fingerprint matches: done, nothing sent), or, after a lost journal, a task the service
        lists that may be its own (the job stops as unknown, for the user to settle)."""
        if self.journal.submissions(job.name):
            return False
        found = sidecar_matches(self.options.output_dir, job.name, print_)
        if found is not None:
            self.journal.record_adopted(
                job.name, task_id=found.get("task_id"), path=str(result_path(
                    self.options.output_dir, job.name)), sha256=str(found.get("sha256") or ""),
                size_bytes=int(found.get("size_bytes") or 0),
                credits_reserved_units=found.get("credits_reserved_units"))
            self.hooks.state(job.name, "done", "its result is already here (matching sidecar)")
            return True
        if self.task_list is None:
            return False
        model = str(body.get("model") or "")
        known = {j.task_id for j in self.journal.jobs() if j.task_id}
        candidates = self.task_list.candidates(model, known)
        if candidates == ():
            return False
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.task_list.since))
        seen = (f"EvoLink lists {len(candidates)} task(s) of {model} made since {since}: "
                + ", ".join(candidates[:5])) if candidates else \
            f"EvoLink's task list cannot be read ({self.task_list.unavailable})"
        sub = self.journal.begin_submission(job.name, idempotency_key=key, request=body)
        self.journal.record_unknown(sub, error=f"{LOST_JOURNAL}; {seen}")
        self.hooks.state(job.name, "unknown", seen)
        return True

    def _request(self, name: str, urls: list[str]) -> dict[str, Any]:
        refs = [(ref, self._clip(ref.key).file_url or "") for ref in self._job(name).refs]
        return GenerationRequest(
            options=self.plans[name].request, video_urls=tuple(urls),
            image_urls=tuple(url for ref, url in refs if ref.kind == "image"),
            audio_urls=tuple(url for ref, url in refs if ref.kind == "audio"),
            voice_bindings=tuple((ref.binds or "", url) for ref, url in refs if ref.kind == "voice"),
        ).body()

    def _create(self, job: JobRecord, urls: list[str]) -> None:
        over = over_budget([self._job(n) for n in self.names], self.options.max_cost_units)
        if over is not None:
            self._halt(UsageError(over, hint="raise --max-cost, or remove jobs from the manifest"))
            return
        body = self._request(job.name, urls)
        print_ = self._fingerprint(job.name, body)
        key = self._key_for(job.name, print_)
        if self._made_before(job, body, print_, key):
            return
        # Journaled (and committed) BEFORE the request leaves: a crash after this line is seen
        # on resume as a request that may have reached EvoLink.
        sub = self.journal.begin_submission(job.name, idempotency_key=key, request=body)
        self.hooks.state(job.name, "submitting")
        if fault_matches(self.options.fault, "before-create", job.name):
            kill_self()
        self._submit(self.io, Step.CREATE, job.name, self._send_create, sub, body, key, job.name)

    def _resubmit(self, job: JobRecord) -> None:
        if (Step.CREATE, job.name) in self.busy or self.halted is not None \
                or job.name in self.resubmitted:
            return
        self.resubmitted.add(job.name)
        last = self.journal.last_submission(job.name)
        if last is None:
            return
        # The very same body under the very same key: a server that honours the key replays the
        # first task; one that does not may bill twice (the user asked for this knowingly).
        sub = self.journal.begin_submission(job.name, idempotency_key=last.idempotency_key,
                                            request=last.request)
        self.hooks.state(job.name, "submitting", "re-sending under the same Idempotency-Key")
        self._submit(self.io, Step.CREATE, job.name, self._send_create, sub, last.request,
                     last.idempotency_key, job.name)

    def _send_create(self, sub: int, body: dict[str, Any], key: str, name: str) -> tuple[int, Task]:
        task = create_task(self.api, self.gate, body, key)
        if fault_matches(self.options.fault, "after-create", name):
            kill_self()
        return sub, task

    # -- I/O work (runs on the io executor; returns values, never touches the journal)

    def _upload(self, clip: ClipRecord) -> Uploaded:
        assert clip.prepared_path is not None
        path = Path(clip.prepared_path)
        fault = fault_matches(self.options.fault, "upload")
        report = self.hooks.on_upload_progress

        def progress(sent: int, total: int) -> None:
            if fault and sent >= total // 2:
                kill_self()
            if report is not None:
                report(path, sent, total)

        return upload_clip(self.api, self.gate, path, sha256=clip.prepared_sha256,
                           mode=self.options.upload_mode, cache=self.upload_cache, now=time.time(),
                           margin_s=self.options.upload_margin_s,
                           on_progress=progress if fault or report else None,
                           reference=clip.key.startswith(REFERENCE_KEY_PREFIX))

    def _download(self, job: JobRecord) -> tuple[Path, str, int]:
        report = self.hooks.on_download_progress

        def progress(received: int, total: int | None) -> None:
            self.gate.check()  # a stopping run leaves no `.part` behind (the client removes it)
            if report is not None:
                report(received, total)

        return download_result(self.api, self.fetch, self.gate, url=job.result_url,
                               task_id=job.task_id, dest=result_path(self.options.output_dir, job.name),
                               on_progress=progress)

    # -- results of work (coordinator thread: the only journal writer)

    def _finish(self, step: Step, ident: str, future: Future[Any]) -> None:
        try:
            value = future.result()
        except PrepError as err:
            self._failed(step, ident, err)
            return
        except Exception as err:  # a bug in one job must not take the others down
            self._failed(step, ident, PrepError(f"internal error ({type(err).__name__}: {err}); "
                                                "this is a bug in prep"))
            return
        self.attempts.pop((step, ident), None)
        self._finished[step](ident, value)

    def _warn(self, notes: tuple[str, ...]) -> None:
        for note in notes:
            if self.hooks.on_warning is not None:
                self.hooks.on_warning(note)

    def _prepared(self, key: str, prepared: PreparedClip) -> None:
        self._warn(prepared.notes)
        self.journal.record_prepared(key, path=str(prepared.path), sha256=prepared.sha256,
                                     size_bytes=prepared.size_bytes,
                                     duration_ms=prepared.duration_ms, action=prepared.action)

    def _uploaded(self, key: str, uploaded: Uploaded) -> None:
        self._warn(uploaded.notes)
        self.journal.record_upload(key, file_url=uploaded.file_url, file_id=uploaded.file_id,
                                   expires_at=uploaded.expires_at)

    def _created(self, name: str, answer: tuple[int, Task]) -> None:
        sub, task = answer
        self.journal.record_created(
            sub, task_id=task.id, status=task.status,
            credits_reserved_units=task.credits_reserved_units,
            outcome="replayed" if task.replayed else "created")
        self.polls[name] = _Poll(due=time.time() + self.poll_initial_s,
                                 interval=self.poll_initial_s)
        self._report_task(task)
        self.hooks.state(name, "running", f"task {task.id}" + (" (replayed)" if task.replayed
                                                               else ""))

    def _downloaded(self, name: str, saved: tuple[Path, str, int]) -> None:
        path, digest, size = saved
        self.journal.record_result(name, path=str(path), sha256=digest, size_bytes=size)
        self._write_sidecar(name, digest, size)
        self.hooks.state(name, "done", str(path))

    def _write_sidecar(self, name: str, digest: str, size: int) -> None:
        """The result remembers what was paid for it (read back after a lost journal)."""
        sub = self.journal.last_submission(name)
        job = self._job(name)
        if sub is None:
            return
        try:
            write_sidecar(self.options.output_dir, name, print_=self._fingerprint(name, sub.request),
                          task_id=job.task_id, credits_reserved_units=job.credits_reserved_units,
                          idempotency_key=sub.idempotency_key, model=sub.request.get("model"),
                          sha256=digest, size_bytes=size)
        except OSError as err:
            self._warn((f"{name}: its sidecar could not be written ({err.strerror or err})",))

    def _report_task(self, task: Task) -> None:
        if self.hooks.on_task is not None:
            self.hooks.on_task(task)

    def _polled(self, name: str, task: Task) -> None:
        self.attempts.pop((Step.POLL, name), None)
        poll = self.polls[name]
        self._report_task(task)
        if task.status in ("failed", "cancelled"):
            reason = task.error_message or task.status
            self.journal.record_task(name, status=task.status, progress=task.progress,
                                     credits_reserved_units=task.credits_reserved_units)
            self.journal.set_state(name, "failed", error=f"task {task.id} {task.status}: {reason} "
                                   "(failed tasks are not billed)", error_exit=TaskFailedError.exit_code)
            self.hooks.state(name, "failed", reason)
            return
        result_url = task.results[0] if task.results else None
        self.journal.record_task(name, status=task.status, progress=task.progress,
                                 credits_reserved_units=task.credits_reserved_units,
                                 result_url=result_url)
        if task.status == "completed":
            self.hooks.state(name, "completed", f"task {task.id}")
            return
        self.hooks.state(name, "running", f"{task.progress}%")
        poll.due = time.time() + poll.interval
        poll.interval = min(poll.interval * 1.5, self.poll_max_s)

    # -- failures: `decide` says what follows, the runner carries it out

    def _decide(self, step: Step, ident: str, err: PrepError) -> Decision:
        """The policy's decision on a failed step, with what it means for the whole run applied
        (the count of failures in a row, a pause of every call, no more creates)."""
        attempts = self.attempts.get((step, ident), 0) + 1
        decision = decide(step, err, attempts, self.pacing)
        if decision.counted:
            self.attempts[(step, ident)] = attempts
        if decision.halt:
            self._halt(err)
        if decision.pause_run:
            self.gate.backoff(decision.delay_ms / 1000)
        return decision

    def _failed(self, step: Step, ident: str, err: PrepError) -> None:
        decision = self._decide(step, ident, err)
        if step is Step.CREATE:
            self._create_failed(ident, err, decision)
        elif step is Step.POLL:
            self._poll_failed(ident, err, decision)
        elif decision.verdict in (Verdict.PACE, Verdict.RETRY):
            self.retry_at[(step, ident)] = time.time() + decision.delay_ms / 1000
        elif step is Step.DOWNLOAD:
            self._fail(ident, err.message,
                       err.exit_code if decision.exit_code is None else decision.exit_code)
        else:  # a clip that cannot be prepared or uploaded fails the jobs that use it
            self.clip_errors[ident] = err

    def _poll_failed(self, name: str, err: PrepError, decision: Decision) -> None:
        if decision.verdict is Verdict.STOP_FOLLOWING:
            task_id = self._job(name).task_id
            self.journal.note_error(name, f"stopped following task {task_id} ({err.message}); "
                                    "the task goes on at EvoLink", err.exit_code)
            self.given_up.add(name)
            self.hooks.state(name, "running", f"stopped following: {err.message}")
        else:
            self.polls[name].due = time.time() + decision.delay_ms / 1000

    def _create_failed(self, name: str, err: PrepError, decision: Decision) -> None:
        sub = self.journal.last_submission(name)
        assert sub is not None
        status = err.status if isinstance(err, ApiError) else None
        verdict = decision.verdict
        if verdict is Verdict.UNKNOWN:
            self.journal.record_unknown(sub.id, error=err.message)
            self.hooks.state(name, "unknown", err.message)
            return
        if verdict is Verdict.FAIL:
            self.journal.record_rejected(sub.id, error=err.message, error_exit=err.exit_code,
                                         http_status=status)
            self.hooks.state(name, "failed", err.message)
            return
        # Every other verdict: the server provably did not take it (429, no connection, 402,
        # 401/403, a reference it could not fetch), so the job is ready to be sent again.
        self.journal.record_retryable(sub.id, error=err.message, http_status=status)
        if verdict in (Verdict.PACE, Verdict.RETRY):
            self.retry_at[(Step.CREATE, name)] = time.time() + decision.delay_ms / 1000
            why = "rate limited" if verdict is Verdict.PACE else "EvoLink cannot be reached"
            self.hooks.state(name, "uploaded", f"waiting: {why}")
        elif verdict is Verdict.REFRESH:
            self._upload_again(name, err)
        elif not decision.halt:  # a halt says it on every job left (finalize)
            self.journal.note_error(name, f"not submitted: {err.message}", err.exit_code)
            self.given_up.add(name)
            self.hooks.state(name, "uploaded", f"not submitted: {err.message}")

    def _upload_again(self, name: str, err: PrepError) -> None:
        """The server could not use an uploaded reference (expired early or deleted): upload
        afresh, and send again (the 400 proves no task was made)."""
        job = self._job(name)
        for key in [*job.clip_keys, *(ref.key for ref in job.refs)]:
            clip = self.journal.clip(key)
            if self.upload_cache is not None and clip is not None and clip.prepared_sha256:
                self.upload_cache.forget(clip.prepared_sha256, self.api.files_url)
            self.journal.forget_upload(key, f"the server refused it: {err.message}")
        self.journal.set_state(name, "prepared", detail="references refused: uploading again")

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

    def wind_down(self, limit_s: float = 1.5) -> None:
        """After Ctrl-C (creates settled): stop every call and pause, kill the encodes running
        here, and give the threads a moment to clean up (a `.part`, an encode's temp file)."""
        from prep.media.ffmpeg import stop_running

        self.gate.stop()
        pending = [f for f in self.futures if not f.done()]
        end = time.monotonic() + limit_s
        while pending and time.monotonic() < end:
            stop_running()  # again each round: a thread may have started its next ffmpeg
            pending = list(wait(pending, timeout=0.1).not_done)

    def left(self) -> str:
        """What a stopped run leaves, in words: jobs done, tasks still running, jobs not sent."""
        states = [self._job(n).state for n in self.names]
        counts = [(sum(1 for s in states if s == "done"), "done"),
                  (sum(1 for s in states if s in ("submitting", "running", "completed")),
                   "with a task still to follow or download"),
                  (sum(1 for s in states if s == "unknown"), "with an unknown outcome"),
                  (sum(1 for s in states if s == "failed"), "failed"),
                  (sum(1 for s in states if s in ("pending", "prepared", "uploaded")), "not sent")]
        return ", ".join(f"{n} {what}" for n, what in counts if n) or "nothing"

    def stop_in_flight_creates(self, timeout_s: float = 30.0) -> None:
        """After Ctrl-C: wait a little for create requests already sent, and journal their answers."""
        creates = [f for f, (step, _) in self.futures.items() if step is Step.CREATE]
        if not creates:
            return
        done, _ = wait(creates, timeout=timeout_s)
        for future in done:
            step, ident = self.futures.pop(future)
            self._finish(step, ident, future)


def retry_policy(pacing: Pacing) -> RetryPolicy:
    from prep.api.client import RetryPolicy

    return RetryPolicy(attempts=pacing.retry_attempts, base_delay_s=pacing.retry_base_ms / 1000,
                       max_delay_s=20 * pacing.retry_base_ms / 1000)


def engine_client(settings: Settings, gate: RateGate, pacing: Pacing = DEFAULT_PACING) -> Client:
    """The client a run talks to EvoLink through: the run's retries, each back-off braking every
    call of the run (`gate`). The caller closes it."""
    from prep.api.client import Client

    return Client.from_settings(settings, retry=retry_policy(pacing), sleep=gate.sleep)


def run_batch(
    plan: BatchPlan,
    settings: Settings,
    options: BatchOptions,
    *,
    extend: Extend | None = None,
    hooks: RunHooks | None = None,
    cpu_executor: Executor | None = None,
    io_executor: Executor | None = None,
    client: Client | None = None,
    journal: Journal | None = None,
    gate: RateGate | None = None,
) -> BatchResult:
    """Run (or resume) every job of `plan` into `options.output_dir`; see the module docstring.

    `cpu_executor` takes `prepare_clip` calls (default: a thread pool of `options.cpu_workers`);
    any concurrent.futures-style Executor works, e.g. Dask's `Client.get_executor()`. `client`
    is used as it is (default: `engine_client`, closed at the end); downloads share its
    connections. `journal` is the output folder's journal when the caller holds it open (it
    stays open); `gate` the rate gate every API call passes (default: one of
    `options.concurrency`).
    """
    from prep.api.client import PollPolicy
    from prep.api.upload import UploadCache
    from prep.media.prepare import PrepareOptions

    if not settings.api_key:
        raise AuthError("no EvoLink API key is configured",
                        hint="set EVOLINK_API_KEY, or run `prep config set api_key`; --dry-run "
                             "works without one")
    started = time.monotonic()
    hooks = hooks or RunHooks()
    out = options.output_dir
    try:
        prepared_root(out).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{out}: the output folder cannot be written ({err.strerror or err})",
                         hint="choose another folder with -o") from err
    gate = gate or RateGate(options.concurrency)
    pacing = options.pacing
    api = client or engine_client(settings, gate, pacing)
    # Downloads (of result files, off the API's hosts) retry on their own: no brake on the run.
    fetch = api.with_policy(retry=retry_policy(pacing), sleep=gate.nap)
    own_cpu = cpu_executor is None
    own_io = io_executor is None
    cpu = cpu_executor or ThreadPoolExecutor(options.cpu_workers, thread_name_prefix="prep-cpu")
    io = io_executor or ThreadPoolExecutor(options.concurrency + 2, thread_name_prefix="prep-io")
    # On a Dask cluster each worker finds its own ffmpeg (None): this machine's path may not be
    # the workers'. Threads and local processes use this machine's.
    remote = cpu_executor is not None and not isinstance(
        cpu_executor, (ThreadPoolExecutor, ProcessPoolExecutor))
    prepare_kwargs: dict[str, Any] = {"extend": extend, "cache_dir": settings.cache_dir,
                                      "ffmpeg": None if remote else settings.ffmpeg,
                                      "use_cache": options.use_cache}
    if options.profile:
        prepare_kwargs["profile"] = options.profile
    prepare_options = PrepareOptions(**prepare_kwargs)
    upload_cache = UploadCache(settings.cache_dir / "uploads") if options.use_cache else None
    poll = PollPolicy.for_settings(
        settings, deadline_s=None,
        initial_s=None if pacing.poll_initial_ms is None else pacing.poll_initial_ms / 1000,
        max_s=None if pacing.poll_max_ms is None else pacing.poll_max_ms / 1000)
    interrupted = False
    halted: PrepError | None = None
    # A run of our own takes the folder's lock for its whole life, before opening the journal
    # (a caller that hands in its journal holds the lock already).
    lock = contextlib.nullcontext() if journal is not None else \
        RunLock(out).acquire(wait=options.wait_lock, on_wait=hooks.on_warning)
    with lock, (contextlib.nullcontext(journal) if journal is not None
                else Journal.open(out, for_run=True)) as journal:
        journal.set_meta("manifest", plan.manifest.source)
        if plan.manifest.timeline is not None:
            journal.set_meta("timeline", json.dumps(plan.manifest.timeline, sort_keys=True))
        journal.set_meta("base_url", settings.base_url)
        runner = _Runner(plan, journal, settings, options, api=api, fetch=fetch, gate=gate, cpu=cpu,
                         io=io, hooks=hooks, prepare_options=prepare_options, extend=extend,
                         poll=poll, upload_cache=upload_cache,
                         in_process_cpu=own_cpu or isinstance(cpu, ThreadPoolExecutor))
        try:
            if options.check_credits:
                # Before anything is prepared or uploaded: the rest of the batch must be payable.
                check_balance(jobs_to_pay(plan, out, retry_failed=options.retry_failed), api,
                              on_note=hooks.on_warning, batch=len(plan.jobs) > 1)
            for warning in sync_journal(plan, journal, extend=extend):
                if hooks.on_warning is not None:
                    hooks.on_warning(warning)
            runner.reconcile()
            runner.read_task_list()
            runner.run()
            runner.finalize()
        except KeyboardInterrupt:
            interrupted = True
            runner.stop_in_flight_creates()
            runner.wind_down()
        finally:
            if own_cpu:
                cpu.shutdown(wait=not interrupted, cancel_futures=True)
            if own_io:
                io.shutdown(wait=not interrupted, cancel_futures=True)
            if client is None:
                api.close()
        halted = runner.halted
        left = runner.left()
        rows = batch_status(journal, now=time.time(), upload_margin_s=0)
    names = {j.name for j in plan.jobs}
    result = BatchResult(jobs=tuple(r for r in rows if r.name in names), interrupted=interrupted,
                         halted=halted.message if halted else None, halted_error=halted,
                         timed_out=runner.timed_out,
                         rate_limit_pauses=gate.backoffs, elapsed_s=time.monotonic() - started,
                         batch_queries=runner.batch_calls)
    if interrupted:
        raise Interrupted(f"stopped: {left}; finished steps are kept in the journal",
                          hint=f"run the same command again to resume ({out}); tasks already "
                               "made go on at EvoLink and are not paid again")
    return result
