"""The engine's failure policy (`prep.jobs.policy.decide`), by table: pure, no server, no clock."""

from __future__ import annotations

import pytest

from prep.errors import (
    ApiError,
    AuthError,
    MediaError,
    NetworkError,
    OutcomeUnknownError,
    PrepError,
    QuotaError,
    RateLimitError,
    RequestRejected,
    ServerError,
    TaskNotFoundError,
    UsageError,
)
from prep.jobs.policy import DEFAULT_PACING, Decision, Pacing, Step, Verdict, decide

PACING = Pacing(max_deferrals=2, defer_base_ms=100, max_defer_factor=8, max_poll_failures=3)


def _429(retry_after_ms: int | None = None) -> RateLimitError:
    err = RateLimitError("HTTP 429", status=429)
    err.retry_after_ms = retry_after_ms
    return err


def _5xx() -> ServerError:
    return ServerError("HTTP 503", status=503)


def _400(message: str = "prompt refused") -> RequestRejected:
    return RequestRejected(message, status=400)


V = Verdict
EVERY_NETWORK_STEP = (Step.UPLOAD, Step.CREATE, Step.POLL, Step.POLL_MANY, Step.DOWNLOAD)

CASES: list[tuple[Step, PrepError, int, Decision]] = [
    # A rate limit paces the whole run, however often it comes: never counted, never final.
    *[(step, _429(1000), 1, Decision(verdict=V.PACE, delay_ms=1000, pause_run=True, counted=False))
      for step in EVERY_NETWORK_STEP],
    *[(step, _429(), 99, Decision(verdict=V.PACE, delay_ms=200, pause_run=True, counted=False))
      for step in EVERY_NETWORK_STEP],
    (Step.POLL_MANY, _429(0), 1000, Decision(verdict=V.PACE, pause_run=True, counted=False)),
    # prepare: whatever goes wrong fails its clip's jobs
    (Step.PREPARE, MediaError("a.mp4", "no video stream"), 1, Decision(verdict=V.FAIL)),
    (Step.PREPARE, _429(), 1, Decision(verdict=V.FAIL)),
    # upload: passing failures are tried again, each pause twice as long, up to max_deferrals
    (Step.UPLOAD, _5xx(), 1, Decision(verdict=V.RETRY, delay_ms=200, pause_run=True)),
    (Step.UPLOAD, NetworkError("cannot reach"), 2,
     Decision(verdict=V.RETRY, delay_ms=400, pause_run=True)),
    (Step.UPLOAD, _5xx(), 3, Decision(verdict=V.FAIL)),
    (Step.UPLOAD, ApiError("HTTP 413", status=413), 1, Decision(verdict=V.FAIL)),
    # download: the same, and a link that answers 401/403/404/410 has expired: exit 6
    (Step.DOWNLOAD, _5xx(), 2, Decision(verdict=V.RETRY, delay_ms=400, pause_run=True)),
    (Step.DOWNLOAD, _5xx(), 3, Decision(verdict=V.FAIL)),
    (Step.DOWNLOAD, ApiError("HTTP 403", status=403), 1, Decision(verdict=V.FAIL, exit_code=6)),
    (Step.DOWNLOAD, ApiError("HTTP 410", status=410), 1, Decision(verdict=V.FAIL, exit_code=6)),
    (Step.DOWNLOAD, PrepError("disk full"), 1, Decision(verdict=V.FAIL)),
    # create: never re-sent blindly
    (Step.CREATE, OutcomeUnknownError("no answer"), 1, Decision(verdict=V.UNKNOWN)),
    (Step.CREATE, NetworkError("cannot reach"), 1,
     Decision(verdict=V.RETRY, delay_ms=200, pause_run=True)),
    (Step.CREATE, NetworkError("cannot reach"), 3, Decision(verdict=V.NOT_SUBMITTED)),
    (Step.CREATE, QuotaError("HTTP 402", status=402), 1,
     Decision(verdict=V.NOT_SUBMITTED, halt=True)),
    (Step.CREATE, AuthError("HTTP 401", status=401), 1,
     Decision(verdict=V.NOT_SUBMITTED, halt=True)),
    (Step.CREATE, _400("video_urls[0]: the file has expired"), 1, Decision(verdict=V.REFRESH)),
    (Step.CREATE, _400("could not fetch video_urls[0]"), 2, Decision(verdict=V.FAIL)),
    (Step.CREATE, _400(), 1, Decision(verdict=V.FAIL)),
    (Step.CREATE, _5xx(), 1, Decision(verdict=V.FAIL)),  # the client makes 5xx unknown first
    # task queries: only a task that is gone stops being followed at once
    (Step.POLL, TaskNotFoundError("no task t1", status=404), 1, Decision(verdict=V.STOP_FOLLOWING)),
    (Step.POLL, _400("bad task id"), 1, Decision(verdict=V.STOP_FOLLOWING)),
    (Step.POLL, UsageError("bad task id"), 1, Decision(verdict=V.STOP_FOLLOWING)),
    (Step.POLL, AuthError("HTTP 401", status=401), 1,
     Decision(verdict=V.STOP_FOLLOWING, halt=True)),
    (Step.POLL, _5xx(), 1, Decision(verdict=V.RETRY, delay_ms=200)),
    (Step.POLL, NetworkError("timed out"), 2, Decision(verdict=V.RETRY, delay_ms=400)),
    (Step.POLL, _5xx(), 3, Decision(verdict=V.STOP_FOLLOWING)),
    (Step.POLL_MANY, _5xx(), 1, Decision(verdict=V.RETRY, delay_ms=200)),
    (Step.POLL_MANY, _5xx(), 3, Decision(verdict=V.STOP_FOLLOWING)),
    (Step.POLL, QuotaError("HTTP 402", status=402), 1,
     Decision(verdict=V.RETRY, delay_ms=200, halt=True)),
    (Step.POLL, QuotaError("HTTP 402", status=402), 3,
     Decision(verdict=V.STOP_FOLLOWING, halt=True)),
]


@pytest.mark.parametrize(("step", "error", "attempts", "expected"), CASES,
                         ids=[f"{c[0].value}-{type(c[1]).__name__}-{c[2]}" for c in CASES])
def test_decide(step: Step, error: PrepError, attempts: int, expected: Decision) -> None:
    assert decide(step, error, attempts, PACING) == expected


def test_every_step_and_error_family_has_a_decision() -> None:
    errors = [_429(), _429(5), _5xx(), NetworkError("x"), OutcomeUnknownError("x"), QuotaError("x"),
              AuthError("x"), _400(), TaskNotFoundError("x"), UsageError("x"), PrepError("x"),
              MediaError("a", "x")]
    for step in Step:
        for error in errors:
            for attempts in (1, 2, 50):
                decision = decide(step, error, attempts)
                assert decision.delay_ms >= 0
                # only a step that is tried again waits, and only a rate limit goes uncounted
                assert (decision.delay_ms > 0) <= (decision.verdict in (V.PACE, V.RETRY))
                assert decision.counted == (decision.verdict is not V.PACE)


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [DEFAULT_PACING.backoff_ms(n) for n in (0, 1, 2, 5, 6, 7, 1000)] == [
        1000, 2000, 4000, 32_000, 60_000, 60_000, 60_000]


@pytest.mark.parametrize("fields", [{"max_deferrals": -1}, {"max_poll_failures": 0},
                                    {"retry_attempts": 0}, {"poll_initial_ms": 0},
                                    {"defer_base_ms": -5}])
def test_pacing_refuses_impossible_values(fields: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Pacing(**fields)
