"""Picked windows for clips given without one: `prep generate --pick` and the manifest's `pick` field.

`Picker` turns a clip path into a `PickedWindow` (where `prep pick` would put the window, and
whether it is usable), remembering every answer by the clip's identity: its resolved path, size
and modification time, with how many clips the job has (that sets the billed head), the wanted
length and the model the window is chosen for (its clip range and billing: `prep pick --model`).
A picked window is looked up, in order, in:

1. `known`: windows picked before for the same clip identity. A batch keeps its picks in its
   journal and hands them back on every later run, so a resumed batch never plans differently,
   whatever happened to the cache or to prep's picking in between;
2. the pick cache (`<cache>/picks/`, one small JSON file per clip identity), so a dry run followed
   by the real run, or the same generate command twice, analyses a clip once. An entry written by
   another version of the picking rules (`PICK_RULES`) is not used;
3. the analysis itself (`prep.pick.choose.pick_window`), which is deterministic for the same file.

A clip that is touched (new size or modification time) is a new identity and is picked afresh.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prep.core import rules
from prep.core.clipinfo import ClipInfo
from prep.core.clipspec import ClipSpec, Window, spec_text
from prep.core.keys import digest, model_part
from prep.core.modelspec import ModelSpec
from prep.core.timecode import Timepoint, format_ms
from prep.core.window import edge_margin_ms
from prep.files import write_text_atomic
from prep.media.probe import probe

__all__ = ["PICK_RULES", "PickedWindow", "Picker", "needs_pick", "pick_key", "too_short_to_pick"]

# Bump when `prep.pick.choose` would choose differently, so cached picks are made again.
PICK_RULES = "2"  # 2: windows the check would object to are worth less
Origin = Literal["analysis", "cache", "journal"]
ProgressFactory = Callable[[Path], AbstractContextManager[Callable[[int, int], None]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class PickedWindow:
    """The window `prep pick` chose for a clip, and where the answer came from."""

    key: str
    path: Path
    start_ms: int
    end_ms: int
    clips_in_job: int
    usable: bool
    warnings: tuple[str, ...] = ()
    head_both: float = 0.0  # share of the billed head with a face and speech together
    origin: Origin = "analysis"
    model: str = rules.MODEL

    @property
    def clip_spec(self) -> str:
        """`PATH@START-END`, which every prep command takes."""
        return spec_text(self.path, self.start_ms, self.end_ms)

    def spec(self, original: ClipSpec) -> ClipSpec:
        """`original` with the picked window (its text says the window, for messages and bills)."""
        window = Window(Timepoint(format_ms(self.start_ms), self.start_ms),
                        Timepoint(format_ms(self.end_ms), self.end_ms))
        return ClipSpec(original.path, window,
                        spec_text(str(original), self.start_ms, self.end_ms))

    def record(self) -> dict[str, Any]:
        """What the cache and the journal keep (JSON)."""
        return {"rules": PICK_RULES, "path": str(self.path), "start_ms": self.start_ms,
                "end_ms": self.end_ms, "clips_in_job": self.clips_in_job, "usable": self.usable,
                "warnings": list(self.warnings), "head_both": round(self.head_both, 3),
                "model": self.model}

    @classmethod
    def from_record(cls, key: str, data: Mapping[str, Any], origin: Origin) -> PickedWindow:
        """The inverse of `record`; ValueError/KeyError/TypeError when it is not one."""
        start, end = int(data["start_ms"]), int(data["end_ms"])
        if not 0 <= start < end:
            raise ValueError("not a window")
        return cls(key=key, path=Path(str(data["path"])), start_ms=start, end_ms=end,
                   clips_in_job=int(data["clips_in_job"]), usable=bool(data["usable"]),
                   warnings=tuple(str(w) for w in data.get("warnings", ())),
                   head_both=float(data.get("head_both", 0.0)), origin=origin,
                   model=str(data.get("model", rules.MODEL)))

    def as_dict(self) -> dict[str, Any]:
        """JSON shape, as `prep pick --json` names the same things."""
        return {"clip_spec": self.clip_spec, "start_s": self.start_ms / 1000,
                "end_s": self.end_ms / 1000, "clips_in_job": self.clips_in_job,
                "usable": self.usable, "warnings": list(self.warnings),
                "head_both_ratio": round(self.head_both, 3), "origin": self.origin,
                "model": self.model}


def needs_pick(spec: ClipSpec) -> bool:
    """True for a clip given without a start or end (a length alone is the length to pick)."""
    window = spec.window
    return window.start is None and window.end is None


def too_short_to_pick(info: ClipInfo, model: ModelSpec | None = None) -> bool:
    """True when a clip leaves no room to choose: it is at most the shortest window a pick makes
    (for `model`'s clip range; default wan2.6)."""
    clip = (model or rules.WAN26).videos.duration_ms
    shortest = (clip.low if clip else rules.MIN_CLIP_MS) + 2 * edge_margin_ms(info.fps)
    return (info.video_duration_ms or info.duration_ms) < shortest + edge_margin_ms(info.fps)


def pick_key(path: Path, clips_in_job: int, length_ms: int | None = None,
             model: str = rules.MODEL) -> str:
    """The identity of a pick: the file as it is now (path, size, mtime), the job size, the length
    and the model (wan2.6's keys are those from before models were data)."""
    resolved = path.resolve()
    stat = resolved.stat()
    return digest([str(resolved), stat.st_size, stat.st_mtime_ns, clips_in_job, length_ms,
                   *model_part(model)])


class Picker:
    """Picks windows, each clip identity once (see the module docstring for where answers come from).

    `progress(path)` returns a context manager that yields a `(done_ms, total_ms)` callback for the
    analysis of `path`. `analyse` stands in for `prep.pick.choose.pick_window` in tests;
    `ffmpeg` is the configured ffmpeg that `pick_window` decodes with (`Settings.ffmpeg`).

    With `for_check`, a clip is analysed with what `prep check` also needs, and the analysis is
    kept (`analysis(path)`), so the job's check grades the picked window from it: one decode
    pass per clip for both. `model` is the table windows are chosen for (default wan2.6).
    """

    def __init__(self, *, cache_dir: Path | None = None, known: Mapping[str, Mapping[str, Any]] | None = None,
                 progress: ProgressFactory | None = None, refresh: bool = False,
                 analyse: Callable[..., Any] | None = None, for_check: bool = False,
                 ffmpeg: str | None = None, model: ModelSpec | None = None) -> None:
        self.model = model or rules.WAN26
        self.cache_dir = cache_dir
        self.ffmpeg = ffmpeg
        self.refresh = refresh
        self.for_check = for_check
        self._analyses: dict[Path, Any] = {}
        self._known = dict(known or {})
        self._progress = progress
        self._analyse = analyse
        self.picked: dict[str, PickedWindow] = {}

    def __call__(self, path: Path, clips_in_job: int, length_ms: int | None = None, *,
                 info: ClipInfo | None = None, model: ModelSpec | None = None) -> PickedWindow | None:
        """The picked window of `path` in a job of `clips_in_job` clips on `model` (default: the
        picker's), or None when the clip is too short to choose within (it is used whole).
        MediaError (exit 3) for footage that cannot be read or analysed, including a missing
        `pick` extra (with the install hint)."""
        spec = model or self.model
        key = pick_key(path, clips_in_job, length_ms, spec.id)
        if key in self.picked:
            return self.picked[key]
        found = self._remembered(key, path, spec)
        if found is None and too_short_to_pick(info or probe(path), spec):
            return None
        if found is None:
            found = self._pick(key, path, clips_in_job, length_ms, spec)
            self._store(found)
        self.picked[key] = found
        return found

    def analysis(self, path: Path) -> Any:
        """The analysis this picker made of `path` (an `Analysis`), or None (picked from the
        journal or the cache, or never asked)."""
        return self._analyses.get(path.resolve())

    def records(self) -> dict[str, dict[str, Any]]:
        """Every pick made or reused by this picker, as the journal keeps them."""
        return {key: picked.record() for key, picked in self.picked.items()}

    def _remembered(self, key: str, path: Path, model: ModelSpec) -> PickedWindow | None:
        data = self._known.get(key)
        if data is not None:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                return _at(PickedWindow.from_record(key, data, "journal"), path, model)
        if self.cache_dir is None or self.refresh:
            return None
        try:
            cached = json.loads((self.cache_dir / f"{key}.json").read_text(encoding="utf-8"))
            if cached.get("rules") == PICK_RULES:
                return _at(PickedWindow.from_record(key, cached, "cache"), path, model)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return None

    def _pick(self, key: str, path: Path, clips_in_job: int, length_ms: int | None,
              model: ModelSpec) -> PickedWindow:
        analyse = self._analyse
        if analyse is None:
            from prep.pick.choose import pick_window

            analyse = functools.partial(pick_window, ffmpeg=self.ffmpeg)
        factory = self._progress
        extra: dict[str, Any] = {"for_check": True} if self.for_check else {}
        if model is not rules.WAN26:
            extra["model"] = model
        with factory(path) if factory is not None else contextlib.nullcontext(None) as bar:
            result = analyse(path, length_ms, clips_in_job, progress=bar, **extra)
        if getattr(result, "analysis", None) is not None:
            self._analyses[path.resolve()] = result.analysis
        return PickedWindow(key=key, path=path, start_ms=result.start_ms, end_ms=result.end_ms,
                            clips_in_job=clips_in_job, usable=result.usable,
                            warnings=tuple(result.warnings), head_both=result.head.both,
                            model=model.id)

    def _store(self, picked: PickedWindow) -> None:
        if self.cache_dir is None:
            return
        # The cache only saves time: a cache that cannot be written is not an error.
        with contextlib.suppress(OSError):
            write_text_atomic(self.cache_dir / f"{picked.key}.json", json.dumps(picked.record()))


def _at(picked: PickedWindow, path: Path, model: ModelSpec) -> PickedWindow:
    """A remembered pick, named by the path the caller used (the key already proves it is the file)."""
    from dataclasses import replace

    if not 1 <= picked.clips_in_job <= model.videos.count.high or picked.model != model.id:
        raise ValueError("not a pick for this job")
    return replace(picked, path=path)
