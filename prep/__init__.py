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

import sys
import types
import typing

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

if typing.TYPE_CHECKING:
    from .batch import BatchPlan, JobPlan, plan_batch
    from .billing import DEFAULT_PRICES, ClipBill, Estimate, PriceTable, estimate_durations
    from .client import Client, Task
    from .clipspec import ClipSpec, Window, parse_clip_spec
    from .journal import Journal
    from .manifest import JobSpec, Manifest, load_manifest, parse_manifest
    from .media import ClipInfo, Verdict, assess, probe
    from .pick import PickResult, pick_window
    from .pictures import contact_sheet, pick_timeline
    from .pipeline import GenerateOptions, GenerateResult, generate
    from .plan import ClipWindow, PlanOptions, PrepPlan, choose_window, plan
    from .preflight import PlannedClip, estimate, plan_clips
    from .prepare import PrepareOptions, PrepResult, prepare
    from .request import GenerationRequest
    from .settings import Settings, load_settings
    from .upload import UploadedFile, upload_files

# Every other public name loads with its module on first use, so `import prep` (and with it
# `prep --help`) stays fast: the modules behind them pull in pymediainfo, sqlite3, httpx, numpy...
_LAZY = {
    "BatchPlan": "batch",
    "Client": "client",
    "ClipBill": "billing",
    "ClipInfo": "media",
    "ClipSpec": "clipspec",
    "ClipWindow": "plan",
    "DEFAULT_PRICES": "billing",
    "Estimate": "billing",
    "GenerateOptions": "pipeline",
    "GenerateResult": "pipeline",
    "GenerationRequest": "request",
    "JobPlan": "batch",
    "JobSpec": "manifest",
    "Journal": "journal",
    "Manifest": "manifest",
    "PickResult": "pick",
    "PlanOptions": "plan",
    "PlannedClip": "preflight",
    "PrepPlan": "plan",
    "PrepResult": "prepare",
    "PrepareOptions": "prepare",
    "PriceTable": "billing",
    "Settings": "settings",
    "Task": "client",
    "UploadedFile": "upload",
    "Verdict": "media",
    "Window": "clipspec",
    "assess": "media",
    "choose_window": "plan",
    "contact_sheet": "pictures",
    "estimate": "preflight",
    "estimate_durations": "billing",
    "generate": "pipeline",
    "load_manifest": "manifest",
    "load_settings": "settings",
    "parse_clip_spec": "clipspec",
    "parse_manifest": "manifest",
    "pick_timeline": "pictures",
    "pick_window": "pick",
    "plan": "plan",
    "plan_batch": "batch",
    "plan_clips": "preflight",
    "prepare": "prepare",
    "probe": "media",
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


class _Package(types.ModuleType):
    """`prep.plan` and `prep.prepare` are functions that share their names with submodules.

    Importing a submodule binds it on the package, which would hide the lazy function for good;
    this keeps the public function instead (the submodules stay reachable by `from prep.plan ...`).
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
