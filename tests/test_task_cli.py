"""`prep task` on ids the API does not know: an input problem (exit 3), never a network one."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from prep.api.client import Client
from prep.errors import TaskNotFoundError, UsageError
from prep.sandbox import Sandbox
from prep.ui.cli import cli

# Well formed, so the sandbox looks it up (a malformed id is its 400 invalid_task_id).
MISSING = "task-unified-1757169743-nosuch00"


def _env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    return {"EVOLINK_API_KEY": sandbox.key, "EVOLINK_BASE_URL": sandbox.url,
            "EVOLINK_FILES_URL": sandbox.files_url, "PREP_CACHE_DIR": str(tmp_path / "cache")}


@pytest.mark.parametrize("args", [[], ["--wait"], ["--json"]])
def test_unknown_task_exits_3_with_one_line(sandbox: Sandbox, tmp_path: Path,
                                            args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["task", MISSING, *args], env=_env(sandbox, tmp_path))
    assert result.exit_code == 3, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: no task " + MISSING) and "HTTP 404" in line
    assert "check the task id" in line and "24 h" in line
    assert sandbox.key not in result.stderr + result.stdout


def test_unknown_task_in_the_library(sandbox: Sandbox) -> None:
    with httpx.Client(trust_env=False) as http, \
            Client(sandbox.key, base_url=sandbox.url, files_url=sandbox.files_url, http=http) as client:
        with pytest.raises(TaskNotFoundError) as info:
            client.get_task(MISSING)
        assert info.value.task_id == MISSING and info.value.code == "task_not_found"
        with pytest.raises(UsageError):  # not the shape of a task id: refused before a request
            client.get_task("NOSUCH")


@pytest.mark.parametrize("task_id", ["hello", "task-a\nb"])
def test_not_a_task_id_is_a_usage_error(task_id: str) -> None:
    """`prep task hello` exited 3 (after asking the server), and an id holding a line break was
    an internal error (exit 1); the README promises 2."""
    result = CliRunner().invoke(cli, ["task", task_id], env={
        "EVOLINK_API_KEY": "sk-test", "EVOLINK_BASE_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 2, result.output
    assert "is not a task id" in result.stderr
