"""Billing: table-driven, exact, no media."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from prep.core import billing, rules
from prep.core.billing import (
    DEFAULT_PRICES,
    PriceTable,
    estimate_durations,
    input_billed_ms,
    price_units,
)
from prep.errors import UsageError


@pytest.mark.parametrize(
    ("durations_ms", "billed_ms"),
    [
        ([4_000], 4_000), ([5_000], 5_000), ([4_999], 4_999), ([5_001], 5_000), ([29_000], 5_000),
        ([2_000, 9_000], 4_500), ([2_500, 2_500], 5_000), ([2_499, 2_501], 4_999),
        ([3_000, 3_000], 5_000),
        ([2_000, 10_000, 30_000], 4_950), ([1_649, 1_650, 1_651], 4_949),
        ([1_650, 1_650, 1_650], 4_950),
    ],
)
def test_input_billing(durations_ms: list[int], billed_ms: int) -> None:
    assert input_billed_ms(durations_ms) == billed_ms


@pytest.mark.parametrize("count", [0, 4])
def test_input_billing_needs_one_to_three_clips(count: int) -> None:
    with pytest.raises(UsageError, match="1 to 3"):
        input_billed_ms([3_000] * count)


@pytest.mark.parametrize(
    ("billed_ms", "quality", "units"),
    [
        (10_000, "720p", 476_000),       # 1 clip >= 5 s + 5 s output = 47.6 credits
        (10_000, "1080p", 794_920),      # 79.492 credits
        (6_950, "720p", 330_820),        # 3 clips + 2 s output = 33.082 credits
        (9_950, "1080p", 790_945),       # 4.95 + 5 at 1080p = 79.0945 credits
        (1, "720p", 90_000),             # the minimum charge
        (1_000, "1080p", 90_000),        # 7.9492 credits is below the 9-credit minimum
        (2_000, "720p", 95_200),         # 9.52 credits: just above the minimum
    ],
)
def test_price_units(billed_ms: int, quality: str, units: int) -> None:
    assert price_units(billed_ms, quality) == units


def test_half_up_rounding_is_exact() -> None:
    # 1 ms at 720p is 47.6 units: rounds to 48; 0.5 units rounds up, never to even.
    table = PriceTable(units_per_second=1_000, hd_multiplier=Fraction(1, 2), minimum_units=0)
    assert price_units(1, "1080p", table) == 1  # 0.5 -> 1
    assert price_units(3, "1080p", table) == 2  # 1.5 -> 2
    assert price_units(5, "1080p", table) == 3  # 2.5 -> 3 (half-even would give 2)


@pytest.mark.parametrize(
    ("durations_ms", "output_s", "quality", "credits"),
    [
        ([18_000], 5, "720p", "47.6"),
        ([18_000], 5, "1080p", "79.492"),
        ([2_000, 10_000, 30_000], 2, "720p", "33.082"),
        ([4_000], 2, "720p", "28.56"),
    ],
)
def test_estimate_credits(durations_ms: list[int], output_s: int, quality: str, credits: str) -> None:
    est = estimate_durations([(f"c{i}", d) for i, d in enumerate(durations_ms)],
                             output_s=output_s, quality=quality)
    assert billing.credits_text(est.credits_units) == credits
    assert est.total_billed_ms == est.input_billed_ms + output_s * 1000


def test_three_clips_bill_4_95_not_float_noise() -> None:
    est = estimate_durations([("a", 2_000), ("b", 2_000), ("c", 2_000)])
    assert est.input_billed_ms == 4_950
    assert est.as_dict()["input_billed_s"] == 4.95
    assert any("no trim can lower" in n for n in est.notes)


def test_notes_tell_what_trimming_would_do() -> None:
    est = estimate_durations([("take.mov", 18_000)])
    assert est.clips[0].notes == (
        "take.mov is 18.0 s; billed 5.0 s; trimming it to 5.0 s would not change the bill",
    )


def test_minimum_charge_is_reported() -> None:
    table = PriceTable(units_per_second=100, minimum_units=90_000)
    est = estimate_durations([("a", 3_000)], prices=table)
    assert est.minimum_applied and est.credits_units == 90_000
    assert any("minimum charge" in n for n in est.notes)


@pytest.mark.parametrize(("output_s", "quality"), [(1, "720p"), (11, "720p"), (5, "4k")])
def test_request_limits_are_usage_errors(output_s: int, quality: str) -> None:
    with pytest.raises(UsageError):
        estimate_durations([("a", 3_000)], output_s=output_s, quality=quality)


@pytest.mark.parametrize("count", [0, 4])
def test_clip_count_is_a_usage_error(count: int) -> None:
    with pytest.raises(UsageError, match="1 to 3"):
        estimate_durations([("a", 3_000)] * count)


def test_json_contract() -> None:
    data = estimate_durations([("a.mp4", 7_000)], quality="1080p").as_dict()
    for key in ("clips", "input_billed_s", "output_billed_s", "total_billed_s", "quality",
                "credits", "price_source"):
        assert key in data
    assert data["clips"][0] == {**data["clips"][0], "path": "a.mp4", "duration_s": 7.0,
                                "billed_s": 5.0}
    assert "2026-10-08" in data["price_source"]
    assert data["credits_by_quality"] == {"720p": 47.6, "1080p": 79.492}


@pytest.mark.parametrize(("text", "units"), [("4.76", 47_600), ("9", 90_000), ("0.0001", 1)])
def test_parse_credits(text: str, units: int) -> None:
    assert billing.parse_credits(text, "x") == units


@pytest.mark.parametrize("text", ["abc", "-1", "0.00001", "nan"])
def test_parse_credits_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        billing.parse_credits(text, "x")


def test_default_prices_match_the_spec() -> None:
    assert DEFAULT_PRICES.units_per_second == 47_600
    assert DEFAULT_PRICES.hd_multiplier == Fraction(167, 100)
    assert DEFAULT_PRICES.minimum_units == 90_000
    assert rules.INPUT_CAP_MS == {1: 5_000, 2: 2_500, 3: 1_650}


# -- the flash model: 23,800 units a second with audio, x1/2 without, x1.67 at 1080p, minimum 9 ---

FLASH = rules.FLASH_MODEL


@pytest.mark.parametrize(
    ("clips_ms", "output_s", "quality", "audio", "units", "minimum"),
    [
        # spec: 1 clip >= 5 s + 5 s = 10 s x 23,800
        ((6_000,), 5, "720p", True, 238_000, False),
        ((6_000,), 5, "720p", False, 119_000, False),  # half without audio
        ((6_000,), 5, "1080p", True, 397_460, False),  # x1.67
        ((6_000,), 5, "1080p", False, 198_730, False),
        # 3 clips: 4.95 + 2 = 6.95 s x 23,800 = 165,410
        ((2_000, 10_000, 30_000), 2, "720p", True, 165_410, False),
        ((2_000, 9_000), 2, "720p", True, 154_700, False),  # 2 + 2.5 + 2 = 6.5 s
        # spec: 2 s + 2 s without audio = 4 s x 11,900 = 47,600: the minimum binds
        ((2_000,), 2, "720p", False, 90_000, True),
        # the minimum's edge without audio at 720p: 90,000 / 11.9 units a ms = 7,563.03 ms
        ((2_562,), 5, "720p", False, 90_000, True),     # 7,562 ms x 11.9 = 89,987.8 -> 89,988
        ((2_563,), 5, "720p", False, 90_000, False),    # 89,999.7 -> 90,000: the rate reaches it
        ((2_564,), 5, "720p", False, 90_012, False),    # 90,011.6 -> 90,012
        # ... and at 1080p: 11.9 x 1.67 = 19.873 units a ms; 90,000 / 19.873 = 4,528.7 ms
        ((2_528,), 2, "1080p", False, 90_000, True),    # 89,984.9 -> 89,985 < 90,000
        ((2_529,), 2, "1080p", False, 90_005, False),   # 90,004.8 -> 90,005
        # with audio the shortest job (4 s) is 95,200 units: the minimum never binds at 720p
        ((2_000,), 2, "720p", True, 95_200, False),
        # half-up, once, on the total: 9,015 ms x 11.9 = 107,278.5 -> 107,279 (half-even: 278)
        ((4_015,), 5, "720p", False, 107_279, False),
        # 6,500 ms x 19.873 = 129,174.5 -> 129,175 (half-even: 174)
        ((2_500,), 4, "1080p", False, 129_175, False),
    ],
)
def test_flash_prices(clips_ms: tuple[int, ...], output_s: int, quality: str, audio: bool,
                      units: int, minimum: bool) -> None:
    est = estimate_durations([(f"c{i}", ms) for i, ms in enumerate(clips_ms)], output_s=output_s,
                             quality=quality, model=FLASH, generate_audio=audio)
    assert (est.credits_units, est.minimum_applied) == (units, minimum)
    assert isinstance(est.credits_units, int)
    total = sum(min(ms, rules.INPUT_CAP_MS[len(clips_ms)]) for ms in clips_ms) + output_s * 1000
    assert price_units(total, quality, model=FLASH, audio=audio) == units


def test_flash_audio_defaults_to_on() -> None:
    est = estimate_durations([("a", 6_000)], output_s=5, model=FLASH)
    assert est.credits_units == 238_000 and est.audio and est.generate_audio is None
    assert est.as_dict()["generate_audio"] is True


def test_the_minimum_note_says_what_the_rate_gives() -> None:
    est = estimate_durations([("a", 2_000)], output_s=2, model=FLASH, generate_audio=False)
    assert any("minimum charge of 9 credits" in n and "4.76" in n for n in est.notes)
    assert any("without audio" in n for n in est.notes)


def test_the_standard_model_is_unchanged_and_refuses_an_audio_switch() -> None:
    est = estimate_durations([("a", 6_000)], output_s=5)
    assert est.model == rules.MODEL and est.credits_units == 476_000
    for audio in (True, False):
        with pytest.raises(UsageError, match="only for wan2.6-reference-video-flash"):
            estimate_durations([("a", 6_000)], output_s=5, generate_audio=audio)
    with pytest.raises(UsageError, match="--model 'wan2.5'"):
        estimate_durations([("a", 6_000)], output_s=5, model="wan2.5")


def test_estimate_shows_the_other_model() -> None:
    standard = estimate_durations([("a", 6_000)], output_s=5)
    alts = {(a.model, a.generate_audio): a.credits_units for a in standard.alternatives}
    assert alts == {(FLASH, True): 238_000, (FLASH, False): 119_000}
    data = standard.as_dict()
    assert data["model"] == rules.MODEL and data["generate_audio"] is None
    assert [(o["model"], o["credits_units"], o["difference_units"]) for o in data["other_models"]] == [
        (FLASH, 238_000, -238_000), (FLASH, 119_000, -357_000)]
    flash = estimate_durations([("a", 2_000)], output_s=2, model=FLASH, generate_audio=False)
    assert [(a.model, a.credits_units) for a in flash.alternatives] == [
        (rules.MODEL, 190_400), (FLASH, 95_200)]
    # credits_at keeps the model and its audio setting
    assert flash.credits_at("1080p") == 90_000 and flash.credits_at("720p") == 90_000


def test_flash_prices_can_be_overridden() -> None:
    prices = PriceTable(flash_units_per_second=30_000, flash_minimum_units=0,
                        flash_no_audio_multiplier=Fraction(3, 4), flash_hd_multiplier=Fraction(2))
    est = estimate_durations([("a", 2_000)], output_s=2, model=FLASH, generate_audio=False,
                             quality="1080p", prices=prices)
    assert est.credits_units == 180_000  # 4 s x 30,000 x 2 x 3/4
    # the standard model's prices are separate
    assert estimate_durations([("a", 2_000)], output_s=2, prices=prices).credits_units == 190_400
    with pytest.raises(ValueError):
        PriceTable(flash_units_per_second=0)


def test_flash_prices_from_the_config_file_and_options(tmp_path: Any) -> None:
    from prep.settings import load_settings

    config = tmp_path / "config.toml"
    config.write_text('[prices]\nflash_price_per_second = "3"\nflash_min_charge = "5"\n'
                      'flash_no_audio_multiplier = "0.6"\n', encoding="utf-8")
    env = {"PREP_CONFIG": str(config)}
    prices = load_settings({}, env).prices
    assert (prices.flash_units_per_second, prices.flash_minimum_units,
            prices.flash_no_audio_multiplier) == (30_000, 50_000, Fraction(3, 5))
    assert prices.units_per_second == DEFAULT_PRICES.units_per_second
    options = load_settings({"flash_price_per_second": "2.5"}, env).prices
    assert options.flash_units_per_second == 25_000 and "command-line" in options.source
    with pytest.raises(UsageError, match="flash_min_charge"):
        load_settings({"flash_min_charge": "x"}, env)
    with pytest.raises(UsageError, match="flash_no_audio_multiplier"):
        load_settings({"flash_no_audio_multiplier": "0"}, env)
