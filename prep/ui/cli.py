"""The `prep` command line: parse options, call the library, render the result.

Only click and the standard library are imported at start-up, so `prep --help` stays fast; each
command imports what it needs when it runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from prep.core import rules
from prep.core.clipspec import ClipSpec
from prep.errors import PrepError, UsageError
from prep.media.clips import parse_clip_spec

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class PrepGroup(click.Group):
    """Turns prep's errors into their exit codes in one place, not at each call site."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PrepError as exc:
            from prep.ui import render

            render.error(exc, verbose=bool(ctx.meta.get("prep.verbose")))
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:
            if os.environ.get("PREP_DEBUG"):
                raise
            from prep.ui import render

            render.bug(exc)
            ctx.exit(1)


class ClipSpecType(click.ParamType):  # type: ignore[type-arg]
    """`PATH` or `PATH@START-END`; a malformed window is a usage error (exit 2)."""

    name = "CLIPSPEC"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, ClipSpec):
            return value
        try:
            return parse_clip_spec(str(value))
        except UsageError as exc:
            self.fail(exc.message, param, ctx)


def common_options(func: F) -> F:
    """--json, --quiet and --verbose, shared by every command."""

    @click.option("--json", "json_", is_flag=True, help="Machine output: only JSON on stdout.")
    @click.option("-q", "--quiet", is_flag=True, help="Print only results and errors.")
    @click.option("-v", "--verbose", is_flag=True, help="Show more detail (ffmpeg's own output).")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        ctx.meta["prep.verbose"] = kwargs["verbose"]
        ctx.meta["prep.quiet"] = kwargs["quiet"]
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def trim_options(func: F) -> F:
    """--start / --end / --length for a single clip."""
    func = click.option("--length", metavar="S", help="Use S seconds from START (one clip only).")(func)
    func = click.option("--end", metavar="T", help="Stop at timecode T (one clip only).")(func)
    func = click.option("--start", metavar="T", help="Start at timecode T (one clip only).")(func)
    return func


def extend_option(func: F) -> F:
    """--extend for clips shorter than 2 s."""
    return click.option(
        "--extend", type=click.Choice(["loop", "freeze"]),
        help="Make a clip shorter than 2 s long enough, by looping it or holding its last frame.",
    )(func)


def price_options(func: F) -> F:
    """Overrides of the price table."""
    func = click.option("--min-charge", metavar="CREDITS",
                        help="Minimum charge per task (default 9).")(func)
    func = click.option("--price-1080p-multiplier", metavar="X",
                        help="Price multiplier of 1080p over 720p (default 1.67).")(func)
    func = click.option("--price-per-second", metavar="CREDITS",
                        help="Credits per billed second at 720p (default 4.76).")(func)
    return func


def _settings(**options: Any) -> Any:
    from prep.settings import load_settings

    return load_settings(options)


@click.group(cls=PrepGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="prep", prog_name="prep")
def cli() -> None:
    """Get footage ready for EvoLink's wan2.6-reference-video API, and know the bill first.

    Clips are given as PATH or PATH@START-END (e.g. take.mov@1:05-1:20; either side may be empty).
    A folder stands for the video files directly inside it.
    """


@cli.command()
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
    if bad:
        sys.exit(bad[0].exit_code)


@cli.command()
@click.argument("clips", nargs=-1, type=ClipSpecType())
@click.option("--seconds", "seconds", multiple=True, metavar="S",
              help="A clip of S seconds (repeatable), instead of or besides files.")
@click.option("--duration", type=int, default=rules.DEFAULT_OUTPUT_S, show_default=True,
              help=f"Output seconds ({rules.MIN_OUTPUT_S}-{rules.MAX_OUTPUT_S}).")
@click.option("--quality", type=click.Choice(rules.QUALITIES), default=rules.DEFAULT_QUALITY,
              show_default=True, help="Output quality; 1080p costs more per second.")
