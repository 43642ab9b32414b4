"""The client's benchmarks, each against a naive baseline measured in the same run.

1. Uploading a ~95 MB clip through the base64 endpoint: prep's streamed body against the naive
   read-encode-dump (`json.dumps({"base64_data": b64encode(read())})`, then POST). Each upload runs in
   its own child process; its peak RSS comes from os.wait4, and an idle child that imports the same
   modules gives the interpreter's own footprint. Targets: peak RSS at least 4x lower, throughput no
   worse. The receiver is a minimal 127.0.0.1 server that reads and discards the body (the sandbox
   is not needed, and its own decoding cost stays out of the client's numbers).
2. When the sandbox is installed: the whole `generate` against it, timed per stage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
KEY = "bench-key-0123456789"

CHILD = r"""
import base64, json, sys, time
from pathlib import Path
import httpx
from prep.api.client import Client
from prep.api.upload import upload_file

mode, path, url, key = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
start = time.perf_counter()
if mode == "streamed":
    with Client(key, base_url=url, files_url=url) as client:
        upload_file(client, path)
elif mode == "naive":
    body = json.dumps({"base64_data": "data:video/mp4;base64,"
                       + base64.b64encode(path.read_bytes()).decode(), "file_name": path.name})
    with httpx.Client(timeout=120) as http:
        http.post(url + "/api/v1/files/upload/base64", content=body.encode(),
                  headers={"Authorization": "Bearer " + key,
                           "Content-Type": "application/json"}).raise_for_status()
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


class _Receiver(BaseHTTPRequestHandler):
    """Reads and discards an upload body; answers like the files API."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
        body = json.dumps({"success": True, "code": 200, "msg": "ok", "data": {
            "file_id": "f1", "file_url": "http://127.0.0.1/f1.mp4",
            "expires_at": "2099-01-01T00:00:00+00:00"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


def _child(mode: str, path: Path, url: str) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one upload in a fresh child process."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(path), url, KEY],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{mode} upload failed (exit {proc.returncode})")
    seconds = float(json.loads(out)["seconds"]) if mode != "idle" else 0.0
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


def bench_upload(size_mb: int, repeat: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        with clip.open("wb") as fh:
            fh.write(HEAD)
            for _ in range(size_mb):
                fh.write(os.urandom(1_000_000))
        size = clip.stat().st_size
        _, idle_mb = _child("idle", clip, url)
        results: dict[str, tuple[float, float]] = {}
        for mode in ("naive", "streamed"):
            runs = [_child(mode, clip, url) for _ in range(repeat)]
            results[mode] = (min(r[0] for r in runs), max(r[1] for r in runs))
    server.shutdown()
    print(f"upload of a {size / 1e6:.0f} MB clip (base64 body {4 * ((size + 2) // 3) / 1e6:.0f} MB),"
          f" best of {repeat}; interpreter alone {idle_mb:.0f} MB RSS")
    for mode, (seconds, rss) in results.items():
        print(f"  {mode:9s} {seconds:6.2f} s  {size / 1e6 / seconds:7.1f} MB/s  peak RSS {rss:6.0f} MB "
              f"({rss - idle_mb:.0f} MB above the interpreter)")
    naive_s, naive_rss = results["naive"]
    streamed_s, streamed_rss = results["streamed"]
    print(f"  peak RSS: streamed is {naive_rss / streamed_rss:.1f}x lower (target >= 4x); above the "
          f"interpreter {(naive_rss - idle_mb) / max(streamed_rss - idle_mb, 1):.0f}x lower")
    print(f"  throughput: streamed is {naive_s / streamed_s:.2f}x the naive one (target >= 1.0)")


def bench_generate(quick: bool) -> None:
    try:
        from prep.sandbox import SandboxConfig, run_in_thread
    except ImportError:
        print("generate on the sandbox: skipped (prep.sandbox is not installed in this tree)")
        return
    from prep.core.request import RequestOptions
    from prep.jobs.generate import GenerateOptions, generate
    from prep.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run([sys.executable, "scripts/samples.py", str(folder / "samples")], check=True,
                       stderr=subprocess.DEVNULL)
        config = SandboxConfig(speed=50.0 if quick else 20.0, data_dir=folder / "sandbox")
        with run_in_thread(config) as sandbox:
            settings = load_settings({"api_key": sandbox.key, "base_url": sandbox.url,
                                      "files_url": sandbox.files_url,
                                      "cache_dir": str(folder / "cache")})
            started = time.perf_counter()
            result = generate([str(folder / "samples" / "interview.mp4") + "@0:02-0:12",
                               str(folder / "samples" / "phone.mov")],
                              GenerateOptions(request=RequestOptions(
                                                  prompt="A person waves at the camera", duration_s=5),
                                                  out_dir=folder / "out"),
                              settings)
            total = time.perf_counter() - started
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in result.stage_s.items())
    print(f"generate on the sandbox (2 clips, 5 s output, sandbox clock x{config.speed:g}): "
          f"{total:.2f} s in all")
    print(f"  stages: {stages}")
    print("  (wait is the sandbox's simulated generation plus its ffmpeg render of the result)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repeat of each; under a minute")
    args = parser.parse_args()
    bench_upload(95, 1 if args.quick else 3)
    bench_generate(args.quick)


if __name__ == "__main__":
    main()
