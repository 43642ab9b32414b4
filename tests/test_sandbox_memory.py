"""A 100 MiB base64 upload to a real `prep sandbox` process keeps the server's memory bounded."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from bench_sandbox import MIB, body_chunks, peak_rss_bytes, start_sandbox, stop_sandbox  # noqa: E402

pytestmark = [pytest.mark.sandbox,
              pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")]


def test_100_mib_upload_with_bounded_server_memory() -> None:
    size = 100 * MIB
    proc, url, key = start_sandbox()
    try:
        before = peak_rss_bytes(proc.pid)
        digest = hashlib.sha256()
        headers = {"authorization": f"Bearer {key}"}
        with httpx.Client(timeout=120, trust_env=False, headers=headers) as http:
            answer = http.post(f"{url}/api/v1/files/upload/base64",
                               content=body_chunks(size, digest),
                               headers={"content-type": "application/json"})
            assert answer.status_code == 200, answer.text
            data = answer.json()["data"]
            growth = peak_rss_bytes(proc.pid) - before
            # A naive server holds the 134 MiB body, the decoded string and the bytes: ~500 MiB.
            assert growth < 40 * MIB, f"server peak memory grew by {growth / MIB:.0f} MiB"
            assert data["file_size"] == size
            assert http.get(f"{url}/_sandbox/state").json()["uploads"][0]["sha256"] == (
                digest.hexdigest())
            with http.stream("GET", data["file_url"], headers={"authorization": ""}) as got:
                fetched = hashlib.sha256()
                for chunk in got.iter_bytes():
                    fetched.update(chunk)
            assert fetched.hexdigest() == digest.hexdigest()
            # 100 MiB is over the generation endpoint's 100,000,000-byte rule.
            task = http.post(f"{url}/v1/videos/generations", json={
                "model": "wan2.6-reference-video", "prompt": "x", "video_urls": [data["file_url"]]})
            assert task.status_code == 400
            assert "the limit is 100MB (100,000,000 bytes)" in task.json()["error"]["message"]
    finally:
        stop_sandbox(proc)
