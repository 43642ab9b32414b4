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
from .pick import PickResult, pick_window
from .pictures import contact_sheet, pick_timeline
from .plan import ClipWindow, PlanOptions, PrepPlan, choose_window, plan
from .preflight import PlannedClip, estimate, plan_clips
from .prepare import PrepareOptions, PrepResult, prepare
from .settings import Settings, load_settings

# The API side pulls in httpx; it loads on first use so `prep --help` stays fast.
_LAZY = {
    "Client": "client",
    "GenerateOptions": "pipeline",
    "GenerateResult": "pipeline",
    "GenerationRequest": "request",
    "Task": "client",
    "UploadedFile": "upload",
    "generate": "pipeline",
    "upload_files": "upload",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'prep' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "DEFAULT_PRICES",
    "ApiError",
    "AuthError",
    "BatchPlan",
    "Client",
    "ClipBill",
    "ClipInfo",
    "ClipSpec",
    "ClipWindow",
    "Estimate",
    "GenerateOptions",
    "GenerateResult",
    "GenerationRequest",
    "JobPlan",
    "JobSpec",
    "Journal",
    "Manifest",
    "ManifestError",
    "MediaError",
    "PickResult",
    "PlanOptions",
    "PlannedClip",
    "PrepError",
    "PrepPlan",
    "PrepResult",
    "PrepareOptions",
    "PriceTable",
    "QuotaError",
    "Settings",
    "Task",
    "TaskFailedError",
    "UploadedFile",
    "UsageError",
    "Verdict",
    "Window",
    "assess",
    "choose_window",
    "contact_sheet",
    "estimate",
    "estimate_durations",
    "generate",
    "load_manifest",
    "load_settings",
    "parse_clip_spec",
    "parse_manifest",
    "pick_timeline",
    "pick_window",
    "plan",
    "plan_batch",
    "plan_clips",
    "prepare",
    "probe",
    "upload_files",
]
