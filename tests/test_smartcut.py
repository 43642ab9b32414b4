"""Smart cut (issue #18): a window of compliant H.264 cut between keyframes comes out frame-exact
with only its edges re-encoded, proven frame by frame; what cannot be proven falls back."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
from mediagen import ffmpeg_exe
from smartcutmedia import (
    OPENH264,
    SOURCES,
    WINDOW,
    WINDOW_FRAMES,
    frame_hashes,
    prepare_one,
    source,
    x264,
)

from prep.media.avc import _ue_end, parse_avc_config
from prep.media.ffmpeg import find_ffmpeg
from prep.media.mp4 import read_mp4, read_samples
from prep.media.probe import probe
from prep.media.smartcut import _prove, _with_copied_tail

pytestmark = pytest.mark.media

@pytest.mark.parametrize("encoder", list(SOURCES))
def test_window_between_keyframes_is_smart_cut(tmp_out: Path, encoder: str) -> None:
    """An x264 source's edges are re-encoded with its own SPS and a CAVLC PPS of their own;
    another encoder's get their own parameter sets under a free id, beside the source's in the
    one avcC (openh264's, as phones' hardware encoders, and unmarked x264's)."""
    original = source(encoder, SOURCES[encoder])
    result = prepare_one(tmp_out, f"{original}{WINDOW}")
    assert result.output is not None
    assert result.as_dict()["video_action"] == "smart-cut"
    assert result.smart_cut_fallback is None
    cut = result.plan.smart_cut
    assert cut is not None and (cut.head_frames, cut.copy_frames, cut.tail_frames) == (21, 60, 15)
    # Every frame decodes without an error; 96 frames (3.2 s), evenly timed from 0.
    ours = frame_hashes(result.output)
    assert len(ours) == WINDOW_FRAMES
    step = ours[1][0]
    assert [pts for pts, _ in ours] == [i * step for i in range(WINDOW_FRAMES)]
    # The copied frames (2.0-4.0 s, and the first run of the last GOP in decode order that is
    # also shown first) decode bit-identical to the source's same frames.
    samples = read_samples(original)
    assert samples is not None
    made = _with_copied_tail(cut, samples, 3)
    assert not isinstance(made, str) and made.copy_frames > 60 and made.tail_frames < 15
    copied = slice(21, 21 + made.copy_frames)
    theirs = frame_hashes(original, "-ss", "1.3")[:WINDOW_FRAMES]
    assert [h for _, h in ours[copied]] == [h for _, h in theirs[copied]]
    # The re-encoded frames are the source's frames at their places, not their neighbours'.
    for index in (0, 20, WINDOW_FRAMES - 1):
        if made.copy_frames + 21 <= index or index < 21:
            assert _closest_source_frame(result.output, index, original) == index
    # One track, one sample description, no edit list; the audio ends with the video.
    mp4 = read_mp4(result.output)
    video, audio = mp4.track("vide"), mp4.track("soun")
    assert video is not None and audio is not None and not mp4.has_edit_list
    assert video.sample_count == WINDOW_FRAMES
    assert audio.duration_units / audio.timescale <= video.duration_units / video.timescale
    source_track = read_mp4(original).track("vide")
    assert source_track is not None and source_track.avc_config and video.avc_config
    sets, source_sets = (parse_avc_config(video.avc_config),
                         parse_avc_config(source_track.avc_config))
    assert sets is not None and source_sets is not None
    assert sets.pps[:1] == source_sets.pps and sets.pps_ids == {0, 1} and len(sets.pps) == 2
    if encoder == "x264":
        # The source's one SPS, byte for byte; the edges' own PPS (CAVLC) points at it.
        assert sets.sps == source_sets.sps
        assert _entropy_coding_mode(sets.pps[0]) == 1 and _entropy_coding_mode(sets.pps[1]) == 0
    else:
        assert sets.sps[:1] == source_sets.sps
        assert sets.sps_ids == {0, 1} and len(sets.sps) == 2


def _entropy_coding_mode(pps: bytes) -> int:
    """A PPS's entropy_coding_mode_flag (1: CABAC), the bit after its two Exp-Golomb ids."""
    bits = "".join(f"{byte:08b}" for byte in pps[1:4])
    return int(bits[_ue_end(bits, _ue_end(bits, 0))])


def _closest_source_frame(output: Path, index: int, original: Path) -> int:
    """Which of the source's window frames index-1..index+1 frame `index` of `output` looks most
    like (PSNR)."""
    scores = {}
    for candidate in (index - 1, index, index + 1):
        if not 0 <= candidate < WINDOW_FRAMES:
            continue
        done = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(output), "-ss", "1.3", "-i",
             str(original), "-lavfi",
             f"[0:v]select=eq(n\\,{index}),setpts=0[a];[1:v]select=eq(n\\,{candidate}),"
             "setpts=0[b];[a][b]psnr", "-f", "null", "-"],
            capture_output=True, text=True, check=True)
        found = re.findall(r"average:([\d.]+|inf)", done.stderr)
        scores[candidate] = float(found[-1])
    return max(scores, key=lambda c: scores[c])


