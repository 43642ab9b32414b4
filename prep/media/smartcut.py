"""Smart cut: a frame-exact window of compliant H.264 with the least re-encoding.

The whole GOPs inside the window are copied as they are, and so are the first frames of the
last GOP when they come first in decode order too (the sample tables say so before anything
runs); only the frames before the first keyframe (the head) and the rest of the last GOP (the
tail) are re-encoded, by x264 with the options the source's own x264 recorded in its stream, so
that the edges' SPS comes out byte for byte the source's (under another id, with a PPS of their
own that codes them with CAVLC where the source uses CABAC: `_cavlc_id`; the joined file lists
that PPS beside the source's). The pieces are joined into one mp4 track with one sample
description and no edit list, and the result is proven before it is used: every frame decodes
without an error, the frame count and timestamps are exact, and the copied packets are the
source's. Anything that cannot be matched or proven returns the reason, and prepare falls back
to re-encoding the whole window.

The steps, in `smart_cut`: the source's track and tables (`_read_source`), how the edges are
encoded (`_edges`), what is copied and what re-encoded (`_layout`), the pieces with what their
decoders may skip (`_pieces`), the edges and the audio made at once and checked (`_make`,
`_check_pieces`), joined with the source's own GOPs by prep's writer (`mp4write.join`), and
proven (`_prove`: `_check_times`, `_check_copied_order`, `_check_bytes`, `_decode_rest`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

from prep.core.plan import PrepPlan, SmartCut
from prep.errors import PrepError
from prep.media.avc import AvcConfig, parse_avc_config, with_avc_config
from prep.media.ffmpeg import (
    FfmpegBinary,
    ProgressCallback,
    RunResult,
    decode_checks_args,
    loopback_decoding,
    run,
    run_together,
    smart_cut_audio_args,
    smart_cut_piece_args,
)
from prep.media.mp4 import Mp4Track, Samples, read_mp4, read_samples, read_track
from prep.media.mp4write import VideoRun, join

__all__ = ["smart_cut", "x264_options"]

# x264 writes its settings into the first frame (an unregistered user data SEI): read this far.
_SEI_SCAN_BYTES = 8_000_000
_SEI = re.compile(rb"x264 - core \d+[^\x00]*? - options: ([^\x00\x80]*)")
_PROFILES = {66: "baseline", 77: "main", 100: "high"}
_PYRAMID = {"0": "none", "1": "strict", "2": "normal"}
# x264 options that shape the SPS and PPS, passed on as the source has them.
_HEADER_KEYS = ("cabac", "ref", "bframes", "weightb", "weightp", "8x8dct", "keyint",
                "keyint_min", "chroma_qp_offset", "constrained_intra")


def x264_options(path: Path | str) -> dict[str, str] | None:
    """The options x264 recorded in the video of `path` (`ref=3`, `bframes=3`, ...), or None
    when the stream carries no x264 settings (another encoder made it)."""
    with open(path, "rb") as fh:
        head = fh.read(_SEI_SCAN_BYTES)
    match = _SEI.search(head)
    if match is None:
        return None
    pairs = (item.split("=", 1) for item in match[1].decode("latin-1").split() if "=" in item)
    return {key: value for key, value in pairs}


@dataclass(frozen=True, slots=True)
class _Edges:
    """How the head and tail are encoded: libx264 `options`, and `own_id` when they carry
    parameter sets of their own (that id) beside the source's, None when they carry the
    source's own, byte for byte."""

    options: dict[str, str]
    own_id: int | None = None


