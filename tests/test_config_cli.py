"""`prep config`: the key is written 0600 and never shown."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from click.testing import CliRunner

from prep.ui.cli import cli

SECRET = "sk-live-DO-NOT-SHOW-0123456789"


def test_config_set_api_key_from_stdin_is_0600_and_hidden() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["config", "set", "api_key"], input=SECRET + "\n")
    assert result.exit_code == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    path = Path(os.environ["PREP_CONFIG"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and SECRET in path.read_text()
    shown = runner.invoke(cli, ["config", "show", "--json"])
    data = json.loads(shown.stdout)
    assert data["api_key"] == "set" and SECRET not in shown.stdout


def test_config_set_plain_values() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["config", "set", "base_url", "http://127.0.0.1:9"]).exit_code == 0
    assert json.loads(runner.invoke(cli, ["config", "show", "--json"]).stdout)["base_url"] == \
        "http://127.0.0.1:9"
    assert runner.invoke(cli, ["config", "set", "base_url"]).exit_code == 2
    assert runner.invoke(cli, ["config", "set", "password", "x"]).exit_code == 2


def test_api_key_option_warns_and_never_echoes() -> None:
    result = CliRunner().invoke(cli, ["task", "../not-an-id", "--api-key", SECRET])
    assert "visible to other users" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert result.exit_code == 2  # refused before any request
