"""Voices and stills made from footage: the pure choosers on made-up analyses."""

from __future__ import annotations

from pathlib import Path

from prep.core.clipinfo import ClipInfo
from prep.core.modelspec import Span
from prep.pick.analyze import SPEECH_CHUNK_MS, Analysis, Face, FaceSample
from prep.pick.references import choose_still_ms, choose_voice

VOICE = Span(1_000, 10_000)


def _analysis(speech: list[float], samples: tuple[FaceSample, ...] = ()) -> Analysis:
    info = ClipInfo(path=Path("take.mp4"), size_bytes=1, container="mp4", container_format="MPEG-4",
                    duration_ms=60_000, video_duration_ms=60_000, audio_duration_ms=60_000,
                    video_codec="h264", video_profile="High", width=1280, height=720)
    return Analysis(path=info.path, info=info, start_ms=0, end_ms=60_000, cuts=(),
                    face_samples=samples, face_fps=2, speech=tuple(speech), has_audio=True)


def _chunks(ms: int) -> int:
    return ms // SPEECH_CHUNK_MS


def test_the_longest_speech_is_the_voice() -> None:
    speech = [0.0] * _chunks(2_000) + [0.9] * _chunks(3_000) + [0.0] * _chunks(2_000) \
        + [0.9] * _chunks(6_000) + [0.0] * _chunks(1_000)
    start, end = choose_voice(_analysis(speech), VOICE) or (0, 0)
    assert abs(start - 7_000) <= 100 and 5_800 <= end - start <= 6_100


def test_short_pauses_are_bridged_and_long_speech_is_cut_to_the_limit() -> None:
    one_word = [0.9] * _chunks(2_000)
    pause = [0.1] * _chunks(200)
    speech = (one_word + pause) * 8
    start, end = choose_voice(_analysis(speech), VOICE) or (0, 0)
    assert start == 0 and end - start == 10_000


def test_no_voice_in_silence_or_a_blip() -> None:
    assert choose_voice(_analysis([0.0] * 100), VOICE) is None
    assert choose_voice(_analysis([0.0] * 10 + [0.9] * _chunks(500) + [0.0] * 10), VOICE) is None


def test_the_still_is_the_largest_single_face() -> None:
    face = lambda h: Face(x=0.4, y=0.2, width=h * 0.75, height=h, score=0.99)  # noqa: E731
    samples = (FaceSample(time_ms=0, faces=(face(0.2),)), FaceSample(time_ms=500, faces=(face(0.4),)),
               FaceSample(time_ms=1_000, faces=(face(0.5), face(0.5))), FaceSample(time_ms=1_500))
    assert choose_still_ms(_analysis([], samples)) == 500
    assert choose_still_ms(_analysis([], (FaceSample(time_ms=0),))) is None
