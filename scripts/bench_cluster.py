"""Benchmark: the same 12-job batch with its encodes on a LocalCluster of 1 and of 2 workers.

Every clip needs a real encode (MPEG-4 Part 2 sources), so the CPU stage dominates; the sandbox's
tasks are fast, so what is measured is how encode time scales with workers. The baseline is the
1-worker cluster, measured in the same run. On a 2-core machine ffmpeg already uses both cores,
so expect little gain here: the point is the ratio on a machine (or cluster) with cores to spare,
and that the coordinator (uploads, polling, downloads) is not the bottleneck.

    python scripts/bench_cluster.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from prep.jobs.cluster import Scheduler, cpu_executor
from prep.jobs.engine import BatchOptions, run_batch
from prep.jobs.manifest import load_manifest
from prep.jobs.planning import plan_batch
from prep.media.ffmpeg import find_ffmpeg
from prep.sandbox import SandboxConfig, run_in_thread
from prep.settings import load_settings

JOBS = 12


def _make_clips(folder: Path, count: int, seconds: int) -> list[str]:
    ffmpeg = find_ffmpeg().path
    names = []
    for i in range(count):
        name = f"clip{i}.avi"
        subprocess.run(
            [ffmpeg, "-v", "error", "-nostdin", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency={300 + 40 * i}:sample_rate=48000:duration={seconds}",
             "-c:v", "mpeg4", "-q:v", "4", "-c:a", "mp3", "-shortest", str(folder / name)],
            check=True)
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter clips (about a minute in all)")
    args = parser.parse_args()
    seconds = 4 if args.quick else 10
    with tempfile.TemporaryDirectory(prefix="prep-bench-cluster-") as tmp:
        root = Path(tmp)
        clips = root / "clips"
        clips.mkdir()
        names = _make_clips(clips, JOBS, seconds)
        manifest = clips / "jobs.jsonl"
        manifest.write_text("".join(
            json.dumps({"name": f"job{j:02d}", "clips": [name], "prompt": f"Scene {j}",
                        "duration": 2}) + "\n" for j, name in enumerate(names)))
        plan = plan_batch(load_manifest(manifest))
        config = SandboxConfig(speed=400.0, data_dir=root / "sandbox",
                               render_cache_dir=root / "render-cache")
        timings: dict[int, float] = {}
        with run_in_thread(config) as sandbox:
            for workers in (1, 2):
                settings = load_settings({"api_key": sandbox.key, "base_url": sandbox.url,
                                          "files_url": sandbox.files_url,
                                          "cache_dir": str(root / f"cache-{workers}")})
                with cpu_executor(Scheduler("local", workers=workers)) as (executor, _client):
                    started = time.perf_counter()
                    result = run_batch(plan, settings, BatchOptions(
                        output_dir=root / f"out-{workers}", concurrency=6), cpu_executor=executor)
                    timings[workers] = time.perf_counter() - started
                assert result.exit_code == 0, result.as_dict()
            tasks = len(sandbox.state()["tasks"])
    ratio = timings[2] / timings[1]
    print(f"cluster: {JOBS} jobs of {seconds} s 640x360 MPEG-4 (each encoded), {os.cpu_count()} cores "
          f"here, {tasks} tasks made ({JOBS} per run)")
    print(f"  LocalCluster, 1 worker : {timings[1]:6.1f} s")
    print(f"  LocalCluster, 2 workers: {timings[2]:6.1f} s  ({ratio:.2f}x of 1 worker)")


if __name__ == "__main__":
    main()
