#!/usr/bin/env python3
"""Benchmark: the sandbox's memory while it receives a 100 MiB file as a ~134 MiB base64 body.

The sandbox runs as `prep sandbox` in a child process; its peak resident memory (VmHWM from
/proc) is read before and after the upload. The naive baseline, measured in the same run, is what
a server that reads the body, json.loads it and base64-decodes it in memory would need for the
same request. Linux only (it reads /proc).

    python scripts/bench_sandbox.py            # 100 MiB file
    python scripts/bench_sandbox.py --quick    # 100 MiB file too (it runs in a few seconds)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

MIB = 1024 * 1024
HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
BLOCK = 3 * 256 * 1024  # a multiple of 3: base64 of each block joins without padding


def payload_blocks(size_bytes: int) -> Iterator[bytes]:
    """A deterministic fake mp4 of `size_bytes`, made block by block (never whole in memory)."""
    pattern = hashlib.sha256(b"prep").digest() * (BLOCK // 32 + 1)
    first = True
    left = size_bytes
    while left > 0:
        block = (HEAD + pattern)[:BLOCK] if first else pattern[:BLOCK]
        first = False
        block = block[:left]
        left -= len(block)
        yield block


def body_chunks(size_bytes: int, digest: hashlib._Hash | None = None) -> Iterator[bytes]:
    """The base64 upload body for that payload, as a stream."""
    yield b'{"file_name": "big.mp4", "base64_data": "data:video/mp4;base64,'
    for block in payload_blocks(size_bytes):
        if digest is not None:
            digest.update(block)
        yield base64.b64encode(block)
    yield b'"}'


def peak_rss_bytes(pid: int) -> int:
    """Peak resident set size of a process (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc status")


def start_sandbox() -> tuple[subprocess.Popen[str], str, str]:
    """`prep sandbox --port 0` in a child process; returns (process, url, key)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "prep", "sandbox", "--port", "0", "--json", "--quiet"],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("prep sandbox did not start")
    info = json.loads(line)
    return proc, info["base_url"], info["api_key"]


def stop_sandbox(proc: subprocess.Popen[str]) -> None:
    """Stop a sandbox started by `start_sandbox` and close its pipe."""
    proc.terminate()
    proc.wait(timeout=15)
    if proc.stdout is not None:
        proc.stdout.close()


def measure_sandbox(size_bytes: int) -> dict[str, float]:
    """Upload through a real sandbox; its peak memory before/after and the time taken."""
    proc, url, key = start_sandbox()
    try:
        time.sleep(0.3)
        before = peak_rss_bytes(proc.pid)
        digest = hashlib.sha256()
        started = time.perf_counter()
        with httpx.Client(timeout=300, trust_env=False) as http:
            answer = http.post(f"{url}/api/v1/files/upload/base64",
                               content=body_chunks(size_bytes, digest),
                               headers={"authorization": f"Bearer {key}",
                                        "content-type": "application/json"})
            seconds = time.perf_counter() - started
            answer.raise_for_status()
            data = answer.json()["data"]
            assert data["file_size"] == size_bytes, data
            state = http.get(f"{url}/_sandbox/state").json()
            assert state["uploads"][0]["sha256"] == digest.hexdigest()
        after = peak_rss_bytes(proc.pid)
    finally:
        stop_sandbox(proc)
    return {"before": before, "after": after, "growth": after - before, "seconds": seconds}


_NAIVE = r"""
import base64, json, sys
sys.path.insert(0, {scripts!r})
from bench_sandbox import body_chunks, peak_rss_bytes
import os
before = peak_rss_bytes(os.getpid())
body = b"".join(body_chunks({size}))          # what `await request.body()` holds
data = json.loads(body)                          # the JSON string, again
raw = base64.b64decode(data["base64_data"].split(",", 1)[1])
print(json.dumps({{"before": before, "after": peak_rss_bytes(os.getpid()), "size": len(raw)}}))
"""


def measure_naive(size_bytes: int) -> dict[str, float]:
    code = _NAIVE.format(scripts=str(Path(__file__).resolve().parent), size=size_bytes)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["size"] == size_bytes
    return {"before": result["before"], "after": result["after"],
            "growth": result["after"] - result["before"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="run in well under a minute")
    parser.add_argument("--mib", type=int, default=100, help="file size in MiB (default 100)")
    args = parser.parse_args()
    if not Path("/proc/self/status").exists():
        print("bench_sandbox: skipped (needs Linux /proc)")
        return 0
    size = args.mib * MIB
    body_mib = (len(base64.b64encode(b"x" * 3)) * size / 3 + 80) / MIB
    sandbox = measure_sandbox(size)
    naive = measure_naive(size)
    ratio = naive["growth"] / max(sandbox["growth"], MIB)
    print(f"sandbox upload: {args.mib} MiB file as a {body_mib:.0f} MiB base64 body in "
          f"{sandbox['seconds']:.1f} s ({body_mib / sandbox['seconds']:.0f} MiB/s)")
    print(f"  sandbox peak RSS: {sandbox['before'] / MIB:.0f} MiB at rest -> "
          f"{sandbox['after'] / MIB:.0f} MiB (growth {sandbox['growth'] / MIB:.1f} MiB)")
    print(f"  naive in-memory decode peak RSS growth: {naive['growth'] / MIB:.0f} MiB")
    print(f"  ratio naive/sandbox growth: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
