"""The newer reference-video models (wan2.7, wan3.0, wan3.0 prime) as the sandbox emulates them.

Written out on their own, like limits.py and pricing.py: the sandbox shares none of the client's
model tables (`prep.core`), so that a wrong number on either side shows up as a disagreement in the
shared case tables (tests/model_cases.py). Source: evolink-api.md section 7 and the three OpenAPI
documents beside it. Times in integer milliseconds (or whole seconds, named so), money in
1/10,000-credit units, rounded half-up once per task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Literal

__all__ = ["NEW_MODELS", "ModelRules", "charge_units", "smart_duration_s"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRules:
    """What one model accepts and how it bills, as its page and its pricing rule say."""

    name: str
    error_code: str  # the code of a 400 for bad parameters
    max_videos: int
    max_images: int
    max_audio: int  # standalone audio references (wan3.0); voices bound by wan2.7 are apart
    min_references: int  # videos + images (wan2.7 needs one; wan3.0 needs a prompt or any reference)
    max_references: int | None  # videos + images together, where the model counts them so
    video_min_ms: int
    video_max_ms: int
    videos_total_max_ms: int | None
    videos_plus_output_max_ms: int | None
    output_with_videos_max_s: int | None
    prompt_max_chars: int
    prompt_required: bool
    negative_prompt_max_chars: int | None
    output_min_s: int
    output_max_s: int
    output_default_s: int
    smart_duration: bool
    qualities: tuple[str, ...]
    quality_default: str
    aspect_ratios: tuple[str, ...]
    aspect_ratio_default: str
    seed_min: int
    seed_max: int
    prompt_extend: bool
    generate_audio: bool
    voice_bindings: bool
    audio_min_ms: int
    audio_max_ms: int
    audio_total_max_ms: int | None
    units_per_second: int
    quality_factor: dict[str, Fraction]
    minimum_units: int
    input_rule: Literal["capped_total", "every_second"]
    input_cap_ms: int | None
    smart_hold_s: int | None
    reports_video_duration: bool  # task_info.video_duration in the task object


_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")
_SEED_MAX = 2_147_483_647

WAN27: Final = ModelRules(
    name="wan2.7-reference-video", error_code="invalid_request",
    max_videos=5, max_images=5, max_audio=0, min_references=1, max_references=5,
    video_min_ms=1_000, video_max_ms=30_000, videos_total_max_ms=None, videos_plus_output_max_ms=None,
    output_with_videos_max_s=10, prompt_max_chars=5_000, prompt_required=True,
    negative_prompt_max_chars=500, output_min_s=2, output_max_s=15, output_default_s=5,
    smart_duration=False, qualities=("720p", "1080p"), quality_default="720p",
    aspect_ratios=_RATIOS, aspect_ratio_default="16:9", seed_min=1, seed_max=_SEED_MAX,
    prompt_extend=True, generate_audio=False, voice_bindings=True,
    audio_min_ms=1_000, audio_max_ms=10_000, audio_total_max_ms=None,
    units_per_second=54_400, quality_factor={"720p": Fraction(1), "1080p": Fraction(167, 100)},
    minimum_units=108_800, input_rule="capped_total", input_cap_ms=5_000, smart_hold_s=None,
    reports_video_duration=False,
)


def _wan30(name: str, rate: int, minimum: int, factor: dict[str, Fraction]) -> ModelRules:
    return ModelRules(
        name=name, error_code="invalid_parameter",
        max_videos=5, max_images=10, max_audio=5, min_references=0, max_references=None,
        video_min_ms=1_000, video_max_ms=15_000, videos_total_max_ms=15_000,
        videos_plus_output_max_ms=30_000, output_with_videos_max_s=None,
        prompt_max_chars=20_000, prompt_required=False, negative_prompt_max_chars=None,
        output_min_s=2, output_max_s=30, output_default_s=5, smart_duration=True,
        qualities=("480p", "720p", "1080p"), quality_default="720p",
        aspect_ratios=("adaptive", *_RATIOS), aspect_ratio_default="adaptive",
        seed_min=0, seed_max=_SEED_MAX, prompt_extend=False, generate_audio=True,
        voice_bindings=False, audio_min_ms=1_000, audio_max_ms=15_000, audio_total_max_ms=15_000,
        units_per_second=rate, quality_factor=factor, minimum_units=minimum,
        input_rule="every_second", input_cap_ms=None, smart_hold_s=30, reports_video_duration=True,
    )


WAN30: Final = _wan30("wan3.0-reference-video", 25_500, 51_000,
                      {"480p": Fraction(1), "720p": Fraction(2), "1080p": Fraction(4)})
WAN30_PRIME: Final = _wan30("wan3.0-prime-reference-video", 39_304, 78_608,
                            {"480p": Fraction(1), "720p": Fraction(103, 50), "1080p": Fraction(103, 25)})

NEW_MODELS: Final[dict[str, ModelRules]] = {m.name: m for m in (WAN27, WAN30, WAN30_PRIME)}


def smart_duration_s(rules: ModelRules, videos_ms: Sequence[int]) -> int:
    """The length the sandbox 'chooses' for `duration: -1`: the default, within the 30 s rule."""
    room_s = (rules.videos_plus_output_max_ms or 30_000) // 1000 - -(-sum(videos_ms) // 1000)
    return max(rules.output_min_s, min(rules.output_default_s, room_s))


def charge_units(rules: ModelRules, videos_ms: Sequence[int], output_s: int, quality: str) -> int:
    """What a task of this model costs: billed input + output seconds times the rate and the
    quality's factor, rounded half-up once, never below the minimum. `output_s` -1 (smart duration)
    prices the hold."""
    total_input = sum(videos_ms)
    billed_input = total_input if rules.input_rule == "every_second" else min(total_input,
                                                                             rules.input_cap_ms or 0)
    output_ms = (rules.smart_hold_s or 0) * 1000 if output_s == -1 else output_s * 1000
    exact = (Fraction((billed_input + output_ms) * rules.units_per_second, 1000)
             * rules.quality_factor[quality])
    units = int(exact + Fraction(1, 2))
    return max(units, rules.minimum_units)
