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
from .faults import FaultBook
from .pricing import credits_number

__all__ = ["Clock", "Store", "StoredFile", "Task", "iso"]

_ID_CHARS = string.ascii_lowercase + string.digits
# Simulated seconds a task spends queued, then rendering (scaled by the sandbox's speed).
QUEUE_S = 4.0


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
    idempotency_key: str | None = None
    status: str = "pending"
    progress: int = 0
    result: StoredFile | None = None
    render_error: str | None = None
    rendered: bool = False
    finished_at: float | None = None
    callback_note: str | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)

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
            "model": limits.MODEL,
            "object": "video.generation.task",
            "progress": self.progress,
            "status": self.status,
            "task_info": {"can_cancel": self.status == "pending",
                          "estimated_time": max(1, math.ceil(remaining)) if not self.terminal else 0},
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
            out["error"] = {
                "code": "generation_failed",
                "message": self.render_error or "the model could not generate this video",
            }
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
        self.keys, self.key_ids, self.balances = {}, {}, {}
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
        self.balances[key.key] = key.credits_units

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
    def available_units(self, key: str) -> int | None:
        """Balance minus what unfinished tasks have reserved (None: unlimited)."""
        balance = self.balances[key]
        if balance is None:
            return None
        key_id = self.key_ids[key]
        reserved = sum(t.credits_units for t in self.tasks.values()
                       if t.key_id == key_id and not t.terminal)
        return balance - reserved

    def settle(self, task: Task) -> None:
        """Charge a completed task (failed tasks cost nothing)."""
        for key, key_id in self.key_ids.items():
            if key_id == task.key_id and task.status == "completed":
                balance = self.balances.get(key)
                if balance is not None:
                    self.balances[key] = max(0, balance - task.credits_units)

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
            task.render_error = task.render_error or "the sandbox failed this task (fault injection)"
            task.finished_at = self.clock.now()
            return True
        if task.render_error is not None:
            task.status = "failed"
            task.finished_at = self.clock.now()
            return True
        task.status = "processing"
        task.progress = max(task.progress, min(99, 1 + int(98 * min(work_done, 1.0))))
        if work_done >= 1.0 and task.rendered and task.result is not None:
            task.status, task.progress = "completed", 100
            task.finished_at = self.clock.now()
            task.result.created_at = task.finished_at
            task.result.expires_at = task.finished_at + limits.RESULT_TTL_S
            self.settle(task)
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
                 "models": list(c.models), "user_group": c.user_group, "max_files": c.max_files,
                 "used_files": len(self.live_files(k))}
                for k, c in self.keys.items()
            ],
        }
