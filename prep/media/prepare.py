"""Prepare: clip specs (or clips already probed and windowed) in, compliant mp4s out.

Per clip: probe (unless given a `PlannedClip`, which carries its probe and window), read the
sample tables (raw durations, keyframes), plan (copy / remux / transcode), then carry the plan out
into a temp file beside the target, verify the result by probing it (container, codec, durations
on every track, size), and only then rename it into place. An output over its size budget is
redone at a lower rate. Finished re-encodes are kept in a cache (source identity + plan, see
`cache.py`) whose entries are copied out and checked before reuse, so preparing the same clip
again is a copy that cannot hand back anything but what was made.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from prep.core import rules
from prep.core.clipinfo import ClipInfo
from prep.core.clipspec import ClipSpec
from prep.core.modelspec import ModelSpec, Span
from prep.core.plan import (
    CUT_REASON,
    DEFAULT_PROFILE,
    PlanOptions,
    PrepPlan,
    Profile,
    SourceFacts,
    plan,
    tighten,
)
from prep.core.timecode import format_ms
from prep.core.window import DEFAULT_CLIP_MS, ClipWindow, Extend, PlannedClip
from prep.errors import FfmpegError, MediaError, PrepError
from prep.media.cache import Cache, copy_file, remove_stale_parts
from prep.media.clips import expand_paths, parse_clip_spec
from prep.media.mp4 import Mp4Info, read_mp4
from prep.media.probe import probe_with_index

__all__ = [
    "ClipInput",
    "NoteFn",
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
# A note for the user about one clip (it names the clip), as it happens; also in PrepResult.notes.
NoteFn = Callable[[str], None]
# What prepare takes: a clip spec (or its text), or a clip already probed and windowed.
ClipInput = ClipSpec | PlannedClip | str | Path
# Bump when the way outputs are made changes, so old cache entries are not reused.
# 2: entries carry a record of their size and sha256 (cache.py). 3: HDR at reference white.
CACHE_SCHEME = 3
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
    # The folder whose `prepared/` keeps finished re-encodes (`Settings.cache_dir`, passed down
    # by the caller); None: no such cache.
    cache_dir: Path | None = None
    # The configured ffmpeg (`Settings.ffmpeg`), resolved where the clip is prepared (a worker
    # finds its own); None: the one on PATH, else the bundled one.
    ffmpeg: str | None = None
    loudness_lufs: float | None = None  # normalise the audio to this loudness (EBU R128)
    # Clips worked on at once; None: two where there are two cores or more (see `workers`).
    jobs: int | None = None
    # The chosen model's clip durations and smallest picture side (`for_model`); wan2.6's 2-30 s
    # and no smallest side by default.
    clip_ms: Span = DEFAULT_CLIP_MS
    min_side_px: int = 0

    def __post_init__(self) -> None:
        if self.jobs is not None and self.jobs < 1:
            raise ValueError("jobs must be at least 1")

    def workers(self) -> int:
        """How many clips are worked on at once: `jobs`, else two on a machine with two cores
        or more. Each clip's ffmpeg decodes, filters and muxes in one thread, and x264 at
        prep's presets keeps fewer than two cores busy, so two clips side by side use the
        second core that one leaves partly idle; more would only share the same cores."""
        if self.jobs is not None:
            return self.jobs
        return min(2, os.cpu_count() or 1)

    def for_model(self, model: ModelSpec) -> PrepareOptions:
        """These options held to `model`'s reference-video rules (clip durations, smallest side)."""
        if (self.clip_ms, self.min_side_px) == (model.clip_ms, model.min_side_px):
            return self
        return replace(self, clip_ms=model.clip_ms, min_side_px=model.min_side_px)

    def plan_options(self, spec: ClipSpec) -> PlanOptions:
        """The planner's options for one clip."""
        return PlanOptions(window=spec.window, label=str(spec), extend=self.extend,
                           profile=self.profile, max_size_bytes=self.max_size_bytes,
                           loudness_lufs=self.loudness_lufs, clip_ms=self.clip_ms,
                           min_side_px=self.min_side_px)


