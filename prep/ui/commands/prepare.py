"""`prep prepare`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from prep.core import rules
from prep.core.clipspec import ClipSpec
from prep.core.plan import DEFAULT_PROFILE, PROFILES
from prep.errors import PrepError
from prep.ui.endings import exit_with
from prep.ui.options import (
    ClipSpecType,
    cli_settings,
    common_options,
    extend_option,
    timeline_clips,
    timeline_options,
    trim_options,
)

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
@click.argument("clips", nargs=-1, required=True, type=ClipSpecType())
@click.option("-o", "--output", "out_dir", required=True, metavar="DIR",
              type=click.Path(file_okay=False), help="Folder for the prepared mp4s (made if needed).")
@click.option("--profile", type=click.Choice(PROFILES), default=DEFAULT_PROFILE, show_default=True,
              help="How a clip that must be re-encoded is encoded: fast, balanced and quality trade "
                   "speed for quality; small makes the smallest file (for a slow uplink).")
@click.option("--max-size-mb", type=click.FloatRange(1, 100), metavar="N",
              help="Keep each output under N MB (1,000,000 bytes each; default: the API's 100).")
@click.option("--jobs", type=click.IntRange(1, 16), metavar="N",
              help="Clips worked on at once (default: 2 where there are two cores or more).")
@click.option("--dry-run", is_flag=True, help="Show what would be done; write nothing.")
@click.option("--no-cache", is_flag=True, help="Re-encode even when a cached result exists.")
@click.option("--sheet", is_flag=True,
              help="Also write a contact sheet (thumbnails with timecodes) beside each prepared "
                   "clip, as NAME.sheet.png (needs the pick extra).")
@click.option("--loudness", "loudness_lufs", type=click.FloatRange(-40, -5), metavar="LUFS",
              help="Normalise the audio to LUFS (EBU R128, two passes; true peak at most "
                   "-1.5 dBTP), e.g. -16 for speech. The video is still copied when it can be.")
@click.option("--model", metavar="MODEL",
              help="Prepare to this model's clip limits (id or alias: wan3.0 takes 1-15 s a clip, "
                   "15 s in all); default: `model` in the config, else wan2.6 (2-30 s).")
@trim_options
@timeline_options
@extend_option
@common_options
def prepare(clips: tuple[ClipSpec, ...], out_dir: str, profile: Any, max_size_mb: float | None,
            dry_run: bool, no_cache: bool, sheet: bool, start: str | None, end: str | None,
            length: str | None, media_dirs: tuple[str, ...], map_paths: tuple[str, ...],
            extend: Any, json_: bool, quiet: bool, verbose: bool,
            loudness_lufs: float | None = None, jobs: int | None = None,
            model: str | None = None) -> None:
    """Make each clip an mp4 EvoLink accepts: 2-30 s, under 100 MB, H.264/AAC.

    With --model, to that model's limits instead (wan3.0: 1-15 s a clip and 15 s in all; a
    longer source is cut to its first 15 s, with a note).

    Compliant clips are copied as they are; compliant streams in another container are
    rewrapped; a compliant video with other audio (PCM, 5.1...) keeps its video and only the
    audio becomes AAC; everything else is re-encoded (HDR tone-mapped, rotation and odd pixels
    fixed, deinterlaced, at most 1080p). Outputs are named after their sources.

    \b
    Examples:
        prep prepare take.mov phone/ -o ready/
        prep prepare interview.mp4@1:05-1:20 -o ready/ --profile quality --json
        prep prepare blink.mp4 -o ready/ --extend freeze --dry-run
        prep prepare take.mov -o ready/ --sheet      # and ready/take.sheet.png
        prep prepare take.mov -o ready/ --loudness -16   # the voice at -16 LUFS
        prep prepare long.mov -o ready/ --model 3.0     # wan3.0: cut to its first 15 s
    """
    from pathlib import Path

    from prep.core.clipspec import apply_trim_options
    from prep.media.prepare import PrepareOptions, PrepResult, prepare_each
    from prep.ui import render

    if sheet and not dry_run:
        from prep.ui.pictures import require_extras

        require_extras("--sheet")
    from prep.core.models import model_spec
    from prep.ui.options import configured_model

    spec = model_spec(configured_model(model))
    settings = cli_settings()
    clips = timeline_clips(clips, media_dirs, map_paths, quiet=quiet)
    specs = apply_trim_options(list(clips), start, end, length)
    clip_ms = spec.clip_ms
    if spec.videos.total_ms is not None and len(specs) > 1:
        # Clips over the model's total are refused before any of them is encoded.
        from prep.jobs.estimate import check_total, plan_clips

        planned, _errors = plan_clips(specs, extend=extend, clip_ms=clip_ms)
        check_total(planned, spec.id)
    options = PrepareOptions(
        profile=profile, extend=extend, use_cache=not no_cache, cache_dir=settings.cache_dir,
        ffmpeg=settings.ffmpeg,
        max_size_bytes=int(max_size_mb * 1_000_000) if max_size_mb else rules.MAX_FILE_BYTES,
        loudness_lufs=loudness_lufs, jobs=jobs,
    ).for_model(spec)
    results: list[PrepResult] = []
    errors: list[PrepError] = []
    rows: list[dict[str, Any]] = []
    with render.PrepareProgress(enabled=not quiet and not dry_run) as progress:
        for outcome in prepare_each(specs, Path(out_dir), options, on_progress=progress,
                                    dry_run=dry_run):
            if isinstance(outcome, PrepError):
                errors.append(outcome)
                render.error(outcome, verbose=verbose)
                rows.append({"source": getattr(outcome, "path", ""), "output": None,
                             "action": None, "error": outcome.message})
            else:
                results.append(outcome)
                rows.append(outcome.as_dict())
                for line in (*outcome.plan.notes, *outcome.notes):
                    render.warn(line)
                if sheet and outcome.output is not None:
                    try:
                        rows[-1]["sheet"] = str(_prepared_sheet(outcome, settings.ffmpeg))
                    except PrepError as exc:
                        errors.append(exc)
                        render.error(exc, verbose=verbose)
    if json_:
        render.json_out(rows)
    if results and not (json_ and quiet):
        render.prepare_table(results, to_stderr=json_)
        if dry_run or verbose:
            render.plan_details(results, to_stderr=json_)
    if sheet and not quiet:
        for row in rows:
            if row.get("sheet"):
                render.note(f"contact sheet: {row['sheet']}")
    exit_with(e.exit_code for e in errors)


def _prepared_sheet(result: Any, ffmpeg: str | None) -> Path:
    """The contact sheet of a prepared clip, beside it as NAME.sheet.png."""
    from prep.ui.pictures import contact_sheet

    output: Path = result.output
    return contact_sheet(output, output.with_name(f"{output.stem}.sheet.png"),
                         info=result.output_info, title=f"{output.name}  (from {result.spec})",
                         ffmpeg=ffmpeg)
