"""A small, read-only ISO-BMFF (mp4 / mov) box reader: what prep must know that MediaInfo hides.

MediaInfo honours edit lists, and a server may not. This reader gives the raw facts from the sample
tables: each track's duration as the sum of its sample durations, its keyframes (`stss`), the
size of its media (`stsz`), whether it carries an edit list, whether the index (`moov`) comes
before the media (`mdat`), and where the track's data really stops when the file is shorter than
its index says (chunk offsets `stco`/`co64` and `stsc`, against the file's size).
Only the boxes on the path to those tables are parsed; media data is skipped, never read.

Every table is read in one pass, so the work grows with the size of the index, never with the
square of it; and any damage (a short table, a count larger than its box, a size past its parent)
becomes a MediaError naming the file, never a stray struct.error or IndexError.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import accumulate
from pathlib import Path
from typing import BinaryIO

from prep.core.record import record
from prep.errors import MediaError

__all__ = ["Mp4Info", "Mp4Track", "Samples", "read_mp4", "read_samples", "read_track"]

# Sample tables are small next to the media; this keeps a damaged size field from eating memory.
_MAX_TABLE_BYTES = 64 * 1024 * 1024
# How many leading samples are looked at to find the first presentation time (B-frames put a
# later-decoded frame first on screen; a handful of samples covers any real GOP's reordering).
_HEAD_SAMPLES = 16
_HINT = "re-export the clip, or copy it again from where it came from"


class _Damaged(Exception):
    """An inconsistency in the index; read_mp4 turns it into a MediaError naming the file."""


@record(frozen=True, slots=True, kw_only=True)
class Mp4Track:
    """One track's raw timing: `duration_ms` sums its samples and ignores any edit list."""

    kind: str  # "vide", "soun" or another handler type
    timescale: int
    sample_count: int
    duration_units: int
    keyframe_ms: tuple[int, ...] | None  # None: every sample is a keyframe (no stss box)
    has_edit_list: bool
    media_bytes: int | None = None  # sum of the sample sizes (stsz); None when not known
    # Decode time (ms) of the first sample whose bytes are not all in the file; None when every
    # sample the index lists is there (or the tables that place samples are missing).
    data_end_ms: int | None = None
    # The avcC record of an H.264 track with one avc1 sample description (None otherwise).
    avc_config: bytes | None = None
    # The duration of its shortest samples, in timescale units: the 5th percentile, so that one
    # odd sample does not count (a variable-rate video's peak rate is timescale / this).
    short_sample_units: int | None = None

    @property
    def duration_ms(self) -> int:
        """Sum of the sample durations, in whole ms (rounded down: never longer than it is)."""
        return self.duration_units * 1000 // self.timescale if self.timescale else 0


@record(frozen=True, slots=True, kw_only=True)
class Mp4Info:
    """What the sample tables of an mp4 / mov file say."""

    tracks: tuple[Mp4Track, ...]
    moov_first: bool
    file_size_bytes: int = 0

    def track(self, kind: str) -> Mp4Track | None:
        """The first track of a kind ("vide" or "soun")."""
        return next((t for t in self.tracks if t.kind == kind), None)

    @property
    def has_edit_list(self) -> bool:
        """True when any track has an edit list (a player may hide or shift media with it)."""
        return any(t.has_edit_list for t in self.tracks)

    @property
    def index_ms(self) -> int:
        """How long the index says the file is: its longest track, edit lists ignored."""
        return max((t.duration_ms for t in self.tracks), default=0)

    @property
    def data_end_ms(self) -> int | None:
        """Where the file's media data stops short of its index (the earliest track); None when
        every sample is in the file."""
        ends = [t.data_end_ms for t in self.tracks if t.data_end_ms is not None]
        return min(ends) if ends else None


def read_mp4(path: Path | str) -> Mp4Info:
    """Read the sample tables of an mp4 / mov file.

    MediaError (exit 3) naming the file when it cannot be read, is not an mp4, or its index is
    damaged ("damaged mp4 index (...)").
    """
    with _reading(path), open(path, "rb") as fh:
        return _read(fh)


