"""`prep config`: read and edit the config file without losing its comments."""

from __future__ import annotations

import sys

import click

from prep.configfile import CONFIG_KEYS
from prep.ui.options import cli_settings, common_options


@click.group()
def config() -> None:
    """Read and edit prep's config file (TOML; written with mode 0600, comments kept).

    \b
    Examples:
        prep config set api_key                      # asks for the key at a hidden prompt
        prep config set prices.price_per_second 4.2  # your account's own price
        prep config get base_url
        prep config unset base_url
        prep config show
        $EDITOR "$(prep config path)"
    """


_KEY = click.Choice(tuple(CONFIG_KEYS))


@config.command("set")
@click.argument("name", type=_KEY, metavar="NAME")
@click.argument("value", required=False)
def config_set(name: str, value: str | None) -> None:
    """Set NAME to VALUE; `api_key` without VALUE is read unseen (prompt or stdin).

    Numbers stay numbers (`4.76`, `9`); other values are stored as quoted strings, so quotes,
    backslashes and line breaks are safe. Other keys, comments and their order are kept.
    NAME is one of: api_key, base_url, files_url, ffmpeg, cache_dir, poll_max_interval_s,
    connect_timeout_s, scheduler, model, prices.price_per_second, prices.price_1080p_multiplier,
    prices.min_charge, prices.flash_price_per_second, prices.flash_1080p_multiplier,
    prices.flash_min_charge, prices.flash_no_audio_multiplier, prices.price_source,
    prices.price_effective.

    \b
    Examples:
        prep config set api_key                   # typed at a hidden prompt, kept out of history
        prep config set base_url http://127.0.0.1:8765
        prep config set prices.min_charge 9
        prep config set model 3.0                 # jobs use wan3.0 unless --model says otherwise
    """
    from prep.configfile import set_config
    from prep.ui import render

    if value is None:
        if name != "api_key":
            raise click.UsageError(f"give a value for {name}")
        if not sys.stdin.isatty():
            value = sys.stdin.readline().strip()
        else:
            value = click.prompt("EvoLink API key", hide_input=True)
    path = set_config(name, value)
    shown = "(hidden)" if name == "api_key" else repr(value)
    render.note(f"{name} = {shown} written to {path} (mode 0600)")


@config.command("get")
@click.argument("name", type=_KEY, metavar="NAME")
@common_options
def config_get(name: str, json_: bool, quiet: bool, verbose: bool) -> None:
    """The value of NAME in the config file; nothing (JSON: null) when it is not set there.

    The API key is never printed: `get api_key` answers `set`.

    \b
    Example:
        prep config get prices.price_per_second
    """
    from prep.configfile import get_config
    from prep.ui import render

    value = get_config(name)
    if name == "api_key" and value is not None:
        value = "set"
    if json_:
        render.json_out({"name": name, "value": value})
    elif value is not None:
        click.echo(value)
    if value is None and not quiet and not json_:
        render.note(f"{name} is not set in the config file (`prep config show` lists the value "
                    "in effect and where it comes from)")


@config.command("unset")
@click.argument("name", type=_KEY, metavar="NAME")
def config_unset(name: str) -> None:
    """Remove NAME from the config file (the default, or the environment, applies again).

    \b
    Example:
        prep config unset base_url
    """
    from prep.configfile import unset_config
    from prep.settings import config_path
    from prep.ui import render

    if unset_config(name):
        render.note(f"{name} removed from {config_path()}")
    else:
        render.note(f"{name} was not set in {config_path()}")


@config.command("path")
def config_path_cmd() -> None:
    """Where the config file is (it may not exist yet); `PREP_CONFIG` moves it.

    \b
    Example:
        $EDITOR "$(prep config path)"
    """
    from prep.settings import config_path

    click.echo(str(config_path()))


@config.command("show")
@common_options
def config_show(json_: bool, quiet: bool, verbose: bool) -> None:
    """The settings in effect and where each comes from (the key is never shown).

    \b
    Example:
        prep config show --json
    """
    from prep.core import rules
    from prep.core.billing import credits_number
    from prep.settings import MODEL_PRICE_KEYS, setting_sources
    from prep.ui import render

    settings = cli_settings()
    prices = settings.prices
    data = {"config_file": str(settings.config_file), "api_key": "set" if settings.api_key
            else "missing", "base_url": settings.base_url, "files_url": settings.files_url,
            "cache_dir": str(settings.cache_dir), "ffmpeg": settings.ffmpeg,
            "poll_max_interval_s": settings.poll_max_interval_s, "scheduler": settings.scheduler,
            "connect_timeout_s": settings.connect_timeout_s,
            "model": settings.model or rules.DEFAULT_MODEL,
            "prices": {"price_per_second": credits_number(prices.units_per_second),
                       "price_1080p_multiplier": float(prices.hd_multiplier),
                       "min_charge": credits_number(prices.minimum_units),
                       "flash_price_per_second": credits_number(prices.flash_units_per_second),
                       "flash_1080p_multiplier": float(prices.flash_hd_multiplier),
                       "flash_min_charge": credits_number(prices.flash_minimum_units),
                       "flash_no_audio_multiplier": float(prices.flash_no_audio_multiplier),
                       **{name: credits_number(prices.rate(model).units_per_second)
                          for name, model in MODEL_PRICE_KEYS},
                       "price_source": prices.label},
            "sources": setting_sources()}
    if json_:
        render.json_out(data)
    else:
        render.config_table(data)
