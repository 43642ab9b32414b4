"""Helpers for the sandbox's own tests: clients, uploads and small media."""

from __future__ import annotations

import base64
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import mediagen

from prep.core import rules
from prep.sandbox import Sandbox


def client(sandbox: Sandbox, key: str | None = None, **kwargs: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key or sandbox.key}"} if key != "" else {}
    return httpx.Client(base_url=sandbox.url, headers=headers, timeout=30, trust_env=False,
                        **kwargs)


def upload(sandbox: Sandbox, path: Path, *, key: str | None = None, data_url: bool = True,
           **fields: str) -> dict[str, Any]:
    """Upload through the base64 endpoint; returns the `data` object."""
    b64 = base64.b64encode(path.read_bytes()).decode()
    body = {"base64_data": f"data:video/mp4;base64,{b64}" if data_url else b64, **fields}
    with client(sandbox, key) as http:
        answer = http.post("/api/v1/files/upload/base64", json=body)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def generation(urls: list[str], **fields: Any) -> dict[str, Any]:
    return {"model": rules.MODEL, "prompt": "A person waves hello", "video_urls": urls, **fields}


def create(sandbox: Sandbox, urls: list[str], *, key: str | None = None, headers: Any = None,
           **fields: Any) -> httpx.Response:
    with client(sandbox, key) as http:
        return http.post("/v1/videos/generations", json=generation(urls, **fields),
                         headers=headers)


def wait_task(sandbox: Sandbox, task_id: str, *, key: str | None = None,
              timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    with client(sandbox, key) as http:
        while True:
            body: dict[str, Any] = http.get(f"/v1/tasks/{task_id}").json()
            if body["status"] in rules.TERMINAL_STATUSES:
                return body
            assert time.monotonic() < deadline, body
            time.sleep(0.05)


def tiny_clip(seconds: float = 3, *, suffix: str = ".mp4", name: str = "sandbox-ref",
              vcodec: list[str] | None = None) -> Path:
    """A small test-pattern clip (160x120, 10 fps, with audio)."""
    return mediagen.clip(name, seconds=seconds, size="160x120", rate="10", suffix=suffix,
                         vcodec=vcodec)


def error_of(answer: httpx.Response) -> dict[str, Any]:
    """The `error` object of a spec-shaped error answer (checked)."""
    body = answer.json()
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "type"}, body
    assert all(isinstance(v, str) and v for v in error.values()), body
    return error


def default_signals() -> None:
    """A `preexec_fn` for a child a test will stop with SIGINT or SIGTERM: both at their default
    and unblocked, whatever the test worker's own state is (an ignored signal is inherited across
    exec, and Python then leaves SIGINT ignored instead of raising KeyboardInterrupt)."""
    wanted = {signal.SIGINT, signal.SIGTERM}
    for signum in wanted:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, wanted)
