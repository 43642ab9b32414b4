"""The batch's budgets: EvoLink's rate limits (a brake shared by every call) and the credit cap.

`RateGate` turns a 429 or 5xx anywhere into a pause for the whole batch, and `over_budget` stops
new tasks once the measured bill of every job would pass `--max-cost`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from prep.core import rules
from prep.core.billing import PriceTable, credits_text, estimate_durations
from prep.jobs.journal import JobRecord

__all__ = ["RateGate", "measured_units", "over_budget"]


class RateGate:
    """Shared by every API call of a batch, so that 429s slow the whole batch instead of failing jobs.

    Any back-off (a 429 with its Retry-After, a 5xx, an unreachable server) pauses every call for
    that long and halves how many calls may run at once; each success lets one more run again,
    up to the batch's --concurrency.
    """

    def __init__(self, max_concurrent: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self.limit = max_concurrent
        self.in_flight = 0
        self.paused_until = 0.0
        self.backoffs = 0
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()

    def backoff(self, delay_s: float) -> None:
        """Pause every API call for `delay_s` and run fewer at once for a while."""
        with self._cond:
            self.paused_until = max(self.paused_until, self._clock() + max(delay_s, 0.0))
            self.limit = max(1, self.limit // 2)
            self.backoffs += 1
            self._cond.notify_all()

    def sleep(self, delay_s: float) -> None:
        """The client's retry sleep: every back-off anywhere brakes the whole batch."""
        self.backoff(delay_s)
        self._sleep(delay_s)

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """Hold one of the allowed concurrent API calls (waiting out any pause first)."""
        with self._cond:
            while True:
                wait_s = self.paused_until - self._clock()
                if wait_s <= 0 and self.in_flight < self.limit:
                    break
                self._cond.wait(timeout=wait_s if wait_s > 0 else None)
            self.in_flight += 1
        ok = False
        try:
            yield
            ok = True
        finally:
            with self._cond:
                self.in_flight -= 1
                if ok and self.limit < self.max_concurrent:
                    self.limit += 1
                self._cond.notify_all()


def measured_units(durations_ms: Sequence[int], *, output_s: int, quality: str,
                   prices: PriceTable, model: str = rules.DEFAULT_MODEL,
                   generate_audio: bool | None = None) -> int:
    """The bill of a job from its prepared clips as measured: what EvoLink will see."""
    est = estimate_durations([(str(i), d) for i, d in enumerate(durations_ms)], output_s=output_s,
                             quality=quality, prices=prices, model=model,
                             generate_audio=generate_audio)
    return est.credits_units


def over_budget(jobs: Sequence[JobRecord], budget_units: int | None) -> str | None:
    """Why no more tasks may be created: the jobs as measured cost more than `budget_units`."""
    if budget_units is None:
        return None
    total = sum(j.measured_units if j.measured_units is not None else (j.estimate_units or 0)
                for j in jobs)
    if total <= budget_units:
        return None
    return (f"with the clips prepared and measured, the batch costs {credits_text(total)} "
            f"credits, above --max-cost {credits_text(budget_units)}")
