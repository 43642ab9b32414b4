"""The OpenAPI 3.1 document of what the sandbox implements (served at GET /openapi.json).

It lists every route the application serves (a test compares the two), both models' requests,
and states, as schema keywords, the same limits the sandbox's validation enforces: the prompt
must hold a non-space character and at most 1500 characters, 1 to 3 http(s) video URLs, the
enums, the output range, an https callback URL of at most 2048 characters, generate_audio for the
flash model only, the task id's shape. The standard request restates EvoLink's published schema (a
test compares them) and adds what that document says only in prose.
Rules that need the network (a callback host that resolves to an internal address) or the videos
(2-30 s, mp4/mov, 100MB) are in the descriptions.
"""

from __future__ import annotations

from typing import Any

from . import limits
from .config import (
    MAX_FILES_LIMIT,
    MAX_UPLOAD_BYTES_LIMIT,
    SPEED_RANGE,
    TIMEOUT_LIMITS_S,
    TIMEOUT_MIN_S,
)
from .faults import ENDPOINTS, KINDS, TASK_ERROR_CODES

__all__ = ["TASK_ID_SCHEMA", "flash_request_schema", "generation_request_schema",
           "openapi_document"]

TASK_ID_SCHEMA: dict[str, Any] = {"type": "string", "pattern": f"^{limits.TASK_ID_PATTERN}$"}
_STATUSES = ["pending", "processing", "completed", "failed", "cancelled"]


def generation_request_schema() -> dict[str, Any]:
    """JSON Schema of the POST /v1/videos/generations body for wan2.6-reference-video."""
    return {
        "type": "object",
        "required": ["model", "prompt", "video_urls"],
        # The standard model documents no generate_audio; the sandbox refuses it there.
        "not": {"required": ["generate_audio"]},
        "properties": {
            "model": {"type": "string", "enum": [limits.MODEL], "default": limits.MODEL,
                      "description": "Model name"},
            "prompt": {"type": "string", "minLength": 1, "maxLength": limits.PROMPT_MAX_CHARS,
                       "pattern": r"\S",
                       "description": "What to generate: at most 1500 characters, not only "
                                      "spaces, valid Unicode (no lone surrogates)"},
            "video_urls": {
                "type": "array",
                "items": {"type": "string", "format": "uri", "pattern": "^https?://[^/?#]"},
                "minItems": limits.URL_COUNT_MIN, "maxItems": limits.URL_COUNT_MAX,
                "description": "1 to 3 http(s) URLs of mp4/mov reference videos, each 2-30 s and "
                               "at most 100MB (100,000,000 bytes). The sandbox reads the videos "
                               "it hosts; other hosts are refused unless accept_foreign_urls is "
                               "on (then they are billed at the cap, never fetched).",
            },
            "aspect_ratio": {"type": "string", "enum": list(limits.ASPECT_RATIOS),
                             "default": limits.ASPECT_RATIO_DEFAULT},
            "quality": {"type": "string", "enum": list(limits.QUALITIES),
                        "default": limits.QUALITY_DEFAULT},
            "duration": {"type": "integer", "minimum": limits.OUTPUT_MIN_S,
                         "maximum": limits.OUTPUT_MAX_S, "default": limits.OUTPUT_DEFAULT_S},
            "model_params": {
                "type": "object",
                "properties": {"shot_type": {"type": "string", "enum": list(limits.SHOT_TYPES),
                                             "default": limits.SHOT_TYPE_DEFAULT}},
            },
            "callback_url": {
                "type": "string", "format": "uri",
                "maxLength": limits.CALLBACK_URL_MAX_CHARS, "pattern": r"^https://[^\s/?#]+\S*$",
                "description": "HTTPS only; no internal addresses (loopback, private, link-local, "
                               "in any spelling: 127.1, 0x7f.1, 2130706433, [::1]; single-label "
                               "and .local/.internal names; names that resolve to one). The "
                               "sandbox delivers callbacks only to 127.0.0.1, and only with "
                               "allow_local_callbacks (which also allows http there).",
            },
        },
    }


def flash_request_schema() -> dict[str, Any]:
    """JSON Schema of the same body for wan2.6-reference-video-flash: the same fields plus a
    top-level generate_audio."""
    schema = generation_request_schema()
    del schema["not"]
    props = schema["properties"]
    props["model"] = {"type": "string", "enum": [limits.FLASH_MODEL],
                      "description": "The flash variant: cheaper, with or without audio"}
    props["generate_audio"] = {
        "type": "boolean", "default": limits.GENERATE_AUDIO_DEFAULT,
        "description": "Whether the result has a sound track. Without it the task costs half "
                       "the rate (1.19 instead of 2.38 credits a billed second at 720p); the "
                       "minimum charge of 9 credits still applies."}
    return schema


