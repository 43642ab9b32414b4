"""Creating a job's task: the request, journaled before it is sent, and what its answer means.

`TaskCreator` sends a job whose clips are all uploaded (`send_when_ready`): it holds the run to
its credit cap, builds the request from the job's options and the uploaded URLs, asks
`TaskIdentity` for the Idempotency-Key and whether the task was made before, journals the
submission, and only then sends it. `--resubmit-unknown` sends an unknown job's last request again
under its own key, once a run. A failed create becomes what `prep.jobs.policy.decide` said:
unknown, rejected, tried again after a pause, its references uploaded afresh, or not submitted.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prep.core.request import GenerationRequest
from prep.errors import ApiError, PrepError, UsageError
from prep.jobs.budget import over_budget
from prep.jobs.policy import Decision, Step, Verdict
from prep.jobs.steps import create_task, fault_matches, kill_self

if TYPE_CHECKING:
    from prep.api.client import Task
    from prep.jobs.clips import ClipPipeline
    from prep.jobs.following import Follower
    from prep.jobs.identity import TaskIdentity
    from prep.jobs.journal import JobRecord
    from prep.jobs.runstate import RunState

__all__ = ["TaskCreator"]


class TaskCreator:
    """Each job's create request: built, journaled, sent, and its answer journaled."""

    def __init__(self, state: RunState, identity: TaskIdentity, clips: ClipPipeline,
                 follower: Follower) -> None:
        self.state = state
        self.identity = identity
        self.clips = clips
        self.follower = follower
        self.resubmitted: set[str] = set()  # --resubmit-unknown sends a job again once per run

    def send_when_ready(self, job: JobRecord, urls: list[str]) -> None:
        """Every clip is uploaded: create the task, unless creating stopped or waits its turn."""
        state = self.state
        if job.state != "uploaded":
            state.journal.set_state(job.name, "uploaded")
            state.hooks.state(job.name, "uploaded")
        if state.halted is None and state.idle(Step.CREATE, job.name):
            self._create(job, urls)

    def _request(self, name: str, urls: list[str]) -> dict[str, Any]:
        """The create body: the job's request options, its clips' and references' URLs."""
        refs = [(ref, self.state.clip(ref.key).file_url or "") for ref in self.state.job(name).refs]
        return GenerationRequest(
            options=self.state.plans[name].request, video_urls=tuple(urls),
            image_urls=tuple(url for ref, url in refs if ref.kind == "image"),
            audio_urls=tuple(url for ref, url in refs if ref.kind == "audio"),
            voice_bindings=tuple((ref.binds or "", url) for ref, url in refs if ref.kind == "voice"),
        ).body()

    def _create(self, job: JobRecord, urls: list[str]) -> None:
        state = self.state
        over = over_budget([state.job(n) for n in state.names], state.options.max_cost_units)
        if over is not None:
            state.halt(UsageError(over, hint="raise --max-cost, or remove jobs from the manifest"))
            return
        body = self._request(job.name, urls)
        print_ = self.identity.fingerprint(job.name, body)
        key = self.identity.key_for(job.name, print_)
        if self.identity.made_before(job, body, print_, key):
            return
        # Journaled (and committed) BEFORE the request leaves: a crash after this line is seen
        # on resume as a request that may have reached EvoLink.
        sub = state.journal.begin_submission(job.name, idempotency_key=key, request=body)
        state.hooks.state(job.name, "submitting")
        if fault_matches(state.options.fault, "before-create", job.name):
            kill_self()
        state.submit(state.io, Step.CREATE, job.name, self._send, sub, body, key, job.name)

    def resubmit(self, job: JobRecord) -> None:
        """--resubmit-unknown: the unknown job's last request again, under its own key."""
        state = self.state
        if (Step.CREATE, job.name) in state.busy or state.halted is not None \
                or job.name in self.resubmitted:
            return
        self.resubmitted.add(job.name)
        last = state.journal.last_submission(job.name)
        if last is None:
            return
        # The very same body under the very same key: a server that honours the key replays the
        # first task; one that does not may bill twice (the user asked for this knowingly).
        sub = state.journal.begin_submission(job.name, idempotency_key=last.idempotency_key,
                                             request=last.request)
        state.hooks.state(job.name, "submitting", "re-sending under the same Idempotency-Key")
        state.submit(state.io, Step.CREATE, job.name, self._send, sub, last.request,
                     last.idempotency_key, job.name)

    def _send(self, sub: int, body: dict[str, Any], key: str, name: str) -> tuple[int, Task]:
        """The create request (runs on the io executor; journals nothing)."""
        task = create_task(self.state.api, self.state.gate, body, key)
        if fault_matches(self.state.options.fault, "after-create", name):
            kill_self()
        return sub, task

    # -- the answer (coordinator thread)

    def created(self, name: str, answer: tuple[int, Task]) -> None:
        sub, task = answer
        state = self.state
        state.journal.record_created(
            sub, task_id=task.id, status=task.status,
            credits_reserved_units=task.credits_reserved_units,
            outcome="replayed" if task.replayed else "created")
        self.follower.follow(name, due=time.time() + self.follower.poll_initial_s)
        state.report_task(task)
        state.hooks.state(name, "running", f"task {task.id}" + (" (replayed)" if task.replayed
                                                                else ""))

    def failed(self, name: str, err: PrepError, decision: Decision) -> None:
        state = self.state
        sub = state.journal.last_submission(name)
        assert sub is not None
        status = err.status if isinstance(err, ApiError) else None
        verdict = decision.verdict
        if verdict is Verdict.UNKNOWN:
            state.journal.record_unknown(sub.id, error=err.message)
            state.hooks.state(name, "unknown", err.message)
            return
        if verdict is Verdict.FAIL:
            state.journal.record_rejected(sub.id, error=err.message, error_exit=err.exit_code,
                                          http_status=status)
            state.hooks.state(name, "failed", err.message)
            return
        # Every other verdict: the server provably did not take it (429, no connection, 402,
        # 401/403, a reference it could not fetch), so the job is ready to be sent again.
        state.journal.record_retryable(sub.id, error=err.message, http_status=status)
        if verdict in (Verdict.PACE, Verdict.RETRY):
            state.defer(Step.CREATE, name, decision)
            why = "rate limited" if verdict is Verdict.PACE else "EvoLink cannot be reached"
            state.hooks.state(name, "uploaded", f"waiting: {why}")
        elif verdict is Verdict.REFRESH:
            self.clips.upload_again(name, err)
        elif not decision.halt:  # a halt says it on every job left (finalize)
            state.journal.note_error(name, f"not submitted: {err.message}", err.exit_code)
            state.given_up.add(name)
            state.hooks.state(name, "uploaded", f"not submitted: {err.message}")
