"""The job engine (`prep.jobs.engine` and the modules around it) without media: no ffmpeg anywhere on
prep's side. Clips are ~1 KB hand-made mp4 files (`fake_encoder.fake_mp4`, which MediaInfo and
the sandbox read as real), and `prep.media.prepare.prepare` is replaced by a fake encoder that
writes another one. The sandbox stands in for EvoLink (it still renders its result videos with
ffmpeg; the tests ask for two outputs in all, each rendered once into the shared cache).

What every scenario checks through the sandbox's state: how many uploads and tasks there are, so
a resumed run provably sent nothing new and no job was ever paid for twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from fake_encoder import FakeEncoder, fake_info, fake_mp4, mp4_duration_ms

from prep.api.client import Client, Task
from prep.core.billing import Estimate
from prep.core.request import RequestOptions
from prep.errors import (
    AuthError,
    FolderBusyError,
    Interrupted,
    JobError,
    MediaError,
    OutcomeUnknownError,
    PrepError,
    QuotaError,
    TaskFailedError,
    TaskTimeoutError,
    UsageError,
)
from prep.jobs import generate as gen_mod
from prep.jobs.budget import RateGate, measured_units, over_budget
from prep.jobs.engine import BatchOptions, BatchResult, RunHooks, outcome_of, run_batch
from prep.jobs.generate import GenerateOptions, GenerateResult, generate
from prep.jobs.journal import Journal
from prep.jobs.layout import result_path
from prep.jobs.manifest import JobSpec, Manifest
from prep.jobs.planning import BatchPlan, plan_job
from prep.jobs.policy import Pacing
from prep.jobs.reconcile import (
    PICKS_META,
    journaled_picks,
    read_journaled_picks,
    reconcile,
    resolve_unknown,
    sync_journal,
)
from prep.jobs.status import JobStatus, job_error
from prep.jobs.steps import fault_matches, parse_expiry
from prep.media.clips import parse_clip_spec
from prep.sandbox import NO_CREDITS_KEY, Sandbox
from prep.settings import Settings, load_settings

# One prompt and one output everywhere: the sandbox renders (and caches) a single result video.
PROMPT = "A person waves at the camera"
DURATION_S = 2
CLIP_MS = 3000
# The engine's patience in milliseconds instead of seconds: what is tested is the outcome.
QUICK = Pacing(defer_base_ms=1, retry_base_ms=1, poll_initial_ms=10, poll_max_ms=50)


# Every test here runs on the engine's test bench: conftest.py's `fast` and `env`.
pytestmark = pytest.mark.usefixtures("fast")


@dataclass
class Env:
    """One test's sandbox, folder and helpers."""

    sb: Sandbox
    tmp: Path
    encoder: FakeEncoder
    warnings: list[str] = field(default_factory=list)

    def settings(self, key: str | None = None) -> Settings:
        return load_settings({"api_key": key or self.sb.key, "base_url": self.sb.url,
                              "files_url": self.sb.files_url, "cache_dir": str(self.tmp / "cache")})

    def clip(self, name: str = "a.mp4", ms: int = CLIP_MS) -> Path:
        return fake_mp4(self.tmp / "clips" / name, ms)

    def job(self, name: str, *clips: str, prompt: str = PROMPT, **fields: Any) -> JobSpec:
        specs = tuple(parse_clip_spec(str(self.tmp / "clips" / c)) for c in clips or ("a.mp4",))
        for spec in specs:
            if not spec.path.exists():
                fake_mp4(spec.path, CLIP_MS)
        asked = {k: fields.pop(k) for k in list(fields) if k in RequestOptions.__dataclass_fields__}
        request = RequestOptions(prompt=prompt, **{"duration_s": DURATION_S, **asked})
        return JobSpec(line=1, name=name, clips=specs, request=request, **fields)

    def plan(self, *jobs: JobSpec) -> BatchPlan:
        infos = {c.path: fake_info(c.path, mp4_duration_ms(c.path)) for j in jobs for c in j.clips}
        jobs = tuple(JobSpec(**{**_fields(j), "line": i + 1}) for i, j in enumerate(jobs))
        return BatchPlan(manifest=Manifest(source="jobs.jsonl", base_dir=self.tmp, format="jsonl",
                                           jobs=jobs),
                         jobs=tuple(plan_job(j, infos) for j in jobs))

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def run(self, plan: BatchPlan, *, key: str | None = None, hooks: RunHooks | None = None,
            client: Client | None = None, out: Path | None = None, **options: Any) -> BatchResult:
        options.setdefault("pacing", QUICK)
        hooks = hooks or RunHooks()
        if hooks.on_warning is None:
            hooks.on_warning = self.warnings.append
        return run_batch(plan, self.settings(key), BatchOptions(output_dir=out or self.out, **options),
                         hooks=hooks, client=client)

    def tasks(self) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = self.sb.state()["tasks"]
        return tasks

    def uploads(self) -> int:
        return len(self.sb.state()["uploads"])

    def journal(self, out: Path | None = None) -> Journal:
        return Journal.open(out or self.out, create=False)

    def wait_sandbox_task(self, task_id: str) -> None:
        """Until the sandbox says the task finished (bounded; the sandbox runs at speed 1000)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            task = next(t for t in self.tasks() if t["id"] == task_id)
            if task["status"] in ("completed", "failed"):
                return
            time.sleep(0.02)
        raise AssertionError(f"sandbox task {task_id} did not finish")


def _fields(job: JobSpec) -> dict[str, Any]:
    return {name: getattr(job, name) for name in JobSpec.__dataclass_fields__}


def _job(result: BatchResult, name: str) -> JobStatus:
    return next(j for j in result.jobs if j.name == name)


def _states(result: BatchResult) -> dict[str, str]:
    return {j.name: j.state for j in result.jobs}


# -- a normal run, and the same run again ----------------------------------------------------------


def test_run_to_done_then_resume_sends_nothing(env: Env) -> None:
    env.clip("a.mp4")
    env.clip("b.mp4", 4000)
    plan = env.plan(env.job("one", "a.mp4"), env.job("two", "a.mp4", "b.mp4@0.5-3.2"))
    seen: dict[str, list[Any]] = {"state": [], "progress": [], "task": [], "prep": [], "up": [],
                                  "down": []}
    hooks = RunHooks(on_state=lambda *a: seen["state"].append(a),
                  on_progress=lambda *a: seen["progress"].append(a),
                  on_task=seen["task"].append,
                  on_prepare_progress=lambda *a: seen["prep"].append(a),
                  on_upload_progress=lambda *a: seen["up"].append(a),
                  on_download_progress=lambda *a: seen["down"].append(a))
    result = env.run(plan, hooks=hooks, concurrency=2, upload_mode="stream")
    assert result.exit_code == 0, result.as_dict()
    assert _states(result) == {"one": "done", "two": "done"}
    assert not result.interrupted and result.halted is None and not result.timed_out
    # a.mp4 (whole) is shared by both jobs: prepared and uploaded once; 2 distinct clips in all
    assert sorted(env.encoder.calls) == ["a.mp4", "b.mp4"]
    assert env.uploads() == 2 and len(env.tasks()) == 2
    for job in result.jobs:
        path = result_path(env.out, job.name)
        assert job.result_path == str(path) and path.read_bytes()[4:8] == b"ftyp"
        assert job.credits_reserved_units == job.estimate_units == job.measured_units
        assert outcome_of(job) == "done"
    assert {s[1] for s in seen["state"]} >= {"preparing", "prepared", "uploading", "uploaded",
                                             "submitting", "running", "completed", "done"}
    assert seen["progress"][-1] == (2, 2) and seen["task"] and seen["prep"] and seen["up"]
    assert seen["down"]
    data = result.as_dict()
    assert data["counts"]["done"] == 2 and data["exit_code"] == 0

    again = env.run(plan)
    assert again.exit_code == 0 and _states(again) == {"one": "done", "two": "done"}
    assert env.uploads() == 2 and len(env.tasks()) == 2  # nothing new sent
    assert sorted(env.encoder.calls) == ["a.mp4", "b.mp4"]  # nothing prepared again
    # A second folder for the same clips: prepared again, but the upload cache still serves.
    other = env.run(env.plan(env.job("three", "a.mp4")), out=env.tmp / "other")
    assert other.exit_code == 0 and env.uploads() == 2 and len(env.tasks()) == 3


def test_cached_upload_that_died_is_uploaded_again(env: Env) -> None:
    plan = env.plan(env.job("one"))
    assert env.run(plan, follow=False).jobs[0].state == "running"
    env.sb.advance_clock(80 * 3600)  # the cached URL now answers 403: expired at EvoLink
    result = env.run(env.plan(env.job("two")), out=env.tmp / "other", use_cache=True)
    assert result.exit_code == 0, result.as_dict()
    assert env.uploads() == 2


def test_missing_prepared_file_is_prepared_again(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.run(plan, key=NO_CREDITS_KEY, check_credits=False)  # prepared and uploaded, then halted on 402
    with env.journal() as journal:
        [clip] = journal.clips()
    assert clip.prepared_path
    Path(clip.prepared_path).unlink()
    result = env.run(plan)
    assert result.exit_code == 0, result.as_dict()
    assert env.encoder.calls == ["a.mp4", "a.mp4"]


# -- kill points, simulated without SIGKILL --------------------------------------------------------


def _interrupt_at(state: str, job: str | None = None) -> RunHooks:
    def on_state(name: str, now: str, detail: str) -> None:
        if now == state and (job is None or name == job):
            raise KeyboardInterrupt

    return RunHooks(on_state=on_state)


def test_killed_after_journaling_the_create_is_unknown_and_never_resent(env: Env) -> None:
    # Two jobs on one clip: both become ready in the same pass; the first create is in flight
    # when the second job's "submitting" stops the run (Ctrl-C at that exact step).
    plan = env.plan(env.job("one"), env.job("two", prompt=PROMPT + "!"))
    with pytest.raises(Interrupted):
        env.run(plan, hooks=_interrupt_at("submitting", "two"))
    with env.journal() as journal:
        one, two = journal.job("one"), journal.job("two")
        sub_two = journal.last_submission("two")
    assert one is not None and one.state == "running"  # its in-flight answer was journaled
    assert two is not None and two.state == "submitting"
    assert sub_two is not None and sub_two.outcome == "sending"
    assert len(env.tasks()) == 1

    result = env.run(plan)
    assert _states(result) == {"one": "done", "two": "unknown"}
    assert result.exit_code == 6 and outcome_of(_job(result, "two")) == "unknown"
    assert len(env.tasks()) == 1  # the request that may have gone out was not sent again

    # The user checked: no task was made. The next run sends it under the same key.
    message = resolve_unknown(env.out, "two", task_id=None, not_created=True)
    assert sub_two.idempotency_key in message
    result = env.run(plan)
    assert result.exit_code == 0, result.as_dict()
    tasks = env.tasks()
    assert len(tasks) == 2 and tasks[1]["idempotency_key"] == sub_two.idempotency_key


def test_running_job_is_followed_on_resume(env: Env) -> None:
    plan = env.plan(env.job("one"))
    result = env.run(plan, follow=False)
    assert _states(result) == {"one": "running"} and outcome_of(result.jobs[0]) == "running"
    result = env.run(plan)
    assert result.exit_code == 0 and len(env.tasks()) == 1 and env.uploads() == 1


def test_completed_job_is_downloaded_asking_the_task_for_its_url(env: Env) -> None:
    plan = env.plan(env.job("one"))
    first = env.run(plan, follow=False)
    task_id = first.jobs[0].task_id
    assert task_id is not None
    env.wait_sandbox_task(task_id)
    with env.journal() as journal:  # as if killed right after the task was seen completed
        journal.record_task("one", status="completed", progress=100, credits_reserved_units=None)
    result = env.run(plan)
    assert result.exit_code == 0 and result.jobs[0].state == "done"
    assert len(env.tasks()) == 1


def test_done_job_whose_result_was_deleted_downloads_again(env: Env) -> None:
    plan = env.plan(env.job("one"))
    first = env.run(plan)
    path = Path(first.jobs[0].result_path or "")
    path.unlink()
    result = env.run(plan)
    assert result.exit_code == 0 and path.is_file()
    assert len(env.tasks()) == 1 and env.uploads() == 1


def test_done_job_with_no_task_and_no_result_is_failed(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.out.mkdir()
    with Journal.open(env.out) as journal:
        sync_journal(plan, journal)
        journal.record_result("one", path=str(env.out / "gone.mp4"), sha256="0" * 64, size_bytes=5)
        reconcile(journal, ["one"], retry_failed=False)
        job = journal.job("one")
    assert job is not None and job.state == "failed" and job.error_exit == 6
    assert job.error and "no result URL" in job.error


def test_failed_download_after_the_task_completed_is_fetched_again(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.sb.fail_next("server_error", endpoint="download", times=4)
    result = env.run(plan, pacing=replace(QUICK, max_deferrals=0))  # a 5xx download fails at once
    job = result.jobs[0]
    assert job.state == "failed" and job.task_status == "completed" and result.exit_code == 6
    result = env.run(plan)  # no --retry-failed needed: the task is paid for, only fetch it
    assert result.exit_code == 0, result.as_dict()
    assert len(env.tasks()) == 1


def test_failed_task_is_resubmitted_with_a_new_key_only_when_asked(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.sb.fail_next("fail_task", endpoint="generate")
    result = env.run(plan)
    job = result.jobs[0]
    assert job.state == "failed" and result.exit_code == 7
    err = job_error(job, env.out)
    assert isinstance(err, TaskFailedError)
    assert env.run(plan).exit_code == 7 and len(env.tasks()) == 1  # not without --retry-failed
    result = env.run(plan, retry_failed=True)
    assert result.exit_code == 0, result.as_dict()
    tasks = env.tasks()
    assert len(tasks) == 2 and tasks[0]["idempotency_key"] != tasks[1]["idempotency_key"]
    assert env.uploads() == 1  # the clips were still good


def test_failed_clip_is_prepared_again_with_retry_failed(env: Env) -> None:
    env.clip("broken.mp4")
    plan = env.plan(env.job("one", "broken.mp4"))
    result = env.run(plan)
    assert result.jobs[0].state == "failed" and result.exit_code == 3
    err = job_error(result.jobs[0], env.out)
    assert isinstance(err, JobError) and err.exit_code == 3 and "fix the cause" in err.hint
    env.run(plan, retry_failed=True)
    assert env.encoder.calls == ["broken.mp4", "broken.mp4"] and not env.tasks()


# -- unknown outcomes ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["drop_after_create", "server_error"])
def test_unknown_create_outcome_is_never_resent(env: Env, kind: str) -> None:
    plan = env.plan(env.job("one"))
    env.sb.fail_next(kind, endpoint="generate")
    result = env.run(plan)
    job = result.jobs[0]
    assert job.state == "unknown" and result.exit_code == 6
    made = 1 if kind == "drop_after_create" else 0
    assert len(env.tasks()) == made
    assert isinstance(job_error(job, env.out), OutcomeUnknownError)
    again = env.run(plan)
    assert again.jobs[0].state == "unknown" and len(env.tasks()) == made


def test_resubmit_unknown_replays_under_the_same_key(env: Env) -> None:
    env.sb.configure(honour_idempotency=True)
    plan = env.plan(env.job("one"))
    env.sb.fail_next("drop_after_create", endpoint="generate")
    assert env.run(plan).jobs[0].state == "unknown"
    result = env.run(plan, resubmit_unknown=True)
    assert result.exit_code == 0, result.as_dict()
    tasks = env.tasks()
    assert len(tasks) == 1  # replayed: the first task, not a second one
    with env.journal() as journal:
        subs = journal.submissions("one")
    assert [s.outcome for s in subs] == ["unknown", "replayed"]
    assert subs[0].idempotency_key == subs[1].idempotency_key == tasks[0]["idempotency_key"]


def test_resubmit_unknown_sends_once_per_run(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.sb.fail_next("server_error", endpoint="generate")
    assert env.run(plan).jobs[0].state == "unknown"
    env.sb.fail_next("server_error", endpoint="generate", times=4)
    result = env.run(plan, resubmit_unknown=True)
    with env.journal() as journal:
        subs = journal.submissions("one")
    # One re-send for this run; its outcome is unknown again, so the job stays unknown.
    assert len(subs) == 2, [s.outcome for s in subs]
    assert result.jobs[0].state == "unknown"


def test_resolve_unknown_with_the_task_found(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.sb.fail_next("drop_after_create", endpoint="generate")
    env.run(plan)
    [task] = env.tasks()
    with Client.from_settings(env.settings()) as api:
        message = resolve_unknown(env.out, "one", task_id=task["id"], not_created=False, client=api)
    assert task["id"] in message
    result = env.run(plan)
    assert result.exit_code == 0 and result.jobs[0].task_id == task["id"]
    assert len(env.tasks()) == 1


def test_resolve_unknown_refuses_what_it_cannot_settle(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.sb.fail_next("server_error", endpoint="generate")
    env.run(plan)
    with pytest.raises(UsageError, match="--task-id"):
        resolve_unknown(env.out, "one", task_id="t", not_created=True)
    with pytest.raises(UsageError, match="--task-id"):
        resolve_unknown(env.out, "one", task_id=None, not_created=False)
    with pytest.raises(UsageError, match="no job called"):
        resolve_unknown(env.out, "nope", task_id=None, not_created=True)
    resolve_unknown(env.out, "one", task_id="task-by-hand-1", not_created=False)  # unchecked
    with pytest.raises(UsageError, match="not unknown"):
        resolve_unknown(env.out, "one", task_id=None, not_created=True)


def test_resolved_task_that_does_not_exist_stops_being_followed(env: Env) -> None:
    # A task that is gone is given up at its first answer (no count of failures).
    plan = env.plan(env.job("one"))
    env.sb.fail_next("server_error", endpoint="generate")
    env.run(plan)
    resolve_unknown(env.out, "one", task_id="task-unified-1757169743-nothere", not_created=False)
    result = env.run(plan)
    job = result.jobs[0]
    assert job.state == "running" and job.error and "stopped following" in job.error
    assert job.exit_code == 3 and not env.tasks()


# -- failures at each stage ------------------------------------------------------------------------


def test_rate_limited_create_is_deferred_and_sent_again_with_the_same_key(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.sb.fail_next("rate_limit", endpoint="generate", times=4, retry_after_s=0)
    result = env.run(plan)
    assert result.exit_code == 0, result.as_dict()
    assert result.rate_limit_pauses >= 1
    with env.journal() as journal:
        subs = journal.submissions("one")
    assert [s.outcome for s in subs] == ["deferred", "created"]
    assert subs[0].idempotency_key == subs[1].idempotency_key
    assert len(env.tasks()) == 1


def test_rate_limits_on_create_never_use_up_its_patience(env: Env) -> None:
    # No deferral at all is allowed for passing failures: 429s still only slow the job down.
    plan = env.plan(env.job("one"))
    env.sb.fail_next("rate_limit", endpoint="generate", times=12, retry_after_s=0)
    result = env.run(plan, pacing=replace(QUICK, max_deferrals=0))
    assert result.exit_code == 0, result.as_dict()
    assert result.rate_limit_pauses >= 3 and not result.jobs[0].error
    with env.journal() as journal:
        subs = journal.submissions("one")
    assert [s.outcome for s in subs] == ["deferred"] * 3 + ["created"]
    assert len({s.idempotency_key for s in subs}) == 1 and len(env.tasks()) == 1


def test_rate_limited_upload_is_deferred(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.sb.fail_next("rate_limit", endpoint="upload", times=4, retry_after_s=0)
    result = env.run(plan)
    assert result.exit_code == 0, result.as_dict()
    assert env.uploads() == 1


def test_upload_past_the_deferral_limit_fails_its_job(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.sb.fail_next("server_error", endpoint="upload", times=4)
    result = env.run(plan, pacing=replace(QUICK, max_deferrals=0))
    assert result.jobs[0].state == "failed" and result.exit_code == 6 and not env.tasks()


def test_no_credits_halts_creating_and_a_good_key_completes(env: Env) -> None:
    plan = env.plan(env.job("one"), env.job("two", prompt=PROMPT + "!"))
    result = env.run(plan, key=NO_CREDITS_KEY, check_credits=False)
    assert result.halted and isinstance(result.halted_error, QuotaError)
    assert result.exit_code == 5
    for job in result.jobs:  # ready for a re-run, each saying why it was not sent
        assert job.state == "uploaded" and job.error and "not submitted" in job.error
    assert not env.tasks()
    result = env.run(plan)
    assert result.exit_code == 0, result.as_dict()
    assert len(env.tasks()) == 2 and env.uploads() == 2 - 1  # one shared clip, uploaded once


def test_server_errors_on_every_task_query_stop_following(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.sb.fail_next("server_error", endpoint="task", times=None)
    result = env.run(plan)
    job = result.jobs[0]
    assert job.state == "running" and job.error and "stopped following" in job.error
    assert result.exit_code == 6 and outcome_of(job) == "running"
    assert isinstance(job_error(job, env.out), JobError)
    env.sb.clear_faults()
    result = env.run(plan)
    assert result.exit_code == 0 and result.jobs[0].task_id == job.task_id
    assert len(env.tasks()) == 1


@pytest.mark.parametrize("endpoint", ["tasks", "task"])
def test_a_burst_of_429s_on_task_queries_slows_the_batch_and_abandons_nothing(
        env: Env, endpoint: str) -> None:
    # "tasks": the batch query that follows every job at once; "task": one GET per job.
    names = [f"job{i}" for i in range(10)]
    plan = env.plan(*(env.job(name) for name in names))
    env.sb.fail_next("rate_limit", endpoint=endpoint, times=12, retry_after_s=1)
    result = env.run(plan, concurrency=4, batch_queries=endpoint == "tasks")
    assert result.exit_code == 0, result.as_dict()
    assert {j.name: j.state for j in result.jobs} == dict.fromkeys(names, "done")
    for name in names:
        assert result_path(env.out, name).read_bytes()[4:8] == b"ftyp"
    assert not any(j.error for j in result.jobs)
    assert result.rate_limit_pauses >= 1 and len(env.tasks()) == 10
    assert not [f for f in env.sb.state()["faults"]], "the burst was not used up"


def test_wrong_key_on_a_task_query_halts(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.run(plan, follow=False)
    result = env.run(plan, key="sk-not-a-key")
    job = result.jobs[0]
    assert isinstance(result.halted_error, AuthError) and job.state == "running"
    assert job.exit_code == 4


def test_download_server_errors_are_deferred(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.sb.fail_next("server_error", endpoint="download", times=4)
    result = env.run(plan)
    assert result.exit_code == 0, result.as_dict()
    assert result.rate_limit_pauses >= 1 and len(env.tasks()) == 1


def test_expired_result_link_fails_with_exit_6(env: Env) -> None:
    plan = env.plan(env.job("one"))
    first = env.run(plan, follow=False)
    task_id = first.jobs[0].task_id
    assert task_id
    env.wait_sandbox_task(task_id)
    env.sb.advance_clock(11 * 24 * 3600)
    result = env.run(plan)
    job = result.jobs[0]
    assert job.state == "failed" and job.error_exit == 6 and result.exit_code == 6
    assert job.error and "expired" in job.error
    assert len(env.tasks()) == 1


def test_over_budget_halts_before_any_create(env: Env) -> None:
    plan = env.plan(env.job("one"))
    result = env.run(plan, max_cost_units=1)
    assert result.halted and "--max-cost" in result.halted
    assert result.jobs[0].state == "uploaded" and result.exit_code == 2
    assert not env.tasks()


def test_deadline_stops_following_and_the_next_run_picks_the_task_up(env: Env) -> None:
    plan = env.plan(env.job("one"))
    result = env.run(plan, deadline_s=0.000001)
    job = result.jobs[0]
    assert result.timed_out and job.state == "running" and job.task_id
    err = job_error(job, env.out, timed_out=True)
    assert isinstance(err, TaskTimeoutError) and err.exit_code == 6
    result = env.run(plan)
    assert result.exit_code == 0 and result.jobs[0].task_id == job.task_id
    assert len(env.tasks()) == 1


def test_a_prepare_error_fails_only_its_job(env: Env) -> None:
    env.clip("broken.mp4")
    env.clip("crash.mp4")
    env.clip("empty.mp4")
    plan = env.plan(env.job("good"), env.job("bad", "broken.mp4"), env.job("bug", "crash.mp4"),
                    env.job("none", "empty.mp4"))
    result = env.run(plan, concurrency=2, cpu_workers=2)
    states = {j.name: (j.state, j.exit_code) for j in result.jobs}
    assert states == {"good": ("done", 0), "bad": ("failed", 3), "bug": ("failed", 1),
                      "none": ("failed", 3)}
    assert "bug in prep" in (_job(result, "bug").error or "")
    assert len(env.tasks()) == 1


def test_refused_expired_upload_is_uploaded_again_once(env: Env) -> None:
    plan = env.plan(env.job("one"))

    def expire_uploads(name: str, state: str, detail: str) -> None:
        if state == "uploaded":  # the reference expires at EvoLink before it is fetched
            env.sb.advance_clock(73 * 3600)

    first: list[int] = []

    def once(name: str, state: str, detail: str) -> None:
        if state == "uploaded" and not first:
            first.append(1)
            env.sb.advance_clock(73 * 3600)

    result = env.run(plan, hooks=RunHooks(on_state=once))
    assert result.exit_code == 0, result.as_dict()
    assert env.uploads() == 2 and len(env.tasks()) == 1

    # Refused every time: uploaded afresh once per run, then the job fails (no task was made).
    plan2 = env.plan(env.job("two", prompt=PROMPT + "!"))
    result = env.run(plan2, hooks=RunHooks(on_state=expire_uploads), out=env.tmp / "o2")
    job = result.jobs[0]
    assert job.state == "failed" and job.error and "expired" in job.error
    assert len(env.tasks()) == 1


def test_create_refused_by_the_server_fails_the_job(env: Env) -> None:
    env.encoder.shrink_ms = 1500  # the prepared clip is 1.5 s: EvoLink refuses it (400), no task
    result = env.run(env.plan(env.job("one")))
    job = result.jobs[0]
    assert job.state == "failed" and job.exit_code == 3 and job.error and "2 to 30 seconds" in job.error
    assert not env.tasks()


def test_interrupted_while_preparing_leaves_nothing_sent(env: Env) -> None:
    plan = env.plan(env.job("one"))
    with pytest.raises(Interrupted) as caught:
        env.run(plan, hooks=_interrupt_at("preparing"))
    assert str(env.out) in caught.value.hint
    assert env.uploads() == 0 and not env.tasks()
    assert env.run(plan, use_cache=False).exit_code == 0


def test_source_removed_after_planning_is_a_media_error(env: Env) -> None:
    plan = env.plan(env.job("one"))
    (env.tmp / "clips" / "a.mp4").unlink()
    with pytest.raises(MediaError, match="cannot be read any more"):
        env.run(plan)
    assert env.uploads() == 0


# -- the run's edges -------------------------------------------------------------------------------


class _InlineExecutor(Executor):
    """Runs each call at once (not a thread pool: the engine then sends no progress callbacks)."""

    def __init__(self) -> None:
        self.calls = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.calls += 1
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:
            future.set_exception(err)
        return future


def test_any_executor_takes_the_cpu_work(env: Env) -> None:
    plan = env.plan(env.job("one"))
    cpu = _InlineExecutor()
    progress: list[Any] = []
    with Client.from_settings(env.settings()) as api:
        result = run_batch(plan, env.settings(), BatchOptions(output_dir=env.out, pacing=QUICK,
                                                              profile="default"),
                           hooks=RunHooks(on_prepare_progress=lambda *a: progress.append(a)),
                           cpu_executor=cpu, io_executor=ThreadPoolExecutor(2), client=api)
    assert result.exit_code == 0 and cpu.calls == 1 and not progress


def test_run_batch_refuses_before_anything_runs(env: Env) -> None:
    plan = env.plan(env.job("one"))
    no_key = load_settings({"base_url": env.sb.url, "files_url": env.sb.files_url})
    with pytest.raises(AuthError):
        run_batch(plan, no_key, BatchOptions(output_dir=env.out))
    blocker = env.tmp / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="cannot be written"):
        run_batch(plan, env.settings(), BatchOptions(output_dir=blocker / "out"))
    with pytest.raises(UsageError):
        BatchOptions(output_dir=env.out, concurrency=0)
    with pytest.raises(UsageError, match="fault point"):
        BatchOptions(output_dir=env.out, fault="nowhere")
    assert not env.tasks() and env.uploads() == 0


def test_fault_points_that_do_not_match_change_nothing(env: Env) -> None:
    result = env.run(env.plan(env.job("one")), fault="download:another-job")
    assert result.exit_code == 0


def test_manifest_changes_after_submission_keep_the_task(env: Env) -> None:
    plan = env.plan(env.job("one"), env.job("two", prompt=PROMPT + "!"))
    env.run(plan, follow=False)
    changed = env.plan(env.job("one", prompt="Another prompt"), env.job("three"))
    env.run(changed, follow=False)
    assert any("changed in the manifest after it was submitted" in w for w in env.warnings)
    assert any("'two' is in the journal but no longer in the manifest" in w for w in env.warnings)
    with env.journal() as journal:
        one = journal.job("one")
    assert one is not None and one.spec["prompt"] == PROMPT  # the task made is still the job's


def test_unsubmitted_job_changed_in_the_manifest_is_planned_again(env: Env) -> None:
    plan = env.plan(env.job("one"), env.job("two"))
    env.run(plan, key=NO_CREDITS_KEY, check_credits=False)  # both ready, none sent
    reordered = env.plan(env.job("two"), env.job("one", prompt="Another prompt"))
    result = env.run(reordered, max_cost_units=1)
    assert result.halted
    with env.journal() as journal:
        one, two = journal.job("one"), journal.job("two")
    assert one is not None and one.spec["prompt"] == "Another prompt"
    assert two is not None and two.position == 0


def test_retry_failed_after_the_source_changed(env: Env) -> None:
    plan = env.plan(env.job("one"))
    env.sb.fail_next("fail_task", endpoint="generate")
    assert env.run(plan).exit_code == 7
    clip = env.tmp / "clips" / "a.mp4"
    os.utime(clip, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))  # touched: a new clip key
    with env.journal() as journal:
        [record] = journal.clips()
    Path(record.prepared_path or "").unlink()
    result = env.run(env.plan(env.job("one")), retry_failed=True)
    assert result.jobs[0].state in ("done", "failed")


# -- generate: a batch of one ----------------------------------------------------------------------


def _gen_options(env: Env, **options: Any) -> GenerateOptions:
    options.setdefault("pacing", QUICK)
    asked = {k: options.pop(k) for k in list(options) if k in RequestOptions.__dataclass_fields__}
    request = RequestOptions(**{"prompt": PROMPT, "duration_s": DURATION_S, **asked})
    return GenerateOptions(request=request, out_dir=options.pop("out", env.out), **options)


def test_generate_end_to_end_then_the_same_command_resumes(env: Env) -> None:
    clip = env.clip("a.mp4")
    stages: list[str] = []
    notes: list[str] = []
    estimates: list[Estimate] = []
    tasks: list[Task] = []
    hooks = gen_mod.GenerateHooks(on_stage=stages.append, on_note=notes.append, on_estimate=estimates.append,
                          on_task=tasks.append, confirm=lambda est: True)
    result = generate([clip], _gen_options(env, aspect_ratio="auto"), env.settings(), hooks=hooks)
    assert result.exit_code == 0 and result.error() is None and not result.resumed
    assert result.files == [result_path(env.out, result.job)] and result.files[0].is_file()
    assert result.task_id and result.prepared and result.uploads and result.request
    assert result.idempotency_key and not result.replayed and result.aspect_ratio == "16:9"
    assert {"validate", "estimate", "prepare", "upload", "submit", "wait", "download"} <= set(stages)
    assert estimates and tasks and not result.credits_differ
    data = result.as_dict()
    assert data["state"] == "done" and data["exit_code"] == 0 and data["error"] is None
    assert data["credits_reserved_units"] == data["credits_estimated_units"]

    again = generate([str(clip)], _gen_options(env, aspect_ratio="auto"), env.settings(),
                     hooks=gen_mod.GenerateHooks(on_note=notes.append, confirm=lambda est: False))
    assert again.resumed and again.job == result.job and again.files == result.files
    assert any("resuming job" in n for n in notes)
    assert len(env.tasks()) == 1 and env.uploads() == 1


def test_generate_dry_run_prepares_and_sends_nothing(env: Env) -> None:
    clip = env.clip("a.mp4")
    env.encoder.shrink_ms = 500  # the prepared clip measures shorter than planned
    notes: list[str] = []
    planned: list[Estimate] = []
    no_key = load_settings({"base_url": env.sb.url, "files_url": env.sb.files_url,
                            "cache_dir": str(env.tmp / "cache")})
    result = generate([clip], _gen_options(env, dry_run=True, profile="default"), no_key,
                      hooks=gen_mod.GenerateHooks(on_note=notes.append, on_estimate=planned.append))
    assert result.stopped == "dry-run" and result.exit_code == 0 and result.prepared
    assert any("the prepared clips measure" in n for n in notes)
    assert result.estimate.input_billed_ms == CLIP_MS - 500
    assert env.uploads() == 0 and not env.tasks()
    with pytest.raises(UsageError, match="the prepared job costs"):
        env.encoder.shrink_ms = -1000  # longer than planned: over the cap only once measured
        generate([clip], _gen_options(env, dry_run=True, max_cost_units=planned[0].credits_units),
                 no_key)


def test_generate_declined_sends_nothing(env: Env) -> None:
    clip = env.clip("a.mp4")
    result = generate([clip], _gen_options(env), env.settings(),
                      hooks=gen_mod.GenerateHooks(confirm=lambda est: False))
    assert result.stopped == "declined" and result.exit_code == 0 and result.status is None
    assert env.encoder.calls == [] and env.uploads() == 0 and not env.tasks()


def test_generate_refusals_before_anything_runs(env: Env) -> None:
    clip = env.clip("a.mp4")
    with pytest.raises(UsageError, match="--max-cost"):
        generate([clip], _gen_options(env, max_cost_units=1), env.settings())
    no_key = load_settings({"base_url": env.sb.url, "files_url": env.sb.files_url})
    with pytest.raises(AuthError):
        generate([clip], _gen_options(env), no_key)
    with pytest.raises(UsageError):
        generate([clip], _gen_options(env, prompt=" "), env.settings())
    with pytest.raises(MediaError):
        generate([env.tmp / "missing.mp4"], _gen_options(env), env.settings())
    assert env.encoder.calls == [] and env.uploads() == 0 and not env.tasks()


def test_generate_pick_with_windows_given_uses_them(env: Env) -> None:
    clip = env.clip("a.mp4", 5000)
    notes: list[str] = []
    result = generate([f"{clip}@0-3"], _gen_options(env, pick=True, wait=False), env.settings(),
                      hooks=gen_mod.GenerateHooks(on_note=notes.append))
    assert any("every clip has a window already" in n for n in notes)
    assert result.stopped == "no-wait" and result.exit_code == 0 and result.task_id
    assert result.status is not None and result.status.state == "running"


def test_generate_failed_task_with_check_false(env: Env) -> None:
    clip = env.clip("a.mp4")
    env.sb.fail_next("fail_task", endpoint="generate")
    result = generate([clip], _gen_options(env), env.settings(), raise_on_failure=False)
    assert result.exit_code == 7 and isinstance(result.error(), TaskFailedError)
    with pytest.raises(TaskFailedError):
        result.raise_for_outcome()
    data = result.as_dict()
    assert data["exit_code"] == 7 and data["error"] and data["hint"] and data["state"] == "failed"
    with pytest.raises(TaskFailedError):  # raise_on_failure=True (the default) raises it
        generate([clip], _gen_options(env), env.settings())
    assert len(env.tasks()) == 1


def test_generate_no_credits_is_the_account_error(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # The 402 at create (a server with no balance endpoint): the balance check is test_flash_jobs'.
    monkeypatch.setattr(Client, "credits", lambda self: None)
    clip = env.clip("a.mp4")
    result = generate([clip], _gen_options(env), env.settings(NO_CREDITS_KEY), raise_on_failure=False)
    assert isinstance(result.halted, QuotaError) and result.error() is result.halted
    assert result.exit_code == 5 and not env.tasks()
    result = generate([clip], _gen_options(env), env.settings())
    assert result.exit_code == 0 and len(env.tasks()) == 1


def test_generate_deadline_then_resume(env: Env) -> None:
    clip = env.clip("a.mp4")
    result = generate([clip], _gen_options(env, deadline_s=0.000001), env.settings(), raise_on_failure=False)
    assert result.stopped == "deadline" and isinstance(result.error(), TaskTimeoutError)
    assert result.exit_code == 6
    with pytest.raises(TaskTimeoutError):
        result.raise_for_outcome()
    again = generate([clip], _gen_options(env, deadline_s=0.000001), env.settings(), raise_on_failure=False)
    assert again.resumed  # (it may time out again: the task is only followed)
    final = generate([clip], _gen_options(env), env.settings())
    assert final.resumed and final.exit_code == 0 and final.task_id == result.task_id
    assert len(env.tasks()) == 1


def test_generate_unknown_outcome_then_resubmit(env: Env) -> None:
    clip = env.clip("a.mp4")
    env.sb.configure(honour_idempotency=True)
    env.sb.fail_next("drop_after_create", endpoint="generate")
    with pytest.raises(OutcomeUnknownError) as caught:
        generate([clip], _gen_options(env), env.settings())
    assert "resubmit" in caught.value.hint
    with Client.from_settings(env.settings()) as api:
        result = generate([clip], _gen_options(env, resubmit=True), env.settings(), client=api)
    assert result.exit_code == 0 and result.replayed and result.resumed
    assert len(env.tasks()) == 1


def test_generate_prepare_error_and_a_clip_given_twice(env: Env) -> None:
    clip = env.clip("broken.mp4")
    result = generate([clip, clip], _gen_options(env), env.settings(), raise_on_failure=False)
    assert result.exit_code == 3 and result.status is not None and result.status.state == "failed"
    assert result.prepared == [] and result.request is None and not env.tasks()


# -- pure parts: job_error, outcomes, budget, expiry -----------------------------------------------


def _status(state: str, *, error: str | None = None, error_exit: int | None = None,
            task_id: str | None = None) -> JobStatus:
    return JobStatus(name="j", line=1, state=state, clips_total=1, clips_prepared=0,
                     clips_uploaded=0, task_id=task_id, task_status=None, progress=None,
                     estimate_units=None, measured_units=None, credits_reserved_units=None,
                     result_path=None, result_sha256=None, result_bytes=None, error=error,
                     error_exit=error_exit, submissions=0, idempotency_key=None)


@pytest.mark.parametrize(("status", "timed_out", "kind", "exit_code"), [
    (_status("done"), False, None, 0),
    (_status("unknown", error="lost"), False, OutcomeUnknownError, 6),
    (_status("failed", error="task failed", error_exit=7, task_id="t"), False, TaskFailedError, 7),
    (_status("failed", error="task failed", error_exit=7, task_id="t"), True, TaskFailedError, 7),
    (_status("running", task_id="t"), True, TaskTimeoutError, 6),
    (_status("failed", error="bad clip", error_exit=3), False, JobError, 3),
    (_status("failed", error="link gone", error_exit=6, task_id="t"), False, JobError, 6),
    (_status("failed", error="odd"), False, JobError, 1),
    (_status("running", error="stopped following", error_exit=6, task_id="t"), False, JobError, 6),
    (_status("uploaded", error="not submitted: 402", error_exit=5), False, JobError, 5),
    (_status("uploaded"), False, JobError, 130),
    (_status("pending"), False, JobError, 130),
])
def test_job_error_maps_every_state(status: JobStatus, timed_out: bool, kind: type[PrepError] | None,
                                    exit_code: int) -> None:
    err = job_error(status, Path("/out"), timed_out=timed_out)
    assert status.exit_code == exit_code or timed_out
    if kind is None:
        assert err is None
        return
    assert type(err) is kind and err.exit_code == exit_code
    assert err.message.startswith("job j")
    assert "/out" in err.hint or "not billed" in err.hint or "fix the cause" in err.hint


@pytest.mark.parametrize(("state", "outcome"), [
    ("done", "done"), ("failed", "failed"), ("unknown", "unknown"), ("running", "running"),
    ("completed", "running"), ("submitting", "running"), ("pending", "not run"),
    ("prepared", "not run"), ("uploaded", "not run"),
])
def test_outcome_of(state: str, outcome: str) -> None:
    assert outcome_of(_status(state)) == outcome


def test_batch_result_exit_code_and_json() -> None:
    jobs = (_status("done"), _status("failed", error="x", error_exit=3))
    result = BatchResult(jobs=jobs, halted="stop")
    assert result.exit_code == 3 and result.as_dict()["counts"]["failed"] == 1
    assert BatchResult(jobs=jobs, interrupted=True).exit_code == 130
    assert BatchResult(jobs=()).exit_code == 0


def test_generate_result_without_a_run() -> None:
    result = GenerateResult(estimate=_estimate(), aspect_ratio="16:9", job="j", out_dir=Path("/o"))
    assert result.error() is None and result.exit_code == 0 and result.task_id is None
    assert result.credits_reserved_units is None and not result.credits_differ
    result.status = _status("done")
    assert result.exit_code == 0 and result.as_dict()["journal"] == "/o/batch-journal.sqlite"


def _estimate() -> Estimate:
    from prep.core.billing import estimate_durations

    return estimate_durations([("a", 3000)], output_s=2, quality="720p")


def test_rate_gate_brakes_and_recovers() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    gate = RateGate(4, clock=lambda: now[0], sleep=sleep)
    gate.sleep(0.5)
    assert slept == [0.5] and gate.backoffs == 1 and gate.limit == 2
    gate.backoff(1.0)
    assert gate.limit == 1 and gate.paused_until == now[0] + 1.0
    now[0] += 1.0
    with gate.call():
        assert gate.in_flight == 1
    assert gate.limit == 2 and gate.in_flight == 0
    with pytest.raises(RuntimeError), gate.call():
        raise RuntimeError("a failed call does not widen the gate")
    assert gate.limit == 2
    with pytest.raises(ValueError):
        RateGate(0)


def test_rate_gate_waits_out_a_pause() -> None:
    gate = RateGate(1)
    gate.backoff(0.05)
    with gate.call():  # waits the pause out (how long is not asserted)
        assert gate.in_flight == 1
    assert gate.in_flight == 0 and gate.backoffs == 1


def test_budget() -> None:
    from prep.core.billing import DEFAULT_PRICES

    units = measured_units([3000], output_s=2, quality="720p", prices=DEFAULT_PRICES)
    assert units == _estimate().credits_units
    assert over_budget([], None) is None
    assert over_budget([], 0) is None


def test_fault_matches_and_expiry() -> None:
    assert not fault_matches(None, "upload")
    assert fault_matches("upload", "upload") and fault_matches("download:a", "download", "a")
    assert not fault_matches("download:a", "download", "b") and not fault_matches("upload", "prepare")
    assert parse_expiry("2030-01-01T00:00:00Z", 0) > 1.8e9
    assert parse_expiry("2030-01-01 00:00:00", 0) > 1.8e9
    assert parse_expiry("garbage", 10.0) == parse_expiry(None, 10.0) == 10.0 + 72 * 3600


def test_journaled_picks(tmp_path: Path) -> None:
    assert read_journaled_picks(tmp_path) == {}
    with Journal.open(tmp_path) as journal:
        assert journaled_picks(journal) == {}
        journal.set_meta(PICKS_META, "not json")
        assert journaled_picks(journal) == {}
        journal.set_meta(PICKS_META, "[1]")
        assert journaled_picks(journal) == {}
        journal.set_meta(PICKS_META, '{"k": {"start_ms": 0}, "bad": 1}')
    assert read_journaled_picks(tmp_path) == {"k": {"start_ms": 0}}
    with Journal.open(tmp_path) as journal, pytest.raises(ValueError):
        reconcile(journal, ["nope"], retry_failed=False)


# -- encode progress: from the worker's progress file to the coordinator and `batch status` -------


def test_encode_progress_reaches_the_coordinator_through_its_file(env: Env) -> None:
    """The encode reports half-way and then waits until the coordinator has shown it: whatever
    runs the encode (thread, process, Dask worker), its progress file is the channel."""
    import threading

    seen = threading.Event()
    real = env.encoder

    def slow(clips: list[Any], out_dir: Path, options: object = None, *, on_progress: Any = None,
             on_note: object = None) -> Any:
        if callable(on_progress):
            on_progress("a.mp4", 1_000, 2_000)
            assert seen.wait(timeout=30), "the coordinator never reported the encode's progress"
        return real(clips, out_dir, options, on_progress=on_progress, on_note=on_note)

    states: list[tuple[str, str, str]] = []

    def on_state(job: str, state: str, detail: str) -> None:
        states.append((job, state, detail))
        if state == "preparing" and "1.0/2.0 s" in detail:
            seen.set()

    import prep.media.prepare

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prep.media.prepare, "prepare", slow)
        result = env.run(env.plan(env.job("one")), hooks=RunHooks(on_state=on_state))
    assert result.exit_code == 0
    assert ("one", "preparing", "a.mp4 1.0/2.0 s") in states
    assert not list(env.out.rglob(".progress"))  # gone once the clip is prepared


def test_batch_status_shows_an_encode_in_progress(env: Env) -> None:
    from prep.jobs.layout import PREPARED_DIR, progress_path
    from prep.jobs.reconcile import sync_journal
    from prep.jobs.status import batch_status

    plan = env.plan(env.job("one"))
    with Journal.open(env.out) as journal:
        sync_journal(plan, journal)
        (clip,) = journal.clips()
        folder = env.out / PREPARED_DIR / clip.key[:16]
        folder.mkdir(parents=True)
        progress_path(folder).write_text("1500 6000\n")
        (row,) = batch_status(journal, now=time.time())
    assert row.encoding == (1_500, 6_000)
    assert row.as_dict()["encoding"] == {"encoded_s": 1.5, "total_s": 6.0}


def test_a_busy_folder_closes_the_runs_own_client_and_pools(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing ran, so nothing of the run may stay open: its API client's connections and pools."""
    from prep.jobs import engine
    from prep.jobs.lock import RunLock

    made: list[Client] = []
    real = engine.engine_client
    monkeypatch.setattr(engine, "engine_client", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    env.out.mkdir(parents=True, exist_ok=True)
    with RunLock(env.out).acquire(), pytest.raises(FolderBusyError):
        env.run(env.plan(env.job("busy")))
    assert len(made) == 1 and made[0]._http.is_closed
