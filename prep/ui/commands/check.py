"""`prep check`."""

from __future__ import annotations

from typing import Any

import click

from prep.core.clipspec import ClipSpec
from prep.errors import ExitCode, PrepError
from prep.ui.endings import exit_with
from prep.ui.options import (
    ClipSpecType,
    cli_settings,
    common_options,
    configured_model,
    model_option,
    show_progress,
)


@click.command()
@click.argument("clips", nargs=-1, required=True, type=ClipSpecType())
@click.option("--require", type=click.Choice(["good", "fair", "any"]), default="fair",
              show_default=True,
              help="Exit 3 when a clip's verdict is below this (fair: no check failed; good: "
                   "also at most one warning; any: never, for the verdict).")
@click.option("--no-cache", is_flag=True,
              help="Decode and grade afresh, ignoring reports cached by earlier checks.")
@model_option
@common_options
def check(clips: tuple[ClipSpec, ...], require: str, no_cache: bool, model: str | None,
          json_: bool, quiet: bool,
          verbose: bool) -> None:
    """How good each clip is as a reference: one person, face, speech, loudness, picture.

    Each clip (or its window, CLIP@START-END) is decoded once at reduced size and graded on
    15 checks, each pass, warn or fail with what was measured and what to do: one_person,
    face_size, face_share, face_visible, face_light, speech, music, loudness, clipping, noise,
    cuts, frame_rate, resolution, sharpness, duration. The verdict is good (no fail, at most
    one warn), fair (no fail) or poor. Three follow the chosen model's table (--model): the
    one_person rule it cites, the resolution's pixel and aspect range and the duration's range
    (a 1.5 s clip fails on wan2.6 and passes on wan3.0). Exit 0, or 3 when a clip is below
    --require (or cannot be read). A clip and window checked before for the same model,
    unchanged since (its size and modification time), is answered from the check cache
    (<cache>/checks, shared with batch and generate) without decoding it again; --no-cache
    checks afresh. Needs the pick extra: pip install 'evolink-prep[pick]'.

    \b
    Examples:
        prep check interview.mp4 takes/
        prep check "interview.mp4@1:05-1:20" --require good
        prep check take.mov --model 3.0
        prep check takes/ --json | jq '.[] | select(.verdict == "poor") | .path'
    """
    from prep.core.models import model_spec
    from prep.media.clips import expand_paths
    from prep.pick.check import CheckCache, CheckReport, check_clip, meets
    from prep.ui import render

    table = model_spec(configured_model(model))
    specs = expand_paths(list(clips))
    settings = cli_settings()
    ffmpeg = settings.ffmpeg
    cache = CheckCache(None if no_cache else settings.cache_dir / "checks")
    reports: list[CheckReport] = []
    errors: list[PrepError] = []
    rows: list[dict[str, Any]] = []
    progress = show_progress(json_, quiet)
    for spec in specs:
        try:
            with render.progress_bar(f"checking {spec.path.name}", enabled=progress) as bar:
                outcome = check_clip(spec, progress=bar, ffmpeg=ffmpeg, cache=cache,
                                     model=table)
        except PrepError as exc:
            errors.append(exc)
            render.error(exc, verbose=verbose)
            rows.append({"path": str(spec.path), "spec": str(spec), "model": table.id, "verdict": None,
                         "error": exc.message, "checks": {}})
            continue
        reports.append(outcome)
        rows.append(outcome.as_dict())
        if not (json_ and quiet):
            render.check_report(outcome, quiet=quiet, verbose=verbose, to_stderr=json_)
    if json_:
        render.json_out(rows)
    required = None if require == "any" else require
    if len(reports) > 1 and not quiet:
        render.check_summary(reports, required=required, to_stderr=json_)
    below = [r for r in reports if required and not meets(r.verdict, required)]  # type: ignore[arg-type]
    if below and not quiet:
        names = ", ".join(r.spec for r in below)
        render.warn(f"below {required}: {names}")
    exit_with([e.exit_code for e in errors] + [ExitCode.MEDIA] * bool(below))
