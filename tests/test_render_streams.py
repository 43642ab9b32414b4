"""Real processes: colour follows NO_COLOR, stdout carries only JSON (logs go to stderr), and a
redirected table keeps to $COLUMNS."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request

import jsonschema
import pytest

from prep.ui.commands.schema import load_schema

COLOUR = re.compile(r"\x1b\[[0-9;]*3[0-9](;[0-9]+)*m")


def prep(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run([sys.executable, "-m", "prep", *args], capture_output=True, text=True,
                          env={**environ, **env}, check=False, timeout=120)


def test_no_color_is_honoured() -> None:
    coloured = prep("schema", "nope", FORCE_COLOR="1")
    assert coloured.returncode == 2 and COLOUR.search(coloured.stderr)
    plain = prep("schema", "nope", FORCE_COLOR="1", NO_COLOR="1")
    assert plain.returncode == 2 and not COLOUR.search(plain.stderr)
    assert "no schema named 'nope'" in plain.stderr


def test_redirected_tables_keep_to_columns() -> None:
    result = prep("estimate", "--seconds", "3", "--seconds", "4", COLUMNS="60")
    assert result.returncode == 0
    table = result.stdout.split("credits at")[0].splitlines()[:-1]
    assert table[0].split() == ["clip", "planned", "billed"]
    assert all(len(line) <= 60 for line in table)


@pytest.mark.sandbox
def test_sandbox_json_verbose_logs_go_to_stderr() -> None:
    """`prep sandbox --json -v`: the ready line alone on stdout, access lines on stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "prep", "sandbox", "--json", "-v", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        jsonschema.Draft202012Validator(load_schema("sandbox")).validate(ready)
        with urllib.request.urlopen(ready["base_url"] + "/_sandbox/state", timeout=30) as answer:
            assert answer.status == 200
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert out.strip() == "", out
    assert "/_sandbox/state" in err and "200" in err


@pytest.mark.parametrize("command", [["schema", "probe"], ["config", "show", "--json"]])
def test_json_stdout_is_only_json(command: list[str]) -> None:
    result = prep(*command, "-v" if "--json" in command else "--help")
    if "--json" in command:
        json.loads(result.stdout)
