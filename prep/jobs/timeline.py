"""Editors' timelines as manifests, and a batch's results back as a timeline.

A timeline file (OpenTimelineIO `.otio`, CMX 3600 `.edl`, Final Cut Pro / Resolve `.fcpxml` or a
`.fcpxmld` bundle, FCP 7 XML `.xml` from Premiere and Resolve) is read through OpenTimelineIO and
its adapters (the `timeline` extra). Each clip event of a video track becomes a job row, as a CSV
row would, whose one reference is the event's source range on its media, frame-exact: the
event's source timecode minus the media's own start timecode, counted at the media's frame rate
(drop-frame honoured by the adapters). `--group track` makes each video track one job of 1-3 clips.

Reading a timeline relinks its media: the path it gives (file URLs, percent-encoded and non-ASCII
names, Windows drive paths mapped with `--map-path FROM=TO`), else the clip name, reel or file
name looked up under the timeline's folder and the `--media` folders. Every event that cannot be
used is a manifest problem (its event number, the names looked for, the folders searched),
listed with all the others before anything runs. Events prep cannot use as a window (gaps,
transitions, titles and generators, nested sequences, speed changes) are skipped with a note.

`export_results` writes a batch folder's results as a timeline through the same adapters.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from prep.core import timecode
from prep.core.clipspec import (
    TIMELINE_SUFFIXES,
    VIDEO_EXTENSIONS,
    ClipSpec,
    Window,
    is_timeline,
)
from prep.errors import ManifestError, MediaError, PrepError, ToolMissingError, UsageError
from prep.jobs.manifest import (
    MAX_NAME_CHARS,
    Manifest,
    Problem,
    load_manifest,
    manifest_from_rows,
)

__all__ = [
    "EXPORT_SUFFIXES",
    "TIMELINE_SUFFIXES",
    "Event",
    "ExportedClip",
    "TimelineOptions",
    "expand_timelines",
    "export_results",
    "is_timeline",
    "load_jobs",
    "load_timeline",
    "parse_map_path",
    "read_events",
]

EXPORT_SUFFIXES = (".otio", ".edl", ".fcpxml", ".xml")
EXTRA_HINT = "pip install 'evolink-prep[timeline]'"
_ADAPTERS = {".otio": "otio_json", ".edl": "cmx_3600", ".fcpxml": "fcpx_xml", ".xml": "fcp_xml"}
TIMELINE_META = "timeline"  # the journal's meta key for where each job's event sat
MAX_SEARCH_FILES = 200_000  # a folder searched for media is walked at most this far
Group = Literal["event", "track"]
_NAME_BAD = re.compile(r'[/\\:*?"<>|\x00-\x1f]+')
_DRIVE = re.compile(r"^[A-Za-z]:[/\\]")


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineOptions:
    """How a timeline becomes jobs: grouping, the default prompt, and where to find its media."""

    group: Group = "event"
    prompt: str | None = None
    media_dirs: tuple[Path, ...] = ()
    path_maps: tuple[tuple[str, str], ...] = ()
    on_note: Callable[[str], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.group not in ("event", "track"):
            raise ValueError(f"group must be 'event' or 'track', not {self.group!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One usable clip event: its media found on disk and its source range in frames."""

    number: int
    track: int
    name: str
    path: Path
    fps: Fraction
    start_frame: int  # from the media's first frame
    end_frame: int
    record_start_s: float  # where the event sits on the timeline
    record_duration_s: float
    note: str | None = None  # the event's comment or marker text: a prompt

    @property
    def window(self) -> Window:
        """The source range as a window whose ends fall inside their frames (not on a boundary),
        so whichever way milliseconds are rounded to frames later, the same frames are cut."""
        return Window(timecode.parse(_seconds(self.start_frame, self.fps)),
                      timecode.parse(_seconds(self.end_frame, self.fps)))

    def clip_spec(self) -> ClipSpec:
        window = self.window
        assert window.start is not None and window.end is not None
        return ClipSpec(self.path, window, f"{self.path}@{window.start.text}-{window.end.text}")


def _seconds(frame: int, fps: Fraction) -> str:
    """Text seconds (to the ms) of the first whole millisecond inside frame `frame`."""
    exact = Fraction(frame * 1000) / fps
    ms = int(exact) if exact == int(exact) else int(exact) + 1
    return f"{ms // 1000}.{ms % 1000:03d}"


