"""EvoLink's own published client, run unchanged against the sandbox.

`@evolinkai/evolink-media` (EvoLink's npm MCP server) is installed once into .cache/ and driven by
tests/conformance/drive.mjs, which points its two hard-coded base URLs at the sandbox by wrapping
fetch: stream and base64 uploads, quota, the files list, a wan2.6-reference-video task followed to
completion, a failed task, 401/402/404 answers and a delete. What EvoLink's client makes of the
sandbox's answers is what it would make of EvoLink's. Skipped, with the reason, where node or npm
is missing or the package cannot be installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sandbox_util import tiny_clip

from prep.sandbox import NO_CREDITS_KEY, Sandbox

PACKAGE = "@evolinkai/evolink-media"
VERSION = "1.2.1"  # pinned: a new release is a deliberate update of this test
ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "npm" / f"evolink-media-{VERSION}"
DRIVER = Path(__file__).resolve().parent / "conformance" / "drive.mjs"


def _installed() -> Path:
    """The folder holding the package's node_modules; installs it the first time."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        pytest.skip("EvoLink's client needs node, which is not on PATH")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    major = version.stdout.strip().lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < 18:
        pytest.skip(f"EvoLink's client needs node 18 or later (fetch, FormData); found "
                    f"{version.stdout.strip() or 'an unknown version'}")
    marker = CACHE / "node_modules" / "@evolinkai" / "evolink-media" / "package.json"
    if marker.exists():
        return CACHE
    if npm is None:
        pytest.skip(f"npm is not on PATH to install {PACKAGE}@{VERSION}")
    staging = CACHE.with_name(f"{CACHE.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        done = subprocess.run(
            [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund",
             "--ignore-scripts", "--no-save", "--loglevel=error", f"{PACKAGE}@{VERSION}"],
            capture_output=True, text=True, check=False, timeout=180)
    except subprocess.TimeoutExpired:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.skip(f"npm could not install {PACKAGE}@{VERSION} within 180 s")
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        pytest.skip(f"npm could not install {PACKAGE}@{VERSION}: {last}")
    try:
        staging.rename(CACHE)
    except OSError:  # another run installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return CACHE


@pytest.fixture(scope="module")
def package_dir() -> Path:
    return _installed()


def _drive(package_dir: Path, sandbox: Sandbox, clip: Path) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOLINK_")}
    env.update({"EVOLINK_API_KEY": sandbox.key, "PREP_NO_CREDITS_KEY": NO_CREDITS_KEY})
    done = subprocess.run([node, str(DRIVER), str(package_dir), sandbox.url, str(clip)],
                          capture_output=True, text=True, env=env, check=False, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_evolinks_own_client_against_the_sandbox(package_dir: Path, sandbox: Sandbox) -> None:
    seen = _drive(package_dir, sandbox, tiny_clip())

    # Uploads: the stream upload's camelCase fields and the base64 upload's snake_case ones.
    assert (seen["stream"]["upload_path"], seen["stream"]["file_name"]) == (
        "conformance", "streamed.mp4")
    assert (seen["base64"]["upload_path"], seen["base64"]["file_name"]) == (
        "conformance-b64", "inline.mp4")
    assert seen["quota"]["used_files"] == 2 and seen["quota"]["remain_files"] >= 0
    assert seen["list"]["total"] == 2
    assert [f["file_id"] for f in seen["list"]["files"]] == [
        seen["base64"]["file_id"], seen["stream"]["file_id"]]

    # A task polled to completion, as the client's check_task tool would print it.
    assert seen["created"]["status"] == "pending"
    assert seen["created"]["usage"]["credits_reserved"] == 23.8
    done = seen["completed"]
    assert done["status"] == "completed" and done["progress"] == 100 and done["results"]
    assert "Status: completed" in seen["completedText"]
    assert done["results"][0] in seen["completedText"]

    # A failed task: a code the client knows, so it says not to retry blindly.
    failed = seen["failed"]
    assert failed["status"] == "failed"
    assert set(failed["error"]) == {"code", "message", "type"}
    text = seen["failedText"]
    assert f"Error code: {failed['error']['code']}" in text
    assert "Retryable: No" in text and "unknown error" not in text.lower()

    # Errors, as the client formats them.
    assert seen["unknownTask"]["status"] == 404
    assert seen["noCredits"]["status"] == 402
    assert "Insufficient account balance" in seen["noCredits"]["message"]  # its quota hint
    assert seen["badKey"]["status"] == 401

    # Delete, and the list follows.
    assert seen["deleted"]["deleted"] is True
    assert [f["file_id"] for f in seen["listAfter"]["files"]] == [seen["stream"]["file_id"]]

    # The sandbox saw each call on the path EvoLink's client meant, and logged every one.
    calls = [(r["method"], r["path"].split("/task-unified-")[0], r["status"])
             for r in sandbox.state()["requests"]]
    assert calls[:4] == [("POST", "/api/v1/files/upload/stream", 200),
                         ("POST", "/api/v1/files/upload/base64", 200),
                         ("GET", "/api/v1/files/quota", 200), ("GET", "/api/v1/files/list", 200)]
    assert ("GET", "/v1/tasks", 404) in calls and ("POST", "/v1/videos/generations", 402) in calls
    assert ("GET", "/api/v1/files/quota", 401) in calls
    assert all(status is not None for *_, status in calls)
