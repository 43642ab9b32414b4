"""`prep check` on generated clips with one known fault each (tests/checkmedia.py), and the face
detector at the check's smaller face size on faces prep did not make (scikit-image's LFW subset)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import checkmedia
import faceset
import numpy as np
import pytest
from click.testing import CliRunner

from prep.pick import check as check_module
from prep.pick.analyze import FaceDetector
from prep.pick.check import CheckReport, check_clip
from prep.ui.cli import cli

# `report` keeps each clip's report for the process: the module's tests run on one pytest-xdist
# worker (tests/xdist_groups.py), so each clip is analysed once a run, not once a worker.
pytestmark = [pytest.mark.media, pytest.mark.xdist_group("module:tests/test_check_media.py")]


@functools.cache
def report(name: str) -> CheckReport:
    maker: Callable[[], Path] = getattr(checkmedia, name)
    return check_clip(maker())


def statuses(name: str) -> dict[str, str]:
    return {c.name: c.status for c in report(name).checks}


def test_a_clean_talking_head_passes_every_check() -> None:
    result = report("base")
    assert result.verdict == "good"
    assert set(statuses("base").values()) == {"pass"}
    assert result.check("loudness").unit == "LUFS"
    assert -23.5 <= result.check("loudness").value <= -15.5  # type: ignore[operator]


@pytest.mark.parametrize(("clip", "check", "status"), [
    ("no_face", "one_person", "fail"),
    ("no_face", "face_visible", "fail"),
    ("two_faces", "one_person", "fail"),
    ("small_face", "face_size", "warn"),
    ("no_speech", "speech", "fail"),
    ("silent_film", "speech", "fail"),
    ("music", "music", "warn"),
    ("quiet", "loudness", "fail"),
    ("clipped", "clipping", "fail"),
    ("noisy", "noise", "warn"),
    ("cuts", "cuts", "fail"),
    ("low_fps", "frame_rate", "fail"),
    ("small", "resolution", "fail"),
    ("blurred", "sharpness", "fail"),
    ("short", "duration", "warn"),
])
def test_each_fault_is_found_by_its_check(clip: str, check: str, status: str) -> None:
    assert statuses(clip)[check] == status


@pytest.mark.parametrize(("clip", "fault"), [
    ("no_face", "one_person"), ("two_faces", "one_person"), ("small_face", "face_size"),
    ("no_speech", "speech"), ("music", "music"), ("quiet", "loudness"), ("clipped", "clipping"),
    ("noisy", "noise"), ("cuts", "cuts"), ("low_fps", "frame_rate"), ("small", "resolution"),
    ("blurred", "sharpness"), ("short", "duration"),
])
def test_a_fault_does_not_trip_unrelated_picture_checks(clip: str, fault: str) -> None:
    # Picture faults leave the audio checks alone and the other way round; each clip has one.
    picture = {"one_person", "face_size", "face_share", "face_visible", "face_light", "cuts",
               "frame_rate", "resolution", "sharpness"}
    audio = {"speech", "music", "loudness", "clipping", "noise"}
    untouched = audio if fault in picture else picture - {"face_size", "face_share"}
    if fault == "cuts":  # the second shot is another (upscaled, softer) face
        untouched -= {"sharpness"}
    found = statuses(clip)
    assert {name for name in untouched if found[name] != "pass"} == set()


def test_a_tiny_face_is_not_a_good_reference() -> None:
    found = statuses("tiny_face")
    # The face (about 12% of the frame high) is found in every sample and reported as small:
    # too small for its height and for its share of the picture.
    assert report("tiny_face").verdict != "good"
    assert found["face_visible"] == "pass"
    assert found["face_size"] != "pass" and found["face_share"] != "pass"


def test_loud_speech_is_told_to_use_prepare_loudness() -> None:
    loudness = report("loud").check("loudness")
    assert loudness.status in ("warn", "fail")
    assert loudness.value is not None and loudness.value > -15.5
    assert "prep prepare --loudness -16" in loudness.message
    assert "prep prepare --loudness -16" in report("quiet").check("loudness").message


def test_clipped_audio_peaks_at_or_over_full_scale() -> None:
    value = report("clipped").check("clipping").value
    assert value is not None and value >= -0.5


def test_verdicts_fair_and_poor() -> None:
    assert report("short").verdict == "good"  # one warning is still good
    assert report("music").verdict == "poor"  # music is also noise under the voice
    assert report("small_face").verdict == "good"
    assert report("cuts").verdict == "poor"


def test_a_window_is_checked_on_its_own() -> None:
    clip = checkmedia.cuts()
    whole = check_clip(clip)
    first_shot = check_clip(f"{clip}@0-2.9")
    assert whole.check("cuts").status == "fail"
    assert first_shot.check("cuts").status == "pass"
    assert first_shot.start_ms == 0 and first_shot.end_ms == 2_900


@pytest.mark.usefixtures("reuse_analyses")  # about the command, not the analysis
def test_cli_json_lists_every_clip_and_exits_3_below_the_bar(tmp_path: Path) -> None:
    good, poor = checkmedia.base(), checkmedia.blurred()
    result = CliRunner().invoke(cli, ["check", str(good), str(poor), "--json"])
    assert result.exit_code == 3, result.output
    rows = json.loads(result.stdout)
    assert [r["verdict"] for r in rows] == ["good", "poor"]
    assert set(rows[0]["checks"]) == set(check_module.CHECK_NAMES)
    assert rows[1]["reasons"][0].startswith("sharpness: ")
    assert {"status", "value", "message"} <= set(rows[1]["checks"]["sharpness"])


@pytest.mark.usefixtures("reuse_analyses")  # about the command, not the analysis
def test_cli_require_sets_the_bar() -> None:
    runner = CliRunner()
    short = str(checkmedia.short())
    assert runner.invoke(cli, ["check", short]).exit_code == 0
    assert runner.invoke(cli, ["check", short, "--require", "good"]).exit_code == 0
    blurred = str(checkmedia.blurred())
    assert runner.invoke(cli, ["check", blurred, "--require", "any"]).exit_code == 0
    text = runner.invoke(cli, ["check", blurred])
    assert text.exit_code == 3
    assert "poor" in text.output and "sharpness" in text.output


@pytest.mark.usefixtures("reuse_analyses")  # about the command, not the analysis
def test_cli_missing_clip_is_a_media_error_and_the_others_are_answered(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "gone.mp4"), str(checkmedia.base()),
                                      "--json"])
    assert result.exit_code == 3
    rows = json.loads(result.stdout)
    assert rows[0]["verdict"] is None and "gone.mp4" in rows[0]["error"]
    assert rows[1]["verdict"] == "good"


@pytest.mark.usefixtures("one_opencv_thread")
def test_faces_in_the_wild_at_the_checks_smaller_size() -> None:
    from skimage import data

    detector = FaceDetector(check_module.CHECK_FACE_MIN_HEIGHT)
    crops = (data.lfw_subset() * 255).astype(np.uint8)
    # A crop 120 px high holds a face about a third of the frame; faces are found, non-faces not.
    # The frames are portrait (9:16, as phone footage): a third of a landscape frame's pixels.
    portrait = faceset.HEIGHT * 9 // 16
    found = sum(bool(detector.detect(faceset.on_grey(crop, 120, portrait))) for crop in crops[:100])
    false = sum(bool(detector.detect(faceset.on_grey(crop, 120, portrait))) for crop in crops[100:])
    assert found >= 75
    assert false <= 2


@pytest.mark.parametrize("name", ["speech_a", "speech_b"])
def test_music_calibration_the_committed_voices_alone_are_not_music(name: str) -> None:
    music = check_clip(checkmedia.voice(name)).check("music")
    assert music.status == "pass"
    assert music.value is not None and music.value < check_module.MUSIC_TONAL_SHARE * 0.8


@pytest.mark.parametrize(("name", "under_db"), [("speech_a", 14), ("speech_a", 24),
                                                ("speech_b", 20)])
def test_music_calibration_a_chord_under_either_voice_is_music(name: str, under_db: int) -> None:
    music = check_clip(checkmedia.voice_with_music(name, under_db)).check("music")
    assert music.status == "warn"
    assert music.value is not None and music.value > check_module.MUSIC_TONAL_SHARE * 1.2


def test_the_check_decodes_no_b_frames_and_still_places_the_cut() -> None:
    """`prep check` skips B frames (a third less decoding); the cut may come a few frames late."""
    from prep.pick.analyze import _video_args

    assert "bidir" in _video_args("ffmpeg", Path("a.mp4"), 0, 1_000, (512, 288), 2, 1, "bidir")
    assert "noref" in _video_args("ffmpeg", Path("a.mp4"), 0, 1_000, (512, 288), 2, 1)
    analysis = report("cuts").analysis
    assert analysis is not None
    [cut] = [c.time_ms for c in analysis.cuts if c.time_ms > 500]
    assert 3_000 <= cut <= 3_000 + 4 * 40  # at most 4 frames late at 25 fps


def test_check_decodes_with_the_configured_ffmpeg(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI hands its PREP_FFMPEG down to the analysis: a missing one is exit 6."""
    import mediagen

    clip = mediagen.clip("check-configured-ffmpeg", seconds=2.5, size="160x90", rate="10")
    monkeypatch.setenv("PREP_FFMPEG", str(tmp_path / "no-ffmpeg"))
    run = CliRunner().invoke(cli, ["check", str(clip)])
    assert run.exit_code == 6, run.output
    assert "no-ffmpeg" in run.stderr


