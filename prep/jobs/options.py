"""What a run of the engine is given: how it runs (`BatchOptions`) and whom it tells (`RunHooks`).

They live apart from `prep.jobs.engine` so that the runner's collaborators (`runstate`, `clips`,
`identity`, `creating`, `following`) can read them without importing the engine that wires them;
`prep.jobs.engine` re-exports both, which is where callers take them from.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from prep.errors import UsageError
from prep.jobs.policy import DEFAULT_PACING, Pacing
from prep.jobs.steps import FAULT_POINTS

if TYPE_CHECKING:
    from prep.api.client import Task
    from prep.core.plan import Profile

__all__ = ["UPLOAD_MARGIN_S", "BatchOptions", "RunHooks", "default_cpu_workers"]

# Redo an upload whose URL expires sooner than this: the server fetches references after create.
UPLOAD_MARGIN_S = 3600.0


def default_cpu_workers() -> int:
    """ffmpeg at a time: 1 on a 2-core machine (ffmpeg itself uses the cores), else 2."""
    return 1 if (os.cpu_count() or 1) <= 2 else 2


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchOptions:
    """How a batch runs (defaults are the CLI's)."""

    output_dir: Path
    concurrency: int = 4
    cpu_workers: int = field(default_factory=default_cpu_workers)
    retry_failed: bool = False
    resubmit_unknown: bool = False
    wait_lock: bool = False  # another run holds the folder: wait for it (else FolderBusyError)
    upload_mode: Literal["auto", "base64", "stream"] = "auto"  # auto: base64, stream if refused
    upload_margin_s: float = UPLOAD_MARGIN_S
    pacing: Pacing = DEFAULT_PACING  # retries, pauses and poll intervals (tests: a quick one)
    max_cost_units: int | None = None  # checked again once the clips are prepared and measured
    follow: bool = True  # False: stop once every task is created (`generate --no-wait`)
    deadline_s: float | None = None  # stop following tasks after this long (they go on at EvoLink)
    use_cache: bool = True  # reuse prepared clips and live uploads from the cache folder
    profile: Profile | None = None  # the encoder profile for re-encoded clips (None: the default)
    check_credits: bool = True  # read GET /v1/credits first (False: the caller already did)
    batch_queries: bool = True  # follow several tasks with one POST /v1/tasks/batch where served
    fault: str | None = None  # test only: "POINT[:JOB]", see FAULT_POINTS

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.cpu_workers < 1:
            raise UsageError("--concurrency must be at least 1")
        if self.fault and self.fault.partition(":")[0] not in FAULT_POINTS:
            raise UsageError(f"unknown fault point {self.fault!r}")


@dataclass(slots=True, kw_only=True)
class RunHooks:
    """How a run reports progress (the CLI draws it; the library never prints)."""

    on_state: Callable[[str, str, str], None] | None = None  # (job, state, detail)
    on_progress: Callable[[int, int], None] | None = None  # (jobs finished, jobs in the run)
    on_warning: Callable[[str], None] | None = None
    on_task: Callable[[Task], None] | None = None  # every answer about a task (create, query)
    on_prepare_progress: Callable[[str, int, int], None] | None = None  # (clip, done ms, total ms)
    on_upload_progress: Callable[[Path, int, int], None] | None = None  # (file, sent, total bytes)
    on_download_progress: Callable[[int, int | None], None] | None = None  # (bytes, total)

    def state(self, job: str, state: str, detail: str = "") -> None:
        if self.on_state is not None:
            self.on_state(job, state, detail)