def _task_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["created", "id", "model", "object", "progress", "status", "task_info",
                     "type", "usage"],
        "properties": {
            "created": {"type": "integer"},
            "id": TASK_ID_SCHEMA,
            "model": {"type": "string", "enum": list(limits.SERVED_MODELS)},
            "object": {"type": "string", "enum": ["video.generation.task"]},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "status": {"type": "string", "enum": _STATUSES},
            "task_info": {"type": "object", "properties": {
                "can_cancel": {"type": "boolean"},
                "estimated_time": {"type": "integer", "minimum": 0}}},
            "type": {"type": "string", "enum": ["text", "image", "audio", "video"]},
            "usage": {"type": "object", "properties": {
                "billing_rule": {"type": "string", "enum": ["per_call", "per_token", "per_second"]},
                "credits_reserved": {"type": "number", "minimum": 0},
                "user_group": {"type": "string", "enum": ["default", "vip"]}}},
            "results": {"type": "array", "items": {"type": "string", "format": "uri"},
                        "description": "Result URLs, once completed (valid 24 hours)"},
            "error": {"type": "object", "required": ["code", "message", "type"],
                      "description": "Why a failed task failed, in EvoLink's task error "
                                     "vocabulary",
                      "properties": {
                          "code": {"type": "string", "enum": list(limits.TASK_ERRORS)},
                          "message": {"type": "string"},
                          "type": {"type": "string", "enum": sorted(
                              {kind for kind, _ in limits.TASK_ERRORS.values()})}}},
        },
    }


def _list_item_schema() -> dict[str, Any]:
    schema = _task_schema()
    del schema["properties"]["results"]
    schema["properties"].update({
        "created_at": {"type": "integer", "description": "Unix seconds"},
        "has_results": {"type": "boolean"}, "has_error": {"type": "boolean"},
        "credits_used": {"type": "number", "description": "Once completed"}})
    schema["description"] = "A task as the list shows it: no result links"
    return schema


def _credits_schema() -> dict[str, Any]:
    pair = {"remaining_credits": {"type": "number"}, "used_credits": {"type": "number"}}
    return {"type": "object", "required": ["data"], "properties": {"data": {
        "type": "object", "required": ["user", "token"], "properties": {
            "user": {"type": "object", "properties": pair,
                     "description": "The account: its balance left and what it has spent"},
            "token": {"type": "object", "properties": {
                **pair, "unlimited_credits": {"type": "boolean"}},
                "description": "This key: what it may still spend (its own limit, or the "
                               "account's balance when it has none) and what it has spent"},
            "reserved_credits": {"type": "number",
                                 "description": "Held by unfinished tasks (sandbox extra)"}}}}}


_ERROR = {"$ref": "#/components/schemas/ErrorResponse"}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "Invalid request", 401: "Missing or invalid key", 402: "Insufficient quota",
            403: "Access denied or quota of files reached", 404: "Not found",
            408: "Request body stalled", 409: "Idempotency-Key reused with another body",
            413: "Body or file too large", 416: "Range not satisfiable",
            429: "Rate limit exceeded", 500: "Internal server error"}
    return {str(s): {"description": text[s], "content": {"application/json": {"schema": _ERROR}}}
            for s in statuses}


def _file_envelope() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "success": {"type": "boolean"}, "code": {"type": "integer"}, "msg": {"type": "string"},
            "data": {"$ref": "#/components/schemas/FileData"},
        },
    }


def _download(get_id: str, head_id: str, id_name: str, summary: str) -> dict[str, Any]:
    parameters = [
        {"name": id_name, "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"},
         "description": "One bytes=START-END range; other units and several ranges get it all"}]
    responses = {"200": {"description": "The bytes"}, "206": {"description": "Part of the bytes"},
                 **_errors(403, 404, 416)}
    return {
        "get": {"operationId": get_id, "summary": summary, "security": [],
                "parameters": parameters, "responses": responses},
        "head": {"operationId": head_id, "summary": f"{summary}: headers only", "security": [],
                 "parameters": parameters, "responses": responses},
    }


def _paging_parameters(size_name: str) -> list[dict[str, Any]]:
    return [{"name": "page", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "default": 1}},
            {"name": size_name, "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": limits.PAGE_SIZE_MAX,
                        "default": limits.PAGE_SIZE_DEFAULT}}]


