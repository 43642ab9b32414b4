"""Benchmark of the test suite's time: pytest on every core (pytest-xdist, as scripts/test runs it)
against the same tests in one process, measured in the same run.

    python scripts/bench_suite.py [--quick | --full] [--runs N] [-- PYTEST_ARGS ...]

By default a handful of the costly modules (media, sandbox, browser); `--quick` two small ones;
`--full` the whole suite (about 10 minutes of CPU; say `--runs 1`); PYTEST_ARGS pick others. A first
serial run, not counted, fills the media cache (tests/mediagen.py), so both sides find it warm. Then
A (`-n auto --dist loadgroup`: one worker more than the cores) and B (`-n 0`) run in turn, A B A B
...; each run's CPU seconds (user + system of pytest and everything it waited for: ffmpeg,
Chromium) come from getrusage,
its wall seconds from a monotonic clock. Medians are quoted. Goal: the whole suite under 5 minutes
of wall on a quiet two-core machine, where the wall time under xdist is about CPU / 2. The machine
may be shared: the load average is printed with the results, and then only the CPU seconds mean
much (the wall ratio is what it would be on a quiet machine only when the load stays under ~1).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["tests/test_prepare.py", "tests/test_batch_run.py", "tests/test_pick_media.py",
           "tests/test_studio_browser.py", "tests/test_generate.py"]
QUICK = ["tests/test_batch_plan.py", "tests/test_timeline.py"]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def _timed(argv: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one pytest run; a failed run stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"pytest failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="Two small modules.")
    size.add_argument("--full", action="store_true", help="The whole suite.")
    parser.add_argument("--runs", type=int, default=None, metavar="N",
                        help="Runs of each side (default 3, or 1 with --full).")
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    runs = args.runs or (1 if args.full else 3)
    selection = extra or ([] if args.full else QUICK if args.quick else DEFAULT)
    xdist = [*PYTEST, "-n", "auto", "--dist", "loadgroup", *selection]
    serial = [*PYTEST, "-n", "0", *selection]
    load_before = os.getloadavg()
    _timed(serial)  # fills the media cache; not counted
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        (wall_a, cpu_a), (wall_b, cpu_b) = _timed(xdist), _timed(serial)
        for key, value in (("A wall", wall_a), ("A cpu", cpu_a), ("B wall", wall_b), ("B cpu", cpu_b),
                           ("A/B wall", wall_a / wall_b), ("A/B cpu", cpu_a / cpu_b)):
            samples.setdefault(key, []).append(value)
    m = {key: statistics.median(values) for key, values in samples.items()}
    load = os.getloadavg()
    print(f"test-suite benchmark ({' '.join(selection) or 'the whole suite'}; {runs} run(s) each, "
          f"medians; {os.cpu_count()} cores; load average {load_before[0]:.2f} at the start, "
          f"{load[0]:.2f} at the end: the machine may be shared)")
    print(f"  A  -n auto --dist loadgroup  {m['A wall']:8.1f} s wall  {m['A cpu']:8.1f} CPU-s")
    print(f"  B  -n 0 (one process)        {m['B wall']:8.1f} s wall  {m['B cpu']:8.1f} CPU-s")
    print(f"  A/B  {m['A/B wall']:.2f}x wall, {m['A/B cpu']:.2f}x CPU (xdist's own cost); on a quiet "
          f"machine with {os.cpu_count()} cores A's wall is about {m['A cpu'] / (os.cpu_count() or 1):.0f} s")


if __name__ == "__main__":
    main()