def parse_map_path(text: str) -> tuple[str, str]:
    """`FROM=TO` (e.g. `C:\\Footage=/mnt/footage`) as a pair; UsageError when it has no `=`."""
    frm, sep, to = text.partition("=")
    if not sep or not frm.strip() or not to.strip():
        raise UsageError(f"--map-path {text!r}: give FROM=TO, e.g. 'C:\\Footage=/mnt/footage'")
    return frm.strip(), to.strip()


def _otio(path: Path) -> Any:
    """The opentimelineio module (typed as Any: it ships no type information)."""
    try:
        return importlib.import_module("opentimelineio")
    except ImportError as err:
        raise ToolMissingError(f"{path}: reading or writing a timeline needs the timeline extra",
                               hint=EXTRA_HINT) from err


# -- reading ---------------------------------------------------------------------------------------


def load_jobs(path: Path | str, options: TimelineOptions | None = None) -> Manifest:
    """A batch's jobs from a manifest (CSV, JSONL) or a timeline file, by the file's suffix."""
    if is_timeline(path):
        return load_timeline(path, options or TimelineOptions())
    return load_manifest(path)


def load_timeline(path: Path | str, options: TimelineOptions) -> Manifest:
    """Read a timeline file into a Manifest: one job per event (or per track), media relinked."""
    source = Path(path)
    events, problems, names = read_events(source, options)
    rows: list[tuple[int, Mapping[str, Any]]] = []
    placements: dict[str, Any] = {}
    for line, job_name, group in _groups(events, options.group, names):
        prompt = next((e.note for e in group if e.note), None) or options.prompt
        row: dict[str, Any] = {
            "name": job_name,
            "clips": [{"path": str(e.path), "start": e.window.start.text,  # type: ignore[union-attr]
                       "end": e.window.end.text} for e in group],  # type: ignore[union-attr]
        }
        if prompt:
            row["prompt"] = prompt
        rows.append((line, row))
        first = group[0]
        placements[job_name] = {"event": first.number, "track": first.track,
                                "start_s": first.record_start_s,
                                "duration_s": sum(e.record_duration_s for e in group)}
    if not events and not problems:
        problems.append(Problem(line=0, message="the timeline has no clip events on a video track"))
    return manifest_from_rows(rows, fmt="timeline", base_dir=source.resolve().parent,
                              source=str(source), problems=problems,
                              timeline={"name": names.get(0, source.stem), "jobs": placements})


def expand_timelines(specs: Sequence[ClipSpec], options: TimelineOptions) -> list[ClipSpec]:
    """Clip specs with every timeline file replaced by its events' windows (estimate, prepare).

    Raises ManifestError listing every event that cannot be used.
    """
    out: list[ClipSpec] = []
    for spec in specs:
        if not (is_timeline(spec.path) and spec.window.is_open and spec.path.exists()):
            out.append(spec)
            continue
        events, problems, _names = read_events(spec.path, options)
        if problems:
            raise ManifestError(str(spec.path), problems)
        if not events:
            raise UsageError(f"{spec.path}: the timeline has no clip events on a video track")
        out.extend(e.clip_spec() for e in events)
    return out


def _groups(events: list[Event], group: Group,
            names: Mapping[int, str]) -> Iterator[tuple[int, str, list[Event]]]:
    if group == "event":
        for e in events:
            yield e.number, _job_name(f"{e.number:03d} {_stem(e.name)}"), [e]
        return
    tracks: dict[int, list[Event]] = {}
    for e in events:
        tracks.setdefault(e.track, []).append(e)
    for track, members in tracks.items():
        label = names.get(track, "").strip()
        own = f" {label}" if label and label.casefold() != f"v{track}" else ""
        yield members[0].number, _job_name(f"track {track}{own}"), members


def _stem(name: str) -> str:
    """A clip name without its video file extension (`shot 1.mov` names job `001 shot 1`)."""
    path = Path(name)
    return path.stem if path.suffix.lower() in VIDEO_EXTENSIONS else name


def _job_name(text: str) -> str:
    """A job name (it names the result file) made from an event's clip name."""
    name = _NAME_BAD.sub("_", text).strip().lstrip(".").strip()
    return name[:MAX_NAME_CHARS].rstrip() or "event"


