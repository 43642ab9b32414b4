"""Benchmark of `prep prepare` against naive ffmpeg use, measured in the same run.

    python scripts/bench_prepare.py [--quick]

1. A compliant clip: prepare (a copy) against a naive always-transcode (`ffmpeg -i in out.mp4`)
   and against a plain file copy.
2. Natural-looking 1080p30 footage through each profile, against ffmpeg's defaults (x264
   medium, CRF 23): speed as a multiple of real time, and VMAF against the source, frames aligned
   by index (setpts=N/(30*TB) on both sides: frame N at N/30 s), not by source timestamp.
   The source's H.264 could be copied, so prep's re-encode is asked for (`plan_clip(...,
   reencode=True)`): the path any clip whose video needs re-encoding takes.
3. Camera-style footage, compliant H.264 with PCM audio in mov: prepare copies the video and
   re-encodes only the audio, against prep's full transcode of the same footage (row 2, balanced).
4. The HDR path (HEVC 10-bit HLG, tone-mapped to SDR BT.709): speed as a multiple of real time.

There is no natural footage on these machines, so the "natural" clip is synthesised: a zooming
Mandelbrot set blended with ffmpeg's moving test pattern and temporal grain, which gives x264
texture, motion and noise to work on. Sources are cached in .cache/bench-media.
The machine may be shared: load average is printed with the results.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prep.media.clips import parse_clip_spec  # noqa: E402
from prep.media.ffmpeg import build_args, find_ffmpeg, run  # noqa: E402
from prep.media.prepare import PrepareOptions, plan_clip, prepare  # noqa: E402
from prep.media.probe import probe  # noqa: E402

CACHE = ROOT / ".cache" / "bench-media"
FFMPEG = find_ffmpeg("").path


def _ffmpeg(*args: str) -> str:
    done = subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-y", *args], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"ffmpeg failed: {done.stderr[-800:]}")
    return done.stderr


def _make(name: str, args: list[str]) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / name
    if not out.exists():
        tmp = out.with_name(".tmp-" + name)
        _ffmpeg("-v", "error", *args, str(tmp))
        tmp.replace(out)
    return out


def _natural(seconds: int) -> list[str]:
    graph = (f"mandelbrot=size=480x270:rate=30:end_scale=0.5:maxiter=128,"
             f"scale=1920:1080:flags=bicubic[m];testsrc2=size=1920x1080:rate=30[t];"
             f"[m][t]blend=all_mode=overlay:all_opacity=0.5,noise=alls=1:allf=t,"
             f"trim=duration={seconds}[v]")
    return ["-f", "lavfi", "-i", "nullsrc", "-f", "lavfi", "-i",
            f"sine=frequency=220:sample_rate=48000:duration={seconds}",
            "-filter_complex", graph.replace("nullsrc", ""), "-map", "[v]", "-map", "1:a"]


def _timed(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def _transcode(source: Path, out_dir: Path, profile: str) -> tuple[Path, int]:
    """prep's full re-encode of `source` (video and audio), as prepare runs it for a clip whose
    video must be re-encoded. Returns the output and its size."""
    options = PrepareOptions(use_cache=False, ffmpeg="", profile=profile)  # type: ignore[arg-type]
    _info, plan = plan_clip(parse_clip_spec(str(source)), options, reencode=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / (source.stem + ".mp4")
    run(build_args(plan, source, out), total_ms=plan.duration_ms, path=source,
        binary=find_ffmpeg(""))
    return out, probe(out).size_bytes


def _vmaf(distorted: Path, reference: Path) -> float:
    text = _ffmpeg("-i", str(distorted), "-i", str(reference), "-lavfi",
                   "[0:v]setpts=N/(30*TB)[d];[1:v]setpts=N/(30*TB)[r];[d][r]libvmaf=n_threads=2",
                   "-f", "null", "-")
    match = re.search(r"VMAF score: ([\d.]+)", text)
    if not match:
        raise SystemExit("libvmaf gave no score")
    return float(match[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Shorter clips (runs in under a minute).")
    args = parser.parse_args()
    seconds = 3 if args.quick else 20
    hdr_seconds = 3 if args.quick else 10
    print(f"making sources ({seconds} s of 1080p30; cached in {CACHE})...", file=sys.stderr)
    # The reference: high quality H.264 with PCM audio in mkv, so prepare must re-encode it.
    reference = _make(f"natural-{seconds}s.mkv", [
        *_natural(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "14",
        "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le"])
    compliant = _make(f"compliant-{seconds}s.mp4", [
        "-i", str(reference), "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart"])
    # Camera-style: the same footage, H.264 and PCM, in QuickTime (encoded, not rewrapped from
    # the mkv, whose millisecond timestamps would make the rate variable).
    camera = _make(f"camera-{seconds}s.mov", [
        *_natural(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "14",
        "-pix_fmt", "yuv420p", "-g", "30", "-c:a", "pcm_s16le"])
    hdr = _make(f"hlg-{hdr_seconds}s.mov", [
        "-t", str(hdr_seconds), "-i", str(reference), "-c:v", "libx265", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p10le", "-x265-params",
        "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc",
        "-tag:v", "hvc1", "-c:a", "aac"])
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp_text:
        tmp = Path(tmp_text)
        no_cache = PrepareOptions(use_cache=False, ffmpeg="")

        # 1. compliant clip: prepare (copy) vs naive transcode vs plain copy
        t_copy = min(_timed(lambda: shutil.copyfile(compliant, tmp / "plain.mp4")) for _ in range(3))
        t_prep = min(_timed(lambda: prepare([str(compliant)], tmp / "c", no_cache))
                     for _ in range(3))
        t_naive = _timed(lambda: _ffmpeg("-i", str(compliant), str(tmp / "naive.mp4")))
        rows.append(("compliant clip: prepare (copy)", f"{t_prep:.3f} s",
                     f"{t_naive / t_prep:.0f}x faster than naive transcode ({t_naive:.1f} s); "
                     f"{t_prep - t_copy:+.3f} s vs plain file copy ({t_copy:.3f} s)"))

        # 2. natural footage: ffmpeg defaults vs each profile
        t_default = _timed(lambda: _ffmpeg("-i", str(reference), str(tmp / "default.mp4")))
        v_default = _vmaf(tmp / "default.mp4", reference)
        size_default = (tmp / "default.mp4").stat().st_size
        rows.append(("ffmpeg defaults (x264 medium CRF 23)",
                     f"{seconds / t_default:.2f}x real time",
                     f"VMAF {v_default:.1f}; {size_default / 1e6:.1f} MB"))
        t_transcode = {}
        for profile in ("fast", "balanced", "quality"):
            start = time.perf_counter()
            output, size = _transcode(reference, tmp / profile, profile)
            elapsed = t_transcode[profile] = time.perf_counter() - start
            score = _vmaf(output, reference)
            rows.append((f"prepare --profile {profile}", f"{seconds / elapsed:.2f}x real time",
                         f"VMAF {score:.1f}; {t_default / elapsed:.2f}x the speed of ffmpeg "
                         f"defaults; {size / 1e6:.1f} MB"))

        # 3. camera-style: compliant video + PCM audio -> video copied, audio to AAC
        t_audio = min(_timed(lambda: prepare([str(camera)], tmp / "camera", no_cache))
                      for _ in range(3))
        (result,) = prepare([str(camera)], tmp / "camera", no_cache)
        assert (result.plan.video_action, result.plan.audio_action) == ("copy", "transcode")
        rows.append(("H.264 + PCM mov: prepare (video copy, audio to AAC)",
                     f"{seconds / t_audio:.0f}x real time",
                     f"{t_transcode['balanced'] / t_audio:.0f}x faster than prep's full transcode "
                     f"({t_transcode['balanced']:.1f} s, balanced); {t_audio:.2f} s for {seconds} s"))

        # 4. the HDR path
        elapsed = _timed(lambda: prepare([str(hdr)], tmp / "hdr", no_cache))
        rows.append(("HDR HLG 10-bit HEVC -> SDR H.264 (balanced)",
                     f"{hdr_seconds / elapsed:.2f}x real time", f"{elapsed:.1f} s for {hdr_seconds} s"))

    load = os.getloadavg()
    width = max(len(r[0]) for r in rows)
    print(f"\nprepare benchmark ({'quick' if args.quick else 'full'}; {os.cpu_count()} cores; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}: the machine may be shared)")
    for name, value, detail in rows:
        print(f"  {name.ljust(width)}  {value:>18}  {detail}")


if __name__ == "__main__":
    main()
