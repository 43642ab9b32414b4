"""The sandbox's own mp4/mov reader agrees with prep's probe on real files and refuses broken ones
with a reason (never a crash)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from sandbox_util import tiny_clip

from prep.media.probe import probe
from prep.sandbox.boxes import NotAMovie, read_movie


@pytest.mark.media
@pytest.mark.parametrize("kwargs", [
    {}, {"suffix": ".mov", "name": "sandbox-ref-mov"}, {"seconds": 6, "name": "sandbox-six"},
    {"seconds": 1.5, "name": "sandbox-short"},
])
def test_agrees_with_probe(kwargs: dict[str, object]) -> None:
    path = tiny_clip(**kwargs)  # type: ignore[arg-type]
    movie, info = read_movie(path), probe(path)
    assert movie.container == info.container
    assert movie.duration_ms == info.duration_ms
    assert (movie.shortest_ms, movie.longest_ms) == (info.min_duration_ms, info.max_duration_ms)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _mvhd(timescale: int, duration: int, *, version: int = 0) -> bytes:
    if version == 1:
        return _box(b"mvhd", bytes([1, 0, 0, 0]) + b"\0" * 16 + struct.pack(">IQ", timescale,
                                                                               duration))
    return _box(b"mvhd", b"\0" * 12 + struct.pack(">II", timescale, duration))


def _trak(handler: bytes, timescale: int, duration: int) -> bytes:
    mdhd = _box(b"mdhd", b"\0" * 12 + struct.pack(">II", timescale, duration))
    hdlr = _box(b"hdlr", b"\0" * 8 + handler + b"\0" * 12)
    return _box(b"trak", _box(b"mdia", mdhd + hdlr))


def test_reads_handmade_boxes_with_64_bit_sizes(tmp_path: Path) -> None:
    moov = _box(b"moov", _mvhd(600, 6_000, version=1) + _trak(b"vide", 90_000, 900_000)
                + _trak(b"soun", 48_000, 480_960))
    mdat = struct.pack(">I4sQ", 1, b"mdat", 16 + 100) + b"\0" * 100
    path = tmp_path / "a.mp4"
    path.write_bytes(_box(b"ftyp", b"isom\0\0\0\0isom") + mdat + moov)
    movie = read_movie(path)
    assert (movie.container, movie.duration_ms, movie.shortest_ms, movie.longest_ms) == (
        "mp4", 10_000, 10_000, 10_020)


@pytest.mark.parametrize(("data", "needle"), [
    (b"", "too short"),
    (b"\x1a\x45\xdf\xa3" + b"\0" * 60, "not an mp4 or mov"),
    (_box(b"ftyp", b"isom\0\0\0\0") + b"\0" * 100, "no moov"),
    (_box(b"ftyp", b"qt  \0\0\0\0") + _box(b"moov", _trak(b"vide", 600, 600)), "no mvhd"),
    (_box(b"ftyp", b"isom\0\0\0\0") + _box(b"moov", _mvhd(0, 5)), "time scale of 0"),
    (_box(b"ftyp", b"isom\0\0\0\0") + _box(b"moov", _mvhd(600, 600) + _trak(b"soun", 600, 600)),
     "no video track"),
    (_box(b"ftyp", b"isom\0\0\0\0") + struct.pack(">I4s", 4000, b"moov") + b"\0" * 10,
     "runs past the end"),
    (_box(b"ftyp", b"isom\0\0\0\0") + _box(b"moov", struct.pack(">I4s", 99, b"trak")),
     "damaged"),
])
def test_broken_files_are_refused_with_a_reason(tmp_path: Path, data: bytes, needle: str) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(data)
    with pytest.raises(NotAMovie, match=needle):
        read_movie(path)
