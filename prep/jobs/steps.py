"""The units of work of a job: prepare a clip, upload it, create the task, read it, download.

Each is a plain function of values that returns values and never touches the journal (only the
coordinator thread of `prep.jobs.engine` writes it, through the runner's collaborators).
`prepare_clip` is CPU-bound and picklable, so a thread pool, a process pool or Dask's
`Client.get_executor()` can run it; the others are network-bound and run on the I/O pool, each
holding the batch-wide `RateGate` while it talks to EvoLink.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prep.core import rules
from prep.core.keys import digest
from prep.core.window import Extend, PlannedClip
from prep.errors import MediaError, TaskFailedError
from prep.files import file_sha256, write_text_atomic
from prep.jobs.layout import PROGRESS_EVERY_S, progress_path

if TYPE_CHECKING:
    from prep.api.client import Client, Task
    from prep.api.upload import UploadCache, UploadMode
    from prep.jobs.budget import RateGate
    from prep.media.prepare import PrepareOptions

__all__ = [
    "FAULT_POINTS",
    "ClipWork",
    "PreparedClip",
    "Uploaded",
    "clip_key",
    "create_task",
    "download_result",
    "fault_matches",
    "kill_self",
    "prepare_clip",
    "read_task",
    "read_tasks",
    "this_worker",
    "upload_clip",
    "vet_this_worker",
]

# Test-only fault points (hidden --test-fault): the process SIGKILLs itself there.
FAULT_POINTS = ("prepare", "upload", "before-create", "after-create", "download")

ProgressFn = Callable[[str, int, int], None]


def kill_self() -> None:
    """SIGKILL this process (the fault points' way of testing a crash at an exact step)."""
    os.kill(os.getpid(), signal.SIGKILL)


def fault_matches(fault: str | None, point: str, job: str | None = None) -> bool:
    """Whether the test fault `POINT[:JOB]` names this point (and job)."""
    if not fault:
        return False
    where, _, name = fault.partition(":")
    return where == point and (not name or job is None or name == job)


# -- prepare (CPU) -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClipWork:
    """One planned clip to prepare: picklable, so any executor (threads, processes, Dask) runs it."""

    key: str
    clip: PlannedClip
    out_dir: Path
    options: PrepareOptions
    fault: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedClip:
    """What preparing one clip produced."""

    key: str
    path: Path
    sha256: str
    size_bytes: int
    duration_ms: int
    action: str
    notes: tuple[str, ...] = ()  # what prepare said about it (a damaged cache entry rebuilt, ...)


def prepare_clip(work: ClipWork, on_progress: ProgressFn | None = None) -> PreparedClip:
    """Prepare one clip into its own folder and checksum the result (the CPU-bound stage).

    Wherever it runs (a thread, a process, a Dask worker), it reports how far the encode is in a
    small file beside the output, which the coordinator reads: progress needs no channel back.
    """
    from prep.media.prepare import prepare

    vet_this_worker([work.clip.spec.path], work.out_dir)  # a Dask worker that joined late
    report = progress_path(work.out_dir)
    last = [0.0]

    def progress(label: str, done_ms: int, total_ms: int) -> None:
        if done_ms > 0 and fault_matches(work.fault, "prepare"):
            kill_self()
        if on_progress is not None:
            on_progress(label, done_ms, total_ms)
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or done_ms >= total_ms:
            last[0] = now
            with contextlib.suppress(OSError):
                write_text_atomic(report, f"{done_ms} {total_ms}\n")

    work.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        (result,) = prepare([work.clip], work.out_dir, work.options, on_progress=progress)
    finally:
        report.unlink(missing_ok=True)
    if result.output is None or result.output_info is None:
        raise MediaError(work.clip.spec.path, "preparing it produced no file",
                         hint="run `prep prepare` on it alone to see why")
    return PreparedClip(key=work.key, path=result.output, sha256=file_sha256(result.output),
                        size_bytes=result.output.stat().st_size,
                        duration_ms=result.output_info.duration_ms, action=result.action,
                        notes=result.notes)


def clip_key(clip: PlannedClip, extend: Extend | None, min_side_px: int = 0) -> str:
    """Identity of a prepared clip: the source file as it is now, the window used, and the
    model's smallest picture side where it has one (a clip may be scaled up to it).

    Jobs that use the same source and window share one prepared file and one upload.
    """
    path = clip.spec.path.resolve()
    try:
        stat = path.stat()
    except OSError as err:
        raise MediaError(path, f"cannot be read any more ({err.strerror or err})",
                         hint="it was moved or deleted after it was probed; put it back") from err
    # (wan2.6's keys, with no smallest side, are those of journals written before it existed)
    return digest([str(path), stat.st_size, stat.st_mtime_ns, clip.window.start_ms,
                   clip.window.end_ms, extend, *([min_side_px] if min_side_px else [])])


# -- the network steps (I/O pool) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Uploaded:
    """A prepared clip's temporary URL, as the journal records it."""

    file_url: str
    file_id: str | None
    expires_at: float
    cached: bool
    notes: tuple[str, ...] = ()  # what the upload said (the stream endpoint took it instead...)


def parse_expiry(text: str | None, now: float) -> float:
    """An upload's `expires_at` as a timestamp; the documented lifetime when it cannot be read."""
    if text:
        try:
            when = datetime.fromisoformat(text.strip().replace(" ", "T", 1).replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return when.timestamp()
        except ValueError:
            pass
    return now + rules.UPLOAD_TTL_S


def upload_clip(api: Client, gate: RateGate, path: Path, *, sha256: str | None, mode: UploadMode,
                cache: UploadCache | None, now: float, margin_s: float,
                on_progress: Callable[[int, int], None] | None = None,
                reference: bool = False) -> Uploaded:
    """Upload one prepared file (`reference`: an image or sound reference), or reuse a cached
    upload of the same bytes that lives long enough."""
    from prep.api.upload import upload_file

    if cache is not None and sha256 is not None:
        hit = cache.get(sha256, api.files_url)
        if hit is not None:
            expires = parse_expiry(hit.get("expires_at"), now)
            with gate.call():
                alive = expires - margin_s > now and api.url_alive(str(hit["file_url"]))
            if alive:
                return Uploaded(file_url=str(hit["file_url"]), file_id=hit.get("file_id"),
                                expires_at=expires, cached=True)
            cache.forget(sha256, api.files_url)
    with gate.call():
        uploaded = upload_file(api, path, mode=mode, sha256=sha256, on_progress=on_progress,
                               reference=reference)
    if cache is not None:
        cache.put(uploaded, api.files_url)
    return Uploaded(file_url=uploaded.file_url, file_id=uploaded.file_id,
                    expires_at=parse_expiry(uploaded.expires_at, now), cached=False,
                    notes=uploaded.notes)


def create_task(api: Client, gate: RateGate, body: dict[str, Any], key: str) -> Task:
    """Send one create request (already journaled) under its Idempotency-Key."""
    with gate.call():
        return api.create_task(body, idempotency_key=key)


def read_task(api: Client, gate: RateGate, task_id: str) -> Task:
    """One task query."""
    with gate.call():
        return api.get_task(task_id)


def read_tasks(api: Client, gate: RateGate, task_ids: list[str]) -> dict[str, Task] | None:
    """One query for several tasks (POST /v1/tasks/batch); None when the server does not offer it."""
    with gate.call():
        return api.get_tasks(task_ids)


def download_result(api: Client, fetch: Client, gate: RateGate, *, url: str | None,
                    task_id: str | None, dest: Path,
                    on_progress: Callable[[int, int | None], None] | None = None
                    ) -> tuple[Path, str, int]:
    """Download a completed task's result to `dest` (asking the task for its URL when unknown)."""
    if not url:
        task = read_task(api, gate, task_id or "")
        if not task.results:
            raise TaskFailedError(f"task {task_id} is {task.status} but lists no result",
                                  task_id=task_id or "")
        url = task.results[0]
    fetch.download(url, dest, on_progress=on_progress)
    return dest, file_sha256(dest), dest.stat().st_size


def this_worker() -> str | None:
    """The address of the Dask worker running this code; None anywhere else."""
    distributed: Any = sys.modules.get("distributed")  # loaded on a worker; never loaded to ask
    if distributed is None:
        return None
    try:
        return str(distributed.get_worker().address)
    except (ValueError, AttributeError):
        return None


def vet_this_worker(clips: Sequence[Path], out_dir: Path) -> None:
    """At the start of each encode on a Dask worker: MediaError (exit 3) naming the worker when it
    cannot see a clip or the batch's output folder. `check_workers` vets the workers there at the
    start; this catches one that joined later without the shared filesystem. Off a worker, nothing."""
    worker = this_worker()
    if worker is None:
        return
    hint = "mount the clips and the output folder at the same paths on every worker"
    for path in clips:
        if not os.path.isfile(path):
            raise MediaError(path, f"worker {worker} cannot see this clip (the clips must be on a "
                                   "filesystem every worker shares, at the same path)", hint=hint)
    if not out_dir.parent.is_dir():  # the coordinator made it: a worker that shares it sees it
        raise MediaError(out_dir.parent, f"worker {worker} cannot see the output folder", hint=hint)