@pytest.mark.parametrize(("name", "video", "reason"), [
    ("open-gop", x264(":open_gop=1"), "open GOPs"),
    ("bluray", x264(":bluray-compat=1"), "Blu-ray compatible coding"),
])
def test_window_that_cannot_be_smart_cut_falls_back_with_its_reason(
        tmp_out: Path, name: str, video: list[str], reason: str) -> None:
    result = prepare_one(tmp_out, f"{source(name, video)}{WINDOW}")
    data = result.as_dict()
    assert data["video_action"] == "transcode" and data["action"] == "transcode"
    assert reason in (result.smart_cut_fallback or "")
    assert any("smart cut not used" in note and reason in note for note in data["notes"])
    assert len(frame_hashes(result.output)) == WINDOW_FRAMES  # type: ignore[arg-type]


def test_edges_x264_would_time_unevenly_are_made_without_b_frames(tmp_out: Path) -> None:
    """8 B-frames and a tail of 9 frames that cannot be copied (it ends inside a run of
    B-frames): x264 with the source's settings would make a piece the join cannot time evenly
    (the sample tables and the settings say so before anything runs), so the edges are made
    without B-frames, under parameter sets of their own, and the window is still smart-cut."""
    from prep.media.smartcut import _layout

    original = source("bf8", ["-c:v", "libx264", "-preset", "veryfast", "-bf", "8", "-g", "30",
                              "-x264-params", "scenecut=0:b-adapt=0"])
    result = prepare_one(tmp_out, f"{original}@1.3-4.3")
    assert result.as_dict()["video_action"] == "smart-cut" and result.smart_cut_fallback is None
    planned, samples = result.plan.smart_cut, read_samples(original)
    assert planned is not None and samples is not None
    assert "tail's 9 frames would come out of x264 (8 B-frames)" in str(_layout(planned, samples, 8))
    ours = frame_hashes(result.output)  # type: ignore[arg-type]
    assert [pts for pts, _ in ours] == [i * ours[1][0] for i in range(90)]
    video = read_mp4(result.output).track("vide")  # type: ignore[arg-type]
    sets = parse_avc_config(video.avc_config or b"") if video else None
    assert sets is not None and sets.sps_ids == sets.pps_ids == {0, 1}


# --- the proof catches a joined stream that is not what it claims ------------------------------

def _tamper(path: Path, out: Path, index: int, change: Callable[[bytearray], None]) -> None:
    """Copy `path` to `out` with video sample `index`'s bytes changed in place."""
    samples = read_samples(path)
    assert samples is not None
    data = bytearray(path.read_bytes())
    start, size = samples.offsets[index], samples.sizes[index]
    sample = data[start:start + size]
    change(sample)
    data[start:start + size] = sample
    out.write_bytes(bytes(data))


def _nal_starts(sample: bytearray) -> list[int]:
    starts, pos = [], 0
    while pos + 4 < len(sample):
        starts.append(pos)
        pos += 4 + int.from_bytes(sample[pos:pos + 4], "big")
    return starts


def _retype_idr(sample: bytearray) -> None:
    for pos in _nal_starts(sample):
        if sample[pos + 4] & 0x1F == 5:
            sample[pos + 4] = (sample[pos + 4] & 0xE0) | 1


def _scramble_slice(sample: bytearray) -> None:
    pos = max(p for p in _nal_starts(sample) if sample[p + 4] & 0x1F in (1, 5))
    end = pos + 4 + int.from_bytes(sample[pos:pos + 4], "big")
    for at in range(pos + 12, end):
        sample[at] = (at * 73) & 0xFF


