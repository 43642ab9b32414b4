"""`prep estimate`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from prep.core.clipspec import ClipSpec
from prep.ui.endings import exit_with, json_or_table
from prep.ui.givenrefs import reference_options, references_given
from prep.ui.options import (
    BILLED_FIELDS,
    ClipSpecType,
    cli_settings,
    common_options,
    extend_option,
    price_options,
    request_options,
    seconds_ms,
    timeline_clips,
    timeline_options,
    trim_options,
)

if TYPE_CHECKING:
    from prep.core.request import RequestOptions

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
@click.argument("clips", nargs=-1, type=ClipSpecType())
@click.option("--seconds", "seconds", multiple=True, metavar="S",
              help="A clip of S seconds (repeatable), instead of or besides files.")
@request_options(BILLED_FIELDS)
@click.option("--compare", is_flag=True,
              help="Price the same clips on every model (flash and wan3.0 with and without audio), "
                   "with what each would cut or refuse.")
@reference_options
@trim_options
@timeline_options
@extend_option
@price_options
@common_options
def estimate(clips: tuple[ClipSpec, ...], seconds: tuple[str, ...], request: RequestOptions,
             compare: bool, images: tuple[Path, ...], images_from: tuple[Path, ...],
             audio_refs: tuple[Path, ...], voices: tuple[Path, ...],
             voices_from: tuple[Path, ...], voices_for: tuple[str, ...],
             start: str | None, end: str | None, length: str | None,
             media_dirs: tuple[str, ...], map_paths: tuple[str, ...], extend: Any,
             prices: dict[str, str], json_: bool, quiet: bool, verbose: bool) -> None:
    """Billed seconds and credits of a job, before anything is encoded or uploaded.

    \b
    Examples:
        prep estimate take.mov                      # one clip: the first 5 s are billed
        prep estimate a.mp4 b.mov@0:10-0:16 --quality 1080p --duration 10
        prep estimate --seconds 12 --seconds 3 --json
        prep estimate take.mov --model wan2.6-reference-video-flash --no-audio
        prep estimate take.mov --model 3.0 --duration -1   # wan3.0, the model chooses the length
        prep estimate a.mp4 b.mov --compare          # the same clips on every model
        prep estimate take.mov --model 3.0 --image still.png   # images are not billed
    """
    from prep.core.clipspec import apply_trim_options
    from prep.jobs.estimate import compare_planned, estimate_planned, plan_clips
    from prep.ui import render

    settings = cli_settings(**prices)
    try:
        given_ms = [seconds_ms(s) for s in seconds]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--seconds") from exc
    if not clips and not given_ms:
        raise click.UsageError("give 1 to 3 clips, or --seconds S for each clip")
    clips = timeline_clips(clips, media_dirs, map_paths, quiet=quiet)
    # Windows to the chosen model's clip limits; a comparison to the widest of every model's (it
    # cuts to each one's itself, and says which refuses a clip too short for it).
    from prep.core.models import widest_clip_ms

    limits = widest_clip_ms() if compare else request.spec.clip_ms
    planned, errors = plan_clips(apply_trim_options(list(clips), start, end, length), extend=extend,
                                 clip_ms=limits)
    for problem in errors:
        render.error(problem, verbose=verbose)
    exit_with(e.exit_code for e in errors)
    if compare:
        data = compare_planned(planned, seconds=given_ms, output_s=request.duration_s,
                               quality=request.quality, prices=settings.prices)
        json_or_table(data, lambda to_stderr: render.compare_table(data, to_stderr=to_stderr),
                      json_=json_, quiet=quiet)
        return
    refs = references_given(images, images_from, audio_refs, voices, voices_from, voices_for)
    judged = _judged(refs, request, len(planned) + len(given_ms)) if refs else []
    est = estimate_planned(planned, request, seconds=given_ms, prices=settings.prices)
    data = est.as_dict()
    if refs:
        data["references"] = judged

    def table(to_stderr: bool) -> None:
        render.estimate_table(est, to_stderr=to_stderr)
        for ref in judged:
            render.note(f"{ref['kind']} reference {Path(ref['path']).name}: not billed by "
                        f"{request.model}")

    json_or_table(data, table, json_=json_, quiet=quiet)


def _judged(refs: tuple[Any, ...], request: RequestOptions, videos: int) -> list[dict[str, Any]]:
    """The references judged by the model's table (exit 2 for the first problem), each with
    `billed: false` (no model bills them); footage, from which a job makes a still or a voice,
    is judged by kind, count and binding only (nothing is made for a bill)."""
    from prep.core.references import check_references
    from prep.jobs.references import is_footage, judge_files

    # The whole set first (a voice may speak for a still made from footage), then the files.
    check_references(request.spec, refs, videos)
    files = [r for r in refs if not is_footage(r.path)]
    shown = {id(r): p.as_dict() for r, p in zip(files, judge_files(request.spec, files),
                                                 strict=True)}
    return [{**shown.get(id(r), r.as_dict()), "made_from_footage": is_footage(r.path), "billed": False}
            for r in refs]
