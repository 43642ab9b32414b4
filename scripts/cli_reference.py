#!/usr/bin/env python3
"""The README's CLI reference: every command's `--help`, as cog writes it between its markers.

    cog -r README.md            # regenerate (scripts/docs does this and the schemas)
    cog --check README.md       # what tests/test_dist.py runs: fails when the README lags --help
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WIDTH = 100  # as CONTEXT_SETTINGS' max_content_width: the same text on every terminal


def _commands(group: click.Group, path: list[str]) -> list[list[str]]:
    found = [path]
    ctx = click.Context(group, info_name=path[-1])
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        if isinstance(command, click.Group):
            found += _commands(command, [*path, name])
        else:
            found.append([*path, name])
    return found


def markdown() -> str:
    """One `###` section per command, with its help text in a code block."""
    from click.testing import CliRunner

    from prep.ui.cli import cli

    runner = CliRunner(env={"COLUMNS": str(WIDTH), "NO_COLOR": "1"})
    parts = []
    for path in _commands(cli, ["prep"]):
        result = runner.invoke(cli, [*path[1:], "--help"], prog_name="prep",
                               terminal_width=WIDTH)
        if result.exit_code != 0:
            raise SystemExit(f"{' '.join(path)} --help failed: {result.output}")
        parts.append(f"### `{' '.join(path)}`\n\n```\n{result.stdout.rstrip()}\n```\n")
    return "\n" + "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
