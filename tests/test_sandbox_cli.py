"""`prep sandbox` as people run it: export lines, a working server, a clean stop on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from click.testing import CliRunner
from sandbox_util import default_signals

from prep.ui.cli import cli


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(cli, ["sandbox", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--key", "--speed", "--idempotency",
                   "--allow-local-callbacks"):
        assert option in result.output


@pytest.mark.sandbox
def test_prints_exports_serves_and_stops_on_ctrl_c() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOLINK_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "prep", "sandbox", "--port", "0", "--key", "sk-test-cli",
         "--speed", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=default_signals,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"export EVOLINK_BASE_URL=(http://127\.0\.0\.1:\d+) "
                             r"EVOLINK_FILES_URL=(\S+) EVOLINK_API_KEY=sk-test-cli", line)
        assert match, line
        base, files = match.groups()
        assert files == base
        quota = httpx.get(f"{base}/api/v1/files/quota", trust_env=False,
                          headers={"authorization": "Bearer sk-test-cli"})
        assert quota.status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_a_taken_port_is_a_usage_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["sandbox", "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
