"""Smart cut (issue #18): a window of compliant H.264 cut between keyframes comes out frame-exact
with only its edges re-encoded, proven frame by frame; what cannot be proven falls back."""

from __future__ import annotations

from pathlib import Path

import pytest
from smartcutmedia import WINDOW, WINDOW_FRAMES, frame_hashes, prepare_one, source, x264

from prep.media.mp4 import read_mp4

pytestmark = pytest.mark.media


def test_window_between_keyframes_is_smart_cut(tmp_out: Path) -> None:
    original = source("x264", x264())
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
    # The copied frames (2.0-4.0 s) decode bit-identical to the source's same frames.
    theirs = frame_hashes(original, "-ss", "1.3")[:WINDOW_FRAMES]
    assert [h for _, h in ours[21:81]] == [h for _, h in theirs[21:81]]
    # One track, one sample description, no edit list; the audio ends with the video.
    mp4 = read_mp4(result.output)
    video, audio = mp4.track("vide"), mp4.track("soun")
    assert video is not None and audio is not None and not mp4.has_edit_list
    assert video.avc_config == read_mp4(original).track("vide").avc_config  # type: ignore[union-attr]
    assert video.sample_count == WINDOW_FRAMES
    assert audio.duration_units / audio.timescale <= video.duration_units / video.timescale


@pytest.mark.parametrize(("name", "video", "reason"), [
    ("open-gop", x264(":open_gop=1"), "open GOPs"),
    ("openh264", ["-c:v", "libopenh264", "-g", "30"], "not made by x264"),
])
def test_window_that_cannot_be_smart_cut_falls_back_with_its_reason(
        tmp_out: Path, name: str, video: list[str], reason: str) -> None:
    result = prepare_one(tmp_out, f"{source(name, video)}{WINDOW}")
    data = result.as_dict()
    assert data["video_action"] == "transcode" and data["action"] == "transcode"
    assert reason in (result.smart_cut_fallback or "")
    assert any("smart cut not used" in note and reason in note for note in data["notes"])
    assert len(frame_hashes(result.output)) == WINDOW_FRAMES  # type: ignore[arg-type]