def _matched(options: dict[str, str], config: AvcConfig) -> _Edges | None:
    """libx264 options that remake the SPS x264 recorded for the source (and its PPS, or one
    that differs only in coding the edges with CAVLC: `_cavlc_id`); None when they cannot be
    matched (then the edges get their own)."""
    if "nal_hrd" in options and options["nal_hrd"] != "none":
        return None
    profile = _PROFILES.get(config.profile)
    rc = options.get("rc", "crf")
    if profile is None or rc == "cqp":
        return None
    params = {key: options[key] for key in _HEADER_KEYS if key in options}
    params["b-pyramid"] = _PYRAMID.get(options.get("b_pyramid", "0"), "none")
    # x264 lowers the chroma QP offset itself when psy is on; with psy off, the source's final
    # offset (as recorded) is used as it is.
    params["psy"] = "0"
    # The PPS's initial QP is the CRF (whole part) for a CRF encode, 26 for rate-controlled ones.
    params["crf"] = str(int(float(options.get("crf", "23")))) if rc == "crf" else "26"
    own_id = _cavlc_id(options, config)
    if own_id is not None:
        params.update({"cabac": "0", "sps-id": str(own_id)})
    x264 = ":".join(f"{key}={value}" for key, value in params.items())
    return _Edges({"preset": "ultrafast", "profile:v": profile, "level": _level(config),
                   "x264-params": x264}, own_id)


def _cavlc_id(options: dict[str, str], config: AvcConfig) -> int | None:
    """The id for the edges' own PPS when they can be coded with CAVLC under the source's SPS,
    else None (they keep the source's CABAC PPS). At the same quality CAVLC took a quarter less
    CPU to encode and half as much to decode, for 9 % more bytes in the edges (51 frames of
    1080p at CRF 20). The SPS stays the source's only while x264 still picks the source's
    profile without CABAC: High for the 8x8 transform, Main for B-frames or weighted
    prediction."""
    if options.get("cabac") != "1" or len(config.sps) != 1:
        return None
    keeps = {100: options.get("8x8dct") == "1",
             77: options.get("bframes", "0") != "0" or options.get("weightp", "0") != "0"}
    return config.free_id() if keeps.get(config.profile, False) else None


def _own(plan: PrepPlan, config: AvcConfig) -> _Edges | str:
    """libx264 options for edges with parameter sets of their own, under an id the source does
    not use, at the source's profile and level and the plan's CRF; or why there are none.

    At ultrafast, as the matched edges are: no B-frames, CAVLC (`_cavlc_id` says why), no
    adaptive quantisation. The edges are a second or two between copied GOPs, which keep the
    source's quality; at the plan's CRF ultrafast gave them a higher VMAF than the profile's own
    preset (the window: 99.6 against 99.3 at the balanced profile's CRF 18, on CABAC High
    footage with B-frames from another encoder) for 6 % more bytes, in two thirds of the time."""
    profile = _PROFILES.get(config.profile)
    if profile is None:
        return f"H.264 profile {config.profile} is not one x264 writes"
    own_id = config.free_id()
    if own_id is None:
        return "the source uses every parameter set id"
    assert plan.video is not None
    return _Edges({"preset": "ultrafast", "crf": str(plan.video.crf), "profile:v": profile,
                   "level": _level(config), "x264-params": f"sps-id={own_id}:cabac=0"}, own_id)


def _level(config: AvcConfig) -> str:
    return f"{config.level / 10:g}"


def _edges(plan: PrepPlan, src: Path, config: AvcConfig) -> _Edges | str:
    """How to encode the edges of a smart cut of `src`, or why it cannot be smart-cut."""
    options = x264_options(src)
    if options is not None:
        for key, refused in (("open_gop", "open GOPs"), ("interlaced", "interlaced coding"),
                             ("bluray_compat", "Blu-ray compatible coding"),
                             ("intra_refresh", "periodic intra refresh"),
                             ("fake_interlaced", "")):
            if options.get(key, "0") not in ("0", ""):
                return f"the source uses {refused or key}"
        matched = _matched(options, config)
        if matched is not None:
            return matched
    return _own(plan, config)


@dataclass(frozen=True, slots=True)
class _Source:
    """The source's video as the smart cut needs it: its track, its avcC (`record`, and parsed),
    its sample description box (`stsd`, whole), its sample tables and a frame's duration in
    the track's timescale."""

    path: Path
    track: Mp4Track
    record: bytes
    config: AvcConfig
    stsd: bytes
    samples: Samples
    frame_units: int


