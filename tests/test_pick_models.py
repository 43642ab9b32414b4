"""`prep pick --model`: the window within the chosen model's clip range, and on a model that bills
every reference second the shortest window that passes the reference check. Made-up analyses
(test_pick_choose's `fake`), plus one media run of the command."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_pick_choose import fake

from prep.core import rules
from prep.core.models import billed_head_ms
from prep.errors import MediaError, UsageError
from prep.pick.analyze import Face, FaceSample
from prep.pick.check import DURATION_WARN_MS
from prep.pick.choose import DEFAULT_LENGTH_MS, choose, passes_check
from prep.pick.picker import PickedWindow, Picker, pick_key
from prep.ui.cli import cli

MARGIN_MS = 40  # one frame at 25 fps: the edge margin of the fake footage
TALKING = {"faces": [(0, 40)], "speech": [(0, 40)]}


def test_wan26_is_the_default_and_unchanged() -> None:
    analysis = fake(40, cuts=[10, 30], faces=[(0, 30)], speech=[(14, 26), (30, 40)])
    plain, named = choose(analysis), choose(analysis, model=rules.WAN26)
    assert (plain.start_ms, plain.end_ms, plain.head_ms) == (named.start_ms, named.end_ms, named.head_ms)
    assert plain.model == rules.MODEL and not plain.every_second_billed and not plain.shortest
    data = plain.as_dict()
    assert data["model"] == rules.MODEL
    assert data["billed_s"] == data["billed_head_s"] == 5.0
    assert data["shortest_passing"] is False


def test_wan30_takes_the_shortest_window_that_passes() -> None:
    result = choose(fake(40, **TALKING), model=rules.WAN30)
    assert result.every_second_billed and result.shortest
    # The shortest the check does not call short, plus a frame's margin at each end.
    assert result.length_ms == DURATION_WARN_MS + 2 * MARGIN_MS
    assert result.head_ms == result.length_ms  # the whole window is billed
    assert passes_check(result)
    assert result.notes and "shortest window that passes" in result.notes[0]
    data = result.as_dict()
    assert data["model"] == "wan3.0-reference-video"
    assert data["billed_s"] == result.length_ms / 1000
    assert data["every_second_billed"] is True and data["shortest_passing"] is True


def test_the_shortest_window_is_where_face_and_speech_meet() -> None:
    # A face all along; speech only from 21 to 25 s: the short window must sit inside it.
    result = choose(fake(40, faces=[(0, 40)], speech=[(21, 25)]), model=rules.WAN30)
    assert result.shortest
    assert result.start_ms >= 20_500 and result.end_ms <= 25_500
    assert result.window.both >= 0.5


def test_it_grows_until_a_window_passes() -> None:
    # Speech in 1 s bursts every 2.2 s: a 3 s window holds well under half of face and speech
    # together only where it misses a burst; the first passing length is reported, not the floor
    # when the floor fails.
    bursts = [(t, t + 1.0) for t in (2.0, 4.2, 6.4, 8.6, 10.8)]
    result = choose(fake(14, faces=[(0, 14)], speech=bursts), model=rules.WAN30)
    assert result.shortest and passes_check(result)
    assert result.length_ms >= DURATION_WARN_MS + 2 * MARGIN_MS


def test_when_nothing_passes_the_default_window_is_kept_with_a_warning() -> None:
    result = choose(fake(30, faces=[(0, 30)], speech=[]), model=rules.WAN30)
    assert not result.shortest and not passes_check(result)
    assert any("passes the reference check" in w and "bills all" in w for w in result.warnings)


def test_crowded_windows_do_not_pass() -> None:
    two = (Face(x=0.1, y=0.2, width=0.2, height=0.35, score=0.99),
           Face(x=0.6, y=0.2, width=0.2, height=0.35, score=0.99))
    base = fake(40, **TALKING)
    # Two people on screen for the first 30 s: the shortest window must come after.
    samples = tuple(FaceSample(time_ms=s.time_ms, faces=two) if s.time_ms < 30_000 else s
                    for s in base.face_samples)
    result = choose(replace(base, face_samples=samples), model=rules.WAN30)
    assert result.shortest and not result.flaws
    assert result.start_ms >= 29_500


def test_an_explicit_length_is_kept_on_every_model() -> None:
    result = choose(fake(40, **TALKING), length_ms=9_000, model=rules.WAN30)
    assert result.length_ms == 9_000 and not result.shortest and result.head_ms == 9_000


def test_the_window_stays_in_the_models_clip_range() -> None:
    # wan3.0 takes at most 15 s a clip; wan2.6 30 s.
    assert choose(fake(60, **TALKING), length_ms=25_000, model=rules.WAN30).length_ms <= 15_000
    assert choose(fake(60, **TALKING), length_ms=25_000).length_ms == 25_000


def test_billing_kind_comes_from_the_table_not_the_name() -> None:
    # wan2.6 renamed still bills a head; wan2.6's table with full billing takes the shortest.
    renamed = replace(rules.WAN26, id="wan3.0-lookalike")
    assert not choose(fake(40, **TALKING), model=renamed).shortest
    full = replace(rules.WAN26, billing=replace(rules.WAN26.billing, input_rule="full"))
    assert choose(fake(40, **TALKING), model=full).shortest


@pytest.mark.parametrize(("clips", "head_ms"), [(1, 5_000), (2, 2_500), (5, 1_000)])
def test_wan27_bills_an_even_share_of_its_total_cap(clips: int, head_ms: int) -> None:
    assert billed_head_ms(rules.WAN27, clips) == head_ms
    result = choose(fake(40, **TALKING), clips_in_job=clips, model=rules.WAN27)
    assert result.head_ms == head_ms and not result.shortest


def test_clips_in_job_follows_the_model() -> None:
    assert choose(fake(40, **TALKING), clips_in_job=5, model=rules.WAN30).clips_in_job == 5
    with pytest.raises(UsageError, match="1 to 3 on wan2.6"):
        choose(fake(40, **TALKING), clips_in_job=4)


def test_too_short_names_the_models_minimum() -> None:
    with pytest.raises(MediaError, match=r"at least 2(\.0)? s on wan2.6"):
        choose(fake(1.5, **TALKING))
    # wan3.0 takes 1 s clips: the whole 1.5 s is the window.
    assert choose(fake(1.5, **TALKING), model=rules.WAN30).length_ms <= 1_500


def test_picks_are_remembered_per_model(tmp_path: Path) -> None:
    clip = tmp_path / "take.mov"
    clip.write_bytes(b"x")
    assert pick_key(clip, 1) == pick_key(clip, 1, None, rules.MODEL)  # wan2.6 keys as before
    assert pick_key(clip, 1) != pick_key(clip, 1, None, rules.WAN30.id)
    picked = PickedWindow(key="k", path=clip, start_ms=0, end_ms=3_080, clips_in_job=1,
                          usable=True, model=rules.WAN30.id)
    assert PickedWindow.from_record("k", picked.record(), "cache").model == rules.WAN30.id
    old = {k: v for k, v in picked.record().items() if k != "model"}
    assert PickedWindow.from_record("k", old, "journal").model == rules.MODEL

    seen: list[object] = []

    def analyse(path: Path, length_ms: int | None, clips: int, **kw: object) -> object:
        seen.append(kw.get("model"))
        return choose(fake(40, **TALKING), length_ms=length_ms, clips_in_job=clips,
                      model=kw.get("model"))  # type: ignore[arg-type]

    from prep.core.clipinfo import ClipInfo
    info = ClipInfo(path=clip, size_bytes=1, container="mov", container_format="MPEG-4",
                    duration_ms=40_000, video_duration_ms=40_000, audio_duration_ms=40_000,
                    video_codec="h264", video_profile=None, width=1920, height=1080, fps=25)
    picker = Picker(cache_dir=tmp_path / "picks", analyse=analyse)
    on30 = picker(clip, 1, info=info, model=rules.WAN30)
    on26 = picker(clip, 1, info=info)
    assert on30 is not None and on26 is not None
    assert on30.model == rules.WAN30.id and on26.model == rules.MODEL
    assert on30.end_ms - on30.start_ms < on26.end_ms - on26.start_ms
    assert seen == [rules.WAN30, None]
    # A fresh picker finds both in the cache, each for its own model.
    again = Picker(cache_dir=tmp_path / "picks", analyse=analyse)
    assert again(clip, 1, info=info, model=rules.WAN30).origin == "cache"  # type: ignore[union-attr]
    assert len(seen) == 2


def test_an_unknown_model_is_a_usage_error(tmp_path: Path) -> None:
    clip = tmp_path / "take.mov"
    clip.write_bytes(b"x")
    run = CliRunner().invoke(cli, ["pick", str(clip), "--model", "wan9"])
    assert run.exit_code == 2
    assert "wan3.0-reference-video" in run.stderr


@pytest.mark.media
@pytest.mark.usefixtures("reuse_analyses")  # the analysis is not what is tested here
# Beside tests/test_pick_media.py's CLI tests (one pytest-xdist worker), which analyse the interview
# with the same arguments: the analysis is made once (tests/analyses.py).
@pytest.mark.xdist_group("module:tests/test_pick_media.py")
def test_cli_picks_for_wan30() -> None:
    import pickmedia

    interview = pickmedia.interview()
    run = CliRunner().invoke(cli, ["pick", str(interview), "--model", "3.0", "--json"])
    assert run.exit_code == 0, run.output
    data = json.loads(run.stdout)
    assert data["model"] == "wan3.0-reference-video"
    assert data["every_second_billed"] is True
    assert data["billed_s"] == data["length_s"]
    assert data["length_s"] < DEFAULT_LENGTH_MS / 1000
    assert data["shortest_passing"] is True
    text = CliRunner().invoke(cli, ["pick", str(interview), "--model", "3.0"])
    assert "shortest window that passes" in text.stderr


def test_the_library_takes_a_model_by_its_alias() -> None:
    assert choose(fake(40, **TALKING), model="3.0").model == rules.WAN30.id
    with pytest.raises(UsageError, match="not a model prep knows"):
        choose(fake(40, **TALKING), model="wan9")
