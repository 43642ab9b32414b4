"""Which task a job's create request is, as a run sees it: its fingerprint, its Idempotency-Key,
and whether it was made before this journal knew of it.

`prep.jobs.recover` holds the folder's memory (fingerprints, sidecars, the service's task list);
`TaskIdentity` applies it to one run's jobs: the key a create is sent under (the last one again
when the last request may have made a task), a result already on disk adopted instead of paid
again, and, after a lost journal, a job the service may already have a task for stopped as unknown.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prep.jobs.layout import result_path
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

if TYPE_CHECKING:
    from prep.jobs.journal import JobRecord
    from prep.jobs.runstate import RunState

__all__ = ["TaskIdentity"]

# A last request in one of these left no answer that settles it: the next one reuses its key.
_KEY_KEPT = ("deferred", "abandoned", "unknown", "sending")
# Requests the server answered: each one moves the job on to a new key.
_ANSWERED = ("created", "replayed", "rejected", "resolved")


class TaskIdentity:
    """The identity of each job's task in one run (coordinator thread; the journal's writer)."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.task_list: TaskList | None = None  # what the service lists, after a lost journal

    def read_task_list(self) -> None:
        """After a lost journal: the service's recent tasks, read once before anything is sent
        (so no task this run makes can be taken for an earlier one)."""
        state = self.state
        since = state.journal.meta(REBUILT_META)
        if since is None or all(state.journal.submissions(n) for n in state.names):
            return
        self.task_list = recent_tasks(state.api, float(since))
        if self.task_list.unavailable is not None and state.hooks.on_warning is not None:
            state.hooks.on_warning(f"the journal of {state.options.output_dir} was lost and the "
                                   f"task list cannot be read ({self.task_list.unavailable})")

    def fingerprint(self, name: str, body: dict[str, Any]) -> str:
        """The job's request as `prep.jobs.recover` identifies it (references by content)."""
        job = self.state.job(name)
        keys = [*job.clip_keys, *(ref.key for ref in job.refs)]
        return fingerprint(body, [self.state.clip(k).prepared_sha256 for k in keys])

    def key_for(self, name: str, print_: str) -> str:
        """Reuse the last key when the last request provably made no task or may have made one;
        else the key the request's fingerprint gives (the same after a lost journal)."""
        subs = self.state.journal.submissions(name)
        if subs and subs[-1].outcome in _KEY_KEPT:
            return subs[-1].idempotency_key
        answered = sum(1 for sub in subs if sub.outcome in _ANSWERED)
        return idempotency_key(print_, self.state.options.output_dir, name, answered)

    def made_before(self, job: JobRecord, body: dict[str, Any], print_: str, key: str) -> bool:
        """A job never sent from this journal: its result already on disk (its sidecar's
        fingerprint matches: done, nothing sent), or, after a lost journal, a task the service
        lists that may be its own (the job stops as unknown, for the user to settle)."""
        if self.state.journal.submissions(job.name):
            return False
        return self._adopt_result(job, print_) or self._listed_before(job, body, key)

    def _adopt_result(self, job: JobRecord, print_: str) -> bool:
        """The job's result is on disk already, from this very request: the job is done."""
        out = self.state.options.output_dir
        found = sidecar_matches(out, job.name, print_)
        if found is None:
            return False
        self.state.journal.record_adopted(
            job.name, task_id=found.get("task_id"), path=str(result_path(out, job.name)),
            sha256=str(found.get("sha256") or ""), size_bytes=int(found.get("size_bytes") or 0),
            credits_reserved_units=found.get("credits_reserved_units"))
        self.state.hooks.state(job.name, "done", "its result is already here (matching sidecar)")
        return True

    def _listed_before(self, job: JobRecord, body: dict[str, Any], key: str) -> bool:
        """After a lost journal, the service lists tasks of the job's model that no job here
        knows (or cannot list them): the job is journaled as unknown instead of sent."""
        if self.task_list is None:
            return False
        journal = self.state.journal
        model = str(body.get("model") or "")
        known = {j.task_id for j in journal.jobs() if j.task_id}
        candidates = self.task_list.candidates(model, known)
        if candidates == ():
            return False
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.task_list.since))
        seen = (f"EvoLink lists {len(candidates)} task(s) of {model} made since {since}: "
                + ", ".join(candidates[:5])) if candidates else \
            f"EvoLink's task list cannot be read ({self.task_list.unavailable})"
        sub = journal.begin_submission(job.name, idempotency_key=key, request=body)
        journal.record_unknown(sub, error=f"{LOST_JOURNAL}; {seen}")
        self.state.hooks.state(job.name, "unknown", seen)
        return True

    def write_sidecar(self, name: str, digest: str, size: int) -> None:
        """The result remembers what was paid for it (read back after a lost journal)."""
        state = self.state
        sub = state.journal.last_submission(name)
        job = state.job(name)
        if sub is None:
            return
        try:
            write_sidecar(state.options.output_dir, name, print_=self.fingerprint(name, sub.request),
                          task_id=job.task_id, credits_reserved_units=job.credits_reserved_units,
                          idempotency_key=sub.idempotency_key, model=sub.request.get("model"),
                          sha256=digest, size_bytes=size)
        except OSError as err:
            state.warn((f"{name}: its sidecar could not be written ({err.strerror or err})",))