# A re-encoded edge as made: the file it was made in, and its sample tables.
_Made = tuple[Path, Samples]


@dataclass(frozen=True, slots=True)
class _Piece:
    """One piece of the joined stream: `frames` frames from `start_ms`, copied (`encode` None) or
    re-encoded with those libx264 options after leaving out the first `skip` frames shown from
    `start_ms`. `unread`: the file offsets of samples its decoder is spared (frames no other
    frame refers to, shown before the piece)."""

    name: str
    start_ms: int
    frames: int
    encode: dict[str, str] | None = None
    skip: int = 0
    unread: tuple[int, ...] = ()


def smart_cut(plan: PrepPlan, src: Path, out: Path, binary: FfmpegBinary, fps: Fraction, *,
              on_progress: ProgressCallback | None = None,
              track: Mp4Track | None = None) -> str | None:
    """Make `plan`'s window at `out` by a smart cut; None when it was made and proven, else why
    not (then `out` is to be thrown away). `fps` is the source's constant frame rate;
    `on_progress` hears (done_ms, total_ms) as the pieces are made and joined. `track` is the
    source's video track as its probe read it (prepare passes it on); None: read here.

    Everything that can be decided from the sample tables is decided before anything runs."""
    if plan.smart_cut is None:
        return "no whole GOP inside the window"
    source = _read_source(src, track, fps)
    if isinstance(source, str):
        return source
    edges = _edges(plan, src, source.config)
    if isinstance(edges, str):
        return edges
    cut = _layout(plan.smart_cut, source.samples, _edge_bframes(edges))
    if isinstance(cut, str) and _edge_bframes(edges):
        # Edges x264 would time unevenly with the source's B-frames are made without any, under
        # parameter sets of their own (such edges always line up), rather than not at all.
        own = _own(plan, source.config)
        if not isinstance(own, str):
            edges, cut = own, _layout(plan.smart_cut, source.samples, _edge_bframes(own))
    if isinstance(cut, str):
        return cut
    if on_progress:
        on_progress(0, plan.duration_ms)
    with tempfile.TemporaryDirectory(prefix=".prep-smartcut-", dir=out.parent) as tmp_text:
        try:
            return _make(plan, cut, source, edges, Path(tmp_text), out, binary, fps, on_progress)
        except PrepError as err:
            return f"ffmpeg failed ({err})"
        except ValueError as err:  # a description with_avc_config cannot take, a short file
            return f"the pieces could not be joined ({err})"
        except OSError as err:  # a full disk is met again, and reported, by the re-encode
            return f"the joined file could not be written ({err.strerror or err})"


def _read_source(src: Path, track: Mp4Track | None, fps: Fraction) -> _Source | str:
    """The source's video track, parameter sets and sample tables; or why it cannot be cut."""
    if track is None:
        track = read_mp4(src).track("vide")
    record = track.avc_config if track else None
    config = parse_avc_config(record) if record else None
    if track is None or record is None or config is None:
        return "the source's H.264 has more than one sample description, or none"
    frame_units = track.timescale / fps
    if frame_units.denominator != 1:
        return (f"a frame at {fps} fps is not a whole number of the track's time units "
                f"(1/{track.timescale} s)")
    found = read_track(src, "vide")
    if found is None:
        return "the source has no video track"
    samples, boxes = found
    return _Source(src, track, record, config, boxes[b"stsd"], samples, int(frame_units))


def _layout(planned: SmartCut, samples: Samples, bframes: int) -> SmartCut | str:
    """The cut to make: `planned` with as much of its tail copied as can be (`_with_copied_tail`);
    or why no cut x264 can make lines up (edges it would time unevenly, `_uneven`)."""
    if _uneven(planned.head_frames, bframes):
        return (f"the head's {planned.head_frames} frames would come out of x264 ({bframes} "
                "B-frames) with timestamps the join cannot line up")
    return _with_copied_tail(planned, samples, bframes)