def read_events(path: Path,
                options: TimelineOptions) -> tuple[list[Event], list[Problem], dict[int, str]]:
    """Every usable event of the timeline's video tracks, and a problem for each unusable one.

    The third value names the timeline (key 0) and its video tracks (keys 1, 2, ...).
    """
    otio = _otio(path)
    relinker = _Relinker(path, options)
    timeline = _read(otio, path, None)
    events, problems, names = _events(otio, timeline, relinker, options)
    if path.suffix.lower() == ".edl":
        # An EDL does not say its rate: read it again at its media's, so its source timecodes
        # count the media's frames.
        rates = sorted({e.fps for e in events})
        if rates and rates[0] != _edl_rate(path):
            if len(rates) > 1:
                _note(options, f"{path}: media at {len(rates)} frame rates; the EDL is read at "
                               f"{_fps_text(rates[0])} fps")
            timeline = _read(otio, path, rates[0])
            events, problems, names = _events(otio, timeline, relinker,
                                              TimelineOptions(group=options.group,
                                                              prompt=options.prompt,
                                                              media_dirs=options.media_dirs,
                                                              path_maps=options.path_maps))
    return events, problems, names


def _note(options: TimelineOptions, text: str) -> None:
    if options.on_note is not None:
        options.on_note(text)


def _fps_text(fps: Fraction) -> str:
    return f"{float(fps):.3f}".rstrip("0").rstrip(".")


def _edl_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as err:
        raise UsageError(f"{path}: the timeline cannot be read ({err.strerror or err})") from err


def _edl_rate(path: Path) -> Fraction:
    """The rate an EDL is first read at: 29.97 when it counts drop-frame, else 24."""
    text = _edl_text(path)
    drop = "DROP FRAME" in text.upper() and "NON-DROP" not in text.upper()
    return Fraction(30000, 1001) if drop or re.search(r"\d\d;\d\d\b", text) else Fraction(24)


