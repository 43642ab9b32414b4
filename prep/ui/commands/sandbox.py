"""`prep sandbox`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import click

from prep.core import rules
from prep.errors import UsageError
from prep.ui.options import (
    cli_settings,
    common_options,
)

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
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
    import json

    from prep.sandbox import DEMO_KEY, SandboxConfig, bind, serve

    settings = cli_settings()
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