def _make(plan: PrepPlan, cut: SmartCut, source: _Source, edges: _Edges, tmp: Path, out: Path,
          binary: FfmpegBinary, fps: Fraction, on_progress: ProgressCallback | None) -> str | None:
    """Make the edges (and the audio) in `tmp` at once, check them, join them with the copied
    GOPs at `out` and prove the result; None when proven, else why not."""
    # An ffmpeg with loopback decoders (7.1+) decodes each edge as it encodes it: no decoding
    # pass after the join (the proof then compares the joined edges' bytes with these). It also
    # takes input bitstream filters, which spare the edges' decoders the frames nothing needs.
    checked = loopback_decoding(binary.path)
    pieces = _pieces(plan, cut, source, edges, spare=checked)
    encoded = [piece for piece in pieces if piece.encode is not None]
    paths = {piece.name: tmp / f"{piece.name}.mp4" for piece in encoded}
    # One thread per decoder and per x264 (threads=1): an edge's decoding, encoding and checking
    # still run side by side (ffmpeg gives each its own thread), as do the head and the tail,
    # on the two cores, and no CPU goes into keeping frame threads in step (6 % of it).
    jobs = [(smart_cut_piece_args(source.path, paths[piece.name], start_ms=piece.start_ms,
                                  frames=piece.frames, timescale=source.track.timescale,
                                  encode=piece.encode or {}, fps=fps, skip_frames=piece.skip,
                                  decode_check=checked, unread=piece.unread, threads=1),
             paths[piece.name]) for piece in encoded]
    audio = tmp / "audio.mp4" if plan.has_audio and plan.audio is not None else None
    if audio is not None:
        jobs.append((smart_cut_audio_args(plan, source.path, audio), audio))
    results = run_together(jobs, binary=binary)
    made = _check_pieces(encoded, [paths[piece.name] for piece in encoded], results, source,
                         edges, checked=checked)
    if isinstance(made, str):
        return made
    record, tables = made
    # Edges decoded as they were made (loopback decoding) are proven by their bytes, not again.
    decoded = {name: (paths[name], samples) for name, samples in tables.items()} if checked else {}
    first_copied = _sample_at(source.samples, cut.first_key_ms)
    assert first_copied is not None, "_layout placed the copy on a keyframe of the source"
    # The copied GOPs come straight from the source; the edges from the files they were made in.
    runs = [VideoRun(source.path, source.samples, first_copied, piece.frames)
            if piece.encode is None else VideoRun(paths[piece.name], tables[piece.name], 0,
                                                  piece.frames)
            for piece in pieces]
    stsd = source.stsd if record == source.record else with_avc_config(source.stsd, record)
    join(out, runs, stsd=stsd, frame_units=source.frame_units, audio=audio)
    if on_progress:
        on_progress(plan.duration_ms, plan.duration_ms)
    return _prove(cut, source.path, out, fps, binary, record, source.samples, decoded=decoded)


def _pieces(plan: PrepPlan, cut: SmartCut, source: _Source, edges: _Edges, *,
            spare: bool) -> list[_Piece]:
    """The head, the copy and the tail of `cut` (those with frames). With `spare`, the edges'
    decoders are spared the frames no other frame refers to that are shown before the edge (of
    the GOP the head starts in, and of the tail's copied first run)."""
    assert plan.smart_cut is not None
    samples = source.samples
    length_size = source.config.length_size
    copied_tail = cut.copy_frames - plan.smart_cut.copy_frames
    head_unread: tuple[int, ...] = ()
    tail_unread: tuple[int, ...] = ()
    first = _sample_at(samples, cut.first_key_ms)
    if spare and first is not None:
        with open(source.path, "rb") as fh:
            head_unread = _unreferenced(samples, fh, _shown_before(samples, first, plan.start_ms),
                                        length_size)
            tail_key = first + plan.smart_cut.copy_frames
            tail_unread = _unreferenced(samples, fh, range(tail_key, tail_key + copied_tail),
                                        length_size) if cut.tail_frames else ()
    pieces = [_Piece("head", plan.start_ms, cut.head_frames, edges.options, 0, head_unread),
              _Piece("copy", cut.first_key_ms, cut.copy_frames),
              _Piece("tail", cut.last_key_ms, cut.tail_frames, edges.options,
                     copied_tail - len(tail_unread), tail_unread)]
    return [piece for piece in pieces if piece.frames]


