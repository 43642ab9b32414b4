"""The sandbox's memory: keys, stored files, tasks, the request log, faults and the clock.

Everything here runs on the server's event loop thread; nothing is shared with other threads
except through HTTP. File bytes live in a data folder; the rest is in memory.
"""

from __future__ import annotations

import math
import secrets
import shutil
import string
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import limits
from .config import KeyConfig, SandboxConfig
from .faults import TASK_ERROR_CODES, FaultBook
from .pricing import credits_number

__all__ = ["Clock", "Store", "StoredFile", "Task", "iso"]

_ID_CHARS = string.ascii_lowercase + string.digits
# Simulated seconds a task spends queued, then rendering (scaled by the sandbox's speed).
QUEUE_S = 4.0
# A balance reported for an account the sandbox was told is unlimited: 1e9 credits, more than any
# test can spend, shown as a number because EvoLink's balances are numbers.
UNLIMITED_REPORTED_UNITS = 10**13
# A planned `fail_task` fault fails with this unless it names another code: a failure that must
# not be retried blindly (retrying the same request pays for the same refusal again).
FAIL_TASK_DEFAULT_CODE = TASK_ERROR_CODES[0]


def iso(epoch_s: float) -> str:
    """An ISO 8601 UTC timestamp with a Z, as EvoLink's files API writes them."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock:
    """Wall-clock time plus an offset that tests move forward (expiry, task progress)."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def now(self) -> float:
        return time.time() + self.offset_s

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds


@dataclass(slots=True, kw_only=True)
class StoredFile:
    """An uploaded file (or a result video) that the sandbox serves at its URL."""

    file_id: str
    key_id: str
    path: Path
    file_name: str
    original_name: str
    size_bytes: int
    mime_type: str
    upload_path: str
    sha256: str
    created_at: float
    expires_at: float
    endpoint: str
    deleted: bool = False
    is_result: bool = False

    def record(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id, "key_id": self.key_id, "file_name": self.file_name,
            "original_name": self.original_name, "file_size": self.size_bytes,
            "mime_type": self.mime_type, "upload_path": self.upload_path, "sha256": self.sha256,
            "upload_time": iso(self.created_at), "expires_at": iso(self.expires_at),
            "endpoint": self.endpoint, "deleted": self.deleted,
        }


@dataclass(slots=True, kw_only=True)
class Task:
    """A generation task and its simulated timeline."""

    id: str
    key_id: str
    created: int
    created_at: float
    request: dict[str, Any]
    model: str
    generate_audio: bool
    prompt: str
    quality: str
    aspect_ratio: str
    duration_s: int
    shot_type: str
    callback_url: str | None
    credits_units: int
    user_group: str
    work_s: float
    fail: bool = False
    # The error code a planned failure carries (see TASK_ERRORS).
    fail_code: str = FAIL_TASK_DEFAULT_CODE
    idempotency_key: str | None = None
    status: str = "pending"
    progress: int = 0
    result: StoredFile | None = None
    render_error: str | None = None
    rendered: bool = False
    finished_at: float | None = None
    callback_note: str | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    # What a completed task is charged when that differs from what it held (a smart duration
    # holds 30 s of output and is charged for the seconds made); None: the hold.
    settle_units: int | None = None
    reports_duration: bool = False  # wan3.0 and prime add task_info.video_duration

    @property
    def charged_units(self) -> int:
        """What the task costs once completed."""
        return self.credits_units if self.settle_units is None else self.settle_units

    @property
    def terminal(self) -> bool:
        return self.status in limits.TERMINAL_STATUSES

    def body(self, now: float, speed: float, result_url: str | None) -> dict[str, Any]:
        """The task as GET /v1/tasks/{id} (and callbacks) show it."""
        remaining = 0.0
        if not self.terminal:
            elapsed = (now - self.created_at) * speed
            remaining = max(0.0, QUEUE_S + self.work_s - elapsed) / speed
        out: dict[str, Any] = {
            "created": self.created,
            "id": self.id,
            "model": self.model,
            "object": "video.generation.task",
            "progress": self.progress,
            "status": self.status,
            "task_info": {"can_cancel": self.status == "pending",
                          "estimated_time": max(1, math.ceil(remaining)) if not self.terminal else 0,
                          **({"video_duration": self.duration_s}
                             if self.reports_duration and self.status == "completed" else {})},
            "type": "video",
            "usage": {
                "billing_rule": "per_second",
                "credits_reserved": credits_number(self.credits_units),
                "user_group": self.user_group,
            },
        }
        if self.status == "completed" and result_url:
            out["results"] = [result_url]
        if self.status == "failed":
            out["error"] = self.error()
        return out

    def error(self) -> dict[str, str]:
        """A failed task's `error`: code, message and type, as EvoLink's clients read them."""
        if self.render_error is not None and not self.fail:
            code, message = "service_error", self.render_error
        else:
            code = self.fail_code
            message = limits.TASK_ERRORS[code][1] + " (sandbox fault injection)"
        return {"code": code, "message": message, "type": limits.TASK_ERRORS[code][0]}

    def list_item(self, now: float, speed: float) -> dict[str, Any]:
        """The task as GET /v1/tasks lists it: the task without result links, plus the flags and
        figures EvoLink's clients read from a listing."""
        out = self.body(now, speed, None)
        out.pop("results", None)
        out.update({"created_at": self.created, "has_results": self.status == "completed",
                    "has_error": self.status == "failed"})
        if self.status == "completed":
            out["credits_used"] = credits_number(self.charged_units)
        return out

    def record(self, now: float, speed: float, result_url: str | None) -> dict[str, Any]:
        return {
            **self.body(now, speed, result_url), "key_id": self.key_id, "request": self.request,
            "idempotency_key": self.idempotency_key, "callback_url": self.callback_url,
            "callback_note": self.callback_note, "callbacks": list(self.callbacks),
            "credits_units": self.credits_units,
        }


