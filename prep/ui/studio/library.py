"""The studio's footage: the clips in its folders, what the API makes of each, and pictures of them.

Everything here is read from the disk and remembered by each file's identity (resolved path, size
and modification time), so a page reload is cheap and a clip that is replaced is read afresh:

- the probe and the API's verdict (`prep probe`), for every clip, when the library is listed;
- thumbnails: a poster and a strip of frames across the clip (the `pick` extra draws them);
- the analysis `prep pick` makes (shots, cuts, faces, speech), on demand, and the window it chooses
  for a job of 1-3 clips;
- the reference check (`prep check`), on demand; its answer is also kept in the cache folder, so
  a clip checked once shows its verdict in later sessions.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prep.core import rules
from prep.core.clipinfo import ClipInfo, assess
from prep.core.clipspec import VIDEO_EXTENSIONS, spec_text
from prep.core.timecode import frame_ms, round_half_up
from prep.errors import Interrupted, MediaError, PrepError
from prep.files import write_text_atomic

if TYPE_CHECKING:
    from prep.pick.analyze import Analysis

__all__ = ["Clip", "Library", "clip_id", "snap_ms"]

POSTER_WIDTH = 320
STRIP_FRAMES = 12
STRIP_FRAME_WIDTH = 160
DEFAULT_FPS = Fraction(25)


def clip_id(path: Path) -> str:
    """The id the page knows a clip by: from its path, so it stays the same across scans."""
    return hashlib.sha256(str(path).encode()).hexdigest()[:12]


def snap_ms(ms: int, fps: Fraction | None) -> int:
    """`ms` moved to the nearest frame boundary (half-up), as the page snaps a dragged window."""
    rate = fps or DEFAULT_FPS
    return frame_ms(round_half_up(Fraction(ms) * rate / 1000), rate)


@dataclass(slots=True, kw_only=True)
class Clip:
    """One video of the library: where it is, what probing found (or why it could not)."""

    id: str
    path: Path
    folder: Path
    identity: tuple[int, int]  # size, mtime_ns
    info: ClipInfo | None = None
    error: PrepError | None = None
    pictures: dict[str, bytes] = field(default_factory=dict)
    analysis: Analysis | None = None
    analysis_error: PrepError | None = None
    check: dict[str, Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def duration_ms(self) -> int:
        """The video's duration (the container's when the video stream has none)."""
        if self.info is None:
            return 0
        return self.info.video_duration_ms or self.info.duration_ms

    def as_dict(self) -> dict[str, Any]:
        """What the page shows of the clip in the library."""
        out: dict[str, Any] = {"id": self.id, "name": self.path.name, "path": str(self.path),
                               "folder": str(self.folder), "check": self.check}
        if self.info is None:
            err = self.error
            out.update(compliant=False, problems=[err.message if err else "not read"],
                       advice=[], error=err.message if err else "not read",
                       hint=err.hint if err else "", duration_ms=0)
            return out
        info = self.info
        # Each model's verdict on the file as it is (the page shows the chosen model's); the
        # top-level one is wan2.6's, as before models were chosen.
        verdicts = {spec.id: assess(info, spec) for spec in rules.MODEL_SPECS}
        verdict = verdicts[rules.MODEL]
        width, height = info.display_size
        out["models"] = {model: {"compliant": v.compliant, "problems": list(v.problems)}
                         for model, v in verdicts.items()}
        fps = info.fps
        out.update(
            duration_ms=self.duration_ms, compliant=verdict.compliant,
            problems=list(verdict.problems), advice=list(verdict.advice), error=None,
            width=width, height=height, size_bytes=info.size_bytes, container=info.container,
            video_codec=info.video_codec, has_audio=info.has_audio,
            fps=float(fps) if fps else None,
            fps_num=fps.numerator if fps else None, fps_den=fps.denominator if fps else None,
            too_short=info.min_duration_ms < rules.MIN_CLIP_MS,
        )
        return out


class Library:
    """The clips under the studio's folders (and any clip files named on their own)."""

    def __init__(self, roots: list[Path], *, cache_dir: Path, ffmpeg: str | None = None) -> None:
        self.roots = [r.resolve() for r in roots]
        self.cache_dir = cache_dir
        self.ffmpeg = ffmpeg
        self._clips: dict[str, Clip] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def close(self) -> None:
        """The studio stops: an analysis still decoding gives up at its next frame (its ffmpegs
        are stopped) instead of running on for nobody."""
        self._closed.set()

    def _until_closed(self, done_ms: int, total_ms: int) -> None:
        """An analysis's progress callback: stops it once the library is closed."""
        if self._closed.is_set():
            raise Interrupted("the studio stopped while a clip was being analysed")

    # -- listing ---------------------------------------------------------------------------------

    def scan(self) -> list[Clip]:
        """Every video directly inside the folders (or named), probed; sorted per folder by name."""
        from prep.media.probe import probe

        found: list[tuple[Path, Path]] = []
        for root in self.roots:
            if root.is_dir():
                try:
                    names = sorted(root.iterdir())
                except OSError:
                    continue
                found += [(p, root) for p in names
                          if p.suffix.lower() in VIDEO_EXTENSIONS and self.inside(p)
                          and not p.name.startswith(".")]
            elif root.is_file():
                found.append((root, root.parent))
        clips = []
        for path, folder in found:
            key = clip_id(path)
            try:
                stat = path.stat()
            except OSError:
                continue
            identity = (stat.st_size, stat.st_mtime_ns)
            with self._lock:
                clip = self._clips.get(key)
                if clip is None or clip.identity != identity:
                    clip = Clip(id=key, path=path, folder=folder, identity=identity)
                    self._clips[key] = clip
            if clip.info is None and clip.error is None:
                try:
                    clip.info = probe(path)
                except PrepError as err:
                    clip.error = err
                clip.check = self._stored_check(clip)
            clips.append(clip)
        return clips

    def inside(self, path: Path) -> bool:
        """Whether `path` is a regular file that resolves inside the studio's folders (or is a
        file it was given): a symlink in a folder that points elsewhere (`passwd.mp4 ->
        /etc/passwd`) is neither listed nor served."""
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop
            return False
        if not resolved.is_file():
            return False
        return any(resolved == root or (root.is_dir() and resolved.is_relative_to(root))
                   for root in self.roots)

    def servable(self, clip: Clip) -> Path:
        """The clip's file, checked again as it is served (a link may have changed since it was
        listed); KeyError when it no longer resolves inside the folders."""
        if not self.inside(clip.path):
            raise KeyError(clip.id)
        return clip.path.resolve()

    def get(self, clip_id: str) -> Clip:
        """The clip with this id; KeyError when the library has none (list it first)."""
        with self._lock:
            known = clip_id in self._clips
        if not known:
            self.scan()
        with self._lock:
            return self._clips[clip_id]

    # -- pictures --------------------------------------------------------------------------------

    def poster(self, clip: Clip) -> bytes:
        """A JPEG of the clip a third of the way in."""
        return self._picture(clip, "poster", [clip.duration_ms // 3], POSTER_WIDTH)

    def strip(self, clip: Clip) -> bytes:
        """A JPEG of STRIP_FRAMES frames side by side, each the middle of an equal part of the clip."""
        step = clip.duration_ms / STRIP_FRAMES
        times = [int(step * i + step / 2) for i in range(STRIP_FRAMES)]
        return self._picture(clip, "strip", times, STRIP_FRAME_WIDTH)

    def _picture(self, clip: Clip, kind: str, times: list[int], width: int) -> bytes:
        if clip.info is None:
            raise clip.error or MediaError(clip.path, "could not be read")
        with clip.lock:
            if kind in clip.pictures:
                return clip.pictures[kind]
            import numpy as np
            from PIL import Image

            from prep.media.frames import grab_frames
            from prep.ui.pictures import require_extras

            require_extras(clip.path)
            frames = grab_frames(clip.path, times, width=width, info=clip.info, ffmpeg=self.ffmpeg)
            if not frames:
                raise MediaError(clip.path, "has no frame to show")
            # Frames that could not be read leave the strip shorter; repeat the last so it still
            # spans the clip.
            rows = [f.rgb for f in frames] + [frames[-1].rgb] * (len(times) - len(frames))
            picture = Image.fromarray(np.hstack(rows))
            buffer = io.BytesIO()
            picture.save(buffer, format="JPEG", quality=80)
            clip.pictures[kind] = buffer.getvalue()
            return clip.pictures[kind]

    # -- what `prep pick` sees -------------------------------------------------------------------

    def analysis(self, clip: Clip, clips_in_job: int = 1,
                 model: str | None = None) -> dict[str, Any]:
        """Shots, cuts, faces and speech of the whole clip, and `prep pick --model`'s window for a
        job of `clips_in_job` clips (default wan2.6; the model's table bounds the count). The
        decode pass runs once per clip identity."""
        from prep.pick.choose import choose

        analysis = self._analysis(clip)
        picked = choose(analysis, clips_in_job=clips_in_job, model=model)
        return {
            "duration_ms": clip.duration_ms,
            "cuts_ms": list(picked.cuts_ms),
            "shots": [{"start_ms": s.start_ms, "end_ms": s.end_ms} for s in picked.shots],
            "faces": [{"start_ms": s.start_ms, "end_ms": s.end_ms} for s in picked.faces],
            "speech": [{"start_ms": s.start_ms, "end_ms": s.end_ms} for s in picked.speech],
            "has_audio": analysis.has_audio,
            "pick": {"start_ms": picked.start_ms, "end_ms": picked.end_ms,
                     "head_ms": picked.head_ms, "usable": picked.usable,
                     "warnings": list(picked.warnings), "clips_in_job": clips_in_job,
                     "clip_spec": spec_text(clip.path.name, picked.start_ms, picked.end_ms)},
        }

    def _analysis(self, clip: Clip) -> Analysis:
        if clip.info is None:
            raise clip.error or MediaError(clip.path, "could not be read")
        with clip.lock:
            if clip.analysis is not None:
                return clip.analysis
            if clip.analysis_error is not None:
                raise clip.analysis_error
            from prep.pick.analyze import analyze, require_extras

            try:
                require_extras(clip.path)
                clip.analysis = analyze(clip.path, start_ms=0, end_ms=clip.duration_ms,
                                        info=clip.info, ffmpeg=self.ffmpeg, thumbnails=0,
                                        progress=self._until_closed)
            except PrepError as err:
                clip.analysis_error = err
                raise
            return clip.analysis

    # -- `prep check` ----------------------------------------------------------------------------

    def run_check(self, clip: Clip, model: str | None = None) -> dict[str, Any]:
        """Grade the whole clip as a reference by `model`'s rules (`prep check --model`; default
        wan2.6), through the check cache `prep check` keeps, and remember the answer."""
        from prep.pick.check import CheckCache, check_clip

        if clip.info is None:
            raise clip.error or MediaError(clip.path, "could not be read")
        with clip.lock:
            report = check_clip(clip.path, ffmpeg=self.ffmpeg, model=model,
                                cache=CheckCache(self.cache_dir / "checks"))
            data = report.as_dict()
            clip.check = data
        with contextlib.suppress(OSError):  # else remembered for this session only
            write_text_atomic(self._check_path(clip), json.dumps(data))
        return data

    def _check_path(self, clip: Clip) -> Path:
        raw = json.dumps([str(clip.path), *clip.identity])
        return self.cache_dir / "studio-checks" / f"{hashlib.sha256(raw.encode()).hexdigest()[:32]}.json"

    def _stored_check(self, clip: Clip) -> dict[str, Any] | None:
        try:
            data = json.loads(self._check_path(clip).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and "verdict" in data else None
