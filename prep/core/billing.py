"""Exact pre-flight billing for a wan2.6-reference-video (or -flash) job. Pure: no I/O, no clock.

Billed seconds = input seconds + output seconds, for both models. Input: each clip truncated to its cap, which
depends on the number of clips (rules.INPUT_CAP_MS: 5 s for one, 2.5 s each for two, 1.65 s each
for three), then summed. Time is integer milliseconds; money is integer units of
1/10,000 credit, rounded half-up once, at the end, exactly as EvoLink's price rules describe.

Each model has its own rate and minimum charge (`PriceTable.rate(model)`); the flash model's rate
is halved when the output has no audio (`generate_audio: false`). Its minimum can bind: a short
job without audio costs less than the minimum by the rate.

wan2.7, wan3.0 and prime are billed from their tables (`models.bill`): wan2.7 caps the clips' total
at 5 s, wan3.0 bills every reference second, and a wan3.0 smart duration (-1) holds 30 s of output
until the task settles; the estimate is then the hold, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field, replace
from fractions import Fraction
from typing import Any

from prep.core import models, rules
from prep.core.prices import (
    DEFAULT_PRICES,
    UNITS_PER_CREDIT,
    ModelRate,
    PriceTable,
    credits_number,
    credits_text,
    parse_credits,
)
from prep.core.record import record
from prep.core.request import (
    RequestOptions,
    audio_on,
    check_clip_count,
    check_generate_audio,
    check_model,
    check_options,
)
from prep.core.timecode import format_ms, round_half_up
from prep.errors import UsageError

__all__ = [
    "DEFAULT_PRICES",
    "UNITS_PER_CREDIT",
    "Alternative",
    "ClipBill",
    "Estimate",
    "ModelRate",
    "PriceTable",
    "bill_request",
    "credits_number",
    "credits_text",
    "estimate_durations",
    "input_billed_ms",
    "parse_credits",
    "price_units",
]


def input_billed_ms(durations_ms: Sequence[int]) -> int:
    """Billed input milliseconds of a job's clips: each truncated to its cap, then summed.

    UsageError when the API would not take that many clips."""
    check_clip_count(len(durations_ms))
    cap = rules.INPUT_CAP_MS[len(durations_ms)]
    return sum(min(d, cap) for d in durations_ms)


def price_units(billed_ms: int, quality: str, prices: PriceTable = DEFAULT_PRICES, *,
                model: str = rules.DEFAULT_MODEL, audio: bool = True) -> int:
    """Credits (in units) for `billed_ms` of `model` at `quality` (with or without audio): one
    half-up rounding, then the model's minimum charge."""
    rate = prices.rate(model)
    return max(round_half_up(rate.exact_units(billed_ms, quality, audio)), rate.minimum_units)


@record(frozen=True, slots=True, kw_only=True)
class Alternative:
    """What the same job would cost with another model (or audio setting)."""

    model: str
    generate_audio: bool | None
    credits_units: int

    @property
    def label(self) -> str:
        """The model, and whether with audio where that is a choice."""
        if not _has_audio_switch(self.model):
            return self.model
        return f"{self.model} ({'with' if audio_on(self.model, self.generate_audio) else 'no'} audio)"


@record(frozen=True, slots=True, kw_only=True)
class ClipBill:
    """One clip of a job: the duration it will have when prepared, and what of it is billed."""

    label: str
    duration_ms: int
    billed_ms: int
    source_duration_ms: int | None = None
    start_ms: int = 0
    notes: tuple[str, ...] = ()


