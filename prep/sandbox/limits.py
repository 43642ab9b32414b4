"""The numbers of EvoLink's API as the sandbox enforces them, written out on their own.

The sandbox keeps its own copy of every limit on purpose: it must not share the client's rules
(`prep.core`), so that a wrong limit on either side shows up as a disagreement in the shared case
tables (tests/request_cases.py, tests/billing_cases.py). Source: docs/spec/evolink-api.md.
Times are integer milliseconds or whole seconds (named so), sizes integer bytes.
"""

from __future__ import annotations

import re
from typing import Final

MODEL: Final = "wan2.6-reference-video"
# The cheaper variant: the same request plus a top-level `generate_audio` boolean.
FLASH_MODEL: Final = "wan2.6-reference-video-flash"
MODELS: Final = (MODEL, FLASH_MODEL)
# Every model the sandbox serves: the wan2.6 pair above and the newer ones of models.py.
SERVED_MODELS: Final = (*MODELS, "wan2.7-reference-video", "wan3.0-reference-video",
                        "wan3.0-prime-reference-video")
GENERATE_AUDIO_DEFAULT: Final = True

# video_urls: how many, which schemes, and what each referenced video must be.
URL_COUNT_MIN: Final = 1
URL_COUNT_MAX: Final = 3
URL_SCHEMES: Final = ("http", "https")
REFERENCE_MIN_MS: Final = 2_000
REFERENCE_MAX_MS: Final = 30_000
REFERENCE_MAX_BYTES: Final = 100_000_000  # "100MB", read the strict way
REFERENCE_CONTAINERS: Final = ("mp4", "mov")

# The other request fields.
PROMPT_MAX_CHARS: Final = 1_500
OUTPUT_MIN_S: Final = 2
OUTPUT_MAX_S: Final = 10
OUTPUT_DEFAULT_S: Final = 5
ASPECT_RATIOS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4")
ASPECT_RATIO_DEFAULT: Final = "16:9"
QUALITIES: Final = ("720p", "1080p")
QUALITY_DEFAULT: Final = "720p"
SHOT_TYPES: Final = ("single", "multi")
SHOT_TYPE_DEFAULT: Final = "single"
CALLBACK_URL_MAX_CHARS: Final = 2_048

# Billing: what of each reference is billed, by how many references the task has.
BILLED_INPUT_CAP_MS: Final[dict[int, int]] = {1: 5_000, 2: 2_500, 3: 1_650}

# Lifetimes, callbacks, file quota.
UPLOAD_TTL_S: Final = 72 * 3600
RESULT_TTL_S: Final = 24 * 3600
CALLBACK_TIMEOUT_S: Final = 10
CALLBACK_RETRY_DELAYS_S: Final = (1, 2, 4)
FILE_QUOTA_DEFAULT: Final = 2_000

TERMINAL_STATUSES: Final = ("completed", "failed", "cancelled")
# The codes a failed task's `error` carries, in EvoLink's vocabulary (the task error codes its
# clients know), with the error type each belongs to and a default message.
TASK_ERRORS: Final[dict[str, tuple[str, str]]] = {
    "content_policy_violation": ("invalid_request_error",
                                 "The prompt or a reference video was blocked by content review"),
    "invalid_parameters": ("invalid_request_error",
                           "The model could not use these parameters with these references"),
    "generation_failed_no_content": ("api_error", "The model produced no output"),
    "generation_timeout": ("api_error", "Generation timed out"),
    "resource_exhausted": ("api_error", "Provider capacity was temporarily exhausted"),
    "service_error": ("api_error", "Internal service error"),
    "service_unavailable": ("api_error", "The service was temporarily unavailable"),
}
TASK_STATUSES: Final = ("pending", "processing", "completed", "failed", "cancelled")

# Account endpoints as EvoLink's own clients use them (spec section 4).
TASK_BATCH_MAX: Final = 50
PAGE_SIZE_DEFAULT: Final = 20
PAGE_SIZE_MAX: Final = 100

# Task ids as EvoLink writes them; anything else is 400 invalid_task_id.
TASK_ID_PATTERN: Final = r"task-unified-\d{10}-[a-z0-9]{8}"
TASK_ID_RE: Final = re.compile(TASK_ID_PATTERN)
# The Idempotency-Key header EvoLink's own clients send.
IDEMPOTENCY_KEY_PATTERN: Final = r"[A-Za-z0-9._-]{16,96}"
IDEMPOTENCY_KEY_RE: Final = re.compile(IDEMPOTENCY_KEY_PATTERN)
