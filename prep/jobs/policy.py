"""What a run does when one of its steps fails: one pure decision, and the pace it keeps.

`decide(step, error, attempts)` is the whole failure policy of the engine (`prep.jobs.engine`): the
runner asks it about every error a step ends with and carries out the `Decision`, so the rules
read in one place and are tested by a table, with no server and no clock. The rules:

- **A rate limit slows the run, it never fails a job.** A 429 on any endpoint pauses the whole
  run (for the server's Retry-After when it sent one) and the step is tried again; it is not
  counted as a failure, so a burst of 429s can never use up a job's patience.
- **A passing failure is tried again, a bounded number of times** (a 5xx, a server that cannot
  be reached): uploads, creates and downloads up to `Pacing.max_deferrals` times, each after a
  longer pause; task queries up to `Pacing.max_poll_failures` failures in a row.
- **Only a task that is gone stops being followed at once** (404, a refused id, a key without
  access); the task goes on at EvoLink otherwise, and the next run follows it again.
- **A create is never re-sent blindly**: an unknown outcome stays unknown; a refused reference
  is uploaded afresh once and sent again; an account problem (no credits, a bad key) stops every
  create of the run and leaves the jobs ready for the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from prep.errors import (
    ApiError,
    AuthError,
    ExitCode,
    NetworkError,
    OutcomeUnknownError,
    PrepError,
    QuotaError,
    RateLimitError,
    RequestRejected,
    ServiceUnreachable,
    TaskNotFoundError,
    UsageError,
)

__all__ = ["DEFAULT_PACING", "Decision", "Pacing", "Step", "Verdict", "decide"]


class Step(Enum):
    """The steps of a job, as the runner schedules them."""

    PREPARE = "prepare"  # one clip made compliant (ffmpeg, the cpu pool)
    UPLOAD = "upload"  # one prepared clip sent to the files API
    CREATE = "create"  # the job's create request
    POLL = "poll"  # one task query (GET /v1/tasks/ID)
    POLL_MANY = "poll many"  # one query for several tasks (POST /v1/tasks/batch)
    DOWNLOAD = "download"  # the result video


class Verdict(Enum):
    """What becomes of a step that failed."""

    PACE = "pace"  # rate limited: pause the run, then the same step again (not a failure)
    RETRY = "retry"  # a passing failure: the same step again after a pause (counted)
    STOP_FOLLOWING = "stop following"  # the task goes on at EvoLink; the next run follows it
    FAIL = "fail"  # the job fails with this error
    NOT_SUBMITTED = "not submitted"  # no task was made: the job stays ready for the next run
    UNKNOWN = "unknown"  # a create may have made a task: journaled, never re-sent by itself
    REFRESH = "refresh"  # the server refused the references: upload afresh, then create again


@dataclass(frozen=True, slots=True, kw_only=True)
class Pacing:
    """How patiently a run meets a busy or failing service (defaults are the CLI's).

    Tests pass a quick one (milliseconds instead of seconds); what they check is the outcome."""

    max_deferrals: int = 8  # tries of an upload, create or download after passing failures
    defer_base_ms: int = 1000  # the first pause; each next one twice as long, up to 60 times
    max_defer_factor: int = 60
    max_poll_failures: int = 3  # task queries failing in a row (429s aside) before unfollowing
    retry_attempts: int = 4  # the client's own tries of one call, before the run decides
    retry_base_ms: int = 1000  # the client's first retry pause (doubling, up to 20 times)
    poll_initial_ms: int | None = None  # None: 1 s against EvoLink, 0.2 s against a sandbox
    poll_max_ms: int | None = None  # None: the settings' poll_max_interval_s (8 s; 2 s sandbox)

    def __post_init__(self) -> None:
        if min(self.max_deferrals, self.defer_base_ms, self.retry_base_ms) < 0:
            raise ValueError("pacing counts and pauses cannot be negative")
        if min(self.max_defer_factor, self.max_poll_failures, self.retry_attempts) < 1:
            raise ValueError("max_defer_factor, max_poll_failures and retry_attempts are >= 1")
        if any(ms is not None and ms <= 0 for ms in (self.poll_initial_ms, self.poll_max_ms)):
            raise ValueError("poll intervals must be positive")

    def backoff_ms(self, attempts: int) -> int:
        """The pause after the `attempts`-th failure in a row: doubling, up to the cap."""
        return self.defer_base_ms * min(1 << min(max(attempts, 0), 30), self.max_defer_factor)


DEFAULT_PACING = Pacing()


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What the runner does about one failed step.

    `delay_ms` is the pause before the step is tried again (PACE, RETRY); `pause_run` brakes every
    call of the run for that long, not only this step; `counted` says whether this failure counts
    toward the step's limit (a rate limit never does); `halt` stops every create of the run (the
    account cannot go on); `exit_code` replaces the error's own for a failed job."""

    verdict: Verdict
    delay_ms: int = 0
    pause_run: bool = False
    counted: bool = True
    halt: bool = False
    exit_code: int | None = None


# Words of a 400 on create that mean the server could not fetch an uploaded reference.
_REFERENCE_WORDS = ("expire", "not found", "fetch", "download")
# A result link that answers these has expired (or was never ours): the task must be read again.
_GONE_LINK_STATUSES = (401, 403, 404, 410)


def _passing(error: PrepError) -> bool:
    """A failure that may clear by itself: the server unreachable or answering 5xx."""
    return isinstance(error, NetworkError) or (
        isinstance(error, ApiError) and error.status is not None and error.status >= 500)


def decide(step: Step, error: PrepError, attempts: int, pacing: Pacing = DEFAULT_PACING) -> Decision:
    """What to do about `error` ending `step`, its `attempts`-th counted failure in a row
    (this one included). Pure: no I/O, no clock; see the module docstring for the rules."""
    if isinstance(error, RateLimitError) and step is not Step.PREPARE:
        wait_ms = error.retry_after_ms
        return Decision(verdict=Verdict.PACE, pause_run=True, counted=False,
                        delay_ms=pacing.backoff_ms(1) if wait_ms is None else wait_ms)
    if isinstance(error, ServiceUnreachable):
        # Tried for the whole connect timeout already: every other call would wait as long.
        verdict = {Step.CREATE: Verdict.NOT_SUBMITTED, Step.POLL: Verdict.STOP_FOLLOWING,
                   Step.POLL_MANY: Verdict.STOP_FOLLOWING}.get(step, Verdict.FAIL)
        return Decision(verdict=verdict, halt=True)
    if step is Step.CREATE:
        return _create(error, attempts, pacing)
    if step in (Step.POLL, Step.POLL_MANY):
        return _poll(error, attempts, pacing)
    if step is Step.PREPARE:
        return Decision(verdict=Verdict.FAIL)
    # Upload and download: passing failures are tried again, anything else fails the job.
    if _passing(error) and attempts <= pacing.max_deferrals:
        return Decision(verdict=Verdict.RETRY, delay_ms=pacing.backoff_ms(attempts),
                        pause_run=True)
    if step is Step.DOWNLOAD and isinstance(error, ApiError) \
            and error.status in _GONE_LINK_STATUSES:
        return Decision(verdict=Verdict.FAIL, exit_code=ExitCode.SERVICE)
    return Decision(verdict=Verdict.FAIL)


def _create(error: PrepError, attempts: int, pacing: Pacing) -> Decision:
    if isinstance(error, OutcomeUnknownError):
        return Decision(verdict=Verdict.UNKNOWN)
    if isinstance(error, ApiError) and error.status == 409:
        # The Idempotency-Key was used before with another body (references uploaded afresh
        # after a lost journal): a task exists for it, so the job's outcome is for the user.
        return Decision(verdict=Verdict.UNKNOWN)
    if isinstance(error, NetworkError):  # the connection was never made: nothing reached EvoLink
        if attempts <= pacing.max_deferrals:
            return Decision(verdict=Verdict.RETRY, delay_ms=pacing.backoff_ms(attempts),
                            pause_run=True)
        return Decision(verdict=Verdict.NOT_SUBMITTED)
    if isinstance(error, (QuotaError, AuthError)):
        # Not this job's fault: every later create would fail the same way.
        return Decision(verdict=Verdict.NOT_SUBMITTED, halt=True)
    if isinstance(error, RequestRejected) and attempts <= 1 \
            and any(word in error.message.lower() for word in _REFERENCE_WORDS):
        return Decision(verdict=Verdict.REFRESH)
    return Decision(verdict=Verdict.FAIL)


def _poll(error: PrepError, attempts: int, pacing: Pacing) -> Decision:
    if isinstance(error, (TaskNotFoundError, RequestRejected, UsageError)):
        return Decision(verdict=Verdict.STOP_FOLLOWING)  # the task is gone, or never was
    if isinstance(error, AuthError):
        return Decision(verdict=Verdict.STOP_FOLLOWING, halt=True)
    halt = isinstance(error, QuotaError)
    if attempts >= pacing.max_poll_failures:
        return Decision(verdict=Verdict.STOP_FOLLOWING, halt=halt)
    return Decision(verdict=Verdict.RETRY, delay_ms=pacing.backoff_ms(attempts), halt=halt)
