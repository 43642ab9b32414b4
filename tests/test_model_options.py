"""Every command speaks every model: the request value checked against the chosen model's table,
the bill priced from it, and `prep estimate --compare`.

The worked prices below are hand arithmetic from the spec's tables (evolink-api.md section 7),
not prep's own output: rate x billed seconds x the quality's multiplier, in 1/10,000 credits.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from prep.core import rules
from prep.core.billing import DEFAULT_PRICES, PriceTable, estimate_durations
from prep.core.request import GenerationRequest, RequestOptions
from prep.errors import UsageError
from prep.ui.cli import cli

WAN27, WAN30, PRIME = "wan2.7-reference-video", "wan3.0-reference-video", "wan3.0-prime-reference-video"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


# -- the request value, per model ---------------------------------------------------------------


@pytest.mark.parametrize(("alias", "full"), [
    ("2.6", rules.MODEL), ("flash", rules.FLASH_MODEL), ("2.7", WAN27), ("3.0", WAN30),
    ("3.0-prime", PRIME), (WAN30, WAN30),
])
def test_aliases_store_the_full_id(alias: str, full: str) -> None:
    assert RequestOptions(model=alias).model == full
    assert RequestOptions.from_dict({"model": alias}).model == full  # type: ignore[union-attr]


def test_the_default_is_wan26_and_its_body_is_unchanged() -> None:
    options = RequestOptions(prompt="Hi")
    assert options.model == rules.MODEL
    assert options.body(["https://x/a.mp4"]) == {
        "prompt": "Hi", "video_urls": ["https://x/a.mp4"], "duration": 5, "quality": "720p",
        "aspect_ratio": "16:9", "model_params": {"shot_type": "single"}, "model": rules.MODEL}


def test_new_models_take_their_own_fields() -> None:
    wan27 = RequestOptions(prompt="Hi", model="2.7", seed=7, negative_prompt="blur",
                           prompt_extend=True, duration_s=15)
    assert wan27.body(["https://x/a.mp4"]) == {
        "prompt": "Hi", "video_urls": ["https://x/a.mp4"], "duration": 15, "quality": "720p",
        "aspect_ratio": "16:9", "model": WAN27, "seed": 7, "negative_prompt": "blur",
        "prompt_extend": True}
    wan30 = RequestOptions(prompt="Hi", model="3.0", duration_s=-1, quality="480p",
                           aspect_ratio="adaptive", generate_audio=False, seed=0)
    body = wan30.body(["https://x/a.mp4"])
    assert "model_params" not in body
    assert (body["duration"], body["quality"], body["aspect_ratio"], body["generate_audio"],
            body["seed"]) == (-1, "480p", "adaptive", False, 0)
    # On with no switch given: the journal shows what was asked for.
    assert RequestOptions(prompt="Hi", model="3.0").body([])["generate_audio"] is True


@pytest.mark.parametrize(("options", "words"), [
    ({"model": "wan9"}, "not a model prep knows; use one of wan2.6-reference-video (2.6/wan2.6)"),
    ({"model": "3.0", "negative_prompt": "x"}, "--negative-prompt is not taken by " + WAN30),
    ({"generate_audio": False}, "wan2.6-reference-video always makes its own audio"),
    ({"model": "2.7", "generate_audio": True}, "wan2.7-reference-video always makes its own audio"),
    ({"seed": 3}, "--seed is not taken by wan2.6-reference-video"),
    ({"model": "2.7", "seed": 0}, "--seed 0 is not allowed; wan2.7-reference-video takes"),
    ({"model": "3.0", "seed": 2_147_483_648}, "--seed 2147483648 is not allowed"),
    ({"duration_s": -1}, "--duration -1 is not allowed; the API makes 2 to 10"),
    ({"model": "2.7", "duration_s": -1}, "wan2.7-reference-video makes 2 to 15"),
    ({"model": "3.0", "duration_s": 31}, "wan3.0-reference-video makes 2 to 30 whole seconds; -1"),
    ({"quality": "480p"}, "--quality '480p' is not allowed; use one of 720p, 1080p"),
    ({"aspect_ratio": "adaptive"}, "--aspect-ratio 'adaptive' is not allowed"),
    ({"model": "3.0", "shot_type": "multi"}, "--shot-type is not taken by " + WAN30),
    ({"prompt_extend": False}, "--no-prompt-extend is not taken by wan2.6-reference-video"),
    ({"model": "2.7", "negative_prompt": "n" * 501}, "is 501 characters; wan2.7-reference-video "
                                                      "takes at most 500"),
])
def test_a_field_the_model_does_not_take_is_a_usage_error(options: dict[str, Any],
                                                          words: str) -> None:
    with pytest.raises(UsageError) as caught:
        RequestOptions(**options)
    assert words in caught.value.message
    assert caught.value.exit_code == 2


def test_prompt_length_is_the_models() -> None:
    RequestOptions(prompt="p" * 5_000, model="2.7")
    RequestOptions(prompt="p" * 20_000, model="3.0")
    with pytest.raises(UsageError, match="5001 characters; wan2.7-reference-video takes at most 5000"):
        RequestOptions(prompt="p" * 5_001, model="2.7")
    with pytest.raises(UsageError, match="the API takes at most 1500"):
        RequestOptions(prompt="p" * 1_501)


def test_clip_count_is_the_models() -> None:
    urls = tuple(f"https://x/{i}.mp4" for i in range(5))
    GenerationRequest(options=RequestOptions(prompt="Hi", model="3.0"), video_urls=urls)
    with pytest.raises(UsageError, match="1 to 3 reference clips, not 5"):
        GenerationRequest(options=RequestOptions(prompt="Hi"), video_urls=urls)


def test_a_manifest_row_lists_every_problem_against_its_model() -> None:
    problems: list[str] = []
    assert RequestOptions.from_dict({"model": "3.0", "negative_prompt": "x", "quality": "2k",
                                     "duration": -1}, problems=problems) is None
    assert problems == [
        "quality '2k' is not allowed on wan3.0-reference-video; use one of 480p, 720p, 1080p",
        "negative_prompt is not taken by wan3.0-reference-video"]


def test_cli_refuses_with_exit_2_naming_the_model() -> None:
    code, _, err = run("estimate", "--seconds", "5", "--model", "3.0", "--duration", "-1",
                       "--quality", "2k")
    assert code == 2
    code, _, err = run("estimate", "--seconds", "5", "--no-audio")
    assert code == 2 and "wan2.6-reference-video always makes its own audio" in err
    code, _, err = run("estimate", "--seconds", "5", "--model", "4.0")
    assert code == 2 and "wan3.0-prime-reference-video (3.0-prime/prime/wan3.0-prime)" in err


def test_the_config_model_is_the_default_until_a_flag_overrides_it() -> None:
    assert json.loads(run("estimate", "--seconds", "5", "--json")[1])["model"] == rules.MODEL
    code, _, err = run("config", "set", "model", "3.0")
    assert code == 0, err
    assert json.loads(run("config", "show", "--json")[1])["model"] == WAN30
    assert json.loads(run("estimate", "--seconds", "5", "--json")[1])["model"] == WAN30
    data = json.loads(run("estimate", "--seconds", "5", "--model", "flash", "--json")[1])
    assert data["model"] == rules.FLASH_MODEL
    assert run("config", "set", "model", "wan9")[0] == 2


# -- the bill, per model --------------------------------------------------------------------------

# (model, clips ms, output s, quality, audio, units): the spec's rates by hand.
HELD_OUT = [
    # wan2.7: the clips' total capped at 5 s; (5 + 8) s x 5.44 x 1.67
    (WAN27, [3_000, 4_000], 8, "1080p", True, 1_181_024),
    # wan2.7: under the cap, every ms: (2.25 + 2) s x 5.44
    (WAN27, [2_250], 2, "720p", True, 231_200),
    # wan3.0: every input second: (12.3 + 10) s x 2.55 x 1 at 480p
    (WAN30, [12_300], 10, "480p", True, 568_650),
    # wan3.0 has no audio discount: (4 + 6) x 2.55 x 2
    (WAN30, [1_500, 2_500], 6, "720p", False, 510_000),
    # wan3.0 smart duration: held at 30 s of output, (4.5 + 30) x 2.55 x 4
    (WAN30, [4_500], -1, "1080p", True, 3_519_000),
    # prime: (1 + 2) s x 3.9304 x 2.06 = 24.289872, half-up to the unit
    (PRIME, [1_000], 2, "720p", True, 242_899),
    # prime at 1080p: (15 + 15) x 3.9304 x 4.12
    (PRIME, [5_000, 5_000, 5_000], 15, "1080p", True, 4_857_974),
]


@pytest.mark.parametrize(("model", "clips", "output_s", "quality", "audio", "units"), HELD_OUT)
def test_held_out_jobs_are_priced_to_the_unit(model: str, clips: list[int], output_s: int,
                                              quality: str, audio: bool, units: int) -> None:
    est = estimate_durations([(str(i), ms) for i, ms in enumerate(clips)], output_s=output_s,
                             quality=quality, model=model, generate_audio=None if model == WAN27
                             else audio)
    assert est.credits_units == units
    assert est.credits_at(quality) == units  # the quality table agrees with the bill


def test_wan26_and_flash_keep_the_users_price_overrides() -> None:
    mine = PriceTable(units_per_second=50_000, flash_units_per_second=20_000)
    assert estimate_durations([("a", 6_000)], output_s=5, prices=mine).credits_units == 500_000
    assert estimate_durations([("a", 6_000)], output_s=5, prices=mine, model="flash",
                              generate_audio=False).credits_units == 100_000
    assert estimate_durations([("a", 6_000)], output_s=5).credits_units == 476_000


def test_a_smart_duration_is_billed_as_its_hold_and_says_so() -> None:
    est = estimate_durations([("a", 4_000)], output_s=-1, model="3.0")
    assert est.smart_hold_s == 30 and est.output_billed_ms == 30_000
    assert est.credits_units == (4 + 30) * 25_500 * 2
    assert any("holds 30 s of output" in n for n in est.notes)
    assert est.as_dict()["smart_duration_hold_s"] == 30


@pytest.mark.parametrize(("model", "clips", "output_s", "words"), [
    ("3.0", [10_000, 6_000], 5, "the videos total 16 s; wan3.0-reference-video takes at most 15 s "
                                "in all (cut 1 s)"),
    ("3.0", [15_000], 16, "come to 31 s; wan3.0-reference-video takes at most 30 s (cut 1 s)"),
    ("2.7", [3_000], 11, "with reference videos wan2.7-reference-video makes at most 10 s"),
    ("prime", [500], 5, "video 1 is 0.5 s; wan3.0-prime-reference-video takes 1-15 s"),
])
def test_refusals_at_each_cross_field_cap(model: str, clips: list[int], output_s: int,
                                          words: str) -> None:
    with pytest.raises(UsageError) as caught:
        estimate_durations([(str(i), ms) for i, ms in enumerate(clips)], output_s=output_s,
                           model=model)
    assert words in caught.value.message


def test_a_long_clip_is_billed_as_prep_would_cut_it() -> None:
    est = estimate_durations([("take.mov", 45_000)], output_s=5, model="3.0")
    assert [c.duration_ms for c in est.clips] == [15_000]
    assert "takes at most 15.0 s a clip" in est.clips[0].notes[0]
    assert est.credits_units == (15 + 5) * 25_500 * 2


# -- prep estimate --compare ----------------------------------------------------------------------


def test_compare_against_hand_arithmetic() -> None:
    code, out, err = run("estimate", "--seconds", "6", "--duration", "10", "--compare", "--json")
    assert code == 0, err
    data = json.loads(out)
    rows = {(r["model"], r["generate_audio"]): r for r in data["models"]}
    assert {key: r["credits_units"] for key, r in rows.items()} == {
        (rules.MODEL, None): (5 + 10) * 47_600,  # the clip billed up to 5 s
        (rules.FLASH_MODEL, True): (5 + 10) * 23_800,
        (rules.FLASH_MODEL, False): (5 + 10) * 23_800 // 2,
        (WAN27, None): (5 + 10) * 54_400,
        (WAN30, True): (6 + 10) * 25_500 * 2,  # every second of the clip
        (PRIME, True): 1_295_460,  # (6 + 10) x 3.9304 x 2.06 = 129.54598..., half-up
    }
    assert data["cheapest"] == {"model": rules.FLASH_MODEL, "generate_audio": False}


def test_compare_says_what_each_model_cuts_or_refuses() -> None:
    code, out, err = run("estimate", "--seconds", "20", "--compare", "--json")
    assert code == 0, err
    rows = {r["model"]: r for r in json.loads(out)["models"]}
    assert rows[WAN30]["cuts"] == ["clip 1 cut from 20 s to 15 s"]
    assert rows[WAN30]["credits_units"] == (15 + 5) * 25_500 * 2
    assert rows[rules.MODEL]["cuts"] == [] and rows[rules.MODEL]["accepted"]
    code, out, _ = run("estimate", "--seconds", "12", "--seconds", "9", "--compare", "--json")
    rows = {r["model"]: r for r in json.loads(out)["models"]}
    assert not rows[WAN30]["accepted"] and rows[WAN30]["credits_units"] is None
    assert rows[WAN30]["problems"] == [
        "the videos total 21 s; wan3.0-reference-video takes at most 15 s in all (cut 6 s)"]
    code, out, _ = run("estimate", "--seconds", "12", "--seconds", "9", "--compare")
    assert code == 0 and "refused" in out and "cut 6 s" in out


def test_compare_uses_the_users_wan26_prices() -> None:
    code, out, _ = run("estimate", "--seconds", "6", "--compare", "--json",
                       "--price-per-second", "5")
    rows = {(r["model"], r["generate_audio"]): r for r in json.loads(out)["models"]}
    assert rows[(rules.MODEL, None)]["credits_units"] == 10 * 50_000
    assert rows[(WAN30, True)]["credits_units"] == (6 + 5) * 25_500 * 2
    assert DEFAULT_PRICES.rate(WAN30).units_per_second == 25_500


def test_the_readme_models_section_follows_the_tables() -> None:
    from pathlib import Path

    from prep.core.billing import credits_text
    from prep.core.models import ASSUMED, MODELS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Models"):readme.index("## Prices")]
    for spec in MODELS:
        assert f"`{spec.id}` (`{spec.aliases[0]}`" in section
        assert f"| {credits_text(spec.billing.units_per_second)}" in section
        assert credits_text(spec.billing.minimum_units) in section
    for assumption in ASSUMED:
        assert assumption.split(" (")[0].replace("model_params.shot_type",
                                                 "`model_params.shot_type`") in section