def _read(otio: Any, path: Path, rate: Fraction | None) -> Any:
    """The first Timeline in the file; UsageError (exit 2) naming the file when it is unreadable."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise UsageError(f"{path}: no such timeline file")
    try:
        if suffix == ".edl":
            result = otio.adapters.read_from_string(
                _edl_text(path), adapter_name="cmx_3600",
                rate=float(rate if rate is not None else _edl_rate(path)))
        elif suffix in (".fcpxml", ".fcpxmld"):
            with _exact_fcpx_rates():
                result = otio.adapters.read_from_file(
                    str(path / "Info.fcpxml" if suffix == ".fcpxmld" else path),
                    adapter_name="fcpx_xml")
        else:
            result = otio.adapters.read_from_file(str(path), adapter_name=_ADAPTERS[suffix])
    except PrepError:
        raise
    except Exception as err:  # each adapter raises its own kinds (XML, parse, schema errors)
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"{path}: not a timeline prep can read ({detail})",
                         hint="export the sequence again as OTIO, EDL, FCPXML or FCP 7 XML") from err
    found = _first_timeline(otio, result)
    if found is None:
        raise UsageError(f"{path}: the file holds no timeline (sequence)")
    return found


_FCPX_LOCK = threading.Lock()


@contextlib.contextmanager
def _exact_fcpx_rates() -> Iterator[None]:
    """While the FCPXML adapter reads: exact frame rates, times rounded to the nearest frame.

    The adapter counts whole frames per second (29.97 fps becomes 29) and truncates every time to
    a frame, so a window of NTSC footage could land a frame or two off. Its three conversions are
    replaced for the read (and put back after) by exact ones; an adapter whose inside differs is
    left as it is.
    """
    otio = importlib.import_module("opentimelineio")
    try:  # the module OTIO's plugin system loaded, which is the one that reads
        module: Any = otio.adapters.from_name("fcpx_xml").module()
    except Exception:  # no such adapter (then the read says so) or it cannot load
        yield
        return
    reader = getattr(module, "FcpxXml", None)
    needed = ("_format_frame_rate", "_number_of_frames", "_format_frame_duration")
    if reader is None or not callable(getattr(module, "to_rational_time", None)) or not all(
            callable(getattr(reader, name, None)) for name in needed):
        yield
        return

    def rate_of(self: Any, format_id: Any) -> Fraction:
        total, rate = self._format_frame_duration(format_id)
        return Fraction(str(rate)) / Fraction(str(total))

    def to_rational_time(text: Any, fps: Any) -> Any:
        exact = fps if isinstance(fps, Fraction) else Fraction(fps)
        return otio.opentime.RationalTime(round(_fcpx_seconds(text) * exact), float(exact))

    def format_frame_rate(self: Any, format_id: Any) -> Fraction:
        return rate_of(self, format_id)

    def number_of_frames(self: Any, text: Any, format_id: Any) -> int:
        return round(_fcpx_seconds(text) * rate_of(self, format_id))

    with _FCPX_LOCK:
        saved = (module.to_rational_time, reader._format_frame_rate, reader._number_of_frames)
        module.to_rational_time = to_rational_time
        reader._format_frame_rate = format_frame_rate
        reader._number_of_frames = number_of_frames
        try:
            yield
        finally:
            module.to_rational_time, reader._format_frame_rate, reader._number_of_frames = saved


def _fcpx_seconds(text: Any) -> Fraction:
    """An FCPXML time (`1001/30000s`, `36000s`, `0s`) as exact seconds."""
    if text is None:
        return Fraction(0)
    value = str(text).strip().removesuffix("s")
    num, _, den = value.partition("/")
    return Fraction(num) / Fraction(den) if den else Fraction(num)


def _first_timeline(otio: Any, value: Any) -> Any:
    if isinstance(value, otio.schema.Timeline):
        return value
    if isinstance(value, otio.schema.SerializableCollection):
        for child in value:
            found = _first_timeline(otio, child)
            if found is not None:
                return found
    return None


def _events(otio: Any, timeline: Any, relinker: _Relinker,
            options: TimelineOptions) -> tuple[list[Event], list[Problem], dict[int, str]]:
    events: list[Event] = []
    problems: list[Problem] = []
    names: dict[int, str] = {0: str(timeline.name or "")}
    number = 0
    video_tracks = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video]
    for track_no, track in enumerate(video_tracks, start=1):
        names[track_no] = str(track.name or "")
        for item in track:
            if isinstance(item, otio.schema.Gap):
                continue  # empty track time: nothing to skip
            number += 1
            label = f"event {number}"
            if isinstance(item, otio.schema.Transition):
                _note(options, f"{label}: a transition, skipped (its clips are events of their own)")
                continue
            if not isinstance(item, otio.schema.Clip):
                _note(options, f"{label} ({item.name or type(item).__name__}): a nested sequence "
                               "or compound clip, skipped")
                continue
            event = _event(otio, item, number, track_no, relinker, options, problems)
            if event is not None:
                events.append(event)
    return events, problems, names


def _event(otio: Any, clip: Any, number: int, track: int, relinker: _Relinker,
           options: TimelineOptions, problems: list[Problem]) -> Event | None:
    name = str(clip.name or f"event {number}")
    label = f"event {number} ({name})"
    ref = clip.media_reference
    if isinstance(ref, otio.schema.GeneratorReference):
        kind = getattr(ref, "generator_kind", "") or "generator"
        _note(options, f"{label}: a generated source ({kind}), skipped")
        return None
    for effect in clip.effects:
        if isinstance(effect, otio.schema.FreezeFrame) or (
                isinstance(effect, otio.schema.LinearTimeWarp) and effect.time_scalar != 1):
            speed = "a freeze frame" if isinstance(effect, otio.schema.FreezeFrame) else (
                "reversed" if effect.time_scalar < 0 else f"at {effect.time_scalar * 100:g}% speed")
            _note(options, f"{label}: {speed}, refused (its source range is not a window)")
            return None
    job = _job_name(f"{number:03d} {_stem(name)}")
    found = relinker.find(clip, ref)
    if isinstance(found, str):
        problems.append(Problem(line=number, name=job, message=f"event {number}: {found}"))
        return None
    try:
        fps, start_tc_s = relinker.media_facts(found)
    except MediaError as err:
        problems.append(Problem(line=number, name=job, exit_code=3,
                                message=f"event {number}: {err.message}"))
        return None
    source = clip.source_range or clip.trimmed_range()
    available = getattr(ref, "available_range", None)
    media_start_s = (available.start_time.to_seconds() if available is not None
                     else start_tc_s)
    first = round(Fraction(media_start_s) * fps)
    start = round(Fraction(source.start_time.to_seconds()) * fps) - first
    end = round(Fraction(source.end_time_exclusive().to_seconds()) * fps) - first
    if start < 0:
        problems.append(Problem(line=number, name=job, message=(
            f"event {number}: its source range starts before the first frame of {found.name} "
            f"(source timecode below the media's start timecode)")))
        return None
    record = clip.range_in_parent()
    return Event(number=number, track=track, name=name, path=found, fps=fps, start_frame=start,
                 end_frame=end, record_start_s=record.start_time.to_seconds(),
                 record_duration_s=record.duration.to_seconds(), note=_event_note(clip))


def _field(meta: Any, key: str) -> Any:
    """`meta[key]` when `meta` is one of OTIO's metadata mappings, else None."""
    return meta.get(key) if hasattr(meta, "get") else None