@contextmanager
def _reading(path: Path | str) -> Iterator[None]:
    """Every failure to read `path`'s index, as the one MediaError naming the file."""
    try:
        yield
    except _Damaged as err:
        raise MediaError(path, f"damaged mp4 index ({err})", hint=_HINT) from err
    except (struct.error, IndexError, ValueError, OverflowError, ZeroDivisionError) as err:
        # Belt and braces: the tables are bounds-checked, but no slip may escape as a crash.
        raise MediaError(path, f"damaged mp4 index ({type(err).__name__}: {err})",
                         hint=_HINT) from err
    except OSError as err:
        raise MediaError(path, f"cannot be read ({err.strerror or err})",
                         hint="check that the file exists and can be read") from err


@record(frozen=True, slots=True, kw_only=True)
class Samples:
    """One track's samples in decode order: where each is stored, its size, and its decode and
    presentation times (in the track's `timescale`, edit lists ignored)."""

    timescale: int
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    decode_times: tuple[int, ...]
    presentation_times: tuple[int, ...]
    sync: frozenset[int] | None  # indices of the sync samples (keyframes); None: every sample

    def __len__(self) -> int:
        return len(self.sizes)

    def read(self, fh: BinaryIO, first: int, count: int) -> Iterator[bytes]:
        """The bytes of `count` samples from `first`, one sample at a time."""
        for index in range(first, first + count):
            fh.seek(self.offsets[index])
            data = fh.read(self.sizes[index])
            if len(data) != self.sizes[index]:
                raise _Damaged(f"sample {index + 1:,} runs past the end of the file")
            yield data


def read_samples(path: Path | str, kind: str = "vide") -> Samples | None:
    """The sample table of the first track of `kind` in `path` (None when there is no such
    track). MediaError, as `read_mp4`, when the file or its index cannot be read."""
    with _reading(path):
        with open(path, "rb") as fh:
            moov, _first, file_size = _moov(fh)
        trak = _trak(moov, kind)
        return None if trak is None else _samples(trak, file_size)


def read_track(path: Path | str, kind: str) -> tuple[Samples, dict[bytes, bytes]] | None:
    """The first track of `kind` in `path`, from one read of its index: its sample tables
    (as `read_samples`), and the boxes a writer can carry over as they are: the children of its
    mdia, minf and stbl (mdhd, hdlr, vmhd or smhd, stsd, stts, stsz, sgpd, ...), each whole (a
    32-bit header and its payload), by type; the first of a type wins. None when there is no
    such track. MediaError, as `read_mp4`."""
    with _reading(path):
        with open(path, "rb") as fh:
            moov, _first, file_size = _moov(fh)
        trak = _trak(moov, kind)
        if trak is None:
            return None
        found: dict[bytes, bytes] = {}
        for parent in ((b"mdia",), (b"mdia", b"minf"), (b"mdia", b"minf", b"stbl")):
            data = _find(trak, parent) or b""
            for box, start, length in _walk(data, 0, len(data)):
                found.setdefault(box, struct.pack(">I4s", length + 8, box)
                                 + data[start:start + length])
        return _samples(trak, file_size), found


def _trak(moov: bytes, kind: str) -> bytes | None:
    """The payload of the first trak box in `moov` whose handler is `kind`."""
    for box, start, length in _walk(moov, 0, len(moov)):
        trak = moov[start:start + length]
        hdlr = _find(trak, (b"mdia", b"hdlr")) if box == b"trak" else None
        if hdlr and len(hdlr) >= 12 and hdlr[8:12].decode("latin-1") == kind:
            return trak
    return None


def _samples(trak: bytes, file_size: int) -> Samples:
    mdhd = _find(trak, (b"mdia", b"mdhd")) or b""
    if len(mdhd) < 24:
        raise _Damaged("a track has no usable media header (mdhd)")
    timescale = int(struct.unpack_from(">I", mdhd, 20 if mdhd[0] == 1 else 12)[0])
    stbl = _find(trak, (b"mdia", b"minf", b"stbl")) or b""
    sizes = _sample_sizes(_find(stbl, (b"stsz",)))
    if sizes is None:
        raise _Damaged("the track has no sample sizes (stsz)")
    count = sizes.count
    if sizes.total > file_size:  # also keeps a damaged count of one-size samples from a loop
        raise _Damaged(f"the samples add up to {sizes.total:,} bytes, more than the file holds")
    stts = _runs(_find(stbl, (b"stts",)), "stts")
    timed = sum(run for run, _ in stts)
    if timed != count:  # checked before any run is expanded: a damaged count is not a loop
        raise _Damaged(f"stts times {timed:,} samples, stsz sizes {count:,}")
    decode: list[int] = []
    now = 0
    for run, delta in stts:
        decode.extend(range(now, now + run * delta, delta) if delta else [now] * run)
        now += run * delta
    size_list = (tuple(b - a for a, b in zip(sizes.ends, sizes.ends[1:], strict=False))
                 if sizes.ends is not None else (sizes.uniform,) * count)
    offsets = _sample_offsets(stbl, sizes)
    shown = list(decode)
    index = 0
    for run, value in _runs(_find(stbl, (b"ctts",)), "ctts"):
        offset = _signed(value)
        for at in range(index, min(index + run, count)):
            shown[at] += offset
        index += run
    stss = _find(stbl, (b"stss",))
    sync = frozenset(n - 1 for n in _uints(stss, "stss", 1)) if stss else None
    return Samples(timescale=timescale, offsets=offsets, sizes=size_list,
                   decode_times=tuple(decode), presentation_times=tuple(shown), sync=sync)


