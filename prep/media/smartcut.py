"""Smart cut: a frame-exact window of compliant H.264 with the least re-encoding.

The whole GOPs inside the window are copied as they are; only the frames before the first
keyframe (the head) and from the last one on (the tail) are re-encoded, by x264 with the options
the source's own x264 recorded in its stream, so that the edges' parameter sets (SPS and PPS)
come out byte for byte the source's. The pieces are joined into one mp4 track with one sample
description and no edit list, and the result is proven before it is used: every frame decodes
without an error, the frame count and timestamps are exact, and the copied packets are the
source's. Anything that cannot be matched or proven returns the reason, and prepare falls back
to re-encoding the whole window.
"""

from __future__ import annotations

import re
import tempfile
from fractions import Fraction
from pathlib import Path

from prep.core.plan import PrepPlan
from prep.errors import PrepError
from prep.media.ffmpeg import (
    FfmpegBinary,
    ProgressCallback,
    decode_check_args,
    run,
    run_together,
    smart_cut_audio_args,
    smart_cut_join_args,
    smart_cut_piece_args,
)
from prep.media.mp4 import Samples, read_mp4, read_samples

__all__ = ["smart_cut", "x264_options"]

# x264 writes its settings into the first frame (an unregistered user data SEI): read this far.
_SEI_SCAN_BYTES = 8_000_000
_SEI = re.compile(rb"x264 - core \d+[^\x00]*? - options: ([^\x00\x80]*)")
_PROFILES = {66: "baseline", 77: "main", 100: "high"}
_PYRAMID = {"0": "none", "1": "strict", "2": "normal"}
# x264 options that shape the SPS and PPS, passed on as the source has them.
_HEADER_KEYS = ("cabac", "ref", "bframes", "weightb", "weightp", "8x8dct", "keyint",
                "keyint_min", "chroma_qp_offset", "constrained_intra")


def x264_options(path: Path | str) -> dict[str, str] | None:
    """The options x264 recorded in the video of `path` (`ref=3`, `bframes=3`, ...), or None
    when the stream carries no x264 settings (another encoder made it)."""
    with open(path, "rb") as fh:
        head = fh.read(_SEI_SCAN_BYTES)
    match = _SEI.search(head)
    if match is None:
        return None
    pairs = (item.split("=", 1) for item in match[1].decode("latin-1").split() if "=" in item)
    return {key: value for key, value in pairs}


def _encoder_options(options: dict[str, str], config: bytes) -> dict[str, str] | str:
    """libx264 options whose parameter sets match the source's, or why there are none."""
    for key, refused in (("open_gop", "open GOPs"), ("interlaced", "interlaced coding"),
                         ("bluray_compat", "Blu-ray compatible coding"),
                         ("intra_refresh", "periodic intra refresh"), ("fake_interlaced", "")):
        if options.get(key, "0") not in ("0", ""):
            return f"the source uses {refused or key}"
    if "nal_hrd" in options and options["nal_hrd"] != "none":
        return "the source signals HRD parameters"
    profile = _PROFILES.get(config[1])
    if profile is None:
        return f"H.264 profile {config[1]} is not matched"
    params = {key: options[key] for key in _HEADER_KEYS if key in options}
    params["b-pyramid"] = _PYRAMID.get(options.get("b_pyramid", "0"), "none")
    # x264 lowers the chroma QP offset itself when psy is on; with psy off, the source's final
    # offset (as recorded) is used as it is.
    params["psy"] = "0"
    # The PPS's initial QP is the CRF (whole part) for a CRF encode, 26 for rate-controlled ones.
    rc = options.get("rc", "crf")
    if rc == "crf":
        crf = str(int(float(options.get("crf", "23"))))
    elif rc == "cqp":
        return "the source was encoded at a constant QP"
    else:
        crf = "26"
    params["crf"] = crf
    x264 = ":".join(f"{key}={value}" for key, value in params.items())
    return {"preset": "ultrafast", "profile:v": profile, "level": f"{config[3] / 10:g}",
            "x264-params": x264}


def smart_cut(plan: PrepPlan, src: Path, out: Path, binary: FfmpegBinary, fps: Fraction, *,
              on_progress: ProgressCallback | None = None) -> str | None:
    """Make `plan`'s window at `out` by a smart cut; None when it was made and proven, else why
    not (then `out` is to be thrown away). `fps` is the source's constant frame rate;
    `on_progress` hears (done_ms, total_ms) as the pieces are made and joined."""
    cut = plan.smart_cut
    if cut is None:
        return "no whole GOP inside the window"
    track = read_mp4(src).track("vide")
    if track is None or track.avc_config is None or len(track.avc_config) < 5:
        return "the source's H.264 has more than one sample description, or none"
    options = x264_options(src)
    if options is None:
        return "the source was not made by x264, so its parameter sets cannot be matched"
    encode = _encoder_options(options, track.avc_config)
    if isinstance(encode, str):
        return encode
    if on_progress:
        on_progress(0, plan.duration_ms)
    pieces = [(name, start_ms, frames, how) for name, start_ms, frames, how in (
        ("head", plan.start_ms, cut.head_frames, encode),
        ("copy", cut.first_key_ms, cut.copy_frames, None),
        ("tail", cut.last_key_ms, cut.tail_frames, encode)) if frames]
    with tempfile.TemporaryDirectory(prefix=".prep-smartcut-", dir=out.parent) as tmp_text:
        tmp = Path(tmp_text)
        paths = [tmp / f"{name}.mp4" for name, *_ in pieces]
        audio = tmp / "audio.mp4" if plan.has_audio and plan.audio is not None else None
        try:
            # The pieces do not depend on each other: both edges and the audio are made at once.
            jobs = [(smart_cut_piece_args(src, path, start_ms=start_ms, frames=frames,
                                          timescale=track.timescale, encode=how, fps=fps), path)
                    for path, (_, start_ms, frames, how) in zip(paths, pieces, strict=True)]
            if audio is not None:
                jobs.append((smart_cut_audio_args(plan, src, audio), audio))
            run_together(jobs, binary=binary)
            for path, (name, _, frames, how) in zip(paths, pieces, strict=True):
                made = read_mp4(path).track("vide")
                if made is None or made.sample_count != frames:
                    return f"the {name} came out with the wrong number of frames"
                if made.avc_config != track.avc_config:
                    return (f"the re-encoded {name}'s parameter sets differ from the source's"
                            if how else "the copied GOPs' parameter sets changed")
            listing = tmp / "pieces.txt"
            listing.write_text("".join(f"file '{path.name}'\n" for path in paths))
            run(smart_cut_join_args(listing, out, audio), total_ms=plan.duration_ms,
                path=out, binary=binary, on_progress=on_progress)
            return _prove(plan, src, out, fps, binary)
        except PrepError as err:
            return f"ffmpeg failed ({err})"


