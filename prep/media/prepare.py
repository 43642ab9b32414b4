"""Prepare: clip specs in, compliant mp4s out. The library's `prepare`.

Per clip: probe, read the sample tables (raw durations, keyframes), plan (copy / remux /
transcode), then carry the plan out into a temp file beside the target, verify the result by
probing it (container, codec, durations on every track, size), and only then rename it into
place. An output over its size budget is redone at a lower rate. Finished re-encodes are kept in a
content-addressed cache (source identity + plan), so preparing the same clip again is a copy.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from prep.core import rules
from prep.core.clipinfo import ClipInfo
from prep.core.clipspec import ClipSpec, expand_paths, parse_clip_spec
from prep.core.plan import (
    CUT_REASON,
    DEFAULT_PROFILE,
    Extend,
    PlanOptions,
    PrepPlan,
    Profile,
    SourceFacts,
    plan,
    tighten,
)
from prep.errors import FfmpegError, MediaError, PrepError
from prep.media.probe import probe

from .mp4 import Mp4Info, read_mp4

__all__ = [
    "PrepResult",
    "PrepareOptions",
    "ProgressFn",
    "check_out_dir",
    "plan_clip",
    "prepare",
    "prepare_each",
]

# (clip label, done_ms, total_ms): how far the current clip has got.
ProgressFn = Callable[[str, int, int], None]
# Bump when the way outputs are made changes, so old cache entries are not reused.
CACHE_SCHEME = 1
CACHE_LIMIT_BYTES = 4_000_000_000
MAX_ATTEMPTS = 3
_MP4_LIKE = ("mp4", "mov", "m4v")


@dataclass(frozen=True, slots=True, kw_only=True)
class PrepareOptions:
    """How `prepare` works on every clip (defaults are the CLI's)."""

    profile: Profile = DEFAULT_PROFILE
    max_size_bytes: int = rules.MAX_FILE_BYTES
    extend: Extend | None = None
    use_cache: bool = True
    cache_dir: Path | None = None  # None: the settings' cache_dir
    ffmpeg: str | None = None  # None: the settings' ffmpeg (PREP_FFMPEG, PATH, bundled)

    def plan_options(self, spec: ClipSpec) -> PlanOptions:
        """The planner's options for one clip."""
        return PlanOptions(window=spec.window, label=str(spec), extend=self.extend,
                           profile=self.profile, max_size_bytes=self.max_size_bytes)


@dataclass(frozen=True, slots=True, kw_only=True)
class PrepResult:
    """One prepared clip: where it came from, what was done, and the verified output."""

    spec: ClipSpec
    source: ClipInfo
    plan: PrepPlan
    output: Path | None  # None for a dry run
    output_info: ClipInfo | None
    cached: bool = False
    elapsed_s: float = 0.0
    attempts: int = 0

    @property
    def action(self) -> str:
        """copy, remux or transcode (a remux may re-encode the audio: see `plan.audio_action`)."""
        return self.plan.action

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `prep prepare --json` (contract: extend, never rename)."""
        out = self.output_info
        return {
            "source": str(self.spec),
            "source_path": str(self.source.path),
            "output": str(self.output) if self.output else None,
            "action": self.plan.action,
            "video_action": self.plan.video_action,
            "audio_action": self.plan.audio_action,
            "duration_s": (out.duration_ms if out else self.plan.duration_ms) / 1000,
            "size_bytes": out.size_bytes if out else None,
            "video_duration_s": _seconds(out.video_duration_ms) if out else None,
            "audio_duration_s": _seconds(out.audio_duration_ms) if out else None,
            "width": out.display_size[0] if out else None,
            "height": out.display_size[1] if out else None,
            "source_duration_s": self.source.duration_ms / 1000,
            "source_size_bytes": self.source.size_bytes,
            "start_s": self.plan.start_ms / 1000,
            "end_s": self.plan.end_ms / 1000,
            "profile": self.plan.profile,
            "reasons": list(self.plan.reasons),
            "notes": list(self.plan.notes),
            "cached": self.cached,
            "elapsed_s": round(self.elapsed_s, 3),
            "dry_run": self.output is None,
        }


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def _specs(clips: Sequence[ClipSpec | str | Path]) -> list[ClipSpec]:
    specs = [c if isinstance(c, ClipSpec) else parse_clip_spec(str(c)) for c in clips]
    return expand_paths(specs)


# --- planning --------------------------------------------------------------------------------

def _facts(info: ClipInfo) -> SourceFacts:
    if info.container not in _MP4_LIKE:
        return SourceFacts()
    try:
        mp4 = read_mp4(info.path)
    except (OSError, ValueError, IndexError):
        # struct errors inside a damaged table surface as ValueError/IndexError: no facts then,
        # and the planner errs on the side of re-encoding.
        return SourceFacts(edit_list=True)
    return _facts_from(mp4)


def _facts_from(mp4: Mp4Info) -> SourceFacts:
    video, audio = mp4.track("vide"), mp4.track("soun")
    raw = tuple(t.duration_ms for t in (video, audio) if t is not None)
    keyframes = video.keyframe_ms if video else None
    if video is not None and keyframes is None:
        keyframes = ()  # every frame a keyframe: the planner treats any frame as a cut point
    return SourceFacts(keyframes_ms=keyframes, raw_durations_ms=raw,
                       edit_list=mp4.has_edit_list and any(t.kind == "vide" and t.has_edit_list
                                                           for t in mp4.tracks),
                       raw_video_ms=video.duration_ms if video else None,
                       raw_audio_ms=audio.duration_ms if audio else None,
                       video_bytes=video.media_bytes if video else None)


def plan_clip(spec: ClipSpec, options: PrepareOptions = PrepareOptions(),
              *, reencode: bool = False) -> tuple[ClipInfo, PrepPlan]:
    """Probe one clip and plan it. MediaError when it cannot be made compliant."""
    info = probe(spec.path)
    facts = _facts(info)
    opts = replace(options.plan_options(spec), reencode=reencode)
    result = plan(info, opts, facts)
    if (result.action == "transcode" and CUT_REASON in result.reasons
            and facts.keyframes_ms is None
            and plan(info, opts, replace(facts, keyframes_ms=(result.start_ms, result.end_ms)))
            .action != "transcode"):
        # Not an mp4, and the video could be copied if the cut fell on keyframes: only now
        # ask ffmpeg where the keyframes are.
        from prep.media.ffmpeg import keyframes_ms

        facts = replace(facts, keyframes_ms=keyframes_ms(info.path, binary=_binary(options)))
        result = plan(info, opts, facts)
    return info, result


def _binary(options: PrepareOptions) -> Any:
    from prep.media.ffmpeg import find_ffmpeg

    return find_ffmpeg(options.ffmpeg)


# --- carrying it out -------------------------------------------------------------------------

def prepare_each(
    clips: Sequence[ClipSpec | str | Path], out_dir: Path | str,
    options: PrepareOptions = PrepareOptions(), *, on_progress: ProgressFn | None = None,
    dry_run: bool = False,
) -> Iterator[PrepResult | PrepError]:
    """Prepare each clip in turn; a clip that fails yields its error and the others go on.

    KeyboardInterrupt stops ffmpeg, removes the temp file and propagates.
    """
    specs = _specs(clips)
    out = Path(out_dir)
    if not dry_run:
        check_out_dir(out)
    used: set[str] = set()
    for spec in specs:
        started = time.monotonic()
        try:
            info, clip_plan = plan_clip(spec, options)
            target = out / _output_name(spec, out, used)
            if dry_run:
                yield PrepResult(spec=spec, source=info, plan=clip_plan, output=None,
                                 output_info=None)
                continue
            yield _carry_out(spec, info, clip_plan, target, options, on_progress, started)
        except PrepError as err:
            yield err


def prepare(
    clips: Sequence[ClipSpec | str | Path], out_dir: Path | str,
    options: PrepareOptions = PrepareOptions(), *, on_progress: ProgressFn | None = None,
) -> list[PrepResult]:
    """Prepare every clip into `out_dir`; raises the first clip's error after trying them all."""
    results: list[PrepResult] = []
    errors: list[PrepError] = []
    for outcome in prepare_each(clips, out_dir, options, on_progress=on_progress):
        (errors if isinstance(outcome, PrepError) else results).append(outcome)  # type: ignore[arg-type]
    if errors:
        raise errors[0]
    return results


def check_out_dir(out: Path) -> None:
    """Make `out` if needed and prove it can be written; MediaError (exit 3) naming it if not."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe_file = out / f".prep-write-test-{os.getpid()}"
        probe_file.write_bytes(b"")
        probe_file.unlink()
    except OSError as err:
        raise MediaError(out, f"the output folder cannot be written ({err.strerror or err})",
                         hint="choose another folder with -o, or fix its permissions") from err


def _output_name(spec: ClipSpec, out: Path, used: set[str]) -> str:
    """`<source name>.mp4`; `-2`, `-3`... when two clips of this run would share a name, and
    `.prep.mp4` when the output would overwrite its own source."""
    stem = spec.path.stem or "clip"
    candidate = f"{stem}.mp4"
    with contextlib.suppress(OSError):
        if (out / candidate).resolve() == spec.path.resolve():
            candidate = f"{stem}.prep.media.mp4"
    base = candidate[:-4]
    number = 2
    while candidate.lower() in used:
        candidate = f"{base}-{number}.mp4"
        number += 1
    used.add(candidate.lower())
    return candidate


def _temp_beside(target: Path) -> Path:
    return target.with_name(f".{target.stem}.{os.getpid()}.part.mp4")


def _carry_out(spec: ClipSpec, info: ClipInfo, clip_plan: PrepPlan, target: Path,
               options: PrepareOptions, on_progress: ProgressFn | None,
               started: float) -> PrepResult:
    label = str(spec)
    tmp = _temp_beside(target)
    try:
        if clip_plan.action == "copy":
            _write_guarded(target, lambda: shutil.copyfile(info.path, tmp))
            if on_progress:
                on_progress(label, clip_plan.duration_ms, clip_plan.duration_ms)
            _replace(tmp, target)
            return PrepResult(spec=spec, source=info, plan=clip_plan, output=target,
                              output_info=replace(info, path=target),
                              elapsed_s=time.monotonic() - started)
        key = _cache_key(info, clip_plan)
        cache_file = _cache_path(options, key)
        if cache_file is not None and cache_file.is_file():
            _write_guarded(target, lambda: shutil.copyfile(cache_file, tmp))
            with contextlib.suppress(OSError):
                os.utime(cache_file)
            out_info = _verify(tmp, clip_plan, label)
            if on_progress:
                on_progress(label, clip_plan.duration_ms, clip_plan.duration_ms)
            _replace(tmp, target)
            return PrepResult(spec=spec, source=info, plan=clip_plan, output=target,
                              output_info=replace(out_info, path=target), cached=True,
                              elapsed_s=time.monotonic() - started)
        final_plan, out_info, attempts = _encode(spec, info, clip_plan, tmp, options, on_progress)
        if cache_file is not None:
            _store(tmp, cache_file)
        _replace(tmp, target)
        return PrepResult(spec=spec, source=info, plan=final_plan, output=target,
                          output_info=replace(out_info, path=target), attempts=attempts,
                          elapsed_s=time.monotonic() - started)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _encode(spec: ClipSpec, info: ClipInfo, clip_plan: PrepPlan, tmp: Path,
            options: PrepareOptions, on_progress: ProgressFn | None
            ) -> tuple[PrepPlan, ClipInfo, int]:
    """Run the plan until the output verifies: a stream copy that fails the checks is redone as
    a re-encode, and a re-encode over its size budget is redone at a lower rate."""
    from prep.media.ffmpeg import build_args, run

    label = str(spec)
    binary = _binary(options)
    current = clip_plan
    for attempt in range(1, MAX_ATTEMPTS + 1):
        args = build_args(current, info.path, tmp)
        progress = functools.partial(on_progress, label) if on_progress else None
        _write_guarded(tmp, functools.partial(run, args, total_ms=current.duration_ms, path=label,
                                              on_progress=progress, binary=binary))
        try:
            return current, _verify(tmp, current, label), attempt
        except _OverSize as over:
            if current.video is None:
                current = plan_clip(spec, options, reencode=True)[1]
            else:
                current = tighten(current, over.size_bytes)
        except MediaError:
            if current.action == "transcode":
                raise
            current = plan_clip(spec, options, reencode=True)[1]
    raise MediaError(label, f"could not be brought under {clip_plan.max_size_bytes:,} bytes",
                     hint="raise --max-size-mb or cut it shorter")


class _OverSize(MediaError):
    def __init__(self, path: str, size_bytes: int, limit: int) -> None:
        super().__init__(path, f"came out at {size_bytes:,} bytes, over {limit:,}")
        self.size_bytes = size_bytes


def _verify(path: Path, clip_plan: PrepPlan, label: str) -> ClipInfo:
    """Probe an output: an mp4 with H.264, every track inside 2-30 s (edit lists ignored), no
    rotation flag, and under the size limit. MediaError / _OverSize otherwise."""
    try:
        out = probe(path)
        raw = _facts_from(read_mp4(path))
    except (MediaError, ValueError, IndexError) as err:
        raise FfmpegError(label, f"the output could not be verified ({err})") from err
    durations = out.durations_ms + raw.raw_durations_ms
    problems = []
    if out.container != "mp4" or out.video_codec != "h264":
        problems.append(f"came out as {out.container}/{out.video_codec}")
    if min(durations) < rules.MIN_CLIP_MS or max(durations) > rules.MAX_CLIP_MS:
        problems.append(f"came out {min(durations)}-{max(durations)} ms long")
    if out.rotation:
        problems.append("kept a rotation flag")
    if clip_plan.has_audio and not out.has_audio:
        problems.append("lost its audio")
    if clip_plan.audio is not None and (out.audio_codec, out.audio_rate, out.audio_channels) != (
            "aac", clip_plan.audio.rate, clip_plan.audio.channels):
        problems.append(f"has {out.audio_codec} {out.audio_rate} Hz {out.audio_channels}-channel "
                        "audio, not the AAC planned")
    video, audio = raw.raw_video_ms, raw.raw_audio_ms
    if clip_plan.video is None and clip_plan.audio is not None and video is not None \
            and audio is not None and audio > video + 1:
        # Re-encoded audio beside copied video is cut to the video's length: never past it.
        problems.append(f"has audio ({audio} ms) running past its video ({video} ms)")
    if problems:
        raise MediaError(label, "the prepared file " + "; ".join(problems))
    if out.size_bytes > clip_plan.max_size_bytes:
        raise _OverSize(label, out.size_bytes, clip_plan.max_size_bytes)
    return out


def _write_guarded(target: Path, action: Callable[[], object]) -> None:
    """Run a write; a full disk or an unwritable folder becomes a MediaError naming `target`."""
    try:
        action()
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise MediaError(target, "the disk is full (or a file size limit was hit)",
                             hint="free some space or choose another -o folder") from err
        raise MediaError(target, f"could not be written ({err.strerror or err})",
                         hint="check the output folder") from err


def _replace(tmp: Path, target: Path) -> None:
    _write_guarded(target, lambda: os.replace(tmp, target))


# --- the cache of finished outputs -----------------------------------------------------------

def _cache_key(info: ClipInfo, clip_plan: PrepPlan) -> str:
    """Source identity (real path, size, mtime) plus the plan: a changed file or plan misses."""
    stat = info.path.stat()
    identity = {"scheme": CACHE_SCHEME, "path": str(info.path.resolve()), "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns, "plan": {**clip_plan.as_dict(), "source": None}}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def _cache_path(options: PrepareOptions, key: str) -> Path | None:
    if not options.use_cache:
        return None
    folder = options.cache_dir
    if folder is None:
        from prep.settings import load_settings

        folder = load_settings().cache_dir
    return folder / "prepared" / f"{key}.mp4"


def _store(output: Path, cache_file: Path) -> None:
    """Keep a copy of a verified output; the cache is best effort, never an error."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        part = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.part")
        try:
            os.link(output, part)
        except OSError:
            shutil.copyfile(output, part)
        os.replace(part, cache_file)
        _prune(cache_file.parent)
    except OSError:
        return


def _prune(folder: Path, limit_bytes: int = CACHE_LIMIT_BYTES) -> None:
    """Drop the least recently used entries once the cache holds more than `limit_bytes`."""
    entries = sorted(((p.stat().st_mtime, p.stat().st_size, p) for p in folder.glob("*.mp4")),
                     reverse=True)
    total = 0
    for _mtime, size, path in entries:
        total += size
        if total > limit_bytes:
            with contextlib.suppress(OSError):
                path.unlink()
