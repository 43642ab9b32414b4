"""`prep estimate`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from prep.core import rules
from prep.core.clipspec import ClipSpec
from prep.ui.options import (
    ClipSpecType,
    check_model_options,
    cli_settings,
    common_options,
    extend_option,
    model_options,
    price_options,
    seconds_ms,
    timeline_clips,
    timeline_options,
    trim_options,
)

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
@click.argument("clips", nargs=-1, type=ClipSpecType())
@click.option("--seconds", "seconds", multiple=True, metavar="S",
              help="A clip of S seconds (repeatable), instead of or besides files.")
@click.option("--duration", type=int, default=rules.DEFAULT_OUTPUT_S, show_default=True,
              help=f"Output seconds ({rules.MIN_OUTPUT_S}-{rules.MAX_OUTPUT_S}).")
@click.option("--quality", type=click.Choice(rules.QUALITIES), default=rules.DEFAULT_QUALITY,
              show_default=True, help="Output quality; 1080p costs more per second.")
@model_options
@trim_options
@timeline_options
@extend_option
@price_options
@common_options
def estimate(clips: tuple[ClipSpec, ...], seconds: tuple[str, ...], duration: int, quality: str,
             model: str, audio: bool | None,
             start: str | None, end: str | None, length: str | None, media_dirs: tuple[str, ...],
             map_paths: tuple[str, ...], extend: Any,
             price_per_second: str | None, price_1080p_multiplier: str | None,
             min_charge: str | None, flash_price_per_second: str | None,
             flash_min_charge: str | None, json_: bool, quiet: bool, verbose: bool) -> None:
    """Billed seconds and credits of a job, before anything is encoded or uploaded.

    \b
    Examples:
        prep estimate take.mov                      # one clip: the first 5 s are billed
        prep estimate a.mp4 b.mov@0:10-0:16 --quality 1080p --duration 10
        prep estimate --seconds 12 --seconds 3 --json
        prep estimate take.mov --model wan2.6-reference-video-flash --no-audio
    """
    from prep.core.clipspec import apply_trim_options
    from prep.core.request import check_options
    from prep.jobs.estimate import estimate_planned, plan_clips
    from prep.ui import render

    settings = cli_settings(price_per_second=price_per_second,
                         price_1080p_multiplier=price_1080p_multiplier, min_charge=min_charge,
                         flash_price_per_second=flash_price_per_second,
                         flash_min_charge=flash_min_charge)
    check_model_options(model, audio)
    check_options(duration_s=duration, quality=quality, model=model, generate_audio=audio)
    try:
        given_ms = [seconds_ms(s) for s in seconds]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--seconds") from exc
    if not clips and not given_ms:
        raise click.UsageError("give 1 to 3 clips, or --seconds S for each clip")
    clips = timeline_clips(clips, media_dirs, map_paths, quiet=quiet)
    planned, errors = plan_clips(apply_trim_options(list(clips), start, end, length), extend=extend)
    for problem in errors:
        render.error(problem, verbose=verbose)
    if errors:
        sys.exit(max(e.exit_code for e in errors))
    est = estimate_planned(planned, seconds=given_ms, output_s=duration, quality=quality,
                           prices=settings.prices, model=model, generate_audio=audio)
    if json_:
        render.json_out(est.as_dict())
        if not quiet:
            render.estimate_table(est, to_stderr=True)
    else:
        render.estimate_table(est)
