"""Writing an mp4 from samples that are already encoded: the smart cut's join, without a muxer.

The video is given as runs of samples of other mp4 files (a re-encoded edge, the source's own
GOPs), laid end to end in time: each run keeps its samples' decode and presentation offsets as
its file stores them, moved to start where the run before it ends. The audio, when there is
one, is another mp4's first audio track taken whole, its tables (timing, sizes, description,
AAC roll groups) carried over as they are. The file comes out as ffmpeg's mp4 muxer would
write it for a web player: the index (moov) first, then the media with the two tracks
interleaved every half second, no edit list, signed composition offsets (`ctts` version 1,
under the `iso4` brand) when B-frames need them. Sample bytes are copied file to file by the
kernel where it can (`copy_file_range`), never decoded or parsed.

Everything but the copy is pure: the tracks' tables (`_video`, `_audio`), the chunks (`_chunks`)
and the index (`_moov`) are planned from the sample tables, and `_write` copies the bytes.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from prep.media.mp4 import Samples, read_track

__all__ = ["VideoRun", "join"]

_MOVIE_TIMESCALE = 1000
_INTERLEAVE_PER_S = 2  # chunks of half a second of each track
_IDENTITY = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_FTYP = b"iso4" + struct.pack(">I", 0x200) + b"iso4isomiso2avc1mp41"
_COPY_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class VideoRun:
    """`count` samples of the video of `path` (its tables `samples`) from sample `first`."""

    path: Path
    samples: Samples
    first: int
    count: int


@dataclass(frozen=True, slots=True)
class _Track:
    """One track of the written file: its samples' sources and the boxes of its index."""

    sources: tuple[tuple[Path, int, int], ...]  # (file, offset, size) per sample
    times: tuple[int, ...]  # decode times, for the interleaving
    timescale: int
    duration: int  # in `timescale`
    header: bytes  # the media header box (vmhd, smhd)
    mdhd: bytes
    hdlr: bytes
    tables: bytes  # the stbl boxes a writer does not lay out (stsd, stts, ctts, stss, stsz, ...)
    size: tuple[int, int]  # the picture's width and height (0, 0 for sound)


def join(out: Path, runs: Sequence[VideoRun], *, stsd: bytes, frame_units: int,
         audio: Path | None = None) -> None:
    """Write `out`: one video track of `runs` end to end, described by `stsd` (its sample
    description box, whole), each frame `frame_units` long in the runs' timescale, beside the
    first audio track of `audio`. ValueError when `audio` has no audio track or a run names
    samples its file does not hold. OSError when a file cannot be read or written."""
    tracks = [_video(runs, stsd, frame_units)]
    if audio is not None:
        tracks.append(_audio(audio))
    chunks = _chunks(tracks)
    moov = _moov(tracks, chunks, start=0)
    data_at = len(_box(b"ftyp", _FTYP)) + len(moov) + 8
    moov = _moov(tracks, chunks, start=data_at)  # the same size: only the offsets changed
    total = sum(size for track in tracks for _path, _offset, size in track.sources)
    if total > 0xFFFFFFFF - 8:
        raise ValueError(f"{total:,} bytes of media do not fit one 32-bit mdat box")
    head = _box(b"ftyp", _FTYP) + moov + struct.pack(">I4s", total + 8, b"mdat")
    order = [tracks[t].sources[i] for t, first, count in chunks
             for i in range(first, first + count)]
    _write(out, head, order)


