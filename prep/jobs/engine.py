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
work and return values (`prep.jobs.steps`). The runner keeps the loop and hands each job to the
collaborator that knows its stage, all sharing one `prep.jobs.runstate.RunState`:

- `prep.jobs.clips.ClipPipeline`: prepare, measure and upload a job's clips and references;
- `prep.jobs.creating.TaskCreator`: the create request, journaled before it is sent;
- `prep.jobs.identity.TaskIdentity`: the request's fingerprint and Idempotency-Key, and whether
  its task was made before (a matching sidecar, a lost journal's task list);
- `prep.jobs.following.Follower`: the task queries and the download of each result.

Every step is journaled as it completes, and a create request is journaled before it is sent, so
the run can be killed at any moment and resumed by running the same command. What a resumed run
does with each job is decided first, by `prep.jobs.reconcile`; what a failed step leads to (pace,
retry, stop following, fail the job, stop creating) by `prep.jobs.policy.decide`, with the run's
patience in `BatchOptions.pacing`; the rate brake and the credit cap live in `prep.jobs.budget`.
"""

from __future__ import annotations

import contextlib
import json
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

from prep.errors import AuthError, Interrupted, PrepError, UsageError
from prep.jobs.budget import RateGate, check_balance, jobs_to_pay
from prep.jobs.clips import ClipPipeline
from prep.jobs.creating import TaskCreator
from prep.jobs.following import Follower
from prep.jobs.identity import TaskIdentity
from prep.jobs.journal import FOLLOWED, NOT_SENT, SETTLED, Journal
from prep.jobs.layout import prepared_root, result_path
from prep.jobs.lock import RunLock
from prep.jobs.options import UPLOAD_MARGIN_S, BatchOptions, RunHooks, default_cpu_workers
from prep.jobs.planning import BatchPlan
from prep.jobs.policy import DEFAULT_PACING, Decision, Pacing, Step
from prep.jobs.reconcile import reconcile, sync_journal
from prep.jobs.runstate import RunState
from prep.jobs.status import JobStatus, batch_status

if TYPE_CHECKING:
    from prep.api.client import Client, PollPolicy, RetryPolicy
    from prep.api.upload import UploadCache
    from prep.core.window import Extend
    from prep.media.prepare import PrepareOptions
    from prep.settings import Settings

__all__ = [
    "UPLOAD_MARGIN_S",
    "BatchOptions",
    "BatchResult",
    "RunHooks",
    "default_cpu_workers",
    "engine_client",
    "outcome_of",
    "result_path",
    "run_batch",
]


# -- results -----------------------------------------------------------------------------------


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


# -- the run -----------------------------------------------------------------------------------


class _Runner:
    """The coordinator: one thread schedules every step, hands work to the pools and hands what
    comes back to the collaborator of its step, which journals it. What a failed step leads to is
    `prep.jobs.policy.decide`'s call (`RunState.decide`)."""

    def __init__(self, state: RunState, *, prepare_options: PrepareOptions, extend: Extend | None,
                 poll: PollPolicy, upload_cache: UploadCache | None, in_process_cpu: bool) -> None:
        self.state = state
        self.identity = TaskIdentity(state)
        self.clips = ClipPipeline(state, prepare_options=prepare_options, extend=extend,
                                  upload_cache=upload_cache, in_process_cpu=in_process_cpu)
        self.follower = Follower(state, self.identity, poll)
        self.creator = TaskCreator(state, self.identity, self.clips, self.follower)
        self._finished: dict[Step, Callable[[str, Any], None]] = {
            Step.PREPARE: self.clips.prepared, Step.UPLOAD: self.clips.uploaded,
            Step.CREATE: self.creator.created, Step.POLL: self.follower.polled,
            Step.DOWNLOAD: self.follower.downloaded,
        }
        self._failed: dict[Step, Callable[[str, PrepError, Decision], None]] = {
            Step.PREPARE: self.clips.prepare_failed, Step.UPLOAD: self.clips.upload_failed,
            Step.CREATE: self.creator.failed, Step.POLL: self.follower.poll_failed,
            Step.DOWNLOAD: self.follower.download_failed,
        }

    def reconcile(self) -> None:
        """What the journal says about each job, settled before anything is sent."""
        state = self.state
        found = reconcile(state.journal, state.names, retry_failed=state.options.retry_failed)
        now = time.time()
        for name in found.to_follow:
            self.follower.follow(name, due=now)

    def read_task_list(self) -> None:
        """After a lost journal: the service's recent tasks, before anything is sent."""
        self.identity.read_task_list()

    # -- the loop

    def run(self) -> None:
        state = self.state
        while True:
            self.follower.check_deadline()
            self.clips.report_encoding()
            self._schedule()
            if not state.futures:
                if self._waiting_for_time():
                    time.sleep(self._next_wake())
                    continue
                break
            done, _ = wait(list(state.futures), timeout=self._next_wake(),
                           return_when=FIRST_COMPLETED)
            for future in done:
                step, ident = state.futures.pop(future)
                if step is Step.POLL_MANY:
                    self.follower.polled_many(ident, future)
                    continue
                state.busy.discard((step, ident))
                self._finish(step, ident, future)

    def _waiting_for_time(self) -> bool:
        """Whether a poll or a deferred step is still due (nothing else may be in flight)."""
        return self.state.deferred_waiting() or self.follower.waiting()

    def _next_wake(self) -> float:
        now = time.time()
        times = self.follower.wake_times() + list(self.state.retry_at.values())
        if not times:
            return 0.5
        return min(max(min(times) - now, 0.01), 0.5)

    def _schedule(self) -> None:
        """Each job's next step, by its journaled state; then the task queries that are due."""
        state = self.state
        options = state.options
        now = time.time()
        due: list[tuple[str, str]] = []  # (job, task id) whose query is due
        early: list[tuple[str, str]] = []  # followed tasks not due yet: they ride along
        for name in state.names:
            if name in state.given_up:
                continue
            job = state.job(name)
            if job.state in NOT_SENT:
                ready = self.clips.advance(job, now)
                if ready is not None:
                    self.creator.send_when_ready(*ready)
            elif job.state == "unknown" and options.resubmit_unknown:
                self.creator.resubmit(job)
            elif job.state == "running" and options.follow:
                self.follower.take_turn(job, now, due, early)
            elif job.state == "completed" and state.idle(Step.DOWNLOAD, name):
                self.follower.download(job)
        self.follower.poll(due, early)
        if state.hooks.on_progress is not None:
            states = [state.job(n).state for n in state.names]
            state.hooks.on_progress(sum(1 for s in states if s in SETTLED), len(states))

    def _finish(self, step: Step, ident: str, future: Future[Any]) -> None:
        """A step's work came back: journal its value, or carry out the policy's decision."""
        state = self.state
        try:
            value = future.result()
        except PrepError as err:
            self._failed[step](ident, err, state.decide(step, ident, err))
            return
        except Exception as err:  # a bug in one job must not take the others down
            bug = PrepError(f"internal error ({type(err).__name__}: {err}); this is a bug in prep")
            self._failed[step](ident, bug, state.decide(step, ident, bug))
            return
        state.attempts.pop((step, ident), None)
        self._finished[step](ident, value)

    # -- the end

    def finalize(self) -> None:
        """Say on each job that never got its turn why not (the batch stopped submitting)."""
        state = self.state
        if state.halted is None:
            return
        for name in state.names:
            job = state.job(name)
            if job.state in NOT_SENT and not job.error:
                state.journal.note_error(name, f"not submitted: {state.halted.message}",
                                         state.halted.exit_code)

    def wind_down(self, limit_s: float = 1.5) -> None:
        """After Ctrl-C (creates settled): stop every call and pause, kill the encodes running
        here, and give the threads a moment to clean up (a `.part`, an encode's temp file)."""
        from prep.media.ffmpeg import stop_running

        self.state.gate.stop()
        pending = [f for f in self.state.futures if not f.done()]
        end = time.monotonic() + limit_s
        while pending and time.monotonic() < end:
            stop_running()  # again each round: a thread may have started its next ffmpeg
            pending = list(wait(pending, timeout=0.1).not_done)

    def left(self) -> str:
        """What a stopped run leaves, in words: jobs done, tasks still running, jobs not sent."""
        states = [self.state.job(n).state for n in self.state.names]
        groups = [(("done",), "done"),
                  ((*FOLLOWED, "completed"), "with a task still to follow or download"),
                  (("unknown",), "with an unknown outcome"),
                  (("failed",), "failed"),
                  (NOT_SENT, "not sent")]
        counts = [(sum(1 for s in states if s in group), what) for group, what in groups]
        return ", ".join(f"{n} {what}" for n, what in counts if n) or "nothing"

    def stop_in_flight_creates(self, timeout_s: float = 30.0) -> None:
        """After Ctrl-C: wait a little for create requests already sent, and journal their answers."""
        state = self.state
        creates = [f for f, (step, _) in state.futures.items() if step is Step.CREATE]
        if not creates:
            return
        done, _ = wait(creates, timeout=timeout_s)
        for future in done:
            step, ident = state.futures.pop(future)
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


# -- run_batch and its steps -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pools:
    """The run's executors: the caller's, or thread pools of the run's own (shut down at the end)."""

    cpu: Executor
    io: Executor
    own_cpu: bool
    own_io: bool

    @classmethod
    def for_run(cls, options: BatchOptions, cpu: Executor | None, io: Executor | None) -> _Pools:
        return cls(
            cpu=cpu or ThreadPoolExecutor(options.cpu_workers, thread_name_prefix="prep-cpu"),
            io=io or ThreadPoolExecutor(options.concurrency + 2, thread_name_prefix="prep-io"),
            own_cpu=cpu is None, own_io=io is None)

    @property
    def in_process_cpu(self) -> bool:
        """Whether encodes run in this process (their progress callbacks reach the caller)."""
        return self.own_cpu or isinstance(self.cpu, ThreadPoolExecutor)

    @property
    def remote_cpu(self) -> bool:
        """A cluster's executor (Dask): its workers may not see this machine's paths."""
        return not self.own_cpu and not isinstance(self.cpu, (ThreadPoolExecutor,
                                                              ProcessPoolExecutor))

    def shutdown(self, *, wait: bool) -> None:
        """Stop the pools of the run's own (without waiting after Ctrl-C)."""
        if self.own_cpu:
            self.cpu.shutdown(wait=wait, cancel_futures=True)
        if self.own_io:
            self.io.shutdown(wait=wait, cancel_futures=True)


def _require_key(settings: Settings) -> None:
    if not settings.api_key:
        raise AuthError("no EvoLink API key is configured",
                        hint="set EVOLINK_API_KEY, or run `prep config set api_key`; --dry-run "
                             "works without one")


def _make_output_folder(out: Path) -> None:
    try:
        prepared_root(out).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{out}: the output folder cannot be written ({err.strerror or err})",
                         hint="choose another folder with -o") from err


