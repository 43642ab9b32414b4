"""Pre-flight: clip specs -> probed, windowed clips -> the bill. The library's `estimate`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prep.core import billing, rules
from prep.core.billing import DEFAULT_PRICES, ClipBill, Estimate, PriceTable
from prep.core.clipspec import ClipSpec
from prep.core.request import check_clip_count, check_options
from prep.core.timecode import format_ms
from prep.core.window import Extend, PlannedClip, choose_window
from prep.errors import PrepError, UsageError
from prep.media.clips import expand_paths, parse_clip_spec
from prep.media.probe import probe

__all__ = ["estimate", "estimate_planned", "plan_clips"]


def _specs(clips: Sequence[ClipSpec | str | Path]) -> list[ClipSpec]:
    specs = [c if isinstance(c, ClipSpec) else parse_clip_spec(str(c)) for c in clips]
    return expand_paths(specs)


def plan_clips(
    clips: Sequence[ClipSpec | str | Path], *, extend: Extend | None = None
) -> tuple[list[PlannedClip], list[PrepError]]:
    """Probe and window every clip; errors come back per clip so the others still answer."""
    planned: list[PlannedClip] = []
    errors: list[PrepError] = []
    for spec in _specs(clips):
        try:
            info = probe(spec.path)
            planned.append(PlannedClip(spec, info, choose_window(info, spec.window,
                                                                 label=str(spec), extend=extend)))
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
    check_options(duration_s=output_s, quality=quality, model=model, generate_audio=generate_audio)
    planned, errors = plan_clips(clips, extend=extend)
    if errors:
        raise errors[0]
    return estimate_planned(planned, seconds=seconds, output_s=output_s, quality=quality,
                            prices=prices, model=model, generate_audio=generate_audio)


def estimate_planned(
    planned: Sequence[PlannedClip],
    *,
    seconds: Sequence[int] = (),
    output_s: int = rules.DEFAULT_OUTPUT_S,
    quality: str = rules.DEFAULT_QUALITY,
    prices: PriceTable = DEFAULT_PRICES,
    model: str = rules.DEFAULT_MODEL,
    generate_audio: bool | None = None,
) -> Estimate:
    """The bill of planned clips plus bare durations (ms): what `prep estimate` prints."""
    check_options(duration_s=output_s, quality=quality, model=model, generate_audio=generate_audio)
    check_clip_count(len(planned) + len(seconds))
    for ms in seconds:
        if not ms >= rules.MIN_CLIP_MS:
            raise UsageError(f"--seconds {format_ms(ms)}: a reference clip must be at least "
                             f"{format_ms(rules.MIN_CLIP_MS)} s long")
    bills = [p.bill() for p in planned]
    bills += [ClipBill(label=f"{format_ms(ms)} s", duration_ms=min(ms, rules.MAX_CLIP_MS),
                       billed_ms=0) for ms in seconds]
    return billing.estimate_durations(bills, output_s=output_s, quality=quality, prices=prices,
                                      model=model, generate_audio=generate_audio)
