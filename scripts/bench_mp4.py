"""The mp4 box reader on a long clip, against the naive keyframe lookup it replaced, same run.

    python scripts/bench_mp4.py [--quick]

A 20-minute 30 fps H.264 + AAC clip (5 minutes with --quick) is synthesised box by box
(tests/mp4build.py: B-frames, so a ctts entry per sample; a keyframe a second; its media a
sparse hole), then read by `prep.media.mp4.read_mp4`. The baseline is the lookup the reader used
before: each keyframe's time found by walking stts and ctts from their first entry, which is
what made `prep prepare clip@10-20 --dry-run` take seconds on long clips.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import mp4build  # noqa: E402

from prep.media import mp4  # noqa: E402


def _timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- the naive baseline: one table walk per keyframe ------------------------------------------

def _naive_lookup(table: bytes, index: int, *, cumulative: bool) -> int:
    (entries,) = struct.unpack_from(">I", table, 4)
    time_ = 0
    for i in range(entries):
        run, value = struct.unpack_from(">Ii", table, 8 + 8 * i)
        if index < run:
            return int(time_ + index * value if cumulative else value)
        time_ += run * value
        index -= run
    return time_ if cumulative else 0


def _naive_keyframes(path: Path) -> tuple[int, ...]:
    """Keyframe times of the video track, each found by walking the tables from the top."""
    data = path.read_bytes()
    moov = next(data[s:s + n] for kind, s, n in mp4._walk(data, 0, len(data)) if kind == b"moov")
    trak = next(moov[s:s + n] for kind, s, n in mp4._walk(moov, 0, len(moov))
                if kind == b"trak")
    mdhd = mp4._find(trak, (b"mdia", b"mdhd")) or b""
    timescale = struct.unpack_from(">I", mdhd, 12)[0]
    stbl = mp4._find(trak, (b"mdia", b"minf", b"stbl")) or b""
    stts = mp4._find(stbl, (b"stts",)) or b""
    ctts = mp4._find(stbl, (b"ctts",)) or b""
    stss = mp4._find(stbl, (b"stss",)) or b""
    (entries,) = struct.unpack_from(">I", stss, 4)
    numbers = struct.unpack_from(f">{entries}I", stss, 8)

    def pts(i: int) -> int:
        return _naive_lookup(stts, i, cumulative=True) + _naive_lookup(ctts, i, cumulative=False)

    first = min(pts(i) for i in range(16))
    return tuple((pts(n - 1) - first) * 1000 // timescale for n in numbers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a 5-minute clip, fewer repeats")
    args = parser.parse_args()
    minutes = 5 if args.quick else 20
    with tempfile.TemporaryDirectory() as tmp:
        path = mp4build.write(Path(tmp) / "long.mp4", mp4build.long_clip(minutes))
        moov_kb = (path.stat().st_blocks * 512) // 1024
        info = mp4.read_mp4(path)
        video = info.track("vide")
        assert video is not None and video.keyframe_ms == _naive_keyframes(path)
        reader = _timed(lambda: mp4.read_mp4(path), 3 if args.quick else 7)
        naive = _timed(lambda: _naive_keyframes(path), 1)
    print(f"{minutes}-minute clip, {video.sample_count:,} video samples, "
          f"{len(video.keyframe_ms or ()):,} keyframes, index ~{moov_kb:,} KB on disk")
    print(f"read_mp4 (every table, one pass):          {reader * 1000:8.1f} ms")
    print(f"baseline: keyframe times by per-keyframe walks: {naive * 1000:8.1f} ms  "
          f"ratio {naive / reader:6.1f}x slower")


if __name__ == "__main__":
    main()