def _sample_offsets(stbl: bytes, sizes: _Sizes) -> tuple[int, ...]:
    """The file offset of every sample: samples lie back to back inside their chunk."""
    out: list[int] = []
    for offset, first, count in _chunks(stbl, sizes.count):
        pos = offset
        for sample in range(first, first + count):
            out.append(pos)
            pos += sizes.span(sample, 1)
    if len(out) != sizes.count:
        raise _Damaged(f"the chunk tables place {len(out):,} of {sizes.count:,} samples")
    return tuple(out)


def _moov(fh: BinaryIO) -> tuple[bytes, bool, int]:
    """The moov box's payload, whether it comes before the media, and the file's size."""
    file_size = fh.seek(0, 2)
    moov: bytes | None = None
    moov_first = False
    seen_mdat = False
    for kind, start, length, complete in _boxes(fh, file_size):
        if kind == b"mdat":
            seen_mdat = True
        elif kind == b"moov" and moov is None:
            if not complete:
                raise _Damaged("the moov box runs past the end of the file")
            if length > _MAX_TABLE_BYTES:
                raise _Damaged(f"a {length:,}-byte moov box is implausibly large")
            fh.seek(start)
            moov = fh.read(length)
            moov_first = not seen_mdat
    if moov is None:
        raise _Damaged("no moov box: not an mp4, or cut short before its index")
    return moov, moov_first, file_size


def _read(fh: BinaryIO) -> Mp4Info:
    moov, moov_first, file_size = _moov(fh)
    tracks = tuple(_track(moov[s:s + n], file_size) for kind, s, n in _walk(moov, 0, len(moov))
                   if kind == b"trak")
    return Mp4Info(tracks=tracks, moov_first=moov_first, file_size_bytes=file_size)


def _boxes(fh: BinaryIO, end: int) -> Iterator[tuple[bytes, int, int, bool]]:
    """(type, payload start, payload length, whole box inside the file) of the top-level boxes.

    A box that runs past the end of the file is the last one read (its length is cut to what
    is there); the caller decides whether that matters (a short `mdat` is the truncation the
    sample tables then measure; a short `moov` is a damaged index).
    """
    pos = 0
    while pos + 8 <= end:
        fh.seek(pos)
        header = fh.read(16)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header[:8])
        skip = 8
        if size == 1:
            if len(header) < 16:
                raise _Damaged("a box header is cut short")
            size = struct.unpack(">Q", header[8:16])[0]
            skip = 16
        elif size == 0:
            size = end - pos
        if size < skip:
            raise _Damaged(f"a top-level box claims {size} bytes, less than its own header")
        complete = pos + size <= end
        yield kind, pos + skip, min(size, end - pos) - skip, complete
        if not complete:
            return
        pos += size


def _walk(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload length) of the boxes in `data[start:end]`, one level."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        skip = 8
        if size == 1:
            if pos + 16 > end:
                raise _Damaged("a box header inside moov is cut short")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            skip = 16
        elif size == 0:
            size = end - pos
        if size < skip or pos + size > end:
            raise _Damaged(f"a {kind.decode('latin-1')!r} box inside moov runs past its parent")
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


# --- the tables, each read once into Python sequences ------------------------------------------

def _entries(table: bytes, name: str, width: int, header: int = 8) -> int:
    """The entry count of a full box's table, checked against the bytes the box holds."""
    if len(table) < header:
        raise _Damaged(f"the {name} box is cut short")
    (count,) = struct.unpack_from(">I", table, header - 4)
    if header + count * width > len(table):
        raise _Damaged(f"the {name} box lists {count:,} entries but holds "
                       f"{(len(table) - header) // width:,}")
    return int(count)


