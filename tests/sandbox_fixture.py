"""The sandbox fixtures: one in-process sandbox per test session, reset before each test.

    def test_upload(sandbox: Sandbox) -> None:
        sandbox.fail_next("rate_limit", endpoint="upload")
        ...  # talk to sandbox.url / sandbox.files_url with sandbox.key
        assert sandbox.state()["uploads"] == []

`sandbox` runs at speed 1000 (a task's simulated ~70 s take ~0.1 s, plus the real ffmpeg render of
its result); `sandbox.configure(speed=1)` and `sandbox.advance_clock(s)` make timelines exact.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from prep.sandbox import RunningSandbox, Sandbox, SandboxConfig, run_in_thread

__all__ = ["SANDBOX_SPEED", "sandbox", "sandbox_server"]

SANDBOX_SPEED = 1000.0


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """The session's sandbox, served by uvicorn in a thread on a free 127.0.0.1 port."""
    from mediagen import CACHE

    config = SandboxConfig(speed=SANDBOX_SPEED, data_dir=tmp_path_factory.mktemp("sandbox"),
                           render_cache_dir=CACHE / "sandbox-results")
    server = run_in_thread(config)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def sandbox(sandbox_server: RunningSandbox) -> Sandbox:
    """The session's sandbox, freshly reset: no files, tasks, faults or clock offset."""
    sandbox_server.reset()
    return sandbox_server
