"""Where each job stands before anything is sent: the journal brought in line with the plan.

Rules on resume (never guess what EvoLink did):
- a job with a task id is followed by querying that task, and is never submitted again;
- a job whose create request was journaled but never answered is `unknown`: it is NOT sent again.
  The user resolves it with `prep batch resolve DIR JOB --task-id ID` (the task they found in the
  dashboard) or `--not-created` (they checked: there is none), or runs with `--resubmit-unknown`
  (`prep generate --resubmit`), which re-sends the journaled request under the SAME Idempotency-Key;
- a job whose task completed but whose result is missing (the download failed, or the file was
  removed) downloads again: that costs nothing, the task is already paid for;
- prepared files that are missing or changed are prepared again; uploads that expire too soon are
  uploaded again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prep.core import rules
from prep.core.window import Extend
from prep.errors import UsageError
from prep.files import file_sha256
from prep.jobs.journal import FOLLOWED, NOT_SENT, SENT, JobRecord, Journal, JournalDamaged
from prep.jobs.planning import BatchPlan, JobPlan
from prep.jobs.steps import clip_key

if TYPE_CHECKING:
    from prep.api.client import Client

__all__ = [
    "PICKS_META",
    "Reconciled",
    "job_clips",
    "journaled_picks",
    "read_journaled_picks",
    "reconcile",
    "resolve_unknown",
    "sync_journal",
]


def job_clips(plan: JobPlan, extend: Extend | None) -> list[tuple[str, str, int, int]]:
    """(clip key, source, start ms, end ms) of each clip of a job, as the journal links them."""
    side = plan.request.spec.min_side_px
    return [(clip_key(c, extend, side), str(c.spec.path.resolve()), c.window.start_ms,
             c.window.end_ms) for c in plan.clips]


def _spec_hash(plan: JobPlan, clips: list[tuple[str, str, int, int]]) -> str:
    # Fields newer than the first journals are left out at their defaults (`pick: false`, and
    # the request's own: see RequestOptions.named), so journals written before they existed still
    # match; any other value (a flash job, its audio setting) makes another job.
    job = plan.job
    spec: dict[str, Any] = {"name": job.name, "clips": job.as_dict()["clips"],
                            **plan.request.named(), "clip_keys": [c[0] for c in clips]}
    if job.pick is not False:
        spec["pick"] = job.pick
    if plan.references:  # by content: another image is another request
        spec["references"] = [[r.spec.kind, r.key, r.spec.binds] for r in plan.references]
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def sync_journal(plan: BatchPlan, journal: Journal, *, extend: Extend | None = None) -> list[str]:
    """Bring the journal in line with the manifest; returns warnings for people.

    New jobs are added; a job whose row changed starts over if it was never submitted, and keeps
    its task (with a warning) if it was: a submitted job is never submitted again by accident.
    """
    warnings: list[str] = []
    _record_picks(plan, journal)
    known = {j.name: j for j in journal.jobs()}
    for position, job_plan in enumerate(plan.jobs):
        clips = job_clips(job_plan, extend)
        digest = _spec_hash(job_plan, clips)
        spec = {**job_plan.job.as_dict(), "aspect_ratio": job_plan.aspect_ratio}
        record = known.pop(job_plan.name, None)
        args: dict[str, Any] = {"name": job_plan.name, "position": position,
                                "line": job_plan.job.line, "spec": spec, "spec_hash": digest,
                                "estimate_units": job_plan.estimate.credits_units, "clips": clips,
                                "refs": [r.journal_row() for r in job_plan.references]}
        if record is None:
            journal.add_job(**args)
        elif record.spec_hash == digest:
            if (record.position, record.line) != (position, job_plan.job.line):
                journal.update_position(job_plan.name, position, job_plan.job.line)
        elif record.state in SENT or (record.state == "failed" and record.task_id
                                            and record.task_status not in rules.UNBILLED_STATUSES):
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
    """The windows picked for this batch's clips so far, by pick key (see `prep.pick.picker`)."""
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
    from prep.jobs.layout import journal_path

    if not journal_path(folder).is_file():
        return {}
    try:
        with Journal.open(folder, create=False) as journal:
            return journaled_picks(journal)
    except JournalDamaged:  # the run sets it aside and starts afresh
        return {}


def _record_picks(plan: BatchPlan, journal: Journal) -> None:
    """Keep every picked window in the journal, so the next run plans the same windows."""
    picks = journaled_picks(journal)
    new = {p.key: p.record() for job in plan.jobs for p in job.picks if p is not None}
    if any(picks.get(k) != v for k, v in new.items()):
        journal.set_meta(PICKS_META, json.dumps({**picks, **new}, sort_keys=True))


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What start-up found: the jobs whose task is to be followed."""

    to_follow: tuple[str, ...]


def reconcile(journal: Journal, names: list[str], *, retry_failed: bool) -> Reconciled:
    """Decide, before anything is sent, what each job still needs (see the module docstring)."""
    checked: dict[str, bool] = {}
    follow: list[str] = []
    for name in names:
        job = _job(journal, name)
        if job.state == "submitting":
            sub = journal.last_submission(name)
            if sub is not None and sub.outcome == "sending":
                journal.record_unknown(sub.id, error=(
                    "prep stopped after journaling the create request and before recording an "
                    "answer; the request may have reached EvoLink and the task may exist"))
            job = _job(journal, name)
        if job.state == "failed" and job.task_id and job.task_status == "completed":
            # The task is done and paid for; only its download failed: fetch it again.
            journal.record_task(name, status="completed", progress=100, credits_reserved_units=None)
            job = _job(journal, name)
        elif job.state == "failed" and retry_failed:
            journal.reset_for_retry(name)
            job = _job(journal, name)
        if job.state == "done" and not _result_intact(job):
            if job.result_url or job.task_id:
                journal.record_task(name, status="completed", progress=100,
                                    credits_reserved_units=None)
            else:
                journal.set_state(name, "failed", error="the result file is missing or changed, "
                                  "and no result URL is known", error_exit=6)
            job = _job(journal, name)
        if job.state in NOT_SENT:
            for key in job.clip_keys:
                if key not in checked:
                    checked[key] = _check_prepared(journal, key)
        if job.state in FOLLOWED:
            follow.append(name)
    return Reconciled(to_follow=tuple(follow))


def _job(journal: Journal, name: str) -> JobRecord:
    job = journal.job(name)
    if job is None:
        raise ValueError(f"job {name!r} is not in the journal")
    return job


def _check_prepared(journal: Journal, key: str) -> bool:
    clip = journal.clip(key)
    if clip is None or not clip.prepared_path:
        return False
    path = Path(clip.prepared_path)
    try:
        intact = path.is_file() and path.stat().st_size == clip.prepared_bytes \
            and file_sha256(path) == clip.prepared_sha256
    except OSError:
        intact = False
    if not intact:
        journal.forget_prepared(key, "the prepared file is missing or changed")
    return intact


def _result_intact(job: JobRecord) -> bool:
    if not job.result_path:
        return False
    path = Path(job.result_path)
    try:
        return path.is_file() and path.stat().st_size == job.result_bytes
    except OSError:
        return False


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
