"""Just enough of the ISO base media file format (mp4) and QuickTime (mov) to judge a reference.

The sandbox reads a referenced video itself, as EvoLink's servers would: the container from the
`ftyp` box (QuickTime files may have none), the movie's duration from `moov/mvhd`, and each track's
kind and duration from `trak/mdia/hdlr` and `trak/mdia/mdhd` (or, when the track has an edit list,
from what the edit list presents). Nothing here is shared with the client's probing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .bodies import sniff_video

__all__ = ["Movie", "NotAMovie", "Track", "read_movie"]

# A moov box larger than this is not something a 100 MB reference can honestly carry.
_MAX_MOOV_BYTES = 64 * 1024 * 1024
_MAX_TOP_BOXES = 10_000
_MAX_DEPTH = 16
_CONTAINERS = {b"moov", b"trak", b"mdia", b"edts", b"mvex"}
_NAMES = {"video/x-matroska": "matroska", "video/webm": "webm", "video/x-msvideo": "avi",
          "video/mpeg": "mpeg-ps", "video/x-flv": "flv", "video/mp2t": "mpeg-ts"}


class NotAMovie(Exception):
    """The file is not an mp4/mov the sandbox can read; the message says why, in a few words."""

    def __init__(self, message: str, *, container: str | None = None) -> None:
        super().__init__(message)
        self.container = container


@dataclass(frozen=True, slots=True)
class Track:
    """One track: 'video', 'audio' or another handler name, and how long it lasts."""

    kind: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Movie:
    """What the sandbox knows of a referenced video."""

    container: str
    duration_ms: int
    tracks: tuple[Track, ...]

    @property
    def durations_ms(self) -> tuple[int, ...]:
        """The movie's duration and those of its video and audio tracks (the known ones)."""
        own = [t.duration_ms for t in self.tracks if t.kind in ("video", "audio") and t.duration_ms]
        return tuple(d for d in (self.duration_ms, *own) if d)

    @property
    def shortest_ms(self) -> int:
        return min(self.durations_ms)

    @property
    def longest_ms(self) -> int:
        return max(self.durations_ms)

    @property
    def has_video(self) -> bool:
        return any(t.kind == "video" for t in self.tracks)


def _ms(duration: int, timescale: int) -> int:
    """Ticks to milliseconds, half-up."""
    return (duration * 1000 * 2 + timescale) // (timescale * 2)


def _container(brand: bytes | None) -> str:
    if brand is None or brand == b"qt  ":
        return "mov"
    if brand.startswith(b"M4V"):
        return "m4v"
    if brand.startswith(b"M4A") or brand.startswith(b"M4B"):
        return "m4a"
    if brand.startswith((b"3gp", b"3g2")):
        return "3gp"
    return "mp4"


def _top_boxes(fh: BinaryIO, size: int) -> list[tuple[bytes, int, int]]:
    """(type, payload offset, payload size) of each top-level box."""
    out: list[tuple[bytes, int, int]] = []
    pos = 0
    while pos + 8 <= size:
        if len(out) >= _MAX_TOP_BOXES:
            raise NotAMovie("it has too many top-level boxes")
        fh.seek(pos)
        head = fh.read(16)
        box_size, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if box_size == 1:
            if len(head) < 16:
                raise NotAMovie("a box header is cut short")
            box_size = struct.unpack(">Q", head[8:16])[0]
            header = 16
        elif box_size == 0:
            box_size = size - pos
        if box_size < header or pos + box_size > size:
            if kind == b"mdat" or not out:
                box_size = size - pos  # a cut-off last box: keep what is there
                if box_size < header:
                    break
            else:
                raise NotAMovie(f"the {kind.decode('latin-1')!r} box runs past the end of the file")
        out.append((kind, pos + header, box_size - header))
        pos += box_size
    return out


def _children(data: bytes, depth: int = 0) -> list[tuple[bytes, bytes]]:
    """(type, payload) of the boxes inside a container box's payload."""
    if depth > _MAX_DEPTH:
        raise NotAMovie("its boxes nest too deeply")
    out = []
    pos = 0
    while pos + 8 <= len(data):
        box_size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if box_size == 1:
            if pos + 16 > len(data):
                raise NotAMovie("a box header is cut short")
            box_size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            header = 16
        elif box_size == 0:
            box_size = len(data) - pos
        if box_size < header or pos + box_size > len(data):
            raise NotAMovie(f"the {kind.decode('latin-1')!r} box is damaged")
        out.append((kind, data[pos + header:pos + box_size]))
        pos += box_size
    return out


def _find(boxes: list[tuple[bytes, bytes]], kind: bytes) -> bytes | None:
    return next((payload for k, payload in boxes if k == kind), None)


