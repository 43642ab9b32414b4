"""`prep generate`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from prep.core.clipspec import ClipSpec
from prep.ui.endings import AnswersInJson, answer, confirm_cost
from prep.ui.givenrefs import reference_options, references_given
from prep.ui.options import (
    ClipSpecType,
    api_cli_settings,
    api_options,
    check_reference_options,
    common_options,
    extend_option,
    price_options,
    profile_option,
    reference_check_options,
    request_options,
    show_progress,
    trim_options,
    upload_mode_option,
    verbose_logging,
)

if TYPE_CHECKING:
    from prep.core.plan import Profile
    from prep.core.request import RequestOptions
    from prep.jobs.generate import GenerateResult

F = TypeVar("F", bound=Callable[..., Any])


def _error_answer(message: str, exit_code: int, hint: str) -> dict[str, Any]:
    from prep.jobs.generate import error_dict

    return error_dict(message, exit_code, hint)


@click.command(cls=AnswersInJson, error_answer=_error_answer)
@click.argument("clips", nargs=-1, required=True, type=ClipSpecType())
@request_options()
@click.option("-o", "--output", "out_dir", required=True, metavar="DIR",
              type=click.Path(file_okay=False),
              help="Folder for the result (named after the task id) and the prepared clips.")
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
@click.option("--retry-failed", is_flag=True,
              help="Run the job again if it failed (before it was sent, or its task failed: "
                   "failed tasks are not billed).")
@click.option("--wait", "wait_lock", is_flag=True,
              help="If another prep run is working in the output folder, wait for it to finish "
                   "(else exit 8 at once).")
@click.option("--pick", is_flag=True,
              help="Choose the window of each clip given without one, as `prep pick` does (needs "
                   "the pick extra); --length sets the window's length.")
@reference_options
@reference_check_options
@trim_options
@extend_option
@price_options
@api_options
@common_options
def generate(clips: tuple[ClipSpec, ...], request: RequestOptions, out_dir: str, yes: bool,
             max_cost: str | None, dry_run: bool, no_wait: bool, deadline: float,
             upload_mode: str, profile: Profile | None, no_cache: bool, resubmit: bool,
             retry_failed: bool, wait_lock: bool, pick: bool, images: tuple[Path, ...],
             images_from: tuple[Path, ...], audio_refs: tuple[Path, ...],
             voices: tuple[Path, ...], voices_from: tuple[Path, ...],
             voices_for: tuple[str, ...], require: str | None,
             no_check: bool, start: str | None, end: str | None,
             length: str | None, extend: Any, prices: dict[str, str], api_key: str | None,
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
        prep generate take.mov -p "Image 1 waves" --model 3.0 --image still.png -o out/
        prep generate take.mov -p "..." --model 2.7 --voice-from take.mov -o out/
    """

    from prep.core import billing
    from prep.core.clipspec import apply_trim_options
    from prep.jobs.generate import GenerateHooks, GenerateOptions
    from prep.jobs.generate import generate as run_generate
    from prep.ui import render

    verbose_logging(verbose)
    settings = api_cli_settings(api_key, base_url, files_url, **prices)
    max_cost_units = billing.parse_credits(max_cost, "--max-cost") if max_cost else None
    check_reference_options(require, no_check)
    specs = apply_trim_options(list(clips), start, end, length)
    options = GenerateOptions(
        request=request, out_dir=Path(out_dir), upload_mode=upload_mode,  # type: ignore[arg-type]
        max_cost_units=max_cost_units, dry_run=dry_run, wait=not no_wait, deadline_s=deadline,
        extend=extend, profile=profile, use_cache=not no_cache, resubmit=resubmit, pick=pick,
        retry_failed=retry_failed, wait_lock=wait_lock,
        check=not no_check, require=require,  # type: ignore[arg-type]
        references=references_given(images, images_from, audio_refs, voices, voices_from,
                                    voices_for),
    )

    with render.ProgressView(show_progress(json_, quiet)) as view:

        def confirm(est: Any) -> bool:
            with view.paused():
                confirm_cost(f"Submit this job for {billing.credits_text(est.credits_units)} "
                             "credits?", yes=yes)
            return True

        def show_estimate(est: Any) -> None:
            if not quiet or not yes:
                render.estimate_table(est, to_stderr=True)

        hooks = GenerateHooks(
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
        result = run_generate(specs, options, settings, hooks=hooks, raise_on_failure=False)
    if json_:
        answer(result.as_dict())
    _tell(result, json_, out_dir)
    result.raise_for_outcome()


def _tell(result: GenerateResult, json_: bool, out_dir: str) -> None:
    """What the run did, for people (stderr notes; with --json nothing more on stdout)."""
    from prep.core.billing import credits_text
    from prep.ui import render

    if result.stopped == "dry-run":
        if not json_:
            for path in result.prepared:
                render.out().print(f"prepared: {path}", soft_wrap=True, highlight=False)
        render.note("dry run: nothing was uploaded or submitted")
        return
    if result.credits_differ:
        render.warn(f"EvoLink reserved {credits_text(result.credits_reserved_units or 0)} "
                    f"credits; prep estimated {credits_text(result.estimate.credits_units)} "
                    "(account discounts or new prices? check `prep estimate` price options)")
    if result.stopped == "no-wait":
        if not json_:
            render.out().print(result.task_id, highlight=False)
        render.note(f"submitted; follow it with `prep task {result.task_id} --wait -o {out_dir}`, "
                    "or run the same command again")
        return
    if not json_ and result.status is not None and result.status.state == "done":
        data = result.as_dict()
        task_data = data["task"] or {"id": result.task_id, "status": data["status"]}
        render.task_summary(task_data, files=[str(p) for p in result.files],
                            estimate_units=result.estimate.credits_units)
