"""Prices: each model's rate (`ModelRate`), the configurable table (`PriceTable`) and credit
amounts as text. Pure: no I/O.

Kept apart from `prep.core.billing` (which re-exports every name here) so that settings, which
carry a price table, load without the billing rules and the request checks behind them.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from prep.core import rules
from prep.core.record import record
from prep.errors import UsageError

__all__ = ["DEFAULT_PRICES", "UNITS_PER_CREDIT", "ModelRate", "PriceTable", "credits_number",
           "credits_text", "parse_credits"]

UNITS_PER_CREDIT = rules.UNITS_PER_CREDIT


@record(frozen=True, slots=True, kw_only=True)
class ModelRate:
    """One model's price: units per billed second (with audio), the 1080p multiplier, the minimum
    charge per task, and the multiplier of an output without audio (None: no such switch)."""

    model: str
    units_per_second: int
    hd_multiplier: Fraction
    minimum_units: int
    no_audio_multiplier: Fraction | None = None
    # Every quality's multiplier, where the model has more than 720p and 1080p (from its table).
    quality_multipliers: Mapping[str, Fraction] | None = None

    def exact_units(self, billed_ms: int, quality: str, audio: bool = True) -> Fraction:
        """Units for `billed_ms` before rounding and before the minimum charge."""
        exact = Fraction(billed_ms * self.units_per_second, 1000)
        if self.quality_multipliers is not None:
            exact *= self.quality_multipliers[quality]
        elif quality == "1080p":
            exact *= self.hd_multiplier
        if not audio and self.no_audio_multiplier is not None:
            exact *= self.no_audio_multiplier
        return exact


@record(frozen=True, slots=True, kw_only=True)
class PriceTable:
    """Prices in 1/10,000-credit units, for both models. The default is EvoLink's published public
    table. The unprefixed fields are the standard model's (as before the flash model existed)."""

    units_per_second: int = rules.PRICE_UNITS_PER_SECOND
    hd_multiplier: Fraction = rules.HD_MULTIPLIER
    minimum_units: int = rules.MINIMUM_CHARGE_UNITS
    flash_units_per_second: int = rules.FLASH_PRICE_UNITS_PER_SECOND
    flash_hd_multiplier: Fraction = rules.HD_MULTIPLIER
    flash_minimum_units: int = rules.MINIMUM_CHARGE_UNITS
    flash_no_audio_multiplier: Fraction = rules.FLASH_NO_AUDIO_MULTIPLIER
    # Every other model's units per billed second where the user set one: (model id, units) pairs;
    # a model not here is priced by its own table.
    model_units_per_second: tuple[tuple[str, int], ...] = ()
    units_per_usd: int = rules.UNITS_PER_USD
    source: str = (
        "EvoLink public default prices (machine-readable pricing rules shipped in the test "
        "fixtures of EvoLink's own CLI)"
    )
    effective: str = "2026-10-08"

    def __post_init__(self) -> None:
        if (min(self.units_per_second, self.flash_units_per_second) <= 0
                or min(self.hd_multiplier, self.flash_hd_multiplier, self.flash_no_audio_multiplier) <= 0
                or min(self.minimum_units, self.flash_minimum_units) < 0
                or any(units <= 0 for _, units in self.model_units_per_second)):
            raise ValueError("prices must be positive")

    def multiplier(self, quality: str) -> Fraction:
        """The standard model's multiplier of a quality (1080p costs more per second than 720p)."""
        return self.hd_multiplier if quality == "1080p" else Fraction(1)

    def rate(self, model: str = rules.DEFAULT_MODEL) -> ModelRate:
        """One model's price (wan2.6 and flash: this table's, which the config may override; the
        others: their own tables, with the per-second price the user set, if any). ValueError for
        a model prep does not know."""
        if model not in (rules.MODEL, rules.FLASH_MODEL):
            spec = next((m for m in rules.MODEL_SPECS if m.id == model), None)
            if spec is None:
                raise ValueError(f"no price for model {model!r}")
            rule = spec.billing
            own = dict(self.model_units_per_second).get(model, rule.units_per_second)
            return ModelRate(model=model, units_per_second=own,
                             hd_multiplier=rule.quality_multipliers.get("1080p", Fraction(1)),
                             minimum_units=rule.minimum_units,
                             no_audio_multiplier=rule.no_audio_multiplier,
                             quality_multipliers=rule.quality_multipliers)
        if model == rules.MODEL:
            return ModelRate(model=model, units_per_second=self.units_per_second,
                             hd_multiplier=self.hd_multiplier, minimum_units=self.minimum_units)
        if model == rules.FLASH_MODEL:
            return ModelRate(model=model, units_per_second=self.flash_units_per_second,
                             hd_multiplier=self.flash_hd_multiplier,
                             minimum_units=self.flash_minimum_units,
                             no_audio_multiplier=self.flash_no_audio_multiplier)
        raise ValueError(f"no price for model {model!r}")

    @property
    def label(self) -> str:
        """Where the table comes from and its date, for people and for JSON."""
        return f"{self.source}, effective {self.effective}"


DEFAULT_PRICES = PriceTable()


def parse_credits(text: str, what: str) -> int:
    """'4.76' credits -> 4.76 x UNITS_PER_CREDIT units, exactly; UsageError unless a number >= 0."""
    try:
        value = Decimal(text)
    except InvalidOperation as err:
        raise UsageError(f"{what} must be a number of credits, not {text!r}") from err
    if not value.is_finite() or value < 0:
        raise UsageError(f"{what} must be a number of credits of 0 or more, not {text!r}")
    units = value * UNITS_PER_CREDIT
    if units != units.to_integral_value():
        raise UsageError(f"{what}: {text} is finer than prep counts money "
                         f"(1/{UNITS_PER_CREDIT:,} credit)")
    return int(units)


def credits_text(units: int) -> str:
    """Units as a credit amount for people: 794920 -> '79.492'."""
    whole, frac = divmod(units, UNITS_PER_CREDIT)
    text = f"{whole}.{frac:04d}".rstrip("0").rstrip(".")
    return text


def credits_number(units: int) -> float:
    """Integer credit units as a JSON number of credits (for display and JSON only)."""
    return float(Fraction(units, UNITS_PER_CREDIT))