def _control(operation: str, summary: str, schema: dict[str, Any] | None = None,
             answer: str = "OK") -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": operation, "security": [], "summary": summary,
                           "responses": {"200": {"description": answer}, **_errors(400, 413)}}
    if schema is not None:
        out["requestBody"] = {"required": False,
                              "content": {"application/json": {"schema": schema}}}
    return out


def config_schema() -> dict[str, Any]:
    """The switches POST /_sandbox/config takes, with the ranges SandboxConfig enforces."""
    number = {"type": "number"}
    fraction = {"type": ["number", "string"],
                "description": "A number or a fraction such as '167/100'"}
    prices = {"type": "object", "additionalProperties": False, "properties": {
        "units_per_second": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
        "hd_multiplier": fraction, "silent_multiplier": fraction,
        "minimum_units": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000}}}
    return {
        "type": "object", "additionalProperties": False,
        "properties": {
            "speed": {**number, "minimum": SPEED_RANGE[0], "maximum": SPEED_RANGE[1],
                      "description": "Simulated seconds per real second"},
            "honour_idempotency": {"type": "boolean"},
            "allow_local_callbacks": {"type": "boolean"},
            "accept_foreign_urls": {"type": "boolean"},
            "max_upload_bytes": {"type": "integer", "minimum": 1,
                                 "maximum": MAX_UPLOAD_BYTES_LIMIT},
            "max_files": {"type": "integer", "minimum": 0, "maximum": MAX_FILES_LIMIT},
            **{name: {**number, "minimum": TIMEOUT_MIN_S, "maximum": high}
               for name, high in TIMEOUT_LIMITS_S.items()},
            "hosts": {"type": "object", "additionalProperties": {"type": "string"},
                      "description": "Host name -> IP address, consulted before DNS"},
            "prices": {**prices, "description": "wan2.6-reference-video's tariff in units of "
                                                "1/10,000 credit; fields left out take "
                                                "EvoLink's public defaults"},
            "flash_prices": {**prices, "description": "wan2.6-reference-video-flash's tariff; "
                                                      "silent_multiplier prices a task without "
                                                      "audio (default 1/2)"},
        },
    }


def _control_paths() -> dict[str, Any]:
    fault = {"type": "object", "additionalProperties": False, "required": ["kind"], "properties": {
        "kind": {"type": "string", "enum": [*KINDS, "reset_mid_body"]},
        "endpoint": {"type": ["string", "null"], "enum": [*ENDPOINTS, None]},
        "error_code": {"type": "string", "enum": list(TASK_ERROR_CODES),
                       "description": "fail_task: the failed task's error code"},
        "key": {"type": ["string", "null"]},
        "times": {"type": ["integer", "null"], "minimum": 1},
        "retry_after_s": {"type": "integer", "minimum": 0},
        "delay_s": {"type": "number", "minimum": 0, "maximum": 600}}}
    clock = {"type": "object", "required": ["advance_s"], "properties": {
        "advance_s": {"type": "number", "minimum": 0, "maximum": 10 * 365 * 86400}}}
    key = {"type": "object", "required": ["key"], "properties": {
        "key": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": r"^\S+$"},
        "credits": {"type": ["number", "null"], "minimum": 0, "maximum": 10**12,
                    "description": "The account's balance; null: unlimited"},
        "limit": {"type": ["number", "null"], "minimum": 0, "maximum": 10**12,
                  "description": "The key's own spending limit; null: none"},
        "models": {"type": "array", "items": {"type": "string"}},
        "max_files": {"type": "integer", "minimum": 0, "maximum": MAX_FILES_LIMIT},
        "user_group": {"type": "string", "enum": ["default", "vip"]}}}
    return {
        "/_sandbox/state": {"get": _control("sandboxState", "Uploads, tasks, requests, keys, "
                                            "clock and switches")},
        "/_sandbox/reset": {"post": _control("sandboxReset", "Forget everything")},
        "/_sandbox/faults": {
            "get": _control("sandboxFaults", "The planned faults"),
            "post": _control("sandboxFault", "Plan a fault", fault, "The planned faults"),
            "delete": _control("sandboxClearFaults", "Drop every planned fault"),
        },
        "/_sandbox/clock": {
            "get": _control("sandboxClockNow", "The sandbox's clock"),
            "post": _control("sandboxClock", "Move the clock forward", clock),
        },
        "/_sandbox/config": {
            "get": _control("sandboxConfigNow", "The switches in use"),
            "post": _control("sandboxConfig", "Change switches until the next reset",
                             config_schema(), "The switches in use"),
        },
        "/_sandbox/keys": {"post": _control("sandboxKeys", "Add or change an API key", key,
                                            "The key's id")},
    }