def _prepare_options(settings: Settings, options: BatchOptions, extend: Extend | None, *,
                     remote: bool) -> PrepareOptions:
    """How clips are prepared. On a Dask cluster each worker finds its own ffmpeg (None): this
    machine's path may not be the workers'. Threads and local processes use this machine's."""
    from prep.media.prepare import PrepareOptions

    kwargs: dict[str, Any] = {"extend": extend, "cache_dir": settings.cache_dir,
                              "ffmpeg": None if remote else settings.ffmpeg,
                              "use_cache": options.use_cache}
    if options.profile:
        kwargs["profile"] = options.profile
    return PrepareOptions(**kwargs)


def _poll_policy(settings: Settings, pacing: Pacing) -> PollPolicy:
    """How often tasks are asked about: the settings', unless the run's pacing says otherwise."""
    from prep.api.client import PollPolicy

    return PollPolicy.for_settings(
        settings, deadline_s=None,
        initial_s=None if pacing.poll_initial_ms is None else pacing.poll_initial_ms / 1000,
        max_s=None if pacing.poll_max_ms is None else pacing.poll_max_ms / 1000)


def _upload_cache(settings: Settings, options: BatchOptions) -> UploadCache | None:
    from prep.api.upload import UploadCache

    return UploadCache(settings.cache_dir / "uploads") if options.use_cache else None


