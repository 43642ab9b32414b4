"""What an output folder remembers without its journal: fingerprints, sidecars, the task list.

The journal is what keeps a resumed run from paying twice. When it is gone (deleted, emptied,
damaged) next to results or prepared clips, the folder shows that jobs ran here, and "nothing was
sent" can no longer be assumed. Three things still know:

- each result's sidecar (`NAME.json`, next to `NAME.mp4`) holds the fingerprint of the request
  that made it (model, prompt, options and the content hashes of the references), its task and
  credits: a job whose fingerprint matches is done, and no task is made for it;
- the Idempotency-Key of a create request is derived from that fingerprint (with the folder, the
  job and how many earlier requests of the job were answered), so the same request sent again
  after a lost journal carries the same key and a service that honours keys replays the task;
- the service's task list (`GET /v1/tasks`, optional), asked once per run: a task of the job's
  model created since the folder's first prepared clip may be this job's. The job then stops as
  `unknown`, to be settled with `prep batch resolve DIR JOB --task-id ID` or `--not-created`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prep.core import rules
from prep.jobs.layout import prepared_root, result_path, sidecar_path

if TYPE_CHECKING:
    from prep.api.client import Client

__all__ = [
    "LOST_JOURNAL",
    "REBUILT_META",
    "TaskList",
    "fingerprint",
    "folder_evidence_since",
    "idempotency_key",
    "read_sidecar",
    "recent_tasks",
    "sidecar_matches",
    "write_sidecar",
]

# Journal meta: set when a journal was started afresh in a folder that had already run jobs (its
# value: the unix time of the folder's first prepared clip or result, as a decimal string).
REBUILT_META = "rebuilt_since"
# How an unknown job stopped by a lost journal's check begins its error (status reads it).
LOST_JOURNAL = "the journal was lost, so whether this job was sent cannot be known"
SIDECAR_FORMAT = "prep-result/1"
# The service's clock and this machine's may differ: tasks a little older still count.
CLOCK_MARGIN_S = 300
# How many pages of the task list are read at most (newest first) before giving up on "since".
MAX_LIST_PAGES = 5


def fingerprint(request: dict[str, Any], reference_sha256: Sequence[str | None]) -> str:
    """The identity of a create request: its body without the reference URLs (which change with
    each upload: videos, images, audio, the voices' URLs but not what they bind to) and the
    content hashes of the references instead (clips, then images, audio and voices in order)."""
    body = {k: v for k, v in request.items() if k not in ("video_urls", "image_urls", "audio_urls")}
    params = body.get("model_params")
    if isinstance(params, dict) and isinstance(params.get("voice_bindings"), dict):
        body["model_params"] = {**params, "voice_bindings": sorted(params["voice_bindings"])}
    raw = json.dumps({"request": body, "references": list(reference_sha256)}, sort_keys=True,
                     separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def idempotency_key(print_: str, folder: Path, job: str, answered: int) -> str:
    """The Idempotency-Key of a job's create request: the same fingerprint, folder, job and count
    of earlier answered requests give the same key; a retry after a failed task (one more answered
    request) or the same job in another folder gets another."""
    raw = f"{print_}\n{Path(folder).resolve()}\n{job}\n{answered}"
    return "prep-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def read_sidecar(out_dir: Path, job: str) -> dict[str, Any] | None:
    """A job's sidecar, or None when missing or not one of prep's."""
    try:
        data = json.loads(sidecar_path(out_dir, job).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == SIDECAR_FORMAT else None


def sidecar_matches(out_dir: Path, job: str, print_: str) -> dict[str, Any] | None:
    """The sidecar of a job's result when the result is on disk and was made by a request of
    fingerprint `print_`; else None."""
    data = read_sidecar(out_dir, job)
    if data is None or data.get("fingerprint") != print_:
        return None
    return data if result_path(out_dir, job).is_file() else None


def write_sidecar(out_dir: Path, job: str, *, print_: str, task_id: str | None,
                  credits_reserved_units: int | None, idempotency_key: str | None,
                  model: str | None, sha256: str, size_bytes: int) -> Path:
    """Write (temp file, then rename) the sidecar of a job's downloaded result."""
    path = sidecar_path(out_dir, job)
    data = {"format": SIDECAR_FORMAT, "job": job, "fingerprint": print_, "task_id": task_id,
            "credits_reserved_units": credits_reserved_units, "idempotency_key": idempotency_key,
            "model": model, "result": result_path(out_dir, job).name, "sha256": sha256,
            "size_bytes": size_bytes, "written_at": int(time.time())}
    fd, tmp = tempfile.mkstemp(prefix=f".{job}.", suffix=".json.tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _times(paths: Iterable[Path]) -> list[float]:
    found = []
    for path in paths:
        with contextlib.suppress(OSError):
            found.append(path.stat().st_mtime)
    return found


def folder_evidence_since(out_dir: Path) -> float | None:
    """When jobs first ran in `out_dir` as its files show (prepared clips, results' sidecars,
    partial downloads): the oldest such file's time, or None when the folder shows none."""
    root = prepared_root(out_dir)
    prepared = [p for d in root.iterdir() if d.is_dir() for p in d.iterdir()] \
        if root.is_dir() else []
    sidecars = [p for p in out_dir.glob("*.json") if read_sidecar(out_dir, p.stem) is not None] \
        if out_dir.is_dir() else []
    parts = list(out_dir.glob("*.mp4.part")) if out_dir.is_dir() else []
    times = _times([*prepared, *sidecars, *parts])
    return min(times) if times else None


@dataclass(frozen=True, slots=True)
class TaskList:
    """What the service's task list shows since a time: tasks by model, or why it cannot tell."""

    since: float
    by_model: dict[str, tuple[str, ...]]  # model -> task ids (newest first)
    unavailable: str | None = None  # why the list could not be read

    def candidates(self, model: str, known: set[str]) -> tuple[str, ...] | None:
        """Tasks of `model` that the journal does not know; None when the list cannot tell."""
        if self.unavailable is not None:
            return None
        listed = (*self.by_model.get(model, ()), *self.by_model.get("", ()))
        return tuple(t for t in listed if t not in known)


def recent_tasks(api: Client, since: float) -> TaskList:
    """The account's tasks created since `since` (minus a margin for clocks), by model."""
    from prep.errors import PrepError

    cutoff = since - CLOCK_MARGIN_S
    by_model: dict[str, list[str]] = {}
    try:
        for page in range(1, MAX_LIST_PAGES + 1):
            answer = api.list_tasks(page=page, page_size=rules.MAX_TASKS_PAGE_SIZE)
            older = False
            for task in answer.tasks:
                if task.created is not None and task.created < cutoff:
                    older = True
                    continue
                by_model.setdefault(task.model or "", []).append(task.id)
            if older or not answer.tasks or (answer.pages is not None and page >= answer.pages):
                break
    except PrepError as err:
        return TaskList(since=since, by_model={}, unavailable=err.message)
    return TaskList(since=since, by_model={m: tuple(ids) for m, ids in by_model.items()})
