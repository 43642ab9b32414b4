"""The EvoLink client: auth, typed errors, retries, safe task creation, polling and downloads.

Two hosts carry the key: the generation API (`base_url`) and the files API (`files_url`). File and
result URLs live on other hosts (CDN links) and are fetched with a second httpx client that has no
auth at all, so the key cannot leak there even by accident.

Retries use exponential backoff with jitter and honour `Retry-After` (capped). Uploads, task queries
and downloads are retried on 429, 5xx and network failures. Creating a task costs money, so it is
retried only when the answer proves the request was not accepted (429, or a connection that could
not be opened); any other failure after the body was sent is an unknown outcome: the client stops
with OutcomeUnknownError instead of paying twice. The error carries the Idempotency-Key, the body,
the URL and the reason; keeping a record of it is the caller's business (the job journal), and the
client writes nothing to disk except the downloads it is asked for.

This module is the bottom of the API layer: it imports nothing from prep.api.upload (which builds
on it) nor from prep.jobs.
"""

from __future__ import annotations

import email.utils
import errno
import logging
import os
import random
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from prep.core import rules
from prep.core.billing import UNITS_PER_CREDIT
from prep.errors import (
    ApiError,
    AuthError,
    MediaError,
    NetworkError,
    OutcomeUnknownError,
    QuotaError,
    RateLimitError,
    RequestRejected,
    ServerError,
    ServiceUnreachable,
    TaskFailedError,
    TaskNotFoundError,
    TaskTimeoutError,
    UploadRejected,
    UsageError,
)

if TYPE_CHECKING:
    from prep.core.request import GenerationRequest
    from prep.settings import Settings

__all__ = [
    "Credits",
    "DEFAULT_CONNECT_DEADLINE_S",
    "DEFAULT_POLL",
    "DEFAULT_POLL_DEADLINE_S",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "Client",
    "PollPolicy",
    "RetryPolicy",
    "Task",
    "TaskPage",
    "error_from_response",
    "new_idempotency_key",
    "result_filename",
]

log = logging.getLogger("prep.api.client")

# Connecting should be quick; a 134 MB base64 body on a slow uplink takes a while to write; the
# generation API answers within seconds; waiting for a free pooled connection should be short.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, write=120.0, read=60.0, pool=10.0)
# How long a service that cannot be connected to is tried again before prep says so (the
# `connect_timeout_s` setting, `--connect-timeout`): every command and the studio share it.
DEFAULT_CONNECT_DEADLINE_S = 60.0

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-evolink-request-id", "x-trace-id")
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Box types an ISO-BMFF / QuickTime file may start with.
_MP4_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")

Sleep = Callable[[float], None]
Clock = Callable[[], float]
ProgressFn = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry: `attempts` tries in all, delays doubling from
    `base_delay_s` up to `max_delay_s`, with jitter; a `Retry-After` is honoured up to
    `max_retry_after_s`."""

    attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError("attempts must be >= 1 and 0 <= base_delay_s <= max_delay_s")

    def delay_s(self, failures: int, retry_after_s: float | None, rand: float) -> float:
        """Seconds to wait after the `failures`-th failure (1-based); `rand` is in [0, 1)."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_retry_after_s)
        ceiling = min(self.base_delay_s * 2.0 ** (failures - 1), self.max_delay_s)
        return ceiling * (0.5 + rand / 2)  # "equal jitter": never less than half the ceiling


# How long `wait` follows a task before it gives up (the task goes on without prep).
DEFAULT_POLL_DEADLINE_S = 30 * 60.0
# Against EvoLink each read makes it ask the upstream provider, so start at 1 s and slow to its own
# pace (the settings' poll_max_interval_s, 8 s by default). A sandbox or proxy on another URL answers
# locally: start at 0.2 s and never wait more than 2 s between reads.
_SERVICE_POLL_INITIAL_S = 1.0
_LOCAL_POLL_INITIAL_S = 0.2
_LOCAL_POLL_MAX_S = 2.0
_POLL_FLOOR_S = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class PollPolicy:
    """How to follow a task: from `initial_s` growing by `factor` to `max_s` between reads; give up
    after `deadline_s` (None: never)."""

    initial_s: float = _SERVICE_POLL_INITIAL_S
    factor: float = 1.5
    max_s: float = float(rules.SERVICE_POLL_INTERVAL_S)
    deadline_s: float | None = DEFAULT_POLL_DEADLINE_S

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.factor < 1 or self.max_s < self.initial_s:
            raise ValueError("poll intervals must be positive, growing, and initial_s <= max_s")
        if self.deadline_s is not None and self.deadline_s <= 0:
            raise ValueError("deadline_s must be positive")

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        *,
        initial_s: float | None = None,
        max_s: float | None = None,
        deadline_s: float | None = DEFAULT_POLL_DEADLINE_S,
    ) -> PollPolicy:
        """The pace for the service `settings` talk to: from 1 s up to `poll_max_interval_s`
        against EvoLink; from 0.2 s up to at most 2 s against a sandbox or proxy on another URL.

        `initial_s` and `max_s` replace the start and the ceiling (the 2 s ceiling off EvoLink still
        holds); the start never exceeds the ceiling, and no ceiling is below 0.05 s."""
        service = settings.is_default_service
        cap = settings.poll_max_interval_s if max_s is None else max_s
        if not service:
            cap = min(cap, _LOCAL_POLL_MAX_S)
        cap = max(cap, _POLL_FLOOR_S)
        if initial_s is None:
            initial_s = _SERVICE_POLL_INITIAL_S if service else _LOCAL_POLL_INITIAL_S
        return cls(initial_s=min(initial_s, cap), max_s=cap, deadline_s=deadline_s)