def _shown_before(samples: Samples, first_copied: int, start_ms: int) -> list[int]:
    """The samples of the GOP the head is decoded from (from the last keyframe shown at or before
    `start_ms` up to the copied GOPs' keyframe `first_copied`) that are shown at least 1 ms
    before `start_ms`: frames the seek to `start_ms` decodes only to throw away."""
    shown_at = min(samples.presentation_times)
    units = samples.timescale

    def before(index: int, ms: int) -> bool:
        return (samples.presentation_times[index] - shown_at) * 1000 < ms * units

    keys = range(first_copied) if samples.sync is None else sorted(
        index for index in samples.sync if index < first_copied)
    starts = [index for index in keys if before(index, start_ms + 1)]
    if not starts:
        return []
    return [index for index in range(starts[-1], first_copied) if before(index, start_ms - 1)]


def _unreferenced(samples: Samples, fh: BinaryIO, indices: Iterable[int],
                  length_size: int) -> tuple[int, ...]:
    """The file offsets of those samples among `indices` that no other frame refers to: every
    slice a non-reference one (nal_ref_idc 0). A decoder that never sees them decodes the
    others exactly as it would have (they are what a decoder skips when asked to skip
    non-reference frames)."""
    return tuple(samples.offsets[index] for index in indices
                 if _non_reference(next(samples.read(fh, index, 1)), samples.sizes[index],
                                   length_size))


def _non_reference(sample: bytes, size: int, length_size: int) -> bool:
    """True when an access unit of `size` bytes, read whole as `sample`, has slices and every
    one is a non-reference slice."""
    if len(sample) < size:
        return False
    slices = [unit for unit in _nal_headers(sample, length_size) if unit & 0x1F in (1, 2, 3, 4, 5)]
    return bool(slices) and not any(unit & 0x60 for unit in slices)


def _check_pieces(edges_made: Sequence[_Piece], paths: Sequence[Path],
                  results: Sequence[RunResult], source: _Source, edges: _Edges, *,
                  checked: bool) -> tuple[bytes, dict[str, Samples]] | str:
    """Whether the re-encoded pieces came out as the join needs them: each with its frames,
    decoded without an error (when `checked`: decoded as they were made) and with parameter
    sets one avcC can hold. The avcC the joined file must carry, and each edge's sample tables
    by name; else why not."""
    expected: AvcConfig | None = None  # None: the source's avcC as it is
    tables: dict[str, Samples] = {}
    for piece, path, result in zip(edges_made, paths, results, strict=False):
        made = read_mp4(path).track("vide")
        samples = read_samples(path)
        if made is None or samples is None or len(samples) != piece.frames:
            return f"the {piece.name} came out with the wrong number of frames"
        tables[piece.name] = samples
        if checked:
            errors = [line for line in result.stderr.splitlines() if line.strip()]
            if errors:
                return f"the re-encoded {piece.name} does not decode cleanly ({errors[-1]})"
        sets = _check_sets(piece.name, edges, source.record, source.config, made.avc_config)
        if isinstance(sets, str):
            return sets
        if sets is not None and expected not in (None, sets):
            return "the head's and the tail's own parameter sets differ"
        expected = sets or expected
    return (source.record if expected is None else expected.to_bytes()), tables


