#!/usr/bin/env python3
"""Benchmark: how fast `prep check` grades camera footage, as a multiple of real time.

Footage: the generated 1920x1080 30 fps H.264 clip of `scripts/bench_pick.py` (High profile,
12 Mb/s; tests/pickmedia.py, cached in PREP_TEST_MEDIA). `prep check` (one decode pass at reduced
size, the loudness and peaks measured by the same audio process) is measured against a naive
baseline in the same run: the pick analysis as it is, then a separate ffmpeg pass for the
loudness and peaks (ebur128 + astats), as a tool built from the two would do it.
Target: at least 4x real time on 2 cores.

    python scripts/bench_check.py           # 30 s clip
    python scripts/bench_check.py --quick   # 10 s clip
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

TARGET_X = 4.0


def naive(path: Path, ffmpeg: str) -> float:
    """Seconds for the pick analysis plus a separate loudness pass over the whole clip."""
    from prep.pick.analyze import analyze, ffmpeg_input

    started = time.perf_counter()
    analyze(path)
    subprocess.run([ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-i", ffmpeg_input(path),
                    "-map", "0:a:0", "-af", "ebur128=peak=true:framelog=quiet,astats=metadata=0",
                    "-f", "null", "-"], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10 s clip instead of 30 s")
    args = parser.parse_args()
    import pickmedia

    from prep.media.ffmpeg import find_ffmpeg
    from prep.pick.check import check_clip

    seconds = 10 if args.quick else 30
    clip = pickmedia.bench_clip(seconds)
    ffmpeg = find_ffmpeg().path
    check_clip(clip)  # warm the caches (files, models) so both sides start alike
    started = time.perf_counter()
    report = check_clip(clip)
    ours = time.perf_counter() - started
    theirs = naive(clip, ffmpeg)
    load = os.getloadavg()[0]
    print(f"prep check: {seconds} s of 1920x1080 h264 at 30 fps, 12 Mb/s; {os.cpu_count()} cores "
          f"(load average {load:.1f})")
    print(f"  prep check (one pass):                {ours:6.2f} s = {seconds / ours:5.1f}x real time"
          f"  (verdict {report.verdict}; loudness {report.check('loudness').value} LUFS)")
    print(f"  naive (pick analysis + loudness pass): {theirs:6.2f} s = {seconds / theirs:5.1f}x "
          "real time")
    print(f"speed-up over naive: {theirs / ours:.2f}x")
    ok = seconds / ours >= TARGET_X
    print(f"target >= {TARGET_X:g}x real time: {seconds / ours:.1f}x, {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
