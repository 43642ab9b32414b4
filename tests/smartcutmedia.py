"""The smart cut's test media, shared by tests/test_smartcut.py (proof in ffmpeg) and
tests/test_smartcut_browser.py (proof in Chromium): x264 sources cached by recipe, the cut made
by `prepare`, and ffmpeg's decoding of a file as one hash per frame."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mediagen import ffmpeg_exe, make

from prep.media.prepare import PrepareOptions, PrepResult, prepare

RATE = 30
# 1.3-4.5 s of a 5 s source with a keyframe every second: 96 frames, of which 21 (head) and 15
# (tail) are re-encoded and the 60 between the keyframes at 2 s and 4 s are copied.
WINDOW = "@1.3-4.5"
WINDOW_FRAMES = 96


def source(name: str, video: list[str]) -> Path:
    """5 s of 320x180 at 30 fps with a keyframe every second, B-frames, and AAC audio."""
    return make(f"smartcut-{name}", [
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={RATE}:duration=5",
        "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=5", *video,
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-movflags", "+faststart"])


def x264(extra: str = "") -> list[str]:
    """x264 with B-frames and one-second closed GOPs; `extra` adds to its -x264-params."""
    return ["-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "30",
            "-x264-params", f"scenecut=0{extra}"]


# Another encoder than x264 (as phones' and cameras' hardware encoders are): no x264 settings in
# the stream, Constrained Baseline, a keyframe every second.
OPENH264 = ["-c:v", "libopenh264", "-g", "30"]
# The sources smart-cut in ffmpeg and in Chromium, by name: x264's; OpenH264's; and x264's with
# its settings (the SEI that records them) stripped: CABAC High with B-frames from an encoder
# prep cannot match, as a phone's footage looks to it.
SOURCES = {"x264": x264(), "openh264": OPENH264,
           "x264-unmarked": [*x264(), "-bsf:v", "filter_units=remove_types=6"]}


def prepare_one(out_dir: Path, spec: str) -> PrepResult:
    """`prepare` one clip spec into `out_dir`, uncached; it must produce an output."""
    (result,) = prepare([spec], out_dir, PrepareOptions(use_cache=False, ffmpeg=""))
    assert result.output is not None
    return result


def frame_hashes(path: Path, *args: str) -> list[tuple[int, str]]:
    """(pts, SHA-256 of the yuv420p picture) of each frame ffmpeg decodes from `path`'s video, in
    presentation order; any decoding error fails the test. `args` go before `-i`."""
    done = subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", *args, "-i", str(path),
                           "-map", "0:v", "-f", "framehash", "-hash", "sha256", "-"],
                          capture_output=True, text=True, check=True)
    assert done.stderr.strip() == ""
    rows = [[f.strip() for f in line.split(",")] for line in done.stdout.splitlines()
            if line and not line.startswith("#")]
    return [(int(r[2]), r[5]) for r in rows]
