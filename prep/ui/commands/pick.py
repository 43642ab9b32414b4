"""`prep pick`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from prep.core import rules
from prep.core.clipspec import ClipSpec
from prep.ui.options import (
    ClipSpecType,
    cli_settings,
    common_options,
    configured_model,
    model_option,
    seconds_ms,
)

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
@click.argument("clip", type=ClipSpecType())
@click.option("--length", metavar="S",
              help="Window length in seconds (default 8; kept within the model's clip range, "
                   "2-30 s on wan2.6, and within the shot). Without it, a tail with neither face "
                   "nor speech is cut off; on a model that bills every input second (wan3.0, "
                   "prime) the shortest window that passes the reference check is taken.")
@click.option("--clips-in-job", type=click.IntRange(1, max(m.videos.count.high for m in rules.MODEL_SPECS)),
              default=1, show_default=True, metavar="N",
              help="Clips the job will have: sets the billed head (wan2.6: 5 / 2.5 / 1.65 s) that "
                   "the best part is put into.")
@model_option
@click.option("--timeline", "timeline_png", metavar="PNG",
              type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also draw the timeline (thumbnails, faces, speech, cuts, the window) to PNG.")
@common_options
def pick(clip: ClipSpec, length: str | None, clips_in_job: int, model: str | None,
         timeline_png: Path | None, json_: bool, quiet: bool, verbose: bool) -> None:
    """Find the best reference window in long footage: one shot, a face, speech, best part first.

    Prints the window as a clip spec (PATH@START-END) that every other command takes; stdout
    carries nothing else, the scores go to stderr. CLIP@START-END searches only that part.
    Footage without a face or without speech still gets the best window there is, with a warning
    saying what is missing (exit 0). Needs the pick extra: pip install 'evolink-prep[pick]'.

    \b
    Examples:
        prep pick interview.mov
        prep pick vlog.mp4@2:00-6:00 --length 10 --clips-in-job 2 --timeline vlog.png
        prep pick interview.mov --model 3.0         # the shortest window that passes
        prep estimate "$(prep pick interview.mov -q)"
    """
    from prep.core.models import model_spec
    from prep.pick.choose import pick_window
    from prep.ui import render

    spec = model_spec(configured_model(model))
    length_ms = None
    if length is not None:
        try:
            length_ms = seconds_ms(length)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--length") from exc
        if length_ms <= 0:
            raise click.BadParameter("must be more than 0", param_hint="--length")
    with render.progress_bar(f"analysing {clip.path.name}", enabled=not quiet) as bar:
        result = pick_window(clip.path, length_ms, clips_in_job, within=clip.window, progress=bar,
                             ffmpeg=cli_settings().ffmpeg, model=spec)
    if timeline_png is not None:
        from prep.ui.pictures import pick_timeline

        pick_timeline(result, timeline_png)
    if json_:
        data = result.as_dict()
        if timeline_png is not None:
            data["timeline"] = str(timeline_png)
        render.json_out(data)
        for warning in result.warnings:
            render.warn(warning)
    else:
        render.pick_result(result, quiet=quiet)
    if timeline_png is not None and not quiet:
        render.note(f"timeline: {timeline_png}")
