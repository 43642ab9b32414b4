"""H.264 parameter sets in an mp4: the avcC record, the ids its SPS and PPS carry, and
putting a new avcC into a finished file.

A smart cut of footage made by another encoder than x264 cannot re-encode its edges with the
source's own parameter sets. It gives the edges their own (x264's `sps-id`: an SPS and a PPS id
the source does not use) and lists both encoders' parameter sets in the one avcC: every slice
names its PPS by id, so decoders find the right one for each frame, within one sample
description and without parameter sets in the samples.
"""

from __future__ import annotations

import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["AvcConfig", "parse_avc_config", "replace_avc_config"]

# H.264 allows SPS ids 0-31 and PPS ids 0-255; x264's `sps-id` sets both to one number.
MAX_SPS_ID = 31


@dataclass(frozen=True, slots=True)
class AvcConfig:
    """An AVCDecoderConfigurationRecord (ISO/IEC 14496-15), split into its parts."""

    profile: int
    compatibility: int
    level: int
    length_size: int  # bytes of each NAL unit's length prefix in the samples
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    extension: bytes  # what follows the PPS (High profiles: chroma format and bit depths)

    @property
    def sps_ids(self) -> frozenset[int]:
        return frozenset(_ue_fields(unit[4:], 1)[0] for unit in self.sps)

    @property
    def pps_ids(self) -> frozenset[int]:
        return frozenset(_ue_fields(unit[1:], 1)[0] for unit in self.pps)

    def free_id(self) -> int | None:
        """The lowest id that no SPS and no PPS of this record uses (None when all are)."""
        used = self.sps_ids | self.pps_ids
        return next((n for n in range(MAX_SPS_ID + 1) if n not in used), None)

    def merged(self, other: AvcConfig) -> AvcConfig:
        """This record with `other`'s parameter sets added after its own."""
        return AvcConfig(self.profile, self.compatibility, self.level, self.length_size,
                         self.sps + other.sps, self.pps + other.pps, self.extension)

    def to_bytes(self) -> bytes:
        out = bytearray([1, self.profile, self.compatibility, self.level,
                         0xFC | (self.length_size - 1), 0xE0 | len(self.sps)])
        for unit in self.sps:
            out += struct.pack(">H", len(unit)) + unit
        out.append(len(self.pps))
        for unit in self.pps:
            out += struct.pack(">H", len(unit)) + unit
        return bytes(out + self.extension)


def parse_avc_config(record: bytes) -> AvcConfig | None:
    """The parts of an avcC record; None when it is not one prep can read and rewrite."""
    if len(record) < 7 or record[0] != 1:
        return None
    try:
        pos = 6
        sps = []
        for _ in range(record[5] & 0x1F):
            (size,) = struct.unpack_from(">H", record, pos)
            sps.append(record[pos + 2:pos + 2 + size])
            pos += 2 + size
        pps = []
        count = record[pos]
        pos += 1
        for _ in range(count):
            (size,) = struct.unpack_from(">H", record, pos)
            pps.append(record[pos + 2:pos + 2 + size])
            pos += 2 + size
        if (pos > len(record) or not sps or not pps or any(len(u) < 5 for u in sps)
                or any(len(u) < 2 for u in pps)):
            return None
        config = AvcConfig(record[1], record[2], record[3], (record[4] & 3) + 1, tuple(sps),
                           tuple(pps), record[pos:])
        _ = config.sps_ids | config.pps_ids  # a record whose ids cannot be read is refused
    except (struct.error, IndexError, ValueError):
        return None
    return config


def _ue_fields(data: bytes, count: int) -> list[int]:
    """The first `count` unsigned Exp-Golomb fields of a NAL unit's payload (emulation
    prevention bytes removed first). ValueError when the data ends early."""
    rbsp = data.replace(b"\x00\x00\x03", b"\x00\x00")
    bits = "".join(f"{byte:08b}" for byte in rbsp[:16])
    pos, values = 0, []
    for _ in range(count):
        zeros = bits.find("1", pos) - pos
        if zeros < 0 or pos + 2 * zeros + 1 > len(bits):
            raise ValueError("an Exp-Golomb field runs past the data")
        values.append(int(bits[pos + zeros:pos + 2 * zeros + 1], 2) - 1)
        pos += 2 * zeros + 1
    return values


