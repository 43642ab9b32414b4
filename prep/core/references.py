"""Images and sound given as references (`--image STILL`, `--voice AUDIO`), judged by a model's table.

Pure: no I/O. `ReferenceFile` is what probing found (media/references.py); `file_problems` says,
one sentence each, what the chosen model would refuse (format, size, pixels, aspect, length).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from prep.core import rules
from prep.core.modelspec import MediaLimits, ModelSpec
from prep.core.timecode import format_ms
from prep.errors import UsageError

__all__ = [
    "KINDS",
    "ReferenceFile",
    "ReferenceKind",
    "ReferenceSpec",
    "check_references",
    "default_binding",
    "file_problems",
    "limits_for",
    "set_problems",
]

# image: a still reference (`image_urls`); audio: a standalone sound reference (wan3.0's
# `audio_urls`); voice: a voice bound to a reference (wan2.7's `model_params.voice_bindings`).
ReferenceKind = Literal["image", "audio", "voice"]
KINDS: tuple[ReferenceKind, ...] = ("image", "audio", "voice")
# How the command line names each kind (the manifest's columns are the kinds themselves).
_FLAGS: dict[str, str] = {"image": "--image", "audio": "--audio-ref", "voice": "--voice"}
# A voice binding's key: `video1`, `image2` (1-based, no leading zero), as the API spells it.
_BINDING = re.compile(r"(video|image)([1-9][0-9]*)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferenceSpec:
    """A reference file a job names (besides its clips): what it is, and for a voice, what it
    speaks for (`video1`, `image2`: a key of `model_params.voice_bindings`)."""

    kind: ReferenceKind
    path: Path
    binds: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """The JSON shape (journal, `--json`)."""
        return {"kind": self.kind, "path": str(self.path), "binds": self.binds}


def default_binding(index: int) -> str:
    """What the `index`-th (0-based) voice binds to when not told: the video at its position."""
    return f"video{index + 1}"


def check_references(spec: ModelSpec, refs: Sequence[ReferenceSpec], videos: int, *,
                     manifest: bool = False) -> None:
    """UsageError (exit 2) for the first thing about a job's references (besides each file's
    own limits) the model refuses: a kind it does not take (naming the flag), too many of a
    kind, videos and images together beyond its range, a voice bound to no reference or twice."""
    for kind in KINDS:
        given = [r for r in refs if r.kind == kind]
        if not given:
            continue
        name = kind if manifest else _FLAGS[kind]
        limits = limits_for(spec, kind)
        if limits is None:
            takers = [m.id for m in rules.MODEL_SPECS if limits_for(m, kind) is not None]
            raise UsageError(f"{name} is not taken by {spec.id}",
                             hint=f"drop {name}, or choose --model {' / '.join(takers)}")
        if len(given) > limits.count.high:
            raise UsageError(f"{len(given)} {name} references; {spec.id} takes at most "
                             f"{limits.count.high}", hint=f"give at most {limits.count.high}")
    images = sum(1 for r in refs if r.kind == "image")
    if spec.references is not None and videos + images not in spec.references:
        raise UsageError(f"{videos} clips and {images} images; {spec.id} takes "
                         f"{spec.references.text()} of them together",
                         hint="give fewer images or clips")
    bound: set[str] = set()
    for ref in refs:
        if ref.kind != "voice":
            continue
        key = ref.binds or ""
        match = _BINDING.fullmatch(key)
        if match is None:
            raise UsageError(f"{ref.path.name}: the voice binds to {key!r}, not a reference",
                             hint="bind it to video1, video2... or image1, image2... "
                                  "(--voice-for)")
        count = videos if match[1] == "video" else images
        if int(match[2]) > count:
            raise UsageError(f"{ref.path.name}: the voice binds to {key}, but the job has "
                             f"{count} {match[1]}{'' if count == 1 else 's'}",
                             hint="bind it to a reference the job has (--voice-for)")
        if key in bound:
            raise UsageError(f"two voices bind to {key}", hint="bind each voice to another "
                             "reference (--voice-for)")
        bound.add(key)


def set_problems(spec: ModelSpec, files: Sequence[ReferenceFile]) -> list[str]:
    """What the model refuses about several files of a kind together (wan3.0: at most 15 s of
    standalone audio in total)."""
    problems = []
    for kind in KINDS:
        limits = limits_for(spec, kind)
        given = [f for f in files if f.kind == kind and f.duration_ms is not None]
        if limits is None or limits.total_ms is None or not given:
            continue
        total = sum(f.duration_ms or 0 for f in given)
        if total > limits.total_ms:
            problems.append(f"the {kind} references last {format_ms(total)} s together; "
                            f"{spec.id} takes at most {format_ms(limits.total_ms)} s (trim them by "
                            f"{format_ms(total - limits.total_ms)} s)")
    return problems


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
        takers = " / ".join(m.id for m in rules.MODEL_SPECS if limits_for(m, ref.kind) is not None)
        return [f"{name}: {spec.id} takes no {ref.kind} references (choose --model {takers})"]
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
                        "(cut it to that length)")
    return problems