@record(frozen=True, slots=True, kw_only=True)
class Estimate:
    """The bill of one job, before anything is uploaded."""

    clips: tuple[ClipBill, ...]
    output_s: int
    quality: str
    credits_units: int
    minimum_applied: bool
    prices: PriceTable = DEFAULT_PRICES
    notes: tuple[str, ...] = field(default=())
    model: str = rules.DEFAULT_MODEL
    generate_audio: bool | None = None  # flash, wan3.0, prime; None: the API's default (on)

    @property
    def smart_hold_s(self) -> int | None:
        """With a smart duration (-1): the output seconds the service holds until it settles."""
        if self.output_s != -1:
            return None
        return models.model_spec(self.model).billing.smart_hold_s

    @property
    def audio(self) -> bool:
        """Whether the output has audio (what the flash price depends on)."""
        return audio_on(self.model, self.generate_audio)

    @property
    def input_billed_ms(self) -> int:
        """Sum of the clips' billed milliseconds."""
        return sum(c.billed_ms for c in self.clips)

    @property
    def output_billed_ms(self) -> int:
        """Requested output seconds, in milliseconds (a smart duration: the hold's)."""
        hold = self.smart_hold_s
        return hold * 1000 if hold is not None else self.output_s * 1000

    @property
    def total_billed_ms(self) -> int:
        """Input plus output milliseconds."""
        return self.input_billed_ms + self.output_billed_ms

    @property
    def credits(self) -> Fraction:
        """Exact credits."""
        return Fraction(self.credits_units, UNITS_PER_CREDIT)

    def credits_at(self, quality: str) -> int:
        """Units this same job would cost at another quality (same model and audio)."""
        return price_units(self.total_billed_ms, quality, self.prices, model=self.model,
                           audio=self.audio)

    def credits_with(self, model: str, generate_audio: bool | None = None) -> int:
        """Units this same job (same clips, output and quality) would cost with `model`."""
        return price_units(self.total_billed_ms, self.quality, self.prices, model=model,
                           audio=audio_on(model, generate_audio))

    @property
    def alternatives(self) -> tuple[Alternative, ...]:
        """The same job with the other model: the flash one with and without audio for a standard
        job; the standard one for a flash job (and flash with the other audio setting)."""
        options: list[tuple[str, bool | None]] = []
        if self.model == rules.MODEL:
            options = [(rules.FLASH_MODEL, True), (rules.FLASH_MODEL, False)]
        elif self.model == rules.FLASH_MODEL:
            options = [(rules.MODEL, None), (self.model, not self.audio)]
        # The newer models bill differently from the same clips: `prep estimate --compare`.
        return tuple(Alternative(model=m, generate_audio=a, credits_units=self.credits_with(m, a))
                     for m, a in options)

    @property
    def usd(self) -> Fraction:
        """Approximate US dollars at the table's exchange rate."""
        return Fraction(self.credits_units, self.prices.units_per_usd)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `prep estimate --json` (contract: extend, never rename)."""
        return {
            "clips": [
                {
                    "path": c.label,
                    "duration_s": c.duration_ms / 1000,
                    "billed_s": c.billed_ms / 1000,
                    "source_duration_s": None if c.source_duration_ms is None
                    else c.source_duration_ms / 1000,
                    "start_s": c.start_ms / 1000,
                    "notes": list(c.notes),
                }
                for c in self.clips
            ],
            "input_billed_s": self.input_billed_ms / 1000,
            "output_billed_s": self.output_billed_ms / 1000,
            "total_billed_s": self.total_billed_ms / 1000,
            "quality": self.quality,
            "credits": float(self.credits),
            "credits_units": self.credits_units,
            "credits_by_quality": {
                q: float(Fraction(self.credits_at(q), UNITS_PER_CREDIT))
                for q in models.model_spec(self.model).qualities
            },
            "usd": round(float(self.usd), 4),
            "minimum_applied": self.minimum_applied,
            "price_source": self.prices.label,
            "price_per_second": float(Fraction(self.prices.rate(self.model).units_per_second,
                                               UNITS_PER_CREDIT)),
            "notes": list(self.notes),
            "model": self.model,
            "generate_audio": self.audio if _has_audio_switch(self.model) else None,
            "smart_duration_hold_s": self.smart_hold_s,
            "other_models": [
                {"model": a.model, "generate_audio": a.generate_audio
                 if _has_audio_switch(a.model) else None,
                 "credits": float(Fraction(a.credits_units, UNITS_PER_CREDIT)),
                 "credits_units": a.credits_units,
                 "difference_units": a.credits_units - self.credits_units}
                for a in self.alternatives
            ],
        }


def estimate_durations(
    clips: Sequence[tuple[str, int]] | Sequence[ClipBill],
    *,
    output_s: int = rules.DEFAULT_OUTPUT_S,
    quality: str = rules.DEFAULT_QUALITY,
    prices: PriceTable = DEFAULT_PRICES,
    model: str = rules.DEFAULT_MODEL,
    generate_audio: bool | None = None,
) -> Estimate:
    """Bill a job from its clips' planned durations. `clips` are (label, duration_ms) or ClipBills.

    `generate_audio` is the audio switch of flash, wan3.0 and prime (None: the model's default, on).
    `model` may be an alias. On wan2.7, wan3.0 and prime a clip longer than the model takes is
    billed as prep would prepare it (cut to the model's longest, with a note), and every other
    limit of the model's table (counts, totals, reference + output caps) is a UsageError."""
    model = check_model(model)
    check_options(duration_s=output_s, quality=quality, model=model, generate_audio=generate_audio)
    count = len(clips)
    check_clip_count(count, model)
    bases = [clip if isinstance(clip, ClipBill) else ClipBill(label=clip[0], duration_ms=clip[1],
                                                               billed_ms=0) for clip in clips]
    checked = check_generate_audio(model, generate_audio) if generate_audio is not None else None
    if model not in (rules.MODEL, rules.FLASH_MODEL):
        return _estimate_from_table(bases, output_s=output_s, quality=quality, prices=prices,
                                    model=model, generate_audio=checked)
    cap = rules.INPUT_CAP_MS[count]
    bills = []
    for base in bases:
        billed = min(base.duration_ms, cap)
        bills.append(replace(base, billed_ms=billed, notes=base.notes + _clip_notes(base, cap, count)))
    total_ms = sum(b.billed_ms for b in bills) + output_s * 1000
    rate = prices.rate(model)
    audio = audio_on(model, generate_audio)
    exact_units = round_half_up(rate.exact_units(total_ms, quality, audio))
    units = max(exact_units, rate.minimum_units)
    notes = list(_job_notes(count, cap, quality, rate, audio))
    if units > exact_units:
        notes.append(
            f"the minimum charge of {credits_text(rate.minimum_units)} credits per task applies "
            f"(by the rate it would be {credits_text(exact_units)})"
        )
    return Estimate(
        clips=tuple(bills), output_s=output_s, quality=quality, credits_units=units,
        minimum_applied=units > exact_units, prices=prices, notes=tuple(notes), model=model,
        generate_audio=checked,
    )


def bill_request(clips: Sequence[ClipBill], request: RequestOptions,
                 prices: PriceTable = DEFAULT_PRICES) -> Estimate:
    """The bill of a job's clips under its request: the one way a job is priced (`prep estimate`,
    the studio's bill, every job `prep generate` and `prep batch` plan)."""
    return estimate_durations(clips, output_s=request.duration_s, quality=request.quality,
                              prices=prices, model=request.model,
                              generate_audio=request.generate_audio)


def _has_audio_switch(model: str) -> bool:
    return models.model_spec(model).generate_audio_default is not None


def _estimate_from_table(bases: Sequence[ClipBill], *, output_s: int, quality: str,
                         prices: PriceTable, model: str, generate_audio: bool | None) -> Estimate:
    """The bill of a wan2.7, wan3.0 or prime job: `models.bill` over the clips as prep would
    prepare them for the model."""
    spec = models.model_spec(model)
    longest = spec.clip_ms.high
    cut = []
    for base in bases:
        if base.duration_ms > longest:
            note = (f"{base.label} is {format_ms(base.duration_ms)} s; {spec.id} takes at most "
                    f"{format_ms(longest)} s a clip, so prep uses (and bills) its first "
                    f"{format_ms(longest)} s")
            base = replace(base, duration_ms=longest, notes=(*base.notes, note))
        cut.append(base)
    problems = models.reference_problems(spec, videos_ms=[b.duration_ms for b in cut],
                                         output_s=output_s)
    if problems:
        raise UsageError("; ".join(problems),
                         hint="trim the clips (PATH@START-END), shorten --duration, or compare the "
                              "models with `prep estimate --compare`")
    audio = audio_on(spec, generate_audio)
    bill = models.bill(spec, [b.duration_ms for b in cut], output_s=output_s, quality=quality,
                       audio=audio, units_per_second=prices.rate(spec.id).units_per_second)
    rule = spec.billing
    bills = []
    for base, billed in zip(cut, bill.input_ms, strict=True):
        notes: tuple[str, ...] = ()
        if billed < base.duration_ms:
            notes = (f"{base.label} is {format_ms(base.duration_ms)} s; billed {format_ms(billed)} s "
                     f"({spec.id} bills the clips' first {format_ms(rule.total_cap_ms or 0)} s in all)",)
        bills.append(replace(base, billed_ms=billed, notes=base.notes + notes))
    notes_ = []
    if rule.input_rule == "full":
        notes_.append(f"{spec.id} bills every reference second: each second trimmed saves "
                      f"{credits_text(round_half_up(prices.rate(model).exact_units(1000, quality, audio)))}"
                      " credits")
    multiplier = rule.quality_multipliers[quality]
    if multiplier != 1:
        notes_.append(f"{quality} bills {float(multiplier):g}x the base price per second")
    if not audio and rule.no_audio_multiplier is not None:
        notes_.append(f"without audio {spec.id} bills {float(rule.no_audio_multiplier):g}x its price "
                      "per second")
    if output_s == -1:
        notes_.append(f"duration -1 lets {spec.id} choose the length: the service holds "
                      f"{rule.smart_hold_s} s of output ({credits_text(bill.hold_units)} credits) "
                      "until the task settles, then charges the seconds made")
    if bill.minimum_applied:
        notes_.append(f"the minimum charge of {credits_text(rule.minimum_units)} credits per task "
                      "applies")
    return Estimate(clips=tuple(bills), output_s=output_s, quality=quality,
                    credits_units=bill.hold_units, minimum_applied=bill.minimum_applied,
                    prices=prices, notes=tuple(notes_), model=model, generate_audio=generate_audio)


def _clip_notes(clip: ClipBill, cap: int, count: int) -> tuple[str, ...]:
    if cap < rules.MIN_CLIP_MS:
        return ()  # one note for the whole job says it
    duration, cap_text = format_ms(clip.duration_ms), format_ms(cap)
    if clip.duration_ms > cap:
        return (
            f"{clip.label} is {duration} s; billed {cap_text} s; trimming it to {cap_text} s "
            "would not change the bill",
        )
    return (f"{clip.label} is {duration} s and billed in full; with {count} "
            f"clip{'s' if count > 1 else ''} each is billed up to {cap_text} s",)


def _job_notes(count: int, cap: int, quality: str, rate: ModelRate, audio: bool) -> list[str]:
    notes = []
    if cap < rules.MIN_CLIP_MS:
        notes.append(
            f"with {count} clips no trim can lower the input bill: every clip is at least "
            f"{format_ms(rules.MIN_CLIP_MS)} s and each is billed {format_ms(cap)} s"
        )
    if quality == "1080p":
        notes.append(f"1080p bills {float(rate.hd_multiplier):g}x the 720p price per second")
    if not audio and rate.no_audio_multiplier is not None:
        notes.append(f"without audio {rate.model} bills {float(rate.no_audio_multiplier):g}x its "
                     "price per second")
    return notes
