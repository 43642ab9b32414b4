"""Following created tasks until their results are downloaded.

`Follower` keeps when each job's task is next asked about (its interval growing up to the poll
policy's longest), asks for several tasks with one POST /v1/tasks/batch while the server offers
it (else one GET each), journals each answer, downloads each completed task's result and writes
its sidecar. A task that is gone, or that keeps failing to answer, stops being followed; the
task goes on at EvoLink and the next run follows it again. A `--deadline` stops following too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prep.core import rules
from prep.errors import PrepError, TaskFailedError
from prep.jobs.journal import FOLLOWED
from prep.jobs.layout import result_path
from prep.jobs.policy import Decision, Step, Verdict
from prep.jobs.steps import download_result, fault_matches, kill_self, read_task, read_tasks

if TYPE_CHECKING:
    from concurrent.futures import Future

    from prep.api.client import PollPolicy, Task
    from prep.jobs.identity import TaskIdentity
    from prep.jobs.journal import JobRecord
    from prep.jobs.runstate import RunState

__all__ = ["Follower"]

Due = list[tuple[str, str]]  # (job, task id) pairs to ask about


@dataclass(slots=True)
class _Poll:
    due: float  # when the task is next asked about (time.time())
    interval: float


class Follower:
    """When to ask about each task, the asking, and the download once it completed."""

    def __init__(self, state: RunState, identity: TaskIdentity, poll: PollPolicy) -> None:
        self.state = state
        self.identity = identity
        self.polls: dict[str, _Poll] = {}
        self.poll_initial_s = poll.initial_s
        self.poll_max_s = poll.max_s
        # None: not tried yet; False: the server does not offer POST /v1/tasks/batch (for the run)
        self.batch_queries: bool | None = None if state.options.batch_queries else False
        self.batch_calls = 0  # POST /v1/tasks/batch calls made
        self.timed_out = False  # the deadline stopped following a task still going

    def follow(self, name: str, due: float) -> None:
        """Ask about job `name`'s task from `due` on, at the first interval."""
        self.polls[name] = _Poll(due=due, interval=self.poll_initial_s)

    def following(self, name: str) -> bool:
        return self.state.options.follow and name not in self.state.given_up

    def check_deadline(self) -> None:
        """Past --deadline: stop following every task still going (they go on at EvoLink)."""
        state = self.state
        deadline = state.options.deadline_s
        if deadline is None or time.monotonic() - state.started < deadline:
            return
        for name in state.names:
            if name not in state.given_up and state.job(name).state in FOLLOWED:
                state.given_up.add(name)
                self.timed_out = True

    def waiting(self) -> bool:
        """Whether a followed task is still to be asked about."""
        return any(self.following(name) and self.state.job(name).state in FOLLOWED
                   for name in self.polls)

    def wake_times(self) -> list[float]:
        """When each followed task is next due."""
        return [p.due for n, p in self.polls.items() if self.following(n)]

    # -- asking

    def take_turn(self, job: JobRecord, now: float, due: Due, early: Due) -> None:
        """A running job's turn: its task goes with the due ones, or rides along early."""
        poll = self.polls.setdefault(job.name, _Poll(due=now, interval=self.poll_initial_s))
        if (Step.POLL, job.name) not in self.state.busy and job.task_id:
            (due if poll.due <= now else early).append((job.name, job.task_id))

    def poll(self, due: Due, early: Due) -> None:
        """Query the due tasks: with POST /v1/tasks/batch while the server offers it, every
        followed task rides along in the same call (at most 50 a call), so a batch of many tasks
        costs one request where it would cost one each; else one GET per due task."""
        state = self.state
        every = due + early
        if due and len(every) > 1 and self.batch_queries is not False:
            for start in range(0, len(every), rules.MAX_BATCH_TASK_IDS):
                chunk = every[start:start + rules.MAX_BATCH_TASK_IDS]
                names = [name for name, _task_id in chunk]
                state.busy.update((Step.POLL, name) for name in names)
                state.futures[state.io.submit(read_tasks, state.api, state.gate,
                                              [task_id for _name, task_id in chunk])] = (
                    Step.POLL_MANY, "\n".join(names))
                self.batch_calls += 1
            return
        for name, task_id in due:
            state.submit(state.io, Step.POLL, name, read_task, state.api, state.gate, task_id)

    def polled_many(self, ident: str, future: Future[Any]) -> None:
        """The answer of one batch query: each job's task, or a fallback to one GET per task."""
        state = self.state
        names = ident.split("\n")
        for name in names:
            state.busy.discard((Step.POLL, name))
        try:
            found: dict[str, Task] | None = future.result()
        except PrepError as err:
            # One failed query is one failure, however many tasks rode along in it.
            decision = state.decide(Step.POLL_MANY, "", err)
            for name in names:
                self.poll_failed(name, err, decision)
            return
        state.attempts.pop((Step.POLL_MANY, ""), None)
        if found is None:
            if self.batch_queries is None and state.hooks.on_warning is not None:
                state.hooks.on_warning("this server does not answer several tasks at once (POST "
                                       "/v1/tasks/batch); following each task on its own")
            self.batch_queries = False
            return  # each task is queried on its own when it is due
        self.batch_queries = True
        for name in names:
            task_id = state.job(name).task_id
            task = found.get(task_id or "")
            if task is not None:
                self.polled(name, task)
            else:
                # Unknown ids are simply absent from the answer: ask for this one on its own,
                # which says plainly whether it exists.
                state.submit(state.io, Step.POLL, name, read_task, state.api, state.gate, task_id)

    def polled(self, name: str, task: Task) -> None:
        """One answer about job `name`'s task, journaled; still going: asked again later."""
        state = self.state
        state.attempts.pop((Step.POLL, name), None)
        poll = self.polls[name]
        state.report_task(task)
        if task.status in ("failed", "cancelled"):
            reason = task.error_message or task.status
            state.journal.record_task(name, status=task.status, progress=task.progress,
                                      credits_reserved_units=task.credits_reserved_units)
            state.journal.set_state(name, "failed", error=f"task {task.id} {task.status}: {reason} "
                                    "(failed tasks are not billed)",
                                    error_exit=TaskFailedError.exit_code)
            state.hooks.state(name, "failed", reason)
            return
        result_url = task.results[0] if task.results else None
        state.journal.record_task(name, status=task.status, progress=task.progress,
                                  credits_reserved_units=task.credits_reserved_units,
                                  result_url=result_url)
        if task.status == "completed":
            state.hooks.state(name, "completed", f"task {task.id}")
            return
        state.hooks.state(name, "running", f"{task.progress}%")
        poll.due = time.time() + poll.interval
        poll.interval = min(poll.interval * 1.5, self.poll_max_s)

    def poll_failed(self, name: str, err: PrepError, decision: Decision) -> None:
        """A query about job `name`'s task failed: ask again later, or stop following it."""
        state = self.state
        if decision.verdict is Verdict.STOP_FOLLOWING:
            task_id = state.job(name).task_id
            state.journal.note_error(name, f"stopped following task {task_id} ({err.message}); "
                                     "the task goes on at EvoLink", err.exit_code)
            state.given_up.add(name)
            state.hooks.state(name, "running", f"stopped following: {err.message}")
        else:
            self.polls[name].due = time.time() + decision.delay_ms / 1000

    # -- the result

    def download(self, job: JobRecord) -> None:
        """Download a completed task's result (on the io executor)."""
        state = self.state
        if fault_matches(state.options.fault, "download", job.name):
            kill_self()
        state.submit(state.io, Step.DOWNLOAD, job.name, self._download, job)

    def _download(self, job: JobRecord) -> tuple[Path, str, int]:
        state = self.state
        report = state.hooks.on_download_progress

        def progress(received: int, total: int | None) -> None:
            state.gate.check()  # a stopping run leaves no `.part` behind (the client removes it)
            if report is not None:
                report(received, total)

        return download_result(state.api, state.fetch, state.gate, url=job.result_url,
                               task_id=job.task_id,
                               dest=result_path(state.options.output_dir, job.name),
                               on_progress=progress)

    def downloaded(self, name: str, saved: tuple[Path, str, int]) -> None:
        path, digest, size = saved
        self.state.journal.record_result(name, path=str(path), sha256=digest, size_bytes=size)
        self.identity.write_sidecar(name, digest, size)
        self.state.hooks.state(name, "done", str(path))

    def download_failed(self, name: str, err: PrepError, decision: Decision) -> None:
        """Tried again after a pause, or the job fails with the download's error."""
        if decision.verdict in (Verdict.PACE, Verdict.RETRY):
            self.state.defer(Step.DOWNLOAD, name, decision)
        else:
            self.state.fail(name, err.message,
                            err.exit_code if decision.exit_code is None else decision.exit_code)
