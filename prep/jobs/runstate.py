"""What the runner and its collaborators share while a run goes: the run's inputs, the work in
flight, the failures counted, the steps waiting out a pause, and whether creating has stopped.

The runner (`prep.jobs.engine`) owns one `RunState` and hands it to each collaborator
(`prep.jobs.clips`, `identity`, `creating`, `following`); all of them run on the one coordinator
thread, so nothing here is locked. Workers never see it: they get values and return values
(`prep.jobs.steps`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prep.errors import PrepError
from prep.jobs.policy import Decision, Step, decide

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

    from prep.api.client import Client, Task
    from prep.jobs.budget import RateGate
    from prep.jobs.journal import ClipRecord, JobRecord, Journal
    from prep.jobs.options import BatchOptions, RunHooks
    from prep.jobs.planning import BatchPlan, JobPlan

__all__ = ["RunState", "Work"]

Work = tuple[Step, str]  # a step and what it works on: a clip key, or a job name


@dataclass(slots=True, kw_only=True)
class RunState:
    """One run's shared state (coordinator thread only; the journal's one writer)."""

    plan: BatchPlan
    journal: Journal
    options: BatchOptions
    hooks: RunHooks
    api: Client
    fetch: Client  # downloads: the API's connections, retrying on their own
    gate: RateGate
    cpu: Executor
    io: Executor
    futures: dict[Future[Any], Work] = field(default_factory=dict)
    busy: set[Work] = field(default_factory=set)  # in flight (a query for several: one POLL per job)
    # Counted failures in a row of each step (a success clears them); the queries for several
    # tasks at once are counted as one, under (POLL_MANY, "").
    attempts: dict[Work, int] = field(default_factory=dict)
    retry_at: dict[Work, float] = field(default_factory=dict)  # a step waiting out a pause
    halted: PrepError | None = None  # why creating stopped for the rest of the run
    given_up: set[str] = field(default_factory=set)  # jobs this run does no more for
    started: float = field(default_factory=time.monotonic)
    names: list[str] = field(init=False)
    plans: dict[str, JobPlan] = field(init=False)

    def __post_init__(self) -> None:
        self.names = [j.name for j in self.plan.jobs]
        self.plans = {j.name: j for j in self.plan.jobs}

    def job(self, name: str) -> JobRecord:
        job = self.journal.job(name)
        assert job is not None
        return job

    def clip(self, key: str) -> ClipRecord:
        clip = self.journal.clip(key)
        assert clip is not None
        return clip

    # -- work in flight and waiting

    def submit(self, executor: Executor, step: Step, ident: str, fn: Callable[..., Any],
               *args: Any) -> None:
        self.busy.add((step, ident))
        self.futures[executor.submit(fn, *args)] = (step, ident)

    def ready(self, step: Step, ident: str) -> bool:
        """Not waiting out a pause (a pause that has passed is cleared)."""
        when = self.retry_at.get((step, ident))
        if when is None:
            return True
        if when <= time.time():
            del self.retry_at[(step, ident)]
            return True
        return False

    def idle(self, step: Step, ident: str) -> bool:
        """Neither in flight nor waiting out a pause."""
        return (step, ident) not in self.busy and self.ready(step, ident)

    def defer(self, step: Step, ident: str, decision: Decision) -> None:
        """Try the step again once the decision's pause has passed."""
        self.retry_at[(step, ident)] = time.time() + decision.delay_ms / 1000

    def deferred_waiting(self) -> bool:
        """Whether a paused step will still be tried this run (a download; an upload or a
        create while creating goes on)."""
        for step, ident in self.retry_at:
            if step is Step.DOWNLOAD and ident not in self.given_up:
                return True
            if step in (Step.CREATE, Step.UPLOAD) and self.halted is None \
                    and ident not in self.given_up:
                return True
        return False

    # -- failures: `decide` says what follows, the collaborators carry it out

    def decide(self, step: Step, ident: str, err: PrepError) -> Decision:
        """The policy's decision on a failed step, with what it means for the whole run applied
        (the count of failures in a row, a pause of every call, no more creates)."""
        attempts = self.attempts.get((step, ident), 0) + 1
        decision = decide(step, err, attempts, self.options.pacing)
        if decision.counted:
            self.attempts[(step, ident)] = attempts
        if decision.halt:
            self.halt(err)
        if decision.pause_run:
            self.gate.backoff(decision.delay_ms / 1000)
        return decision

    def halt(self, err: PrepError) -> None:
        """Stop creating for the rest of the run (the first reason is the one kept)."""
        if self.halted is None:
            self.halted = err

    def fail(self, name: str, message: str, exit_code: int) -> None:
        self.journal.set_state(name, "failed", error=message, error_exit=exit_code)
        self.hooks.state(name, "failed", message)

    # -- telling the caller

    def warn(self, notes: tuple[str, ...]) -> None:
        for note in notes:
            if self.hooks.on_warning is not None:
                self.hooks.on_warning(note)

    def report_task(self, task: Task) -> None:
        if self.hooks.on_task is not None:
            self.hooks.on_task(task)