def _with_copied_tail(cut: SmartCut, samples: Samples, bframes: int) -> SmartCut | str:
    """`cut` with as many of the tail's frames copied as can be: the longest run of the last
    GOP's samples, from its keyframe in decode order, that is also its first frames shown (a
    sample only refers to samples decoded before it, so such a run decodes on its own, and
    shows the frames it shows in the source). All of the tail when it ends where a run of
    B-frames does; none when it ends inside the first. The rest is left to x264 only in a
    number of frames it times evenly (`_uneven`, with `bframes`). Else why not."""
    first = _sample_at(samples, cut.first_key_ms)
    if first is None:
        return "the copied GOPs are not where the source's keyframes are"
    key = first + cut.copy_frames
    times = samples.presentation_times
    runs = [0]  # copyable run lengths
    if (cut.tail_frames and key < len(samples)
            and (samples.sync is None or key in samples.sync)):
        shown = sorted(times[first:key + 1])  # the copied GOPs, evenly spaced: a frame's time
        step_units = min((b - a for a, b in zip(shown, shown[1:], strict=False)), default=0)
        latest = times[key]
        for count in range(1, min(cut.tail_frames, len(samples) - key) + 1):
            latest = max(latest, times[key + count - 1])
            if step_units > 0 and latest - times[key] == (count - 1) * step_units:
                runs.append(count)
    usable = [run for run in runs if not _uneven(cut.tail_frames - run, bframes)]
    if not usable:
        return (f"the tail's {cut.tail_frames} frames would come out of x264 ({bframes} "
                "B-frames) with timestamps the join cannot line up")
    copied = max(usable)
    return replace(cut, copy_frames=cut.copy_frames + copied,
                   tail_frames=cut.tail_frames - copied)


def _uneven(frames: int, bframes: int) -> bool:
    """True when x264 encoding `frames` frames (some) with `bframes` B-frames makes a piece the
    join cannot time evenly: up to 2 more frames than its B-frames, its run of B-frames is cut
    short by the end, and it comes out with another decode delay than the source's (measured
    with 3 and 8 B-frames: the joined decode times or presentation times skip). A piece that
    would is not made."""
    return bframes > 0 and 1 <= frames <= bframes + 2


def _edge_bframes(edges: _Edges) -> int:
    """The B-frames x264 may use in the edges: the source's count when its settings are matched,
    else the preset's (none at ultrafast, 3 at the others), either overridden in x264-params."""
    params = dict(item.split("=", 1) for item in edges.options.get("x264-params", "").split(":")
                  if "=" in item)
    if "bframes" in params:
        return int(params["bframes"])
    return 0 if edges.options.get("preset") == "ultrafast" else 3


def _check_sets(name: str, edges: _Edges, source: bytes, theirs: AvcConfig,
                made: bytes | None) -> AvcConfig | str | None:
    """Whether a re-encoded piece's parameter sets are what the join needs: the source's
    (None); for edges with their own, the source's record with the edge's PPS added when the
    edge's SPS is the source's under another id, else with both its sets added (that record);
    else why not."""
    if edges.own_id is None:
        return None if made == source else f"the re-encoded {name}'s parameter sets differ from the source's"
    own = parse_avc_config(made) if made else None
    if (own is None or own.length_size != theirs.length_size
            or own.sps_ids != {edges.own_id} or own.pps_ids != {edges.own_id}):
        return f"the re-encoded {name}'s parameter sets are not under id {edges.own_id}"
    return theirs.sharing_sps(own) or theirs.merged(own)


# Frames of the copied GOP decoded after the head: past its IDR and the B-frames that follow.
_JOIN_FRAMES = 8