@trim_options
@extend_option
@price_options
@common_options
def estimate(clips: tuple[ClipSpec, ...], seconds: tuple[str, ...], duration: int, quality: str,
             start: str | None, end: str | None, length: str | None, extend: Any,
             price_per_second: str | None, price_1080p_multiplier: str | None,
             min_charge: str | None, json_: bool, quiet: bool, verbose: bool) -> None:
    """Billed seconds and credits of a job, before anything is encoded or uploaded.

    \b
    Examples:
        prep estimate take.mov                      # one clip: the first 5 s are billed
        prep estimate a.mp4 b.mov@0:10-0:16 --quality 1080p --duration 10
        prep estimate --seconds 12 --seconds 3 --json
    """
    from prep.core.clipspec import apply_trim_options
    from prep.core.request import check_options
    from prep.jobs.estimate import estimate_planned, plan_clips
    from prep.ui import render

    settings = _settings(price_per_second=price_per_second,
                         price_1080p_multiplier=price_1080p_multiplier, min_charge=min_charge)
    check_options(duration_s=duration, quality=quality)
    try:
        seconds_ms = [_seconds_ms(s) for s in seconds]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--seconds") from exc
    if not clips and not seconds_ms:
        raise click.UsageError("give 1 to 3 clips, or --seconds S for each clip")
    planned, errors = plan_clips(apply_trim_options(list(clips), start, end, length), extend=extend)
    for problem in errors:
        render.error(problem, verbose=verbose)
    if errors:
        sys.exit(max(e.exit_code for e in errors))
    est = estimate_planned(planned, seconds=seconds_ms, output_s=duration, quality=quality,
                           prices=settings.prices)
    if json_:
        render.json_out(est.as_dict())
        if not quiet:
            render.estimate_table(est, to_stderr=True)
    else:
        render.estimate_table(est)


def _seconds_ms(text: str) -> int:
    from prep.core import timecode

    point = timecode.parse(text)
    if point.ms is None:
        raise ValueError(f"{text!r}: give seconds, not SMPTE frames")
    return point.ms


# -- the API: upload, task, config -----------------------------------------------------------

def api_options(func: F) -> F:
    """--api-key, --base-url and --files-url (the environment or config file are better homes)."""
    func = click.option("--files-url", metavar="URL",
                        help="Files API base URL (default $EVOLINK_FILES_URL or EvoLink's).")(func)
    func = click.option("--base-url", metavar="URL",
                        help="Generation API base URL (default $EVOLINK_BASE_URL or EvoLink's).")(func)
    func = click.option("--api-key", metavar="KEY",
                        help="API key. Discouraged: other users can see command lines; use "
                             "EVOLINK_API_KEY or `prep config set api_key`.")(func)
    return func


def upload_mode_option(func: F) -> F:
    """--upload-mode base64|stream."""
    return click.option(
        "--upload-mode", type=click.Choice(["base64", "stream"]), default="base64",
        show_default=True,
        help="base64: the JSON endpoint EvoLink's docs name; stream: the multipart endpoint.",
    )(func)


def _api_settings(api_key: str | None, base_url: str | None, files_url: str | None,
                  **more: Any) -> Any:
    if api_key:
        from prep.ui import render

        render.warn("a key given with --api-key is visible to other users of this machine "
                    "(process list, shell history); prefer EVOLINK_API_KEY or `prep config set "
                    "api_key`")
    return _settings(api_key=api_key, base_url=base_url, files_url=files_url, **more)


def _verbose_logging(verbose: bool) -> None:
    """With --verbose, the client's retry notes go to stderr (they never contain the key), for
    this command only."""
    if not verbose:
        return
    import logging

    class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
        """Writes to whatever sys.stderr is at the time (click's test runner swaps it)."""

        def emit(self, record: logging.LogRecord) -> None:
            self.stream = sys.stderr
            super().emit(record)

    handler = _Stderr()
    handler.setFormatter(logging.Formatter("prep: %(message)s"))
    logger = logging.getLogger("prep")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    click.get_current_context().call_on_close(restore)


def _show_progress(json_: bool, quiet: bool) -> bool:
    from prep.ui import render

    return not json_ and not quiet and render.err().is_terminal


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@upload_mode_option
@click.option("--no-cache", is_flag=True,
              help="Upload again even if the same content was uploaded and its URL still lives.")
@api_options
@common_options
def upload(files: tuple[str, ...], upload_mode: str, no_cache: bool, api_key: str | None,
           base_url: str | None, files_url: str | None, json_: bool, quiet: bool,
           verbose: bool) -> None:
    """Upload prepared mp4/mov FILES to EvoLink's file host; print their temporary URLs.

    Every file is checked first (mp4/mov by its bytes, at most 100,000,000 bytes); nothing is sent
    if one is unfit. A file uploaded before with the same content is not sent again while its URL
    has more than an hour to live (uploads expire after 72 h).

    \b
    Examples:
        prep upload prepared/interview.mp4
        prep upload prepared/*.mp4 --upload-mode stream --json
    """
    from pathlib import Path

    from prep.api.client import Client
    from prep.api.upload import UploadCache, upload_files
    from prep.ui import render

    _verbose_logging(verbose)
    settings = _api_settings(api_key, base_url, files_url)
    cache = None if no_cache else UploadCache(settings.cache_dir / "uploads")
    with Client.from_settings(settings) as client, \
            render.ProgressView(_show_progress(json_, quiet)) as view:
        results = upload_files(
            client, [Path(f) for f in files], mode=upload_mode, cache=cache,  # type: ignore[arg-type]
            on_progress=lambda path, sent, total: view.transfer(str(path), f"upload {path.name}",
                                                                sent, total))
    rows = [r.as_dict() for r in results]
    if json_:
        render.json_out(rows)
    else:
        render.upload_table(rows)


