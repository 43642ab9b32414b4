"""Every error prep raises on purpose, and the exit code each one means.

    PrepError (1: unexpected; a bug)
    ├── UsageError (2)              bad option values, timecodes, clip counts
    ├── ManifestError (2 or 3)      bad batch manifest rows, every one listed (3: a clip is missing)
    ├── MediaError (3)              missing, unreadable, not a video, cannot be made compliant
    │   └── FfmpegError (3)         ffmpeg failed on a file (its last meaningful line kept)
    ├── ToolMissingError (6)        no usable ffmpeg binary
    ├── ApiError (6)                EvoLink answered with an error, or could not be reached
    │   ├── AuthError (4)           401, 403, or no API key at all
    │   ├── QuotaError (5)          402: the account needs credits
    │   ├── RequestRejected (3)     400: the server refused the request's content
    │   ├── RateLimitError (6)      429 after retries
    │   ├── ServerError (6)         5xx after retries
    │   ├── NetworkError (6)        connect / read failures after retries
    │   │   └── ServiceUnreachable (6)  no connection could be made within the connect timeout
    │   ├── OutcomeUnknownError (6) a create request was sent and no answer came back
    │   ├── TaskNotFoundError (3)   404 on a task id: no such task (mistyped, or no longer kept)
    │   └── UploadRejected (6)      the files API refused an upload
    ├── TaskFailedError (7)         the generation task failed or was cancelled
    ├── TaskTimeoutError (6)        waiting for a task gave up at its deadline (the task goes on)
    ├── JobError (any)              a batch job's recorded failure, with the code its journal gives
    ├── FolderBusyError (8)         another prep run holds the output folder's lock
    └── Interrupted (130)           Ctrl-C (143 for SIGTERM); nothing half-written is left

`ExitCode` names each code once; everything else (the classes, the commands, a job's status)
uses the names.

A caller's misuse of the library (wrong types, impossible arguments) raises ValueError or
TypeError and stays off this tree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any

__all__ = [
    "ApiError",
    "AuthError",
    "ExitCode",
    "FfmpegError",
    "FolderBusyError",
    "Interrupted",
    "JobError",
    "ManifestError",
    "MediaError",
    "NetworkError",
    "OutcomeUnknownError",
    "PrepError",
    "QuotaError",
    "RateLimitError",
    "RequestRejected",
    "ServerError",
    "ServiceUnreachable",
    "TaskFailedError",
    "TaskNotFoundError",
    "TaskTimeoutError",
    "ToolMissingError",
    "UploadRejected",
    "UsageError",
    "install_hint",
]


class ExitCode(IntEnum):
    """What prep's exit codes mean (a contract: scripts test them)."""

    OK = 0
    INTERNAL = 1  # unexpected: a bug
    USAGE = 2  # bad options, manifest rows, timecodes; a declined cost prompt
    MEDIA = 3  # a clip or request the service would refuse; a task id that does not exist
    AUTH = 4  # the API key is missing, wrong or lacks the model
    QUOTA = 5  # the account needs credits
    SERVICE = 6  # the service or a tool failed, or the outcome is unknown
    TASK_FAILED = 7  # the generation task failed
    BUSY = 8  # another prep run holds the output folder
    INTERRUPTED = 130  # Ctrl-C
    BROKEN_PIPE = 141  # what prep writes is no longer read (`| head`, a closed pager): 128 + SIGPIPE
    TERMINATED = 143  # SIGTERM (128 + 15), handled as Ctrl-C is


