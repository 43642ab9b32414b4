"""`prep schema`: the JSON Schema of each `--json` output, and of the batch manifest."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import click

from prep.errors import UsageError


def schema_names() -> list[str]:
    """Every schema shipped in the package (`prep/schemas/NAME.json`)."""
    folder = resources.files("prep").joinpath("schemas")
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir()
                  if p.name.endswith(".json"))


def load_schema(name: str) -> dict[str, Any]:
    """One schema as a dict; UsageError (exit 2) naming the ones there are."""
    names = schema_names()
    if name not in names:
        raise UsageError(f"no schema named {name!r}", hint="one of " + ", ".join(names))
    text = resources.files("prep").joinpath("schemas", f"{name}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [n for n in schema_names() if n.startswith(incomplete)]


@click.command()
@click.argument("name", required=False, shell_complete=_complete)
def schema(name: str | None) -> None:
    """Print the JSON Schema (2020-12) of NAME's --json output; without NAME, list the names.

    NAME is a command (probe, estimate, prepare, upload, generate, task, tasks, account, pick,
    doctor, sandbox, config-show, config-get), a batch output (batch, batch-dry-run,
    batch-problems, batch-status, batch-resolve, batch-export), or `manifest`: one job of a batch
    manifest. The schemas require what scripts may rely on and allow more: outputs gain fields,
    never lose or rename them.

    \b
    Examples:
        prep schema                     # the names, one per line
        prep schema probe > probe.schema.json
        prep probe --json a.mov | check-jsonschema --schemafile probe.schema.json -
    """
    if name is None:
        for known in schema_names():
            click.echo(f"{known}\t{load_schema(known).get('title', '')}")
        return
    click.echo(json.dumps(load_schema(name), indent=2, ensure_ascii=False))
