"""The runner's collaborators on their own: `RunState` (`prep.jobs.runstate`), `Follower`
(`following`) and `TaskIdentity` (`identity`), each driven directly over a journal in a temporary
folder, with an executor that only records what it is handed: no server, no media, no threads.

The whole engine's behaviour is tests/test_engine.py's (through the sandbox); these pin the seams
the runner is wired from, so a collaborator can be read and changed with its own tests beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from prep.core import rules
from prep.errors import QuotaError, RateLimitError, ServerError
from prep.jobs.budget import RateGate
from prep.jobs.following import Follower
from prep.jobs.identity import TaskIdentity
from prep.jobs.journal import Journal
from prep.jobs.options import BatchOptions, RunHooks
from prep.jobs.policy import Pacing, Step
from prep.jobs.recover import idempotency_key
from prep.jobs.runstate import RunState
from prep.jobs.steps import read_task, read_tasks

QUICK = Pacing(defer_base_ms=1, retry_base_ms=1)


class _Recorder(Executor):
    """An executor that runs nothing: it keeps each call, and hands back a future left pending."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.calls.append((fn, args))
        return Future()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "out") as opened:
        yield opened


def _state(journal: Journal, tmp_path: Path, count: int, **options: Any) -> RunState:
    """A run of `count` jobs (j0, j1, ...) journaled as pending, with no clips."""
    names = [f"j{i}" for i in range(count)]
    for i, name in enumerate(names):
        journal.add_job(name=name, position=i, line=i + 1, spec={}, spec_hash="h", estimate_units=0,
                        clips=[])
    plan = SimpleNamespace(jobs=[SimpleNamespace(name=n) for n in names], prices=None)
    executor = _Recorder()
    return RunState(plan=plan, journal=journal,  # type: ignore[arg-type]
                    options=BatchOptions(output_dir=tmp_path / "out", pacing=QUICK, **options),
                    hooks=RunHooks(), api=None, fetch=None,  # type: ignore[arg-type]
                    gate=RateGate(1), cpu=executor, io=executor)


def _follower(state: RunState) -> Follower:
    return Follower(state, TaskIdentity(state), SimpleNamespace(initial_s=1.0, max_s=8.0))  # type: ignore[arg-type]


def _calls(state: RunState) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
    assert isinstance(state.io, _Recorder)
    return state.io.calls


def test_one_due_task_takes_every_followed_task_along_in_batches_of_the_limit(
        journal: Journal, tmp_path: Path) -> None:
    state = _state(journal, tmp_path, 60)
    follower = _follower(state)
    follower.poll([("j0", "t0")], [(f"j{i}", f"t{i}") for i in range(1, 60)])
    calls = _calls(state)
    assert [fn for fn, _ in calls] == [read_tasks, read_tasks]
    assert [len(args[2]) for _, args in calls] == [rules.MAX_BATCH_TASK_IDS, 60 - rules.MAX_BATCH_TASK_IDS]
    assert follower.batch_calls == 2
    assert {(Step.POLL, f"j{i}") for i in range(60)} <= state.busy
    assert all(step is Step.POLL_MANY for step, _ in state.futures.values())


def test_nothing_due_asks_nothing_and_without_batch_queries_each_due_task_alone(
        journal: Journal, tmp_path: Path) -> None:
    state = _state(journal, tmp_path, 3, batch_queries=False)
    follower = _follower(state)
    follower.poll([], [("j0", "t0"), ("j1", "t1")])
    assert _calls(state) == []
    follower.poll([("j0", "t0"), ("j1", "t1")], [("j2", "t2")])
    assert [(fn, args[2]) for fn, args in _calls(state)] == [(read_task, "t0"), (read_task, "t1")]
    assert follower.batch_calls == 0


def test_a_server_without_batch_queries_is_said_once_and_not_asked_again(
        journal: Journal, tmp_path: Path) -> None:
    state = _state(journal, tmp_path, 2)
    warnings: list[str] = []
    state.hooks.on_warning = warnings.append
    follower = _follower(state)
    follower.poll([("j0", "t0")], [("j1", "t1")])
    future, ident = next(iter(state.futures.items()))
    state.futures.clear()
    future.set_result(None)  # read_tasks' answer when POST /v1/tasks/batch is not served
    follower.polled_many(ident[1], future)
    assert follower.batch_queries is False and len(warnings) == 1
    assert not state.busy  # each task is asked about on its own when it is due
    follower.poll([("j0", "t0")], [("j1", "t1")])
    assert [fn for fn, _ in _calls(state)] == [read_tasks, read_task]


def test_the_deadline_gives_up_only_on_tasks_still_followed(journal: Journal, tmp_path: Path) -> None:
    state = _state(journal, tmp_path, 2, deadline_s=0.0)
    state.journal.set_state("j0", "running")
    follower = _follower(state)
    follower.check_deadline()
    assert state.given_up == {"j0"} and follower.timed_out


def test_a_key_is_kept_while_a_task_may_exist_and_moves_on_once_answered(
        journal: Journal, tmp_path: Path) -> None:
    state = _state(journal, tmp_path, 1)
    identity = TaskIdentity(state)
    first = identity.key_for("j0", "print")
    assert first == idempotency_key("print", tmp_path / "out", "j0", 0)
    sub = journal.begin_submission("j0", idempotency_key=first, request={})
    assert identity.key_for("j0", "print") == first  # sent, unanswered: the same key again
    journal.record_unknown(sub, error="no answer")
    assert identity.key_for("j0", "print") == first
    again = journal.begin_submission("j0", idempotency_key=first, request={})
    journal.record_created(again, task_id="t1", status="pending", credits_reserved_units=None)
    assert identity.key_for("j0", "print") == idempotency_key("print", tmp_path / "out", "j0", 1)


def test_run_state_counts_failures_pauses_on_rate_limits_and_keeps_the_first_halt(
        journal: Journal, tmp_path: Path) -> None:
    state = _state(journal, tmp_path, 1)
    state.decide(Step.UPLOAD, "clip", ServerError("503"))
    state.decide(Step.UPLOAD, "clip", ServerError("503"))
    assert state.attempts[(Step.UPLOAD, "clip")] == 2
    state.decide(Step.UPLOAD, "clip", RateLimitError("429"))
    assert state.attempts[(Step.UPLOAD, "clip")] == 2 and state.gate.backoffs == 1
    first = QuotaError("no credits")
    state.decide(Step.CREATE, "j0", first)
    state.decide(Step.CREATE, "j0", QuotaError("still none"))
    assert state.halted is first and not state.deferred_waiting()
