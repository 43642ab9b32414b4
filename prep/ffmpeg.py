"""The ffmpeg edge: finding the binary. (Running plans through it grows here with `prepare`.)

Search order: the configured path (`PREP_FFMPEG` / config `ffmpeg`), an `ffmpeg` on PATH, then the
static binary that the imageio-ffmpeg package ships. Found lazily, never at import time.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import ToolMissingError

__all__ = ["FfmpegBinary", "find_ffmpeg"]


@dataclass(frozen=True, slots=True)
class FfmpegBinary:
    """An ffmpeg executable and where it was found (`PREP_FFMPEG`, `PATH` or `imageio-ffmpeg`)."""

    path: str
    source: str


@cache
def _find(configured: str | None) -> FfmpegBinary:
    if configured:
        resolved = shutil.which(configured) or (configured if Path(configured).is_file() else None)
        if not resolved or not os.access(resolved, os.X_OK):
            raise ToolMissingError(
                f"{configured}: the configured ffmpeg (PREP_FFMPEG) is missing or not executable",
                hint="fix PREP_FFMPEG, or unset it to use the bundled ffmpeg",
            )
        return FfmpegBinary(resolved, "PREP_FFMPEG")
    on_path = shutil.which("ffmpeg")
    if on_path:
        return FfmpegBinary(on_path, "PATH")
    try:
        import imageio_ffmpeg

        bundled = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as err:
        raise ToolMissingError(
            "no ffmpeg found: none configured, none on PATH, and imageio-ffmpeg has no binary",
            hint="pip install imageio-ffmpeg, or set PREP_FFMPEG to your ffmpeg",
        ) from err
    return FfmpegBinary(bundled, "imageio-ffmpeg")


def find_ffmpeg(configured: str | None = None) -> FfmpegBinary:
    """The ffmpeg prep uses. `configured` defaults to the PREP_FFMPEG setting."""
    if configured is None:
        from .settings import load_settings

        configured = load_settings().ffmpeg
    return _find(configured or None)
