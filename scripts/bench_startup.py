"""Benchmark of prep's start-up: whole commands against a baseline measured in the same run.

    python scripts/bench_startup.py [--quick] [--runs N]

1. `prep --help` against `python -c pass` (the interpreter alone): target at most 2.5x.
2. `prep probe CLIP` and `prep estimate CLIP` against `python -c pass`: target at most 4x.
3. `prep prepare CLIP -o DIR` of an already compliant clip (a copy) against `cp CLIP DIR`:
   target at most 0.2 s more.

Each pair runs in turn (A B A B ...) under `farm-bench` where it is on PATH, which reads each
run's CPU seconds from the operating system and takes the ratio pair by pair; elsewhere the
same pairs are timed here (wall clock, and CPU from getrusage). Medians are quoted. Modules are
compiled first (`compileall`), as an installed prep's are. Every command runs with this tree
first on PYTHONPATH and a private HOME holding a one-line config file (`model = "2.6"`, read as
on a configured machine: TOML is parsed), so the figures depend on neither the machine's own
config nor another checkout. The machine may be shared: the load average is printed with the
results, and CPU ratios are steadier than wall ones under load.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prep.media.ffmpeg import find_ffmpeg  # noqa: E402

CACHE = ROOT / ".cache" / "bench-media"


def _compliant() -> Path:
    """5 s of 720p30 H.264 (no B-frames, so no edit list) and AAC, faststart: a clip prepare
    copies as it is."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / "startup-compliant-5s-v2.mp4"
    if not out.exists():
        tmp = out.with_name(".tmp-" + out.name)
        subprocess.run([find_ffmpeg("").path, "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=1280x720:rate=30:duration=5", "-f", "lavfi", "-i",
                        "sine=sample_rate=48000:duration=5", "-c:v", "libx264", "-preset",
                        "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                        "-movflags", "+faststart", "-f", "mp4", str(tmp)], check=True)
        tmp.replace(out)
    return out


def _medians(text: str) -> dict[str, float]:
    """farm-bench's median column, by row name ("A cpu s", "A/B wall", ...)."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^(A/B \w+|[AB] \w+ s)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", line)
        if match:
            rows[match[1]] = float(match[3])
    return rows


def _environment(home: Path) -> dict[str, str]:
    """The commands' environment: this tree first on the path, a private HOME whose config file
    names a model, and none of prep's own variables from the caller's environment."""
    (home / ".config" / "prep").mkdir(parents=True)
    (home / ".config" / "prep" / "config.toml").write_text('model = "2.6"\n', encoding="utf-8")
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("PREP_", "EVOLINK_", "XDG_"))}
    path = os.environ.get("PYTHONPATH")
    return {**env, "HOME": str(home),
            "PYTHONPATH": os.pathsep.join([str(ROOT), *([path] if path else [])])}


def _farm(command: list[str], baseline: list[str], runs: int,
          env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(["farm-bench", "-n", str(runs), "--timeout", "600", "--vs",
                           " ".join(baseline), "--", *command],
                          capture_output=True, text=True, check=True, env=env)
    return _medians(done.stdout + done.stderr)


def _own(command: list[str], baseline: list[str], runs: int,
         env: dict[str, str]) -> dict[str, float]:
    """The same figures as `_farm`, timed here: pairs in turn, medians."""
    samples: dict[str, list[float]] = {}
    for run in range(runs + 1):  # the first pair warms the caches and is not counted
        pair = []
        for argv in (command, baseline):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True, env=env)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            pair.append((time.perf_counter() - start,
                         after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))
        if run:
            (wa, ca), (wb, cb) = pair
            for key, value in (("A wall s", wa), ("A cpu s", ca), ("B wall s", wb),
                               ("B cpu s", cb), ("A/B wall", wa / wb),
                               ("A/B cpu", ca / max(cb, 1e-3))):
                samples.setdefault(key, []).append(value)
    return {key: statistics.median(values) for key, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer runs.")
    parser.add_argument("--runs", type=int, default=None, metavar="N",
                        help="Runs of each command (default 15, or 5 with --quick).")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 15)
    compileall.compile_dir(ROOT / "prep", quiet=1)
    clip = _compliant()
    timer = _farm if shutil.which("farm-bench") else _own
    load_before = os.getloadavg()
    prep = [sys.executable, "-m", "prep"]
    python = [sys.executable, "-c", "pass"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp_text:
        tmp = Path(tmp_text)
        env = _environment(tmp / "home")
        for label, command, target in (
                ("prep --help", [*prep, "--help"], 2.5),
                ("prep probe CLIP", [*prep, "probe", str(clip)], 4.0),
                ("prep estimate CLIP", [*prep, "estimate", str(clip)], 4.0)):
            figures = timer(command, python, runs, env)
            rows.append((f"{label} vs python -c pass",
                         f"{figures['A/B cpu']:.2f}x CPU, {figures['A/B wall']:.2f}x wall",
                         f"{figures['A cpu s'] * 1000:.0f} ms CPU vs {figures['B cpu s'] * 1000:.0f}"
                         f" ms; target <= {target:g}x"))
        copy_dir = tmp / "cp"
        copy_dir.mkdir()
        figures = timer([*prep, "prepare", str(clip), "-o", str(tmp / "out"), "-q"],
                        ["cp", str(clip), str(copy_dir / "clip.mp4")], runs, env)
        extra = figures["A wall s"] - figures["B wall s"]
        rows.append(("prep prepare COMPLIANT -o DIR vs cp", f"{extra:+.3f} s wall",
                     f"{figures['A wall s']:.3f} s ({figures['A cpu s']:.3f} CPU-s) vs "
                     f"{figures['B wall s']:.3f} s; target <= +0.2 s"))
    load = os.getloadavg()
    print(f"start-up benchmark ({runs} runs each, medians, timed by "
          f"{'farm-bench' if timer is _farm else 'this script'}; {os.cpu_count()} cores; load "
          f"average {load_before[0]:.2f} at the start, {load[0]:.2f} at the end: the machine may "
          "be shared)")
    width = max(len(r[0]) for r in rows)
    for name, value, detail in rows:
        print(f"  {name.ljust(width)}  {value:>24}  {detail}")


if __name__ == "__main__":
    main()
