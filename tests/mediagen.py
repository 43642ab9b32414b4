"""Test media made with ffmpeg from lavfi sources, cached by recipe so each is made once.

The cache lives in `PREP_TEST_MEDIA` (default: `.cache/test-media` at the repository root), and a
file's name is a hash of its recipe, so a changed recipe makes a new file. Several processes share
the cache (pytest-xdist workers, a benchmark beside the tests): a file is written under a private
name and renamed into place, and built under an exclusive lock on its own lock file, so that two
processes asking for the same missing file at once build it once; the second waits for the first
and takes its file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import testmarks

from prep.media.ffmpeg import find_ffmpeg

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("PREP_TEST_MEDIA", ROOT / ".cache" / "test-media"))


def ffmpeg_exe() -> str:
    return find_ffmpeg("").path if not os.environ.get("PREP_FFMPEG") else os.environ["PREP_FFMPEG"]


def make(name: str, args: list[str], *, suffix: str = ".mp4") -> Path:
    """Run `ffmpeg <args> OUT` once per recipe and return OUT (cached). Under pytest, only a test
    marked `media` may ask, cached or not (tests/testmarks.py)."""
    testmarks.require("media", f"generates test media ({name})")
    digest = hashlib.sha256(repr((args, suffix)).encode()).hexdigest()[:12]
    out = CACHE / f"{name}-{digest}{suffix}"

    def build(tmp: Path) -> None:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-y", *args, str(tmp)], check=True)

    return cached(out, build)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold the exclusive lock of cache file `out` (a hidden `.NAME.lock` beside it, kept: removing
    it while another process waits on it would let a third one lock a new file and build too)."""
    with open(out.with_name(f".{out.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached(out: Path, build: Callable[[Path], None]) -> Path:
    """`out`, built by `build(tmp)` into a private temporary name beside it and renamed into place,
    unless it is there already; once across every process sharing the cache."""
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        if out.exists():  # another process built it while this one waited for the lock
            return out
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp{out.suffix}")
        try:
            build(tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return out


def clip(name: str = "clip", *, seconds: float = 4, size: str = "640x360", rate: str = "30",
         audio: bool = True, vcodec: list[str] | None = None, suffix: str = ".mp4",
         extra: list[str] | None = None) -> Path:
    """A test-pattern clip with an optional 440 Hz tone; H.264/AAC mp4 unless told otherwise."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    args += vcodec or ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    args += extra or []
    return make(name, args, suffix=suffix)