def _header_times(payload: bytes, what: str) -> tuple[int, int]:
    """(timescale, duration) of an mvhd or mdhd box (versions 0 and 1)."""
    if not payload:
        raise NotAMovie(f"its {what} box is empty")
    version = payload[0]
    try:
        if version == 1:
            timescale, duration = struct.unpack(">IQ", payload[20:32])
        else:
            timescale, duration = struct.unpack(">II", payload[12:20])
    except struct.error as err:
        raise NotAMovie(f"its {what} box is cut short") from err
    if timescale == 0:
        raise NotAMovie(f"its {what} box has a time scale of 0")
    if duration in (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
        duration = 0  # "unknown" in the spec's words
    return timescale, duration


def _edit_ms(edts: bytes, movie_timescale: int) -> int | None:
    """What an edit list presents, in ms (empty edits count: they delay the track)."""
    elst = _find(_children(edts), b"elst")
    if elst is None or len(elst) < 8:
        return None
    version = elst[0]
    count = struct.unpack(">I", elst[4:8])[0]
    entry = 20 if version == 1 else 12
    if count == 0 or 8 + count * entry > len(elst):
        return None
    total = 0
    for i in range(count):
        at = 8 + i * entry
        total += (struct.unpack(">Q", elst[at:at + 8])[0] if version == 1
                  else struct.unpack(">I", elst[at:at + 4])[0])
    return _ms(total, movie_timescale) if total else None


def _track(trak: bytes, movie_timescale: int) -> Track | None:
    boxes = _children(trak, 1)
    mdia = _find(boxes, b"mdia")
    if mdia is None:
        return None
    parts = _children(mdia, 2)
    hdlr, mdhd = _find(parts, b"hdlr"), _find(parts, b"mdhd")
    if hdlr is None or mdhd is None or len(hdlr) < 12:
        return None
    handler = hdlr[8:12]
    kind = {b"vide": "video", b"soun": "audio"}.get(handler, handler.decode("latin-1").strip())
    timescale, duration = _header_times(mdhd, "mdhd")
    duration_ms = _ms(duration, timescale)
    edts = _find(boxes, b"edts")
    if edts is not None:
        presented = _edit_ms(edts, movie_timescale)
        if presented is not None:
            duration_ms = presented
    return Track(kind=kind, duration_ms=duration_ms)


def read_movie(path: Path) -> Movie:
    """Read a file's container, duration and tracks. NotAMovie when it is not a readable mp4/mov
    (its `container` then names the format when the first bytes tell it)."""
    with path.open("rb") as fh:
        head = fh.read(512)
        size = fh.seek(0, 2)
        if len(head) < 8:
            raise NotAMovie("the file is too short to be a video")
        kind = head[4:8]
        if kind != b"ftyp" and kind not in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
            mime = sniff_video(head)
            name = _NAMES.get(mime or "", "unknown")
            raise NotAMovie(f"it is not an mp4 or mov file ({name})", container=name)
        top = _top_boxes(fh, size)
        brand = None
        moov_at = None
        for box, offset, length in top:
            if box == b"ftyp" and brand is None:
                fh.seek(offset)
                brand = fh.read(4)
            elif box == b"moov" and moov_at is None:
                moov_at = (offset, length)
        container = _container(brand)
        if moov_at is None:
            raise NotAMovie("it has no moov box (an unfinished or damaged recording?)",
                            container=container)
        if moov_at[1] > _MAX_MOOV_BYTES:
            raise NotAMovie("its moov box is implausibly large", container=container)
        fh.seek(moov_at[0])
        moov = fh.read(moov_at[1])
    boxes = _children(moov)
    mvhd = _find(boxes, b"mvhd")
    if mvhd is None:
        raise NotAMovie("its moov box has no mvhd box", container=container)
    timescale, duration = _header_times(mvhd, "mvhd")
    duration_ms = _ms(duration, timescale)
    if duration_ms == 0:
        mvex = _find(boxes, b"mvex")
        mehd = _find(_children(mvex), b"mehd") if mvex is not None else None
        if mehd is not None and len(mehd) >= 8:
            ticks = (struct.unpack(">Q", mehd[4:12])[0] if mehd[0] == 1 and len(mehd) >= 12
                     else struct.unpack(">I", mehd[4:8])[0])
            duration_ms = _ms(ticks, timescale)
    tracks = tuple(t for k, payload in boxes if k == b"trak"
                   if (t := _track(payload, timescale)) is not None)
    movie = Movie(container=container, duration_ms=duration_ms, tracks=tracks)
    if not movie.has_video:
        raise NotAMovie("it has no video track", container=container)
    if not movie.durations_ms:
        raise NotAMovie("its duration cannot be read", container=container)
    return movie
