"""One run per output folder: an OS lock held for the run's whole life.

Two runs (two `prep batch`, a `generate` and the studio...) working in one output folder would both
decide to submit the same job and download into the same `.part` file. Whoever opens the folder's
journal for a run first takes an exclusive `flock` on `<folder>/.prep-lock`; the OS drops it when
the process ends, however it ends (kill -9 included), so nothing stale is ever left to clean up.
The holder writes its pid, command and start time into the file, so that a second run can say who
holds the folder. Reading (`prep batch status`) takes no lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prep.errors import FolderBusyError, UsageError
from prep.jobs.layout import LOCK_NAME

__all__ = ["RunLock", "holder_of"]



def holder_of(folder: Path) -> dict[str, Any] | None:
    """Who last took the folder's lock (pid, command, started), as its file says; None if unknown."""
    try:
        data = json.loads((folder / LOCK_NAME).read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class RunLock:
    """The lock of one output folder. `acquire()` (or `with`) takes it; `release()` drops it."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, *, wait: bool = False, on_wait: Callable[[str], None] | None = None,
                poll_s: float = 0.5) -> RunLock:
        """Take the lock. Held by another process: FolderBusyError naming it, or with `wait` block
        until it is free (telling `on_wait` once who holds it)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise UsageError(f"{self.folder}: cannot use this output folder ({err.strerror or err})",
                             hint="choose a folder you can write to with -o DIR") from err
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                who = _describe(holder_of(self.folder))
                if not wait:
                    os.close(fd)
                    raise FolderBusyError(
                        f"{self.folder}: another prep run is working in this folder ({who})",
                        hint="wait for it to finish, run again with --wait, or use another -o DIR"
                    ) from None
                if not told and on_wait is not None:
                    on_wait(f"waiting for another prep run in {self.folder} ({who})")
                    told = True
                time.sleep(poll_s)
        self._fd = fd
        record = {"pid": os.getpid(), "command": " ".join(sys.argv[:4])[:200], "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        return self

    def release(self) -> None:
        """Drop the lock (the OS drops it too when the process ends)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self if self.held else self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "a process that did not say who it is"
    since = time.strftime("%H:%M:%S", time.localtime(float(holder.get("started", 0))))
    return f"pid {holder.get('pid')}, `{holder.get('command', 'prep')}`, since {since}"
