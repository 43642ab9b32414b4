"""What the commands share: the clip-spec parameter type, the common options, settings."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

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

    def shell_complete(self, ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[Any]:
        """Tab completes file and folder names (the shell lists them); after `PATH@`, nothing."""
        from click.shell_completion import CompletionItem

        if "@" in incomplete and os.path.exists(incomplete.rpartition("@")[0]):
            return []
        return [CompletionItem(incomplete, type="file")]

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


def timeline_options(func: F) -> F:
    """--media and --map-path: where a timeline file's media is found (relinking)."""
    func = click.option(
        "--map-path", "map_paths", multiple=True, metavar="FROM=TO",
        help="Timeline files: read media paths starting with FROM as starting with TO "
             "(e.g. 'C:\\Footage=/mnt/footage'; repeatable).")(func)
    return click.option(
        "--media", "media_dirs", multiple=True, metavar="DIR",
        type=click.Path(file_okay=False, path_type=str),
        help="Timeline files: more folders to look for their media in, by clip, reel or file "
             "name (repeatable; the timeline's own folder is always searched).")(func)


def timeline_settings(media_dirs: tuple[str, ...], map_paths: tuple[str, ...], *,
                      group: str = "event", prompt: str | None = None, quiet: bool = False) -> Any:
    """The TimelineOptions of a command's --media/--map-path (and batch's --group/--prompt)."""
    from pathlib import Path

    from prep.jobs.timeline import TimelineOptions, parse_map_path
    from prep.ui import render

    return TimelineOptions(group=group, prompt=prompt,  # type: ignore[arg-type]
                           media_dirs=tuple(Path(d) for d in media_dirs),
                           path_maps=tuple(parse_map_path(m) for m in map_paths),
                           on_note=None if quiet else render.note)


def timeline_clips(clips: tuple[ClipSpec, ...], media_dirs: tuple[str, ...],
                   map_paths: tuple[str, ...], *, quiet: bool) -> tuple[ClipSpec, ...]:
    """CLIPS with each timeline file among them replaced by its events' windows; the problems of
    a timeline's events are listed one a line before its ManifestError ends the command."""
    from prep.jobs.timeline import expand_timelines, is_timeline

    if not any(is_timeline(c.path) for c in clips):
        return clips
    from prep.errors import ManifestError
    from prep.ui import render

    try:
        return tuple(expand_timelines(clips, timeline_settings(media_dirs, map_paths, quiet=quiet)))
    except ManifestError as exc:
        render.manifest_problems(exc.source, exc.problems)
        raise


def profile_option(func: F) -> F:
    """--profile for the clips a command must re-encode (unset: prepare's default)."""
    from prep.core.plan import PROFILES

    return click.option(
        "--profile", type=click.Choice(PROFILES),
        help="Encoding profile for clips that must be re-encoded (see prep prepare).",
    )(func)


def model_options(func: F) -> F:
    """--model and --audio/--no-audio (the flash model's switch)."""
    from prep.core import rules

    func = click.option("--audio/--no-audio", "audio", default=None,
                        help=f"With {rules.FLASH_MODEL} only: generate the audio track (default) "
                             "or not (half the price).")(func)
    func = click.option("--model", type=click.Choice(rules.MODELS), default=rules.DEFAULT_MODEL,
                        show_default=True,
                        help=f"{rules.FLASH_MODEL} is the cheaper variant (2.38 credits a second "
                             "with audio, 1.19 without, by the default prices).")(func)
    return func


def reference_check_options(func: F) -> F:
    """--require good|fair and --no-check: the reference check (`prep check`) inside a job."""
    func = click.option("--no-check", is_flag=True,
                        help="Do not check the clips as references (`prep check`) before the "
                             "bill.")(func)
    func = click.option("--require", type=click.Choice(["good", "fair"]), default=None,
                        help="Refuse (exit 3, before anything is uploaded) a job with a clip whose "
                             "reference check is below this verdict; default: only show the "
                             "check's warnings.")(func)
    return func


def check_reference_options(require: str | None, no_check: bool) -> None:
    """Usage error when --require and --no-check are given together."""
    if no_check and require:
        raise click.UsageError("give --require or --no-check, not both")


def check_model_options(model: str, audio: bool | None) -> None:
    """UsageError naming the flag given when --audio/--no-audio does not go with --model."""
    from prep.core.request import check_generate_audio

    check_generate_audio(model, audio, option="--audio" if audio else "--no-audio")


def price_options(func: F) -> F:
    """Overrides of the price table."""
    func = click.option("--flash-min-charge", metavar="CREDITS",
                        help="Minimum charge per flash task (default 9).")(func)
    func = click.option("--flash-price-per-second", metavar="CREDITS",
                        help="Credits per billed second of the flash model at 720p with audio "
                             "(default 2.38).")(func)
    func = click.option("--min-charge", metavar="CREDITS",
                        help="Minimum charge per task (default 9).")(func)
    func = click.option("--price-1080p-multiplier", metavar="X",
                        help="Price multiplier of 1080p over 720p (default 1.67).")(func)
    func = click.option("--price-per-second", metavar="CREDITS",
                        help="Credits per billed second at 720p (default 4.76).")(func)
    return func


def cli_settings(**options: Any) -> Any:
    from prep.settings import load_settings

    return load_settings(options)


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
    """--upload-mode auto|base64|stream."""
    return click.option(
        "--upload-mode", type=click.Choice(["auto", "base64", "stream"]), default="auto",
        show_default=True,
        help="base64: the JSON endpoint EvoLink's docs name; stream: the multipart endpoint "
             "EvoLink's own clients use; auto: base64, and stream for a file base64 refuses by "
             "its type.",
    )(func)


def api_cli_settings(api_key: str | None, base_url: str | None, files_url: str | None,
                  **more: Any) -> Any:
    if api_key:
        from prep.ui import render

        render.warn("a key given with --api-key is visible to other users of this machine "
                    "(process list, shell history); prefer EVOLINK_API_KEY or `prep config set "
                    "api_key`")
    return cli_settings(api_key=api_key, base_url=base_url, files_url=files_url, **more)


def verbose_logging(verbose: bool) -> None:
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


def show_progress(json_: bool, quiet: bool) -> bool:
    from prep.ui import render

    return not json_ and not quiet and render.err().is_terminal


def seconds_ms(text: str) -> int:
    """Seconds (or a clock time) as ms; ValueError for SMPTE frames, which need a frame rate."""
    from prep.core import timecode

    point = timecode.parse(text)
    if point.ms is None:
        raise ValueError(f"{text!r}: give seconds, not SMPTE frames")
    return point.ms