def _uints(table: bytes, name: str, per_entry: int, *, wide: bool = False,
           header: int = 8) -> tuple[int, ...]:
    """All the 32-bit (or 64-bit) unsigned fields of a table, flat, in one unpack."""
    size = 8 if wide else 4
    count = _entries(table, name, per_entry * size, header)
    return struct.unpack_from(f">{count * per_entry}{'Q' if wide else 'I'}", table, header)


def _runs(table: bytes | None, name: str) -> list[tuple[int, int]]:
    """A run-length table (stts, ctts): (sample count, value) pairs."""
    if not table:
        return []
    flat = _uints(table, name, 2)
    return list(zip(flat[0::2], flat[1::2], strict=True))


def _signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def _times_at(indices: Sequence[int], stts: list[tuple[int, int]],
              ctts: list[tuple[int, int]]) -> list[int]:
    """Presentation times (decode time plus composition offset) of the samples at `indices`
    (0-based, ascending), in one walk along both run tables."""
    out: list[int] = []
    run = first_sample = run_time = 0
    crun = cfirst = 0
    for index in indices:
        while run < len(stts) and index >= first_sample + stts[run][0]:
            first_sample += stts[run][0]
            run_time += stts[run][0] * stts[run][1]
            run += 1
        decode = run_time + (index - first_sample) * stts[run][1] if run < len(stts) else run_time
        while crun < len(ctts) and index >= cfirst + ctts[crun][0]:
            cfirst += ctts[crun][0]
            crun += 1
        offset = _signed(ctts[crun][1]) if crun < len(ctts) else 0
        out.append(decode + offset)
    return out


