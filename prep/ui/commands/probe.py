"""`prep probe`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from prep.core.clipspec import ClipSpec
from prep.errors import PrepError
from prep.ui.endings import exit_with
from prep.ui.options import (
    ClipSpecType,
    common_options,
)

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
@click.argument("paths", nargs=-1, required=True, type=ClipSpecType())
@common_options
def probe(paths: tuple[ClipSpec, ...], json_: bool, quiet: bool, verbose: bool) -> None:
    """What each clip is, whether EvoLink would accept it, and why not.

    \b
    Example:
        prep probe interview.mov phone/ take2.mp4 --json
    """
    from prep.core.clipinfo import assess
    from prep.media.clips import expand_paths
    from prep.media.probe import probe_many
    from prep.ui import render

    specs = expand_paths(list(paths))
    results = probe_many([s.path for s in specs])
    good = [(r, assess(r)) for r in results if not isinstance(r, PrepError)]
    bad = [r for r in results if isinstance(r, PrepError)]
    if json_:
        rows: list[dict[str, Any]] = []
        for r in results:
            if isinstance(r, PrepError):
                rows.append({"path": r.path, "error": r.problem, "compliant": False,
                             "problems": [r.problem], "advice": []})
            else:
                verdict = assess(r)
                rows.append({**r.as_dict(), "compliant": verdict.compliant,
                             "problems": list(verdict.problems), "advice": list(verdict.advice)})
        render.json_out(rows)
    elif good:
        render.probe_table(good)
    for exc in bad:
        render.error(exc, verbose=verbose)
    exit_with(e.exit_code for e in bad)
