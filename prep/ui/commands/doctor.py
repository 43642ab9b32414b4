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
    Exit status 6 when something prep needs is missing or too old: no ffmpeg, an ffmpeg older
    than 5.1, one without libx264 or aac, or no usable MediaInfo library. A missing filter
    (zscale, tonemap, bwdif) is a warning: only the clips that need it fail.
    """
    from prep.errors import ToolMissingError, install_hint
    from prep.media.ffmpeg import REQUIRED_ENCODERS, inspect_chosen
    from prep.ui import render

    settings = cli_settings()
    report = inspect_chosen(settings.ffmpeg)
    extra = {"cache": str(settings.cache_dir)}
    try:
        import pymediainfo

        extra["mediainfo"] = "yes" if pymediainfo.MediaInfo.can_parse() else "missing"
    except Exception as exc:  # noqa: BLE001 - any failure here means MediaInfo is unusable
        extra["mediainfo"] = f"unusable ({exc})"
    if json_:
        render.json_out({**report.as_dict(), **extra,
                         "ok": report.as_dict()["ok"] and extra["mediainfo"] == "yes"})
    else:
        render.doctor_report(report, extra)
    if report.note:
        render.warn(report.note)
    for name in report.missing:
        if name not in REQUIRED_ENCODERS:
            render.warn(f"this ffmpeg lacks the {name} filter: clips that need it will fail")
    problems = [f"lacks {name}" for name in report.missing if name in REQUIRED_ENCODERS]
    if report.too_old:
        problems.insert(0, report.version_problem)
    if problems:
        raise ToolMissingError(f"{report.path}: {'; '.join(problems)}",
                               hint="set PREP_FFMPEG to a full build of ffmpeg 5.1 or newer, or "
                                    "unset it to use the bundled one")
    if extra["mediainfo"] != "yes":
        raise ToolMissingError(f"the MediaInfo library is {extra['mediainfo']}: prep cannot probe "
                               "a clip without it",
                               hint=f"{install_hint(package='pymediainfo>=7')} (its wheels carry the "
                                    "library), or install libmediainfo with your package manager")