def _held_folder(out: Path, journal: Journal | None, options: BatchOptions,
                 hooks: RunHooks) -> contextlib.AbstractContextManager[object]:
    """A run of our own takes the folder's lock for its whole life, before opening the journal
    (a caller that hands in its journal holds the lock already)."""
    if journal is not None:
        return contextlib.nullcontext()
    return RunLock(out).acquire(wait=options.wait_lock, on_wait=hooks.on_warning)


def _journal_of(out: Path, journal: Journal | None) -> contextlib.AbstractContextManager[Journal]:
    """The caller's journal (left open), or the folder's, opened for this run (closed after it)."""
    return contextlib.nullcontext(journal) if journal is not None else \
        Journal.open(out, for_run=True)


def _note_run(journal: Journal, plan: BatchPlan, settings: Settings) -> None:
    """What the journal keeps about the run: its manifest (and timeline), and its server."""
    journal.set_meta("manifest", plan.manifest.source)
    if plan.manifest.timeline is not None:
        journal.set_meta("timeline", json.dumps(plan.manifest.timeline, sort_keys=True))
    journal.set_meta("base_url", settings.base_url)


def _run_to_end(runner: _Runner, plan: BatchPlan, extend: Extend | None) -> None:
    """The credits, the journal brought up to the plan, what it says settled; then every step."""
    state = runner.state
    options, hooks = state.options, state.hooks
    if options.check_credits:
        # Before anything is prepared or uploaded: the rest of the batch must be payable.
        check_balance(jobs_to_pay(plan, options.output_dir, retry_failed=options.retry_failed),
                      state.api, on_note=hooks.on_warning, batch=len(plan.jobs) > 1)
    for warning in sync_journal(plan, state.journal, extend=extend):
        if hooks.on_warning is not None:
            hooks.on_warning(warning)
    runner.reconcile()
    runner.read_task_list()
    runner.run()
    runner.finalize()