def _prove(cut: SmartCut, src: Path, out: Path, fps: Fraction, binary: FfmpegBinary,
           record: bytes, theirs: Samples | None = None, *,
           decoded: dict[str, _Made] | None = None) -> str | None:
    """None when `out` is proven one valid stream made by `cut`, else what failed.

    From the sample tables: one sample description, `record` (the source's avcC, or it with
    the edges' own parameter sets added); the exact frame count; presentation and decode
    times evenly spaced, each piece's frames shown before the next piece's; each piece
    starting on an IDR access unit; and the copied samples byte for byte the source's, from a
    keyframe, showing frames that follow one another in the source, in the source's order
    (whole GOPs, and possibly a first run of the next). An IDR starts a decoder afresh and a
    sample refers only to samples decoded before it, so the copied samples decode exactly as
    they do in the source. What is left, the re-encoded frames, is decoded by one ffmpeg: the
    head with the first frames of the copy, and the tail, with any error a failure. `theirs`:
    the source's samples, when already read. `decoded`: the edges ("head", "tail") already
    decoded without an error as they were encoded, by name, with the piece each was made in
    and its tables: their samples in `out` are proven byte for byte that piece's instead of
    decoded again (their parameter sets are in `record`, and the copy after the head starts on
    an IDR, which no frame before it affects).
    """
    decoded = decoded or {}
    ours, theirs = read_samples(out), theirs or read_samples(src)
    track = read_mp4(out).track("vide")
    if ours is None or theirs is None or track is None:
        return "the joined file has no video track"
    if track.avc_config != record:
        return "the joined stream's parameter sets are not the ones it was made with"
    first_copied = _sample_at(theirs, cut.first_key_ms)
    if first_copied is None or first_copied + cut.copy_frames > len(theirs):
        return "the copied GOPs are not where the source's keyframes are"
    return (_check_times(cut, ours)
            or _check_copied_order(cut, ours, theirs, first_copied)
            or _check_bytes(cut, (out, ours), (src, theirs), first_copied, (record[4] & 3) + 1,
                            decoded)
            or _decode_rest(cut, out, fps, binary, decoded))


def _bounds(cut: SmartCut) -> list[int]:
    """Where the head, the copy and the tail start in the joined stream, and where it ends."""
    return [0, cut.head_frames, cut.head_frames + cut.copy_frames,
            cut.head_frames + cut.copy_frames + cut.tail_frames]


def _check_times(cut: SmartCut, ours: Samples) -> str | None:
    """The joined stream's frame count, and its times evenly spaced: None, else what is wrong."""
    total = _bounds(cut)[-1]
    if len(ours) != total:
        return f"the joined stream has {len(ours)} frames, not {total}"
    if not _evenly_spaced(ours.presentation_times):
        return "the joined stream's timestamps are not evenly spaced"
    if not _evenly_spaced(ours.decode_times):  # else the track runs longer than its frames
        return "the joined stream's decode times are not evenly spaced"
    return None


def _check_copied_order(cut: SmartCut, ours: Samples, theirs: Samples,
                        first_copied: int) -> str | None:
    """The copied samples show consecutive frames of the source, in the source's order."""
    source_times = theirs.presentation_times[first_copied:first_copied + cut.copy_frames]
    if not _evenly_spaced(source_times):
        return "the copied frames are not whole GOPs (or a first run of one)"
    copied_times = ours.presentation_times[cut.head_frames:cut.head_frames + cut.copy_frames]
    if _order(copied_times) != _order(source_times):
        return "the copied frames are not shown in the source's order"
    return None


