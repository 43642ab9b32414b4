"""How long `prep batch` takes to exit after Ctrl-C (SIGINT) or SIGTERM, against a baseline tree.

    python scripts/bench_interrupt.py [--baseline REF] [--rounds N]

A batch of 4 jobs runs against a sandbox in this process, and the signal is sent to the prep
process (as `kill -INT PID` does; a terminal's Ctrl-C reaches prep the same way, its ffmpeg runs in
a process group of its own) at three moments:

1. encoding: a clip that must be re-encoded (MPEG-4 Part 2, 40 s) is being prepared;
2. following: every task is created and running (the sandbox at speed 1: ~70 s a task);
3. pausing: every task query answers 429 with `Retry-After: 30`.

Each is timed from the signal to the process's exit, for this tree and for the baseline (`REF`,
default the branch `integ`, exported with `git archive` into a temporary folder), taken in turn;
the fastest of --rounds is shown, with the exit code and whether a `.part` or an encode's temp
file was left. The machine may be shared with other work: load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prep.sandbox import SandboxConfig, run_in_thread  # noqa: E402


def _clip(folder: Path) -> Path:
    from prep.media.ffmpeg import find_ffmpeg

    path = folder / "long.avi"
    if not path.exists():
        subprocess.run([find_ffmpeg().path, "-v", "error", "-f", "lavfi", "-i",
                        "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=f=440",
                        "-t", "40", "-c:v", "mpeg4", "-q:v", "4", "-c:a", "pcm_s16le", str(path)],
                       check=True)
    return path


def _tree(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "prep"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _wait_for(check: Callable[[], bool], limit_s: float = 180.0) -> bool:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.05)
    return False


def _one(tree: Path, sandbox: Any, work: Path, clip: Path, moment: str, signum: int) -> dict[str, Any]:
    sandbox.reset()
    out = work / f"out-{time.monotonic_ns()}"
    manifest = work / "jobs.jsonl"
    clips = [str(clip)] if moment == "encoding" else [str(work / "short.mp4")]
    manifest.write_text("".join(json.dumps({"name": f"job{i}", "clips": clips, "duration": 2,
                                            "prompt": f"Take {i}"}) + "\n" for i in range(4)))
    if moment == "encoding":
        sandbox.configure(speed=1000)
    else:
        sandbox.configure(speed=1)
    env = {**os.environ, **sandbox.env(), "PYTHONPATH": str(tree),
           "PREP_CACHE_DIR": str(work / f"cache-{time.monotonic_ns()}")}
    run = subprocess.Popen([sys.executable, "-m", "prep", "batch", str(manifest), "-o", str(out),
                            "--yes", "--quiet", "--no-check"], env=env, cwd=tree,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def tasks() -> int:
        return len(sandbox.state()["tasks"])

    if moment == "encoding":
        ready = _wait_for(lambda: any(out.glob("prepared/*/.progress")))
    else:
        ready = _wait_for(lambda: tasks() == 4)
        if moment == "pausing":
            sandbox.fail_next("rate_limit", endpoint="task", times=None, retry_after_s=30)
            sandbox.fail_next("rate_limit", endpoint="tasks", times=None, retry_after_s=30)
            time.sleep(3)  # a query or two meets the 429s: the run is pausing
    if not ready or run.poll() is not None:
        run.kill()
        return {"error": f"the batch did not reach {moment} ({(run.communicate()[1] or '')[-300:]})"}
    sent = time.monotonic()
    run.send_signal(signum)
    try:
        _, stderr = run.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        run.kill()
        return {"error": "no exit within 120 s"}
    took = time.monotonic() - sent
    left = [p.name for p in out.rglob("*") if p.name.endswith((".part", ".tmp"))]
    sandbox.clear_faults()
    return {"s": took, "exit": run.returncode, "left": left}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="integ", help="git ref of the baseline tree")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-interrupt-") as tmp:
        work = Path(tmp)
        clip = _clip(ROOT / ".cache")
        from prep.media.ffmpeg import find_ffmpeg

        subprocess.run([find_ffmpeg().path, "-v", "error", "-f", "lavfi", "-i",
                        "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine", "-t", "3",
                        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                        str(work / "short.mp4")], check=True)
        trees = {"this tree": ROOT, f"baseline ({args.baseline})": _tree(args.baseline,
                                                                          Path(tempfile.mkdtemp(dir=tmp)))}
        sandbox = run_in_thread(SandboxConfig(speed=1, data_dir=work / "sandbox"))
        try:
            print(f"load average: {os.getloadavg()}")
            for moment in ("encoding", "following", "pausing"):
                for signum in (signal.SIGINT, signal.SIGTERM):
                    for name, tree in trees.items():
                        best: dict[str, Any] | None = None
                        for _ in range(args.rounds):
                            got = _one(tree, sandbox, work, clip, moment, signum)
                            if "error" in got:
                                best = got
                                break
                            if best is None or got["s"] < best["s"]:
                                best = got
                        assert best is not None
                        label = f"{moment:9} {signal.Signals(signum).name:7} {name:20}"
                        if "error" in best:
                            print(f"{label} {best['error']}")
                        else:
                            print(f"{label} {best['s']:6.2f} s  exit {best['exit']:4}  "
                                  f"left {best['left'] or 'nothing'}", flush=True)
            print(f"load average: {os.getloadavg()}")
        finally:
            sandbox.stop()


if __name__ == "__main__":
    main()