def _video(runs: Sequence[VideoRun], stsd: bytes, frame_units: int) -> _Track:
    sources: list[tuple[Path, int, int]] = []
    decode: list[int] = []
    shown: list[int] = []
    sync: list[int] = []
    base = 0
    for run in runs:
        s = run.samples
        span = range(run.first, run.first + run.count)
        if run.first < 0 or span.stop > len(s):
            raise ValueError(f"{run.path} holds {len(s)} video samples, not {span.stop}")
        zero_dts, zero_pts = s.decode_times[run.first], min(s.presentation_times[i] for i in span)
        for i in span:
            if s.sync is None or i in s.sync:
                sync.append(len(decode) + 1)
            sources.append((run.path, s.offsets[i], s.sizes[i]))
            decode.append(base + s.decode_times[i] - zero_dts)
            shown.append(base + s.presentation_times[i] - zero_pts)
        base += run.count * frame_units
    timescale = runs[0].samples.timescale
    durations = [b - a for a, b in zip(decode, decode[1:], strict=False)] + [frame_units]
    offsets = [p - d for p, d in zip(shown, decode, strict=True)]
    tables = [stsd, _full(b"stts", 0, _rle(durations))]
    if any(offsets):
        signed = any(o < 0 for o in offsets)
        tables.append(_full(b"ctts", 0, _rle(offsets, signed=signed), version=int(signed)))
    if len(sync) < len(decode):
        tables.append(_full(b"stss", 0, struct.pack(f">I{len(sync)}I", len(sync), *sync)))
    sizes = [size for _path, _offset, size in sources]
    tables.append(_full(b"stsz", 0, struct.pack(f">II{len(sizes)}I", 0, len(sizes), *sizes)))
    width, height = struct.unpack_from(">HH", stsd, 16 + 32)  # stsd, then avc1's fields
    length = sum(durations)
    return _Track(tuple(sources), tuple(decode), timescale, length,
                  _full(b"vmhd", 1, bytes(8)), _mdhd(timescale, length),
                  _hdlr(b"vide", b"VideoHandler"), b"".join(tables), (width, height))


def _audio(path: Path) -> _Track:
    found = read_track(path, "soun")
    if found is None:
        raise ValueError(f"{path} has no audio track")
    samples, boxes = found
    mdhd = boxes[b"mdhd"]
    wide = mdhd[8] == 1
    timescale, duration = struct.unpack_from(">IQ" if wide else ">II", mdhd, 28 if wide else 20)
    # Timing, sizes and the description as the audio's own muxer wrote them (with any roll
    # groups: the AAC decoder's one frame of pre-roll); only where the samples lie is new.
    tables = b"".join(boxes[kind] for kind in (b"stsd", b"stts", b"ctts", b"stss", b"stsz",
                                               b"sgpd", b"sbgp") if kind in boxes)
    sources = tuple((path, offset, size)
                    for offset, size in zip(samples.offsets, samples.sizes, strict=True))
    return _Track(sources, samples.decode_times, timescale, duration,
                  boxes.get(b"smhd") or _full(b"smhd", 0, bytes(4)), mdhd,
                  _hdlr(b"soun", b"SoundHandler"), tables, (0, 0))