def test_cli_answers_a_clip_checked_before_from_the_disk_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`prep check` keeps its reports in <cache>/checks, as batch and generate do: a second check
    of the unchanged clip decodes nothing; --no-cache checks afresh."""
    monkeypatch.setenv("PREP_CACHE_DIR", str(tmp_path / "cache"))
    clip = str(checkmedia.short())
    runner = CliRunner()
    first = runner.invoke(cli, ["check", clip, "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)[0]["cached"] is False
    assert len(list((tmp_path / "cache" / "checks").glob("*.json"))) == 1

    decoded: list[str] = []
    real = check_module.check_window

    def counted(*args: Any, **kwargs: Any) -> CheckReport:
        decoded.append(str(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(check_module, "check_window", counted)
    again = runner.invoke(cli, ["check", clip, "--json"])
    assert again.exit_code == 0, again.output
    [row] = json.loads(again.stdout)
    assert row["cached"] is True and decoded == []
    assert row["checks"] == json.loads(first.stdout)[0]["checks"]
    told = runner.invoke(cli, ["check", clip, "--verbose"])
    assert "from the check cache" in told.output and decoded == []
    fresh = runner.invoke(cli, ["check", clip, "--no-cache", "--json"])
    assert fresh.exit_code == 0, fresh.output
    assert json.loads(fresh.stdout)[0]["cached"] is False and decoded == [clip]