def _prep_prompt(clip: Any) -> str | None:
    prompt = _field(_field(clip.metadata, "prep"), "prompt")
    return str(prompt) if prompt else None


def _edl_comment(clip: Any) -> str | None:
    """The first `* COMMENT:` line of a CMX 3600 event."""
    for comment in _field(_field(clip.metadata, "cmx_3600"), "comments") or ():
        text = str(comment)
        if text.upper().startswith("COMMENT:") and text[8:].strip():
            return text[8:].strip()
    return None


def _fcp_comment(clip: Any) -> str | None:
    """The first non-empty comment of a Final Cut Pro XML clip."""
    comments = _field(_field(clip.metadata, "fcp_xml"), "comments")
    for text in comments.values() if hasattr(comments, "values") else ():
        if isinstance(text, str) and text.strip():
            return text.strip()
    return None


def _marker_note(clip: Any) -> str | None:
    """The first marker's comment, else its name."""
    for marker in clip.markers:
        comment = _field(_field(marker.metadata, "fcp_xml"), "comment")
        text = str(comment or marker.name or "").strip()
        if text:
            return text
    return None


def _event_note(clip: Any) -> str | None:
    """A prompt from the event: prep's own metadata, else its comment, else a marker's note."""
    for source in (_prep_prompt, _edl_comment, _fcp_comment, _marker_note):
        note = source(clip)
        if note:
            return note
    return None


# -- relinking -------------------------------------------------------------------------------------


class _Relinker:
    """Finds each event's media on this machine, once per name; probes each file once."""

    def __init__(self, timeline: Path, options: TimelineOptions) -> None:
        self.folders = [timeline.resolve().parent, *(Path(d).resolve() for d in options.media_dirs)]
        self.maps = options.path_maps
        self._by_name: dict[str, list[Path]] | None = None
        self._facts: dict[Path, tuple[Fraction, float]] = {}

    def find(self, clip: Any, ref: Any) -> Path | str:
        """The media file, or why none (one line: the names looked for and the folders searched)."""
        url = str(getattr(ref, "target_url", "") or "")
        given = _url_path(url, self.maps) if url else ""
        if given:
            candidate = Path(given)
            if not candidate.is_absolute():
                candidate = self.folders[0] / candidate
            if candidate.is_file():
                return Path(os.path.abspath(candidate))
        wanted = _wanted_names(clip, ref, given)
        index = self._index()
        for key in wanted:
            hits = sorted(set(index.get(key.casefold(), ())))
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                return (f"{key!r} is ambiguous: {len(hits)} files match "
                        f"({', '.join(str(h) for h in hits[:3])}{', ...' if len(hits) > 3 else ''});"
                        " keep one, or point --media at the right folder")
        looked = ", ".join(repr(w) for w in wanted) or "no name (the event names no media)"
        where = ", ".join(str(f) for f in self.folders)
        said = f" at {given!r}" if given else ""
        return (f"no media found{said}; looked for {looked} under {where}"
                " (add --media DIR, or --map-path FROM=TO for paths from another machine)")

    def _index(self) -> dict[str, list[Path]]:
        """File names (and the stems of video files) under the search folders, case-folded."""
        if self._by_name is not None:
            return self._by_name
        index: dict[str, list[Path]] = {}
        seen = 0
        for folder in self.folders:
            for root, dirs, files in os.walk(folder):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for file in files:
                    seen += 1
                    path = Path(root, file)
                    index.setdefault(file.casefold(), []).append(path)
                    if path.suffix.lower() in VIDEO_EXTENSIONS:
                        index.setdefault(path.stem.casefold(), []).append(path)
                if seen > MAX_SEARCH_FILES:
                    break
        self._by_name = index
        return index

    def media_facts(self, path: Path) -> tuple[Fraction, float]:
        """(frame rate, start timecode in seconds) of a media file, probed once."""
        if path not in self._facts:
            from prep.media.probe import probe, start_timecode

            info = probe(path)
            if not info.fps:
                raise MediaError(path, "has no frame rate to count a timeline's frames at")
            start_s = 0.0
            text = start_timecode(path)
            if text:
                try:
                    frames = round(Fraction(timecode.parse(text).resolve(info.fps)) * info.fps
                                   / 1000)
                    start_s = float(Fraction(frames) / info.fps)
                except ValueError:
                    start_s = 0.0  # an unreadable start timecode: count from the first frame
            self._facts[path] = (info.fps, start_s)
        return self._facts[path]