@cli.command()
@click.argument("task_id")
@click.option("--wait", is_flag=True, help="Follow the task until it completes or fails.")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Download the result into this folder (named after the task id).")
@click.option("--deadline", type=click.FloatRange(min=1), default=30 * 60.0, show_default=True,
              metavar="S", help="With --wait: stop waiting after S seconds (the task goes on).")
@api_options
@common_options
def task(task_id: str, wait: bool, out_dir: str | None, deadline: float, api_key: str | None,
         base_url: str | None, files_url: str | None, json_: bool, quiet: bool,
         verbose: bool) -> None:
    """Status of a generation task; --wait follows it, -o DIR downloads its result.

    Exit 7 when the task failed or was cancelled (failed tasks are not billed).

    \b
    Examples:
        prep task task-unified-1757169743-7cvnl5zw
        prep task task-unified-1757169743-7cvnl5zw --wait -o results/
    """
    from pathlib import Path

    from prep.api.client import Client, PollPolicy
    from prep.errors import TaskFailedError
    from prep.ui import render

    _verbose_logging(verbose)
    settings = _api_settings(api_key, base_url, files_url)
    files: list[str] = []
    with Client.from_settings(settings) as client, \
            render.ProgressView(_show_progress(json_, quiet)) as view:
        current = client.get_task(task_id)
        failure: TaskFailedError | None = None
        try:
            if wait:
                current = client.wait(current,
                                      poll=PollPolicy.for_settings(settings, deadline_s=deadline),
                                      on_update=lambda t: view.task(t.id, t.status, t.progress,
                                                                    t.estimated_time_s))
            else:
                current.raise_for_failure()
        except TaskFailedError as exc:
            failure = exc
            current = client.get_task(task_id) if not current.terminal else current
        if out_dir is not None and current.succeeded:
            files = [str(p) for p in client.download_results(
                current, Path(out_dir), on_progress=lambda n, t: view.transfer(
                    "download", f"download {task_id}", n, t))]
    data = {**current.as_dict(), "files": files}
    if json_:
        render.json_out(data)
    elif not quiet or failure is None:
        render.task_summary(data, files=files)
    if out_dir is not None and not current.succeeded and failure is None:
        render.note(f"the task is {current.status}; nothing to download yet (add --wait)")
    if failure is not None:
        raise failure


@cli.group()
def config() -> None:
    """Read and write prep's config file (the API key is stored with mode 0600).

    \b
    Examples:
        prep config set api_key          # asks for the key at a hidden prompt
        prep config show
    """


_CONFIG_KEYS = ("api_key", "base_url", "files_url", "ffmpeg", "cache_dir", "poll_max_interval_s")


@config.command("set")
@click.argument("name", type=click.Choice(_CONFIG_KEYS))
@click.argument("value", required=False)
def config_set(name: str, value: str | None) -> None:
    """Set NAME to VALUE in the config file; `api_key` without VALUE asks for it unseen.

    \b
    Examples:
        prep config set api_key                   # typed at a hidden prompt, kept out of history
        prep config set base_url http://127.0.0.1:8765
    """
    from prep.settings import write_config
    from prep.ui import render

    if value is None:
        if name != "api_key":
            raise click.UsageError(f"give a value for {name}")
        if not sys.stdin.isatty():
            value = sys.stdin.readline().strip()
        else:
            value = click.prompt("EvoLink API key", hide_input=True)
    if not value:
        raise UsageError(f"{name}: an empty value")
    path = write_config({name: value})
    shown = "(hidden)" if name == "api_key" else value
    render.note(f"{name} = {shown} written to {path} (mode 0600)")


@config.command("show")
@common_options
def config_show(json_: bool, quiet: bool, verbose: bool) -> None:
    """The settings in effect and where they come from (the key is never shown)."""
    from prep.ui import render

    settings = _settings()
    data = {"config_file": str(settings.config_file), "api_key": "set" if settings.api_key
            else "missing", "base_url": settings.base_url, "files_url": settings.files_url,
            "cache_dir": str(settings.cache_dir), "ffmpeg": settings.ffmpeg,
            "poll_max_interval_s": settings.poll_max_interval_s}
    if json_:
        render.json_out(data)
    else:
        for key, value in data.items():
            render.out().print(f"{key} = {value}", soft_wrap=True, highlight=False)