def replace_avc_config(path: Path, record: bytes) -> None:
    """Put `record` in place of the avcC of `path`'s first H.264 track, in place (a temp file
    renamed over it). The boxes around it grow or shrink with it, and when the index (moov)
    comes before the media, every chunk offset moves by the same amount. ValueError when the
    file has no such track."""
    with open(path, "rb") as fh:
        moov_at, moov_size = _top_box(fh, b"moov")
        if moov_at < 0:
            raise ValueError(f"{path}: no moov box")
        fh.seek(moov_at)
        moov = bytearray(fh.read(moov_size))
        media_after = _top_box(fh, b"mdat")[0] > moov_at
    trail = _avcc_trail(moov)
    if trail is None:
        raise ValueError(f"{path}: no avc1 sample description to rewrite")
    parents, start, size = trail
    delta = len(record) + 8 - size
    moov[start:start + size] = struct.pack(">I4s", len(record) + 8, b"avcC") + record
    for at in parents:  # every box around it (moov itself first) grows by delta
        (old,) = struct.unpack_from(">I", moov, at)
        struct.pack_into(">I", moov, at, old + delta)
    if media_after and delta:
        _move_chunks(moov, delta)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.avcc")
    try:
        with open(path, "rb") as src, open(tmp, "wb") as out:
            out.write(src.read(moov_at))
            out.write(moov)
            src.seek(moov_at + moov_size)
            shutil.copyfileobj(src, out, 1024 * 1024)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _top_box(stream: BinaryIO, kind: bytes) -> tuple[int, int]:
    """(offset, size) of the first top-level box of `kind`, header included; (-1, 0) if none."""
    end = stream.seek(0, 2)
    pos = 0
    while pos + 8 <= end:
        stream.seek(pos)
        size, found = struct.unpack(">I4s", stream.read(8))
        if size == 1:
            (size,) = struct.unpack(">Q", stream.read(8))
        elif size == 0:
            size = end - pos
        if found == kind:
            return pos, size
        if size < 8:
            break
        pos += size
    return -1, 0


_CONTAINERS = {b"moov": 8, b"trak": 8, b"mdia": 8, b"minf": 8, b"stbl": 8, b"stsd": 16,
               b"avc1": 86}


def _avcc_trail(moov: bytearray) -> tuple[list[int], int, int] | None:
    """The offsets of the size fields of the boxes from moov down to avc1, and the avcC's
    offset and size; None when there is none. 32-bit box sizes only (what ffmpeg writes)."""
    def walk(start: int, end: int, path: list[int]) -> tuple[list[int], int, int] | None:
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack_from(">I4s", moov, pos)
            if size < 8 or pos + size > end:
                return None
            if kind == b"avcC" and path:
                return path, pos, size
            if kind in _CONTAINERS:
                found = walk(pos + _CONTAINERS[kind], pos + size, [*path, pos])
                if found is not None:
                    return found
            pos += size
        return None

    return walk(0, len(moov), [])


def _move_chunks(moov: bytearray, delta: int) -> None:
    """Add `delta` to every chunk offset (stco, co64) of every track in `moov`."""
    def walk(start: int, end: int) -> None:
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack_from(">I4s", moov, pos)
            if size < 8:
                return
            if kind in (b"stco", b"co64"):
                (count,) = struct.unpack_from(">I", moov, pos + 12)
                wide = kind == b"co64"
                step, code = (8, ">Q") if wide else (4, ">I")
                for at in range(pos + 16, pos + 16 + count * step, step):
                    (value,) = struct.unpack_from(code, moov, at)
                    struct.pack_into(code, moov, at, value + delta)
            elif kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
                walk(pos + 8, pos + size)
            pos += size

    walk(0, len(moov))
