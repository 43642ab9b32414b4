"""`prep config`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from prep.errors import UsageError
from prep.ui.options import (
    cli_settings,
    common_options,
)

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
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

    settings = cli_settings()
    data = {"config_file": str(settings.config_file), "api_key": "set" if settings.api_key
            else "missing", "base_url": settings.base_url, "files_url": settings.files_url,
            "cache_dir": str(settings.cache_dir), "ffmpeg": settings.ffmpeg,
            "poll_max_interval_s": settings.poll_max_interval_s}
    if json_:
        render.json_out(data)
    else:
        for key, value in data.items():
            render.out().print(f"{key} = {value}", soft_wrap=True, highlight=False)
