"""Pre-flight: clip specs -> probed, windowed clips -> the bill. The library's `estimate`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prep.core import billing, models, rules
from prep.core.billing import DEFAULT_PRICES, ClipBill, Estimate, PriceTable
from prep.core.clipspec import ClipSpec
from prep.core.models import model_spec
from prep.core.modelspec import Span
from prep.core.request import RequestOptions
from prep.core.timecode import format_ms
from prep.core.window import DEFAULT_CLIP_MS, Extend, PlannedClip, choose_window
from prep.errors import PrepError, UsageError
from prep.media.clips import expand_paths, parse_clip_spec
from prep.media.probe import probe

__all__ = ["check_total", "compare_planned", "estimate", "estimate_planned", "plan_clips"]


def _specs(clips: Sequence[ClipSpec | str | Path]) -> list[ClipSpec]:
    specs = [c if isinstance(c, ClipSpec) else parse_clip_spec(str(c)) for c in clips]
    return expand_paths(specs)


def plan_clips(
    clips: Sequence[ClipSpec | str | Path], *, extend: Extend | None = None,
    clip_ms: Span = DEFAULT_CLIP_MS,
) -> tuple[list[PlannedClip], list[PrepError]]:
    """Probe and window every clip (to `clip_ms`, the chosen model's clip durations); errors
    come back per clip so the others still answer."""
    planned: list[PlannedClip] = []
    errors: list[PrepError] = []
    for spec in _specs(clips):
        try:
            info = probe(spec.path)
            planned.append(PlannedClip(spec, info, choose_window(
                info, spec.window, label=str(spec), extend=extend, clip_ms=clip_ms)))
        except PrepError as err:
            errors.append(err)
    return planned, errors


def estimate(
    clips: Sequence[ClipSpec | str | Path] = (),
    *,
    seconds: Sequence[int] = (),
    output_s: int = rules.DEFAULT_OUTPUT_S,
    quality: str = rules.DEFAULT_QUALITY,
    prices: PriceTable = DEFAULT_PRICES,
    extend: Extend | None = None,
    model: str = rules.DEFAULT_MODEL,
    generate_audio: bool | None = None,
) -> Estimate:
    """Bill a job from clip files (probed and planned) and/or bare durations in ms.

    Raises the first clip's MediaError if any clip cannot be used; `plan_clips` reports them all.
    """
    request = RequestOptions(duration_s=output_s, quality=quality, model=model,
                             generate_audio=generate_audio)
    planned, errors = plan_clips(clips, extend=extend, clip_ms=request.spec.clip_ms)
    if errors:
        raise errors[0]
    return estimate_planned(planned, request, seconds=seconds, prices=prices)


def estimate_planned(
    planned: Sequence[PlannedClip],
    request: RequestOptions,
    *,
    seconds: Sequence[int] = (),
    prices: PriceTable = DEFAULT_PRICES,
) -> Estimate:
    """The bill of planned clips plus bare durations (ms) under `request`: what `prep estimate`
    prints, priced by the same `billing.bill_request` every planned job is."""
    spec = request.spec
    shortest = spec.clip_ms.low
    for ms in seconds:
        if not ms >= shortest:
            raise UsageError(f"--seconds {format_ms(ms)}: a reference clip must be at least "
                             f"{format_ms(shortest)} s long")
    bills = [p.bill() for p in planned]
    # A bare duration is windowed as a clip would be: wan2.6's longest here, the newer models'
    # (with a note) by the bill itself.
    bills += [ClipBill(label=f"{format_ms(ms)} s", duration_ms=min(ms, rules.MAX_CLIP_MS)
                       if spec.legacy else ms, billed_ms=0) for ms in seconds]
    return billing.bill_request(bills, request, prices)


def compare_planned(
    planned: Sequence[PlannedClip],
    *,
    seconds: Sequence[int] = (),
    output_s: int = rules.DEFAULT_OUTPUT_S,
    quality: str = rules.DEFAULT_QUALITY,
    prices: PriceTable = DEFAULT_PRICES,
) -> dict[str, Any]:
    """The same clips and options priced on every model (flash, wan3.0 and prime with and without
    audio where it changes the price): `prep estimate --compare --json`.

    Each row says what prep would cut to fit the model and why a model refuses the job; every
    model is priced with `prices` (the user's overrides, else the model's table).
    """
    clips = [(p.bill().label, p.bill().duration_ms) for p in planned]
    clips += [(f"{format_ms(ms)} s", ms) for ms in seconds]
    if not clips:
        raise UsageError("give at least one clip to compare", hint="prep estimate --compare CLIPS")
    rows: list[dict[str, Any]] = []
    rates = {spec.id: prices.rate(spec.id).units_per_second for spec in models.MODELS}
    for row in models.compare([ms for _, ms in clips], output_s=output_s, quality=quality,
                              rates=rates):
        bill = row.bill
        units = None
        if bill is not None:
            units = bill.hold_units
            if row.model in rules.MODELS:  # wan2.6 and flash: the price table, with its overrides
                units = billing.price_units(bill.billed_ms, quality, prices, model=row.model,
                                            audio=bill.audio)
        rows.append({
            "model": row.model,
            "generate_audio": row.audio,
            "accepted": bill is not None,
            "credits": None if units is None else billing.credits_number(units),
            "credits_units": units,
            "billed_input_s": None if bill is None else sum(bill.input_ms) / 1000,
            "billed_output_s": None if bill is None else bill.output_ms / 1000,
            "minimum_applied": None if bill is None else bill.minimum_applied,
            "clips_s": [ms / 1000 for ms in row.clips_ms],
            "cuts": list(row.cuts),
            "problems": list(row.problems),
        })
    priced = [r for r in rows if r["credits_units"] is not None]
    cheapest = min(priced, key=lambda r: r["credits_units"]) if priced else None
    return {
        "clips": [{"path": label, "duration_s": ms / 1000} for label, ms in clips],
        "output_s": output_s,
        "quality": quality,
        "price_source": prices.label,
        "models": rows,
        # The cheapest row (model and audio setting), or None when every model refuses.
        "cheapest": None if cheapest is None else {"model": cheapest["model"],
                                                   "generate_audio": cheapest["generate_audio"]},
    }


def check_total(planned: Sequence[PlannedClip], model: str) -> None:
    """UsageError (exit 2) when the clips as planned pass the model's cap on their total (wan3.0:
    15 s), naming the total and how much to cut: said before anything is encoded."""
    spec = model_spec(model)
    cap = spec.videos.total_ms
    total = sum(p.window.duration_ms for p in planned)
    if cap is None or total <= cap:
        return
    raise UsageError(f"the clips come to {format_ms(total)} s as prepared; {spec.id} takes at most "
                     f"{format_ms(cap)} s of reference video in all: cut {format_ms(total - cap)} s",
                     hint="trim the clips (PATH@START-END) or prepare fewer at once")