def _check_bytes(cut: SmartCut, joined: tuple[Path, Samples], source: tuple[Path, Samples],
                 first_copied: int, length_size: int, decoded: dict[str, _Made]) -> str | None:
    """What the joined file's samples hold: each piece's frames shown in its place, each piece
    starting on an IDR, the copied samples the source's, and the edges already decoded the
    pieces' that were."""
    (out, ours), (src, theirs) = joined, source
    bounds = _bounds(cut)
    rank = {t: i for i, t in enumerate(sorted(ours.presentation_times))}
    with open(out, "rb") as fh, open(src, "rb") as sfh:
        for name, low, high in zip(("head", "copy", "tail"), bounds, bounds[1:], strict=False):
            if low == high:
                continue
            if {rank[ours.presentation_times[i]] for i in range(low, high)} != set(range(low, high)):
                return f"the {name}'s frames are not shown in their place"
            if not _is_idr(next(ours.read(fh, low, 1)), length_size):
                return f"the {name} does not start on an IDR frame"
        copied = zip(ours.read(fh, cut.head_frames, cut.copy_frames),
                     theirs.read(sfh, first_copied, cut.copy_frames), strict=True)
        if not all(a == b for a, b in copied):
            return "the copied packets differ from the source's"
        for name, low, high in (("head", bounds[0], bounds[1]), ("tail", bounds[2], bounds[3])):
            if name in decoded and not _same_samples(ours, fh, low, high, *decoded[name]):
                return f"the joined {name} is not the {name} that was decoded"
    return None


def _decode_rest(cut: SmartCut, out: Path, fps: Fraction, binary: FfmpegBinary,
                 decoded: dict[str, _Made]) -> str | None:
    """Decode the re-encoded frames of `out` not `decoded` already (the head with the first
    frames of the copy after it, the tail from its IDR), in one ffmpeg; any error fails."""
    checks: list[tuple[int, int | None]] = []
    if cut.head_frames and "head" not in decoded:
        checks.append((0, cut.head_frames + min(_JOIN_FRAMES, cut.copy_frames)))
    if cut.tail_frames and "tail" not in decoded:
        # Just past the tail's first frame: the seek lands on that IDR and decodes from it.
        checks.append((int(Fraction(_bounds(cut)[2] * 1000) / fps) + 1, None))
    if not checks:
        return None
    result = run(decode_checks_args(out, checks), total_ms=1, path=out, binary=binary)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    if errors:
        return f"the joined stream does not decode cleanly ({errors[-1]})"
    return None


def _same_samples(ours: Samples, fh: BinaryIO, low: int, high: int, piece: Path,
                  theirs: Samples) -> bool:
    """True when samples `low` to `high` of `ours` (open in `fh`) are the samples of `piece`
    (its tables `theirs`)."""
    if len(theirs) != high - low:
        return False
    with open(piece, "rb") as pfh:
        return all(a == b for a, b in zip(ours.read(fh, low, high - low),
                                          theirs.read(pfh, 0, high - low), strict=True))


def _evenly_spaced(times: Sequence[int]) -> bool:
    """True when `times`, sorted, step by one positive amount (or there are fewer than two)."""
    ordered = sorted(times)
    if len(ordered) < 2:
        return True
    step = ordered[1] - ordered[0]
    return step > 0 and all(b - a == step for a, b in zip(ordered, ordered[1:], strict=False))


def _order(times: Sequence[int]) -> list[int]:
    """Each sample's place when shown (the rank of its presentation time)."""
    rank = {t: i for i, t in enumerate(sorted(times))}
    return [rank[t] for t in times]


def _sample_at(samples: Samples, ms: int) -> int | None:
    """The index of the sync sample shown at `ms` (presentation time from the first frame shown,
    rounded down as the plan's keyframe times are)."""
    first = min(samples.presentation_times)
    for index in sorted(samples.sync) if samples.sync is not None else range(len(samples)):
        if (samples.presentation_times[index] - first) * 1000 // samples.timescale == ms:
            return index
    return None


def _is_idr(sample: bytes, length_size: int) -> bool:
    """True when an H.264 access unit (length-prefixed NAL units) holds an IDR slice."""
    return any(unit & 0x1F == 5 for unit in _nal_headers(sample, length_size))


def _nal_headers(sample: bytes, length_size: int) -> Iterator[int]:
    """The header byte of each NAL unit of an access unit (length-prefixed NAL units)."""
    pos = 0
    while pos + length_size < len(sample):
        size = int.from_bytes(sample[pos:pos + length_size], "big")
        yield sample[pos + length_size]
        pos += length_size + size