@dataclass(frozen=True, slots=True, kw_only=True)
class PrepResult:
    """One prepared clip: where it came from, what was done, and the verified output."""

    spec: ClipSpec
    source: ClipInfo
    plan: PrepPlan
    output: Path | None  # None for a dry run
    output_info: ClipInfo | None
    cached: bool = False
    # The window was smart-cut (whole GOPs copied, only the edges re-encoded); or why a smart
    # cut the plan offered fell back to re-encoding the whole window.
    smart_cut: bool = False
    smart_cut_fallback: str | None = None
    elapsed_s: float = 0.0
    attempts: int = 0
    # What happened while carrying the plan out that the user should know (each names the
    # clip), e.g. a damaged cache entry dropped and made again. The plan's own notes are in
    # `plan.notes`; `as_dict` lists both under "notes".
    notes: tuple[str, ...] = ()

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
            "video_action": "smart-cut" if self.smart_cut else self.plan.video_action,
            "smart_cut_fallback": self.smart_cut_fallback,
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
            "notes": [*self.plan.notes, *self.notes],
            "cached": self.cached,
            "elapsed_s": round(self.elapsed_s, 3),
            "dry_run": self.output is None,
        }


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def _clips(clips: Sequence[ClipInput]) -> list[ClipSpec | PlannedClip]:
    """Specs parsed and folders expanded, in order; planned clips kept as they are."""
    out: list[ClipSpec | PlannedClip] = []
    for clip in clips:
        if isinstance(clip, PlannedClip):
            out.append(clip)
        else:
            spec = clip if isinstance(clip, ClipSpec) else parse_clip_spec(str(clip))
            out.extend(expand_paths([spec]))
    return out


# --- planning --------------------------------------------------------------------------------

def _index(info: ClipInfo, probed: Mp4Info | None = None) -> Mp4Info | None:
    """The sample tables of an mp4 / mov source: the ones its probe read, else read now. None
    for another container, or an index too damaged to read."""
    if info.container not in _MP4_LIKE:
        return None
    if probed is not None:
        return probed
    try:
        return read_mp4(info.path)
    except MediaError:
        return None


def _facts(info: ClipInfo, mp4: Mp4Info | None) -> SourceFacts:
    if info.container not in _MP4_LIKE:
        if info.hdr == "PQ":
            from prep.media.probe import hdr_peak_nits

            return SourceFacts(hdr_peak_nits=hdr_peak_nits(info.path))
        return SourceFacts()
    if mp4 is None:
        # A damaged index (MediaInfo could still read the clip): no facts then, and the
        # planner errs on the side of re-encoding, which rebuilds the index.
        return SourceFacts(edit_list=True)
    facts = _facts_from(mp4)
    if info.hdr == "PQ":
        from prep.media.probe import hdr_peak_nits

        facts = replace(facts, hdr_peak_nits=hdr_peak_nits(info.path))
    return facts


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
                       video_bytes=video.media_bytes if video else None,
                       peak_fps=Fraction(video.timescale, video.short_sample_units)
                       if video and video.timescale and video.short_sample_units else None)


@dataclass(frozen=True, slots=True)
class _Source:
    """One clip being prepared: its spec, its probe, the window chosen upstream (if any), its
    sample tables (`index`, for an mp4 / mov) and what they tell the planner, each found once."""

    spec: ClipSpec
    info: ClipInfo
    window: ClipWindow | None
    facts: SourceFacts
    index: Mp4Info | None = None

    @property
    def label(self) -> str:
        return str(self.spec)


def _source(clip: ClipSpec | PlannedClip) -> _Source:
    """Probe a spec (its sample tables kept from the probe); a PlannedClip brings its probe and
    window, so it is not probed again (its tables are read here, once)."""
    if isinstance(clip, PlannedClip):
        spec, info, window, probed = clip.spec, clip.info, clip.window, None
    else:
        (info, probed), spec, window = probe_with_index(clip.path), clip, None
    index = _index(info, probed)
    return _Source(spec, info, window, _facts(info, index), index)


def _plan(source: _Source, options: PrepareOptions, *, reencode: bool = False
          ) -> tuple[_Source, PrepPlan]:
    """Plan a probed clip (the window kept when it came planned). The source comes back with
    keyframes from ffmpeg when they had to be asked for."""
    info, facts = source.info, source.facts
    opts = replace(options.plan_options(source.spec), reencode=reencode)
    result = plan(info, opts, facts, window=source.window)
    if (result.action == "transcode" and CUT_REASON in result.reasons
            and facts.keyframes_ms is None
            and plan(info, opts, replace(facts, keyframes_ms=(result.start_ms, result.end_ms)),
                     window=source.window).action != "transcode"):
        # Not an mp4, and the video could be copied if the cut fell on keyframes: only now
        # ask ffmpeg where the keyframes are.
        from prep.media.ffmpeg import keyframes_ms

        facts = replace(facts, keyframes_ms=keyframes_ms(info.path, binary=_binary(options)))
        source = replace(source, facts=facts)
        result = plan(info, opts, facts, window=source.window)
    return source, result