class PrepError(Exception):
    """Base of every error prep raises on purpose."""

    exit_code: int = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its class and attributes, not by calling __init__ again (whose signature
        # differs per class): an error raised on a worker process or a Dask worker arrives at the
        # coordinator as itself, with its class, exit code, hint and fields.
        return (_rebuild, (type(self), self.message, dict(self.__dict__)), None, None, None)


def _rebuild(cls: type[PrepError], message: str, state: dict[str, Any]) -> PrepError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class UsageError(PrepError):
    """The command was asked for something that is not allowed (exit 2)."""

    exit_code = ExitCode.USAGE


class ManifestError(PrepError):
    """A batch manifest has bad rows; `problems` lists every one (each with its line).

    Exit 2, or 3 when a row names a clip that is missing or unusable.
    """

    exit_code: int = ExitCode.USAGE

    def __init__(self, source: str, problems: Sequence[Any]) -> None:
        count = len(problems)
        rows = len({p.line for p in problems})
        super().__init__(
            f"{source}: {count} problem{'s' if count != 1 else ''} in {rows} "
            f"row{'s' if rows != 1 else ''}; nothing was run",
            hint="fix the rows listed above, then run again",
        )
        self.source = source
        self.problems = list(problems)
        self.exit_code = max((int(p.exit_code) for p in problems), default=ExitCode.USAGE)


class MediaError(PrepError):
    """A clip is missing, unreadable, not a video or cannot be made compliant (exit 3)."""

    exit_code = ExitCode.MEDIA

    def __init__(self, path: Path | str, problem: str, *, hint: str = "") -> None:
        super().__init__(f"{path}: {problem}", hint=hint)
        self.path = str(path)
        self.problem = problem


class FfmpegError(MediaError):
    """ffmpeg failed while working on a file; `detail` keeps its full stderr for --verbose."""

    def __init__(self, path: Path | str, problem: str, *, hint: str = "", detail: str = "") -> None:
        super().__init__(path, problem, hint=hint)
        self.detail = detail


class ToolMissingError(PrepError):
    """No usable ffmpeg binary was found (exit 6)."""

    exit_code = ExitCode.SERVICE


class ApiError(PrepError):
    """EvoLink answered with an error or could not be reached (exit 6 unless a subclass says)."""

    exit_code = ExitCode.SERVICE

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        if request_id:
            message = f"{message} (request id {request_id})"
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code
        self.request_id = request_id


class AuthError(ApiError):
    """401 / 403, or no API key configured (exit 4)."""

    exit_code = ExitCode.AUTH


class QuotaError(ApiError):
    """402: the account has no credits left (exit 5)."""

    exit_code = ExitCode.QUOTA


class RequestRejected(ApiError):
    """400: the server refused the request's content; its message says why (exit 3)."""

    exit_code = ExitCode.MEDIA


class RateLimitError(ApiError):
    """429 that did not clear within the retries (exit 6). `retry_after_ms` is how long the
    server asked to wait (its Retry-After), when it said."""

    retry_after_ms: int | None = None


class ServerError(ApiError):
    """5xx that did not clear within the retries (exit 6)."""


class NetworkError(ApiError):
    """The server could not be reached, or stopped answering, after retries (exit 6)."""


class ServiceUnreachable(NetworkError):
    """No connection to the service could be made within the connect timeout (exit 6): nothing
    was sent, and every other call to the same service would wait as long, so callers stop."""


class OutcomeUnknownError(ApiError):
    """A create request was sent but no answer came back: the task may exist (exit 6).

    It carries what a caller needs to journal the request, so that it is never sent twice by
    accident: the `idempotency_key` it went under, the `body` and `url` it was sent to, and the
    `reason` no definite answer came. The client itself writes nothing down."""

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        url: str | None = None,
        body: Mapping[str, Any] | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(message, hint=hint, status=status, code=code, request_id=request_id)
        self.idempotency_key = idempotency_key
        self.url = url
        self.body: dict[str, Any] | None = dict(body) if body is not None else None
        self.reason = reason


class TaskNotFoundError(ApiError):
    """The API has no task with this id: mistyped, another account's, or no longer kept (exit 3)."""

    exit_code = ExitCode.MEDIA

    def __init__(self, message: str, *, hint: str = "", task_id: str = "",
                 status: int | None = None, code: str | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(message, hint=hint, status=status, code=code, request_id=request_id)
        self.task_id = task_id


class UploadRejected(ApiError):
    """The files API refused an upload (exit 6)."""


class TaskFailedError(PrepError):
    """The generation task ended as failed or cancelled (exit 7)."""

    exit_code = ExitCode.TASK_FAILED

    def __init__(self, message: str, *, hint: str = "", task_id: str = "") -> None:
        super().__init__(message, hint=hint)
        self.task_id = task_id


class TaskTimeoutError(PrepError):
    """Waiting for a task reached its deadline; the task itself may still finish (exit 6)."""

    exit_code = ExitCode.SERVICE

    def __init__(self, message: str, *, hint: str = "", task_id: str = "") -> None:
        super().__init__(message, hint=hint)
        self.task_id = task_id


class Interrupted(PrepError):
    """The user pressed Ctrl-C (exit 130)."""

    exit_code = ExitCode.INTERRUPTED


class JobError(PrepError):
    """A batch job's recorded failure, with the exit code its journal gives it."""

    def __init__(self, message: str, *, exit_code: int, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


class FolderBusyError(PrepError):
    """Another prep run holds the output folder (exit 8): two runs would pay twice."""

    exit_code = ExitCode.BUSY


DISTRIBUTION = "evolink-prep"


def install_hint(extra: str | None = None, *, package: str | None = None,
                 prefix: str | None = None) -> str:
    """The command that installs what is missing, in the way prep itself was installed: prep's
    `extra` (`pick`, `cluster`) or one `package`. Under pipx a `pip install` would land outside
    prep's own environment, so pipx's commands are named there. `prefix` is the environment
    (sys.prefix), given by tests."""
    import sys

    parts = Path(prefix or sys.prefix).parts
    pipx = len(parts) >= 3 and parts[-2] == "venvs" and any("pipx" in p for p in parts[:-2])
    if package is not None:
        quoted = f"'{package}'" if any(c in package for c in "<>=[") else package
        return f"pipx inject {DISTRIBUTION} {quoted}" if pipx else f"pip install {quoted}"
    target = f"'{DISTRIBUTION}[{extra}]'" if extra else DISTRIBUTION
    return f"pipx install --force {target}" if pipx else f"pip install {target}"
