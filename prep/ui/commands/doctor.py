"""`prep doctor`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from prep.ui.options import (
    cli_settings,
    common_options,
)

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
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

    settings = cli_settings()
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
