"""Re-encoded audio never runs past the video, on every path prepare takes (issue #18).

Each source's audio outlasts its video by 0.4 s, the shape that exposed the HDR path: a plan that
counted frames to the window's end asked ffmpeg for more video than the source holds, and the
audio, counted from that plan, ran past the video that came out."""

from __future__ import annotations

from pathlib import Path

import pytest
from mediagen import make

from prep.media.mp4 import read_mp4
from prep.media.prepare import PrepareOptions, prepare

pytestmark = pytest.mark.media

_SIZE = "160x90"
_X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30"]
_HLG = ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-x265-params",
        "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc",
        "-tag:v", "hvc1"]


def _source(name: str, codec: list[str], audio_codec: str = "aac", seconds: float = 3,
            suffix: str = ".mov") -> Path:
    extra = ["-movflags", "+faststart"] if suffix == ".mp4" else []
    return make(f"audio-end-{name}", [
        "-f", "lavfi", "-i", f"testsrc2=size={_SIZE}:rate=30:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=sample_rate=48000:duration={seconds + 0.4}",
        *codec, "-c:a", audio_codec, *extra], suffix=suffix)


# (source, window, --extend, the plan's video and audio actions)
PATHS = {
    "copy": (lambda: _source("plain", _X264, suffix=".mp4"), "", None, ("copy", "copy")),
    "remux-audio": (lambda: _source("pcm", _X264, "pcm_s16le", seconds=4), "@1-", None,
                    ("copy", "transcode")),
    "transcode": (lambda: _source("plain", _X264), "@0.5-", None, ("transcode", "transcode")),
    "hdr": (lambda: _source("hlg", _HLG), "", None, ("transcode", "transcode")),
    "vfr": (lambda: make("audio-end-vfr", [
        "-f", "lavfi", "-i", f"testsrc2=size={_SIZE}:rate=30:duration=3",
        "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=3.4",
        "-vf", "setpts='if(lt(N,45),N/30,1.5+(N-45)/15)/TB'", "-fps_mode", "vfr", *_X264,
        "-c:a", "aac"], suffix=".mov"), "", None, ("transcode", "transcode")),
    "loop": (lambda: _source("short", _X264, seconds=1.2), "", "loop",
             ("transcode", "transcode")),
    "freeze": (lambda: _source("short", _X264, seconds=1.2), "", "freeze",
               ("transcode", "transcode")),
}


@pytest.mark.parametrize("path", list(PATHS))
def test_reencoded_audio_ends_with_the_video(tmp_out: Path, path: str) -> None:
    make_source, window, extend, actions = PATHS[path]
    source = make_source()
    (result,) = prepare([f"{source}{window}"], tmp_out,
                        PrepareOptions(use_cache=False, ffmpeg="", extend=extend, profile="fast"))
    assert (result.plan.video_action, result.plan.audio_action) == actions
    assert result.output is not None
    tracks = {t.kind: t for t in read_mp4(result.output).tracks}
    video, audio = tracks["vide"], tracks["soun"]
    video_s = video.duration_units / video.timescale
    audio_s = audio.duration_units / audio.timescale
    if result.plan.audio is None:
        assert result.output.read_bytes() == source.read_bytes()  # nothing re-encoded
        return
    # Stored audio ends with the video, never after it, and at most a frame and an AAC frame
    # (the encoder's delay, cut from the end) before it.
    assert audio_s <= video_s
    assert video_s - audio_s <= 1 / 30 + 1024 / 48_000


def _ends(path: Path) -> tuple[float, float]:
    tracks = {t.kind: t for t in read_mp4(path).tracks}
    video, audio = tracks["vide"], tracks["soun"]
    return video.duration_units / video.timescale, audio.duration_units / audio.timescale


def test_loudness_keeps_the_audio_within_the_video(tmp_out: Path) -> None:
    """A 29.97 fps export whose audio runs 20 ms past its video: loudnorm left a gap in the
    audio's timestamps, and the prepared file's audio ran past its video (exit 3)."""
    source = make("audio-end-ntsc-over", [
        "-f", "lavfi", "-i", f"testsrc2=size={_SIZE}:rate=30000/1001:duration=6",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6.02",
        *_X264, "-c:a", "aac", "-movflags", "+faststart"], suffix=".mp4")
    (result,) = prepare([str(source)], tmp_out,
                        PrepareOptions(use_cache=False, ffmpeg="", loudness_lufs=-16.0))
    assert result.output is not None and result.plan.video_action == "copy"
    video_s, audio_s = _ends(result.output)
    assert audio_s <= video_s


def test_a_remux_trims_audio_that_runs_past_the_video(tmp_out: Path) -> None:
    """A plain ffmpeg mp4 (index at the end, AAC delay hidden by an edit list): rewrapped with
    its audio copied, the audio came out 21 ms longer than the video."""
    from prep.core.plan import AUDIO_PAST_VIDEO

    source = make("audio-end-plain-remux", [
        "-f", "lavfi", "-i", f"testsrc2=size={_SIZE}:rate=30:duration=4",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
        *_X264, "-c:a", "aac"], suffix=".mp4")
    (result,) = prepare([str(source)], tmp_out, PrepareOptions(use_cache=False, ffmpeg=""))
    assert result.output is not None
    assert result.plan.action == "remux" and result.plan.video_action == "copy"
    assert AUDIO_PAST_VIDEO in result.plan.reasons
    video_s, audio_s = _ends(result.output)
    assert audio_s <= video_s
