"""Probe speed and start-up time, each against a naive baseline measured in the same run.

1. Probing 100 clips in one process (prep.probe, pymediainfo in-process) against one subprocess per
   clip: `ffmpeg -i CLIP` (what tools do without ffprobe) and `python -m prep probe CLIP --json`.
2. `prep --help` start-up against `python -c pass`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prep.media import probe as media
from prep.media.ffmpeg import find_ffmpeg


def _timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _make_clips(folder: Path, count: int) -> list[Path]:
    ffmpeg = find_ffmpeg().path
    kinds = [
        ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=3", "-f", "lavfi", "-i",
         "sine=duration=3", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest"],
        ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4", "-c:v", "mpeg4"],
    ]
    seeds = []
    for i, args in enumerate(kinds):
        seed = folder / f"seed{i}.{'mp4' if i == 0 else 'mov'}"
        subprocess.run([ffmpeg, "-v", "error", "-y", *args, str(seed)], check=True)
        seeds.append(seed)
    clips = []
    for i in range(count):
        seed = seeds[i % len(seeds)]
        target = folder / f"clip{i:03d}{seed.suffix}"
        shutil.copy(seed, target)
        clips.append(target)
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer clips and repeats")
    args = parser.parse_args()
    count = 30 if args.quick else 100
    repeat = 3 if args.quick else 5
    ffmpeg = find_ffmpeg().path
    with tempfile.TemporaryDirectory() as tmp:
        clips = _make_clips(Path(tmp), count)
        media.probe(clips[0])  # load libmediainfo once, as a running prep would have

        in_process = _timed(lambda: media.probe_many(clips), repeat)
        ffmpeg_each = _timed(lambda: [subprocess.run([ffmpeg, "-hide_banner", "-i", str(c)],
                                                     capture_output=True) for c in clips], 1)
        sub = clips[: max(10, count // 10)]
        prep_each = _timed(lambda: [subprocess.run([sys.executable, "-m", "prep", "probe", str(c),
                                                    "--json"], capture_output=True, check=True)
                                    for c in sub], 1) * count / len(sub)
    print(f"probe {count} clips in-process:            {in_process * 1000:8.1f} ms "
          f"({in_process / count * 1000:.2f} ms/clip)")
    print(f"baseline: `ffmpeg -i` subprocess per clip:  {ffmpeg_each * 1000:8.1f} ms  "
          f"ratio {ffmpeg_each / in_process:5.1f}x slower")
    print(f"baseline: `prep probe` process per clip:    {prep_each * 1000:8.1f} ms  "
          f"ratio {prep_each / in_process:5.1f}x slower (extrapolated from {len(sub)} clips)")

    runs = 5 if args.quick else 15
    prep_exe = shutil.which("prep") or "prep"
    help_s = _timed(lambda: subprocess.run([prep_exe, "--help"], capture_output=True, check=True), runs)
    pass_s = _timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), runs)
    print(f"`prep --help` start-up:                     {help_s * 1000:8.1f} ms")
    print(f"baseline: `python -c pass`:                 {pass_s * 1000:8.1f} ms  "
          f"ratio {help_s / pass_s:5.2f}x")


if __name__ == "__main__":
    main()