def plan_clip(clip: ClipSpec | PlannedClip, options: PrepareOptions = PrepareOptions(),
              *, reencode: bool = False) -> tuple[ClipInfo, PrepPlan]:
    """Probe one clip and plan it (a PlannedClip is neither probed nor windowed again).
    MediaError when it cannot be made compliant."""
    source, result = _plan(_source(clip), options, reencode=reencode)
    return source.info, result


def _binary(options: PrepareOptions) -> Any:
    from prep.media.ffmpeg import find_ffmpeg

    return find_ffmpeg(options.ffmpeg)


# --- carrying it out -------------------------------------------------------------------------

def prepare_each(
    clips: Sequence[ClipInput], out_dir: Path | str,
    options: PrepareOptions = PrepareOptions(), *, on_progress: ProgressFn | None = None,
    dry_run: bool = False, on_note: NoteFn | None = None,
) -> Iterator[PrepResult | PrepError]:
    """Prepare each clip; a clip that fails yields its error and the others go on. Results come
    in the order of `clips`, while up to `options.jobs` clips are worked on at once.

    `clips` are specs (or their text), or `PlannedClip`s from estimate / plan_clips, which are
    used as probed and windowed there. `on_note` hears each note as it happens (the results
    carry them too); it and `on_progress` may be called from worker threads. KeyboardInterrupt
    stops every ffmpeg, removes the temp files and propagates.
    """
    items = _clips(clips)
    out = Path(out_dir)
    if not dry_run:
        check_out_dir(out)
        remove_stale_parts(out, _PART)
    used: set[str] = set()
    targets = [out / _output_name(item.spec if isinstance(item, PlannedClip) else item, out, used)
               for item in items]

    def one(item: ClipSpec | PlannedClip, target: Path) -> PrepResult | PrepError:
        started = time.monotonic()
        try:
            source, clip_plan = _plan(_source(item), options)
            if dry_run:
                return PrepResult(spec=source.spec, source=source.info, plan=clip_plan,
                                  output=None, output_info=None)
            return _carry_out(source, clip_plan, target, options, on_progress, on_note, started)
        except PrepError as err:
            return err

    workers = 1 if dry_run else min(options.workers(), len(items))
    if workers <= 1:
        for item, target in zip(items, targets, strict=True):
            yield one(item, target)
        return
    yield from _in_parallel(one, list(zip(items, targets, strict=True)), workers)


def _in_parallel(one: Callable[[ClipSpec | PlannedClip, Path], PrepResult | PrepError],
                 work: list[tuple[ClipSpec | PlannedClip, Path]],
                 workers: int) -> Iterator[PrepResult | PrepError]:
    """`one` over `work` in `workers` threads (ffmpeg does the work; the threads wait on it),
    yielded in order. On an interrupt (or the caller closing the iterator), clips not started
    are dropped and every running ffmpeg is killed, so each thread fails fast and removes its
    temp file, before the interrupt goes on."""
    from concurrent.futures import Future, ThreadPoolExecutor, wait

    from prep.media.ffmpeg import stop_running

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prep-prepare")
    futures: list[Future[PrepResult | PrepError]] = [pool.submit(one, *job) for job in work]
    finished = False
    try:
        for future in futures:
            yield future.result()
        finished = True
    finally:
        for future in futures:
            future.cancel()
        if not finished:
            pending = [f for f in futures if not f.done()]
            while pending:
                stop_running()  # again each round: a thread may have started its next ffmpeg
                pending = list(wait(pending, timeout=0.2).not_done)
        pool.shutdown(wait=True)


def prepare(
    clips: Sequence[ClipInput], out_dir: Path | str,
    options: PrepareOptions = PrepareOptions(), *, on_progress: ProgressFn | None = None,
    on_note: NoteFn | None = None,
) -> list[PrepResult]:
    """Prepare every clip into `out_dir`; raises the first clip's error after trying them all.

    `clips` as in `prepare_each`: specs, or PlannedClips that are not probed or windowed again.
    """
    results: list[PrepResult] = []
    errors: list[PrepError] = []
    for outcome in prepare_each(clips, out_dir, options, on_progress=on_progress,
                                on_note=on_note):
        if isinstance(outcome, PrepError):
            errors.append(outcome)
        else:
            results.append(outcome)
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
            candidate = f"{stem}.prep.mp4"
    base = candidate[:-4]
    number = 2
    while candidate.lower() in used:
        candidate = f"{base}-{number}.mp4"
        number += 1
    used.add(candidate.lower())
    return candidate


