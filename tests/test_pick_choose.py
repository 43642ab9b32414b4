"""`pick.choose` on made-up analyses: no media, no ffmpeg, exact answers."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import pytest

from prep.core import rules
from prep.core.clipinfo import ClipInfo
from prep.errors import MediaError, UsageError
from prep.media.clips import parse_clip_spec
from prep.pick.analyze import SPEECH_CHUNK_MS, Analysis, Cut, Face, FaceSample
from prep.pick.choose import DEFAULT_LENGTH_MS, choose

Ranges = Sequence[tuple[float, float]]
A_FACE = Face(x=0.4, y=0.2, width=0.2, height=0.35, score=0.99)


def fake(duration_s: float, *, cuts: Sequence[float] = (), faces: Ranges = (), speech: Ranges = (),
         fps: Fraction = Fraction(25), audio: bool = True, start_s: float = 0.0,
         face_fps: int = 3) -> Analysis:
    """An analysis of a clip with faces and speech in the given ranges (seconds)."""
    start_ms, end_ms = round(start_s * 1000), round(duration_s * 1000)
    info = ClipInfo(path=Path("take.mov"), size_bytes=1, container="mov", container_format="MPEG-4",
                    duration_ms=end_ms, video_duration_ms=end_ms, audio_duration_ms=end_ms,
                    video_codec="h264", video_profile=None, width=1920, height=1080, fps=fps)
    samples = []
    for n in range((end_ms - start_ms) * face_fps // 1000 + 1):
        t = start_ms + n * 1000 // face_fps
        if t >= end_ms:
            break
        seen = any(a * 1000 <= t < b * 1000 for a, b in faces)
        samples.append(FaceSample(time_ms=t, faces=(A_FACE,) if seen else ()))
    chunks = (end_ms - start_ms) // SPEECH_CHUNK_MS if audio else 0
    probs = []
    for i in range(chunks):
        t = start_ms + i * SPEECH_CHUNK_MS + SPEECH_CHUNK_MS // 2
        probs.append(0.95 if any(a * 1000 <= t < b * 1000 for a, b in speech) else 0.02)
    return Analysis(path=Path("take.mov"), info=info, start_ms=start_ms, end_ms=end_ms,
                    cuts=tuple(Cut(time_ms=round(c * 1000), score=30.0) for c in cuts),
                    face_samples=tuple(samples), face_fps=face_fps, speech=tuple(probs),
                    has_audio=audio)


def test_talking_shot_is_found_and_starts_with_speech() -> None:
    # Shots: 0-10 face only, 10-30 face with speech from 14 to 26, 30-40 speech only.
    result = choose(fake(40, cuts=[10, 30], faces=[(0, 30)], speech=[(14, 26), (30, 40)]))
    assert result.shot.index == 1
    assert 13.8 <= result.start_ms / 1000 <= 14.2
    assert result.length_ms <= DEFAULT_LENGTH_MS
    assert result.head.both == pytest.approx(1.0, abs=0.02)
    assert result.usable and not result.warnings
    assert result.cuts_ms == (10_000, 30_000)


def test_window_never_crosses_a_cut() -> None:
    # Face and speech run across the cut at 20 s; the longer good stretch is before it.
    result = choose(fake(40, cuts=[20], faces=[(8, 40)], speech=[(8, 40)]), length_ms=10_000)
    for cut in result.cuts_ms:
        assert not result.start_ms < cut < result.end_ms + 4 * 40  # four frames clear
    assert result.end_ms <= 20_000 - 4 * 40
    assert result.length_ms >= 10_000 - 80


def test_best_part_goes_first() -> None:
    # One 20 s shot; the face appears at 12 s, speech all along: the head must hold the face.
    result = choose(fake(20, faces=[(12, 20)], speech=[(0, 20)]), length_ms=6_000)
    assert result.start_ms >= 11_800
    assert result.head.both > 0.95


@pytest.mark.parametrize(("clips", "head_ms"), [(1, 5_000), (2, 2_500), (3, 1_650)])
def test_billed_head_follows_clips_in_job(clips: int, head_ms: int) -> None:
    result = choose(fake(30, faces=[(0, 30)], speech=[(3, 30)]), clips_in_job=clips)
    assert result.head_ms == head_ms == rules.INPUT_CAP_MS[clips]
    assert result.clips_in_job == clips


def test_head_cap_decides_the_start() -> None:
    # Good for 2 s at 4-6 s, then a face only; a 1.65 s head fits into the good part.
    analysis = fake(20, faces=[(0, 20)], speech=[(4.0, 6.0)])
    assert choose(analysis, clips_in_job=3, length_ms=4_000).head.both > 0.95


@pytest.mark.parametrize(("asked_ms", "expected_ms"), [
    (1_000, 2_080),      # at least 2 s and a frame on each side (25 fps: 40 ms)
    (60_000, 29_960),    # at most 30 s less a frame
    (12_000, 12_000),
])
def test_length_is_clamped_to_the_api(asked_ms: int, expected_ms: int) -> None:
    result = choose(fake(80, faces=[(0, 80)], speech=[(0, 80)]), length_ms=asked_ms)
    assert result.length_ms == expected_ms
    assert rules.MIN_CLIP_MS < result.length_ms < rules.MAX_CLIP_MS


def test_window_is_clamped_to_the_shot() -> None:
    result = choose(fake(30, cuts=[4, 10], faces=[(0, 30)], speech=[(4, 10)]), length_ms=20_000)
    assert result.shot.index == 1
    assert result.start_ms > 4_000 and result.end_ms < 10_000
    assert result.length_ms == 6_000 - 2 * 40 - 4 * 40  # the shot less its guards


def test_frame_aligned_and_spec_round_trips() -> None:
    result = choose(fake(40, faces=[(0, 40)], speech=[(7.013, 30)], fps=Fraction(30000, 1001)))
    spec = parse_clip_spec(result.clip_spec)
    assert spec.path == Path("take.mov")
    assert spec.window.start is not None and spec.window.start.ms == result.start_ms
    assert spec.window.end is not None and spec.window.end.ms == result.end_ms
    frame = Fraction(1001, 30)
    for ms in (result.start_ms, result.end_ms):
        frames = Fraction(ms) / frame
        assert abs(frames - round(frames)) * frame < 1


def test_dead_tail_is_cut_without_length_but_kept_with_it() -> None:
    # Shot of 12 s; face and speech for the first 6 s, then an empty set (no face, no speech).
    analysis = fake(12, faces=[(0, 6)], speech=[(0, 6)])
    auto = choose(analysis)
    assert auto.start_ms == 0 and 5_900 <= auto.end_ms <= 6_200
    fixed = choose(analysis, length_ms=8_000)
    assert fixed.length_ms == 8_000


def test_spurious_early_cut_is_ignored() -> None:
    result = choose(fake(12, cuts=[0.2], faces=[(0, 12)], speech=[(0, 12)]))
    assert result.cuts_ms == ()
    assert result.start_ms == 0


def test_a_single_flicker_of_a_face_is_not_a_face() -> None:
    analysis = fake(12, faces=[(5.0, 5.2)], speech=[(0, 12)])  # one sample at 5.0 s
    result = choose(analysis)
    assert result.faces == ()
    assert any("no face" in w for w in result.warnings)


def test_no_face_still_picks_with_a_warning() -> None:
    result = choose(fake(30, cuts=[10], speech=[(12, 25)]))
    assert not result.usable
    assert result.shot.index == 1 and result.head.speech > 0.95
    assert any(w.startswith("no face found") for w in result.warnings)


def test_no_audio_and_no_speech_say_so() -> None:
    silent = choose(fake(10, faces=[(0, 10)], audio=False))
    assert any("no audio track" in w for w in silent.warnings)
    music = choose(fake(10, faces=[(0, 10)]))
    assert any("no speech found" in w for w in music.warnings)
    assert not music.usable and music.head.face > 0.95


def test_face_and_speech_apart() -> None:
    result = choose(fake(20, cuts=[10], faces=[(0, 10)], speech=[(10, 20)]))
    assert any("never occur together" in w for w in result.warnings)
    assert result.shot.index == 0  # a face alone is worth more than a voice alone


def test_every_shot_too_short_crosses_cuts_with_a_warning() -> None:
    result = choose(fake(6, cuts=[1.5, 3.0, 4.5], faces=[(0, 6)], speech=[(0, 6)]))
    assert result.crosses_cuts >= 1 and not result.usable
    assert any("shorter than" in w for w in result.warnings)
    assert result.length_ms >= rules.MIN_CLIP_MS


def test_footage_under_two_seconds_is_a_media_error() -> None:
    with pytest.raises(MediaError, match="at least 2"):
        choose(fake(1.5, faces=[(0, 1.5)], speech=[(0, 1.5)]))


def test_search_stays_in_the_analysed_part() -> None:
    result = choose(fake(60, start_s=20, faces=[(0, 60)], speech=[(0, 60)]))
    assert result.start_ms >= 20_000 and result.end_ms <= 60_000


@pytest.mark.parametrize("clips", [0, 4])
def test_bad_clips_in_job(clips: int) -> None:
    with pytest.raises(UsageError):
        choose(fake(10), clips_in_job=clips)


def test_json_shape() -> None:
    data = choose(fake(40, cuts=[10, 30], faces=[(0, 30)], speech=[(14, 26)])).as_dict()
    for key in ("path", "start_s", "end_s", "clip_spec", "length_s", "billed_head_s", "score",
                "usable", "warnings", "face_ratio", "speech_ratio", "both_ratio", "head", "shot",
                "cuts_s", "shots", "faces", "speech", "analysis"):
        assert key in data
    assert data["cuts_s"] == [10.0, 30.0]
    assert parse_clip_spec(data["clip_spec"]).path == Path("take.mov")
    assert data["faces"] == [{"start_s": 0.0, "end_s": 30.0}]


def test_short_shot_lets_the_speech_come_first_unless_a_length_is_asked() -> None:
    # An 8 s shot (shorter than the default length) whose speech starts 1.5 s in.
    analysis = fake(20, cuts=[4, 12], faces=[(0, 20)], speech=[(5.5, 12)])
    auto = choose(analysis)
    assert 5_400 <= auto.start_ms <= 5_600 and auto.end_ms < 12_000
    assert auto.head.both > 0.98
    fixed = choose(analysis, length_ms=8_000)
    assert fixed.start_ms < 4_100  # the asked length (clamped to the shot) wins over a later start


# -- windows the check would pass come first (same analysis) ---------------------------------------

def _with_flaws(analysis: Analysis, *, crowded: Ranges = (), clipped: Ranges = (),
                music: Ranges = ()) -> Analysis:
    """`analysis` with a second face, clipped peaks or a steady tone in the given ranges (s)."""
    from dataclasses import replace

    from prep.pick.analyze import BLOCK_MS, AudioLevels

    def inside(t_ms: int, ranges: Ranges) -> bool:
        return any(a * 1000 <= t_ms < b * 1000 for a, b in ranges)

    other = Face(x=0.05, y=0.2, width=0.15, height=0.3, score=0.99)
    samples = tuple(replace(s, faces=(*s.faces, other)) if s.faces and inside(s.time_ms, crowded)
                    else s for s in analysis.face_samples)
    begin = analysis.start_ms
    blocks = (analysis.end_ms - begin) // BLOCK_MS
    chunks = len(analysis.speech)
    levels = AudioLevels(
        integrated_lufs=-19.0, true_peak_db=0.5 if clipped else -3.0, sample_peak_db=-3.0,
        flat_factor=0.0, peak_count=1, chunk_db=(-20.0,) * chunks,
        tonal=tuple(inside(begin + i * SPEECH_CHUNK_MS, music) for i in range(chunks)),
        block_lufs=(-19.0,) * blocks,
        block_peak_db=tuple(0.5 if inside(begin + i * BLOCK_MS, clipped) else -3.0
                            for i in range(blocks)))
    return replace(analysis, face_samples=samples, levels=levels)


# Two equal talking shots: 0-10 s and 10-20 s; the first would win on the tie (earlier).
TWIN = {"cuts": [10], "faces": [(0, 20)], "speech": [(0, 20)]}


def test_twins_tie_to_the_earlier_shot() -> None:
    assert choose(_with_flaws(fake(20, **TWIN)), length_ms=6_000).shot.index == 0


@pytest.mark.parametrize("flaw", ["crowded", "clipped", "music"])
def test_a_shot_the_check_would_object_to_loses(flaw: str) -> None:
    result = choose(_with_flaws(fake(20, **TWIN), **{flaw: [(0, 10)]}), length_ms=6_000)
    assert result.shot.index == 1 and result.start_ms >= 10_000
    assert result.warnings == ()


def test_two_people_cost_more_than_music() -> None:
    result = choose(_with_flaws(fake(20, **TWIN), crowded=[(0, 10)], music=[(10, 20)]),
                    length_ms=6_000)
    assert result.shot.index == 1  # music only warns in `prep check`; two people fail it
    assert any("music" in w for w in result.warnings)


def test_a_window_that_cannot_avoid_a_second_face_says_so() -> None:
    result = choose(_with_flaws(fake(10, faces=[(0, 10)], speech=[(0, 10)]), crowded=[(0, 10)]))
    assert any("two or more faces" in w for w in result.warnings)


def test_faces_under_the_pick_floor_do_not_count_as_a_face() -> None:
    """An analysis made for the check also finds small faces; picking still ignores them."""
    from dataclasses import replace

    tiny = Face(x=0.4, y=0.4, width=0.05, height=0.08, score=0.99)
    analysis = fake(12, faces=[(0, 12)], speech=[(0, 12)])
    small = replace(analysis, face_samples=tuple(
        replace(s, faces=(tiny,)) if s.time_ms < 6_000 else s for s in analysis.face_samples))
    result = choose(small, length_ms=4_000)
    assert result.faces[0].start_ms >= 5_800 and result.start_ms >= result.faces[0].start_ms
