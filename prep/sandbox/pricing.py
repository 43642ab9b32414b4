"""What a task costs, as the sandbox works it out: its own arithmetic, not the client's.

The rule (docs/spec/evolink-api.md): billed time is the references' time, each cut to 5 s (one
reference), 2.5 s (two) or 1.65 s (three), plus the output seconds. Money is counted in whole
1/10,000-credit units: the billed milliseconds times the per-second rate, times the 1080p
multiplier (and, for the flash model without audio, times one half), rounded half-up to a unit
once, and never below the minimum charge of a task. Each model has its own tariff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from . import limits

__all__ = ["DEFAULT_PRICES", "FLASH_PRICES", "UNITS_PER_CREDIT", "Charge", "Prices", "charge",
           "input_ms"]

UNITS_PER_CREDIT = 10_000
# Guards against absurd configured prices (a credit per ms is already far beyond any real tariff).
_MAX_UNITS_PER_SECOND = 10_000_000
_MAX_MULTIPLIER = Fraction(100)


@dataclass(frozen=True, slots=True, kw_only=True)
class Prices:
    """The sandbox's tariff in units of 1/10,000 credit. Defaults: EvoLink's public prices."""

    units_per_second: int = 47_600
    hd_multiplier: Fraction = Fraction(167, 100)
    minimum_units: int = 90_000
    # What a task without audio pays of the rate (the flash model sells silence at half price;
    # the standard model always makes sound, so for it this is never used).
    silent_multiplier: Fraction = Fraction(1)

    def __post_init__(self) -> None:
        ups = self.units_per_second
        if isinstance(ups, bool) or not isinstance(ups, int) or not 0 < ups <= _MAX_UNITS_PER_SECOND:
            raise ValueError(f"units_per_second must be a whole number from 1 to "
                             f"{_MAX_UNITS_PER_SECOND:,}")
        mult = self.hd_multiplier
        if not isinstance(mult, Fraction) or not 0 < mult <= _MAX_MULTIPLIER:
            raise ValueError("hd_multiplier must be a fraction above 0 and at most 100")
        silent = self.silent_multiplier
        if not isinstance(silent, Fraction) or not 0 < silent <= 1:
            raise ValueError("silent_multiplier must be a fraction above 0 and at most 1")
        low = self.minimum_units
        if isinstance(low, bool) or not isinstance(low, int) or not 0 <= low <= 100 * UNITS_PER_CREDIT * 1000:
            raise ValueError("minimum_units must be a whole number from 0 to 1,000,000,000")

    @classmethod
    def coerce(cls, value: Any, base: Prices | None = None) -> Prices:
        """Prices from Prices, from any object with the same attributes (such as a price table
        of the client's, which is read by attribute and never imported), or from a mapping of
        them; fields left out keep `base`'s values. The multipliers may be Fractions, ints,
        decimal strings or floats (read by their shortest decimal form, so 1.67 is exactly
        167/100)."""
        if isinstance(value, Prices):
            return value
        names = ("units_per_second", "hd_multiplier", "minimum_units", "silent_multiplier")
        if isinstance(value, dict):
            unknown = set(value) - set(names)
            if unknown:
                raise ValueError(f"unknown price fields: {', '.join(sorted(map(str, unknown)))}; "
                                 f"known: {', '.join(names)}")
            fields = {n: value[n] for n in names if n in value}
        else:
            try:
                fields = {n: getattr(value, n) for n in names[:3]}
            except AttributeError as err:
                raise TypeError(f"prices must be Prices or have {', '.join(names[:3])}") from err
            if hasattr(value, "silent_multiplier"):
                fields["silent_multiplier"] = value.silent_multiplier
        for name in ("hd_multiplier", "silent_multiplier"):
            if name in fields:
                fields[name] = _fraction(fields[name], name)
        return replace(base or cls(), **fields)

    def public(self) -> dict[str, Any]:
        """As /_sandbox/state shows them (the silent multiplier only where it does something)."""
        out: dict[str, Any] = {"units_per_second": self.units_per_second,
                               "hd_multiplier": _text(self.hd_multiplier),
                               "minimum_units": self.minimum_units}
        if self.silent_multiplier != 1:
            out["silent_multiplier"] = _text(self.silent_multiplier)
        return out


def _text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def _fraction(value: Any, name: str) -> Fraction:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float | str):
        try:
            out = Fraction(repr(value) if isinstance(value, float) else value.strip())
        except (ValueError, ZeroDivisionError, OverflowError) as err:
            raise ValueError(f"{name} {str(value)[:40]!r} is not a finite number") from err
        return out
    raise ValueError(f"{name} must be a number or a fraction such as '167/100'")


DEFAULT_PRICES = Prices()
# wan2.6-reference-video-flash: 2.38 credits a second with audio, half that without.
FLASH_PRICES = Prices(units_per_second=23_800, silent_multiplier=Fraction(1, 2))


@dataclass(frozen=True, slots=True, kw_only=True)
class Charge:
    """What one task is billed: milliseconds and units."""

    input_ms: int
    output_ms: int
    units: int
    minimum_applied: bool

    @property
    def total_ms(self) -> int:
        return self.input_ms + self.output_ms


def input_ms(reference_ms: Sequence[int]) -> int:
    """Billed milliseconds of the references: each cut to its share, then added up."""
    share = limits.BILLED_INPUT_CAP_MS.get(len(reference_ms))
    if share is None:
        raise ValueError(f"a task has 1 to 3 references, not {len(reference_ms)}")
    total = 0
    for ms in reference_ms:
        if ms < 0:
            raise ValueError("a reference cannot last less than 0 ms")
        total += ms if ms < share else share
    return total


def _half_up(numerator: int, denominator: int) -> int:
    """numerator/denominator rounded to the nearest integer, halves away from zero (both >= 0)."""
    whole, rest = divmod(numerator, denominator)
    return whole + (1 if 2 * rest >= denominator else 0)


def charge(reference_ms: Sequence[int], output_s: int, quality: str,
           prices: Prices = DEFAULT_PRICES, *, audio: bool = True) -> Charge:
    """Bill a task: its references' durations (ms), its output seconds, its quality and whether
    it makes sound (`prices` is the tariff of the task's model)."""
    if quality not in limits.QUALITIES:
        raise ValueError(f"unknown quality {quality!r}")
    billed_in = input_ms(reference_ms)
    billed_out = output_s * 1000
    mult = prices.hd_multiplier if quality == "1080p" else Fraction(1)
    if not audio:
        mult *= prices.silent_multiplier
    # units = ms * (units per second / 1000 ms) * multiplier, kept as one exact fraction.
    numerator = (billed_in + billed_out) * prices.units_per_second * mult.numerator
    denominator = 1000 * mult.denominator
    exact = _half_up(numerator, denominator)
    units = max(exact, prices.minimum_units)
    return Charge(input_ms=billed_in, output_ms=billed_out, units=units,
                  minimum_applied=units > exact)


def credits_number(units: int) -> int | float:
    """Units as the number a task's usage shows: whole credits as an int, else a decimal."""
    whole, rest = divmod(units, UNITS_PER_CREDIT)
    return whole if rest == 0 else units / UNITS_PER_CREDIT
