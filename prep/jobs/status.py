"""Where each job of a batch stands, read from its journal (no network), and the error it ends with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prep.core.billing import credits_number
from prep.errors import (
    ExitCode,
    JobError,
    OutcomeUnknownError,
    PrepError,
    TaskFailedError,
    TaskTimeoutError,
)
from prep.jobs.journal import ClipRecord, Journal
from prep.jobs.recover import LOST_JOURNAL

__all__ = ["JobStatus", "batch_status", "job_error"]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatus:
    """Where one job of a batch stands, from its journal (no network)."""

    name: str
    line: int
    state: str
    clips_total: int
    clips_prepared: int
    clips_uploaded: int
    task_id: str | None
    task_status: str | None
    progress: int | None
    estimate_units: int | None
    measured_units: int | None
    credits_reserved_units: int | None
    result_path: str | None
    result_sha256: str | None
    result_bytes: int | None
    error: str | None
    error_exit: int | None
    submissions: int
    idempotency_key: str | None
    encoding: tuple[int, int] | None = None  # (encoded ms, total ms) of its clips being prepared

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of one job in `prep batch status --json` and the batch summary."""
        return {
            "name": self.name,
            "line": self.line,
            "state": self.state,
            "clips": {"total": self.clips_total, "prepared": self.clips_prepared,
                      "uploaded": self.clips_uploaded},
            "task_id": self.task_id,
            "task_status": self.task_status,
            "progress": self.progress,
            "estimate_credits": None if self.estimate_units is None else credits_number(self.estimate_units),
            "measured_credits": None if self.measured_units is None else credits_number(self.measured_units),
            "credits_reserved": (None if self.credits_reserved_units is None
                                 else credits_number(self.credits_reserved_units)),
            "credits_reserved_units": self.credits_reserved_units,
            "result_path": self.result_path,
            "result_sha256": self.result_sha256,
            "result_bytes": self.result_bytes,
            "error": self.error,
            "exit_code": self.exit_code,
            "submissions": self.submissions,
            "idempotency_key": self.idempotency_key,
            "encoding": (None if self.encoding is None else
                         {"encoded_s": self.encoding[0] / 1000, "total_s": self.encoding[1] / 1000}),
        }

    @property
    def exit_code(self) -> int:
        """What this job's outcome means as an exit code (0 done, 6 unknown, the error's code...)."""
        if self.state == "done":
            return ExitCode.OK
        if self.state == "unknown":
            return ExitCode.SERVICE
        if self.error_exit:
            return self.error_exit
        # Unfinished with no error: the batch stopped before it (interrupted).
        return ExitCode.INTERNAL if self.state == "failed" else ExitCode.INTERRUPTED


def job_error(status: JobStatus, out_dir: Path, *, timed_out: bool = False) -> PrepError | None:
    """The one mapping from where a job stands to the error (and exit code) a command ends with.

    None when the job is done. `timed_out`: the run stopped following a running task at its
    deadline (the task goes on at EvoLink; running the same command again picks it up).
    """
    again = f"run the same command again to pick it up (journal in {out_dir})"
    if status.state == "done":
        return None
    if status.state == "unknown" and status.error and status.error.startswith(LOST_JOURNAL):
        return OutcomeUnknownError(
            f"job {status.name}: {status.error}",
            hint=f"if one of them is this job's: `prep batch resolve {out_dir} {status.name} "
                 f"--task-id ID`; if none is: `prep batch resolve {out_dir} {status.name} "
                 "--not-created`; then run again")
    if status.state == "unknown":
        return OutcomeUnknownError(
            f"job {status.name}: outcome unknown: the create request was sent and no answer came "
            "back, so the task may exist",
            hint=f"look for it in your EvoLink dashboard, then `prep batch resolve {out_dir} "
                 f"{status.name} --task-id ID` (or `--not-created`), or run again with --resubmit")
    if status.state == "failed" and status.error_exit == TaskFailedError.exit_code:
        return TaskFailedError(f"job {status.name}: {status.error}", task_id=status.task_id or "",
                               hint="failed tasks are not billed; change the prompt or clips and "
                                    "run again, or run it unchanged with --retry-failed")
    if timed_out:
        return TaskTimeoutError(f"job {status.name}: task {status.task_id} is still "
                                f"{status.task_status or 'running'} at the deadline; it goes on at "
                                "EvoLink", task_id=status.task_id or "", hint=again)
    if status.state == "failed":
        return JobError(f"job {status.name}: {status.error}", exit_code=status.exit_code,
                        hint="fix the cause, then run again with --retry-failed"
                        if not status.task_id else again)
    if status.error:
        return JobError(f"job {status.name} is {status.state}: {status.error}",
                        exit_code=status.exit_code, hint=again)
    return JobError(f"job {status.name} stopped while {status.state}", exit_code=status.exit_code,
                    hint=again)


def _encoding(out_dir: Path, clips: Sequence[ClipRecord]) -> tuple[int, int] | None:
    """How far the encodes of these clips are, from their workers' progress files (or None)."""
    from prep.jobs.layout import prepared_dir, read_progress

    found = [p for p in (read_progress(prepared_dir(out_dir, c.key)) for c in clips) if p]
    if not found:
        return None
    return sum(p[0] for p in found), sum(p[1] for p in found)


def batch_status(journal: Journal, *, now: float, upload_margin_s: float = 0) -> list[JobStatus]:
    """Every job of the journal and where it stands, in manifest order."""
    clips = {c.key: c for c in journal.clips()}
    rows = []
    for job in journal.jobs():
        records = [clips[k] for k in job.clip_keys if k in clips]
        subs = journal.submissions(job.name)
        rows.append(JobStatus(
            name=job.name, line=job.line, state=job.state, clips_total=len(job.clip_keys),
            clips_prepared=sum(1 for c in records if c.prepared_path),
            clips_uploaded=sum(1 for c in records if c.upload_fresh(now, upload_margin_s)),
            task_id=job.task_id, task_status=job.task_status, progress=job.progress,
            estimate_units=job.estimate_units, measured_units=job.measured_units,
            credits_reserved_units=job.credits_reserved_units,
            result_path=job.result_path, result_sha256=job.result_sha256,
            result_bytes=job.result_bytes, error=job.error, error_exit=job.error_exit,
            submissions=len(subs), idempotency_key=subs[-1].idempotency_key if subs else None,
            encoding=_encoding(journal.path.parent, [c for c in records if not c.prepared_path]),
        ))
    return rows
