"""The batch's budgets: EvoLink's rate limits (a brake shared by every call), the credit cap and the
account's balance.

`RateGate` turns a 429 or 5xx anywhere into a pause for the whole batch, `over_budget` stops
new tasks once the measured bill of every job would pass `--max-cost`, and `check_balance` stops a
job (or the rest of a batch) that costs more than the key can spend, before anything is prepared.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prep.core import rules
from prep.core.billing import PriceTable, credits_text, estimate_durations
from prep.jobs.journal import SENT, JobRecord

if TYPE_CHECKING:
    from prep.api.client import Client, Credits
    from prep.jobs.planning import BatchPlan

__all__ = [
    "RateGate",
    "RunStopped",
    "check_balance",
    "credits_label",
    "fitting_jobs",
    "jobs_to_pay",
    "measured_units",
    "over_budget",
]


class RunStopped(KeyboardInterrupt):
    """Raised in a run's worker threads once it is stopping (as Ctrl-C is in the main one)."""


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
        self.stopped = False

    def stop(self) -> None:
        """The run is stopping (Ctrl-C, SIGTERM): every call not yet made and every pause raise
        RunStopped at once, so the run's threads end within moments."""
        with self._cond:
            self.stopped = True
            self._cond.notify_all()

    def check(self) -> None:
        """RunStopped once the run is stopping."""
        if self.stopped:
            raise RunStopped

    def nap(self, delay_s: float) -> None:
        """Sleep `delay_s` (a retry's pause that brakes nothing else), cut short by `stop`."""
        if self._sleep is time.sleep:
            with self._cond:
                self._cond.wait_for(lambda: self.stopped, timeout=max(delay_s, 0.0))
        else:
            self._sleep(delay_s)
        self.check()

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
        self.nap(delay_s)

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """Hold one of the allowed concurrent API calls (waiting out any pause first)."""
        with self._cond:
            while True:
                self.check()
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


# -- the account's balance, before anything is prepared or uploaded ------------------------------

# Journal states in which a job's create request has been sent: its money is spent or reserved.


def credits_label(units: int) -> str:
    """Credits for a sentence about money: at least one decimal (30.0, 47.6, 79.492)."""
    text = credits_text(units)
    return text if "." in text else f"{text}.0"


def jobs_to_pay(plan: BatchPlan, output_dir: Path | None, *,
                retry_failed: bool = False) -> list[tuple[str, int]]:
    """(name, units) of every job of `plan` that a run would still create a task for: those the
    journal in `output_dir` has not sent yet (failed ones only with `retry_failed`), each at its
    bill as measured when the journal has it, else as planned."""
    from prep.jobs.journal import Journal, JournalDamaged
    from prep.jobs.layout import journal_path

    known: dict[str, JobRecord] = {}
    if output_dir is not None and journal_path(output_dir).is_file():
        # A damaged journal knows nothing: every job counts (the run sets the file aside).
        with contextlib.suppress(JournalDamaged), Journal.open(output_dir, create=False) as journal:
            known = {j.name: j for j in journal.jobs()}
    rest = []
    for job in plan.jobs:
        record = known.get(job.name)
        if record is not None and (record.state in SENT
                                   or (record.state == "failed" and not retry_failed)):
            continue
        units = record.measured_units if record is not None and record.measured_units is not None \
            else job.estimate.credits_units
        rest.append((job.name, units))
    return rest


def fitting_jobs(jobs: Sequence[tuple[str, int]], spendable_units: int) -> list[tuple[str, int]]:
    """The jobs (in manifest order) a balance covers, each taken if it still fits."""
    fits, left = [], spendable_units
    for name, units in jobs:
        if units <= left:
            fits.append((name, units))
            left -= units
    return fits


def check_balance(jobs: Sequence[tuple[str, int]], client: Client, *,
                  on_note: Callable[[str], None] | None = None, batch: bool = False,
                  held: str = "") -> Credits | None:
    """QuotaError (exit 5) when `jobs` cost more than the key can spend, by `GET /v1/credits`.

    `held` says why the amount is a hold rather than the charge (a smart duration reserves the
    model's longest output until the task settles); the message then says so.

    The endpoint is optional: when the server does not offer it or answers it with an error,
    that is said once through `on_note` and nothing is stopped (None is returned). A refused key
    (401, 403: AuthError, exit 4) and a service that cannot be reached at all (ServiceUnreachable,
    exit 6) stop here, before anything is encoded or uploaded: every later call would fail the
    same way. `batch` words the message for the rest of a batch, naming the jobs that would fit."""
    from prep.errors import ApiError, AuthError, QuotaError, ServiceUnreachable

    def note(text: str) -> None:
        if on_note is not None:
            on_note(text)

    if not jobs:
        return None
    try:
        credits = client.credits()
    except AuthError as err:
        raise AuthError(f"{err.message}; nothing was prepared or uploaded",
                        hint="check the API key: EVOLINK_API_KEY, or `prep config set api_key`",
                        status=err.status, code=err.code) from err
    except ServiceUnreachable:
        raise
    except ApiError as err:
        note(f"the balance could not be read ({err.message}); going on without checking it")
        return None
    if credits is None:
        note("this server does not report the balance (GET /v1/credits); going on without "
             "checking it")
        return None
    spendable = credits.spendable_units
    if spendable is None:
        note("the balance answer names no remaining credits; going on without checking it")
        return None
    needed = sum(units for _name, units in jobs)
    if needed <= spendable:
        return credits
    whose = "key" if credits.limited_by == "key" else "account"
    raise_limit = " (or raise the key's own limit)" if whose == "key" else ""
    hint = (f"top up credits in your EvoLink dashboard{raise_limit}, then run again; nothing was "
            "prepared or uploaded")
    left = f"the {whose} has {credits_label(spendable)} left"
    if not batch:
        why = f" ({held})" if held else ""
        raise QuotaError(f"this job needs {credits_label(needed)} credits{why}; {left}", hint=hint)
    fits = fitting_jobs(jobs, spendable)
    if fits:
        names = ", ".join(name for name, _units in fits)
        fit = (f"these {len(fits)} would fit: {names} "
               f"({credits_label(sum(u for _n, u in fits))} credits)")
    else:
        fit = f"no job would fit (the cheapest needs {credits_label(min(u for _n, u in jobs))})"
    raise QuotaError(f"the {len(jobs)} jobs still to run need {credits_label(needed)} credits; "
                     f"{left}; {fit}",
                     hint=hint.replace("run again", "run again (or run the jobs that fit from a "
                                       "smaller manifest)"))
