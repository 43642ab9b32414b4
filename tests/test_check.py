"""`prep.pick.check.grade` on made-up analyses: verdicts, thresholds and messages (no media)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from prep.core.clipinfo import ClipInfo
from prep.pick.analyze import SPEECH_CHUNK_MS, Analysis, AudioLevels, Cut, Face, FaceSample
from prep.pick.check import CHECK_NAMES, Check, CheckReport, grade, meets, snr_db

FACE = Face(x=0.4, y=0.2, width=0.2, height=0.35, neighbours=12)
OTHER = Face(x=0.1, y=0.2, width=0.2, height=0.3, neighbours=9)


def _info(**kw: object) -> ClipInfo:
    fields = {"path": Path("talk.mp4"), "size_bytes": 1_000_000, "container": "mp4",
              "container_format": "MPEG-4", "duration_ms": 6_000, "video_duration_ms": 6_000,
              "audio_duration_ms": 6_000, "video_codec": "avc1", "video_profile": "High",
              "width": 1280, "height": 720, "fps": Fraction(25), "audio_codec": "aac"}
    fields.update(kw)
    return ClipInfo(**fields)  # type: ignore[arg-type]


def analysis(*, seconds: int = 6, faces: tuple[Face, ...] = (FACE,), speech: float = 0.9,
             lufs: float | None = -19.0, peak: float = -3.0, cuts: tuple[int, ...] = (),
             sharp: float = 0.1, **info: object) -> Analysis:
    end = seconds * 1000
    samples = tuple(FaceSample(time_ms=t, faces=faces, sharpness=sharp) for t in range(0, end, 500))
    chunks = end // SPEECH_CHUNK_MS
    talk = round(chunks * speech)
    probabilities = tuple([0.95] * talk + [0.02] * (chunks - talk))
    levels = AudioLevels(integrated_lufs=lufs, true_peak_db=peak, sample_peak_db=peak,
                         flat_factor=0.0, peak_count=2,
                         chunk_db=tuple([-20.0] * talk + [-60.0] * (chunks - talk)),
                         tonal=(False,) * chunks)
    return Analysis(path=Path("talk.mp4"), info=_info(duration_ms=end, video_duration_ms=end, **info),
                    start_ms=0, end_ms=end, cuts=tuple(Cut(time_ms=t, score=40.0) for t in cuts),
                    face_samples=samples, face_fps=2, speech=probabilities, has_audio=True,
                    levels=levels)


def test_a_good_clip_passes_every_named_check_in_order() -> None:
    report = grade(analysis())
    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    assert report.verdict == "good" and report.reasons == ()


def _with(statuses: list[str]) -> CheckReport:
    checks = tuple(Check(name=f"c{i}", status=s, value=None, message="m")  # type: ignore[arg-type]
                   for i, s in enumerate(statuses))
    return CheckReport(path=Path("x"), spec="x", start_ms=0, end_ms=1, checks=checks)


@pytest.mark.parametrize(("statuses", "verdict"), [
    (["pass", "pass"], "good"), (["pass", "warn"], "good"), (["warn", "warn"], "fair"),
    (["warn", "fail"], "poor"), (["fail"], "poor"),
])
def test_verdicts(statuses: list[str], verdict: str) -> None:
    assert _with(statuses).verdict == verdict


def test_reasons_put_fails_first() -> None:
    assert [c.status for c in _with(["warn", "pass", "fail", "warn"]).reasons] == ["fail", "warn", "warn"]


def test_meets() -> None:
    assert meets("good", "fair") and meets("fair", "fair") and not meets("poor", "fair")
    assert not meets("fair", "good")


@pytest.mark.parametrize(("lufs", "status"), [
    (-16.0, "pass"), (-23.0, "pass"), (-26.0, "warn"), (-13.0, "warn"), (-35.0, "fail"),
    (-8.0, "fail"), (None, "fail"),
])
def test_loudness_band(lufs: float | None, status: str) -> None:
    check = grade(analysis(lufs=lufs)).check("loudness")
    assert check.status == status
    if status != "pass" and lufs is not None:
        assert "prep prepare --loudness -16" in check.message


@pytest.mark.parametrize(("peak", "status"), [(-3.0, "pass"), (-0.5, "warn"), (0.0, "fail"),
                                              (2.5, "fail")])
def test_true_peak(peak: float, status: str) -> None:
    assert grade(analysis(peak=peak)).check("clipping").status == status


def test_flat_topped_peaks_are_clipping_even_under_full_scale() -> None:
    a = analysis(peak=-6.0)
    assert a.levels is not None
    a = replace(a, levels=replace(a.levels, flat_factor=12.0, peak_count=400))
    assert grade(a).check("clipping").status == "fail"


def test_two_people_and_no_person() -> None:
    two = grade(analysis(faces=(FACE, OTHER))).check("one_person")
    assert two.status == "fail" and "two people" in two.message
    none = grade(analysis(faces=())).check("one_person")
    assert none.status == "fail" and "no person" in none.message


@pytest.mark.parametrize(("height", "status"), [(0.35, "pass"), (0.15, "warn"), (0.08, "fail")])
def test_face_size(height: float, status: str) -> None:
    face = replace(FACE, height=height, width=height)
    assert grade(analysis(faces=(face,))).check("face_size").status == status


@pytest.mark.parametrize(("share", "status"), [(0.9, "pass"), (0.25, "warn"), (0.0, "fail")])
def test_speech(share: float, status: str) -> None:
    assert grade(analysis(speech=share)).check("speech").status == status


def test_cuts_inside_fail_and_a_cut_at_the_start_does_not() -> None:
    assert grade(analysis(cuts=(200,))).check("cuts").status == "pass"
    cut = grade(analysis(cuts=(200, 3_000))).check("cuts")
    assert cut.status == "fail" and cut.value == 1 and "3.0 s" in cut.message


@pytest.mark.parametrize(("kw", "name", "status"), [
    ({"fps": Fraction(12)}, "frame_rate", "fail"), ({"fps": Fraction(16)}, "frame_rate", "pass"),
    ({"width": 320, "height": 180}, "resolution", "fail"),
    ({"width": 480, "height": 270}, "resolution", "warn"),
    ({"width": 720, "height": 1280}, "resolution", "pass"),
    ({"sharp": 0.01}, "sharpness", "fail"), ({"sharp": 0.045}, "sharpness", "warn"),
    ({"seconds": 1}, "duration", "fail"), ({"seconds": 2}, "duration", "warn"),
    ({"seconds": 40}, "duration", "warn"),
])
def test_picture_and_length(kw: dict[str, object], name: str, status: str) -> None:
    assert grade(analysis(**kw)).check(name).status == status  # type: ignore[arg-type]


def test_snr_from_speech_against_the_rest() -> None:
    speech = [0.9] * 50 + [0.05] * 50
    assert snr_db(speech, [-20.0] * 50 + [-50.0] * 50) == pytest.approx(30.0)
    # Speech all the way: the quietest tenth stands for the background.
    assert snr_db([0.9] * 100, [-20.0] * 90 + [-35.0] * 10) == pytest.approx(14.6, abs=0.1)
    assert snr_db([0.0] * 10, [-20.0] * 10) is None


def test_json_shape() -> None:
    data = grade(analysis(peak=-0.5, sharp=0.045)).as_dict()
    assert data["verdict"] == "fair"
    assert data["reasons"][0].startswith("clipping: ")
    assert data["checks"]["loudness"] == {"status": "pass", "value": -19.0, "unit": "LUFS",
                                          "message": "-19 LUFS, within -23 to -16 for speech"}
