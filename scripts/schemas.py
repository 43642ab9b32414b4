#!/usr/bin/env python3
"""Writes prep/schemas/*.json, the JSON Schemas (2020-12) of every `--json` output and of the batch
manifest, from the shared pieces below; `--check` fails when a file differs from what this makes.

The schemas are the machine-readable side of the README's JSON contract: they require the fields
scripts may rely on and allow more (outputs are extended, never renamed). `prep schema NAME`
prints one; tests/test_schema.py validates real outputs against them.

    python scripts/schemas.py            # rewrite the files
    python scripts/schemas.py --check    # exit 1 if a file is stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from prep.core import rules  # noqa: E402  (the limits come from the one copy of each rule)
from prep.core.plan import PROFILES  # noqa: E402
from prep.pick.check import CHECK_NAMES  # noqa: E402
from prep.settings import MODEL_PRICE_KEYS  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "prep" / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

S = dict[str, Any]


def obj(required: dict[str, S], optional: dict[str, S] | None = None, **extra: Any) -> S:
    """An object that must have `required` and may have `optional` (and anything else)."""
    return {"type": "object", "required": list(required),
            "properties": {**required, **(optional or {})}, **extra}


def nullable(schema: S) -> S:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: S, **extra: Any) -> S:
    return {"type": "array", "items": items, **extra}


STR: S = {"type": "string"}
NUM: S = {"type": "number"}
INT: S = {"type": "integer"}
BOOL: S = {"type": "boolean"}
SECONDS: S = {"type": "number", "minimum": 0, "description": "seconds"}
CREDITS: S = {"type": "number", "minimum": 0, "description": "credits (1 credit = 0.1 CNY)"}
UNITS: S = {"type": "integer", "minimum": 0, "description": "1/10,000 credit"}
# Every model's qualities together (wan3.0 adds 480p); each job is checked against its own model.
QUALITY: S = {"enum": list(dict.fromkeys(q for m in rules.MODEL_SPECS for q in m.qualities))}
MODEL_ID: S = {"enum": [m.id for m in rules.MODEL_SPECS]}
PROFILE: S = {"enum": list(PROFILES)}
STRINGS: S = array(STR)
EXIT_CODE: S = {"enum": [0, 1, 2, 3, 4, 5, 6, 7, 130], "description": "the exit code this row means"}
BY_QUALITY: S = obj({"720p": CREDITS, "1080p": CREDITS}, {"480p": CREDITS})

REFERENCE = obj(
    {"kind": {"enum": ["image", "audio", "voice"]}, "path": STR},
    {"binds": {**nullable(STR), "description": "what a voice speaks for: video1, image2..."},
     "format": STR, "size_bytes": INT, "width": nullable(INT), "height": nullable(INT),
     "duration_s": nullable(SECONDS), "sha256": STR,
     "file_url": {**nullable(STR), "description": "its upload, once uploaded"},
     "billed": {"const": False, "description": "no model bills images, audio or voices"},
     "made_from_footage": BOOL},
    description="an image, standalone audio or voice reference (made from footage: the made file)",
)

ESTIMATE_CLIP = obj(
    {"path": STR, "duration_s": SECONDS, "billed_s": SECONDS},
    {"source_duration_s": nullable(SECONDS), "start_s": nullable(SECONDS), "notes": STRINGS},
)
ESTIMATE = obj(
    {"clips": array(ESTIMATE_CLIP), "input_billed_s": SECONDS, "output_billed_s": SECONDS,
     "total_billed_s": SECONDS, "quality": QUALITY, "credits": CREDITS, "price_source": STR},
    {"credits_units": UNITS, "credits_by_quality": BY_QUALITY, "usd": NUM, "minimum_applied": BOOL,
     "price_per_second": CREDITS, "notes": STRINGS, "model": MODEL_ID,
     "generate_audio": nullable(BOOL), "smart_duration_hold_s": nullable(INT),
     "references": array(REFERENCE)},
)

ESTIMATE_COMPARE = obj(
    {"clips": array(obj({"path": STR, "duration_s": SECONDS})), "output_s": INT, "quality": QUALITY,
     "models": array(obj(
         {"model": MODEL_ID, "generate_audio": nullable(BOOL), "accepted": BOOL,
          "credits": nullable(CREDITS), "credits_units": nullable(UNITS), "cuts": STRINGS,
          "problems": STRINGS},
         {"billed_input_s": nullable(SECONDS), "billed_output_s": nullable(SECONDS),
          "minimum_applied": nullable(BOOL), "clips_s": array(SECONDS)})),
     "cheapest": nullable(obj({"model": MODEL_ID, "generate_audio": nullable(BOOL)}))},
    {"price_source": STR},
    description="the same clips priced on every model: what each charges, cuts or refuses",
)

PROBED = obj(
    {"path": STR, "duration_s": SECONDS, "size_bytes": INT, "container": STR,
     "video_codec": nullable(STR), "width": INT, "height": INT, "fps": nullable(NUM),
     "has_audio": BOOL, "compliant": BOOL, "problems": STRINGS, "advice": STRINGS},
    {"video_duration_s": nullable(SECONDS), "audio_duration_s": nullable(SECONDS),
     "display_width": INT, "display_height": INT, "rotation": INT, "vfr": BOOL,
     "audio_codec": nullable(STR), "audio_channels": nullable(INT), "audio_rate": nullable(INT),
     "hdr": nullable(STR), "faststart": nullable(BOOL),
     "index_damage": {**nullable(STR), "description": "what is wrong with an mp4/mov index "
                                                      "MediaInfo read past (then not compliant)"},
     "model": MODEL_ID,
     "models": array(obj({"model": MODEL_ID, "compliant": BOOL, "problems": STRINGS}))},
)
PROBE_ERROR = obj(
    {"path": STR, "error": STR, "compliant": {"const": False}, "problems": STRINGS},
    {"advice": STRINGS},
    description="a clip that could not be probed (missing, unreadable, not a video)",
)

PREPARED = obj(
    {"source": STR, "output": nullable(STR), "action": {"enum": ["copy", "remux", "transcode"]},
     "duration_s": SECONDS, "size_bytes": INT},
    {"source_path": STR, "video_action": nullable(STR), "audio_action": nullable(STR),
     "width": INT, "height": INT, "start_s": SECONDS, "end_s": SECONDS, "profile": PROFILE,
     "reasons": STRINGS, "notes": STRINGS, "cached": BOOL, "elapsed_s": SECONDS,
     "dry_run": BOOL},
)
PREPARE_ERROR = obj(
    {"source": STR, "output": {"type": "null"}, "action": {"type": "null"}, "error": STR},
    description="a clip that could not be prepared; the other clips still are",
)

UPLOADED = obj(
    {"path": STR, "file_url": STR, "expires_at": nullable({"type": ["number", "string"]}),
     "cached": BOOL},
    {"file_id": nullable(STR), "size_bytes": nullable(INT), "sha256": nullable(STR)},
)

TASK_STATUS: S = {"enum": ["pending", "processing", "completed", "failed", "cancelled"]}
TASK = obj(
    {"id": STR, "status": TASK_STATUS, "progress": INT},
    {"model": STR, "created": nullable(INT), "estimated_time_s": nullable(NUM),
     "results": STRINGS, "credits_reserved": nullable(CREDITS),
     "credits_reserved_units": nullable(UNITS), "error": nullable(STR)},
)

TASKS = obj({"tasks": array(TASK), "page": INT},
            {"total": nullable(INT), "page_size": nullable(INT), "pages": nullable(INT)},
            description="a page of the account's tasks, newest first (no result links)")
MONEY: S = obj({"remaining": nullable(CREDITS), "remaining_units": nullable(UNITS),
                "used": nullable(CREDITS), "used_units": nullable(UNITS)})
ACCOUNT = obj(
    {"credits": nullable(obj(
        {"spendable": nullable(CREDITS), "spendable_units": nullable(UNITS),
         "limited_by": nullable({"enum": ["key", "account"]})},
        {"key": {**MONEY, "properties": {**MONEY["properties"], "unlimited": BOOL}},
         "account": MONEY})),
     "files": nullable({"type": "object", "description": "the files API's quota, as it answers"}),
     "notes": STRINGS},
    description="credits (null: not reported by the server), the file quota, and notes",
)

CHECK_STATUS: S = {"enum": ["pass", "warn", "fail"]}
VERDICT: S = {"enum": ["good", "fair", "poor"]}
ONE_CHECK = obj({"status": CHECK_STATUS, "value": {"type": ["number", "null"]}, "message": STR},
                {"unit": STR})
CHECKS = obj({name: ONE_CHECK for name in CHECK_NAMES},
             description="every named check: pass, warn or fail, what it measured, what to do")
# A clip's check inside a job (generate's `checks`, the batch dry run's `clips[].check`).
JOB_CHECK = obj(
    {"verdict": VERDICT, "reasons": STRINGS, "checks": CHECKS},
    {"path": STR, "spec": STR, "start_s": SECONDS, "end_s": SECONDS,
     "reused_pick_analysis": BOOL, "cached": BOOL, "model": MODEL_ID},
)
CHECKED = obj(
    {"path": STR, "spec": STR, "verdict": VERDICT, "reasons": STRINGS, "checks": CHECKS},
    {"start_s": SECONDS, "end_s": SECONDS, "duration_s": SECONDS, "elapsed_s": SECONDS,
     "cached": BOOL, "model": MODEL_ID},
)
CHECK_ERROR = obj(
    {"path": STR, "spec": STR, "verdict": {"type": "null"}, "error": STR,
     "checks": {"type": "object", "maxProperties": 0}}, {"model": MODEL_ID},
    description="a clip that could not be checked (missing, unreadable, no pick extra)",
)

GENERATE = obj(
    {"task_id": nullable(STR), "status": nullable(TASK_STATUS), "files": STRINGS,
     "credits_estimated": nullable(CREDITS), "credits_reserved": nullable(CREDITS),
     "exit_code": EXIT_CODE, "error": nullable(STR)},
    {"stopped": nullable(STR), "credits_estimated_units": nullable(UNITS),
     "credits_reserved_units": nullable(UNITS), "credits_differ": BOOL,
     "aspect_ratio": nullable(STR), "estimate": nullable(ESTIMATE), "prepared": STRINGS,
     "uploads": array(obj({"path": STR, "file_url": STR})), "request": nullable({"type": "object"}),
     "idempotency_key": nullable(STR), "replayed": BOOL, "resumed": BOOL,
     "task": nullable(TASK), "job": nullable(STR), "state": nullable(STR),
     "journal": nullable(STR), "hint": nullable(STR),
     "stage_s": {"type": "object", "additionalProperties": SECONDS},
     "checks": array(nullable(JOB_CHECK), maxItems=3), "references": array(REFERENCE)},
    description="the run's summary; a run that stopped before it had one (a bad option, a "
                "missing clip, no key, a declined cost) answers with the required fields only, "
                "the unknown ones null, and its exit_code, error and hint",
)

JOB_ROW = obj(
    {"name": STR, "state": STR, "task_id": nullable(STR), "error": nullable(STR),
     "exit_code": nullable(EXIT_CODE)},
    {"line": nullable(INT), "clips": obj({"total": INT}, {"prepared": INT, "uploaded": INT}),
     "task_status": nullable(STR), "progress": nullable(INT),
     "estimate_credits": nullable(CREDITS), "measured_credits": nullable(CREDITS),
     "credits_reserved": nullable(CREDITS), "credits_reserved_units": nullable(UNITS),
     "result_path": nullable(STR), "result_sha256": nullable(STR), "result_bytes": nullable(INT),
     "submissions": INT, "idempotency_key": nullable(STR), "outcome": STR},
)
BATCH_RUN = obj(
    {"jobs": array(JOB_ROW), "counts": {"type": "object", "additionalProperties": INT},
     "exit_code": EXIT_CODE},
    {"interrupted": BOOL, "halted": nullable(STR), "timed_out": BOOL, "rate_limit_pauses": INT,
     "elapsed_s": SECONDS},
)
BATCH_STATUS = obj({"folder": STR, "jobs": array(JOB_ROW)})

PLANNED_CLIP = obj(
    {"path": STR, "duration_s": SECONDS, "billed_s": SECONDS},
    {"spec": STR, "start_s": nullable(SECONDS), "picked": nullable({"type": "object"}),
     "check": nullable(JOB_CHECK), "notes": STRINGS},
)
PLANNED_JOB = obj(
    {"name": STR, "clips": array(PLANNED_CLIP, minItems=1, maxItems=3), "prompt": STR,
     "duration": INT, "quality": QUALITY, "total_billed_s": SECONDS, "credits": CREDITS},
    {"line": nullable(INT), "pick": BOOL, "aspect_ratio": nullable(STR), "shot_type": nullable(STR),
     "callback_url": nullable(STR), "input_billed_s": SECONDS, "output_billed_s": SECONDS,
     "credits_units": UNITS, "credits_by_quality": BY_QUALITY, "minimum_applied": BOOL,
     "references": array(REFERENCE)},
)
BATCH_DRY_RUN = obj(
    {"manifest": STR, "jobs": array(PLANNED_JOB),
     "total": obj({"jobs": INT, "total_billed_s": SECONDS, "credits": CREDITS},
                  {"input_billed_s": SECONDS, "output_billed_s": SECONDS, "credits_units": UNITS,
                   "credits_by_quality": BY_QUALITY, "usd": NUM}),
     "price_source": STR},
)
BATCH_PROBLEMS = obj(
    {"manifest": STR, "problems": array(obj(
        {"line": INT, "message": STR, "exit_code": {"enum": [2, 3]}}, {"name": nullable(STR)}),
        minItems=1)},
    description="a manifest with bad rows: every problem, nothing run (exit 2, or 3 for a clip)",
)
BATCH_RESOLVE = obj({"job": STR, "resolved": BOOL, "message": STR})

SPAN = obj({"start_s": SECONDS, "end_s": SECONDS})
COVERAGE = obj({"face_ratio": NUM, "speech_ratio": NUM, "both_ratio": NUM})
PICK = obj(
    {"path": STR, "clip_spec": STR, "start_s": SECONDS, "end_s": SECONDS, "length_s": SECONDS,
     "usable": BOOL, "warnings": STRINGS},
    {"billed_head_s": SECONDS,
     "clips_in_job": {"type": "integer", "minimum": 1,
                      "maximum": max(m.videos.count.high for m in rules.MODEL_SPECS)},
     "model": MODEL_ID, "billed_s": {**SECONDS, "description": "seconds of the window billed"},
     "every_second_billed": BOOL, "shortest_passing": BOOL, "notes": STRINGS,
     "score": NUM, "face_ratio": NUM, "speech_ratio": NUM, "both_ratio": NUM, "head": COVERAGE,
     "shot": obj({"index": INT, "start_s": SECONDS, "end_s": SECONDS}),
     "crosses_cuts": INT, "cuts_s": array(SECONDS),
     "shots": array(obj({"index": INT, "start_s": SECONDS, "end_s": SECONDS})),
     "faces": array(SPAN), "speech": array(SPAN), "analysis": {"type": "object"},
     "timeline": STR},
)

CONFIG_SHOW = obj(
    {"config_file": STR, "api_key": {"enum": ["set", "missing"]}, "base_url": STR,
     "files_url": STR, "cache_dir": STR, "ffmpeg": nullable(STR)},
    {"poll_max_interval_s": NUM, "connect_timeout_s": NUM, "model": MODEL_ID, "scheduler": nullable(STR),
     "prices": obj({"price_per_second": CREDITS, "price_1080p_multiplier": NUM,
                    "min_charge": CREDITS, "price_source": STR},
                   {"flash_price_per_second": CREDITS, "flash_1080p_multiplier": NUM,
                    "flash_min_charge": CREDITS, "flash_no_audio_multiplier": NUM,
                    **{name: CREDITS for name, _model in MODEL_PRICE_KEYS}}),
     "sources": {"type": "object", "additionalProperties": STR}},
    description="the settings in effect; the API key itself is never shown",
)
CONFIG_GET = obj({"name": STR, "value": {"type": ["string", "number", "boolean", "null"]}},
                 description="one key of the config file (null: not set there; the key: 'set')")
DOCTOR = obj(
    {"ffmpeg": STR, "source": STR, "version": STR,
     "features": {"type": "object", "additionalProperties": BOOL}, "ok": BOOL},
    {"missing": STRINGS, "cache": STR, "mediainfo": STR,
     "version_ok": {**BOOL, "description": "false when this ffmpeg is older than prep needs"},
     "minimum_version": STR,
     "note": {**STR, "description": "what was passed over to find this ffmpeg, or empty"}},
)
SANDBOX = obj({"base_url": STR, "files_url": STR, "api_key": STR},
              description="the one line `prep sandbox --json` prints once it serves")

TIME: S = {"type": ["string", "number"], "description": "a timecode or seconds"}
MANIFEST_CLIP = {"oneOf": [
    {"type": "string", "minLength": 1, "description": "PATH or PATH@START-END"},
    {"type": "object", "required": ["path"], "additionalProperties": False,
     "properties": {"path": {"type": "string", "minLength": 1}, "start": TIME, "end": TIME}},
]}
MANIFEST_FILE: S = {"type": "string", "minLength": 1, "description": "PATH (footage: made from it)"}
MANIFEST_FILES: S = {"oneOf": [MANIFEST_FILE, array(MANIFEST_FILE)]}
MANIFEST_VOICE: S = {"oneOf": [
    {"type": "string", "minLength": 1, "description": "PATH or PATH@video2 (what it speaks for)"},
    {"type": "object", "required": ["path"], "additionalProperties": False,
     "properties": {"path": {"type": "string", "minLength": 1},
                    "for": {"type": "string", "pattern": "^(video|image)[1-9][0-9]*$"}}},
]}
MANIFEST = {
    "type": "object", "required": ["name", "clips", "prompt"], "additionalProperties": False,
    "description": "one job of a batch manifest: a line of a JSONL file (a CSV row has the same "
                   "columns, with clips separated by ';')",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[^/\\\\:*?\"<>|]+$"},
        # Every model's widest limits; a row is checked against its own model's when read.
        "clips": array(MANIFEST_CLIP, minItems=1,
                       maxItems=max(m.videos.count.high for m in rules.MODEL_SPECS)),
        "prompt": {"type": "string", "minLength": 1,
                   "maxLength": max(m.prompt_chars for m in rules.MODEL_SPECS)},
        "duration": {"type": "integer", "minimum": -1,
                     "maximum": max(m.durations_s.high for m in rules.MODEL_SPECS)},
        "quality": QUALITY,
        "aspect_ratio": {"enum": ["auto", *dict.fromkeys(a for m in rules.MODEL_SPECS
                                                         for a in m.aspect_ratios)]},
        "shot_type": {"enum": list(rules.SHOT_TYPES)},
        "callback_url": {"type": "string", "pattern": "^https://"},
        "model": {"type": "string", "description": "a model id or alias (2.6, flash, 2.7, 3.0, "
                                                   "3.0-prime)"},
        "generate_audio": BOOL,
        "seed": INT,
        "negative_prompt": STR,
        "prompt_extend": BOOL,
        "pick": {"type": "boolean"},
        # References besides the clips; a row's model says which it takes and how many.
        "image": MANIFEST_FILES,
        "audio": MANIFEST_FILES,
        "voice": {"oneOf": [MANIFEST_VOICE, array(MANIFEST_VOICE)]},
    },
}

BATCH_EXPORT = obj({
    "folder": STR,
    "timeline": {"type": "string", "description": "the timeline file written"},
    "clips": array(obj({
        "job": STR,
        "path": {"type": "string", "description": "the result file (absolute)"},
        "start_s": {**SECONDS, "description": "where the clip sits on the exported track"},
        "duration_s": SECONDS,
        "task_id": nullable(STR),
        "credits_units": nullable(UNITS),
    })),
})

SCHEMAS: dict[str, tuple[str, S]] = {
    "probe": ("prep probe --json", array({"anyOf": [PROBED, PROBE_ERROR]})),
    "estimate": ("prep estimate --json", ESTIMATE),
    "estimate-compare": ("prep estimate --compare --json", ESTIMATE_COMPARE),
    "prepare": ("prep prepare --json", array({"anyOf": [PREPARED, PREPARE_ERROR]})),
    "upload": ("prep upload --json", array(UPLOADED)),
    "generate": ("prep generate --json", GENERATE),
    "account": ("prep account --json", ACCOUNT),
    "tasks": ("prep tasks --json", TASKS),
    "task": ("prep task --json", {**TASK, "properties": {**TASK["properties"], "files": STRINGS}}),
    "batch": ("prep batch MANIFEST --json", BATCH_RUN),
    "batch-dry-run": ("prep batch MANIFEST --dry-run --json", BATCH_DRY_RUN),
    "batch-problems": ("prep batch MANIFEST --json, when rows are bad", BATCH_PROBLEMS),
    "batch-status": ("prep batch status DIR --json", BATCH_STATUS),
    "batch-resolve": ("prep batch resolve DIR JOB --json", BATCH_RESOLVE),
    "batch-export": ("prep batch export DIR -o FILE --json", BATCH_EXPORT),
    "pick": ("prep pick --json", PICK),
    "check": ("prep check --json", array({"anyOf": [CHECKED, CHECK_ERROR]})),
    "config-show": ("prep config show --json", CONFIG_SHOW),
    "config-get": ("prep config get NAME --json", CONFIG_GET),
    "doctor": ("prep doctor --json", DOCTOR),
    "sandbox": ("prep sandbox --json", SANDBOX),
    "manifest": ("one job of a batch manifest (JSONL line or CSV row)", MANIFEST),
}


def documents() -> dict[str, str]:
    """File name -> text of every schema."""
    docs = {}
    for name, (title, schema) in SCHEMAS.items():
        doc = {"$schema": DIALECT, "$id": f"urn:evolink-prep:schema:{name}", "title": title,
               **schema}
        docs[f"{name}.json"] = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return docs


def main(argv: list[str]) -> int:
    docs = documents()
    stale = sorted(name for name, text in docs.items()
                   if not (OUT / name).is_file() or (OUT / name).read_text(encoding="utf-8") != text)
    extra = sorted(p.name for p in OUT.glob("*.json") if p.name not in docs)
    if "--check" in argv:
        for name in stale + extra:
            print(f"prep/schemas/{name} is stale: run python scripts/schemas.py", file=sys.stderr)
        return 1 if stale or extra else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (OUT / name).write_text(docs[name], encoding="utf-8")
    for name in extra:
        (OUT / name).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
