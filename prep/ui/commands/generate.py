"""`prep generate`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from prep.core import rules
from prep.core.clipspec import ClipSpec
from prep.errors import PrepError, UsageError
from prep.ui.options import (
    ClipSpecType,
    api_cli_settings,
    api_options,
    check_model_options,
    check_reference_options,
    common_options,
    extend_option,
    model_options,
    price_options,
    profile_option,
    reference_check_options,
    show_progress,
    trim_options,
    upload_mode_option,
    verbose_logging,
)

if TYPE_CHECKING:
    from prep.core.plan import Profile

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
@click.argument("clips", nargs=-1, required=True, type=ClipSpecType())
@click.option("-p", "--prompt", help=f"What the video shows (at most {rules.MAX_PROMPT_CHARS} characters).")
@click.option("--prompt-file", type=click.File("r", encoding="utf-8"),
              help="Read the prompt from a file ('-' for stdin).")
@click.option("-o", "--output", "out_dir", required=True, metavar="DIR",
              type=click.Path(file_okay=False),
              help="Folder for the result (named after the task id) and the prepared clips.")
@click.option("--duration", type=int, default=rules.DEFAULT_OUTPUT_S, show_default=True,
              help=f"Output seconds ({rules.MIN_OUTPUT_S}-{rules.MAX_OUTPUT_S}).")
@click.option("--quality", type=click.Choice(rules.QUALITIES), default=rules.DEFAULT_QUALITY,
              show_default=True, help="Output quality; 1080p costs more per second.")
@click.option("--aspect-ratio", type=click.Choice(("auto", *rules.ASPECT_RATIOS)),
              default=rules.DEFAULT_ASPECT_RATIO, show_default=True,
              help="Output shape; auto: each clip's nearest allowed ratio, the most common wins.")
@click.option("--shot-type", type=click.Choice(rules.SHOT_TYPES), default=rules.DEFAULT_SHOT_TYPE,
              show_default=True, help="One continuous shot, or several (overrides the prompt).")
@click.option("--callback-url", metavar="URL",
              help="HTTPS URL EvoLink POSTs the finished task to (no internal addresses).")
@click.option("-y", "--yes", is_flag=True, help="Submit without asking to confirm the cost.")
@click.option("--max-cost", metavar="CREDITS",
              help="Refuse to submit a job estimated above CREDITS.")
@click.option("--dry-run", is_flag=True,
              help="Validate, estimate and prepare the clips; upload and submit nothing.")
@click.option("--no-wait", is_flag=True, help="Print the task id once submitted, and exit.")
@click.option("--deadline", type=click.FloatRange(min=1), default=30 * 60.0, show_default=True,
              metavar="S", help="Stop following the task after S seconds (it goes on; resume "
                                "with `prep task ID --wait`).")
@upload_mode_option
@profile_option
@click.option("--no-cache", is_flag=True, help="Prepare and upload afresh, ignoring caches.")
@click.option("--resubmit", is_flag=True,
              help="Send a job again although an identical earlier request has an unknown outcome.")
@click.option("--pick", is_flag=True,
              help="Choose the window of each clip given without one, as `prep pick` does (needs "
                   "the pick extra); --length sets the window's length.")
@reference_check_options
@model_options
@trim_options
@extend_option
@price_options
@api_options
@common_options
def generate(clips: tuple[ClipSpec, ...], prompt: str | None, prompt_file: Any, out_dir: str,
             duration: int, quality: str, model: str, audio: bool | None, aspect_ratio: str,
             shot_type: str,
             callback_url: str | None, yes: bool, max_cost: str | None, dry_run: bool,
             no_wait: bool, deadline: float, upload_mode: str, profile: Profile | None,
             no_cache: bool, resubmit: bool, pick: bool, require: str | None, no_check: bool,
             start: str | None, end: str | None,
             length: str | None, extend: Any, price_per_second: str | None,
             price_1080p_multiplier: str | None, min_charge: str | None,
             flash_price_per_second: str | None, flash_min_charge: str | None, api_key: str | None,
             base_url: str | None, files_url: str | None, json_: bool, quiet: bool,
             verbose: bool) -> None:
    """The whole job: prepare CLIPS, show the bill, upload, submit, follow, download.

    Everything is checked locally first (prompt, options, 1-3 clips, the key, the output folder);
    each clip (its window) is graded as a reference as `prep check` does, and its warnings are
    shown with the bill, which is confirmed before anything is encoded or sent. The task is
    submitted once: if its answer is lost, prep stops (exit 6) rather than risk paying twice.

    \b
    Examples:
        prep generate interview.mp4@0:02-0:12 --prompt "She waves and says hello" -o out/
        prep generate a.mov b.mp4 -p "Two friends talk" --quality 1080p --max-cost 90 -y -o out/
        prep generate take.mov -p "..." -o out/ --dry-run
        prep generate interview.mov vlog.mp4 --pick -p "Two hosts talk" -o out/
        prep generate take.mov -p "..." -o out/ --model wan2.6-reference-video-flash --no-audio
        prep generate take.mov -p "..." -o out/ --require good
    """

    from prep.core import billing
    from prep.core.clipspec import apply_trim_options
    from prep.jobs.generate import GenerateOptions, Hooks
    from prep.jobs.generate import generate as run_generate
    from prep.ui import render

    verbose_logging(verbose)
    check_model_options(model, audio)
    if prompt_file is not None:
        if prompt is not None:
            raise click.UsageError("give --prompt or --prompt-file, not both")
        prompt = prompt_file.read().strip()
    if prompt is None:
        raise click.UsageError("--prompt is required (or --prompt-file)")
    settings = api_cli_settings(api_key, base_url, files_url, price_per_second=price_per_second,
                             price_1080p_multiplier=price_1080p_multiplier,
                             min_charge=min_charge, flash_price_per_second=flash_price_per_second,
                             flash_min_charge=flash_min_charge)
    max_cost_units = billing.parse_credits(max_cost, "--max-cost") if max_cost else None
    check_reference_options(require, no_check)
    specs = apply_trim_options(list(clips), start, end, length)
    options = GenerateOptions(
        prompt=prompt, out_dir=Path(out_dir), duration_s=duration, quality=quality,
        aspect_ratio=aspect_ratio, shot_type=shot_type, callback_url=callback_url,
        model=model, generate_audio=audio, upload_mode=upload_mode,  # type: ignore[arg-type]
        max_cost_units=max_cost_units, dry_run=dry_run, wait=not no_wait, deadline_s=deadline,
        extend=extend, profile=profile, use_cache=not no_cache, resubmit=resubmit, pick=pick,
        check=not no_check, require=require,  # type: ignore[arg-type]
    )

    def confirm(est: Any) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError("not submitting: the cost must be confirmed and stdin is not a "
                             "terminal", hint="pass --yes to accept the estimate (and --max-cost "
                                              "to cap it)")
        return click.confirm(f"Submit this job for {billing.credits_text(est.credits_units)} "
                             "credits?", default=False, err=True)

    def show_estimate(est: Any) -> None:
        if not quiet or not yes:
            render.estimate_table(est, to_stderr=True)

    with render.ProgressView(show_progress(json_, quiet)) as view:
        hooks = Hooks(
            confirm=confirm, on_estimate=show_estimate, on_note=render.note,
            on_pick=lambda picked: render.picked_window(picked, quiet=quiet),
            on_pick_progress=lambda label, done, total: view.work(
                "pick:" + label, f"pick {label}", done, total),
            on_check=lambda report: render.job_check(report, quiet=quiet),
            on_check_progress=lambda label, done, total: view.work(
                "check:" + label, f"check {label}", done, total),
            on_prepare_progress=lambda label, done, total: view.work(
                "prepare:" + label, f"prepare {label}", done, total),
            on_upload_progress=lambda path, sent, total: view.transfer(
                "upload:" + str(path), f"upload {path.name}", sent, total),
            on_task=lambda t: view.task(t.id, t.status, t.progress, t.estimated_time_s),
            on_download_progress=lambda n, t: view.transfer("download", "download", n, t),
        )
        try:
            result = run_generate(specs, options, settings, hooks=hooks, check=False)
        except PrepError as err:
            if json_:  # a script still gets its one JSON document, saying what stopped the job
                render.json_out({"task_id": None, "status": None, "files": [],
                                 "credits_estimated": None, "credits_reserved": None,
                                 "exit_code": err.exit_code, "error": err.message,
                                 "hint": err.hint or None})
            raise
    data = result.as_dict()
    if json_:
        render.json_out(data)
    if result.stopped == "declined":
        render.note("not submitted: nothing was uploaded or paid for")
        return
    if result.stopped == "dry-run":
        if not json_:
            for path in result.prepared:
                render.out().print(f"prepared: {path}", soft_wrap=True, highlight=False)
        render.note("dry run: nothing was uploaded or submitted")
        return
    task_data = data["task"] or {"id": result.task_id, "status": data["status"]}
    if result.credits_differ:
        render.warn(f"EvoLink reserved {billing.credits_text(result.credits_reserved_units or 0)} "
                    f"credits; prep estimated {billing.credits_text(result.estimate.credits_units)} "
                    "(account discounts or new prices? check `prep estimate` price options)")
    if result.stopped == "no-wait":
        if not json_:
            render.out().print(result.task_id, highlight=False)
        render.note(f"submitted; follow it with `prep task {result.task_id} --wait -o {out_dir}`, "
                    "or run the same command again")
        return
    if not json_ and result.status is not None and result.status.state == "done":
        render.task_summary(task_data, files=[str(p) for p in result.files],
                            estimate_units=result.estimate.credits_units)
    result.raise_for_outcome()