@cli.command()
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
@click.option("--profile", type=click.Choice(["fast", "balanced", "quality"]),
              help="Encoding profile for clips that must be re-encoded (see prep prepare).")
@click.option("--no-cache", is_flag=True, help="Prepare and upload afresh, ignoring caches.")
@click.option("--resubmit", is_flag=True,
              help="Send a job again although an identical earlier request has an unknown outcome.")
@click.option("--pick", is_flag=True,
              help="Choose the window of each clip given without one, as `prep pick` does (needs "
                   "the pick extra); --length sets the window's length.")
@trim_options
@extend_option
@price_options
@api_options
@common_options
def generate(clips: tuple[ClipSpec, ...], prompt: str | None, prompt_file: Any, out_dir: str,
             duration: int, quality: str, aspect_ratio: str, shot_type: str,
             callback_url: str | None, yes: bool, max_cost: str | None, dry_run: bool,
             no_wait: bool, deadline: float, upload_mode: str, profile: str | None,
             no_cache: bool, resubmit: bool, pick: bool, start: str | None, end: str | None,
             length: str | None, extend: Any, price_per_second: str | None,
             price_1080p_multiplier: str | None, min_charge: str | None, api_key: str | None,
             base_url: str | None, files_url: str | None, json_: bool, quiet: bool,
             verbose: bool) -> None:
    """The whole job: prepare CLIPS, show the bill, upload, submit, follow, download.

    Everything is checked locally first (prompt, options, 1-3 clips, the key, the output folder);
    the bill is shown and confirmed before anything is encoded or sent. The task is submitted
    once: if its answer is lost, prep stops (exit 6) rather than risk paying twice.

    \b
    Examples:
        prep generate interview.mp4@0:02-0:12 --prompt "She waves and says hello" -o out/
        prep generate a.mov b.mp4 -p "Two friends talk" --quality 1080p --max-cost 90 -y -o out/
        prep generate take.mov -p "..." -o out/ --dry-run
        prep generate interview.mov vlog.mp4 --pick -p "Two hosts talk" -o out/
    """
    from pathlib import Path

    from prep.core import billing
    from prep.core.clipspec import apply_trim_options
    from prep.jobs.generate import GenerateOptions, Hooks
    from prep.jobs.generate import generate as run_generate
    from prep.ui import render

    _verbose_logging(verbose)
    if prompt_file is not None:
        if prompt is not None:
            raise click.UsageError("give --prompt or --prompt-file, not both")
        prompt = prompt_file.read().strip()
    if prompt is None:
        raise click.UsageError("--prompt is required (or --prompt-file)")
    settings = _api_settings(api_key, base_url, files_url, price_per_second=price_per_second,
                             price_1080p_multiplier=price_1080p_multiplier,
                             min_charge=min_charge)
    max_cost_units = billing.parse_credits(max_cost, "--max-cost") if max_cost else None
    specs = apply_trim_options(list(clips), start, end, length)
    options = GenerateOptions(
        prompt=prompt, out_dir=Path(out_dir), duration_s=duration, quality=quality,
        aspect_ratio=aspect_ratio, shot_type=shot_type, callback_url=callback_url,
        upload_mode=upload_mode,  # type: ignore[arg-type]
        max_cost_units=max_cost_units, dry_run=dry_run, wait=not no_wait, deadline_s=deadline,
        extend=extend, profile=profile, use_cache=not no_cache, resubmit=resubmit, pick=pick,
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

    with render.ProgressView(_show_progress(json_, quiet)) as view:
        hooks = Hooks(
            confirm=confirm, on_estimate=show_estimate, on_note=render.note,
            on_pick=lambda picked: render.picked_window(picked, quiet=quiet),
            on_pick_progress=lambda label, done, total: view.work(
                "pick:" + label, f"pick {label}", done, total),
            on_prepare_progress=lambda label, done, total: view.work(
                "prepare:" + label, f"prepare {label}", done, total),
            on_upload_progress=lambda path, sent, total: view.transfer(
                "upload:" + str(path), f"upload {path.name}", sent, total),
            on_task=lambda t: view.task(t.id, t.status, t.progress, t.estimated_time_s),
            on_download_progress=lambda n, t: view.transfer("download", "download", n, t),
        )
        result = run_generate(specs, options, settings, hooks=hooks, check=False)
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


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (keep 127.0.0.1 unless you know why not).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on; 0 picks a free one.")
@click.option("--key", default=None, metavar="KEY",
              help="The API key the sandbox accepts [default: sk-sandbox-demo].")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Simulated seconds per real second for tasks (10 = 10x faster).")
@click.option("--idempotency/--no-idempotency", default=False, show_default=True,
              help="Honour Idempotency-Key (EvoLink's docs do not promise it).")
@click.option("--allow-local-callbacks", is_flag=True,
              help="Accept and deliver callback_url on 127.0.0.1 (http allowed), for testing.")
@click.option("--accept-foreign-urls", is_flag=True,
              help="Accept video_urls on other hosts without checking them (never fetched).")
@click.option("--max-files", type=click.IntRange(min=0), default=rules.DEFAULT_FILE_QUOTA,
              show_default=True, help="Files each key may store at once.")
@common_options
def sandbox(host: str, port: int, key: str | None, speed: float, idempotency: bool,
            allow_local_callbacks: bool, accept_foreign_urls: bool, max_files: int,
            json_: bool, quiet: bool, verbose: bool) -> None:
    """Run a local stand-in for EvoLink (files API, generation, tasks) until Ctrl-C.

    It prints export lines that point prep (and curl) at it; no account and no network needed.

    \b
    Example:
        prep sandbox --speed 10
        export EVOLINK_BASE_URL=http://127.0.0.1:8765 EVOLINK_FILES_URL=... EVOLINK_API_KEY=...
    """
    import contextlib
    import json

    from prep.sandbox import DEMO_KEY, SandboxConfig, bind, serve

    settings = _settings()
    try:
        config = SandboxConfig(
            key=key or DEMO_KEY, speed=speed, honour_idempotency=idempotency,
            allow_local_callbacks=allow_local_callbacks, accept_foreign_urls=accept_foreign_urls,
            max_files=max_files, ffmpeg=settings.ffmpeg,
        )
    except ValueError as exc:  # the message names the setting (speed, key, max_files ...)
        raise UsageError(f"prep sandbox: {exc}") from exc
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                         hint="pick another --port, or --port 0 for a free one") from exc

    def ready(app: Any) -> None:
        url = app.public_base
        if json_:
            click.echo(json.dumps({"base_url": url, "files_url": url, "api_key": config.key}))
        else:
            click.echo(f"export EVOLINK_BASE_URL={url} EVOLINK_FILES_URL={url} "
                       f"EVOLINK_API_KEY={config.key}")
        if not quiet:
            click.echo(f"prep sandbox: serving EvoLink's API on {url} (speed x{speed:g}); "
                       f"state at {url}/_sandbox/state; Ctrl-C stops it", err=True)

    with contextlib.suppress(KeyboardInterrupt):  # uvicorn already stopped cleanly
        serve(config, sock, verbose=verbose, on_ready=ready)
    if not quiet:
        click.echo("prep sandbox: stopped", err=True)


