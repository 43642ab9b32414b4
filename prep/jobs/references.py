"""A job's references besides its clips: made from footage where asked, probed, judged, keyed.

`--image STILL`, `--audio-ref SOUND` and `--voice SOUND` (and the manifest's `image`, `audio` and
`voice` columns) name files; `--image-from CLIP` and `--voice-from CLIP` (or a clip given where a
voice is asked for) name footage that a still or a voice is made from, once, into the output
folder (`references/`), and reused by the next run while the footage is unchanged. Every file is
then probed and judged by the chosen model's table (`prep.core.references`) before anything is
encoded or uploaded; the first problem is a UsageError (exit 2) naming the file, the limit and
the fix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from prep.core.clipspec import VIDEO_EXTENSIONS
from prep.core.modelspec import ModelSpec
from prep.core.references import (
    ReferenceFile,
    ReferenceKind,
    ReferenceSpec,
    check_references,
    file_problems,
    limits_for,
    set_problems,
)
from prep.errors import MediaError, UsageError
from prep.files import file_sha256
from prep.jobs.journal import RefFile
from prep.jobs.layout import made_reference_path

__all__ = ["REFERENCE_KEY_PREFIX", "PlannedReference", "is_footage", "judge_files", "judge_references",
           "make_reference", "resolve_references"]

# The journal's rows of reference files start so (a clip's key is plain hex).
REFERENCE_KEY_PREFIX = "ref-"


def is_footage(path: Path) -> bool:
    """Whether a file named as a reference is footage to make it from (a video, by the same
    extensions a clip folder is read by): a voice given so takes the clip's own speech."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedReference:
    """A reference file judged fit for the job's model: what it is and its content's checksum."""

    spec: ReferenceSpec
    file: ReferenceFile
    sha256: str

    @property
    def key(self) -> str:
        """Its row in the journal's clips: by kind and content, so the same file is one upload."""
        raw = f"{self.spec.kind}:{self.sha256}".encode()
        return REFERENCE_KEY_PREFIX + hashlib.sha256(raw).hexdigest()[:28]

    def journal_row(self) -> RefFile:
        """How the journal links it to its job."""
        return RefFile(kind=self.spec.kind, key=self.key, path=str(self.spec.path.resolve()),
                       sha256=self.sha256, size_bytes=self.file.size_bytes,
                       duration_ms=self.file.duration_ms or 0, binds=self.spec.binds)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape in `--json` outputs."""
        return {**self.spec.as_dict(), "format": self.file.format,
                "size_bytes": self.file.size_bytes, "width": self.file.width,
                "height": self.file.height,
                "duration_s": None if self.file.duration_ms is None else self.file.duration_ms / 1000,
                "sha256": self.sha256}


def judge_references(spec: ModelSpec, refs: Sequence[ReferenceSpec], videos: int, *,
                     manifest: bool = False) -> tuple[PlannedReference, ...]:
    """Probe each file and judge it (and them together) by `spec`: UsageError (exit 2) for the
    first rule broken, MediaError (exit 3) for a file that cannot be read as its kind."""
    if not refs:
        return ()
    check_references(spec, refs, videos, manifest=manifest)
    return judge_files(spec, refs)


def judge_files(spec: ModelSpec, refs: Sequence[ReferenceSpec]) -> tuple[PlannedReference, ...]:
    """Probe each file and judge it, and those of a kind together, by `spec` (what
    `judge_references` does once the whole set's kinds, counts and bindings have passed)."""
    from prep.media.references import probe_reference

    files = [probe_reference(r.path, r.kind) for r in refs]
    problems = [p for f in files for p in file_problems(spec, f)] + set_problems(spec, list(files))
    if problems:
        raise UsageError(problems[0], hint="" if len(problems) == 1
                         else f"and {len(problems) - 1} more problem(s) with the references")
    return tuple(PlannedReference(spec=r, file=f, sha256=file_sha256(r.path))
                 for r, f in zip(refs, files, strict=True))


def _made_key(clip: Path, kind: ReferenceKind, spec: ModelSpec) -> str:
    path = clip.resolve()
    try:
        stat = path.stat()
    except OSError as err:
        raise MediaError(path, f"cannot be read ({err.strerror or err})", hint="check the path") from err
    limits = limits_for(spec, kind)
    span = limits.duration_ms if limits is not None else None
    raw = json.dumps([str(path), stat.st_size, stat.st_mtime_ns, kind,
                      None if span is None else [span.low, span.high]])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def make_reference(kind: ReferenceKind, clip: Path, out_dir: Path, spec: ModelSpec, *,
                   ffmpeg: str | None = None) -> Path:
    """A voice (kind 'voice' or 'audio': the clip's longest speech, as long as the model takes,
    as WAV) or a still (kind 'image': the frame of its largest single face, as PNG) made from
    `clip` into `out_dir`'s references folder; the file made by an earlier run of the same footage
    is reused. UsageError (exit 2) when the clip has no such speech or face; MediaError (exit 3)
    when it cannot be analysed (the `pick` extra missing included)."""
    limits = limits_for(spec, kind)
    if limits is None:
        flag = "--image-from" if kind == "image" else "--voice-from"
        raise UsageError(f"{flag} is not taken by {spec.id}",
                         hint=f"drop {flag}, or choose a model that takes {kind} references")
    out = made_reference_path(out_dir, _made_key(clip, kind, spec),
                              ".png" if kind == "image" else ".wav")
    if out.is_file():
        return out
    from prep.media.ffmpeg import find_ffmpeg
    from prep.pick.analyze import analyze, require_extras
    from prep.pick.references import choose_still_ms, choose_voice, make_still, make_voice

    require_extras(clip)
    analysis = analyze(clip, ffmpeg=ffmpeg)
    out.parent.mkdir(parents=True, exist_ok=True)
    binary = find_ffmpeg(ffmpeg)
    if kind == "image":
        at = choose_still_ms(analysis)
        if at is None:
            raise UsageError(f"{clip.name}: no frame shows exactly one face to make a still of",
                             hint="give a still with --image")
        return make_still(clip, out, at, binary)
    span = limits.duration_ms
    assert span is not None
    window = choose_voice(analysis, span)
    if window is None:
        raise UsageError(f"{clip.name}: no stretch of speech lasts {span.low / 1000:g} s or more "
                         "to make a voice of", hint="give a wav or mp3 voice with --voice")
    return make_voice(clip, out, window, binary)


def resolve_references(refs: Sequence[ReferenceSpec], out_dir: Path, spec: ModelSpec, *,
                       videos: int, ffmpeg: str | None = None, manifest: bool = False
                       ) -> tuple[ReferenceSpec, ...]:
    """The job's references with each one given as footage replaced by the file made from it
    (see `make_reference`), after the model's table has accepted their kinds, counts and
    bindings (so a refused job makes nothing)."""
    check_references(spec, refs, videos, manifest=manifest)
    for ref in refs:
        if not ref.path.is_file():
            raise MediaError(ref.path, "no such file" if not ref.path.exists() else "is a folder",
                             hint="check the path")
    return tuple(replace(r, path=make_reference(r.kind, r.path, out_dir, spec, ffmpeg=ffmpeg))
                 if is_footage(r.path) else r for r in refs)
