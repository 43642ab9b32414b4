"""What the commands share: the clip-spec parameter type, the common options, settings."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from prep.errors import ExitCode, PrepError, UsageError

if TYPE_CHECKING:
    from prep.core.clipspec import ClipSpec

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class PrepGroup(click.Group):
    """Turns prep's errors into their exit codes in one place, not at each call site."""

    def invoke(self, ctx: click.Context) -> Any:
        from prep.ui.endings import interrupt_code, on_sigterm

        try:
            with on_sigterm():
                return super().invoke(ctx)
        except PrepError as exc:
            from prep.errors import Interrupted
            from prep.ui import render

            render.error(exc, verbose=bool(ctx.meta.get("prep.verbose")))
            ctx.exit(interrupt_code() if isinstance(exc, Interrupted) else exc.exit_code)
        except KeyboardInterrupt:
            code = interrupt_code()
            click.echo("terminated" if code == ExitCode.TERMINATED else "interrupted", err=True)
            ctx.exit(code)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`prep estimate ... | head`): stop quietly, as a shell tool
            # ended by SIGPIPE does; stdout now leads nowhere, so the flush at exit cannot fail.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            ctx.exit(ExitCode.BROKEN_PIPE)
        except Exception as exc:
            if os.environ.get("PREP_DEBUG"):
                raise
            from prep.ui import render

            render.bug(exc)
            ctx.exit(ExitCode.INTERNAL)


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
        # Imported here: `prep --help` needs neither (fractions, pathlib and the rest).
        from prep.core.clipspec import ClipSpec
        from prep.media.clips import parse_clip_spec

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
    from prep.core.clipspec import is_timeline

    if not any(is_timeline(c.path) for c in clips):
        return clips  # no timeline among them: its reader is not even imported
    from prep.errors import ManifestError
    from prep.jobs.timeline import expand_timelines
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


# Every request field's flag (RequestOptions' attribute -> its click option). The rules are
# prep.core.request's, per model (the choices here are every model's together; the chosen model's
# own are checked when the value is built); the flags parse, and show the choices in --help.
def _request_flags() -> dict[str, Callable[[F], F]]:
    from prep.core import rules
    from prep.core.billing import DEFAULT_PRICES, credits_text

    flash = DEFAULT_PRICES.rate(rules.FLASH_MODEL)
    flash_s = credits_text(flash.units_per_second)
    flash_quiet_s = credits_text(int(flash.units_per_second * DEFAULT_PRICES.flash_no_audio_multiplier))
    specs = rules.MODEL_SPECS
    qualities = tuple(dict.fromkeys(q for m in specs for q in m.qualities))
    aspects = tuple(dict.fromkeys(a for m in specs for a in m.aspect_ratios))
    aliases = ", ".join(m.aliases[0] for m in specs)
    return {
        "prompt": _prompt_flags,
        "duration_s": click.option(
            "--duration", "duration_s", type=int, default=rules.DEFAULT_OUTPUT_S, show_default=True,
            help=f"Output seconds ({rules.MIN_OUTPUT_S}-{rules.MAX_OUTPUT_S} on wan2.6; wan3.0: 2-30, "
                 "or -1 to let the model choose, billed as a 30 s hold until it settles)."),
        "quality": click.option(
            "--quality", type=click.Choice(qualities), default=rules.DEFAULT_QUALITY,
            show_default=True, help="Output quality; higher costs more per second (480p: wan3.0)."),
        "aspect_ratio": click.option(
            "--aspect-ratio", type=click.Choice(("auto", *aspects)),
            default=rules.DEFAULT_ASPECT_RATIO, show_default=True,
            help="Output shape; auto: each clip's nearest allowed ratio, the most common wins; "
                 "adaptive: wan3.0 follows its references."),
        "shot_type": click.option(
            "--shot-type", type=click.Choice(rules.SHOT_TYPES), default=rules.DEFAULT_SHOT_TYPE,
            show_default=True, help="One continuous shot, or several (wan2.6 only; overrides the "
                                    "prompt)."),
        "callback_url": click.option(
            "--callback-url", metavar="URL",
            help="HTTPS URL EvoLink POSTs the finished task to (no internal addresses)."),
        "model": click.option(
            "--model", metavar="MODEL", default=None,
            help=f"A model id or alias ({aliases}); default: `model` in the config, else "
                 f"{rules.DEFAULT_MODEL}. {rules.FLASH_MODEL} is the cheaper wan2.6 ({flash_s} "
                 f"credits a second with audio, {flash_quiet_s} without, by the default prices)."),
        "generate_audio": click.option(
            "--audio/--no-audio", "generate_audio", default=None,
            help="With flash, wan3.0 and prime: generate the audio track (default) or not (flash: "
                 "half the price)."),
        "seed": click.option(
            "--seed", type=int, default=None,
            help="Random seed, for repeatable output (wan2.7, wan3.0, prime)."),
        "negative_prompt": click.option(
            "--negative-prompt", metavar="TEXT", default=None,
            help="What the video must not show (wan2.7 only)."),
        "prompt_extend": click.option(
            "--prompt-extend/--no-prompt-extend", "prompt_extend", default=None,
            help="Let the model rewrite the prompt (wan2.7 only; its default: off)."),
    }