@cli.command()
@click.argument("clips", nargs=-1, required=True, type=ClipSpecType())
@click.option("-o", "--output", "out_dir", required=True, metavar="DIR",
              type=click.Path(file_okay=False), help="Folder for the prepared mp4s (made if needed).")
@click.option("--profile", type=click.Choice(["fast", "balanced", "quality"]), default="balanced",
              show_default=True, help="Encoding speed against quality, when a clip is re-encoded.")
@click.option("--max-size-mb", type=click.FloatRange(1, 100), metavar="N",
              help="Keep each output under N MB (1,000,000 bytes each; default: the API's 100).")
@click.option("--dry-run", is_flag=True, help="Show what would be done; write nothing.")
@click.option("--no-cache", is_flag=True, help="Re-encode even when a cached result exists.")
@click.option("--sheet", is_flag=True,
              help="Also write a contact sheet (thumbnails with timecodes) beside each prepared "
                   "clip, as NAME.sheet.png (needs the pick extra).")
@trim_options
@extend_option
@common_options
def prepare(clips: tuple[ClipSpec, ...], out_dir: str, profile: Any, max_size_mb: float | None,
            dry_run: bool, no_cache: bool, sheet: bool, start: str | None, end: str | None,
            length: str | None, extend: Any, json_: bool, quiet: bool, verbose: bool) -> None:
    """Make each clip an mp4 EvoLink accepts: 2-30 s, under 100 MB, H.264/AAC.

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
    """
    from pathlib import Path

    from prep.core.clipspec import apply_trim_options
    from prep.media.prepare import PrepareOptions, PrepResult, prepare_each
    from prep.ui import render

    if sheet and not dry_run:
        from prep.ui.pictures import require_extras

        require_extras("--sheet")
    settings = _settings()
    specs = apply_trim_options(list(clips), start, end, length)
    options = PrepareOptions(
        profile=profile, extend=extend, use_cache=not no_cache, cache_dir=settings.cache_dir,
        ffmpeg=settings.ffmpeg,
        max_size_bytes=int(max_size_mb * 1_000_000) if max_size_mb else rules.MAX_FILE_BYTES,
    )
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
                        rows[-1]["sheet"] = str(_prepared_sheet(outcome))
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
    if errors:
        sys.exit(max(e.exit_code for e in errors))