DEFAULT_RETRY = RetryPolicy()
DEFAULT_POLL = PollPolicy()


def _credits_units(value: Any) -> int | None:
    """A credit amount from the API as integer units (1/10,000 credit), or None when it is not a
    non-negative number. A JSON float goes through its shortest repr, the digits the server wrote;
    a fraction of a unit rounds half up, as prep's own bill does."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0:
        return None
    return int((amount * UNITS_PER_CREDIT).to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """A generation task as the API last described it."""

    id: str
    status: str
    progress: int = 0
    model: str | None = None
    created: int | None = None
    estimated_time_s: int | None = None
    can_cancel: bool | None = None
    results: tuple[str, ...] = ()
    credits_reserved_units: int | None = None
    billing_rule: str | None = None
    user_group: str | None = None
    error_message: str | None = None
    error_code: str | None = None
    replayed: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any, *, replayed: bool = False) -> Task:
        """Build from the API's JSON; ApiError when the body is not a task."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise ApiError("the API answered with something that is not a task (no id)",
                           hint="check EVOLINK_BASE_URL points at the EvoLink API")
        info: dict[str, Any] = _typed(data, "task_info", dict) or {}
        usage: dict[str, Any] = _typed(data, "usage", dict) or {}
        message, code = _task_error(data.get("error"))
        results = _typed(data, "results", list) or []
        progress = _typed(data, "progress", int | float)
        estimated = _typed(info, "estimated_time", int | float)
        return cls(
            id=data["id"],
            status=str(data.get("status") or "unknown").lower(),
            progress=0 if progress is None else max(0, min(100, int(progress))),
            model=_typed(data, "model", str),
            created=_typed(data, "created", int),
            estimated_time_s=None if estimated is None else int(estimated),
            can_cancel=_typed(info, "can_cancel", bool),
            results=tuple(u for u in results if isinstance(u, str)),
            credits_reserved_units=_credits_units(usage.get("credits_reserved")),
            billing_rule=_typed(usage, "billing_rule", str),
            user_group=_typed(usage, "user_group", str),
            error_message=message,
            error_code=code,
            replayed=replayed,
            raw=data,
        )

    @property
    def terminal(self) -> bool:
        """Completed, failed or cancelled: nothing will change any more."""
        return self.status in rules.TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        """Completed: `results` holds the video URLs."""
        return self.status == "completed"

    def raise_for_failure(self) -> None:
        """TaskFailedError (exit 7) when the task failed or was cancelled."""
        if self.status not in rules.UNBILLED_STATUSES:
            return
        reason = self.error_message or ("cancelled" if self.status == "cancelled" else "no reason given")
        raise TaskFailedError(
            f"task {self.id} {self.status}: {reason}",
            hint="failed and cancelled tasks are not billed; adjust the prompt or clips and run again",
            task_id=self.id,
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `prep task --json` (contract: extend, never rename).

        `credits_reserved_units` (int, 1/10,000 credit) is the amount to compute with;
        `credits_reserved` is the same in credits as a float, kept for display and for readers of
        the older shape."""
        return {
            "id": self.id,
            "status": self.status,
            "progress": self.progress,
            "model": self.model,
            "created": self.created,
            "estimated_time_s": self.estimated_time_s,
            "results": list(self.results),
            "credits_reserved": None if self.credits_reserved_units is None
            else self.credits_reserved_units / UNITS_PER_CREDIT,
            "credits_reserved_units": self.credits_reserved_units,
            "billing_rule": self.billing_rule,
            "user_group": self.user_group,
            "error": self.error_message,
        }


def _typed(data: dict[str, Any], key: str, kind: Any) -> Any:
    """`data[key]` when it is of type `kind` (a type or a union), else None: an answer's field
    that is missing or of another type is read as absent."""
    value = data.get(key)
    return value if isinstance(value, kind) else None


def _task_error(error: Any) -> tuple[str | None, str | None]:
    """A task's error as (message, code): an object's fields, or a bare text as the message."""
    if isinstance(error, dict):
        return str(error.get("message") or "") or None, str(error.get("code") or "") or None
    return (error or None) if isinstance(error, str) else None, None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Credits:
    """`GET /v1/credits`: what the account and this key have left and have used, in integer units
    (1/10,000 credit). A figure the answer does not carry is None.

    EvoLink answers `{"data": {"token": {"remaining_credits", "used_credits",
    "unlimited_credits"}, "user": {"remaining_credits", "used_credits"}}}`: `token` is the key,
    `user` the account. A key may carry its own cap, below the account's balance."""

    account_remaining_units: int | None = None
    account_used_units: int | None = None
    key_remaining_units: int | None = None
    key_used_units: int | None = None
    key_unlimited: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Any) -> Credits:
        """Build from the answer; ApiError when it is not a balance at all."""
        data = body.get("data", body) if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ApiError("reading the credits: the answer is not a balance",
                           hint="check EVOLINK_BASE_URL points at the EvoLink API")
        key = data.get("token") if isinstance(data.get("token"), dict) else {}
        account = data.get("user") if isinstance(data.get("user"), dict) else {}
        assert isinstance(key, dict) and isinstance(account, dict)
        return cls(
            account_remaining_units=_credits_units(account.get("remaining_credits")),
            account_used_units=_credits_units(account.get("used_credits")),
            key_remaining_units=_credits_units(key.get("remaining_credits")),
            key_used_units=_credits_units(key.get("used_credits")),
            key_unlimited=_bool(key.get("unlimited_credits")) or False,
            raw=data,
        )

    @property
    def spendable_units(self) -> int | None:
        """The most a task created with this key can cost now: the lower of the key's own
        remaining credits (unless it is unlimited) and the account's; None when neither is known."""
        limits = [u for u in (None if self.key_unlimited else self.key_remaining_units,
                              self.account_remaining_units) if u is not None]
        return min(limits) if limits else None

    @property
    def limited_by(self) -> Literal["key", "account"] | None:
        """Whose balance `spendable_units` is: the key's own cap or the account's."""
        spendable = self.spendable_units
        if spendable is None:
            return None
        if not self.key_unlimited and self.key_remaining_units == spendable:
            return "key"
        return "account"

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `prep account --json`'s `credits` (contract: extend, never rename)."""

        def number(units: int | None) -> float | None:
            return None if units is None else units / UNITS_PER_CREDIT

        return {
            "spendable": number(self.spendable_units),
            "spendable_units": self.spendable_units,
            "limited_by": self.limited_by,
            "key": {"remaining": number(self.key_remaining_units),
                    "remaining_units": self.key_remaining_units,
                    "used": number(self.key_used_units), "used_units": self.key_used_units,
                    "unlimited": self.key_unlimited},
            "account": {"remaining": number(self.account_remaining_units),
                        "remaining_units": self.account_remaining_units,
                        "used": number(self.account_used_units),
                        "used_units": self.account_used_units},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskPage:
    """One page of `GET /v1/tasks`: the account's tasks, newest first (no result links)."""

    tasks: tuple[Task, ...]
    total: int | None
    page: int
    page_size: int

    @property
    def pages(self) -> int | None:
        """How many pages there are, when the answer says how many tasks."""
        if self.total is None:
            return None
        return max(1, -(-self.total // self.page_size))

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `prep tasks --json` (contract: extend, never rename)."""
        return {"tasks": [t.as_dict() for t in self.tasks], "total": self.total,
                "page": self.page, "page_size": self.page_size, "pages": self.pages}


def new_idempotency_key() -> str:
    """A fresh Idempotency-Key: 'prep-' and 32 hex digits (fits 16-96 chars of [A-Za-z0-9._-])."""
    return "prep-" + secrets.token_hex(16)


def result_filename(task_id: str, index: int = 0, count: int = 1) -> str:
    """The local name of a task's result: the task id made safe, never a name the server chose.

    Anything outside [A-Za-z0-9._-] becomes '_', leading dots are dropped, so no id can climb out
    of the output folder or hide itself."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in task_id)
    safe = safe.lstrip(".")[:120] or "task"
    suffix = f"-{index + 1}" if count > 1 else ""
    return f"{safe}{suffix}.mp4"


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _request_id(response: httpx.Response, body: Any) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        if response.headers.get(name):
            return response.headers[name]
    if isinstance(body, dict):
        for key in ("request_id", "requestId"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return None


def _error_fields(body: Any) -> tuple[str, str, str]:
    """(message, code, type) from either API's error shape."""
    if not isinstance(body, dict):
        return "", "", ""
    error = body.get("error")
    if isinstance(error, dict):
        return (str(error.get("message") or ""), str(error.get("code") or ""),
                str(error.get("type") or ""))
    if isinstance(error, str):
        return error, "", ""
    # The files API: {"success": false, "code": 400, "msg": "..."}
    message = body.get("msg") or body.get("message") or ""
    return str(message), str(body.get("code") or ""), ""


def error_from_response(
    response: httpx.Response, *, what: str, rejected: type[ApiError] = RequestRejected
) -> ApiError:
    """The prep error for an HTTP error answer: the server's own message, its request id, a hint."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message, code, _kind = _error_fields(body)
    status = response.status_code
    if not message:
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        message = text or (response.reason_phrase or "error")
    message = f"{what}: HTTP {status}: {message}"
    request_id = _request_id(response, body)
    cls: type[ApiError]
    if status == 401:
        cls = AuthError
        hint = ("check the API key (EVOLINK_API_KEY or `prep config set api_key`); "
                "keys come from your EvoLink dashboard")
    elif status == 403:
        cls = AuthError
        hint = ("this key has no access to wan2.6-reference-video; enable the model for it in your "
                "EvoLink dashboard" if code == "model_access_denied" or "model" in message.lower()
                else "the key is not allowed to do this; check its permissions in the dashboard")
    elif status == 402:
        cls, hint = QuotaError, "top up credits in your EvoLink dashboard, then run again"
    elif status == 429:
        cls, hint = RateLimitError, "EvoLink is rate limiting this key; wait a minute and run again"
    elif status >= 500:
        cls, hint = ServerError, "EvoLink had a problem; try again in a few minutes"
    elif status in (400, 413, 415, 422):
        cls, hint = rejected, "the server's message says what to change"
    else:
        cls, hint = ApiError, ""
    error = cls(message, hint=hint, status=status, code=code or None, request_id=request_id)
    if isinstance(error, RateLimitError):
        wait_s = _retry_after_s(response)
        error.retry_after_ms = None if wait_s is None else round(wait_s * 1000)
    return error


def _task_not_found(response: httpx.Response, url: str, task_id: str) -> TaskNotFoundError:
    """The error for a 404 on a task id: an input problem (exit 3), not a network one.

    The server's own words are kept (first line) when it gave any; the hint says what causes it."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message, code, _kind = _error_fields(body)
    said = message.strip().splitlines()[0][:200] if message.strip() else ""
    return TaskNotFoundError(
        f"no task {task_id} at {_host(url)}: HTTP 404" + (f" ({said})" if said else ""),
        hint="check the task id (prep prints it when it submits a job); EvoLink keeps tasks for a "
             "limited time (result links expire 24 h after generation), so an old one may be gone",
        task_id=task_id, status=404, code=code or None, request_id=_request_id(response, body),
    )


def _host(url: str) -> str:
    return httpx.URL(url).host


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL: the address a refused connection was meant for."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


class Client:
    """EvoLink over HTTP. The key goes only to `base_url` and `files_url`, never anywhere else.

    `http` carries the authenticated calls, `public_http` the file and result URLs (no auth). Both
    default to fresh clients with `timeout`; tests inject MockTransport clients. `sleep`, `clock`
    and `rand` are injectable so retries and polling run instantly under test.
    """

    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str = rules.DEFAULT_BASE_URL,
        files_url: str = rules.DEFAULT_FILES_URL,
        http: httpx.Client | None = None,
        public_http: httpx.Client | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        rand: Callable[[], float] = random.random,
        connect_deadline_s: float = DEFAULT_CONNECT_DEADLINE_S,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        if connect_deadline_s <= 0:
            raise ValueError("connect_deadline_s must be positive")
        self._api_key = api_key or None
        self.connect_deadline_s = connect_deadline_s
        # Called with a line of text each time a connection is tried again (the studio shows it).
        self.on_retry = on_retry
        connect = (http.timeout.connect if http is not None else timeout.connect)
        self._connect_timeout_s = min(connect or 0.0, connect_deadline_s / 4)
        self.base_url = base_url.rstrip("/")
        self.files_url = files_url.rstrip("/")
        self._owned: list[httpx.Client] = []
        if http is None:
            http = httpx.Client(timeout=timeout, follow_redirects=False)
            self._owned.append(http)
        self._http = http
        if public_http is None:
            # A caller's client may carry default auth headers; then it is not fit for other hosts.
            if "authorization" not in http.headers and not self._owned:
                public_http = http
            else:
                public_http = httpx.Client(timeout=timeout, follow_redirects=True)
                self._owned.append(public_http)
        self._public = public_http
        self.retry = retry
        self._sleep = sleep
        self._clock = clock
        self._rand = rand

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Client:
        """A client for the hosts and key in `settings` (other keyword arguments as for Client)."""
        kwargs.setdefault("connect_deadline_s", settings.connect_timeout_s)
        return cls(settings.api_key, base_url=settings.base_url, files_url=settings.files_url,
                   **kwargs)

    def with_policy(self, *, retry: RetryPolicy | None = None, sleep: Sleep | None = None) -> Client:
        """This client (same class, key, hosts and HTTP connections) with other retries or another
        retry sleep. It owns no connections: closing it closes nothing, this client still does."""
        import copy

        other = copy.copy(self)
        other._owned = []
        other.retry = retry or self.retry
        other._sleep = sleep or self._sleep
        return other

    def __repr__(self) -> str:
        key = "set" if self._api_key else "missing"
        return f"Client(api_key=<{key}>, base_url={self.base_url!r}, files_url={self.files_url!r})"

    def close(self) -> None:
        """Close the HTTP clients this object made itself."""
        for http in self._owned:
            http.close()
        self._owned.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------

    def _auth_headers(self, url: str) -> dict[str, str]:
        if not self._api_key:
            raise AuthError("no EvoLink API key is configured",
                            hint="set EVOLINK_API_KEY, or run `prep config set api_key` (stored 0600)")
        if _host(url) not in (_host(self.base_url), _host(self.files_url)):
            raise ValueError("the API key is only ever sent to the API and files hosts")
        return {"Authorization": f"Bearer {self._api_key}"}

    def _backoff(self, failures: int, retry_after_s: float | None, what: str, why: str) -> None:
        delay = self.retry.delay_s(failures, retry_after_s, self._rand())
        log.info("%s: %s; retrying in %.1f s (attempt %d of %d)", what, why, delay, failures + 1,
                 self.retry.attempts)
        self._sleep(delay)

    def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        json_body: Any = None,
        content: Callable[[], Iterable[bytes]] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        mode: Literal["retry", "create"] = "retry",
        ok_statuses: Iterable[int] = (),
        rejected: type[ApiError] = RequestRejected,
    ) -> httpx.Response:
        """One authenticated call with the retry rules of `mode`; the response is read in full.

        In "create" mode only answers that prove the request was not accepted are retried; an
        unknown outcome raises a private _Unknown for create_task to turn into its error."""
        all_headers = {**self._auth_headers(url), **(headers or {})}
        failures = 0
        unreachable_since: float | None = None
        waited = 0.0
        while True:
            try:
                kwargs: dict[str, Any] = {"headers": all_headers}
                if params:
                    kwargs["params"] = dict(params)
                if content is not None:
                    kwargs["content"] = content()
                elif json_body is not None:
                    kwargs["json"] = json_body
                response = self._http.request(method, url, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as err:
                # The connection was never made, so the request never left: safe to retry, for
                # as long as the connect deadline allows (not a number of attempts).
                failures += 1
                if unreachable_since is None:
                    unreachable_since = self._clock()
                delay = self.retry.delay_s(failures, None, self._rand())
                spent = max(self._clock() - unreachable_since, waited)
                if spent + delay + self._connect_timeout_s > self.connect_deadline_s:
                    raise self._unreachable(url, what, err, spent) from err
                log.info("%s: %s; retrying in %.1f s (up to %g s)", what, _describe(err), delay,
                         self.connect_deadline_s)
                self._notify_retry(f"{what}: cannot reach {_origin(url)} ({_describe(err)}); "
                                   f"trying again for up to {self.connect_deadline_s:g} s")
                self._sleep(delay)
                waited += delay
                continue
            except httpx.TransportError as err:
                if mode == "create":
                    raise _Unknown(_describe(err)) from err
                failures += 1
                if failures >= self.retry.attempts:
                    raise NetworkError(f"{what}: {_describe(err)} after {failures} attempts",
                                       hint="check the network and try again") from err
                self._backoff(failures, None, what, _describe(err))
                continue
            status = response.status_code
            if status < 400 or status in ok_statuses:
                return response
            retryable = status == 429 if mode == "create" else status in _RETRY_STATUSES
            if mode == "create" and status >= 500:
                raise _Unknown(f"HTTP {status}", error_from_response(response, what=what))
            failures += 1
            if not retryable or failures >= self.retry.attempts:
                raise error_from_response(response, what=what, rejected=rejected)
            self._backoff(failures, _retry_after_s(response), what, f"HTTP {status}")

    def _unreachable(self, url: str, what: str, err: httpx.HTTPError,
                     spent_s: float) -> ServiceUnreachable:
        service = "EVOLINK_FILES_URL" if url.startswith(self.files_url) and \
            self.files_url != self.base_url else "EVOLINK_BASE_URL"
        return ServiceUnreachable(
            f"{what}: cannot reach {_origin(url)} ({_describe(err)}; gave up after "
            f"{max(spent_s, 0.0):.0f} s)",
            hint=f"is the service running there? Check {service} and the network; "
                 "--connect-timeout SECONDS (or `prep config set connect_timeout_s`) waits longer")

    def _notify_retry(self, text: str) -> None:
        if self.on_retry is not None:
            self.on_retry(text)

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as err:
            raise ApiError(f"{what}: the answer is not JSON (HTTP {response.status_code})",
                           hint="check EVOLINK_BASE_URL / EVOLINK_FILES_URL point at EvoLink",
                           request_id=_request_id(response, None)) from err

    # -- tasks --------------------------------------------------------------------------------

    def create_task(
        self, request: GenerationRequest | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Task:
        """Submit one job. It is sent once; re-sent only when the answer proves it was not taken.

        Raises OutcomeUnknownError (exit 6) when the request may have created a task; the error
        carries the key, body, URL and reason for the caller to journal (nothing is written here)."""
        body = dict(request) if isinstance(request, Mapping) else request.body()
        key = idempotency_key or new_idempotency_key()
        if not rules.IDEMPOTENCY_KEY_RE.match(key):
            raise ValueError("an Idempotency-Key is 16-96 characters of [A-Za-z0-9._-]")
        url = f"{self.base_url}/v1/videos/generations"
        what = "creating the task"
        try:
            response = self._send("POST", url, what=what, json_body=body, mode="create",
                                  headers={"Idempotency-Key": key})
        except _Unknown as unknown:
            raise self._unknown_outcome(url, key, body, unknown) from unknown
        replayed = response.headers.get("idempotency-replayed", "").lower() == "true"
        return Task.from_json(self._json(response, what), replayed=replayed)

    @staticmethod
    def _unknown_outcome(url: str, key: str, body: Mapping[str, Any],
                         unknown: _Unknown) -> OutcomeUnknownError:
        clips = len(body.get("video_urls") or [])
        sent = (f"POST {url} ({clips} clip{'s' if clips != 1 else ''}, "
                f"{body.get('duration')} s at {body.get('quality')}, Idempotency-Key {key})")
        server = unknown.server
        detail = f" ({server.message})" if server is not None else ""
        return OutcomeUnknownError(
            f"outcome unknown: {sent} got no definite answer: {unknown.reason}{detail}; the task may "
            "exist and may be billed",
            hint="prep did not send it again; look for the task in your EvoLink dashboard (or "
                 "`prep task ID`) before running this job again",
            status=server.status if server is not None else None,
            code=server.code if server is not None else None,
            request_id=server.request_id if server is not None else None,
            idempotency_key=key, url=url, body=body, reason=unknown.reason,
        )

    def get_task(self, task_id: str) -> Task:
        """The task's current state (retried on 429, 5xx and network failures).

        TaskNotFoundError (exit 3) when the API has no task with this id."""
        if not rules.TASK_ID_RE.match(task_id):
            raise UsageError(f"{task_id!r} is not a task id", hint="task ids look like "
                             "task-unified-1757169743-7cvnl5zw")
        url = f"{self.base_url}/v1/tasks/{task_id}"
        what = f"reading task {task_id}"
        response = self._send("GET", url, what=what, ok_statuses=(404,))
        if response.status_code == 404:
            raise _task_not_found(response, url, task_id)
        return Task.from_json(self._json(response, what))

    def get_tasks(self, task_ids: Iterable[str]) -> dict[str, Task] | None:
        """Several tasks at once with `POST /v1/tasks/batch`, at most 50 ids a call: the tasks
        found, by id (unknown ids are simply absent). None when the server does not offer the
        endpoint (404, 405, 403, 501): the caller reads the tasks one by one instead."""
        ids = list(dict.fromkeys(task_ids))
        found: dict[str, Task] = {}
        url = f"{self.base_url}/v1/tasks/batch"
        for start in range(0, len(ids), rules.MAX_BATCH_TASK_IDS):
            chunk = ids[start:start + rules.MAX_BATCH_TASK_IDS]
            what = f"reading {len(chunk)} tasks"
            response = self._send("POST", url, what=what, json_body={"task_ids": chunk},
                                  ok_statuses=rules.OPTIONAL_ENDPOINT_ABSENT)
            if response.status_code in rules.OPTIONAL_ENDPOINT_ABSENT:
                return None
            for item in _items(self._json(response, what), what):
                task = Task.from_json(item)
                if task.id in chunk:  # never trust an answer about a task that was not asked for
                    found[task.id] = task
        return found

    def list_tasks(self, *, status: str | None = None, model: str | None = None, page: int = 1,
                   page_size: int = 20) -> TaskPage:
        """One page of the account's tasks (`GET /v1/tasks`), filtered by status and model.

        ApiError (exit 6) naming the endpoint when the server does not offer it."""
        if page < 1 or not 1 <= page_size <= rules.MAX_TASKS_PAGE_SIZE:
            raise ValueError(f"page >= 1 and 1 <= page_size <= {rules.MAX_TASKS_PAGE_SIZE}")
        params: dict[str, str | int] = {"page": page, "page_size": page_size}
        if status:
            params["status"] = status
        if model:
            params["model"] = model
        url = f"{self.base_url}/v1/tasks"
        what = "listing tasks"
        response = self._send("GET", url, what=what, params=params,
                              ok_statuses=rules.OPTIONAL_ENDPOINT_ABSENT)
        if response.status_code in rules.OPTIONAL_ENDPOINT_ABSENT:
            raise ApiError(f"{what}: {_host(url)} does not offer a task list "
                           f"(GET /v1/tasks answers HTTP {response.status_code})",
                           hint="look up one task with `prep task ID`, or in the EvoLink dashboard",
                           status=response.status_code)
        body = self._json(response, what)
        tasks = tuple(Task.from_json(item) for item in _items(body, what))
        head: dict[str, Any] = body if isinstance(body, dict) else {}
        return TaskPage(tasks=tasks, total=_count(head.get("total")),
                        page=_count(head.get("page")) or page,
                        page_size=_count(head.get("page_size")) or page_size)

    def credits(self) -> Credits | None:
        """The balance (`GET /v1/credits`), or None when the server does not offer it (404, 405,
        501). Other failures raise as any call does: a 401 or 403 here is AuthError (exit 4), as
        it is the first call of a job and a refused key must stop it before anything is encoded."""
        url = f"{self.base_url}/v1/credits"
        what = "reading the credits"
        absent = tuple(s for s in rules.OPTIONAL_ENDPOINT_ABSENT if s != 403)
        response = self._send("GET", url, what=what, ok_statuses=absent)
        if response.status_code in absent:
            return None
        return Credits.from_json(self._json(response, what))

    def wait(
        self,
        task: Task,
        *,
        poll: PollPolicy = DEFAULT_POLL,
        on_update: Callable[[Task], None] | None = None,
    ) -> Task:
        """Poll until the task is completed (returned), failed or cancelled (TaskFailedError).

        Reads back off from `poll.initial_s` to `poll.max_s`; past `poll.deadline_s`, raises
        TaskTimeoutError naming the task so `prep task ID --wait` can pick it up again."""
        started = self._clock()
        interval = poll.initial_s
        current = task
        while True:
            if on_update is not None:
                on_update(current)
            if current.terminal:
                current.raise_for_failure()
                return current
            waited = self._clock() - started
            if poll.deadline_s is not None and waited + interval > poll.deadline_s:
                raise TaskTimeoutError(
                    f"task {current.id} is still {current.status} ({current.progress}%) after "
                    f"{waited:.0f} s; stopped waiting",
                    hint=f"it goes on without prep: run `prep task {current.id} --wait -o DIR` later "
                         "(results stay downloadable for 24 h)",
                    task_id=current.id,
                )
            self._sleep(interval)
            interval = min(interval * poll.factor, poll.max_s)
            current = self.get_task(current.id)

    # -- files --------------------------------------------------------------------------------

    def files_quota(self) -> dict[str, Any] | None:
        """The files API's quota (`remain_files`, `max_files`, ...), or None when not offered."""
        url = f"{self.files_url}/api/v1/files/quota"
        response = self._send("GET", url, what="reading the file quota",
                              ok_statuses=rules.OPTIONAL_ENDPOINT_ABSENT)
        if response.status_code >= 400:
            return None
        body = self._json(response, "reading the file quota")
        data = body.get("data", body) if isinstance(body, dict) else None
        return data if isinstance(data, dict) else None

    def post_file(
        self,
        endpoint: str,
        body: Callable[[], Iterable[bytes]],
        *,
        content_type: str,
        content_length: int,
        what: str,
    ) -> dict[str, Any]:
        """POST a streamed upload body to the files API (retried; `body` makes a fresh stream for
        each attempt) and return the answer's `data` object."""
        url = f"{self.files_url}{endpoint}"
        response = self._send("POST", url, what=what, content=body, rejected=UploadRejected,
                              headers={"Content-Type": content_type,
                                       "Content-Length": str(content_length)})
        answer = self._json(response, what)
        data = answer.get("data") if isinstance(answer, dict) else None
        if (isinstance(answer, dict) and answer.get("success") is False) or not isinstance(data, dict) \
                or not isinstance(data.get("file_url"), str):
            message, code, _kind = _error_fields(answer)
            raise UploadRejected(f"{what}: {message or 'the answer has no file_url'}",
                                 hint="the files API refused the upload", code=code or None,
                                 status=response.status_code,
                                 request_id=_request_id(response, answer))
        return data

    def url_alive(self, url: str) -> bool:
        """Whether a public file URL still serves bytes (one tiny ranged GET, no auth)."""
        try:
            with self._public.stream("GET", url, headers={"Range": "bytes=0-0"}) as response:
                return response.status_code in (200, 206)
        except httpx.HTTPError:
            return False

    # -- downloads ----------------------------------------------------------------------------

    def download(self, url: str, dest: Path, *, on_progress: ProgressFn | None = None) -> Path:
        """Stream `url` (no auth) to `dest`: into `dest.part`, resumed with Range after a drop,
        checked for size and mp4 magic, then renamed. Nothing partial is ever left at `dest`."""
        part = dest.with_name(dest.name + ".part")
        what = f"downloading {dest.name}"
        try:
            fh = part.open("wb")
        except OSError as err:
            raise _write_error(dest.parent, err) from err
        try:
            with fh:
                total = self._download_into(fh, url, what, dest, on_progress)
                fh.flush()
                os.fsync(fh.fileno())
            _check_download(part, dest, total)
            os.replace(part, dest)
        except OSError as err:
            part.unlink(missing_ok=True)
            raise _write_error(dest.parent, err) from err
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return dest

    def _download_into(self, fh: Any, url: str, what: str, dest: Path,
                       on_progress: ProgressFn | None) -> int | None:
        received = 0
        total: int | None = None
        failures = 0
        resumable = True
        while True:
            # Ranges count stored bytes: ask for no content coding, and write what arrives raw.
            headers = {"Accept-Encoding": "identity"}
            if received:
                headers["Range"] = f"bytes={received}-"
            before = received
            try:
                with self._public.stream("GET", url, headers=headers) as response:
                    status = response.status_code
                    if status >= 400:
                        response.read()
                        if status in (401, 403, 404, 410):
                            raise ApiError(
                                f"{what}: the result link answers HTTP {status}: it has expired or "
                                "is gone", status=status,
                                hint="result links last 24 h after generation; run the job again",
                                request_id=_request_id(response, None))
                        if status not in _RETRY_STATUSES:
                            raise error_from_response(response, what=what)
                        failures += 1
                        if failures >= self.retry.attempts:
                            raise error_from_response(response, what=what)
                        self._backoff(failures, _retry_after_s(response), what, f"HTTP {status}")
                        continue
                    if received and status != 206:
                        received = 0  # the server ignored Range: start over
                        fh.seek(0)
                        fh.truncate()
                    total = _total_size(response, received)
                    # A content-coded body cannot be resumed by byte ranges of what was decoded.
                    resumable = response.headers.get("content-encoding", "identity") == "identity"
                    for chunk in response.iter_bytes():
                        fh.write(chunk)
                        received += len(chunk)
                        if on_progress is not None:
                            on_progress(received, total)
            except httpx.TransportError as err:
                failures = 0 if received > before else failures + 1
                if not resumable:
                    received = 0
                    fh.seek(0)
                    fh.truncate()
                if failures >= self.retry.attempts:
                    raise NetworkError(f"{what}: {_describe(err)} after {received} bytes",
                                       hint="check the network and run `prep task ID -o DIR` "
                                            "again") from err
                self._backoff(max(failures, 1), None, what, f"{_describe(err)} at {received} bytes")
                continue
            if total is not None and received < total:
                failures += 1  # a clean end before Content-Length promised: resume
                if failures >= self.retry.attempts:
                    raise NetworkError(f"{what}: the download stopped at {received} of {total} bytes",
                                       hint="run `prep task ID -o DIR` again")
                continue
            return total

    def download_results(self, task: Task, out_dir: Path, *,
                         on_progress: ProgressFn | None = None) -> list[Path]:
        """Download every result of a completed task into `out_dir`, named after the task id."""
        if not task.results:
            raise ApiError(f"task {task.id} is {task.status} but lists no result URL",
                           hint=f"run `prep task {task.id}` later")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _write_error(out_dir, err) from err
        count = len(task.results)
        return [self.download(url, out_dir / result_filename(task.id, i, count),
                              on_progress=on_progress)
                for i, url in enumerate(task.results)]


def _count(value: Any) -> int | None:
    """A count from an answer: a non-negative int, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _items(body: Any, what: str) -> list[Any]:
    """The `data` list of a list answer; ApiError when there is none."""
    data = body.get("data") if isinstance(body, dict) else body
    if isinstance(data, dict) and isinstance(data.get("tasks"), list):
        data = data["tasks"]
    if not isinstance(data, list):
        raise ApiError(f"{what}: the answer holds no list of tasks",
                       hint="check EVOLINK_BASE_URL points at the EvoLink API")
    return [item for item in data if isinstance(item, dict)]


class _Unknown(Exception):
    """Internal: a create request whose outcome is unknown (converted by create_task)."""

    def __init__(self, reason: str, server: ApiError | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.server = server


def _describe(err: httpx.HTTPError) -> str:
    names = {
        httpx.ConnectTimeout: "connection timed out",
        httpx.ConnectError: "connection refused or host unreachable",
        httpx.ReadTimeout: "timed out waiting for the answer",
        httpx.WriteTimeout: "timed out while sending",
        httpx.PoolTimeout: "no free connection",
        httpx.RemoteProtocolError: "connection dropped before the full answer",
        httpx.ReadError: "connection dropped while reading the answer",
        httpx.WriteError: "connection dropped while sending",
    }
    for cls, text in names.items():
        if isinstance(err, cls):
            return text
    return type(err).__name__


def _total_size(response: httpx.Response, offset: int) -> int | None:
    content_range = response.headers.get("content-range", "")
    if response.status_code == 206 and "/" in content_range:
        tail = content_range.rsplit("/", 1)[1].strip()
        if tail.isdigit():
            return int(tail)
    length = response.headers.get("content-length", "")
    if length.isdigit():
        return int(length) + (offset if response.status_code == 206 else 0)
    return None


def _check_download(part: Path, dest: Path, total: int | None) -> None:
    size = part.stat().st_size
    if total is not None and size != total:
        raise ApiError(f"downloading {dest.name}: got {size} of {total} bytes",
                       hint="run the download again")
    with part.open("rb") as fh:
        head = fh.read(12)
    if len(head) < 8 or head[4:8] not in _MP4_FIRST_BOXES:
        raise ApiError(f"downloading {dest.name}: the result is not an mp4 file ({size} bytes)",
                       hint="the result link served something else; try `prep task ID -o DIR` again")


def _write_error(folder: Path, err: OSError) -> MediaError:
    if err.errno == errno.ENOSPC:
        problem, hint = "the disk is full", "free some space or choose another -o folder"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        problem, hint = "the folder cannot be written", "choose another -o folder"
    else:
        problem, hint = f"cannot write here ({err.strerror or err})", "choose another -o folder"
    return MediaError(folder, problem, hint=hint)