def _chunks(tracks: Sequence[_Track]) -> list[tuple[int, int, int]]:
    """(track, first sample, count) of each chunk in file order: every half second of the
    video, then the same half second of the audio."""
    slots = [[time * _INTERLEAVE_PER_S // track.timescale for time in track.times]
             for track in tracks]
    chunks = []
    at = [0] * len(tracks)
    for slot in sorted({slot for track_slots in slots for slot in track_slots}):
        for t, track_slots in enumerate(slots):
            first = at[t]
            while at[t] < len(track_slots) and track_slots[at[t]] <= slot:
                at[t] += 1
            if at[t] > first:
                chunks.append((t, first, at[t] - first))
    return chunks


def _moov(tracks: Sequence[_Track], chunks: Sequence[tuple[int, int, int]], *,
          start: int) -> bytes:
    """The index, with the media starting at file offset `start`."""
    offsets: list[list[int]] = [[] for _ in tracks]
    runs: list[list[int]] = [[] for _ in tracks]
    pos = start
    for t, first, count in chunks:
        offsets[t].append(pos)
        runs[t].append(count)
        pos += sum(size for _path, _offset, size in tracks[t].sources[first:first + count])
    movie = [-(-track.duration * _MOVIE_TIMESCALE // track.timescale) for track in tracks]
    mvhd = _full(b"mvhd", 0, struct.pack(">5I", 0, 0, _MOVIE_TIMESCALE, max(movie), 0x10000)
                 + struct.pack(">H10x9I24xI", 0x100, *_IDENTITY, len(tracks) + 1))
    traks = []
    for number, track in enumerate(tracks, start=1):
        sound = track.size == (0, 0)
        tkhd = _full(b"tkhd", 3, struct.pack(">5I8x4H9I2I", 0, 0, number, 0, movie[number - 1],
                                              0, 0, 0x100 if sound else 0, 0, *_IDENTITY,
                                              track.size[0] << 16, track.size[1] << 16))
        stsc = [(n, count) for n, count in enumerate(runs[number - 1], start=1)]
        stsc = [entry for i, entry in enumerate(stsc) if i == 0 or entry[1] != stsc[i - 1][1]]
        stsc_box = _full(b"stsc", 0, struct.pack(f">I{3 * len(stsc)}I", len(stsc),
                                                 *(v for n, c in stsc for v in (n, c, 1))))
        places = offsets[number - 1]
        stco = _full(b"stco", 0, struct.pack(f">I{len(places)}I", len(places), *places))
        stbl = _box(b"stbl", track.tables + stsc_box + stco)
        dinf = _box(b"dinf", _full(b"dref", 0, struct.pack(">I", 1) + _full(b"url ", 1, b"")))
        minf = _box(b"minf", track.header + dinf + stbl)
        traks.append(_box(b"trak", tkhd + _box(b"mdia", track.mdhd + track.hdlr + minf)))
    if pos > 0xFFFFFFFF:
        raise ValueError("the file would need 64-bit chunk offsets")
    return _box(b"moov", mvhd + b"".join(traks))


def _write(out: Path, head: bytes, order: Sequence[tuple[Path, int, int]]) -> None:
    """`head`, then the bytes of every (file, offset, size) in `order`, into `out`."""
    handles: dict[Path, int] = {}
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, head)
        for path, offset, size in _merged(order):
            if path not in handles:
                handles[path] = os.open(path, os.O_RDONLY)
            _copy(handles[path], fd, offset, size, path)
    finally:
        os.close(fd)
        for handle in handles.values():
            os.close(handle)


def _merged(order: Sequence[tuple[Path, int, int]]) -> Iterator[tuple[Path, int, int]]:
    """`order` with the ranges that follow one another in the same file made one."""
    current: tuple[Path, int, int] | None = None
    for path, offset, size in order:
        if current and current[0] == path and current[1] + current[2] == offset:
            current = (path, current[1], current[2] + size)
            continue
        if current:
            yield current
        current = (path, offset, size)
    if current:
        yield current


def _copy(src: int, dst: int, offset: int, size: int, path: Path) -> None:
    """`size` bytes of `src` from `offset`, appended to `dst`: by the kernel where the two
    files allow it, else read and written."""
    kernel = True
    while size:
        done = 0
        if kernel:
            try:
                done = os.copy_file_range(src, dst, min(size, _COPY_BLOCK), offset)
            except OSError as err:  # another file system, an old kernel: read and write
                if err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                    raise
                kernel = False
                continue
        else:
            data = os.pread(src, min(size, _COPY_BLOCK), offset)
            done = os.write(dst, data) if data else 0
        if done <= 0:
            raise ValueError(f"{path} ends before the samples its index lists")
        offset += done
        size -= done


def _rle(values: Sequence[int], *, signed: bool = False) -> bytes:
    """A (count, value) table of `values`, with its entry count in front."""
    entries: list[list[int]] = []
    for value in values:
        if entries and entries[-1][1] == value:
            entries[-1][0] += 1
        else:
            entries.append([1, value])
    code = "Ii" if signed else "II"
    return struct.pack(">I", len(entries)) + b"".join(struct.pack(">" + code, *entry)
                                                     for entry in entries)


def _mdhd(timescale: int, duration: int) -> bytes:
    return _full(b"mdhd", 0, struct.pack(">4I2H", 0, 0, timescale, duration, 0x55C4, 0))  # und


def _hdlr(kind: bytes, name: bytes) -> bytes:
    return _full(b"hdlr", 0, struct.pack(">I4s12x", 0, kind) + name + b"\0")


def _full(kind: bytes, flags: int, payload: bytes, version: int = 0) -> bytes:
    """A full box: version and flags, then `payload`."""
    return _box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", len(payload) + 8, kind) + payload
