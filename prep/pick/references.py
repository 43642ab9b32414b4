"""References made from footage: the clip's own speech as a voice, and a still of its best face.

wan2.7 binds a voice (1-10 s of wav or mp3) to a reference, and wan3.0 takes images and sound as
references of their own. An editor rarely has those files at hand, but the clip has both: the
analysis `prep pick` and `prep check` already make (one decode pass) says where someone speaks and
where a face is largest. The choosers are pure functions of that analysis; `make_voice` and
`make_still` are the thin ffmpeg edge that cuts the file.
"""

from __future__ import annotations

from pathlib import Path

from prep.core.modelspec import Span
from prep.media.ffmpeg import FfmpegBinary, run, safe_path
from prep.pick.analyze import SPEECH_CHUNK_MS, Analysis
from prep.pick.choose import SPEECH_THRESHOLD

__all__ = ["choose_still_ms", "choose_voice", "make_still", "make_voice"]

# A pause shorter than this inside speech is kept (breaths between words).
_PAUSE_MS = 400


def choose_voice(analysis: Analysis, span: Span) -> tuple[int, int] | None:
    """(start ms, end ms) in the clip of its longest stretch of speech, cut to `span`'s longest
    (the model's voice range, ms); None when no stretch reaches `span`'s shortest."""
    runs: list[list[int]] = []  # [start, end] of each stretch of speech, short pauses bridged
    for index, probability in enumerate(analysis.speech):
        if probability < SPEECH_THRESHOLD:
            continue
        at = analysis.start_ms + index * SPEECH_CHUNK_MS
        if runs and at - runs[-1][1] <= _PAUSE_MS:
            runs[-1][1] = at + SPEECH_CHUNK_MS
        else:
            runs.append([at, at + SPEECH_CHUNK_MS])
    if not runs:
        return None
    start, end = max(runs, key=lambda r: (r[1] - r[0], -r[0]))
    if end - start < span.low:
        return None
    return start, min(end, start + span.high)


def choose_still_ms(analysis: Analysis) -> int | None:
    """When in the clip exactly one face is largest (and sharpest, where measured); None when no
    sample holds exactly one face."""
    single = [s for s in analysis.face_samples if len(s.faces) == 1]
    if not single:
        return None
    best = max(single, key=lambda s: (s.faces[0].height, s.sharpness or 0.0, -s.time_ms))
    return best.time_ms


def make_voice(src: Path, out: Path, window: tuple[int, int], binary: FfmpegBinary) -> Path:
    """Cut `window` of `src`'s sound into a mono 48 kHz WAV at `out` (written then renamed)."""
    start, end = window
    tmp = out.with_name(f".{out.name}.part.wav")
    run(["-ss", f"{start / 1000:.3f}", "-t", f"{(end - start) / 1000:.3f}", "-i", safe_path(src),
         "-vn", "-ac", "1", "-ar", "48000", "-c:a", "pcm_s16le", safe_path(tmp)],
        total_ms=end - start, path=src, binary=binary)
    tmp.replace(out)
    return out


def make_still(src: Path, out: Path, time_ms: int, binary: FfmpegBinary) -> Path:
    """The frame of `src` at `time_ms` as a PNG at `out`, square pixels, upright."""
    tmp = out.with_name(f".{out.name}.part.png")
    run(["-ss", f"{time_ms / 1000:.3f}", "-i", safe_path(src), "-frames:v", "1",
         "-vf", "scale=iw*sar:ih,setsar=1", "-update", "1", safe_path(tmp)],
        total_ms=1, path=src, binary=binary)
    tmp.replace(out)
    return out
