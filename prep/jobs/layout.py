"""Where things are in a batch's output folder (shared by the engine, its workers and `status`)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["PREPARED_DIR", "PROGRESS_EVERY_S", "progress_path", "read_progress"]

# Each prepared clip gets a folder of its own under this one, in the output folder.
PREPARED_DIR = "prepared"
PROGRESS_NAME = ".progress"
# How often a worker rewrites its progress file (the coordinator reads it at about this pace).
PROGRESS_EVERY_S = 0.5


def progress_path(out_dir: Path) -> Path:
    """Where the encode of the clip prepared into `out_dir` reports how far it is."""
    return out_dir / PROGRESS_NAME


def read_progress(out_dir: Path) -> tuple[int, int] | None:
    """(encoded ms, total ms) of an encode in progress in `out_dir`, or None."""
    try:
        done, total = progress_path(out_dir).read_text().split()
        return int(done), int(total)
    except (OSError, ValueError):
        return None