def model_option(func: F) -> F:
    """--model alone (a command that takes no other request field): the value as given, or None
    (`configured_model` picks the config's then)."""
    return _request_flags()["model"](func)


def configured_model(model: str | None) -> str:
    """The model a command uses: the one given, else `model` in the config, else wan2.6."""
    from prep.core import rules

    if model is not None:
        return model
    return str(cli_settings().model or rules.DEFAULT_MODEL)


def _prompt_flags(func: F) -> F:
    from prep.core import rules

    func = click.option("--prompt-file", type=click.File("r", encoding="utf-8"),
                        help="Read the prompt from a file ('-' for stdin).")(func)
    return click.option("-p", "--prompt",
                        help=f"What the video shows (at most {rules.MAX_PROMPT_CHARS} "
                             "characters).")(func)


def _prompt(kwargs: dict[str, Any]) -> str:
    prompt, prompt_file = kwargs.pop("prompt"), kwargs.pop("prompt_file")
    if prompt_file is not None:
        if prompt is not None:
            raise click.UsageError("give --prompt or --prompt-file, not both")
        return str(prompt_file.read().strip())
    if prompt is None:
        raise click.UsageError("--prompt is required (or --prompt-file)")
    return str(prompt)


#: The request fields that change a bill (what `prep estimate` takes).
BILLED_FIELDS = ("duration_s", "quality", "model", "generate_audio")


def request_options(fields: tuple[str, ...] | None = None) -> Callable[[F], F]:
    """The flags of the request's fields (all of them, or `fields`: RequestOptions' attribute
    names), handed to the command as one checked value, `request` (a RequestOptions).

    A value the API would refuse is a usage error (exit 2) naming the flag, before the command
    runs; with `prompt`, --prompt or --prompt-file is required.
    """
    from prep.core.request import RequestOptions

    flags = _request_flags()
    names = tuple(flags) if fields is None else fields

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given: dict[str, Any] = {name: _prompt(kwargs) if name == "prompt" else kwargs.pop(name)
                                     for name in names}
            if "model" in given:
                given["model"] = configured_model(given["model"])
            return func(*args, request=RequestOptions(**given), **kwargs)

        decorated: Any = wrapper
        for name in reversed(names):
            decorated = flags[name](decorated)
        return decorated  # type: ignore[no-any-return]

    return decorate


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


def price_options(func: F) -> F:
    """Overrides of the price table, handed to the command as one value, `prices`: the flags
    given, by their config names (what `cli_settings(**prices)` takes). Their defaults in --help
    are read from the default price table, the one place prices are written."""
    from prep.core import rules
    from prep.core.billing import DEFAULT_PRICES, credits_text
    from prep.settings import MODEL_PRICE_KEYS

    standard, flash = DEFAULT_PRICES.rate(rules.MODEL), DEFAULT_PRICES.rate(rules.FLASH_MODEL)
    flags = (  # (config name, metavar, help)
        ("price_per_second", "CREDITS",
         f"Credits per billed second at 720p (default {credits_text(standard.units_per_second)})."),
        ("price_1080p_multiplier", "X", "Price multiplier of 1080p over 720p (default "
                                        f"{float(standard.hd_multiplier):g})."),
        ("min_charge", "CREDITS",
         f"Minimum charge per task (default {credits_text(standard.minimum_units)})."),
        ("flash_price_per_second", "CREDITS",
         "Credits per billed second of the flash model at 720p with audio (default "
         f"{credits_text(flash.units_per_second)})."),
        ("flash_min_charge", "CREDITS",
         f"Minimum charge per flash task (default {credits_text(flash.minimum_units)})."),
        *((name, "CREDITS", f"Credits per billed second of {model} at its base quality (default "
                            f"{credits_text(DEFAULT_PRICES.rate(model).units_per_second)}).")
          for name, model in MODEL_PRICE_KEYS),
    )

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        prices = {name: value for name, _, _ in flags if (value := kwargs.pop(name)) is not None}
        return func(*args, prices=prices, **kwargs)

    decorated: Any = wrapper
    for name, metavar, text in reversed(flags):
        decorated = click.option("--" + name.replace("_", "-"), metavar=metavar, help=text)(decorated)
    return decorated  # type: ignore[no-any-return]


def cli_settings(**options: Any) -> Any:
    from prep.settings import load_settings

    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get("prep.connect_timeout") is not None:
        options.setdefault("connect_timeout_s", ctx.meta["prep.connect_timeout"])
    return load_settings(options)


def _keep_connect_timeout(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None:
        ctx.meta["prep.connect_timeout"] = value
    return value


def connect_timeout_option(func: F) -> F:
    """--connect-timeout SECONDS: how long a service that cannot be reached is tried again (read
    by `cli_settings`, so the command's own signature does not change)."""
    return click.option(
        "--connect-timeout", metavar="SECONDS", type=click.FloatRange(min=1, max=86_400),
        expose_value=False, callback=_keep_connect_timeout, is_eager=True,
        help="How long to keep trying a service that cannot be reached before exit 6 (default "
             "60, or the connect_timeout_s setting).",
    )(func)


def api_options(func: F) -> F:
    """--api-key, --base-url and --files-url (the environment or config file are better homes),
    and --connect-timeout."""
    func = connect_timeout_option(func)
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
