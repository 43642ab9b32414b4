"""A fake encoder for engine tests that need no ffmpeg: tiny hand-made mp4 files, and a stand-in
for `prep.media.prepare.prepare` that "prepares" a clip by writing one of them.

`fake_mp4` writes a minimal but real ISO-BMFF file (ftyp, moov with mvhd and one H.264 video
track, mdat): about 1 KB, and MediaInfo reads its container, codec, size, frame rate and
duration, so `prep.media.probe.probe` (used by `generate` and by the sandbox when it checks a
reference) works on it unchanged.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prep.core.clipinfo import ClipInfo
from prep.core.clipspec import ClipSpec
from prep.errors import MediaError

__all__ = ["FakeEncoder", "FakeResult", "fake_info", "fake_mp4", "mp4_duration_ms"]


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def fake_mp4(path: Path, duration_ms: int, *, width: int = 160, height: int = 90,
             fps: int = 10) -> Path:
    """Write a minimal mp4 of `duration_ms` (one 4-byte sample per frame at `fps`)."""
    timescale = 1000
    delta = timescale // fps
    samples = max(1, duration_ms // delta)
    mvhd = _full(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, timescale, duration_ms),
                 struct.pack(">IH", 0x00010000, 0x0100), b"\0" * 10, _MATRIX, b"\0" * 24,
                 struct.pack(">I", 2))
    tkhd = _full(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, 1, 0, duration_ms), b"\0" * 8,
                 struct.pack(">HHHH", 0, 0, 0, 0), _MATRIX,
                 struct.pack(">II", width << 16, height << 16))
    mdhd = _full(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, timescale, samples * delta),
                 struct.pack(">HH", 0x55C4, 0))
    hdlr = _full(b"hdlr", 0, 0, struct.pack(">I", 0), b"vide", b"\0" * 12, b"VideoHandler\0")
    avcc = _box(b"avcC", bytes([1, 0x42, 0xC0, 0x1E, 0xFF, 0xE0, 0x00]))
    avc1 = _box(b"avc1", b"\0" * 6, struct.pack(">H", 1), b"\0" * 16,
                struct.pack(">HH", width, height), struct.pack(">II", 0x480000, 0x480000),
                struct.pack(">I", 0), struct.pack(">H", 1), b"\0" * 32, struct.pack(">Hh", 0x18, -1),
                avcc)
    stsd = _full(b"stsd", 0, 0, struct.pack(">I", 1), avc1)
    stts = _full(b"stts", 0, 0, struct.pack(">III", 1, samples, delta))
    stsc = _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, samples, 1))
    stsz = _full(b"stsz", 0, 0, struct.pack(">II", 4, samples))

    def moov(chunk_offset: int) -> bytes:
        stco = _full(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset))
        stbl = _box(b"stbl", stsd, stts, stsc, stsz, stco)
        minf = _box(b"minf", _full(b"vmhd", 0, 1, b"\0" * 8),
                    _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1))),
                    stbl)
        return _box(b"moov", mvhd, _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf)))

    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    head = ftyp + moov(0)
    data = ftyp + moov(len(head) + 8) + _box(b"mdat", b"\0\0\0\x01" * samples)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def mp4_duration_ms(path: Path) -> int:
    """The mvhd duration of a file written by `fake_mp4`."""
    data = path.read_bytes()
    at = data.index(b"mvhd") + 4 + 4  # box type, version and flags
    timescale, duration = struct.unpack(">II", data[at + 8:at + 16])
    return int(duration * 1000 // timescale)


def fake_info(path: Path, duration_ms: int, *, width: int = 160, height: int = 90) -> ClipInfo:
    """A ClipInfo as probing a `fake_mp4` file reports it (no MediaInfo needed)."""
    from fractions import Fraction

    return ClipInfo(path=path, size_bytes=path.stat().st_size if path.exists() else 1000,
                    container="mp4", container_format="MPEG-4", duration_ms=duration_ms,
                    video_duration_ms=duration_ms, audio_duration_ms=None, video_codec="h264",
                    video_profile=None, width=width, height=height, fps=Fraction(10))


@dataclass(frozen=True, slots=True)
class FakeResult:
    """What `prepare_clip` and `generate`'s dry run read from a `prep.media.prepare.PrepResult`."""

    spec: ClipSpec
    output: Path | None
    output_info: ClipInfo | None
    action: str = "copy"
    notes: tuple[str, ...] = ()


@dataclass
class FakeEncoder:
    """Stands in for `prep.media.prepare.prepare`: writes a `fake_mp4` per clip, of the source's
    duration (or the spec's window), minus `shrink_ms`. A source whose name starts with `broken`
    fails with a MediaError, one starting with `crash` with a RuntimeError (a bug), one starting
    with `empty` yields no file."""

    shrink_ms: int = 0
    calls: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, clips: list[Any], out_dir: Path, options: object = None, *,
                 on_progress: object = None, on_note: object = None) -> list[FakeResult]:
        results = []
        for given in clips:
            # The engine hands over planned clips (spec + info + window), as the real prepare takes.
            spec: ClipSpec = given if isinstance(given, ClipSpec) else given.spec
            with self._lock:
                self.calls.append(spec.path.name)
            name = spec.path.name
            if name.startswith("broken"):
                raise MediaError(spec.path, "cannot be made compliant (fake encoder)")
            if name.startswith("crash"):
                raise RuntimeError("the fake encoder crashed")
            if name.startswith("empty"):
                results.append(FakeResult(spec=spec, output=None, output_info=None))
                continue
            source_ms = mp4_duration_ms(spec.path)
            start, end = spec.window.resolve(None, source_ms, str(spec))
            duration = end - start - self.shrink_ms
            if callable(on_progress):
                on_progress(str(spec), 0, duration)
                on_progress(str(spec), duration, duration)
            out = fake_mp4(Path(out_dir) / f"{spec.path.stem}.mp4", duration)
            results.append(FakeResult(spec=spec, output=out, output_info=fake_info(out, duration)))
        return results


def fast_engine(monkeypatch: Any) -> FakeEncoder:
    """The fake encoder in place of ffmpeg, and client retries that do not wait (`monkeypatch`
    undoes it all after the test). The engine's own pace comes from the options each test passes
    (`Pacing` in `BatchOptions` and `GenerateOptions`)."""
    import prep.api.client as client_mod

    policy = client_mod.RetryPolicy  # the real class, before it is patched below

    def quick_retry(*, attempts: int = 4, **_: Any) -> Any:
        return policy(attempts=attempts, base_delay_s=0.0, max_delay_s=0.0)

    encoder = FakeEncoder()
    monkeypatch.setattr("prep.media.prepare.prepare", encoder)
    monkeypatch.setattr(client_mod, "RetryPolicy", quick_retry)
    return encoder