# The temp file beside each output: `.NAME.PID.part.mp4`. A prep that was killed leaves its own;
# the next prepare into that folder removes those whose process is gone.
_PART = re.compile(r"^\..+\.(\d+)\.part\.mp4$")


def _temp_beside(target: Path) -> Path:
    return target.with_name(f".{target.stem}.{os.getpid()}.part.mp4")


def _carry_out(source: _Source, clip_plan: PrepPlan, target: Path, options: PrepareOptions,
               on_progress: ProgressFn | None, on_note: NoteFn | None,
               started: float) -> PrepResult:
    label, info, spec = source.label, source.info, source.spec
    tmp = _temp_beside(target)
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        if on_note:
            on_note(text)

    def done(final_plan: PrepPlan, out_info: ClipInfo, **extra: Any) -> PrepResult:
        _replace(tmp, target)
        return PrepResult(spec=spec, source=info, plan=final_plan, output=target,
                          output_info=replace(out_info, path=target), notes=tuple(notes),
                          elapsed_s=time.monotonic() - started, **extra)

    try:
        if clip_plan.action == "copy":
            _write_guarded(target, lambda: copy_file(info.path, tmp))
            if on_progress:
                on_progress(label, clip_plan.duration_ms, clip_plan.duration_ms)
            return done(clip_plan, info)
        cache = _cache(options)
        key = _cache_key(info, clip_plan)
        # A smart cut is kept under its own key, so that a cached one is still reported as one.
        smart_key = f"{key}-smart-cut"
        entries = [(smart_key, True)] if clip_plan.smart_cut else []
        entries.append((key, False))
        if cache is not None:
            for entry, smart_hit in entries:
                out_info = _from_cache(cache, entry, tmp, target, clip_plan, label, note,
                                       _video_expected_ms(source, clip_plan))
                if out_info is not None:
                    if on_progress:
                        on_progress(label, clip_plan.duration_ms, clip_plan.duration_ms)
                    return done(clip_plan, out_info, cached=True, smart_cut=smart_hit)
        passed_over = _binary(options).note  # an ffmpeg on PATH too old for prep
        if passed_over:
            note(f"{label}: {passed_over}")
        smart, fallback = (_smart_cut(source, clip_plan, tmp, options, note, on_progress)
                           if clip_plan.smart_cut else (None, None))
        extra: dict[str, Any]
        if smart is not None:
            final_plan, out_info, extra = clip_plan, smart, {"attempts": 1, "smart_cut": True}
            store_key: str | None = smart_key
        else:
            final_plan, out_info, attempts = _encode(source, clip_plan, tmp, options, on_progress)
            extra = {"attempts": attempts}
            store_key = key
            if fallback is not None:
                extra["smart_cut_fallback"] = fallback
                store_key = None
        if final_plan.loudness is not None:  # whichever way it was made, say what it did
            note(_loudness_note(label, final_plan, tmp, options))
        if cache is not None and store_key is not None:
            cache.store(store_key, tmp)
        return done(final_plan, out_info, **extra)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _smart_cut(source: _Source, clip_plan: PrepPlan, tmp: Path, options: PrepareOptions,
               note: NoteFn, on_progress: ProgressFn | None
               ) -> tuple[ClipInfo | None, str | None]:
    """The window smart-cut into `tmp` and verified; or no output and why (also noted) when it
    could not be made or proven, and the whole window is to be re-encoded."""
    from prep.media.smartcut import smart_cut

    assert source.info.fps is not None
    why: str | None
    try:
        progress = functools.partial(on_progress, source.label) if on_progress else None
        why = smart_cut(clip_plan, source.info.path, tmp, _binary(options), source.info.fps,
                        on_progress=progress,
                        track=source.index.track("vide") if source.index else None)
        if why is None:
            return _verify(tmp, clip_plan, source.label,
                           expected_video_ms=_video_expected_ms(source, clip_plan)), None
    except PrepError as err:
        why = f"the result failed the checks ({err})"
    note(f"{source.label}: smart cut not used: {why}; the whole window is re-encoded")
    with contextlib.suppress(OSError):
        tmp.unlink()
    return None, why