def _url_path(url: str, maps: Sequence[tuple[str, str]]) -> str:
    """A local path from a timeline's media URL or path, with --map-path prefixes replaced."""
    text = url
    if url.lower().startswith("file:"):
        parts = urllib.parse.urlsplit(url)
        text = urllib.parse.unquote(parts.path)
        if parts.netloc and parts.netloc.lower() != "localhost":
            text = f"//{parts.netloc}{text}"  # a UNC share
        if re.match(r"^/[A-Za-z]:", text):
            text = text[1:]
    elif "://" in url:
        return ""  # http(s) and the like: not a file on this machine
    windows = bool(_DRIVE.match(text)) or text.startswith("\\\\") or "\\" in text
    if windows:
        text = text.replace("\\", "/")
    for frm, to in maps:
        prefix = frm.replace("\\", "/").rstrip("/")
        folded = _DRIVE.match(prefix) or prefix.startswith("//")
        head = text[:len(prefix)]
        if (head.casefold() == prefix.casefold() if folded else head == prefix) and (
                len(text) == len(prefix) or text[len(prefix)] == "/"):
            return to.rstrip("/\\") + text[len(prefix):]
    return text


def _wanted_names(clip: Any, ref: Any, given: str) -> list[str]:
    names: list[str] = []
    if given:
        names.append(given.replace("\\", "/").rsplit("/", 1)[-1])
    for value in (getattr(ref, "name", ""), clip.name):
        if value:
            names.append(str(value))
    meta = clip.metadata
    cmx = meta.get("cmx_3600") if hasattr(meta, "get") else None
    reel = cmx.get("reel") if cmx is not None and hasattr(cmx, "get") else None
    if reel:
        names.append(str(reel).strip())
    unique: list[str] = []
    for name in names:
        if name and name.casefold() not in (n.casefold() for n in unique):
            unique.append(name)
    return unique


# -- results back out ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportedClip:
    """One generated clip as placed on the exported timeline."""

    job: str
    path: Path
    start_s: float
    duration_s: float
    task_id: str | None
    credits_units: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job, "path": str(self.path), "start_s": round(self.start_s, 6),
                "duration_s": round(self.duration_s, 6), "task_id": self.task_id,
                "credits_units": self.credits_units}


