"""Images and sound given as references (`--image STILL`, `--voice AUDIO`), judged by a model's table.

Pure: no I/O. `ReferenceFile` is what probing found (media/references.py); `file_problems` says,
one sentence each, what the chosen model would refuse (format, size, pixels, aspect, length).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from prep.core.modelspec import MediaLimits, ModelSpec
from prep.core.timecode import format_ms

__all__ = ["ReferenceFile", "ReferenceKind", "file_problems", "limits_for"]

# image: a still reference (`image_urls`); audio: a standalone sound reference (wan3.0's
# `audio_urls`); voice: a voice bound to a reference (wan2.7's `model_params.voice_bindings`).
ReferenceKind = Literal["image", "audio", "voice"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferenceFile:
    """A probed image or sound file."""

    path: Path
    kind: ReferenceKind
    format: str  # lower-case file format: png, jpeg, webp, bmp, mp3, wav...
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    alpha: bool = False  # a PNG with transparency (refused: the pages take PNG without it)


def limits_for(spec: ModelSpec, kind: ReferenceKind) -> MediaLimits | None:
    """The model's limits for a kind of reference, or None when it takes none of that kind."""
    return {"image": spec.images, "audio": spec.audio, "voice": spec.voices}[kind]


def file_problems(spec: ModelSpec, ref: ReferenceFile) -> list[str]:
    """Every rule of `spec` this file breaks, each naming the file, the limit and the fix."""
    name = ref.path.name
    limits = limits_for(spec, ref.kind)
    if limits is None:
        takers = {"image": "wan2.7 or wan3.0", "audio": "wan3.0", "voice": "wan2.7"}[ref.kind]
        return [f"{name}: {spec.id} takes no {ref.kind} references (choose {takers} with --model)"]
    problems = []
    if limits.formats and ref.format not in limits.formats:
        problems.append(f"{name} is {ref.format}; {spec.id} takes {', '.join(limits.formats)} "
                        f"{ref.kind}s (convert it)")
    if ref.alpha:
        problems.append(f"{name} has transparency; {spec.id} takes PNG without it (flatten it)")
    if limits.max_bytes is not None and ref.size_bytes > limits.max_bytes:
        problems.append(f"{name} is {ref.size_bytes:,} bytes; {spec.id} takes at most "
                        f"{limits.max_bytes:,} (make it smaller)")
    if limits.side_px is not None and ref.width and ref.height and not (
            ref.width in limits.side_px and ref.height in limits.side_px):
        problems.append(f"{name} is {ref.width}x{ref.height}; {spec.id} takes "
                        f"{limits.side_px.text(' px')} a side (resize it)")
    if limits.aspect is not None and ref.width and ref.height and not (
            limits.aspect[0] <= Fraction(ref.width, ref.height) <= limits.aspect[1]):
        problems.append(f"{name} is {ref.width}x{ref.height}, beyond 1:8 to 8:1 (crop it)")
    span = limits.duration_ms
    if span is not None and ref.duration_ms is not None and not span.low <= ref.duration_ms <= span.high:
        problems.append(f"{name} is {format_ms(ref.duration_ms)} s; {spec.id} takes "
                        f"{format_ms(span.low)} to {format_ms(span.high)} s {ref.kind}s "
                        "(trim it: NAME@START-END)")
    return problems