def _track(trak: bytes, file_size: int) -> Mp4Track:
    hdlr = _find(trak, (b"mdia", b"hdlr"))
    kind = hdlr[8:12].decode("latin-1") if hdlr and len(hdlr) >= 12 else "?"
    mdhd = _find(trak, (b"mdia", b"mdhd"))
    if not mdhd:
        raise _Damaged("a track has no media header (mdhd)")
    if len(mdhd) < 24:
        raise _Damaged("the mdhd box is cut short")
    timescale = int(struct.unpack_from(">I", mdhd, 20 if mdhd[0] == 1 else 12)[0])
    stbl = _find(trak, (b"mdia", b"minf", b"stbl")) or b""
    stts = _runs(_find(stbl, (b"stts",)), "stts")
    count = sum(n for n, _ in stts)
    total = sum(n * delta for n, delta in stts)
    keyframes: tuple[int, ...] | None = None
    stss = _find(stbl, (b"stss",))
    if stss and stts and timescale:
        numbers = sorted(set(_uints(stss, "stss", 1)))
        if numbers and (numbers[0] < 1 or numbers[-1] > count):
            raise _Damaged(f"stss names sample {numbers[0] if numbers[0] < 1 else numbers[-1]:,}"
                           f" of {count:,}")
        ctts = _runs(_find(stbl, (b"ctts",)), "ctts")
        head = list(range(min(count, _HEAD_SAMPLES)))
        wanted = sorted(set(head).union(n - 1 for n in numbers))
        times = dict(zip(wanted, _times_at(wanted, stts, ctts), strict=True))
        # Presentation times, counted from the first frame shown (what players call 0).
        first = min((times[i] for i in head), default=0)
        keyframes = tuple((times[n - 1] - first) * 1000 // timescale for n in numbers)
    sizes = _sample_sizes(_find(stbl, (b"stsz",)))
    data_end_ms: int | None = None
    if sizes is not None:
        missing = _first_missing_sample(stbl, sizes, file_size)
        if missing is not None:
            (decode,) = _times_at([missing], stts, [])
            data_end_ms = decode * 1000 // timescale if timescale else 0
    elst = _find(trak, (b"edts", b"elst"))
    return Mp4Track(kind=kind, timescale=timescale, sample_count=count, duration_units=total,
                    keyframe_ms=keyframes, has_edit_list=bool(elst and _edits_matter(elst)),
                    media_bytes=sizes.total if sizes else None, data_end_ms=data_end_ms,
                    avc_config=_avc_config(_find(stbl, (b"stsd",))),
                    short_sample_units=_short_sample_units(stts, count))


def _short_sample_units(stts: list[tuple[int, int]], count: int) -> int | None:
    """The 5th-percentile sample duration, from the run-length table (never expanded)."""
    seen = 0
    for run, delta in sorted(((r, d) for r, d in stts if d > 0 and r > 0),
                             key=lambda pair: pair[1]):
        seen += run
        if seen * 20 >= count:
            return delta
    return None


def _avc_config(stsd: bytes | None) -> bytes | None:
    """The avcC record (profile, level, SPS and PPS) of a track with exactly one sample
    description, an `avc1` one; None otherwise."""
    if not stsd or len(stsd) < 16 or struct.unpack_from(">I", stsd, 4)[0] != 1:
        return None
    size, kind = struct.unpack_from(">I4s", stsd, 8)
    if kind != b"avc1" or size > len(stsd) - 8:
        return None
    # A visual sample entry: 8 bytes of box header, 78 of fields, then its child boxes.
    try:
        for child, start, length in _walk(stsd[8:8 + size], 86, size):
            if child == b"avcC":
                return stsd[8 + start:8 + start + length]
    except _Damaged:  # an odd sample entry: no smart cut, but the file is still readable
        return None
    return None


@record(frozen=True, slots=True)
class _Sizes:
    """stsz: one size for every sample (`uniform`), or running totals of a table of sizes
    (`ends[i]` is the bytes of samples 0..i-1, so `ends[-1]` is all of them)."""

    count: int
    uniform: int
    ends: tuple[int, ...] | None

    @property
    def total(self) -> int:
        return self.ends[-1] if self.ends is not None else self.uniform * self.count

    def span(self, first: int, count: int) -> int:
        """Bytes of `count` samples from `first`."""
        if self.ends is None:
            return self.uniform * count
        return self.ends[first + count] - self.ends[first]

    def whole_samples(self, first: int, count: int, room: int) -> int:
        """How many of `count` samples from `first` fit, back to back, in `room` bytes."""
        if room <= 0:
            return 0
        if self.ends is None:
            return min(count, room // self.uniform) if self.uniform else count
        limit = self.ends[first] + room
        return bisect.bisect_right(self.ends, limit, first, first + count + 1) - 1 - first


def _sample_sizes(stsz: bytes | None) -> _Sizes | None:
    """Total size of a track's samples: one size for all of them, or a table of sizes."""
    if not stsz or len(stsz) < 12:
        return None
    uniform, count = struct.unpack_from(">II", stsz, 4)
    if uniform:
        return _Sizes(count=count, uniform=uniform, ends=None)
    table = _uints(stsz, "stsz", 1, header=12)
    return _Sizes(count=count, uniform=0, ends=(0, *accumulate(table)))


def _chunks(stbl: bytes, sample_count: int) -> Iterator[tuple[int, int, int]]:
    """(file offset, first sample, sample count) of each chunk in order: stsc says how many
    samples each chunk holds, stco/co64 where it starts. Chunks listed past the last sample
    end the walk; nothing when the tables that place samples are absent."""
    stco = _find(stbl, (b"stco",))
    co64 = _find(stbl, (b"co64",))
    stsc_box = _find(stbl, (b"stsc",))
    if not stsc_box or not (stco or co64):
        return
    offsets = _uints(stco, "stco", 1) if stco else _uints(co64 or b"", "co64", 1, wide=True)
    flat = _uints(stsc_box, "stsc", 3)
    firsts, per_chunk = flat[0::3], flat[1::3]
    sample = 0
    for i, first_chunk in enumerate(firsts):
        start = first_chunk - 1
        stop = firsts[i + 1] - 1 if i + 1 < len(firsts) else len(offsets)
        if start < 0 or stop < start or (i and start <= firsts[i - 1] - 1):
            raise _Damaged("stsc chunk numbers do not rise")
        for chunk in range(start, min(stop, len(offsets))):
            if sample >= sample_count:
                return
            samples = min(per_chunk[i], sample_count - sample)
            yield offsets[chunk], sample, samples
            sample += samples


def _first_missing_sample(stbl: bytes, sizes: _Sizes, file_size: int) -> int | None:
    """The first sample (0-based) whose bytes are not all inside the file; None when every
    sample is there, or when the tables that place them are absent."""
    for offset, first, count in _chunks(stbl, sizes.count):
        if offset + sizes.span(first, count) > file_size:
            return first + sizes.whole_samples(first, count, file_size - offset)
    return None


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
