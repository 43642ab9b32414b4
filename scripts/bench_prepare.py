"""Benchmark of `prep prepare` against the baselines, measured in the same run.

    python scripts/bench_prepare.py [--quick] [--rounds N]

1. A compliant clip: prepare (a copy) against a naive always-transcode (`ffmpeg -i in out.mp4`)
   and against a plain file copy.
2. Natural-looking 1080p30 footage through each profile, against ffmpeg's defaults (x264
   medium, CRF 23) and HandBrakeCLI's default (x264 medium, RF 22; scripts/bench installs
   `handbrake-cli` with apt where it can, and the row says skipped where it is missing): for
   each, speed as a multiple of real time and of HandBrake's and ffmpeg's speed (the fastest of
   --rounds timings, taken in turn, as the machine may be shared), file size in MB and as a
   multiple of HandBrake's bytes, and VMAF against the source. HandBrake runs as an editor gets
   it, defaults and all: its autocrop finds nothing to crop on this clip (were it to crop, the
   source would be scored with the same crop), it keeps all 600 frames at a constant 30 fps and
   applies no deinterlace filter. VMAF aligns frames by index (`settb=expr=1/30,setpts=N`: frame
   N at N/30 s whatever the file's timebase, HandBrake writing 90 kHz) and gives both inputs the
   same colour tags (`setparams`): the source is untagged and HandBrake tags BT.709, and ffmpeg
   (7.1 on) would otherwise convert one input's matrix through RGB before comparing, which scored
   HandBrake 65.9 instead of 92. The source's H.264 could be copied, so prep's re-encode is asked
   for (`plan_clip(..., reencode=True)`).
3. Camera-style footage, compliant H.264 with PCM audio in mov: prepare copies the video and
   re-encodes only the audio, against prep's full transcode of the same footage (row 2, balanced).
4. A 10 s window from 12.3 s of 60 s of compliant 1080p H.264 with 2 s GOPs (as issue 28
   measured it: a head of 1.7 s and a tail of 0.3 s), made by x264 (3 B-frames), by OpenH264
   (another encoder) and by x264 with 8 B-frames (a window whose tail x264 would time
   unevenly: refused before encoding): prepare's smart cut against a full
   re-encode of the same window (prep's own, balanced) and against `ffmpeg -ss S -i src -t L
   -c:v libx264 -preset superfast -crf 18 -c:a aac` (the quick re-encode an editor would type),
   timed in turn (fastest of each), with the CPU seconds of each (the processes' own
   accounting, children included), and VMAF against the source's frames of the window.
5. HDR (HEVC 10-bit HLG and PQ made from the SDR reference as BT.2408 maps SDR white, at x265
   CRF 4 so that the HDR encode itself costs little): prep's tone mapping against a plain
   HLG/PQ -> BT.709 conversion (zscale): mean luma against the SDR master's, SSIM, and speed.
   The target: mean luma within 2 % of the master's and SSIM at least 0.97, for all planes and
   for luma alone (the round trip's chroma resampling, 4:2:0 to RGB and back, twice, and the
   HEVC encode's chroma, costs the chroma planes more than any tone curve does).
   For scale, a row gives the master itself through the same final x264 encode (superfast CRF
   18); what is lost beyond it is lost in the HDR round trip.

6. Many clips: 16 short clips that must be re-encoded (720p MPEG-4 Part 2) through one
   `prepare`, one clip at a time (`jobs=1`) against two at once (the default on two cores):
   wall and CPU seconds.

`--only smartcut,hdr` runs only those sections (names: encodes, compliant, camera, smartcut,
hdr, many); `--quick` makes shorter clips; `--load N` keeps N processes spinning on the CPU
meanwhile (the issue's "loaded machine", on demand). Every timing's CPU seconds come from getrusage.

There is no natural footage on these machines, so the "natural" clip is synthesised: a zooming
Mandelbrot set blended with ffmpeg's moving test pattern and temporal grain, which gives x264
texture, motion and noise to work on. Sources are cached in .cache/bench-media.
The machine may be shared: load average is printed with the results.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prep.core.plan import PROFILE_SETTINGS, PROFILES  # noqa: E402
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
    return _timed_cpu(action)[0]


def _cpu_now() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed_cpu(action: object) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process and the processes it waited for) of one call."""
    cpu, start = _cpu_now(), time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start, _cpu_now() - cpu