def _prepared_sheet(result: Any) -> Path:
    """The contact sheet of a prepared clip, beside it as NAME.sheet.png."""
    from prep.ui.pictures import contact_sheet

    output: Path = result.output
    return contact_sheet(output, output.with_name(f"{output.stem}.sheet.png"),
                         info=result.output_info, title=f"{output.name}  (from {result.spec})")


@cli.command()
@common_options
def doctor(json_: bool, quiet: bool, verbose: bool) -> None:
    """Which ffmpeg prep uses, its version, and whether it can do what prep needs.

    \b
    Example:
        prep doctor
    Exit status 6 when ffmpeg is missing or lacks libx264 or aac.
    """
    from prep.errors import ToolMissingError
    from prep.media.ffmpeg import REQUIRED_ENCODERS, find_ffmpeg, inspect_ffmpeg
    from prep.ui import render

    settings = _settings()
    report = inspect_ffmpeg(find_ffmpeg(settings.ffmpeg))
    extra = {"cache": str(settings.cache_dir)}
    try:
        import pymediainfo

        extra["mediainfo"] = "yes" if pymediainfo.MediaInfo.can_parse() else "missing"
    except Exception as exc:  # noqa: BLE001 - any failure here means MediaInfo is unusable
        extra["mediainfo"] = f"unusable ({exc})"
    if json_:
        render.json_out({**report.as_dict(), **extra})
    else:
        render.doctor_report(report, extra)
    lacking = [name for name in report.missing if name in REQUIRED_ENCODERS]
    for name in report.missing:
        if name not in REQUIRED_ENCODERS:
            render.warn(f"this ffmpeg lacks the {name} filter: clips that need it will fail")
    if lacking:
        raise ToolMissingError(f"{report.path}: this ffmpeg lacks {', '.join(lacking)}",
                               hint="set PREP_FFMPEG to a full build, or unset it to use the "
                                    "bundled one")


