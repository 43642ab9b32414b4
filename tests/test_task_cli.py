"""`prep task` on ids the API does not know: an input problem (exit 3), never a network one."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from prep.api.client import Client
from prep.errors import RequestRejected, TaskNotFoundError
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
        with pytest.raises(RequestRejected):  # the sandbox's 400 for a malformed id is unchanged
            client.get_task("NOSUCH")
