"""Fault injection: planned misbehaviour for the next matching requests.

A fault names what goes wrong (`kind`), which endpoint it hits (`endpoint`, any when None), for which
API key (`key`, any when None) and how many requests it affects (`times`; None is every request
until cleared). Kinds:

- `rate_limit`: 429 `rate_limit_exceeded` with a `Retry-After` header (`retry_after_s`).
- `server_error`: 500 `internal_error`; nothing is done.
- `slow`: the answer is delayed by `delay_s`, then the request is served normally.
- `drop_mid_request`: part of the body is read, then the connection is cut; nothing is done.
- `drop_mid_response`: the request is served (a task or file IS created), the status line, headers
  and half the body are sent, then the connection is cut.
- `drop_after_create`: the request is served (a task or file IS created), then the connection is
  closed with no answer at all: the client cannot know the outcome.
- `fail_task`: the next task created fails while processing (`generate` only); its `error.code`
  is `error_code` (a task error code EvoLink's clients know; by default content_policy_violation,
  which they must not retry unchanged).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from . import limits

__all__ = ["ENDPOINTS", "KINDS", "TASK_ERROR_CODES", "Fault", "FaultBook", "parse_fault"]

KINDS = (
    "rate_limit", "server_error", "slow", "drop_mid_request", "drop_mid_response",
    "drop_after_create", "fail_task",
)
# Alias used in prep's style guide examples.
_ALIASES = {"reset_mid_body": "drop_mid_request"}
# What a fault can target: the two upload endpoints, quota, the files list, delete, task creation,
# task query, the task list and batch query, credits, and downloads of file and result URLs.
ENDPOINTS = ("upload", "quota", "files", "delete", "generate", "task", "tasks", "credits",
             "download")
# The task error codes a fail_task fault may carry; the first is the default.
TASK_ERROR_CODES = tuple(limits.TASK_ERRORS)


@dataclass(slots=True, kw_only=True)
class Fault:
    """One planned fault; `times` counts down as requests take it."""

    kind: str
    endpoint: str | None = None
    key: str | None = None
    times: int | None = 1
    retry_after_s: int = 1
    delay_s: float = 2.0
    error_code: str = TASK_ERROR_CODES[0]

    def matches(self, endpoint: str, key: str | None) -> bool:
        if self.kind == "fail_task" and endpoint != "generate":
            return False
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        return self.key is None or self.key == key

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out["key"] = None if self.key is None else "<set>"
        return out


def parse_fault(body: Any) -> Fault:
    """A Fault from the JSON of `POST /_sandbox/faults`. ValueError names what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("send a JSON object such as {\"kind\": \"rate_limit\"}")
    unknown = set(body) - {"kind", "endpoint", "key", "times", "retry_after_s", "delay_s",
                           "error_code"}
    if unknown:
        raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
    kind = body.get("kind")
    kind = _ALIASES.get(kind, kind) if isinstance(kind, str) else kind
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    endpoint = body.get("endpoint")
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)} (or null for any)")
    key = body.get("key")
    if key is not None and not isinstance(key, str):
        raise ValueError("key must be a string")
    times = body.get("times", 1)
    if times is not None and (type(times) is not int or times < 1):
        raise ValueError("times must be a whole number of 1 or more, or null for every request")
    retry_after = body.get("retry_after_s", 1)
    if type(retry_after) is not int or retry_after < 0:
        raise ValueError("retry_after_s must be a whole number of seconds")
    delay = body.get("delay_s", 2.0)
    if type(delay) not in (int, float) or not 0 <= delay <= 600:
        raise ValueError("delay_s must be a number of seconds from 0 to 600")
    error_code = body.get("error_code", TASK_ERROR_CODES[0])
    if error_code not in TASK_ERROR_CODES:
        raise ValueError(f"error_code must be one of {', '.join(TASK_ERROR_CODES)}")
    return Fault(kind=kind, endpoint=endpoint, key=key, times=times,
                 retry_after_s=retry_after, delay_s=float(delay), error_code=error_code)


class FaultBook:
    """The planned faults, taken first-in first-out by the requests they match."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, endpoint: str, key: str | None) -> Fault | None:
        """The first fault matching this request, counted down (and removed when used up)."""
        for fault in self._faults:
            if fault.matches(endpoint, key):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def public(self) -> list[dict[str, Any]]:
        return [f.public() for f in self._faults]
