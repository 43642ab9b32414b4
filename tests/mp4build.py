"""Synthetic mp4 files built box by box: long clips' sample tables without encoding anything.

`long_clip_file` writes ftyp + moov + an mdat whose payload is a hole (a sparse file), so a
20-minute clip's index costs a few hundred KB and no encoding. Used by tests/test_mp4.py and
scripts/bench_mp4.py.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", version << 24), *payload)


def _table(kind: bytes, rows: list[tuple[int, ...]], fmt: str, version: int = 0) -> bytes:
    packed = b"".join(struct.pack(">" + fmt, *row) for row in rows)
    return full_box(kind, version, struct.pack(">I", len(rows)), packed)


@dataclass(frozen=True)
class Track:
    """One track's tables. `sizes` per sample; chunks of `per_chunk` samples laid end to end."""

    handler: bytes
    timescale: int
    deltas: list[tuple[int, int]]  # stts runs (count, delta)
    sizes: list[int]
    per_chunk: int
    keyframes: list[int] | None = None  # 1-based sample numbers (stss)
    offsets: list[tuple[int, int]] | None = None  # ctts runs (count, offset)

    @property
    def chunk_count(self) -> int:
        return -(-len(self.sizes) // self.per_chunk)


def _trak(track: Track, chunk_offsets: list[int]) -> bytes:
    mdhd = full_box(b"mdhd", 0, struct.pack(">IIII", 0, 0, track.timescale,
                                            sum(n * d for n, d in track.deltas)), b"\0" * 4)
    hdlr = full_box(b"hdlr", 0, b"\0" * 4, track.handler, b"\0" * 12, b"t\0")
    tables = [
        _table(b"stts", list(track.deltas), "II"),
        full_box(b"stsz", 0, struct.pack(">II", 0, len(track.sizes)),
                 struct.pack(f">{len(track.sizes)}I", *track.sizes)),
        _table(b"stsc", [(1, track.per_chunk, 1)], "III"),
        _table(b"stco", [(o,) for o in chunk_offsets], "I"),
    ]
    if track.keyframes is not None:
        tables.append(_table(b"stss", [(n,) for n in track.keyframes], "I"))
    if track.offsets is not None:
        tables.append(_table(b"ctts", list(track.offsets), "Ii", version=1))
    stbl = box(b"stbl", *tables)
    return box(b"trak", box(b"mdia", mdhd, hdlr, box(b"minf", stbl)))


def build(tracks: list[Track]) -> tuple[bytes, int]:
    """ftyp + moov, and the size of the mdat payload that must follow them.

    Chunks are interleaved track by track in chunk order, as muxers do.
    """
    ftyp = box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")

    def moov_with(offsets: list[list[int]]) -> bytes:
        return box(b"moov", *(_trak(t, o) for t, o in zip(tracks, offsets, strict=True)))

    placeholder = [[0] * t.chunk_count for t in tracks]
    data_start = len(ftyp) + len(moov_with(placeholder)) + 8
    offsets: list[list[int]] = [[] for _ in tracks]
    pos = data_start
    for chunk in range(max(t.chunk_count for t in tracks)):
        for i, track in enumerate(tracks):
            if chunk < track.chunk_count:
                offsets[i].append(pos)
                pos += sum(track.sizes[chunk * track.per_chunk:(chunk + 1) * track.per_chunk])
    return ftyp + moov_with(offsets), pos - data_start


def write(path: Path, tracks: list[Track], *, keep_bytes: int | None = None) -> Path:
    """Write the file with a sparse mdat; `keep_bytes` cuts it short (a truncated copy)."""
    head, payload = build(tracks)
    with path.open("wb") as fh:
        fh.write(head)
        fh.write(struct.pack(">I4s", 8 + payload, b"mdat"))
        fh.truncate(len(head) + 8 + payload if keep_bytes is None else keep_bytes)
    return path


def long_clip(minutes: float, *, fps: int = 30, gop: int = 30) -> list[Track]:
    """A camera-like H.264 + AAC clip: B-frames (a ctts entry per sample), a keyframe every
    `gop` frames, one-second chunks, AAC 48 kHz in 1024-sample frames."""
    frames = int(minutes * 60 * fps)
    pattern = [2, 5, 0, 0, 1]  # composition offsets in frames, as an IBBP-ish reorder gives
    video = Track(
        handler=b"vide", timescale=fps * 512, deltas=[(frames, 512)],
        sizes=[(40_000 if i % gop == 0 else 9_000 + (i * 37) % 500) for i in range(frames)],
        per_chunk=fps, keyframes=list(range(1, frames + 1, gop)),
        offsets=[(1, pattern[i % len(pattern)] * 512) for i in range(frames)],
    )
    aac_frames = int(minutes * 60 * 48_000 / 1024)
    audio = Track(handler=b"soun", timescale=48_000, deltas=[(aac_frames, 1024)],
                  sizes=[(380 + (i * 13) % 40) for i in range(aac_frames)], per_chunk=47)
    return [video, audio]
