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
@click.option("--model", "models", multiple=True, metavar="MODEL",
              help="Judge the clips for this model (id or alias; repeatable; `all` for every "
                   "one); default: `model` in the config, else wan2.6.")
@common_options
def probe(paths: tuple[ClipSpec, ...], models: tuple[str, ...], json_: bool, quiet: bool,
          verbose: bool) -> None:
    """What each clip is, whether EvoLink would accept it, and why not.

    The verdict is the model's: a 1.2 s clip is too short for wan2.6 and fine for wan3.0; a 20 s
    clip is fine for wan2.6 and too long for wan3.0.

    \b
    Examples:
        prep probe interview.mov phone/ take2.mp4 --json
        prep probe take.mov --model 3.0 --model 2.6
        prep probe take.mov --model all
    """
    from prep.core.clipinfo import assess
    from prep.core.models import MODELS, model_spec
    from prep.media.clips import expand_paths
    from prep.media.probe import probe_many
    from prep.ui import render
    from prep.ui.options import configured_model

    names = list(models) or [configured_model(None)]
    chosen = {model_spec(name).id: model_spec(name) for name in names if name != "all"}
    specs_ = list(MODELS) if "all" in names else list(chosen.values())
    first = specs_[0]
    specs = expand_paths(list(paths))
    results = probe_many([s.path for s in specs])
    good = [(r, assess(r, first)) for r in results if not isinstance(r, PrepError)]
    bad = [r for r in results if isinstance(r, PrepError)]
    if json_:
        rows: list[dict[str, Any]] = []
        for r in results:
            if isinstance(r, PrepError):
                rows.append({"path": r.path, "error": r.problem, "compliant": False,
                             "problems": [r.problem], "advice": []})
            else:
                verdict = assess(r, first)
                rows.append({**r.as_dict(), "compliant": verdict.compliant,
                             "problems": list(verdict.problems), "advice": list(verdict.advice),
                             "model": first.id, "models": [
                                 {"model": spec.id, "compliant": v.compliant,
                                  "problems": list(v.problems)}
                                 for spec in specs_ for v in (assess(r, spec),)]})
        render.json_out(rows)
    elif good:
        render.probe_table(good)
        if len(specs_) > 1 or not first.legacy:
            for info, _verdict in good:
                for spec in specs_:
                    verdict = assess(info, spec)
                    said = "takes it" if verdict.compliant else "; ".join(verdict.problems)
                    render.say(f"{render.escape(info.path.name)} on {spec.id}: "
                               f"{render.escape(said)}", f"{info.path.name} on {spec.id}: {said}",
                               soft_wrap=True)
    for exc in bad:
        render.error(exc, verbose=verbose)
    exit_with(e.exit_code for e in bad)