def _transcode(source: Path, out: Path, profile: str) -> int:
    """prep's full re-encode of `source` (video and audio) to `out`, as prepare runs it for a clip
    whose video must be re-encoded. Returns the output's size."""
    options = PrepareOptions(use_cache=False, ffmpeg="", profile=profile)  # type: ignore[arg-type]
    _info, plan = plan_clip(parse_clip_spec(str(source)), options, reencode=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    run(build_args(plan, source, out), total_ms=plan.duration_ms, path=source,
        binary=find_ffmpeg(""))
    return probe(out).size_bytes


# Frames aligned by index on both sides, whatever each file's timebase (HandBrake writes 90 kHz),
# and the same colour tags on both: given unlike tags (the sources are untagged; HandBrake and
# prep's tone mapping tag BT.709), ffmpeg 7.1+ makes a two-input filter (libvmaf, ssim) convert
# one input's matrix through RGB first. The pixels are compared as decoded.
_ALIGN = ("settb=expr=1/30,setpts=N,"
          "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709")


def _vmaf(distorted: Path, reference: Path, crop: str = "") -> float:
    """VMAF of `distorted` against `reference` (first cropped by `crop`, a crop filter's options)."""
    cropped = f"crop={crop}," if crop else ""
    text = _ffmpeg("-i", str(distorted), "-i", str(reference), "-lavfi",
                   f"[0:v]{_ALIGN}[d];[1:v]{cropped}{_ALIGN}[r];[d][r]libvmaf=n_threads=2",
                   "-f", "null", "-")
    match = re.search(r"VMAF score: ([\d.]+)", text)
    if not match:
        raise SystemExit("libvmaf gave no score")
    return float(match[1])


def _luma_ssim(distorted: Path, master: Path,
               seconds: int) -> tuple[float, float, float, float]:
    """Mean luma of `distorted` and of `master`'s first `seconds`, SSIM (all planes) and SSIM of
    the luma plane alone."""
    text = _ffmpeg("-i", str(distorted), "-t", str(seconds), "-i", str(master), "-lavfi",
                   f"[0:v]{_ALIGN},signalstats,metadata=print:key=lavfi.signalstats.YAVG[a];"
                   f"[1:v]{_ALIGN},signalstats,metadata=print:key=lavfi.signalstats.YAVG[b];"
                   "[a][b]ssim", "-f", "null", "-")
    means: dict[str, list[float]] = {}
    for parsed, value in re.findall(r"\[(Parsed_metadata_\d+) [^\]]*\][^\n]*YAVG=([\d.]+)", text):
        means.setdefault(parsed, []).append(float(value))
    first, second = (sum(v) / len(v) for v in means.values())
    luma, whole = re.findall(r"SSIM Y:([\d.]+).*All:([\d.]+)", text)[-1]
    return first, second, float(whole), float(luma)


@dataclass
class _Encode:
    """One encoder's row of section 2: `run` writes its output to the path it is given."""

    key: str
    label: str
    run: Callable[[Path], object] | None  # None: not installed here
    note: str = ""
    seconds: float = 0.0
    size_bytes: int = 0
    vmaf: float = 0.0
    crop: str = ""  # HandBrake's crop, as crop filter options ("" when it crops nothing)


def _handbrake_crop(log: str) -> str:
    """The crop HandBrake applied (its job's crop-top/bottom/left/right), as crop filter options."""
    sides = {side: int(value) for side, value in
             re.findall(r'"crop-(top|bottom|left|right)": (\d+)', log)}
    if not any(sides.values()):
        return ""
    top, bottom, left, right = (sides.get(k, 0) for k in ("top", "bottom", "left", "right"))
    return f"w=iw-{left + right}:h=ih-{top + bottom}:x={left}:y={top}"


def _encodes(reference: Path, out_dir: Path, seconds: int, rounds: int) -> list[_Encode]:
    """ffmpeg's defaults, HandBrakeCLI's default and prep's profiles on `reference`: each timed
    `rounds` times in turn (the fastest counts), then measured (size, VMAF) once."""
    out_dir.mkdir(parents=True, exist_ok=True)
    handbrake = shutil.which("HandBrakeCLI")
    encodes = [_Encode("ffmpeg", "ffmpeg defaults (x264 medium CRF 23)",
                       lambda out: _ffmpeg("-i", str(reference), str(out)))]
    hb = _Encode("handbrake", "HandBrakeCLI default (x264 medium RF 22)", None,
                 note="skipped: HandBrakeCLI not installed (scripts/bench installs it with apt)")
    if handbrake:
        def run_handbrake(out: Path, binary: str = handbrake) -> None:
            done = subprocess.run([binary, "-i", str(reference), "-o", str(out)],
                                  capture_output=True, text=True, check=True)
            hb.crop = _handbrake_crop(done.stdout + done.stderr)

        hb.run, hb.note = run_handbrake, ""
    encodes.append(hb)
    for profile in PROFILES:
        encoder = PROFILE_SETTINGS[profile]
        extra = "".join(f", {k}={v}" for k, v in encoder.x264_params)
        encodes.append(_Encode(profile, f"prepare --profile {profile} (x264 {encoder.preset} "
                                        f"CRF {encoder.crf}{extra})",
                               functools.partial(_transcode, reference, profile=profile)))
    for _ in range(rounds):
        for encode in encodes:
            if encode.run is not None:
                elapsed = _timed(functools.partial(encode.run, out_dir / f"{encode.key}.mp4"))
                encode.seconds = min(encode.seconds or elapsed, elapsed)
    for encode in encodes:
        if encode.run is not None:
            output = out_dir / f"{encode.key}.mp4"
            encode.size_bytes = output.stat().st_size
            encode.vmaf = _vmaf(output, reference, encode.crop)
            if encode.crop:
                encode.note = f"cropped ({encode.crop}); scored against the source cropped alike"
    return encodes


def _encode_table(encodes: list[_Encode], seconds: int) -> list[str]:
    """Section 2 as a table: speed, size and VMAF side by side, with ratios to HandBrake and
    ffmpeg (a dash where HandBrake did not run)."""
    base = {e.key: e for e in encodes if e.run is not None}
    hb, ff = base.get("handbrake"), base["ffmpeg"]
    header = ("encoder", "x real time", "x HandBrake", "x ffmpeg", "MB", "x HB bytes", "VMAF")
    rows = [header]
    for e in encodes:
        if e.run is None:
            rows.append((e.label, "skipped", "-", "-", "-", "-", "-"))
            continue
        rows.append((e.label, f"{seconds / e.seconds:.2f}x",
                     f"{hb.seconds / e.seconds:.2f}x" if hb else "-",
                     f"{ff.seconds / e.seconds:.2f}x", f"{e.size_bytes / 1e6:.1f}",
                     f"{e.size_bytes / hb.size_bytes:.2f}x" if hb else "-", f"{e.vmaf:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                              for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines += [f"  note: {e.label}: {e.note}" for e in encodes if e.note]
    return lines


SECTIONS = ("encodes", "compliant", "camera", "smartcut", "hdr", "many")


def _superfast(source: Path, start_s: float, length_s: float, out: Path) -> None:
    """The quick re-encode an editor would type for a window: x264 superfast, CRF 18, AAC."""
    _ffmpeg("-ss", f"{start_s:g}", "-i", str(source), "-t", f"{length_s:g}", "-c:v", "libx264",
            "-preset", "superfast", "-crf", "18", "-c:a", "aac", str(out))


def _smart_cut_rows(sources: list[tuple[str, Path]], window: tuple[float, float], tmp: Path,
                    rounds: int) -> list[tuple[str, str, str]]:
    """Section 4: each source's window by prepare (a smart cut, or its fallback), by prep's own
    full re-encode and by the superfast baseline, timed in turn (fastest of each)."""
    no_cache = PrepareOptions(use_cache=False, ffmpeg="")
    length = window[1] - window[0]
    rows = []
    for label, source in sources:
        spec = f"{source}@{window[0]:g}-{window[1]:g}"
        _info, full_plan = plan_clip(parse_clip_spec(spec), no_cache)
        full, quick = tmp / "full-window.mp4", tmp / "superfast-window.mp4"
        best: dict[str, tuple[float, float]] = {}
        for _ in range(max(rounds, 2)):
            shutil.rmtree(tmp / "smart", ignore_errors=True)
            timings = {
                "smart": _timed_cpu(functools.partial(prepare, [spec], tmp / "smart", no_cache)),
                "full": _timed_cpu(functools.partial(
                    run, build_args(full_plan, source, full), total_ms=1, path=full,
                    binary=find_ffmpeg(""))),
                "superfast": _timed_cpu(functools.partial(_superfast, source, window[0], length,
                                                          quick))}
            for name, timing in timings.items():  # the fastest of each, with its CPU seconds
                if name not in best or timing[0] < best[name][0]:
                    best[name] = timing
        (smart,) = prepare([spec], tmp / "smart-check", no_cache)
        assert smart.output is not None
        (w_smart, c_smart), (w_full, c_full), (w_fast, c_fast) = (
            best["smart"], best["full"], best["superfast"])
        how = "smart cut" if smart.smart_cut else f"no smart cut ({smart.smart_cut_fallback})"
        original = tmp / "window-source.mkv"  # the source's frames of the window, lossless
        _ffmpeg("-ss", str(window[0]), "-i", str(source), "-frames:v",
                str(full_plan.video.frame_count if full_plan.video else 0), "-an",
                "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", str(original))
        frames_smart, frames_full = (probe(p).frame_count for p in (smart.output, full))
        source_s = probe(source).duration_ms / 1000
        rows.append((f"{length:g} s window at {window[0]:g} s of {source_s:.0f} s of 1080p H.264 "
                     f"({label}, 2 s GOPs): {how}",
                     f"{w_smart:.2f} s, {c_smart:.2f} CPU-s",
                     f"{w_fast / w_smart:.1f}x faster than superfast ({w_fast:.2f} s, "
                     f"{c_fast:.2f} CPU-s; {c_fast / c_smart:.1f}x the CPU), {w_full / w_smart:.1f}x "
                     f"than prep's re-encode ({w_full:.2f} s, {c_full:.2f} CPU-s); "
                     f"{frames_smart} frames vs {frames_full}; VMAF "
                     f"{_vmaf(smart.output, original):.1f} vs {_vmaf(full, original):.1f} "
                     f"(superfast {_vmaf(quick, original):.1f})"))
    return rows


def _many_rows(tmp: Path, count: int, seconds: int) -> list[tuple[str, str, str]]:
    """Section 6: `count` clips through one prepare, one at a time against two at once."""
    clips = [_make(f"many-{index:02d}-{seconds}s.avi", [
        "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds},"
        f"noise=alls=6:allf=t,hue=H=t*{index + 1}", "-f", "lavfi", "-i",
        f"sine=frequency={200 + 10 * index}:sample_rate=48000:duration={seconds}",
        "-c:v", "mpeg4", "-q:v", "3", "-c:a", "pcm_s16le"]) for index in range(count)]
    timings = {}
    for jobs in (1, 2):
        options = PrepareOptions(use_cache=False, ffmpeg="", jobs=jobs)
        out = tmp / f"many-{jobs}"
        timings[jobs] = _timed_cpu(functools.partial(prepare, [str(c) for c in clips], out,
                                                     options))
        shutil.rmtree(out)
    (w1, c1), (w2, c2) = timings[1], timings[2]
    return [(f"{count} clips of {seconds} s 720p (MPEG-4 -> H.264): prepare, two at once",
             f"{w2:.1f} s, {c2:.1f} CPU-s",
             f"{w1 / w2:.2f}x faster than one at a time ({w1:.1f} s, {c1:.1f} CPU-s)")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Shorter clips (runs in under a minute).")
    parser.add_argument("--rounds", type=int, default=None, metavar="N",
                        help="Time each encode of section 2 N times in turn, keeping the fastest "
                             "(default: 2, or 1 with --quick).")
    parser.add_argument("--only", default=",".join(SECTIONS), metavar="NAMES",
                        help=f"Comma-separated sections to run ({', '.join(SECTIONS)}).")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="Keep N processes spinning on the CPU while the sections run: a "
                             "loaded machine on demand (default: none).")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 2)
    only = set(args.only.split(","))
    if only - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(only - set(SECTIONS)))}")
    seconds = 3 if args.quick else 20
    hdr_seconds = 3 if args.quick else 10
    load_before = os.getloadavg()
    print(f"making sources ({seconds} s of 1080p30; cached in {CACHE})...", file=sys.stderr)
    # The reference: high quality H.264 with PCM audio in mkv, so prepare must re-encode it.
    reference = _make(f"natural-{seconds}s.mkv", [
        *_natural(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "14",
        "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le"])
    rows: list[tuple[str, str, str]] = []
    encodes: list[_Encode] = []
    t_transcode: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp_text, _spinning(args.load):
        tmp = Path(tmp_text)
        no_cache = PrepareOptions(use_cache=False, ffmpeg="")

        if "compliant" in only:  # 1. prepare (copy) vs naive transcode vs plain copy
            compliant = _make(f"compliant-{seconds}s.mp4", [
                "-i", str(reference), "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart"])
            t_copy = min(_timed(lambda: shutil.copyfile(compliant, tmp / "plain.mp4"))
                         for _ in range(3))
            t_prep = min(_timed(lambda: prepare([str(compliant)], tmp / "c", no_cache))
                         for _ in range(3))
            t_naive = _timed(lambda: _ffmpeg("-i", str(compliant), str(tmp / "naive.mp4")))
            rows.append(("compliant clip: prepare (copy), in-process", f"{t_prep:.3f} s",
                         f"{t_naive / t_prep:.0f}x faster than naive transcode ({t_naive:.1f} s); "
                         f"{t_prep - t_copy:+.3f} s vs plain file copy ({t_copy:.3f} s); the "
                         "whole command against cp: scripts/bench_startup.py"))

        if "encodes" in only or "camera" in only:  # 2. ffmpeg, HandBrake, each profile
            encodes = _encodes(reference, tmp / "encodes", seconds, args.rounds)
            t_transcode = {e.key: e.seconds for e in encodes}

        if "camera" in only:  # 3. compliant video + PCM audio -> video copied, audio to AAC
            camera = _make(f"camera-{seconds}s.mov", [
                *_natural(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "14",
                "-pix_fmt", "yuv420p", "-g", "30", "-c:a", "pcm_s16le"])
            t_audio = min(_timed(lambda: prepare([str(camera)], tmp / "camera", no_cache))
                          for _ in range(3))
            (result,) = prepare([str(camera)], tmp / "camera", no_cache)
            assert (result.plan.video_action, result.plan.audio_action) == ("copy", "transcode")
            rows.append(("H.264 + PCM mov: prepare (video copy, audio to AAC)",
                         f"{seconds / t_audio:.0f}x real time",
                         f"{t_transcode['balanced'] / t_audio:.0f}x faster than prep's full "
                         f"transcode ({t_transcode['balanced']:.1f} s, balanced); {t_audio:.2f} s "
                         f"for {seconds} s"))

        if "smartcut" in only:  # 4. a window cut between keyframes
            gop_seconds = 8 if args.quick else 60
            x264_gop = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g", "60",
                        "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart"]
            gop2 = _make(f"gop2-{gop_seconds}s.mp4", [
                *_natural(gop_seconds), *x264_gop[:6], "-bf", "3", *x264_gop[6:8],
                "-x264-params", "scenecut=0", *x264_gop[8:]])
            # Another encoder (OpenH264, as phones' hardware encoders: no x264 settings to
            # match, so the smart cut's edges carry parameter sets of their own).
            gop2_other = _make(f"gop2-openh264-{gop_seconds}s.mp4", [
                *_natural(gop_seconds), "-c:v", "libopenh264", "-b:v", "12M", "-g", "60",
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart"])
            gop2_bf8 = _make(f"gop2-bf8-{gop_seconds}s.mp4", [
                *_natural(gop_seconds), *x264_gop[:6], "-bf", "8", *x264_gop[6:8],
                "-x264-params", "scenecut=0", *x264_gop[8:]])
            # The window: 10 s from 12.3 s (1.3 s from 8 s with --quick).
            window = (1.3, 6.3) if args.quick else (12.3, 22.3)
            rows += _smart_cut_rows([("x264, 3 B-frames", gop2), ("OpenH264", gop2_other)],
                                    window, tmp, args.rounds)
            # A tail of 9 frames (0.3 s past a keyframe) that x264 would make with another
            # decode delay with the source's 8 B-frames: edges without B-frames instead.
            rows += _smart_cut_rows([("x264, 8 B-frames", gop2_bf8)],
                                    (window[0] - 1.0, window[1] - 2.0), tmp, args.rounds)

        if "hdr" in only:  # 5. HDR: prep's tone mapping vs a plain conversion
            rows += _hdr_rows(reference, tmp, hdr_seconds)

        if "many" in only:  # 6. many clips, one at a time against two at once
            rows += _many_rows(tmp, 4 if args.quick else 16, 3)

    load = os.getloadavg()
    width = max((len(r[0]) for r in rows), default=0)
    print(f"\nprepare benchmark ({'quick' if args.quick else 'full'}; {os.cpu_count()} cores; "
          f"load average {load_before[0]:.2f} at the start, {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} at the end: the machine may be shared"
          f"{f'; {args.load} spinning processes added' if args.load else ''})")
    if encodes:
        print(f"natural 1080p30 footage, {seconds} s, re-encoded (fastest of {args.rounds} "
              f"timing{'s' if args.rounds > 1 else ''} each; VMAF against the source):")
        print("\n".join(_encode_table(encodes, seconds)))
    print("the other cases:")
    for name, value, detail in rows:
        print(f"  {name.ljust(width)}  {value:>22}  {detail}")


@contextlib.contextmanager
def _spinning(count: int) -> Iterator[None]:
    """`count` processes that each keep a core busy while the block runs. They are reaped after
    it, so their CPU time never enters a measurement's getrusage difference."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def _hdr_rows(reference: Path, tmp: Path, hdr_seconds: int) -> list[tuple[str, str, str]]:
    """Section 5: HLG and PQ made from the SDR master, through prep and a plain conversion."""
    # HDR made from the SDR reference as BT.2408 maps it: SDR white to 203 cd/m2. At CRF 4, so
    # that the rows measure the tone mapping rather than this encode (x265's default CRF 28 on
    # grainy 1080p capped SSIM against the master near 0.94 before any tone mapping).
    hdr = {kind: _make(f"{kind}-{hdr_seconds}s-crf4.mov", [
        "-t", str(hdr_seconds), "-i", str(reference), "-vf",
        f"zscale=tin=709:min=709:pin=709:rin=tv:t={transfer}:p=2020:m=2020_ncl:r=tv:npl=203,"
        "format=yuv420p10le", "-c:v", "libx265", "-preset", "ultrafast", "-crf", "4",
        "-x265-params",
        f"log-level=error:colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc",
        "-tag:v", "hvc1", "-c:a", "aac"])
        for kind, transfer in (("hlg", "arib-std-b67"), ("pq", "smpte2084"))}
    no_cache = PrepareOptions(use_cache=False, ffmpeg="")
    rows = []
    # For scale, the master itself through the same final x264 encode (superfast CRF 18, as
    # both paths end): what is lost beyond it is lost in the HDR round trip.
    sdr = tmp / "sdr-master.mp4"
    _ffmpeg("-t", str(hdr_seconds), "-i", str(reference), "-c:v", "libx264", "-preset",
            "superfast", "-crf", "18", "-pix_fmt", "yuv420p", "-an", str(sdr))
    *_, ssim_sdr, ssim_sdr_y = _luma_ssim(sdr, reference, hdr_seconds)
    rows.append(("HDR rows' scale: the SDR master, same x264 encode", "",
                 f"SSIM {ssim_sdr:.3f} (luma {ssim_sdr_y:.3f}): no HDR, no tone mapping"))
    for kind, source in hdr.items():
        ours_dir = tmp / f"hdr-{kind}"
        elapsed, cpu = _timed_cpu(functools.partial(prepare, [str(source)], ours_dir, no_cache))
        (ours,) = ours_dir.iterdir()
        plain = tmp / f"plain-{kind}.mp4"
        t_plain, c_plain = _timed_cpu(functools.partial(
            _ffmpeg, "-i", str(source), "-vf",
            "zscale=t=709:p=709:m=709:r=tv:npl=203,format=yuv420p", "-c:v", "libx264",
            "-preset", "superfast", "-crf", "18", "-c:a", "aac", str(plain)))
        luma_ours, master, ssim_ours, ssim_ours_y = _luma_ssim(ours, reference, hdr_seconds)
        luma_plain, _, ssim_plain, ssim_plain_y = _luma_ssim(plain, reference, hdr_seconds)
        rows.append((f"HDR {kind.upper()} 10-bit HEVC -> SDR H.264 (balanced)",
                     f"{hdr_seconds / elapsed:.2f}x real time",
                     f"mean luma {luma_ours:.1f} vs master {master:.1f} "
                     f"({(luma_ours - master) / master:+.1%}), SSIM {ssim_ours:.3f} (luma "
                     f"{ssim_ours_y:.3f}), {cpu:.1f} CPU-s; plain zscale: {luma_plain:.1f} "
                     f"({(luma_plain - master) / master:+.1%}), SSIM {ssim_plain:.3f} (luma "
                     f"{ssim_plain_y:.3f}), {hdr_seconds / t_plain:.2f}x real time, "
                     f"{c_plain:.1f} CPU-s"))
    return rows


if __name__ == "__main__":
    main()