def _drive(runner: _Runner, plan: BatchPlan, extend: Extend | None, pools: _Pools,
           own_api: Client | None) -> bool:
    """Run to the end; True when Ctrl-C stopped it (creates in flight settled first, encodes
    killed). The run's own pools and client are closed either way."""
    interrupted = False
    try:
        _run_to_end(runner, plan, extend)
    except KeyboardInterrupt:
        interrupted = True
        runner.stop_in_flight_creates()
        runner.wind_down()
    finally:
        pools.shutdown(wait=not interrupted)
        if own_api is not None:
            own_api.close()
    return interrupted


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
    _require_key(settings)
    started = time.monotonic()
    hooks = hooks or RunHooks()
    out = options.output_dir
    _make_output_folder(out)
    gate = gate or RateGate(options.concurrency)
    api = client or engine_client(settings, gate, options.pacing)
    # Downloads (of result files, off the API's hosts) retry on their own: no brake on the run.
    fetch = api.with_policy(retry=retry_policy(options.pacing), sleep=gate.nap)
    pools = _Pools.for_run(options, cpu_executor, io_executor)
    prepare_options = _prepare_options(settings, options, extend, remote=pools.remote_cpu)
    upload_cache = _upload_cache(settings, options)
    poll = _poll_policy(settings, options.pacing)
    driven = False
    try:
        with _held_folder(out, journal, options, hooks), _journal_of(out, journal) as journal:
            _note_run(journal, plan, settings)
            state = RunState(plan=plan, journal=journal, options=options, hooks=hooks, api=api,
                             fetch=fetch, gate=gate, cpu=pools.cpu, io=pools.io)
            runner = _Runner(state, prepare_options=prepare_options, extend=extend, poll=poll,
                             upload_cache=upload_cache, in_process_cpu=pools.in_process_cpu)
            driven = True
            interrupted = _drive(runner, plan, extend, pools, api if client is None else None)
            left = runner.left()
            rows = batch_status(journal, now=time.time(), upload_margin_s=0)
    finally:
        if not driven:  # the folder is busy or its journal unreadable: nothing ran
            pools.shutdown(wait=False)
            if client is None:
                api.close()
    halted = state.halted
    names = set(state.names)
    result = BatchResult(jobs=tuple(r for r in rows if r.name in names), interrupted=interrupted,
                         halted=halted.message if halted else None, halted_error=halted,
                         timed_out=runner.follower.timed_out,
                         rate_limit_pauses=gate.backoffs, elapsed_s=time.monotonic() - started,
                         batch_queries=runner.follower.batch_calls)
    if interrupted:
        raise Interrupted(f"stopped: {left}; finished steps are kept in the journal",
                          hint=f"run the same command again to resume ({out}); tasks already "
                               "made go on at EvoLink and are not paid again")
    return result
