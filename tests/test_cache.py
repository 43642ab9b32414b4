"""media/cache.py: copies that are never links, entries checked against their records."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prep.media import cache as cache_module
from prep.media.cache import Cache, copy_file


def _src(tmp_path: Path, size: int = 300_000) -> Path:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(size))
    return src


def test_copy_is_a_new_file(tmp_path: Path) -> None:
    src = _src(tmp_path)
    how = copy_file(src, tmp_path / "dst.bin")
    dst = tmp_path / "dst.bin"
    assert how in ("reflink", "copy_file_range", "copy")
    assert dst.read_bytes() == src.read_bytes()
    assert dst.stat().st_ino != src.stat().st_ino and src.stat().st_nlink == 1
    dst.write_bytes(b"changed")  # writing one never touches the other
    assert len(src.read_bytes()) == 300_000


def test_copy_falls_back_to_a_plain_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    def unsupported(*args: object) -> int:
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(fcntl, "ioctl", unsupported)
    monkeypatch.setattr(os, "copy_file_range", unsupported)
    src = _src(tmp_path)
    assert copy_file(src, tmp_path / "dst.bin") == "copy"
    assert (tmp_path / "dst.bin").read_bytes() == src.read_bytes()


def test_copy_reports_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    monkeypatch.setattr(cache_module.shutil, "copyfileobj", full)
    with pytest.raises(OSError) as caught:
        copy_file(_src(tmp_path), tmp_path / "dst.bin")
    assert caught.value.errno == errno.ENOSPC


def test_fetch_hit_miss_and_damage(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache", limit_bytes=10_000_000)
    src = _src(tmp_path)
    assert cache.fetch("k", tmp_path / "out.bin") == ""  # a plain miss
    cache.store("k", src)
    record = json.loads((tmp_path / "cache" / "k.json").read_text())
    assert record["size_bytes"] == 300_000 and len(record["sha256"]) == 64
    assert cache.fetch("k", tmp_path / "out.bin") is None
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    with cache.entry("k").open("r+b") as fh:
        fh.write(b"X")
    why = cache.fetch("k", tmp_path / "again.bin")
    assert why and "sha256" in why
    assert not cache.entry("k").exists() and not (tmp_path / "again.bin").exists()
    assert not list((tmp_path / "cache").iterdir())  # entry and record both gone


def test_prune_keeps_the_most_recent_within_the_limit(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache", limit_bytes=700_000)
    src = _src(tmp_path)
    for i, key in enumerate(("old", "mid", "new")):
        cache.store(key, src)
        os.utime(cache.entry(key), (1_000_000 + i, 1_000_000 + i))
    cache.prune()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "mid.json", "mid.mp4", "new.json", "new.mp4"]


def test_prune_removes_stale_parts_and_old_orphan_records(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = folder / f".k.mp4.{gone.pid}.part"
    live = folder / f".j.mp4.{os.getpid()}.part"
    old_orphan, new_orphan = folder / "a.json", folder / "b.json"
    for path in (stale, live, old_orphan, new_orphan):
        path.write_text("{}")
    past = time.time() - 2 * 3600
    os.utime(old_orphan, (past, past))
    Cache(folder, limit_bytes=1).prune()
    assert not stale.exists() and not old_orphan.exists()
    assert live.exists() and new_orphan.exists()  # a store may be in progress
