"""The cache of prepared outputs: entries that are copied out, never shared, and checked on reuse.

An entry is `<key>.mp4` beside a record `<key>.json` holding its size and sha256, written when
the entry is stored (record first, then the entry, each by a rename). Before an entry is reused,
the copy handed out is measured against its record; an entry that does not match (a tool
rewrote it, a disk lost part of it, the record is missing) is dropped, and the caller makes the
clip again and tells the user why.

Outputs are copies of entries, never hard links: a tool that rewrites an output in place (`cp`
over it, `ffmpeg -y`) must not rewrite the cache with it. A copy is a reflink (FICLONE) where the
filesystem shares blocks, else `os.copy_file_range` (in-kernel), else a plain read and write.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from prep.files import file_sha256, write_text_atomic

__all__ = ["Cache", "copy_file", "pid_alive", "remove_stale_parts"]

# The Linux ioctl that makes `dst` share `src`'s blocks (btrfs, XFS, bcachefs, ...).
_FICLONE = 0x40049409
# Errors that mean "this way of copying is not available here": the next way is tried.
_UNSUPPORTED = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL,
                errno.EBADF, errno.EPERM, errno.ETXTBSY}
# A record without its entry younger than this may belong to a store in progress.
_ORPHAN_GRACE_S = 3600
_CACHE_PART = re.compile(r"^\..+\.(\d+)\.part$")


def copy_file(src: Path, dst: Path) -> str:
    """Copy `src` to a new file `dst`, never a hard link. Returns how: reflink, copy_file_range
    or copy. OSError (a full disk among them) propagates."""
    with src.open("rb") as fin, dst.open("wb") as fout:
        if sys.platform.startswith("linux"):
            import fcntl

            try:
                fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
                return "reflink"
            except OSError as err:
                if err.errno not in _UNSUPPORTED:
                    raise
        if hasattr(os, "copy_file_range"):
            size = os.fstat(fin.fileno()).st_size
            copied = 0
            try:
                while copied < size:
                    step = os.copy_file_range(fin.fileno(), fout.fileno(), size - copied)
                    if step == 0:
                        break
                    copied += step
            except OSError as err:
                if err.errno not in _UNSUPPORTED:
                    raise
            if copied == size:
                return "copy_file_range"
            fin.seek(0)
            fout.seek(0)
            fout.truncate()
        shutil.copyfileobj(fin, fout, 1 << 20)
        return "copy"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user's counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_parts(folder: Path, pattern: re.Pattern[str]) -> list[Path]:
    """Remove the temp files in `folder` whose names match `pattern` (its group 1 a process id)
    and whose process is gone: what a killed prep left behind. Returns those removed."""
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        found = pattern.match(name)
        if found is None or pid_alive(int(found.group(1))):
            continue
        path = folder / name
        with contextlib.suppress(OSError):
            if path.is_file():
                path.unlink()
                removed.append(path)
    return removed


@dataclass(frozen=True, slots=True)
class Cache:
    """Entries under `folder`, keyed by the caller (source identity plus plan)."""

    folder: Path
    limit_bytes: int

    def entry(self, key: str) -> Path:
        return self.folder / f"{key}.mp4"

    def fetch(self, key: str, dst: Path) -> str | None:
        """Copy entry `key` to `dst` and check it against its record.

        Returns None when `dst` holds the entry, as stored. Otherwise `dst` is removed and the
        result is "" for a plain miss, or why the entry was dropped (a damaged entry). OSError
        while writing `dst` (a full disk) propagates.
        """
        entry, record_path = self.entry(key), self._record(key)
        if not entry.exists():
            return ""  # a record alone may be a store in progress: prune removes old ones
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            size_bytes, sha256 = int(record["size_bytes"]), str(record["sha256"])
        except FileNotFoundError:
            problem = "it has no record of its size and checksum"
        except (OSError, ValueError, KeyError, TypeError):
            problem = "its record cannot be read"
        else:
            try:
                copy_file(entry, dst)
            except FileNotFoundError:  # pruned by another prep in the meantime
                dst.unlink(missing_ok=True)
                return ""
            actual = dst.stat().st_size
            if actual != size_bytes:
                problem = f"it is {actual:,} bytes where {size_bytes:,} were stored"
            elif file_sha256(dst) != sha256:
                problem = "its content changed after it was stored (sha256 mismatch)"
            else:
                with contextlib.suppress(OSError):
                    os.utime(entry)  # recently used: pruned last
                return None
        dst.unlink(missing_ok=True)
        self.drop(key)
        return problem

    def store(self, key: str, src: Path) -> None:
        """Keep a copy of a verified output with its record; best effort, never an error."""
        entry = self.entry(key)
        # The thread too: prepare works on two clips at once, and both may store one key.
        part = entry.with_name(f".{entry.name}.t{threading.get_native_id()}.{os.getpid()}.part")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            copy_file(src, part)
            record = {"size_bytes": part.stat().st_size, "sha256": file_sha256(part),
                      "stored_at": int(time.time())}
            write_text_atomic(self._record(key), json.dumps(record, sort_keys=True) + "\n")
            os.replace(part, entry)
            self.prune()
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                part.unlink(missing_ok=True)

    def drop(self, key: str) -> None:
        """Remove an entry and its record."""
        for path in (self.entry(key), self._record(key)):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    def prune(self) -> None:
        """Drop the least recently used entries once the cache holds more than its limit; and
        records without entries, and temp files of stores that were killed."""
        remove_stale_parts(self.folder, _CACHE_PART)
        entries = []
        for path in self.folder.glob("*.mp4"):
            with contextlib.suppress(OSError):
                stat = path.stat()
                entries.append((stat.st_mtime, stat.st_size, path))
        total = 0
        for _mtime, size, path in sorted(entries, reverse=True):
            total += size
            if total > self.limit_bytes:
                self.drop(path.stem)
        now = time.time()
        for record in self.folder.glob("*.json"):
            with contextlib.suppress(OSError):
                if (not self.entry(record.stem).exists()
                        and now - record.stat().st_mtime > _ORPHAN_GRACE_S):
                    record.unlink()

    def _record(self, key: str) -> Path:
        return self.folder / f"{key}.json"
