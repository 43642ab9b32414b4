"""Result videos: a real mp4 at the requested duration, quality and aspect ratio, made with ffmpeg.

The picture is a moving test pattern with the prompt written over it, with a tone for sound (or no
sound track at all, for a flash task asked for none). It is
cheap on purpose (ultrafast preset, high CRF) and cached by everything that changes the bytes, so
tests that ask for the same output pay for it once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import textwrap
from pathlib import Path

__all__ = ["frame_size", "render_result"]

_SHORT_SIDE = {"480p": 480, "720p": 720, "1080p": 1080}
# `adaptive` (wan3.0): the model picks a ratio; the sandbox always picks 16:9.
_RATIOS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4),
           "adaptive": (16, 9)}
_FPS = 24


def frame_size(quality: str, aspect_ratio: str) -> tuple[int, int]:
    """(width, height) of the output: the short side is 480, 720 or 1080, the long side follows."""
    short = _SHORT_SIDE[quality]
    w, h = _RATIOS[aspect_ratio]
    if w >= h:
        return short * w // h // 2 * 2, short
    return short, short * h // w // 2 * 2


def _args(ffmpeg: str, out: Path, *, duration_s: int, width: int, height: int,
          text_file: Path | None, shot_type: str, audio: bool = True) -> list[str]:
    source = "testsrc2" if shot_type == "single" else "smptehdbars"
    args = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"{source}=size={width}x{height}:rate={_FPS}:duration={duration_s}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=48000:duration={duration_s}"]
    if text_file is not None:
        size = max(18, height // 24)
        path = str(text_file).replace("\\", "/").replace(":", "\\:").replace("'", "\\'")
        args += ["-vf", f"drawtext=textfile='{path}':expansion=none:fontsize={size}:"
                        f"fontcolor=white:box=1:boxcolor=black@0.6:boxborderw={size // 2}:"
                        f"x=(w-text_w)/2:y=h-text_h-{size * 2}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "32", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-b:a", "64k"] if audio else ["-an"]
    args += ["-t", str(duration_s), "-movflags", "+faststart", "-f", "mp4", str(out)]
    return args


def render_result(
    ffmpeg: str, cache_dir: Path, *, duration_s: int, quality: str, aspect_ratio: str,
    prompt: str, shot_type: str = "single", audio: bool = True,
) -> Path:
    """The result mp4 for these settings (made once, then taken from `cache_dir`).

    Raises RuntimeError with ffmpeg's last line when it fails even without the text overlay (the
    overlay needs a font; on a machine without one the video is made without text).
    """
    width, height = frame_size(quality, aspect_ratio)
    # Results with sound keep their old cache names; silent ones get their own.
    key = repr((duration_s, width, height, prompt, shot_type, 1)
               + (() if audio else ("silent",))).encode()
    out = cache_dir / f"result-{hashlib.sha256(key).hexdigest()[:16]}.mp4"
    if out.exists():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Private names: another process sharing the cache (a test worker) may render the same result
    # at the same time; neither may delete or replace the other's overlay text or output midway.
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.{os.urandom(3).hex()}.tmp.mp4")
    text_file = tmp.with_suffix(".txt")
    lines = textwrap.wrap(" ".join(prompt.split()), width=max(20, width // 30))[:4]
    text_file.write_text("\n".join(lines or ["(no prompt)"]) + "\n", encoding="utf-8")
    error = ""
    try:
        for overlay in (text_file, None):
            proc = subprocess.run(
                _args(ffmpeg, tmp, duration_s=duration_s, width=width, height=height,
                      text_file=overlay, shot_type=shot_type, audio=audio),
                capture_output=True, text=True, errors="replace", check=False,
            )
            if proc.returncode == 0:
                os.replace(tmp, out)
                return out
            error = (proc.stderr.strip().splitlines() or ["ffmpeg failed"])[-1]
        raise RuntimeError(f"ffmpeg could not make the result video: {error}")
    finally:
        tmp.unlink(missing_ok=True)
        text_file.unlink(missing_ok=True)