def task_work_s(duration_s: int, quality: str) -> float:
    """Simulated seconds of rendering: longer and higher-quality outputs take longer."""
    base = 30.0 + 8.0 * duration_s
    return base * (1.5 if quality == "1080p" else 1.0)


def new_task_id(created: int) -> str:
    return f"task-unified-{created}-{''.join(secrets.choice(_ID_CHARS) for _ in range(8))}"


class Store:
    """All state of one sandbox. `reset()` empties it, as if freshly started."""

    def __init__(self, config: SandboxConfig) -> None:
        self.initial = config
        self.config = config
        self.clock = Clock()
        self.faults = FaultBook()
        self._owns_dir = config.data_dir is None
        self.data_dir = Path(config.data_dir or tempfile.mkdtemp(prefix="prep-sandbox-"))
        self.render_dir = Path(config.render_cache_dir or self.data_dir / "renders")
        self.files_dir = self.data_dir / "files"
        self.incoming_dir = self.data_dir / "incoming"
        self.keys: dict[str, KeyConfig] = {}
        self.key_ids: dict[str, str] = {}
        self.balances: dict[str, int | None] = {}
        self.used: dict[str, int] = {}
        self.key_of: dict[str, str] = {}
        self.files: dict[str, StoredFile] = {}
        self.uploads: list[StoredFile] = []
        self.tasks: dict[str, Task] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, bytes, bytes]] = {}
        self.requests: list[dict[str, Any]] = []
        self.auth_header_requests = 0
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every file, task, fault and key change; the clock goes back to real time."""
        self.config = self.initial
        self.clock = Clock()
        self.faults.clear()
        self.files.clear()
        self.uploads.clear()
        self.tasks.clear()
        self.idempotency.clear()
        self.requests.clear()
        self.auth_header_requests = 0
        self.keys, self.key_ids, self.balances, self.used, self.key_of = {}, {}, {}, {}, {}
        for key in self.config.keys().values():
            self.add_key(key)
        for folder in (self.files_dir, self.incoming_dir):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        """Remove the data folder when the sandbox made it itself."""
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def configure(self, **changes: Any) -> None:
        self.config = replace(self.config, **changes)

    def add_key(self, key: KeyConfig) -> None:
        self.keys[key.key] = key
        self.key_ids.setdefault(key.key, f"key{len(self.key_ids) + 1}")
        self.key_of[self.key_ids[key.key]] = key.key
        self.balances[key.key] = key.credits_units
        self.used.setdefault(key.key, 0)

    # -- files -----------------------------------------------------------------------------------
    def live_files(self, key: str) -> list[StoredFile]:
        now = self.clock.now()
        key_id = self.key_ids[key]
        return [f for f in self.files.values()
                if f.key_id == key_id and not f.deleted and not f.is_result and f.expires_at > now]

    def new_file_id(self) -> str:
        return "file_" + secrets.token_hex(12)

    def temp_path(self) -> Path:
        return self.incoming_dir / secrets.token_hex(8)

    # -- credits ---------------------------------------------------------------------------------
    # Each key is its own account. A task's credits leave the balance when it is created
    # (reserved), count as used when it completes (settled) and return when it fails (refunded).
    def reserved_units(self, key: str) -> int:
        """What the key's unfinished tasks hold back."""
        key_id = self.key_ids[key]
        return sum(t.credits_units for t in self.tasks.values()
                   if t.key_id == key_id and not t.terminal)

    def available_units(self, key: str) -> int | None:
        """What a new task of this key may still cost (None: unlimited): the account's balance
        after reservations, or the key's own limit left, whichever is smaller."""
        balance = self.balances[key]
        limit = self.keys[key].limit_units
        key_left = None if limit is None else limit - self.used[key] - self.reserved_units(key)
        if balance is None:
            return key_left
        return balance if key_left is None else min(balance, key_left)

    def short_of(self, key: str, units: int) -> str | None:
        """None when the key can pay `units`; else the 402 code that says what is short."""
        balance = self.balances[key]
        if balance is not None and balance < units:
            return "insufficient_quota"
        available = self.available_units(key)
        if available is not None and available < units:
            return "key_quota_exhausted"
        return None

    def reserve(self, key: str, units: int) -> None:
        balance = self.balances[key]
        if balance is not None:
            self.balances[key] = balance - units

    def _settle(self, task: Task) -> None:
        """A task just ended: count a completed one's credits as used, refund a failed one."""
        key = self.key_of.get(task.key_id)
        if key is None:
            return
        if task.status == "completed":
            self.used[key] += task.charged_units
            balance = self.balances[key]
            if balance is not None:  # a hold above the charge comes back
                self.balances[key] = balance + task.credits_units - task.charged_units
        else:
            balance = self.balances[key]
            if balance is not None:
                self.balances[key] = balance + task.credits_units

    def credits(self, key: str) -> dict[str, Any]:
        """GET /v1/credits for this key: its account's balance and its own spending."""
        balance = self.balances[key]
        remaining = UNLIMITED_REPORTED_UNITS if balance is None else balance
        used = self.used[key]
        limit = self.keys[key].limit_units
        key_left = remaining if limit is None else max(0, limit - used - self.reserved_units(key))
        return {
            "user": {"remaining_credits": credits_number(remaining),
                     "used_credits": credits_number(used)},
            "token": {"remaining_credits": credits_number(key_left),
                      "used_credits": credits_number(used),
                      "unlimited_credits": limit is None},
            "reserved_credits": credits_number(self.reserved_units(key)),
        }

    # -- tasks -----------------------------------------------------------------------------------
    def refresh(self, task: Task) -> bool:
        """Move a task along its timeline. True when it just became terminal."""
        if task.terminal:
            return False
        speed = self.config.speed
        elapsed = (self.clock.now() - task.created_at) * speed
        if elapsed < QUEUE_S:
            return False
        work_done = (elapsed - QUEUE_S) / task.work_s
        if task.fail and work_done >= 0.4:
            task.status, task.progress = "failed", max(task.progress, 40)
            task.finished_at = self.clock.now()
            self._settle(task)
            return True
        if task.render_error is not None:
            task.status = "failed"
            task.finished_at = self.clock.now()
            self._settle(task)
            return True
        task.status = "processing"
        task.progress = max(task.progress, min(99, 1 + int(98 * min(work_done, 1.0))))
        if work_done >= 1.0 and task.rendered and task.result is not None:
            task.status, task.progress = "completed", 100
            task.finished_at = self.clock.now()
            task.result.created_at = task.finished_at
            task.result.expires_at = task.finished_at + limits.RESULT_TTL_S
            self._settle(task)
            return True
        return False

    def log_request(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry["n"] = len(self.requests) + 1
        entry["at"] = iso(self.clock.now())
        self.requests.append(entry)
        return entry

    def state(self, result_url: Any) -> dict[str, Any]:
        """The JSON of GET /_sandbox/state."""
        now, speed = self.clock.now(), self.config.speed
        for task in self.tasks.values():
            self.refresh(task)
        return {
            "uploads": [f.record() for f in self.uploads],
            "tasks": [t.record(now, speed, result_url(t)) for t in self.tasks.values()],
            "auth_header_requests": self.auth_header_requests,
            "requests": list(self.requests),
            "faults": self.faults.public(),
            "clock": {"now": iso(now), "now_s": now, "offset_s": self.clock.offset_s},
            "config": self.config.public(),
            # Where the files live; removed on stop (Ctrl-C or SIGTERM) unless data_dir was given.
            "storage": {"data_dir": str(self.data_dir), "removed_on_stop": self._owns_dir},
            "keys": [
                {"key_id": self.key_ids[k], "credits_units": self.balances[k],
                 "used_units": self.used[k], "reserved_units": self.reserved_units(k),
                 "limit_units": c.limit_units,
                 "models": list(c.models), "user_group": c.user_group, "max_files": c.max_files,
                 "used_files": len(self.live_files(k))}
                for k, c in self.keys.items()
            ],
        }