# Frames of the copied GOP decoded after the head: past its IDR and the B-frames that follow.
_JOIN_FRAMES = 8


def _prove(plan: PrepPlan, src: Path, out: Path, fps: Fraction,
           binary: FfmpegBinary) -> str | None:
    """None when `out` is proven one valid stream, else what failed.

    From the sample tables: one sample description, the source's; the exact frame count; times
    evenly spaced from 0, each piece's frames shown before the next piece's; each piece starting
    on an IDR access unit; and the copied samples byte for byte the source's, whole GOPs (the
    source's next sample is an IDR). An IDR starts a decoder afresh, so the copied GOPs decode
    exactly as they do in the source. What is left is decoded: the head with the first frames
    of the copy, and the tail, with any error a failure.
    """
    cut = plan.smart_cut
    assert cut is not None
    ours, theirs = read_samples(out), read_samples(src)
    config = read_mp4(out).track("vide")
    if ours is None or theirs is None or config is None:
        return "the joined file has no video track"
    if config.avc_config != read_mp4(src).track("vide").avc_config:  # type: ignore[union-attr]
        return "the joined stream's parameter sets are not the source's"
    bounds = [0, cut.head_frames, cut.head_frames + cut.copy_frames,
              cut.head_frames + cut.copy_frames + cut.tail_frames]
    total = bounds[-1]
    if len(ours) != total:
        return f"the joined stream has {len(ours)} frames, not {total}"
    times = sorted(ours.presentation_times)
    step = times[1] - times[0] if total > 1 else 1
    if step <= 0 or [t - times[0] for t in times] != [i * step for i in range(total)]:
        return "the joined stream's timestamps are not evenly spaced"
    rank = {t: i for i, t in enumerate(times)}
    length_size = (config.avc_config[4] & 3) + 1  # type: ignore[index]
    first_copied = _sample_at(theirs, cut.first_key_ms)
    if first_copied is None or first_copied + cut.copy_frames > len(theirs):
        return "the copied GOPs are not where the source's keyframes are"
    with open(out, "rb") as fh, open(src, "rb") as sfh:
        for name, low, high in zip(("head", "copy", "tail"), bounds, bounds[1:], strict=False):
            if low == high:
                continue
            if {rank[ours.presentation_times[i]] for i in range(low, high)} != set(range(low, high)):
                return f"the {name}'s frames are not shown in their place"
            if not _is_idr(next(ours.read(fh, low, 1)), length_size):
                return f"the {name} does not start on an IDR frame"
        nxt = first_copied + cut.copy_frames
        if nxt < len(theirs) and not _is_idr(next(theirs.read(sfh, nxt, 1)), length_size):
            return "the copied frames are not whole GOPs"
        copied = zip(ours.read(fh, cut.head_frames, cut.copy_frames),
                     theirs.read(sfh, first_copied, cut.copy_frames), strict=True)
        if not all(a == b for a, b in copied):
            return "the copied packets differ from the source's"
    checks = []
    if cut.head_frames:
        checks.append(decode_check_args(out, frames=cut.head_frames + min(_JOIN_FRAMES,
                                                                          cut.copy_frames)))
    if cut.tail_frames:
        # Just past the tail's first frame: the seek lands on that IDR and decodes from it.
        tail_ms = int(Fraction(bounds[2] * 1000) / fps) + 1
        checks.append(decode_check_args(out, seek_ms=tail_ms))
    for result in run_together([(args, out) for args in checks], binary=binary):
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        if errors:
            return f"the joined stream does not decode cleanly ({errors[-1]})"
    return None


def _sample_at(samples: Samples, ms: int) -> int | None:
    """The index of the sync sample shown at `ms` (presentation time from the first frame shown,
    rounded down as the plan's keyframe times are)."""
    first = min(samples.presentation_times)
    for index in sorted(samples.sync) if samples.sync is not None else range(len(samples)):
        if (samples.presentation_times[index] - first) * 1000 // samples.timescale == ms:
            return index
    return None


def _is_idr(sample: bytes, length_size: int) -> bool:
    """True when an H.264 access unit (length-prefixed NAL units) holds an IDR slice."""
    pos = 0
    while pos + length_size < len(sample):
        size = int.from_bytes(sample[pos:pos + length_size], "big")
        if sample[pos + length_size] & 0x1F == 5:
            return True
        pos += length_size + size
    return False
