"""One table of billing cases that both sides must agree on: the client's estimate
(prep.core.billing) and the sandbox's own arithmetic (prep.sandbox.pricing), see
test_cases_agree.py.

Each case: the model, the references' durations (ms), the output seconds, the quality, whether the
result has audio (the flash model only) and optional price overrides (units of 1/10,000 credit),
and what must come out: billed input ms, billed total ms and the charge in units. The expected
numbers are worked out by hand from the rule in docs/spec/evolink-api.md (sections 1 and 5), not
by either implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pytest

__all__ = ["BILLING_CASES", "FLASH", "STANDARD", "BillingCase", "billing_params"]

STANDARD = "wan2.6-reference-video"
FLASH = "wan2.6-reference-video-flash"


@dataclass(frozen=True, slots=True, kw_only=True)
class BillingCase:
    id: str
    model: str = STANDARD
    clips_ms: tuple[int, ...]
    output_s: int
    quality: str = "720p"
    # generate_audio (flash only; the standard model always makes sound).
    audio: bool = True
    # Keys: units_per_second (int), hd_multiplier (Fraction), minimum_units (int).
    prices: dict[str, Any] = field(default_factory=dict)
    input_ms: int
    total_ms: int
    units: int


# 720p: 47,600 units a second = 47.6 units a ms. 1080p: x1.67 = 79.492 units a ms.
BILLING_CASES: tuple[BillingCase, ...] = (
    # One reference: billed up to 5 s.
    BillingCase(id="1 clip 4 s, 5 s out", clips_ms=(4_000,), output_s=5,
                input_ms=4_000, total_ms=9_000, units=428_400),
    BillingCase(id="1 clip 29 s is billed 5 s", clips_ms=(29_000,), output_s=5,
                input_ms=5_000, total_ms=10_000, units=476_000),
    BillingCase(id="spec: 1 clip 6 s + 5 s at 1080p = 79.492 credits", clips_ms=(6_000,),
                output_s=5, quality="1080p", input_ms=5_000, total_ms=10_000, units=794_920),
    BillingCase(id="1 clip exactly 5 s", clips_ms=(5_000,), output_s=2,
                input_ms=5_000, total_ms=7_000, units=333_200),
    # Two references: each billed up to 2.5 s.
    BillingCase(id="2 clips 2 s + 9 s", clips_ms=(2_000, 9_000), output_s=5,
                input_ms=4_500, total_ms=9_500, units=452_200),
    BillingCase(id="2 clips of exactly 2.0 s are billed in full", clips_ms=(2_000, 2_000),
                output_s=2, input_ms=4_000, total_ms=6_000, units=285_600),
    BillingCase(id="2 clips 2.5 s + 2.501 s", clips_ms=(2_500, 2_501), output_s=10,
                input_ms=5_000, total_ms=15_000, units=714_000),
    # Three references: each billed up to 1.65 s, so never less than 4.95 s.
    BillingCase(id="spec: 3 clips + 2 s = 6.95 s = 33.082 credits", clips_ms=(2_000, 10_000, 30_000),
                output_s=2, input_ms=4_950, total_ms=6_950, units=330_820),
    BillingCase(id="3 clips of exactly 2.0 s are billed 1.65 s each", clips_ms=(2_000,) * 3,
                output_s=10, quality="1080p", input_ms=4_950, total_ms=14_950,
                units=1_188_405),  # 14,950 x 79.492 = 1,188,405.4 -> down
    # The 1080p multiplier.
    BillingCase(id="1080p 2 clips 3 s + 3 s, 10 s out", clips_ms=(3_000, 3_000), output_s=10,
                quality="1080p", input_ms=5_000, total_ms=15_000, units=1_192_380),
    # Half-up rounding: 6,125 ms x 79.492 = 486,888.5 units -> 486,889 (half-even would give 888).
    BillingCase(id="half-up on exactly .5 unit", clips_ms=(2_125,), output_s=4, quality="1080p",
                input_ms=2_125, total_ms=6_125, units=486_889),
    # 2,375 ms is under the 2.5 s share: 4,375 + 2,000 = 6,375 ms x 79.492 = 506,761.5.
    BillingCase(id="half-up with 2 clips", clips_ms=(2_375, 2_000), output_s=2, quality="1080p",
                input_ms=4_375, total_ms=6_375, units=506_762),  # 506,761.5 -> 506,762
    # A minimum charge that binds: 4 s at 1 credit a second is 4 credits; the minimum is 9.
    BillingCase(id="minimum charge binds", clips_ms=(2_000,), output_s=2,
                prices={"units_per_second": 10_000}, input_ms=2_000, total_ms=4_000,
                units=90_000),
    BillingCase(id="the rate reaches exactly the minimum", clips_ms=(5_000,), output_s=4,
                prices={"units_per_second": 10_000}, input_ms=5_000, total_ms=9_000,
                units=90_000),  # exactly the minimum, from the rate
    BillingCase(id="own prices: rate, multiplier and minimum", clips_ms=(3_000, 2_200, 9_999),
                output_s=3, quality="1080p",
                prices={"units_per_second": 23_800, "hd_multiplier": Fraction(3, 2),
                        "minimum_units": 200_000},
                input_ms=4_950, total_ms=7_950, units=283_815),  # 7.95 x 23,800 x 1.5 = 283,815
    # 1 ms x 47.6 = 47.6: rounding to a whole unit happens once, on the total.
    BillingCase(id="odd milliseconds at 720p", clips_ms=(2_001,), output_s=2,
                input_ms=2_001, total_ms=4_001, units=190_448),  # 190,447.6 -> 190,448
    *(BillingCase(id=f"flash: {c.id}", model=FLASH, **{k: getattr(c, k) for k in (
        "clips_ms", "output_s", "quality", "audio", "input_ms", "total_ms", "units")})
      for c in (
        # Flash: 23,800 units a second with audio (23.8 a ms), half that without (11.9 a ms);
        # x1.67 at 1080p (39.746 and 19.873 a ms); rounded half-up once; at least 90,000.
        BillingCase(id="1 clip 29 s + 5 s with audio = half the standard price",
                    clips_ms=(29_000,), output_s=5, input_ms=5_000, total_ms=10_000,
                    units=238_000),
        BillingCase(id="the same at 1080p", clips_ms=(29_000,), output_s=5, quality="1080p",
                    input_ms=5_000, total_ms=10_000, units=397_460),
        BillingCase(id="the same without audio", clips_ms=(29_000,), output_s=5, audio=False,
                    input_ms=5_000, total_ms=10_000, units=119_000),
        BillingCase(id="the same without audio at 1080p", clips_ms=(29_000,), output_s=5,
                    audio=False, quality="1080p", input_ms=5_000, total_ms=10_000,
                    units=198_730),
        # With audio at 720p the minimum never binds: the least a task bills is 4 s = 95,200.
        BillingCase(id="shortest task with audio is above the minimum", clips_ms=(2_000,),
                    output_s=2, input_ms=2_000, total_ms=4_000, units=95_200),
        # spec section 5: 2 s clip + 2 s without audio = 4 s x 11,900 = 47,600 -> 90,000.
        BillingCase(id="spec: minimum binds without audio", clips_ms=(2_000,), output_s=2,
                    audio=False, input_ms=2_000, total_ms=4_000, units=90_000),
        # 7,562 ms x 11.9 = 89,987.8 -> 89,988, under the minimum: 90,000.
        BillingCase(id="minimum binds by 12 units", clips_ms=(2_562,), output_s=5,
                    audio=False, input_ms=2_562, total_ms=7_562, units=90_000),
        # 7,563 ms x 11.9 = 89,999.7 -> 90,000 by rounding: the rate itself reaches the minimum.
        BillingCase(id="rounding reaches the minimum", clips_ms=(2_563,), output_s=5,
                    audio=False, input_ms=2_563, total_ms=7_563, units=90_000),
        # 7,564 ms x 11.9 = 90,011.6 -> 90,012: just above.
        BillingCase(id="just above the minimum", clips_ms=(2_564,), output_s=5, audio=False,
                    input_ms=2_564, total_ms=7_564, units=90_012),
        # 1080p without audio: 4,528 ms x 19.873 = 89,984.944 -> 90,000; 4,529 ms -> 90,004.817.
        BillingCase(id="1080p without audio: minimum binds", clips_ms=(2_528,), output_s=2,
                    quality="1080p", audio=False, input_ms=2_528, total_ms=4_528,
                    units=90_000),
        BillingCase(id="1080p without audio: just above the minimum", clips_ms=(2_529,),
                    output_s=2, quality="1080p", audio=False, input_ms=2_529, total_ms=4_529,
                    units=90_005),
        BillingCase(id="2 clips 2 s + 9 s with audio", clips_ms=(2_000, 9_000), output_s=5,
                    input_ms=4_500, total_ms=9_500, units=226_100),
        BillingCase(id="2 clips of 2 s, 2 s out, without audio: minimum binds",
                    clips_ms=(2_000, 2_000), output_s=2, audio=False, input_ms=4_000,
                    total_ms=6_000, units=90_000),  # 71,400 by the rate
        BillingCase(id="2 clips 3 s + 3 s, 10 s out, 1080p without audio",
                    clips_ms=(3_000, 3_000), output_s=10, quality="1080p", audio=False,
                    input_ms=5_000, total_ms=15_000, units=298_095),
        BillingCase(id="3 clips + 2 s without audio: minimum binds",
                    clips_ms=(2_000, 10_000, 30_000), output_s=2, audio=False, input_ms=4_950,
                    total_ms=6_950, units=90_000),  # 82,705 by the rate
        BillingCase(id="3 clips + 3 s without audio", clips_ms=(2_000, 10_000, 30_000),
                    output_s=3, audio=False, input_ms=4_950, total_ms=7_950, units=94_605),
        BillingCase(id="3 clips of 2 s + 10 s at 1080p with audio", clips_ms=(2_000,) * 3,
                    output_s=10, quality="1080p", input_ms=4_950, total_ms=14_950,
                    units=594_203),  # 594,202.7 -> up
        # Half-up on exactly .5 unit, in each of the three rates that can produce one.
        BillingCase(id="half-up without audio at 720p", clips_ms=(4_005,), output_s=5,
                    audio=False, input_ms=4_005, total_ms=9_005, units=107_160),  # 107,159.5
        BillingCase(id="half-up with audio at 1080p", clips_ms=(2_250,), output_s=2,
                    quality="1080p", input_ms=2_250, total_ms=4_250, units=168_921),  # .5
        BillingCase(id="half-up without audio at 1080p", clips_ms=(3_500,), output_s=2,
                    quality="1080p", audio=False, input_ms=3_500, total_ms=5_500,
                    units=109_302),  # 109,301.5
    )),
)


def billing_params() -> list[Any]:
    """The cases as pytest parameters, named by their ids."""
    return [pytest.param(case, id=case.id) for case in BILLING_CASES]
