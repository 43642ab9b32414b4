"""Every limit of EvoLink's wan2.6-reference-video API and its flash variant, in one place.

Source: docs/spec/evolink-api.md (restated from docs.evolink.ai) and EvoLink's published OpenAPI
document for the generation endpoint (docs/spec/). Times are integer milliseconds, sizes integer bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from fractions import Fraction
from typing import Final

from prep.core.modelspec import Billing, MediaLimits, ModelSpec, Span

MODEL: Final = "wan2.6-reference-video"
# The cheaper variant: the same request plus a top-level `generate_audio` boolean (default true).
FLASH_MODEL: Final = "wan2.6-reference-video-flash"
MODELS: Final = (MODEL, FLASH_MODEL)
DEFAULT_MODEL: Final = MODEL
# Models that take `generate_audio`, and what the API assumes when it is left out.
AUDIO_SWITCH_MODELS: Final = (FLASH_MODEL,)
DEFAULT_GENERATE_AUDIO: Final = True

# Reference clips (video_urls)
MIN_CLIPS: Final = 1
MAX_CLIPS: Final = 3
MIN_CLIP_MS: Final = 2_000
MAX_CLIP_MS: Final = 30_000
# "100MB" read as 100,000,000 bytes: the stricter of the two readings.
MAX_FILE_BYTES: Final = 100_000_000
CONTAINERS: Final = ("mp4", "mov")
URL_SCHEMES: Final = ("http", "https")

# Input billing: each clip is truncated to this cap, depending on how many clips the job has.
INPUT_CAP_MS: Final[dict[int, int]] = {1: 5_000, 2: 2_500, 3: 1_650}

# Request fields
MAX_PROMPT_CHARS: Final = 1_500
MIN_OUTPUT_S: Final = 2
MAX_OUTPUT_S: Final = 10
DEFAULT_OUTPUT_S: Final = 5
ASPECT_RATIOS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4")
DEFAULT_ASPECT_RATIO: Final = "16:9"
QUALITIES: Final = ("720p", "1080p")
DEFAULT_QUALITY: Final = "720p"
SHOT_TYPES: Final = ("single", "multi")
DEFAULT_SHOT_TYPE: Final = "single"
MAX_CALLBACK_URL_CHARS: Final = 2_048

# Lifetimes and timings
UPLOAD_TTL_S: Final = 72 * 3600
RESULT_TTL_S: Final = 24 * 3600
CALLBACK_TIMEOUT_S: Final = 10
CALLBACK_RETRY_DELAYS_S: Final = (1, 2, 4)
# EvoLink's own CLI polls video tasks this often; each read makes EvoLink ask upstream.
SERVICE_POLL_INTERVAL_S: Final = 8

# Task states
TASK_STATUSES: Final = ("pending", "processing", "completed", "failed", "cancelled")
TERMINAL_STATUSES: Final = ("completed", "failed", "cancelled")
ACTIVE_STATUSES: Final = ("pending", "processing")  # still being made
UNBILLED_STATUSES: Final = ("failed", "cancelled")  # ended without a result: not charged

# Hosts
DEFAULT_BASE_URL: Final = "https://api.evolink.ai"
DEFAULT_FILES_URL: Final = "https://files-api.evolink.ai"

# Money: integer units of 1/10,000 credit, and EvoLink's public prices in them (evolink-api.md,
# "Billing" and section 5). A per-second rate is charged on billed milliseconds, rounded half-up.
UNITS_PER_CREDIT: Final = 10_000
PRICE_UNITS_PER_SECOND: Final = 47_600  # 4.76 credits a billed second, 720p
FLASH_PRICE_UNITS_PER_SECOND: Final = 23_800  # 2.38 credits a billed second, 720p, with audio
HD_MULTIPLIER: Final = Fraction(167, 100)  # 1080p costs 1.67x
FLASH_NO_AUDIO_MULTIPLIER: Final = Fraction(1, 2)  # flash without audio: half
MINIMUM_CHARGE_UNITS: Final = 90_000  # 9 credits per task, both models
UNITS_PER_USD: Final = 680_000  # 68 credits a dollar

# A task id as EvoLink makes them ("task-unified-1757169743-7cvnl5zw"): anything else (a typo,
# a word, a line break) is refused before a request is built from it.
TASK_ID_RE: Final = re.compile(r"^task-[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")

# No video stream is wider or taller than this (AV1's highest level stops at 16384; H.264 and
# HEVC sooner): a header that claims more is damaged, and trusting it would squash the picture.
MAX_SOURCE_SIDE_PX: Final = 16_384

# Idempotency-Key header sent by EvoLink's own clients (not promised by the API docs).
IDEMPOTENCY_KEY_RE: Final = re.compile(r"^[A-Za-z0-9._-]{16,96}$")

# Account and task endpoints of EvoLink's own clients (section 4 of the facts): optional, so an
# answer with one of these statuses means "not offered here", never "stop".
OPTIONAL_ENDPOINT_ABSENT: Final = (403, 404, 405, 501)
MAX_BATCH_TASK_IDS: Final = 50  # POST /v1/tasks/batch takes at most this many ids per call
MAX_TASKS_PAGE_SIZE: Final = 100

# Files API quota for the default group. The docs say 2,000; one EvoLink client says 100.
DEFAULT_FILE_QUOTA: Final = 2_000

# What prep aims for beyond the API's verdict (a clean reference, not just an accepted one).
MAX_CLEAN_WIDTH: Final = 1920
MAX_CLEAN_HEIGHT: Final = 1080


# --- every reference-video model, as one table each (core/modelspec.py has the shape) ---------
# wan2.6 and flash: sections 1 and 5 of the facts; wan2.7, wan3.0 and prime: section 7 (pages and the
# published pricing rules, effective 2026-10-08). The numbers of the two wan2.6 tables are the ones above.

_VIDEO_FORMATS = CONTAINERS
_IMAGE_FORMATS = ("jpeg", "jpg", "png", "bmp", "webp")
_AUDIO_FORMATS = ("wav", "mp3")
_MB = 1_000_000
_ASPECT_1_8 = (Fraction(1, 8), Fraction(8, 1))
_NAMES = {"video": "Video", "image": "Image", "audio": "Audio"}
_ASPECTS_ADAPTIVE = ("adaptive", *ASPECT_RATIOS)
_WAN26_VIDEOS = MediaLimits(count=Span(MIN_CLIPS, MAX_CLIPS),
                            duration_ms=Span(MIN_CLIP_MS, MAX_CLIP_MS),
                            max_bytes=MAX_FILE_BYTES, formats=_VIDEO_FORMATS)
_WAN30_VIDEOS = MediaLimits(count=Span(0, 5), duration_ms=Span(1_000, 15_000), total_ms=15_000,
                            max_bytes=MAX_FILE_BYTES, formats=_VIDEO_FORMATS,
                            side_px=Span(240, 4096), aspect=_ASPECT_1_8)
_REFERENCE_IMAGES = MediaLimits(count=Span(0, 10), max_bytes=20 * _MB, formats=_IMAGE_FORMATS,
                                side_px=Span(240, 8000), aspect=_ASPECT_1_8)
_WAN30_AUDIO = MediaLimits(count=Span(0, 5), duration_ms=Span(1_000, 15_000), total_ms=15_000,
                           max_bytes=15 * _MB, formats=_AUDIO_FORMATS)


def _wan26_billing(rate: int, rule_id: str, no_audio: Fraction | None = None) -> Billing:
    return Billing(units_per_second=rate, minimum_units=MINIMUM_CHARGE_UNITS,
                   quality_multipliers={"720p": Fraction(1), "1080p": HD_MULTIPLIER},
                   input_rule="per_clip_cap", per_clip_cap_ms=INPUT_CAP_MS,
                   no_audio_multiplier=no_audio, rule_id=rule_id)


def _wan30(model_id: str, aliases: tuple[str, ...], summary: str, *, rate: int, minimum: int,
           multipliers: Mapping[str, Fraction], rule_id: str) -> ModelSpec:
    # wan3.0 and prime share a page word for word except the id and the prices.
    return ModelSpec(
        id=model_id, aliases=aliases, summary=summary,
        videos=_WAN30_VIDEOS, images=_REFERENCE_IMAGES, audio=_WAN30_AUDIO,
        clips_plus_output_max_ms=30_000,
        prompt_chars=20_000, prompt_required=False,
        durations_s=Span(2, 30), smart_duration=True,
        qualities=("480p", "720p", "1080p"), aspect_ratios=_ASPECTS_ADAPTIVE,
        default_aspect_ratio="adaptive", seed=Span(0, 2_147_483_647), generate_audio_default=True,
        reference_names=_NAMES, bad_request_code="invalid_parameter", one_character=True,
        billing=Billing(units_per_second=rate, quality_multipliers=multipliers, minimum_units=minimum,
                        input_rule="full", smart_hold_s=30, rule_id=rule_id),
    )


WAN26 = ModelSpec(
    id=MODEL, aliases=("2.6", "wan2.6"), legacy=True,
    summary="wan2.6 standard: 1-3 clips of 2-30 s, input billed up to 5 s",
    videos=_WAN26_VIDEOS, prompt_chars=MAX_PROMPT_CHARS,
    durations_s=Span(MIN_OUTPUT_S, MAX_OUTPUT_S), shot_types=SHOT_TYPES,
    qualities=QUALITIES, aspect_ratios=ASPECT_RATIOS,
    reference_names={"video": "character"},
    billing=_wan26_billing(PRICE_UNITS_PER_SECOND, "wan2.6"),
)

WAN26_FLASH = ModelSpec(
    id=FLASH_MODEL, aliases=("flash", "2.6-flash", "wan2.6-flash"), legacy=True,
    summary="wan2.6 flash: as wan2.6 at half the rate, half again without audio",
    videos=_WAN26_VIDEOS, prompt_chars=MAX_PROMPT_CHARS,
    durations_s=Span(MIN_OUTPUT_S, MAX_OUTPUT_S), shot_types=SHOT_TYPES,
    qualities=QUALITIES, aspect_ratios=ASPECT_RATIOS,
    generate_audio_default=DEFAULT_GENERATE_AUDIO, reference_names={"video": "character"},
    billing=_wan26_billing(FLASH_PRICE_UNITS_PER_SECOND, "wan2.6-flash", FLASH_NO_AUDIO_MULTIPLIER),
)

WAN27 = ModelSpec(
    id="wan2.7-reference-video", aliases=("2.7", "wan2.7"),
    summary="wan2.7: up to 5 videos and images, voices bound to references, input billed up to 5 s",
    videos=MediaLimits(count=Span(0, 5), duration_ms=Span(1_000, 30_000),
                       max_bytes=MAX_FILE_BYTES, formats=_VIDEO_FORMATS,
                       side_px=Span(240, 4096), aspect=_ASPECT_1_8),
    images=replace(_REFERENCE_IMAGES, count=Span(0, 5)),  # images + videos 1-5 together
    voices=MediaLimits(count=Span(0, 5), duration_ms=Span(1_000, 10_000), max_bytes=15 * _MB,
                       formats=_AUDIO_FORMATS),
    references=Span(1, 5), output_max_with_videos_s=10,
    prompt_chars=5_000, negative_prompt_chars=500,
    durations_s=Span(2, 15), qualities=QUALITIES, aspect_ratios=ASPECT_RATIOS,
    seed=Span(1, 2_147_483_647), prompt_extend_default=False,
    reference_names=_NAMES, one_character=True,
    # The pricing rule caps the TOTAL of the clips at 5 s (the spec leaves per-clip unconfirmed).
    billing=Billing(units_per_second=54_400,
                    quality_multipliers={"720p": Fraction(1), "1080p": Fraction(167, 100)},
                    minimum_units=108_800, input_rule="total_cap", total_cap_ms=5_000, rule_id="1352"),
)

WAN30 = _wan30("wan3.0-reference-video", ("3.0", "wan3.0"),
               "wan3.0: videos, images and audio; every input second billed", rate=25_500,
               minimum=51_000, rule_id="1362",
               multipliers={"480p": Fraction(1), "720p": Fraction(2), "1080p": Fraction(4)})

WAN30_PRIME = _wan30("wan3.0-prime-reference-video", ("3.0-prime", "prime", "wan3.0-prime"),
                     "wan3.0 prime: as wan3.0 at a higher rate", rate=39_304, minimum=78_608,
                     rule_id="1365",
                     multipliers={"480p": Fraction(1), "720p": Fraction(206, 100),
                                  "1080p": Fraction(412, 100)})

MODEL_SPECS: Final[tuple[ModelSpec, ...]] = (WAN26, WAN26_FLASH, WAN27, WAN30, WAN30_PRIME)

# Where the spec leaves a fact open, the reading prep takes.
MODEL_ASSUMPTIONS: Final = (
    "wan2.7 caps the total of its reference seconds at 5 s (the pricing rule), not each clip",
    "fractional reference seconds are billed exactly, as the pricing rules compute them",
    "wan2.7, wan3.0 and prime are not sent model_params.shot_type (their pages do not list it)",
    "a wan3.0 smart-duration hold prices 30 s of output plus the reference seconds",
    "wan3.0 and prime, like wan2.7, want one character per reference (their pages say so of images)",
)