def openapi_document(server_url: str) -> dict[str, Any]:
    """The whole document; `server_url` is where this sandbox listens."""
    bearer: list[dict[str, list[str]]] = [{"bearerAuth": []}]
    json_ok = {"200": {"description": "OK", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/VideoGenerationResponse"}}}}}
    file_ok = {"200": {"description": "Stored", "content": {"application/json": {
        "schema": _file_envelope()}}}}
    upload_fields = {
        "upload_path": {"type": "string", "maxLength": 1024},
        "file_name": {"type": "string", "maxLength": 1024},
        "uploadPath": {"type": "string", "maxLength": 1024,
                       "description": "The same as upload_path (both spellings are accepted)"},
        "fileName": {"type": "string", "maxLength": 1024,
                     "description": "The same as file_name (both spellings are accepted)"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "prep sandbox (local EvoLink stand-in)",
            "version": "1.0.0",
            "description": "EvoLink's files API, wan2.6-reference-video and "
                           "wan2.6-reference-video-flash generation, task queries and the "
                           "account endpoints its own clients use, served locally; plus "
                           "/_sandbox control endpoints for tests. Unknown paths and methods "
                           "answer 404.",
        },
        "servers": [{"url": server_url}],
        "security": bearer,
        "paths": {
            "/api/v1/files/upload/base64": {"post": {
                "operationId": "uploadBase64", "summary": "Upload a file as base64",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["base64_data"],
                    "properties": {"base64_data": {
                        "type": "string",
                        "description": "data:video/mp4;base64,... or bare base64"},
                        **upload_fields},
                }}}},
                "responses": {**file_ok, **_errors(400, 401, 403, 408, 413, 429, 500)},
            }},
            "/api/v1/files/upload/stream": {"post": {
                "operationId": "uploadStream", "summary": "Upload a file as multipart form data",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"},
                                   **upload_fields},
                }}}},
                "responses": {**file_ok, **_errors(400, 401, 403, 408, 413, 429, 500)},
            }},
            "/api/v1/files/upload/url": {"post": {
                "operationId": "uploadUrl",
                "summary": "Upload a file the server fetches (the sandbox fetches only from this machine)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["file_url"],
                    "properties": {"file_url": {"type": "string", "format": "uri"}, **upload_fields},
                }}}},
                "responses": {**file_ok, **_errors(400, 401, 403, 408, 413, 429, 500)},
            }},
            "/api/v1/files/quota": {"get": {
                "operationId": "fileQuota", "summary": "Files stored and allowed",
                "responses": {"200": {"description": "Quota", "content": {"application/json": {
                    "schema": {"type": "object", "properties": {
                        "success": {"type": "boolean"}, "code": {"type": "integer"},
                        "msg": {"type": "string"},
                        "data": {"type": "object", "properties": {
                            "user_group": {"type": "string"}, "used_files": {"type": "integer"},
                            "max_files": {"type": "integer"},
                            "remain_files": {"type": "integer"}}}}}}}},
                    **_errors(401, 429, 500)},
            }},
            "/api/v1/files/list": {"get": {
                "operationId": "listFiles", "summary": "The key's uploaded files, newest first",
                "parameters": _paging_parameters("pageSize"),
                "responses": {"200": {"description": "A page of files", "content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "success": {"type": "boolean"}, "code": {"type": "integer"},
                        "msg": {"type": "string"},
                        "data": {"type": "object", "properties": {
                            "files": {"type": "array",
                                      "items": {"$ref": "#/components/schemas/FileData"}},
                            "total": {"type": "integer"}, "page": {"type": "integer"},
                            "page_size": {"type": "integer"}}}}}}}},
                    **_errors(400, 401, 429, 500)},
            }},
            "/api/v1/files/{file_id}": {"delete": {
                "operationId": "deleteFile", "summary": "Delete a file before it expires",
                "parameters": [{"name": "file_id", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": {"description": "Deleted"}, **_errors(401, 404, 429, 500)},
            }},
            "/v1/videos/generations": {"post": {
                "operationId": "createWan26ReferenceVideoGeneration",
                "summary": "wan2.6-reference-video: create a generation task",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "schema": {"type": "string",
                                           "pattern": f"^{limits.IDEMPOTENCY_KEY_PATTERN}$"},
                                "description": "Ignored unless the sandbox honours idempotency"}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"oneOf": [
                        {"$ref": "#/components/schemas/Wan26ReferenceVideoRequest"},
                        {"$ref": "#/components/schemas/Wan26ReferenceVideoFlashRequest"}],
                        "discriminator": {"propertyName": "model", "mapping": {
                            limits.MODEL: "#/components/schemas/Wan26ReferenceVideoRequest",
                            limits.FLASH_MODEL:
                                "#/components/schemas/Wan26ReferenceVideoFlashRequest"}}}}}},
                "responses": {**json_ok, **_errors(400, 401, 402, 403, 409, 413, 429, 500)},
            }},
            "/v1/credits": {"get": {
                "operationId": "getCredits",
                "summary": "The account's and this key's credits, remaining and used. A task's "
                           "credits are held when it is created, spent when it completes and "
                           "returned when it fails; a task they cannot cover is refused 402.",
                "responses": {"200": {"description": "Credits", "content": {"application/json": {
                    "schema": _credits_schema()}}}, **_errors(401, 429, 500)},
            }},
            "/v1/tasks": {"get": {
                "operationId": "listTasks", "summary": "A page of this key's tasks, newest first",
                "parameters": [
                    {"name": "status", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": list(limits.TASK_STATUSES)},
                     "description": "processing includes queued (pending) tasks"},
                    {"name": "type", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": ["text", "image", "audio", "video"]}},
                    {"name": "model", "in": "query", "required": False,
                     "schema": {"type": "string"}},
                    *_paging_parameters("page_size")],
                "responses": {"200": {"description": "A page of tasks", "content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "data": {"type": "array", "items": _list_item_schema()},
                        "total": {"type": "integer"}, "page": {"type": "integer"},
                        "page_size": {"type": "integer"}}}}}},
                    **_errors(400, 401, 429, 500)},
            }},
            "/v1/tasks/batch": {"post": {
                "operationId": "getTasks",
                "summary": "Several tasks at once; unknown ids and other keys' tasks are absent",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["task_ids"], "properties": {"task_ids": {
                        "type": "array", "items": {"type": "string"}, "minItems": 1,
                        "maxItems": limits.TASK_BATCH_MAX}}}}}},
                "responses": {"200": {"description": "The tasks found, in the order asked",
                                      "content": {"application/json": {"schema": {
                                          "type": "object", "properties": {"data": {
                                              "type": "array", "items": {
                                                  "$ref": "#/components/schemas/"
                                                          "VideoGenerationResponse"}}}}}}},
                              **_errors(400, 401, 413, 429, 500)},
            }},
            "/v1/tasks/{task_id}": {"get": {
                "operationId": "getTask", "summary": "A task's status, progress and results",
                "parameters": [{"name": "task_id", "in": "path", "required": True,
                                "schema": TASK_ID_SCHEMA,
                                "description": "A malformed id answers 400 invalid_task_id"}],
                "responses": {**json_ok, **_errors(400, 401, 404, 429, 500)},
            }},
            "/cdn/files/{file_id}/{name}": _download("getFile", "headFile", "file_id",
                                                     "An uploaded file (no auth; Range supported)"),
            "/cdn/results/{task_id}/{name}": _download(
                "getResult", "headResult", "task_id", "A result video (no auth; valid 24 hours)"),
            "/openapi.json": {"get": {"operationId": "openapi", "security": [],
                                      "summary": "This document",
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/": {"get": {"operationId": "index", "security": [],
                          "summary": "Where the sandbox listens and its other documents",
                          "responses": {"200": {"description": "Service, base_url, files_url, "
                                                               "openapi and state URLs"}}}},
            **_control_paths(),
        },
        "components": {
            "schemas": {
                "Wan26ReferenceVideoRequest": generation_request_schema(),
                "Wan26ReferenceVideoFlashRequest": flash_request_schema(),
                "VideoGenerationResponse": _task_schema(),
                "ErrorResponse": {"type": "object", "properties": {"error": {
                    "type": "object", "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"},
                        "type": {"type": "string"}}}}},
                "FileData": {"type": "object", "properties": {
                    name: {"type": kind} for name, kind in (
                        ("file_id", "string"), ("file_name", "string"),
                        ("original_name", "string"), ("file_size", "integer"),
                        ("mime_type", "string"), ("upload_path", "string"),
                        ("file_url", "string"), ("download_url", "string"),
                        ("upload_time", "string"), ("expires_at", "string"))}},
            },
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
