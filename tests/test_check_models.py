"""`prep check --model`: the checks that follow the chosen model's table (made-up analyses, no
media), the findings helper the banded checks share, and a check inside a job per model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_check import FACE, OTHER, analysis

from prep.core import rules
from prep.pick.check import CheckCache, Checker, check_key, grade
from prep.ui.cli import cli


def _short(ms: int) -> object:
    return replace(analysis(seconds=2), end_ms=ms)


def test_wan26_is_the_default_and_says_so() -> None:
    report = grade(analysis())
    assert report.model == rules.MODEL == grade(analysis(), model=rules.WAN26).model
    assert report.as_dict()["model"] == rules.MODEL
    assert report.summary()["model"] == rules.MODEL


@pytest.mark.parametrize(("ms", "model", "status"), [
    (1_500, rules.WAN26, "fail"),   # wan2.6 takes 2-30 s
    (1_500, rules.WAN27, "warn"),   # wan2.7 takes 1-30 s: short, not refused
    (1_500, rules.WAN30, "warn"),
    (900, rules.WAN30, "fail"),
])
def test_duration_range_comes_from_the_table(ms: int, model: object, status: str) -> None:
    check = grade(_short(ms), model=model).check("duration")  # type: ignore[arg-type]
    assert check.status == status
    if status == "fail":
        assert model.id in check.message  # type: ignore[attr-defined]


def test_over_the_models_longest_warns_with_its_limit() -> None:
    long = analysis(seconds=20)
    assert grade(long).check("duration").status == "pass"  # wan2.6 takes up to 30 s
    on30 = grade(long, model=rules.WAN30).check("duration")
    assert on30.status == "warn" and "15 s" in on30.message and "wan3.0" in on30.message


def test_one_person_cites_the_chosen_models_rule() -> None:
    two = analysis(faces=(FACE, OTHER))
    on27 = grade(two, model=rules.WAN27).check("one_person")
    on26 = grade(two).check("one_person")
    assert on27.status == on26.status == "fail"
    assert "wan2.7-reference-video asks for one character per reference" in on27.message
    assert "one character" not in on26.message and "wrong person" in on26.message
    assert "one character" in grade(two, model=rules.WAN30).check("one_person").message


@pytest.mark.parametrize(("size", "model", "status", "words"), [
    ({"width": 320, "height": 200}, rules.WAN30, "fail", "240-4096 px"),
    ({"width": 320, "height": 200}, rules.WAN26, "fail", "under 240 px"),
    ({"width": 5120, "height": 2880}, rules.WAN30, "warn", "at most 4096 px"),
    ({"width": 5120, "height": 2880}, rules.WAN26, "pass", "5120x2880"),
    ({"width": 4000, "height": 400}, rules.WAN27, "fail", "aspect"),  # 10:1, past 8:1
    ({"width": 4000, "height": 400}, rules.WAN26, "pass", "4000x400"),
])
def test_pixel_and_aspect_range_come_from_the_table(size: dict[str, int], model: object,
                                                    status: str, words: str) -> None:
    check = grade(analysis(**size), model=model).check("resolution")  # type: ignore[arg-type]
    assert check.status == status and words in check.message


@pytest.mark.parametrize(("luma", "status", "words"), [
    (120.0, "pass", "well lit"), (50.0, "warn", "dark"), (20.0, "fail", "dark"),
    (225.0, "warn", "washed out"), (250.0, "fail", "washed out"),
])
def test_face_light_through_the_shared_band_helper(luma: float, status: str, words: str) -> None:
    from test_check import _samples

    check = grade(_samples([1] * 12, luma=luma)).check("face_light")
    assert (check.status, check.value) == (status, luma) and words in check.message


@pytest.mark.parametrize(("lufs", "status", "words"), [
    (-19.04, "pass", "within"), (-26.0, "warn", "too quiet"), (-40.0, "fail", "too quiet"),
    (-13.0, "warn", "too loud"), (-5.0, "fail", "too loud"),
])
def test_loudness_through_the_shared_band_helper(lufs: float, status: str, words: str) -> None:
    check = grade(analysis(lufs=lufs)).check("loudness")
    assert (check.status, check.value) == (status, round(lufs, 1)) and words in check.message


def test_a_job_check_is_graded_and_cached_per_model(tmp_path: Path) -> None:
    clip = tmp_path / "take.mp4"
    clip.write_bytes(b"x")
    from test_check import _levelled

    short = _levelled([-19.0] * 60, [-3.0] * 60)  # covers what the check needs: no decoding
    checker = Checker(ffmpeg=None, cache=CheckCache(tmp_path / "checks"))
    checker._missing = False  # the pick extra is not what this test is about
    on30 = checker(clip, 0, 1_500, analysis=short, model=rules.WAN30)  # type: ignore[arg-type]
    on26 = checker(clip, 0, 1_500, analysis=short)  # type: ignore[arg-type]
    assert on30 is not None and on26 is not None
    assert (on30.model, on30.check("duration").status) == (rules.WAN30.id, "warn")
    assert (on26.model, on26.check("duration").status) == (rules.MODEL, "fail")
    files = sorted(p.name for p in (tmp_path / "checks").iterdir())
    assert len(files) == 2 and f"{check_key(clip, 0, 1_500)}.json" in files


def test_check_json_says_the_model_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    run = CliRunner().invoke(cli, ["check", str(missing), "--model", "3.0", "--json"])
    assert run.exit_code == 3
    assert json.loads(run.stdout)[0]["model"] == rules.WAN30.id
    bad = CliRunner().invoke(cli, ["check", str(missing), "--model", "wan9"])
    assert bad.exit_code == 2 and "wan3.0-reference-video" in bad.stderr


@pytest.mark.media
def test_check_cli_on_a_short_clip_per_model(tmp_path: Path) -> None:
    import pickmedia

    clip = f"{pickmedia.interview()}@12-13.5"
    on26 = CliRunner().invoke(cli, ["check", clip, "--json", "--require", "any"])
    on30 = CliRunner().invoke(cli, ["check", clip, "--json", "--require", "any", "--model", "3.0"])
    assert on26.exit_code == on30.exit_code == 0, on26.output + on30.output
    row26, row30 = json.loads(on26.stdout)[0], json.loads(on30.stdout)[0]
    assert (row26["model"], row26["checks"]["duration"]["status"]) == (rules.MODEL, "fail")
    assert (row30["model"], row30["checks"]["duration"]["status"]) == (rules.WAN30.id, "warn")
