"""Where everything is in an output folder: results, prepared clips, the journal, the run lock.

The one place these paths are defined (the engine, its workers, `generate`, `status`, the studio).
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "JOURNAL_NAME",
    "LOCK_NAME",
    "PREPARED_DIR",
    "PROGRESS_EVERY_S",
    "REFERENCES_DIR",
    "journal_path",
    "made_reference_path",
    "prepared_dir",
    "prepared_root",
    "progress_path",
    "read_progress",
    "result_path",
    "sidecar_path",
]

# Each prepared clip gets a folder of its own under this one, in the output folder.
PREPARED_DIR = "prepared"
# Voices and stills made from footage (`--voice-from`, `--image-from`), one file each.
REFERENCES_DIR = "references"
JOURNAL_NAME = "batch-journal.sqlite"
LOCK_NAME = ".prep-lock"
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


def result_path(out_dir: Path, job: str) -> Path:
    """Where a job's result video is written."""
    return out_dir / f"{job}.mp4"


def sidecar_path(out_dir: Path, job: str) -> Path:
    """Where a job's result remembers what was paid for it (fingerprint, task, credits)."""
    return out_dir / f"{job}.json"


def journal_path(out_dir: Path | str) -> Path:
    """Where the journal of an output folder lives."""
    return Path(out_dir) / JOURNAL_NAME


def prepared_root(out_dir: Path) -> Path:
    """The folder of every prepared clip of an output folder."""
    return out_dir / PREPARED_DIR


def prepared_dir(out_dir: Path, clip_key: str) -> Path:
    """The folder a clip (by its key) is prepared into."""
    return prepared_root(out_dir) / clip_key[:16]


def made_reference_path(out_dir: Path, key: str, suffix: str) -> Path:
    """Where a reference made from footage (by its key: the source and what was made) is kept."""
    return out_dir / REFERENCES_DIR / f"{key[:16]}{suffix}"