class _BatchGroup(PrepGroup):
    """`prep batch MANIFEST ...` runs a batch; `prep batch status DIR` etc. are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_BatchGroup, context_settings=CONTEXT_SETTINGS)
def batch() -> None:
    """Many generate jobs from a CSV or JSONL manifest: costed up front, pipelined, resumable.

    \b
    Examples:
        prep batch jobs.csv --dry-run                 # validate, probe, plan and cost; no network
        prep batch jobs.jsonl -o out/ --max-cost 500  # run (asks to confirm the total first)
        prep batch status out/                        # where every job stands
    """


@batch.command("run")
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", "output", metavar="DIR",
              help="Output folder: results, prepared clips and the journal (needed to run).")
@click.option("--dry-run", is_flag=True, help="Validate, probe, plan and cost every job; send nothing.")
@click.option("--max-cost", metavar="CREDITS", help="Refuse to run if the whole batch costs more.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Uploads, task queries and downloads at once.")
@click.option("--cpu-workers", type=click.IntRange(1, 16), default=None,
              help="ffmpeg encodes at once (default: 1 on 2 cores, else 2).")
@click.option("--retry-failed", is_flag=True, help="Run failed jobs again (failed tasks are not billed).")
@click.option("--resubmit-unknown", is_flag=True,
              help="Re-send create requests whose outcome is unknown, under the same Idempotency-Key "
                   "(a second bill if the server does not honour the key).")
@click.option("--upload-mode", type=click.Choice(["base64", "stream"]), default="base64",
              show_default=True, help="Files API endpoint for uploads.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask to confirm the cost.")
@click.option("--test-fault", hidden=True, metavar="POINT[:JOB]",
              help="Tests only: the process kills itself (SIGKILL) at POINT.")
@click.option("--report", "report_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Also write the summary as one self-contained HTML file (contact sheets, costs, "
                   "results); with --dry-run, of the plan.")
@extend_option
@price_options
@common_options
def batch_run(manifest: str, output: str | None, dry_run: bool, max_cost: str | None,
              concurrency: int, cpu_workers: int | None, retry_failed: bool, resubmit_unknown: bool,
              upload_mode: str, yes: bool, test_fault: str | None, report_file: str | None, extend: Any,
              price_per_second: str | None, price_1080p_multiplier: str | None,
              min_charge: str | None, json_: bool, quiet: bool, verbose: bool) -> None:
    """Run (or with --dry-run, cost) every job of MANIFEST; run it again to resume.

    \b
    MANIFEST is CSV (columns name, clips, prompt, and optionally duration, quality,
    aspect_ratio, shot_type, callback_url, pick; clips separated by ';') or JSONL (one object per
    line, same fields; clips a list). Every row is checked before anything runs. A job with
    pick=true gets a picked window (as `prep pick` chooses) for each clip given without one.
    Results are DIR/NAME.mp4; `prep batch status DIR` shows where every job stands.
    """
    from pathlib import Path

    from prep.core.billing import parse_credits
    from prep.jobs.batch import check_budget, plan_batch
    from prep.jobs.manifest import ManifestError, load_manifest
    from prep.ui import render

    settings = _settings(price_per_second=price_per_second,
                         price_1080p_multiplier=price_1080p_multiplier, min_charge=min_charge)
    budget = parse_credits(max_cost, "--max-cost") if max_cost is not None else None
    if not dry_run and not output:
        raise UsageError("give an output folder with -o DIR, or --dry-run to cost the batch only")
    from prep.jobs.reconcile import read_journaled_picks
    from prep.pick.picks import Picker

    picker = Picker(cache_dir=settings.cache_dir / "picks",
                    known=read_journaled_picks(Path(output)) if output else None,
                    progress=lambda path: render.progress_bar(f"picking a window in {path.name}",
                                                              enabled=not quiet))
    try:
        loaded = load_manifest(manifest)
        plan = plan_batch(loaded, prices=settings.prices, extend=extend, picker=picker)
    except ManifestError as exc:
        if json_:
            render.json_out({"manifest": exc.source, "problems": [
                {"line": p.line, "name": p.name or None, "message": p.message,
                 "exit_code": p.exit_code} for p in exc.problems]})
        render.manifest_problems(exc.source, exc.problems)
        raise
    render.batch_picks(plan, to_stderr=True, quiet=quiet)
    if dry_run:
        if json_:
            render.json_out(plan.as_dict())
        if not (json_ and quiet):
            render.batch_cost_table(plan, to_stderr=json_)
        if report_file:
            from prep.ui.report import report_from_plan

            _write_report(report_from_plan(plan), report_file, quiet)
        check_budget(plan, budget)
        return
    check_budget(plan, budget)
    assert output is not None
    from prep.jobs.run import BatchOptions, Hooks, default_cpu_workers, run_batch

    options = BatchOptions(output_dir=Path(output), concurrency=concurrency,
                           cpu_workers=cpu_workers or default_cpu_workers(),
                           retry_failed=retry_failed, resubmit_unknown=resubmit_unknown,
                           upload_mode=upload_mode, max_cost_units=budget,  # type: ignore[arg-type]
                           fault=test_fault)
    if not quiet:
        render.batch_cost_table(plan, to_stderr=True)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("the batch costs credits; pass --yes to run it without a prompt")
        from prep.core.billing import credits_text

        if not click.confirm(f"Run {len(plan.jobs)} jobs for up to {credits_text(plan.credits_units)} "
                             "credits (jobs already submitted are not paid again)?", err=True):
            raise click.exceptions.Exit(1)
    if resubmit_unknown and not quiet:
        render.warn("--resubmit-unknown re-sends requests whose outcome is unknown under the same "
                    "Idempotency-Key; if EvoLink does not honour the key, such a job may be billed twice")
    try:
        with render.BatchProgress([j.name for j in plan.jobs], enabled=not quiet) as progress:
            hooks = Hooks(on_state=progress.state, on_progress=progress.progress,
                          on_warning=render.warn)
            result = run_batch(plan, settings, options, extend=extend, hooks=hooks)
    except BaseException:
        # Also after an interruption or an error: the report shows what the journal holds.
        if report_file:
            with contextlib.suppress(PrepError):
                _journal_report(Path(output), report_file, quiet)
        raise
    if report_file:
        _journal_report(Path(output), report_file, quiet)
    if json_:
        render.json_out(result.as_dict())
        if not quiet:
            render.batch_summary(result, to_stderr=True)
    else:
        render.batch_summary(result)
    if result.exit_code:
        sys.exit(result.exit_code)


@batch.command("resolve")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, path_type=str))
@click.argument("job")
@click.option("--task-id", metavar="ID", help="The task this job's request made (from the dashboard).")
@click.option("--not-created", is_flag=True,
              help="You checked: the request made no task; the next run submits the job again.")
@common_options
def batch_resolve(folder: str, job: str, task_id: str | None, not_created: bool, json_: bool,
                  quiet: bool, verbose: bool) -> None:
    """Settle a job whose create request had an unknown outcome (prep never guesses).

    \b
    Examples:
        prep batch resolve out/ intro --task-id task-unified-1757169743-7cvnl5zw
        prep batch resolve out/ intro --not-created
    """
    from pathlib import Path

    from prep.jobs.reconcile import resolve_unknown
    from prep.ui import render

    client = None
    if task_id is not None:
        from prep.api.client import Client

        settings = _settings()
        client = Client.from_settings(settings)
    try:
        message = resolve_unknown(Path(folder), job, task_id=task_id,
                                  not_created=not_created, client=client)
    finally:
        if client is not None:
            client.close()
    if json_:
        render.json_out({"job": job, "resolved": True, "message": message})
    elif not quiet:
        render.note(message)


def _write_report(report: Any, report_file: str, quiet: bool) -> None:
    from prep.ui import render
    from prep.ui.report import write_report

    for warning in write_report(report, report_file):
        render.warn(warning)
    if not quiet:
        render.note(f"report: {report_file}")


def _journal_report(folder: Any, report_file: str, quiet: bool) -> None:
    from prep.jobs.journal import Journal, journal_path
    from prep.ui.report import report_from_journal

    if not journal_path(folder).is_file():
        return
    with Journal.open(folder, create=False) as journal:
        report = report_from_journal(journal)
    _write_report(report, report_file, quiet)


@batch.command("status")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, path_type=str))
@click.option("--report", "report_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Also write the batch as one self-contained HTML file (contact sheets, costs, "
                   "results).")
@common_options
def batch_status_cmd(folder: str, report_file: str | None, json_: bool, quiet: bool,
                     verbose: bool) -> None:
    """Where every job of the batch in DIR stands, from its journal (no network).

    \b
    Examples:
        prep batch status out/ --json
        prep batch status out/ --report out/report.html
    """
    import time

    from prep.jobs.batch import batch_status
    from prep.jobs.journal import Journal
    from prep.ui import render

    with Journal.open(folder, create=False) as journal:
        rows = batch_status(journal, now=time.time())
    if json_:
        render.json_out({"folder": folder, "jobs": [r.as_dict() for r in rows]})
    else:
        render.batch_status_table(rows)
    if report_file:
        from pathlib import Path

        _journal_report(Path(folder), report_file, quiet)


@cli.command()
@click.argument("clip", type=ClipSpecType())
@click.option("--length", metavar="S",
              help="Window length in seconds (default 8; kept within 2-30 s and within the shot). "
                   "Without it, a tail with neither face nor speech is cut off.")
@click.option("--clips-in-job", type=click.IntRange(rules.MIN_CLIPS, rules.MAX_CLIPS), default=1,
              show_default=True, metavar="N",
              help="Clips the job will have: sets the billed head (5 / 2.5 / 1.65 s) that the "
                   "best part is put into.")
@click.option("--timeline", "timeline_png", metavar="PNG",
              type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also draw the timeline (thumbnails, faces, speech, cuts, the window) to PNG.")
@common_options
def pick(clip: ClipSpec, length: str | None, clips_in_job: int, timeline_png: Path | None,
         json_: bool, quiet: bool, verbose: bool) -> None:
    """Find the best reference window in long footage: one shot, a face, speech, best part first.

    Prints the window as a clip spec (PATH@START-END) that every other command takes; stdout
    carries nothing else, the scores go to stderr. CLIP@START-END searches only that part.
    Footage without a face or without speech still gets the best window there is, with a warning
    saying what is missing (exit 0). Needs the pick extra: pip install 'prep[pick]'.

    \b
    Examples:
        prep pick interview.mov
        prep pick vlog.mp4@2:00-6:00 --length 10 --clips-in-job 2 --timeline vlog.png
        prep estimate "$(prep pick interview.mov -q)"
    """
    from prep.pick.choose import pick_window
    from prep.ui import render

    length_ms = None
    if length is not None:
        try:
            length_ms = _seconds_ms(length)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--length") from exc
        if length_ms <= 0:
            raise click.BadParameter("must be more than 0", param_hint="--length")
    with render.progress_bar(f"analysing {clip.path.name}", enabled=not quiet) as bar:
        result = pick_window(clip.path, length_ms, clips_in_job, within=clip.window, progress=bar)
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


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="prep")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
