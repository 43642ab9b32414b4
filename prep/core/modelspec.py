"""The shape of a model's table: what it takes, its request fields, and how it bills.

Pure data types, no values: the tables themselves are in rules.py (every number of the API is
written there once), and the functions that read them are in models.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from fractions import Fraction
from typing import Literal

from prep.core.record import record

__all__ = ["Billing", "InputRule", "MediaLimits", "ModelSpec", "Span"]


@record(frozen=True, slots=True)
class Span:
    """An inclusive integer range."""

    low: int
    high: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def text(self, unit: str = "") -> str:
        """'2-30 s' style, for messages."""
        return f"{self.low}-{self.high}{unit}" if self.low != self.high else f"{self.low}{unit}"


@record(frozen=True, slots=True, kw_only=True)
class MediaLimits:
    """What one reference of a kind (video, image or audio) may be."""

    count: Span
    duration_ms: Span | None = None  # videos and audio
    total_ms: int | None = None  # all references of the kind together
    max_bytes: int | None = None
    formats: tuple[str, ...] = ()
    side_px: Span | None = None  # width and height, each
    aspect: tuple[Fraction, Fraction] | None = None  # widest portrait .. widest landscape


InputRule = Literal["per_clip_cap", "total_cap", "full"]


@record(frozen=True, slots=True, kw_only=True)
class Billing:
    """How one model turns a request into credits.

    Billed ms = input ms + output ms, times the quality's multiplier (and the no-audio one where
    the model has it); units = max(half_up(billed s x rate), minimum), rounded once per task.
    """

    units_per_second: int
    quality_multipliers: Mapping[str, Fraction]
    minimum_units: int
    input_rule: InputRule
    # per_clip_cap: each clip truncated to the cap for the job's clip count (wan2.6).
    per_clip_cap_ms: Mapping[int, int] = field(default_factory=dict)
    # total_cap: the sum of the clips truncated to this (wan2.7); full: the sum, untruncated.
    total_cap_ms: int | None = None
    no_audio_multiplier: Fraction | None = None  # flash: half without audio
    # `duration: -1` holds this many output seconds until the task settles.
    smart_hold_s: int | None = None
    rule_id: str = ""


@record(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """One model's rules, as EvoLink publishes them."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    legacy: bool = False
    videos: MediaLimits
    images: MediaLimits | None = None
    audio: MediaLimits | None = None  # standalone audio references ("Audio N")
    voices: MediaLimits | None = None  # voice clips bound to a reference (model_params.voice_bindings)
    references: Span | None = None  # videos + images together, where the model counts them so
    output_max_with_videos_s: int | None = None  # wan2.7: output <= 10 s when a video is given
    clips_plus_output_max_ms: int | None = None  # wan3.0: reference seconds + output <= 30 s
    prompt_chars: int
    prompt_required: bool = True
    negative_prompt_chars: int | None = None  # None: the field is not taken
    durations_s: Span
    default_duration_s: int = 5
    smart_duration: bool = False  # `duration: -1` lets the model choose
    qualities: tuple[str, ...]
    default_quality: str = "720p"
    aspect_ratios: tuple[str, ...]
    default_aspect_ratio: str = "16:9"
    shot_types: tuple[str, ...] = ()  # empty: `model_params.shot_type` is not sent
    seed: Span | None = None
    prompt_extend_default: bool | None = None  # None: the field is not taken
    generate_audio_default: bool | None = None  # None: no switch (the output's sound is the model's)
    reference_names: Mapping[str, str] = field(default_factory=dict)  # kind -> "Video" ...
    bad_request_code: str = "invalid_request"
    one_character: bool = False  # the model asks for one character (subject) per reference
    billing: Billing

    @property
    def clip_ms(self) -> Span:
        """How long one reference clip may be: the window prep cuts a clip to for this model."""
        if self.videos.duration_ms is None:
            raise ValueError(f"{self.id}: the table gives no reference-clip durations")
        return self.videos.duration_ms

    @property
    def min_side_px(self) -> int:
        """The fewest pixels a side of a reference video may have (0: no such limit): prep scales a
        smaller clip up to it."""
        sides = self.videos.side_px
        return sides.low if sides is not None else 0

    def takes(self, request_field: str) -> bool:
        """Whether the model accepts an optional request field (by its JSON name)."""
        return {
            "negative_prompt": self.negative_prompt_chars is not None,
            "seed": self.seed is not None,
            "prompt_extend": self.prompt_extend_default is not None,
            "generate_audio": self.generate_audio_default is not None,
            "shot_type": bool(self.shot_types),
            "image_urls": self.images is not None,
            "audio_urls": self.audio is not None,
            "voice_bindings": self.voices is not None,
        }[request_field]

    def reference_name(self, kind: str, index: int) -> str:
        """How the prompt names the `index`-th (0-based) reference of a kind: 'Video 1'."""
        return f"{self.reference_names.get(kind, kind.title())} {index + 1}"
