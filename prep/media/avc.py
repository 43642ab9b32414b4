"""H.264 parameter sets in an mp4: the avcC record, the ids its SPS and PPS carry, and
putting a new avcC into a sample description.

A smart cut of footage made by another encoder than x264 cannot re-encode its edges with the
source's own parameter sets. It gives the edges their own (x264's `sps-id`: an SPS and a PPS id
the source does not use) and lists both encoders' parameter sets in the one avcC: every slice
names its PPS by id, so decoders find the right one for each frame, within one sample
description and without parameter sets in the samples. Edges whose SPS comes out the source's
under another id (always for x264 sources, whose settings the edges copy while coding them with
CAVLC, cheaper to encode and to decode, where the source uses CABAC) add only their PPS,
pointed at the source's SPS (`AvcConfig.sharing_sps`): pictures switch PPS, never SPS.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["AvcConfig", "parse_avc_config", "with_avc_config"]

# H.264 allows SPS ids 0-31 and PPS ids 0-255; x264's `sps-id` sets both to one number.
MAX_SPS_ID = 31
# Where a parameter set's Exp-Golomb fields start: an SPS's (seq_parameter_set_id first) after
# its NAL header, profile, constraint flags and level; a PPS's (pic_parameter_set_id, then
# seq_parameter_set_id) after its NAL header.
_SPS_FIELDS_AT = 4
_PPS_FIELDS_AT = 1


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
        return frozenset(_ue_fields(unit[_SPS_FIELDS_AT:], 1)[0] for unit in self.sps)

    @property
    def pps_ids(self) -> frozenset[int]:
        return frozenset(_ue_fields(unit[_PPS_FIELDS_AT:], 1)[0] for unit in self.pps)

    def free_id(self) -> int | None:
        """The lowest id that no SPS and no PPS of this record uses (None when all are)."""
        used = self.sps_ids | self.pps_ids
        return next((n for n in range(MAX_SPS_ID + 1) if n not in used), None)

    def merged(self, other: AvcConfig) -> AvcConfig:
        """This record with `other`'s parameter sets added after its own."""
        return AvcConfig(self.profile, self.compatibility, self.level, self.length_size,
                         self.sps + other.sps, self.pps + other.pps, self.extension)

    def sharing_sps(self, other: AvcConfig) -> AvcConfig | None:
        """This record with `other`'s one PPS added, pointed at this record's one SPS, when
        `other`'s one SPS is this record's under another id (every other bit the same); None
        when it is not. Pictures then switch PPS, never SPS."""
        if len(self.sps) != 1 or len(other.sps) != 1 or len(other.pps) != 1:
            return None
        (sps_id,) = self.sps_ids
        try:
            if _with_ue_field(other.sps[0], _SPS_FIELDS_AT, 0, sps_id) != self.sps[0]:
                return None
            pps = _with_ue_field(other.pps[0], _PPS_FIELDS_AT, 1, sps_id)  # pps_id, then sps_id
        except ValueError:  # a PPS too short to hold its SPS's id
            return None
        return AvcConfig(self.profile, self.compatibility, self.level, self.length_size,
                         self.sps, self.pps + (pps,), self.extension)

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
    bits = "".join(f"{byte:08b}" for byte in _rbsp(data)[:16])
    values, pos = [], 0
    for _ in range(count):
        end = _ue_end(bits, pos)
        values.append(int(bits[pos:end], 2) - 1)
        pos = end
    return values


def _ue_end(bits: str, pos: int) -> int:
    """Where the Exp-Golomb field starting at `pos` of `bits` ends; ValueError past the end."""
    zeros = bits.find("1", pos) - pos
    if zeros < 0 or pos + 2 * zeros + 1 > len(bits):
        raise ValueError("an Exp-Golomb field runs past the data")
    return pos + 2 * zeros + 1


def _with_ue_field(unit: bytes, start: int, index: int, value: int) -> bytes:
    """The NAL unit `unit` with Exp-Golomb field `index` of its payload (the fields starting at
    byte `start`) set to `value`: the bits after it move with it, the stop bit and the byte
    alignment are redone and emulation prevention is applied again."""
    bits = "".join(f"{byte:08b}" for byte in _rbsp(unit[start:]))
    pos = 0
    for _ in range(index):
        pos = _ue_end(bits, pos)
    code = f"{value + 1:b}"
    bits = bits[:pos] + "0" * (len(code) - 1) + code + bits[_ue_end(bits, pos):]
    bits = bits[:bits.rindex("1") + 1]  # up to the stop bit, then aligned with zeros again
    bits += "0" * (-len(bits) % 8)
    rbsp = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return unit[:start] + _escaped(rbsp)


def _rbsp(payload: bytes) -> bytes:
    """A NAL unit's payload without its emulation prevention bytes."""
    return payload.replace(b"\x00\x00\x03", b"\x00\x00")


def _escaped(rbsp: bytes) -> bytes:
    """`rbsp` with an emulation prevention byte after every two zero bytes followed by 0-3."""
    out, zeros = bytearray(), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def with_avc_config(box: bytes, record: bytes) -> bytes:
    """`box` (an stsd box, or a moov or trak holding one) with `record` in place of its first
    avc1 sample description's avcC; the boxes around it grow or shrink with it. ValueError when
    it holds no avcC."""
    data = bytearray(box)
    trail = _avcc_trail(data)
    if trail is None:
        raise ValueError("no avc1 sample description to rewrite")
    parents, start, size = trail
    delta = len(record) + 8 - size
    data[start:start + size] = struct.pack(">I4s", len(record) + 8, b"avcC") + record
    for at in parents:  # every box around it (the outermost first) grows by delta
        (old,) = struct.unpack_from(">I", data, at)
        struct.pack_into(">I", data, at, old + delta)
    return bytes(data)


_CONTAINERS = {b"moov": 8, b"trak": 8, b"mdia": 8, b"minf": 8, b"stbl": 8, b"stsd": 16,
               b"avc1": 86}


def _avcc_trail(data: bytearray) -> tuple[list[int], int, int] | None:
    """The offsets of the size fields of the boxes from the outermost down to avc1, and the
    avcC's offset and size; None when there is none. 32-bit box sizes only (what ffmpeg and
    prep's own writer write)."""
    def walk(start: int, end: int, path: list[int]) -> tuple[list[int], int, int] | None:
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack_from(">I4s", data, pos)
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

    return walk(0, len(data), [])