def export_results(folder: Path | str, out: Path | str, *,
                   on_note: Callable[[str], None] | None = None) -> list[ExportedClip]:
    """Write the completed results of the batch in `folder` as a timeline file `out`.

    One video track of the results, each where its source event sat when the batch came from a
    timeline (else one after another), pointing at the downloaded file by absolute file URL, with
    prompt, model, task id and credits in its metadata (and a marker, for EDL and XML).
    """
    from prep.jobs.journal import Journal
    from prep.jobs.layout import journal_path
    from prep.media.probe import probe

    folder, out = Path(folder), Path(out)
    suffix = out.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise UsageError(f"{out}: cannot write a timeline of this kind; use "
                         f"{', '.join(EXPORT_SUFFIXES)}")
    otio = _otio(out)
    if not journal_path(folder).is_file():
        raise UsageError(f"{folder}: no batch journal here (run `prep batch MANIFEST -o {folder}`)")
    with Journal.open(folder, create=False) as journal:
        records = journal.jobs()
        placed = json.loads(journal.meta(TIMELINE_META) or "{}")
        source = journal.meta("manifest") or ""
    jobs_at: Mapping[str, Any] = placed.get("jobs", {})
    done = [r for r in records if r.state == "done" and r.result_path]
    if not done:
        raise UsageError(f"{folder}: the batch has no completed results to export yet")
    clips: list[tuple[Any, ExportedClip, Fraction]] = []
    for record in done:
        result = Path(record.result_path or "")
        if not result.is_absolute():
            result = folder / result
        result = result.resolve()
        info = probe(result)
        fps = info.fps or Fraction(25)
        duration_s = info.duration_ms / 1000
        where = jobs_at.get(record.name)
        start_s = float(where["start_s"]) if where else -1.0
        clips.append((record, ExportedClip(job=record.name, path=result, start_s=start_s,
                                           duration_s=duration_s, task_id=record.task_id,
                                           credits_units=record.credits_reserved_units
                                           if record.credits_reserved_units is not None
                                           else record.estimate_units), fps))
    rate = clips[0][2]
    placed_clips = _place([c for _r, c, _f in clips], on_note)
    track = otio.schema.Track(name="prep results", kind=otio.schema.TrackKind.Video)
    cursor = 0
    for (record, _clip, fps), clip in zip(clips, placed_clips, strict=True):
        start_frame = round(Fraction(clip.start_s) * rate)
        if start_frame > cursor:
            track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, float(rate)),
                otio.opentime.RationalTime(start_frame - cursor, float(rate)))))
        frames = round(Fraction(clip.duration_s) * fps)
        track.append(_result_clip(otio, record, clip, frames, fps))
        cursor = start_frame + round(Fraction(clip.duration_s) * rate)
    name = str(placed.get("name") or Path(source).stem or folder.name)
    timeline = otio.schema.Timeline(name=f"{name} (prep results)")
    timeline.tracks.append(track)
    _write(otio, timeline, out, rate)
    return placed_clips


def _place(clips: list[ExportedClip], on_note: Callable[[str], None] | None) -> list[ExportedClip]:
    """Each clip at its event's place, moved after the clip before it when they would overlap."""
    order = sorted(range(len(clips)), key=lambda i: (clips[i].start_s < 0, clips[i].start_s, i))
    placed: dict[int, ExportedClip] = {}
    cursor = 0.0
    for i in order:
        clip = clips[i]
        start = clip.start_s if clip.start_s >= 0 else cursor
        if start < cursor - 1e-9:
            if clip.start_s >= 0 and on_note is not None:
                on_note(f"{clip.job}: its result is longer than the event before it allows; placed "
                        f"at {cursor:.3f} s instead of {clip.start_s:.3f} s")
            start = cursor
        placed[i] = ExportedClip(job=clip.job, path=clip.path, start_s=start,
                                 duration_s=clip.duration_s, task_id=clip.task_id,
                                 credits_units=clip.credits_units)
        cursor = start + clip.duration_s
    return [placed[i] for i in order]


def _result_clip(otio: Any, record: Any, clip: ExportedClip, frames: int, fps: Fraction) -> Any:
    from prep.core.billing import credits_text

    spec = record.spec
    credits = credits_text(clip.credits_units) if clip.credits_units is not None else None
    facts = {"job": clip.job, "prompt": spec.get("prompt"), "model": spec.get("model"),
             "task_id": clip.task_id, "credits": credits}
    rate = float(fps)
    duration = otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                       otio.opentime.RationalTime(frames, rate))
    ref = otio.schema.ExternalReference(target_url=clip.path.as_uri(), available_range=duration)
    item = otio.schema.Clip(name=clip.job, media_reference=ref, source_range=duration)
    item.metadata["prep"] = facts
    summary = "; ".join(f"{k} {v}" for k, v in facts.items() if v and k != "job")
    ref.metadata["fcpx"] = {"note": summary}  # the FCPXML adapter writes it as the clip's note
    item.markers.append(otio.schema.Marker(
        name=summary, marked_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                                           otio.opentime.RationalTime(0, rate)),
        metadata={"prep": facts}))
    return item


def _write(otio: Any, timeline: Any, out: Path, rate: Fraction) -> None:
    """Through the suffix's adapter, into a temp file beside `out`, then renamed over it."""
    suffix = out.suffix.lower()
    kwargs: dict[str, Any] = {"rate": float(rate)} if suffix == ".edl" else {}
    try:
        text = otio.adapters.write_to_string(timeline, adapter_name=_ADAPTERS[suffix], **kwargs)
    except Exception as err:  # the adapters raise their own kinds
        raise UsageError(f"{out}: the results could not be written as {suffix} ({err})") from err
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
