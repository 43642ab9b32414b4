"""Billing: table-driven, exact, no media."""

from __future__ import annotations

from fractions import Fraction

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
