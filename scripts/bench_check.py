#!/usr/bin/env python3
"""Benchmark: how fast `prep check` grades camera footage, as a multiple of real time.

Footage: the generated 1920x1080 30 fps H.264 clip of `scripts/bench_pick.py` (High profile,
12 Mb/s; tests/pickmedia.py, cached in PREP_TEST_MEDIA). `prep check` (one decode pass at reduced
size, the loudness and peaks measured by the same audio process) is measured against a naive
baseline in the same run: the pick analysis as it is, then a separate ffmpeg pass for the
loudness and peaks (ebur128 + astats), as a tool built from the two would do it.
Target: at least 4x real time on 2 cores.

The machines are shared, so beside the wall-clock figures it prints the CPU time each side used
(this process and its ffmpeg children) and the real-time factor that CPU time allows on the
machine's cores when nothing else runs: a figure that the load of other work does not move.

    python scripts/bench_check.py           # 30 s clip
    python scripts/bench_check.py --quick   # 10 s clip
"""

from __future__ import annotations

import argparse
import os
import resource
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
    from prep.media.stream import ffmpeg_input
    from prep.pick.analyze import analyze

    started = time.perf_counter()
    analyze(path)
    subprocess.run([ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-i", ffmpeg_input(path),
                    "-map", "0:a:0", "-af", "ebur128=peak=true:framelog=quiet,astats=metadata=0",
                    "-f", "null", "-"], check=True, capture_output=True)
    return time.perf_counter() - started


def cpu_s() -> float:
    """CPU seconds used so far by this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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
    load_before = os.getloadavg()[0]
    cpu0, started = cpu_s(), time.perf_counter()
    report = check_clip(clip)
    ours, ours_cpu = time.perf_counter() - started, cpu_s() - cpu0
    cpu0 = cpu_s()
    theirs = naive(clip, ffmpeg)
    theirs_cpu = cpu_s() - cpu0
    load = max(load_before, os.getloadavg()[0])
    cores = os.cpu_count() or 1
    print(f"prep check: {seconds} s of 1920x1080 h264 at 30 fps, 12 Mb/s; {os.cpu_count()} cores "
          f"(load average {load:.1f})")
    print(f"  prep check (one pass):                {ours:6.2f} s = {seconds / ours:5.1f}x real time"
          f"  (verdict {report.verdict}; loudness {report.check('loudness').value} LUFS)")
    print(f"  naive (pick analysis + loudness pass): {theirs:6.2f} s = {seconds / theirs:5.1f}x "
          "real time")
    print(f"  CPU time: prep check {ours_cpu:.2f} s, naive {theirs_cpu:.2f} s; on {cores} idle "
          f"cores that is {seconds * cores / ours_cpu:.1f}x and {seconds * cores / theirs_cpu:.1f}x "
          "real time")
    print(f"speed-up over naive: {theirs / ours:.2f}x (CPU time: {theirs_cpu / ours_cpu:.2f}x)")
    ok = seconds / ours >= TARGET_X
    print(f"target >= {TARGET_X:g}x real time: {seconds / ours:.1f}x, {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
