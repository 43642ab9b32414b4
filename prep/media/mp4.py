"""A small, read-only ISO-BMFF (mp4 / mov) box reader: what prep must know that MediaInfo hides.

MediaInfo honours edit lists, and a server may not. This reader gives the raw facts from the sample
tables: each track's duration as the sum of its sample durations, its keyframes (`stss`), the
size of its media (`stsz`), whether it carries an edit list, and whether the index (`moov`) comes
before the media (`mdat`).
Only the boxes on the path to those tables are parsed; media data is skipped, never read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["Mp4Info", "Mp4Track", "read_mp4"]

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}
# Sample tables are small next to the media; this keeps a damaged size field from eating memory.
_MAX_TABLE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Mp4Track:
    """One track's raw timing: `duration_ms` sums its samples and ignores any edit list."""

    kind: str  # "vide", "soun" or another handler type
    timescale: int
    sample_count: int
    duration_units: int
    keyframe_ms: tuple[int, ...] | None  # None: every sample is a keyframe (no stss box)
    has_edit_list: bool
    media_bytes: int | None = None  # sum of the sample sizes (stsz); None when not known

    @property
    def duration_ms(self) -> int:
        """Sum of the sample durations, in whole ms (rounded down: never longer than it is)."""
        return self.duration_units * 1000 // self.timescale if self.timescale else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Mp4Info:
    """What the sample tables of an mp4 / mov file say."""

    tracks: tuple[Mp4Track, ...]
    moov_first: bool

    def track(self, kind: str) -> Mp4Track | None:
        """The first track of a kind ("vide" or "soun")."""
        return next((t for t in self.tracks if t.kind == kind), None)

    @property
    def has_edit_list(self) -> bool:
        """True when any track has an edit list (a player may hide or shift media with it)."""
        return any(t.has_edit_list for t in self.tracks)


def read_mp4(path: Path | str) -> Mp4Info:
    """Read the sample tables of an mp4 / mov file. ValueError if it is not one, or is damaged."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(0)
        moov: bytes | None = None
        moov_first = False
        seen_mdat = False
        for kind, start, length in _boxes(fh, 0, size):
            if kind == b"mdat":
                seen_mdat = True
            elif kind == b"moov":
                if length > _MAX_TABLE_BYTES:
                    raise ValueError("the moov box is implausibly large")
                fh.seek(start)
                moov = fh.read(length)
                moov_first = not seen_mdat
        if moov is None:
            raise ValueError("no moov box (not an mp4, or truncated)")
    tracks = tuple(_track(moov[s:s + n]) for kind, s, n in _walk(moov, 0, len(moov))
                   if kind == b"trak")
    return Mp4Info(tracks=tracks, moov_first=moov_first)


def _boxes(fh: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload length) of the top-level boxes of a file."""
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        header = fh.read(16)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header[:8])
        skip = 8
        if size == 1:
            if len(header) < 16:
                raise ValueError("truncated box header")
            size = struct.unpack(">Q", header[8:16])[0]
            skip = 16
        elif size == 0:
            size = end - pos
        if size < skip:
            raise ValueError("damaged box size")
        yield kind, pos + skip, min(size, end - pos) - skip
        pos += size


def _walk(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload length) of the boxes in `data[start:end]`, one level."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        skip = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            skip = 16
        elif size == 0:
            size = end - pos
        if size < skip or pos + size > end:
            raise ValueError("damaged box inside moov")
        yield kind, pos + skip, size - skip
        pos += size


def _find(data: bytes, path: tuple[bytes, ...]) -> bytes | None:
    """The payload of the first box along `path`."""
    if not path:
        return data
    for kind, start, length in _walk(data, 0, len(data)):
        if kind == path[0]:
            found = _find(data[start:start + length], path[1:])
            if found is not None:
                return found
    return None


def _track(trak: bytes) -> Mp4Track:
    hdlr = _find(trak, (b"mdia", b"hdlr"))
    kind = hdlr[8:12].decode("latin-1") if hdlr and len(hdlr) >= 12 else "?"
    mdhd = _find(trak, (b"mdia", b"mdhd"))
    if not mdhd:
        raise ValueError("a track has no media header")
    timescale = struct.unpack_from(">I", mdhd, 20 if mdhd[0] == 1 else 12)[0]
    stbl = _find(trak, (b"mdia", b"minf", b"stbl")) or b""
    total = count = 0
    stts = _find(stbl, (b"stts",)) or b""
    if stts:
        (entries,) = struct.unpack_from(">I", stts, 4)
        for i in range(entries):
            run, delta = struct.unpack_from(">II", stts, 8 + 8 * i)
            total += run * delta
            count += run
    keyframes: tuple[int, ...] | None = None
    stss = _find(stbl, (b"stss",))
    if stss and stts and timescale:
        (entries,) = struct.unpack_from(">I", stss, 4)
        numbers = struct.unpack_from(f">{entries}I", stss, 8)
        ctts = _find(stbl, (b"ctts",)) or b""
        # Presentation times, counted from the first frame shown (what players call 0).
        first = min((_pts(stts, ctts, i) for i in range(min(count, 16))), default=0)
        keyframes = tuple((_pts(stts, ctts, n - 1) - first) * 1000 // timescale for n in numbers)
    elst = _find(trak, (b"edts", b"elst"))
    return Mp4Track(kind=kind, timescale=timescale, sample_count=count, duration_units=total,
                    keyframe_ms=keyframes, has_edit_list=bool(elst and _edits_matter(elst)),
                    media_bytes=_media_bytes(_find(stbl, (b"stsz",))))


def _media_bytes(stsz: bytes | None) -> int | None:
    """Total size of a track's samples: one size for all of them, or a table of sizes."""
    if not stsz or len(stsz) < 12:
        return None
    size, count = struct.unpack_from(">II", stsz, 4)
    if size:
        return int(size) * int(count)
    return sum(int(n) for n in struct.unpack_from(f">{count}I", stsz, 12))


def _pts(stts: bytes, ctts: bytes, index: int) -> int:
    """Presentation time of sample `index` (0-based): decode time plus composition offset."""
    return _run_lookup(stts, index, cumulative=True) + (
        _run_lookup(ctts, index, cumulative=False) if ctts else 0)


def _run_lookup(table: bytes, index: int, *, cumulative: bool) -> int:
    """Walk a run-length table (stts or ctts): the decode time, or the offset, of sample `index`."""
    (entries,) = struct.unpack_from(">I", table, 4)
    time = 0
    for i in range(entries):
        run, value = struct.unpack_from(">Ii", table, 8 + 8 * i)
        if index < run:
            return int(time + index * value if cumulative else value)
        time += run * value
        index -= run
    return time if cumulative else 0


def _edits_matter(elst: bytes) -> bool:
    """An edit list that only maps the whole track from time 0 changes nothing."""
    version = elst[0]
    (entries,) = struct.unpack_from(">I", elst, 4)
    if entries == 0:
        return False
    if entries > 1:
        return True
    if version == 1:
        _duration, media_time = struct.unpack_from(">Qq", elst, 8)
    else:
        _duration, media_time = struct.unpack_from(">Ii", elst, 8)
    return bool(media_time != 0)