def _flip_last_byte(sample: bytearray) -> None:
    sample[-1] ^= 0x01


@pytest.mark.parametrize(("where", "change", "reason"), [
    ("copy", _flip_last_byte, "the copied packets differ from the source's"),
    ("tail", _retype_idr, "the tail does not start on an IDR frame"),
    ("head", _scramble_slice, "does not decode cleanly"),
])
def test_the_proof_refuses_a_tampered_join(tmp_out: Path, where: str,
                                           change: Callable[[bytearray], None],
                                           reason: str) -> None:
    original = source("x264", x264())
    result = prepare_one(tmp_out, f"{original}{WINDOW}")
    assert result.output is not None and result.plan.smart_cut is not None
    fps = probe(original).fps
    assert fps is not None
    binary = find_ffmpeg("")
    record = read_mp4(result.output).track("vide").avc_config  # type: ignore[union-attr]
    assert record is not None  # the source's SPS and PPS, and the edges' PPS
    samples = read_samples(original)
    assert samples is not None
    cut = _with_copied_tail(result.plan.smart_cut, samples, 3)  # as smart_cut made it
    assert not isinstance(cut, str) and cut.tail_frames
    assert _prove(cut, original, result.output, fps, binary, record) is None
    index = {"head": 0, "copy": cut.head_frames + 5, "tail": cut.head_frames + cut.copy_frames}
    tampered = tmp_out / f"tampered-{where}.mp4"
    _tamper(result.output, tampered, index[where], change)
    why = _prove(cut, original, tampered, fps, binary, record)
    assert why is not None and reason in why


