"""prep: get local footage ready for EvoLink's wan2.6-reference-video API, and know the bill first.

The library is usable without the command line::

    import prep
    info = prep.probe("take.mov")
    verdict = prep.assess(info)
    bill = prep.estimate(["take.mov@0:05-0:15"], output_s=5, quality="720p")
    print(bill.total_billed_ms, bill.credits)
    for result in prep.prepare(["take.mov", "phone/"], "ready/"):
        print(result.action, result.output, result.output_info.size_bytes)
"""

from __future__ import annotations

from .batch import BatchPlan, JobPlan, plan_batch
from .billing import DEFAULT_PRICES, ClipBill, Estimate, PriceTable, estimate_durations
from .clipspec import ClipSpec, Window, parse_clip_spec
from .errors import (
    ApiError,
    AuthError,
    ManifestError,
    MediaError,
    PrepError,
    QuotaError,
    TaskFailedError,
    UsageError,
)
from .journal import Journal
from .manifest import JobSpec, Manifest, load_manifest, parse_manifest
from .media import ClipInfo, Verdict, assess, probe
from .plan import ClipWindow, PlanOptions, PrepPlan, choose_window, plan
from .preflight import PlannedClip, estimate, plan_clips
from .prepare import PrepareOptions, PrepResult, prepare
from .settings import Settings, load_settings

__all__ = [
    "DEFAULT_PRICES",
    "ApiError",
    "AuthError",
    "BatchPlan",
    "ClipBill",
    "ClipInfo",
    "ClipSpec",
    "ClipWindow",
    "Estimate",
    "JobPlan",
    "JobSpec",
    "Journal",
    "Manifest",
    "ManifestError",
    "MediaError",
    "PlanOptions",
    "PlannedClip",
    "PrepError",
    "PrepPlan",
    "PrepResult",
    "PrepareOptions",
    "PriceTable",
    "QuotaError",
    "Settings",
    "TaskFailedError",
    "UsageError",
    "Verdict",
    "Window",
    "assess",
    "choose_window",
    "estimate",
    "estimate_durations",
    "load_manifest",
    "load_settings",
    "parse_clip_spec",
    "parse_manifest",
    "plan",
    "plan_batch",
    "plan_clips",
    "prepare",
    "probe",
]
