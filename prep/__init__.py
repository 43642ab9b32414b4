"""prep: get local footage ready for EvoLink's wan2.6-reference-video API, and know the bill first.

The library is usable without the command line::

    import prep
    info = prep.probe("take.mov")
    verdict = prep.assess(info)
    bill = prep.estimate(["take.mov@0:05-0:15"], output_s=5, quality="720p")
    print(bill.total_billed_ms, bill.credits)
    wan30 = prep.estimate(["take.mov"], model="3.0", output_s=-1)  # any model, by id or alias
    verdict_30 = prep.assess(info, prep.model_spec("3.0"))
    for result in prep.prepare(["take.mov", "phone/"], "ready/"):
        print(result.action, result.output, result.output_info.size_bytes)
"""

from __future__ import annotations

import typing

from prep.errors import (
    ApiError,
    AuthError,
    ManifestError,
    MediaError,
    PrepError,
    QuotaError,
    TaskFailedError,
    UsageError,
)

if typing.TYPE_CHECKING:
    from prep.api.client import Client, Task
    from prep.api.upload import UploadedFile, upload_files
    from prep.core.billing import DEFAULT_PRICES, ClipBill, Estimate, PriceTable, estimate_durations
    from prep.core.clipinfo import ClipInfo, Verdict, assess
    from prep.core.clipspec import ClipSpec, Window
    from prep.core.models import model_spec
    from prep.core.modelspec import ModelSpec
    from prep.core.references import ReferenceSpec
    from prep.core.request import GenerationRequest, RequestOptions
    from prep.core.window import ClipWindow, PlannedClip, choose_window
    from prep.jobs.estimate import compare_planned, estimate, plan_clips
    from prep.jobs.generate import GenerateOptions, GenerateResult, generate
    from prep.jobs.journal import Journal
    from prep.jobs.manifest import JobSpec, Manifest, load_manifest, parse_manifest
    from prep.jobs.planning import BatchPlan, JobPlan, plan_batch
    from prep.media.clips import parse_clip_spec
    from prep.media.prepare import PrepareOptions, PrepResult, prepare
    from prep.media.probe import probe
    from prep.pick.check import Checker, CheckReport, check_clip
    from prep.pick.choose import PickResult, pick_window
    from prep.settings import Settings, load_settings
    from prep.ui.pictures import contact_sheet, pick_timeline

# Every other public name loads with its module on first use, so `import prep` (and with it
# `prep --help`) stays fast: the modules behind them pull in pymediainfo, sqlite3, httpx, numpy...
_LAZY = {
    "BatchPlan": "jobs.planning",
    "CheckReport": "pick.check",
    "Checker": "pick.check",
    "Client": "api.client",
    "ClipBill": "core.billing",
    "ClipInfo": "core.clipinfo",
    "ClipSpec": "core.clipspec",
    "ClipWindow": "core.window",
    "DEFAULT_PRICES": "core.billing",
    "Estimate": "core.billing",
    "GenerateOptions": "jobs.generate",
    "GenerateResult": "jobs.generate",
    "GenerationRequest": "core.request",
    "JobPlan": "jobs.planning",
    "JobSpec": "jobs.manifest",
    "Journal": "jobs.journal",
    "Manifest": "jobs.manifest",
    "ModelSpec": "core.modelspec",
    "PickResult": "pick.choose",
    "PlanOptions": "core.plan",
    "PlannedClip": "core.window",
    "PrepPlan": "core.plan",
    "PrepResult": "media.prepare",
    "PrepareOptions": "media.prepare",
    "PriceTable": "core.billing",
    "ReferenceSpec": "core.references",
    "RequestOptions": "core.request",
    "Settings": "settings",
    "Task": "api.client",
    "UploadedFile": "api.upload",
    "Verdict": "core.clipinfo",
    "Window": "core.clipspec",
    "assess": "core.clipinfo",
    "check_clip": "pick.check",
    "choose_window": "core.window",
    "compare_planned": "jobs.estimate",
    "contact_sheet": "ui.pictures",
    "estimate": "jobs.estimate",
    "estimate_durations": "core.billing",
    "generate": "jobs.generate",
    "load_manifest": "jobs.manifest",
    "load_settings": "settings",
    "model_spec": "core.models",
    "parse_clip_spec": "media.clips",
    "parse_manifest": "jobs.manifest",
    "pick_timeline": "ui.pictures",
    "pick_window": "pick.choose",
    "plan": "core.plan",
    "plan_batch": "jobs.planning",
    "plan_clips": "jobs.estimate",
    "prepare": "media.prepare",
    "probe": "media.probe",
    "upload_files": "api.upload",
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
    "CheckReport",
    "Checker",
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
    "ModelSpec",
    "PickResult",
    "PlanOptions",
    "PlannedClip",
    "PrepError",
    "PrepPlan",
    "PrepResult",
    "PrepareOptions",
    "PriceTable",
    "QuotaError",
    "ReferenceSpec",
    "RequestOptions",
    "Settings",
    "Task",
    "TaskFailedError",
    "UploadedFile",
    "UsageError",
    "Verdict",
    "Window",
    "assess",
    "check_clip",
    "choose_window",
    "compare_planned",
    "contact_sheet",
    "estimate",
    "estimate_durations",
    "generate",
    "load_manifest",
    "load_settings",
    "model_spec",
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
