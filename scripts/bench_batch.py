"""Benchmark: a 12-job batch, pipelined, against the same jobs run one after another.

Both runs use the same code (`prep.jobs.engine.run_batch`), the same clips and an in-process sandbox
whose tasks take a realistic-ish while (the sandbox's simulated render time, sped up), so waiting
on tasks and the network matters as it does against EvoLink. The baseline runs each job alone,
from preparing to download, before starting the next (what a shell loop over `prep generate`
does); the pipelined run prepares on the CPU pool while uploads, tasks and downloads of other jobs
go on. Target: pipelined at most 0.6x of sequential.

    python scripts/bench_batch.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prep.jobs.engine import BatchOptions, default_cpu_workers, run_batch
from prep.jobs.manifest import load_manifest
from prep.jobs.planning import plan_batch
from prep.media.ffmpeg import find_ffmpeg
from prep.sandbox import SandboxConfig, run_in_thread
from prep.settings import Settings, load_settings

JOBS = 12


def _make_clips(folder: Path) -> list[str]:
    """Six sources: three H.264 mp4 (stream copy) and three MPEG-4 Part 2 avi (transcoded)."""
    ffmpeg = find_ffmpeg().path
    names = []
    for i in range(6):
        transcode = i % 2 == 1
        name = f"clip{i}.{'avi' if transcode else 'mp4'}"
        vcodec = ["-c:v", "mpeg4", "-q:v", "4"] if transcode else \
            ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
        subprocess.run(
            [ffmpeg, "-v", "error", "-nostdin", "-y",
             "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=6",
             "-f", "lavfi", "-i", f"sine=frequency={300 + 40 * i}:sample_rate=48000:duration=6",
             *vcodec, "-c:a", "aac", "-shortest", str(folder / name)],
            check=True)
        names.append(name)
    return names


def _rows(names: list[str]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for j in range(JOBS):
        first = names[j % len(names)]
        clips: list[str] = [first]
        if j % 3 == 1:
            clips.append(f"{names[(j + 1) % len(names)]}@1-4")
        rows.append({"name": f"job{j:02d}", "clips": clips, "prompt": f"Scene {j}: a person waves",
                     "duration": 2 + j % 3})
    return rows


def _write(folder: Path, rows: list[dict[str, object]], name: str) -> Path:
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="faster tasks (under a minute in all)")
    args = parser.parse_args()
    # Simulated task time is 30 s + 8 s per output second (x1.5 at 1080p); `speed` divides it.
    speed = 40.0 if args.quick else 15.0
    with tempfile.TemporaryDirectory(prefix="prep-bench-batch-") as tmp:
        root = Path(tmp)
        clips = root / "clips"
        clips.mkdir()
        names = _make_clips(clips)
        rows = _rows(names)
        config = SandboxConfig(speed=speed, data_dir=root / "sandbox",
                               render_cache_dir=root / "render-cache")
        with run_in_thread(config) as sandbox:
            def settings(cache: str) -> Settings:
                return load_settings({"api_key": sandbox.key, "base_url": sandbox.url,
                                      "files_url": sandbox.files_url,
                                      "cache_dir": str(root / cache)})

            # Warm the sandbox's result renders once, so neither run pays for the first of each.
            warm = _write(clips, [dict(rows[0], name=f"warm{d}", duration=d) for d in (2, 3, 4)],
                          "warm.jsonl")
            run_batch(plan_batch(load_manifest(warm)), settings("cache-warm"),
                      BatchOptions(output_dir=root / "out-warm", concurrency=3))

            started = time.perf_counter()
            for row in rows:
                one = _write(clips, [row], f"seq-{row['name']}.jsonl")
                result = run_batch(plan_batch(load_manifest(one)), settings("cache-seq"),
                                   BatchOptions(output_dir=root / "out-seq", concurrency=1,
                                                cpu_workers=1))
                assert result.exit_code == 0, result.as_dict()
            sequential_s = time.perf_counter() - started

            manifest = _write(clips, rows, "all.jsonl")
            started = time.perf_counter()
            result = run_batch(plan_batch(load_manifest(manifest)), settings("cache-pipe"),
                               BatchOptions(output_dir=root / "out-pipe", concurrency=6,
                                            cpu_workers=default_cpu_workers()))
            pipelined_s = time.perf_counter() - started
            assert result.exit_code == 0, result.as_dict()
            tasks = len(sandbox.state()["tasks"]) - 3  # less the warm-up
    ratio = pipelined_s / sequential_s
    print(f"batch: {JOBS} jobs, sandbox speed {speed:g}x, {os.cpu_count()} cores, "
          f"{tasks} tasks made ({JOBS} per run)")
    print(f"  one after another : {sequential_s:6.1f} s")
    print(f"  pipelined         : {pipelined_s:6.1f} s  ({ratio:.2f}x of sequential; target <= 0.60x)")
    sys.exit(0 if ratio <= 0.6 else 1)


if __name__ == "__main__":
    main()
