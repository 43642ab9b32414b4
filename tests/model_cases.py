"""Cases for the newer models (wan2.7, wan3.0, prime) that the client's tables (prep.core.models)
and the sandbox's own (prep.sandbox.models) must both get right: see test_models_agree.py.

Expected numbers are worked out by hand from evolink-api.md section 7, not by either side. A
block per model; a new model adds a block here and to its two tables, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MODEL_BILLS", "MODEL_REFUSALS", "ModelBill", "ModelRefusal"]

W27, W30, PRIME = "wan2.7-reference-video", "wan3.0-reference-video", "wan3.0-prime-reference-video"


@dataclass(frozen=True, slots=True)
class ModelBill:
    id: str
    model: str
    videos_ms: tuple[int, ...]
    output_s: int  # -1: smart duration (the hold is what is priced)
    quality: str
    units: int


@dataclass(frozen=True, slots=True)
class ModelRefusal:
    """A request both sides must refuse; `words` appear in the client's problem."""

    id: str
    model: str
    videos_ms: tuple[int, ...]
    output_s: int
    words: tuple[str, ...]


MODEL_BILLS = [
    # wan2.7: the reference seconds together capped at 5 s; 1080p x1.67; 5.44 credits a second.
    ModelBill("w27-one-8s-720p", W27, (8_000,), 5, "720p", 544_000),
    ModelBill("w27-4s-6s-1080p", W27, (4_000, 6_000), 5, "1080p", 908_480),
    ModelBill("w27-2s-8s-total-cap", W27, (2_000, 8_000), 5, "720p", 544_000),
    ModelBill("w27-short-under-cap", W27, (1_500,), 2, "720p", 190_400),  # 3.5 s x 54,400
    ModelBill("w27-no-video-15s", W27, (), 15, "1080p", 1_362_720),  # 15 x 1.67 x 54,400
    # wan3.0: every reference second; 480p x1, 720p x2, 1080p x4; 2.55 credits a second.
    ModelBill("w30-one-8s-720p", W30, (8_000,), 5, "720p", 663_000),
    ModelBill("w30-4s-6s-1080p", W30, (4_000, 6_000), 5, "1080p", 1_530_000),
    ModelBill("w30-1.2s-480p", W30, (1_200,), 2, "480p", 81_600),
    ModelBill("w30-smart-hold", W30, (8_000,), -1, "720p", 1_938_000),
    ModelBill("w30-15s-15s", W30, (15_000,), 15, "720p", 1_530_000),  # 30 x 2 x 25,500
    ModelBill("w30-no-reference-minimum", W30, (), 2, "480p", 51_000),
    # prime: as wan3.0 at 3.9304 credits, 720p x2.06, 1080p x4.12.
    ModelBill("prime-one-8s-720p", PRIME, (8_000,), 5, "720p", 1_052_561),
    ModelBill("prime-4s-6s-1080p", PRIME, (4_000, 6_000), 5, "1080p", 2_428_987),
    ModelBill("prime-smart-hold", PRIME, (8_000,), -1, "720p", 3_076_717),
    ModelBill("prime-480p-3s", PRIME, (1_000,), 2, "480p", 117_912),  # 3 x 39,304
]

MODEL_REFUSALS = [
    ModelRefusal("w27-output-over-10-with-video", W27, (3_000,), 11, ("at most 10 s",)),
    ModelRefusal("w27-clip-over-30", W27, (31_000,), 5, ("1-30 s",)),
    ModelRefusal("w27-six-videos", W27, (2_000,) * 6, 5, ("0-5 video",)),
    ModelRefusal("w30-clip-over-15", W30, (16_000,), 5, ("1-15 s",)),
    ModelRefusal("w30-total-over-15", W30, (8_000, 8_000), 5, ("total 16 s",)),
    ModelRefusal("w30-clips-plus-output", W30, (10_000,), 21, ("come to 31 s",)),
    ModelRefusal("w30-clip-under-1", W30, (800,), 5, ("1-15 s",)),
    ModelRefusal("prime-clips-plus-output", PRIME, (12_000,), 20, ("come to 32 s",)),
]