def _from_cache(cache: Cache, key: str, tmp: Path, target: Path, clip_plan: PrepPlan,
                label: str, note: NoteFn, expected_video_ms: int) -> ClipInfo | None:
    """The verified output from the cache, copied to `tmp`; None (and a note when an entry was
    damaged and dropped) when it must be made."""
    problem: str | None = ""

    def fetch() -> None:
        nonlocal problem
        problem = cache.fetch(key, tmp)

    _write_guarded(target, fetch)
    if problem is None:
        try:
            return _verify(tmp, clip_plan, label, expected_video_ms=expected_video_ms)
        except MediaError as err:  # stored before a check was added, or damaged in a way
            problem = f"it no longer passes the checks ({err.problem})"  # its checksum missed
            cache.drop(key)
    if problem:
        note(f"{label}: the cached output was damaged ({problem}); prep dropped it and made the "
             "clip again")
    return None


def _encode(source: _Source, clip_plan: PrepPlan, tmp: Path,
            options: PrepareOptions, on_progress: ProgressFn | None
            ) -> tuple[PrepPlan, ClipInfo, int]:
    """Run the plan until the output verifies: a stream copy that fails the checks is redone as
    a re-encode, and a re-encode over its size budget is redone at a lower rate."""
    from prep.media.ffmpeg import build_args, run

    label, info = source.label, source.info
    binary = _binary(options)
    current = first = _measured(clip_plan, label, binary)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        current = _measured(current, label, binary, like=first)
        args = build_args(current, info.path, tmp)
        progress = functools.partial(on_progress, label) if on_progress else None
        _write_guarded(tmp, functools.partial(run, args, total_ms=current.duration_ms, path=label,
                                              on_progress=progress, binary=binary))
        try:
            out_info = _verify(tmp, current, label,
                               expected_video_ms=_video_expected_ms(source, current))
            return current, out_info, attempt
        except _SourceShort:
            raise  # the source holds less than its index says: another way of making it won't help
        except _OverSize as over:
            if current.video is None:
                current = _plan(source, options, reencode=True)[1]
            else:
                current = tighten(current, over.size_bytes)
        except MediaError:
            if current.action == "transcode":
                raise
            current = _plan(source, options, reencode=True)[1]
    raise MediaError(label, f"could not be brought under {clip_plan.max_size_bytes:,} bytes",
                     hint="raise --max-size-mb or cut it shorter")


def _measured(clip_plan: PrepPlan, label: str, binary: Any, *,
              like: PrepPlan | None = None) -> PrepPlan:
    """`clip_plan` with loudnorm's first pass done (the source's loudness measured), so that the
    encode normalises with one gain; a plan without loudness as it is. `like`: a plan measured
    before over the same range, whose figures a replanned attempt reuses."""
    from prep.media.ffmpeg import loudness_scan_args, parse_loudnorm, run

    loudness = clip_plan.loudness
    if loudness is None or loudness.measured:
        return clip_plan
    if like is not None and like.loudness is not None and like.loudness.measured and (
            like.start_ms, like.end_ms) == (clip_plan.start_ms, clip_plan.end_ms):
        return replace(clip_plan, loudness=like.loudness)
    args = loudness_scan_args(clip_plan.source, loudness, start_ms=clip_plan.start_ms,
                              duration_ms=clip_plan.end_ms - clip_plan.start_ms)
    figures = parse_loudnorm(run(args, total_ms=clip_plan.duration_ms, path=label,
                                 binary=binary).stderr)
    keys = ("input_i", "input_tp", "input_lra", "input_thresh", "target_offset")
    if not all(key in figures for key in keys) or figures["input_i"] <= -70:
        return clip_plan  # silent or unmeasurable audio: loudnorm's one pass does what it can
    return replace(clip_plan, loudness=replace(
        loudness, measured=tuple((key, figures[key]) for key in keys)))


def _loudness_note(label: str, clip_plan: PrepPlan, output: Path, options: PrepareOptions) -> str:
    """What the normalisation did, measured again on the output."""
    from prep.media.ffmpeg import loudness_scan_args, parse_loudnorm, run

    loudness = clip_plan.loudness
    assert loudness is not None
    after = parse_loudnorm(run(loudness_scan_args(output, loudness), total_ms=clip_plan.duration_ms,
                               path=label, binary=_binary(options)).stderr)
    before = dict(loudness.measured).get("input_i")
    was = f"{before:g} LUFS -> " if before is not None else ""
    if "input_i" not in after:
        return f"{label}: loudness normalised to {loudness.target_lufs:g} LUFS"
    return (f"{label}: loudness {was}{after['input_i']:g} LUFS, true peak "
            f"{after.get('input_tp', float('nan')):+g} dBTP (target {loudness.target_lufs:g} LUFS, "
            "measured on the output)")


