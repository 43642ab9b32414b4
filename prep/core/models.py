"""Every reference-video model EvoLink serves, read from its table: look-up, billing, limits.

Pure: no I/O, no clock. The tables are in rules.py (`rules.MODEL_SPECS`, one frozen `ModelSpec`
each, shaped in modelspec.py); the functions here read only a table, so a new model is a new table
and a block of rows in the test tables, nothing else. Times are integer milliseconds, money integer
1/10,000-credit units, rounded half-up once per task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Final

from prep.core import rules
from prep.core.modelspec import MediaLimits, ModelSpec, Span
from prep.core.record import record
from prep.core.timecode import round_half_up
from prep.errors import UsageError

__all__ = [
    "ASSUMED",
    "MODELS",
    "Bill",
    "Comparison",
    "bill",
    "billed_head_ms",
    "billed_input_ms",
    "compare",
    "model_spec",
    "reference_problems",
    "widest_clip_ms",
]

MODELS: Final = rules.MODEL_SPECS
# Where the spec leaves a fact open, the reading prep takes (the README's Models section lists them).
ASSUMED: Final = rules.MODEL_ASSUMPTIONS

_BY_NAME: Final[dict[str, ModelSpec]] = {
    name: spec for spec in MODELS for name in (spec.id, *spec.aliases)
}


def model_spec(name: object, *, option: str = "--model") -> ModelSpec:
    """The table of a model id or alias; UsageError (exit 2) listing the known ones otherwise."""
    if isinstance(name, str) and name.strip().lower() in _BY_NAME:
        return _BY_NAME[name.strip().lower()]
    known = ", ".join(f"{m.id} ({'/'.join(m.aliases)})" for m in MODELS)
    raise UsageError(f"{option} {name!r} is not a model prep knows; use one of {known}",
                     hint="`prep estimate --compare CLIPS` prices the same clips on each")


def billed_input_ms(spec: ModelSpec, durations_ms: Sequence[int]) -> tuple[int, ...]:
    """Each reference video's billed milliseconds under the model's input rule.

    For a total cap the clips are billed in order until the cap is reached (the sum is what the
    rule defines; the split only says which clip it came from).
    """
    rule = spec.billing
    if rule.input_rule == "per_clip_cap":
        if not durations_ms:
            return ()
        cap = rule.per_clip_cap_ms[len(durations_ms)]
        return tuple(min(d, cap) for d in durations_ms)
    if rule.input_rule == "total_cap":
        left = rule.total_cap_ms or 0
        billed = []
        for d in durations_ms:
            billed.append(min(d, left))
            left -= billed[-1]
        return tuple(billed)
    return tuple(durations_ms)


def billed_head_ms(spec: ModelSpec, clips_in_job: int) -> int | None:
    """How much of one clip's start the model bills in a job of `clips_in_job` clips, or None when
    it bills every second of every clip.

    A total cap is read as an even share per clip (which clip the cap falls on is the order's, not
    the clip's, doing); a per-clip cap is the table's cap for that many clips.
    """
    rule = spec.billing
    if rule.input_rule == "per_clip_cap":
        return rule.per_clip_cap_ms[clips_in_job]
    if rule.input_rule == "total_cap":
        return (rule.total_cap_ms or 0) // max(1, clips_in_job)
    return None


@record(frozen=True, slots=True, kw_only=True)
class Bill:
    """A job's price on one model: what is billed, the charge, and the hold where it differs."""

    model: str
    input_ms: tuple[int, ...]
    output_ms: int
    quality: str
    audio: bool
    units: int
    minimum_applied: bool
    hold_units: int  # what the service reserves when the task is made (the charge, or more)

    @property
    def billed_ms(self) -> int:
        """Billed input plus output, before the quality multiplier."""
        return sum(self.input_ms) + self.output_ms


def bill(spec: ModelSpec, durations_ms: Sequence[int], *, output_s: int, quality: str,
         audio: bool = True, units_per_second: int | None = None) -> Bill:
    """The exact price of a job on `spec` (inputs assumed valid: see `reference_problems`).

    `output_s` -1 is a smart duration: charged as the seconds generated, held at the model's
    hold; the charge shown is then the hold. `units_per_second` overrides the table's rate (a
    price from the user's config).
    """
    rule = spec.billing
    rate = rule.units_per_second if units_per_second is None else units_per_second
    inputs = billed_input_ms(spec, durations_ms)

    def units_for(output_ms: int) -> tuple[int, bool]:
        exact = Fraction((sum(inputs) + output_ms) * rate, 1000) * rule.quality_multipliers[quality]
        if not audio and rule.no_audio_multiplier is not None:
            exact *= rule.no_audio_multiplier
        rounded = round_half_up(exact)
        return max(rounded, rule.minimum_units), rule.minimum_units > rounded

    smart = output_s == -1
    output_ms = (rule.smart_hold_s or 0) * 1000 if smart else output_s * 1000
    units, minimum = units_for(output_ms)
    return Bill(model=spec.id, input_ms=inputs, output_ms=output_ms, quality=quality, audio=audio,
                units=units, minimum_applied=minimum, hold_units=units)


def reference_problems(spec: ModelSpec, *, videos_ms: Sequence[int], images: int = 0, audio_ms:
                       Sequence[int] = (), voices_ms: Sequence[int] = (),
                       output_s: int = rules.DEFAULT_OUTPUT_S) -> list[str]:
    """Every count, duration and cross-field rule of `spec` that these references break, each a
    sentence with the limit and the fix. Empty when the model takes them."""
    problems: list[str] = []

    def counted(limits: MediaLimits | None, count: int, kind: str) -> None:
        if limits is None:
            if count:
                problems.append(f"{spec.id} takes no {kind} references (drop them, or choose a model "
                                f"that does)")
            return
        if count not in limits.count:
            problems.append(f"{spec.id} takes {limits.count.text()} {kind} references, not {count}")

    def timed(limits: MediaLimits | None, durations: Sequence[int], kind: str) -> None:
        if limits is None or limits.duration_ms is None:
            return
        span = limits.duration_ms
        before = len(problems)
        for index, d in enumerate(durations):
            if not span.low <= d <= span.high:
                problems.append(f"{kind} {index + 1} is {d / 1000:g} s; {spec.id} takes "
                                f"{span.low / 1000:g}-{span.high / 1000:g} s per {kind}")
        # The total is worth a line of its own only once every clip is within its own range.
        if len(problems) == before and limits.total_ms is not None and sum(durations) > limits.total_ms:
            over = sum(durations) - limits.total_ms
            problems.append(f"the {kind}s total {sum(durations) / 1000:g} s; {spec.id} takes at most "
                            f"{limits.total_ms / 1000:g} s in all (cut {over / 1000:g} s)")

    counted(spec.videos, len(videos_ms), "video")
    counted(spec.images, images, "image")
    counted(spec.audio, len(audio_ms), "audio")
    counted(spec.voices, len(voices_ms), "voice")
    if spec.references is not None and len(videos_ms) + images not in spec.references:
        problems.append(f"{spec.id} takes {spec.references.text()} videos and images together, "
                        f"not {len(videos_ms) + images}")
    timed(spec.videos, videos_ms, "video")
    timed(spec.audio, audio_ms, "audio")
    timed(spec.voices, voices_ms, "voice")
    if output_s != -1 and output_s not in spec.durations_s:
        problems.append(f"{spec.id} makes {spec.durations_s.text(' s')} of output, not {output_s} s")
    if output_s == -1 and not spec.smart_duration:
        problems.append(f"{spec.id} has no smart duration (-1); give whole seconds")
    if spec.output_max_with_videos_s is not None and videos_ms and output_s > spec.output_max_with_videos_s:
        problems.append(f"with reference videos {spec.id} makes at most {spec.output_max_with_videos_s} s "
                        f"of output, not {output_s} s")
    if spec.clips_plus_output_max_ms is not None and videos_ms and output_s != -1:
        total = sum(videos_ms) + output_s * 1000
        if total > spec.clips_plus_output_max_ms:
            cap = spec.clips_plus_output_max_ms
            problems.append(f"reference videos ({sum(videos_ms) / 1000:g} s) plus output ({output_s} s) "
                            f"come to {total / 1000:g} s; {spec.id} takes at most {cap / 1000:g} s "
                            f"(cut {(total - cap) / 1000:g} s)")
    return problems


@record(frozen=True, slots=True, kw_only=True)
class Comparison:
    """The same clips and options priced on one model: what it would cut or refuse, and why."""

    model: str
    audio: bool | None  # flash and wan3.0: with or without sound; None: no switch
    bill: Bill | None  # None when the model refuses the job
    clips_ms: tuple[int, ...]  # the clips as prep would prepare them for this model
    cuts: tuple[str, ...]  # what prep would cut to fit the model
    problems: tuple[str, ...]  # why the model refuses (empty when it takes the job)


def compare(clips_ms: Sequence[int], *, output_s: int, quality: str,
            specs: Sequence[ModelSpec] = MODELS,
            rates: Mapping[str, int] | None = None) -> list[Comparison]:
    """Price the same clips on every model (flash with and without audio), each at its table's
    rate or at `rates[model id]` (units per billed second: the user's prices).

    A clip longer than a model takes is cut to its longest, as `prep prepare` would (and said so);
    anything else a model does not take (too short, too many, a quality or duration it does not
    offer, a cap no cut can meet) is a problem, and that model's bill is None.
    """
    rows = []
    for spec in specs:
        cut_ms = [min(d, spec.clip_ms.high) for d in clips_ms]
        cuts = tuple(f"clip {i + 1} cut from {d / 1000:g} s to {c / 1000:g} s"
                     for i, (d, c) in enumerate(zip(clips_ms, cut_ms, strict=True)) if c < d)
        problems = reference_problems(spec, videos_ms=cut_ms, output_s=output_s)
        if quality not in spec.qualities:
            problems.append(f"{spec.id} offers {', '.join(spec.qualities)}, not {quality}")
        switches: tuple[bool | None, ...] = (None,)
        if spec.generate_audio_default is not None:
            # Only where sound changes the price is each setting worth a row.
            switches = (True, False) if spec.billing.no_audio_multiplier is not None else (True,)
        for audio in switches:
            bill_ = None if problems else bill(spec, cut_ms, output_s=output_s, quality=quality,
                                              audio=audio is not False,
                                              units_per_second=(rates or {}).get(spec.id))
            rows.append(Comparison(model=spec.id, audio=audio, bill=bill_, clips_ms=tuple(cut_ms),
                                   cuts=cuts, problems=tuple(problems)))
    return rows


def widest_clip_ms(specs: Sequence[ModelSpec] = MODELS) -> Span:
    """The clip durations some model takes: the shortest any takes to the longest any takes."""
    spans = [s.clip_ms for s in specs]
    return Span(min(s.low for s in spans), max(s.high for s in spans))
