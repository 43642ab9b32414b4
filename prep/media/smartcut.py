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
    framemd5_args,
    run,
    smart_cut_join_args,
    smart_cut_piece_args,
)
from prep.media.mp4 import read_mp4

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
    if track is None or track.avc_config is None or len(track.avc_config) < 4:
        return "the source's H.264 has more than one sample description, or none"
    options = x264_options(src)
    if options is None:
        return "the source was not made by x264, so its parameter sets cannot be matched"
    encode = _encoder_options(options, track.avc_config)
    if isinstance(encode, str):
        return encode
    if on_progress:
        on_progress(0, plan.duration_ms)
    frame_ms = Fraction(1000) / fps
    total = cut.head_frames + cut.copy_frames + cut.tail_frames
    with tempfile.TemporaryDirectory(prefix=".prep-smartcut-", dir=out.parent) as tmp_text:
        tmp = Path(tmp_text)
        pieces: list[Path] = []
        try:
            for name, start_ms, frames, how in (
                    ("head", plan.start_ms, cut.head_frames, encode),
                    ("copy", cut.first_key_ms, cut.copy_frames, None),
                    ("tail", int(cut.first_key_ms + cut.copy_frames * frame_ms), cut.tail_frames,
                     encode)):
                if not frames:
                    continue
                piece = tmp / f"{name}.mp4"
                run(smart_cut_piece_args(src, piece, start_ms=start_ms, frames=frames,
                                         timescale=track.timescale, encode=how, fps=fps),
                    total_ms=1, path=piece, binary=binary)
                made = read_mp4(piece).track("vide")
                if made is None or made.sample_count != frames:
                    return f"the {name} came out with the wrong number of frames"
                if made.avc_config != track.avc_config:
                    return (f"the re-encoded {name}'s parameter sets differ from the source's"
                            if how else "the copied GOPs' parameter sets changed")
                pieces.append(piece)
            listing = tmp / "pieces.txt"
            listing.write_text("".join(f"file '{p.name}'\n" for p in pieces))
            run(smart_cut_join_args(listing, plan, src, out), total_ms=plan.duration_ms,
                path=out, binary=binary, on_progress=on_progress)
            return _prove(plan, src, out, tmp, binary, total)
        except PrepError as err:
            return f"ffmpeg failed ({err})"


def _prove(plan: PrepPlan, src: Path, out: Path, tmp: Path, binary: FfmpegBinary,
           total: int) -> str | None:
    """None when every frame of `out` decodes cleanly, their number and times are exact, and
    the copied packets are the source's; else what failed."""
    cut = plan.smart_cut
    assert cut is not None
    # Decoding every frame is the proof that the joined stream is valid; the packets' hashes
    # (no decoding) give their count, their times and the copied range's identity.
    result = run(decode_check_args(out), total_ms=1, path=out, binary=binary)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    if errors:
        return f"the joined stream does not decode cleanly ({errors[-1]})"
    ours, theirs = tmp / "ours.md5", tmp / "theirs.md5"
    run(framemd5_args(out, ours, decode=False), total_ms=1, path=out, binary=binary)
    packets = _rows(ours)
    if len(packets) != total:
        return f"the joined stream has {len(packets)} frames, not {total}"
    times = sorted(pts for _, pts, _ in packets)
    step = times[1] - times[0] if len(times) > 1 else 1
    if step <= 0 or times != [i * step for i in range(total)]:
        return "the joined stream's timestamps are not evenly spaced from 0"
    run(framemd5_args(src, theirs, decode=False, start_ms=cut.first_key_ms,
                      frames=cut.copy_frames), total_ms=1, path=src, binary=binary)
    copied = [row[2] for row in packets][cut.head_frames:cut.head_frames + cut.copy_frames]
    if copied != [row[2] for row in _rows(theirs)]:
        return "the copied packets differ from the source's"
    return None


def _rows(path: Path) -> list[tuple[int, int, str]]:
    """(dts, pts, hash) of each line of a framemd5 file."""
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        rows.append((int(fields[1]), int(fields[2]), fields[5]))
    return rows