def test_cli_says_a_smart_cut_is_planned_and_then_made(tmp_out: Path) -> None:
    from click.testing import CliRunner

    from prep.ui.cli import cli

    spec = f"{source('openh264', OPENH264)}{WINDOW}"
    runner = CliRunner()
    dry = runner.invoke(cli, ["prepare", spec, "-o", str(tmp_out / "dry"), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "smart cut: 60 frames copied, 21 + 15 re-encoded at the edges" in dry.stdout
    done = runner.invoke(cli, ["prepare", spec, "-o", str(tmp_out / "made"), "--no-cache", "-v"])
    assert done.exit_code == 0, done.output
    assert "smart cut because cut between keyframes" in done.stdout


def test_a_cached_smart_cut_is_still_reported_as_one(tmp_out: Path) -> None:
    from prep.media.prepare import PrepareOptions, prepare

    options = PrepareOptions(use_cache=True, cache_dir=tmp_out / "cache", ffmpeg="")
    spec = f"{source('x264', x264())}{WINDOW}"
    (first,) = prepare([spec], tmp_out / "one", options)
    (again,) = prepare([spec], tmp_out / "two", options)
    assert first.smart_cut and not first.cached
    assert again.cached and again.smart_cut and again.as_dict()["video_action"] == "smart-cut"
    assert again.output is not None and first.output is not None
    assert again.output.read_bytes() == first.output.read_bytes()


def test_the_sources_index_is_read_once_for_probe_plan_and_smart_cut(
        tmp_out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample tables probe read are the ones prepare plans from and the smart cut uses."""
    import sys

    from prep.media import mp4

    src = source("x264", x264())
    reads: list[Path] = []

    def counting(path: Path | str) -> mp4.Mp4Info:
        reads.append(Path(path))
        return mp4.read_mp4(path)

    for module in ("prep.media.probe", "prep.media.prepare", "prep.media.smartcut"):
        monkeypatch.setattr(sys.modules[module], "read_mp4", counting)
    result = prepare_one(tmp_out, f"{src}{WINDOW}")
    assert result.smart_cut
    assert reads.count(src) == 1


def test_loudness_is_noted_on_the_smart_cut_path(tmp_out: Path) -> None:
    """The smart cut applied loudness but said nothing of it (the transcode path did)."""
    from prep.media.prepare import PrepareOptions, prepare

    spec = f"{source('x264', x264())}{WINDOW}"
    (result,) = prepare([spec], tmp_out, PrepareOptions(use_cache=False, ffmpeg="",
                                                         loudness_lufs=-16.0))
    assert result.smart_cut and result.plan.loudness is not None
    assert any("LUFS" in note for note in result.notes), result.notes


# --- the edges' decoders are spared the frames nothing needs ----------------------------------

def test_an_edge_argv_drops_the_spared_packets_before_decoding() -> None:
    from prep.media.ffmpeg import smart_cut_piece_args

    args = smart_cut_piece_args("in.mp4", "head.mp4", start_ms=1300, frames=21, timescale=15360,
                                encode={"preset": "ultrafast"}, fps=Fraction(30),
                                decode_check=True, unread=(4096, 8192), threads=1)
    source_at = args.index("in.mp4")
    before = args[:source_at]
    assert before[before.index("-bsf:v") + 1] == "noise=drop=not(pos-4096)+not(pos-8192)"
    assert before[before.index("-threads") + 1] == "1"  # the decoder's
    after = args[source_at:]
    check = after.index("-dec")
    assert after[check - 2:check] == ["-threads", "1"]  # the loopback decoder's
    assert after[after.index("-threads") + 1] == "1"  # x264's, before the head's mp4
    assert "-bsf:v" not in smart_cut_piece_args("in.mp4", "tail.mp4", start_ms=2000, frames=60,
                                                timescale=15360, encode={}, fps=Fraction(30))


def test_the_frames_the_edges_are_spared_change_none_they_make(tmp_out: Path) -> None:
    """The packets dropped before the edges' decoders are non-reference frames shown before the
    edge: the head's and the tail's frames decode bit for bit as without the drop."""
    from prep.media.clips import parse_clip_spec
    from prep.media.prepare import PrepareOptions, plan_clip
    from prep.media.smartcut import _edge_bframes, _edges, _layout, _pieces, _read_source

    original = source("x264", x264())
    _info, plan = plan_clip(parse_clip_spec(f"{original}{WINDOW}"),
                            PrepareOptions(use_cache=False, ffmpeg=""))
    assert plan.smart_cut is not None
    assert plan.video is not None
    src = _read_source(original, None, plan.video.fps)
    assert not isinstance(src, str)
    edges = _edges(plan, original, src.config)
    assert not isinstance(edges, str)
    cut = _layout(plan.smart_cut, src.samples, _edge_bframes(edges))
    assert not isinstance(cut, str)
    pieces = {piece.name: piece for piece in _pieces(plan, cut, src, edges, spare=True)}
    head, tail = pieces["head"], pieces["tail"]
    copied_tail = cut.copy_frames - plan.smart_cut.copy_frames
    assert head.unread and tail.unread and tail.skip == copied_tail - len(tail.unread)
    for piece, skip_unspared in ((head, 0), (tail, copied_tail)):
        seek = ["-ss", f"{piece.start_ms / 1000:.3f}"]
        spared = frame_hashes(original, "-bsf:v", "noise=drop=" + "+".join(
            f"not(pos-{offset})" for offset in piece.unread), *seek)
        unspared = frame_hashes(original, *seek)
        # Fewer frames decoded; the piece's own frames the same, at the same times.
        assert len(spared) == len(unspared) - (len(piece.unread) if piece is tail else 0)
        assert (spared[piece.skip:piece.skip + piece.frames]
                == unspared[skip_unspared:skip_unspared + piece.frames])
    # The cut made with them is the one proven and frame-exact (the first test checks the rest).
    result = prepare_one(tmp_out, f"{original}{WINDOW}")
    assert result.smart_cut and len(frame_hashes(result.output)) == WINDOW_FRAMES  # type: ignore[arg-type]


def test_an_ffmpeg_without_loopback_decoders_decodes_after_the_join(
        tmp_out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before ffmpeg 7.1 (no `-dec`, no input bitstream filters) nothing is dropped before the
    edges' decoders, and the proof decodes the joined edges in one ffmpeg instead."""
    import prep.media.smartcut as smartcut
    from prep.media.ffmpeg import run_together as real

    argvs: list[list[str]] = []

    def recording(jobs: list[tuple[list[str], Path]], **kwargs: object) -> object:
        argvs.extend(args for args, _ in jobs)
        return real(jobs, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(smartcut, "loopback_decoding", lambda path: False)
    monkeypatch.setattr(smartcut, "run_together", recording)
    result = prepare_one(tmp_out, f"{source('x264', x264())}{WINDOW}")
    assert result.smart_cut and result.smart_cut_fallback is None
    assert argvs and not any("-bsf:v" in args or "-dec" in args for args in argvs)
    assert len(frame_hashes(result.output)) == WINDOW_FRAMES  # type: ignore[arg-type]