class _OverSize(MediaError):
    def __init__(self, path: str, size_bytes: int, limit: int) -> None:
        super().__init__(path, f"came out at {size_bytes:,} bytes, over {limit:,}")
        self.size_bytes = size_bytes


class _SourceShort(MediaError):
    """ffmpeg found less media in the source than its index (and the plan) promised."""


# An output's video may end this much before the plan's end (rounding, a frame or two of a
# stream copy) before it counts as short: anything more means the source's media ran out.
_SHORT_SLACK_MS = 250


def _video_expected_ms(source: _Source, clip_plan: PrepPlan) -> int:
    """How long the output's video should be: the plan's, or less where the source's own video
    (as its index lists it) ends inside the window; the extension of a short clip included."""
    if clip_plan.extend is not None:
        return clip_plan.duration_ms
    ends = [ms for ms in (source.info.video_duration_ms, source.facts.raw_video_ms) if ms]
    video_end = min(ends, default=clip_plan.end_ms)
    return max(0, min(clip_plan.duration_ms, min(clip_plan.end_ms, video_end) - clip_plan.start_ms))


def _verify(path: Path, clip_plan: PrepPlan, label: str, *,
            expected_video_ms: int | None = None) -> ClipInfo:
    """Probe an output: an mp4 with H.264, every track inside 2-30 s (edit lists ignored), its
    video as long as `expected_video_ms` (what the source's index promised), no rotation flag,
    and under the size limit. MediaError / _SourceShort / _OverSize otherwise."""
    try:
        out, index = probe_with_index(path)
        raw = _facts_from(index if index is not None else read_mp4(path))
    except (MediaError, ValueError, IndexError) as err:
        raise FfmpegError(label, f"the output could not be verified ({err})") from err
    durations = out.durations_ms + raw.raw_durations_ms
    videos = [ms for ms in (out.video_duration_ms, raw.raw_video_ms) if ms]
    if expected_video_ms is not None and videos \
            and min(videos) < expected_video_ms - _SHORT_SLACK_MS:
        raise _SourceShort(
            label, f"the prepared file came out {format_ms(min(videos))} s long, not the "
                   f"{format_ms(expected_video_ms)} s planned: the source holds less media "
                   "than its index lists (it was cut short, or its media is damaged)",
            hint="re-export or re-copy the source; or choose a window inside the part that plays "
                 "(PATH@START-END)")
    problems = []
    if out.container != "mp4" or out.video_codec != "h264":
        problems.append(f"came out as {out.container}/{out.video_codec}")
    span = clip_plan.clip_ms
    if min(durations) < span.low or max(durations) > span.high:
        problems.append(f"came out {format_ms(min(durations))}-{format_ms(max(durations))} s "
                        f"long, outside the API's {format_ms(span.low)}-{format_ms(span.high)} s")
    if out.rotation:
        problems.append("kept a rotation flag")
    if clip_plan.has_audio and not out.has_audio:
        problems.append("lost its audio")
    if clip_plan.audio is not None and (out.audio_codec, out.audio_rate, out.audio_channels) != (
            "aac", clip_plan.audio.rate, clip_plan.audio.channels):
        problems.append(f"has {out.audio_codec} {out.audio_rate} Hz {out.audio_channels}-channel "
                        "audio, not the AAC planned")
    video, audio = raw.raw_video_ms, raw.raw_audio_ms
    if clip_plan.audio is not None and video is not None and audio is not None \
            and audio > video + 1:
        # Re-encoded audio is cut to the video's length, on every path: never past it.
        problems.append(f"has audio ({audio} ms) running past its video ({video} ms)")
    if problems:
        raise MediaError(label, "the prepared file " + "; ".join(problems),
                         hint="this is a bug in prep: please report it with the output of "
                              f"`prep probe --json {label}`")
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
    import hashlib  # only for a clip that is encoded: a plain copy needs no key

    stat = info.path.stat()
    identity = {"scheme": CACHE_SCHEME, "path": str(info.path.resolve()), "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns, "plan": {**clip_plan.as_dict(), "source": None}}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def _cache(options: PrepareOptions) -> Cache | None:
    if not options.use_cache or options.cache_dir is None:
        return None
    return Cache(options.cache_dir / "prepared", CACHE_LIMIT_BYTES)
