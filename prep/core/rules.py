"""Every limit of EvoLink's wan2.6-reference-video API and its flash variant, in one place.

Source: docs/spec/evolink-api.md (restated from docs.evolink.ai) and EvoLink's published OpenAPI
document for the generation endpoint (docs/spec/). Times are integer milliseconds, sizes integer bytes.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Final

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
