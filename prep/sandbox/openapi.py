"""The OpenAPI 3.1 document of what the sandbox implements (served at GET /openapi.json).

The generation request's schema restates EvoLink's published one (the same fields, enums and
limits; a test compares them) and adds, as schema keywords, the limits that the published document
states only in prose (1 video at least, the aspect ratios, the qualities, the callback URL length).
"""

from __future__ import annotations

from typing import Any

from prep.core import rules

__all__ = ["generation_request_schema", "openapi_document"]


def generation_request_schema() -> dict[str, Any]:
    """JSON Schema of the POST /v1/videos/generations body."""
    return {
        "type": "object",
        "required": ["model", "prompt", "video_urls"],
        "properties": {
            "model": {"type": "string", "enum": [rules.MODEL], "default": rules.MODEL,
                      "description": "Model name"},
            "prompt": {"type": "string", "maxLength": rules.MAX_PROMPT_CHARS,
                       "description": "What to generate (at most 1500 characters)"},
            "video_urls": {
                "type": "array", "items": {"type": "string", "format": "uri"},
                "minItems": rules.MIN_CLIPS, "maxItems": rules.MAX_CLIPS,
                "description": "1 to 3 http(s) URLs of mp4/mov reference videos, each 2-30 s and "
                               "at most 100MB. The sandbox probes the videos it hosts; other "
                               "hosts are refused unless accept_foreign_urls is on.",
            },
            "aspect_ratio": {"type": "string", "enum": list(rules.ASPECT_RATIOS),
                             "default": rules.DEFAULT_ASPECT_RATIO},
            "quality": {"type": "string", "enum": list(rules.QUALITIES),
                        "default": rules.DEFAULT_QUALITY},
            "duration": {"type": "integer", "minimum": rules.MIN_OUTPUT_S,
                         "maximum": rules.MAX_OUTPUT_S, "default": rules.DEFAULT_OUTPUT_S},
            "model_params": {
                "type": "object",
                "properties": {"shot_type": {"type": "string", "enum": list(rules.SHOT_TYPES),
                                             "default": rules.DEFAULT_SHOT_TYPE}},
            },
            "callback_url": {
                "type": "string", "format": "uri", "maxLength": rules.MAX_CALLBACK_URL_CHARS,
                "description": "HTTPS only; no internal addresses. The sandbox delivers callbacks "
                               "only to 127.0.0.1 and only with allow_local_callbacks.",
            },
        },
    }


def _task_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["created", "id", "model", "object", "progress", "status", "task_info",
                     "type", "usage"],
        "properties": {
            "created": {"type": "integer"},
            "id": {"type": "string", "pattern": r"^task-unified-\d{10}-[a-z0-9]{8}$"},
            "model": {"type": "string"},
            "object": {"type": "string", "enum": ["video.generation.task"]},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "status": {"type": "string", "enum": list(rules.TASK_STATUSES)},
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
            "error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}}},
        },
    }


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
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "prep sandbox (local EvoLink stand-in)",
            "version": "1.0.0",
            "description": "EvoLink's files API, wan2.6-reference-video generation and task "
                           "queries, served locally; plus /_sandbox control endpoints for tests.",
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
                                "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._-]{16,96}$"},
                                "description": "Ignored unless the sandbox honours idempotency"}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Wan26ReferenceVideoRequest"}}}},
                "responses": {**json_ok, **_errors(400, 401, 402, 403, 409, 413, 429, 500)},
            }},
            "/v1/tasks/{task_id}": {"get": {
                "operationId": "getTask", "summary": "A task's status, progress and results",
                "parameters": [{"name": "task_id", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {**json_ok, **_errors(400, 401, 404, 429, 500)},
            }},
            "/cdn/files/{file_id}/{name}": {"get": {
                "operationId": "getFile", "summary": "An uploaded file (no auth; Range supported)",
                "security": [],
                "parameters": [
                    {"name": "file_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The bytes"},
                              "206": {"description": "Part of the bytes"},
                              **_errors(403, 404, 416)},
            }},
            "/cdn/results/{task_id}/{name}": {"get": {
                "operationId": "getResult", "summary": "A result video (no auth; valid 24 hours)",
                "security": [],
                "parameters": [
                    {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The video"},
                              "206": {"description": "Part of the video"},
                              **_errors(403, 404, 416)},
            }},
            "/_sandbox/state": {"get": {"operationId": "sandboxState", "security": [],
                                        "summary": "Uploads, tasks, requests and counters",
                                        "responses": {"200": {"description": "State"}}}},
            "/_sandbox/reset": {"post": {"operationId": "sandboxReset", "security": [],
                                         "summary": "Forget everything",
                                         "responses": {"200": {"description": "Reset"}}}},
            "/_sandbox/faults": {"post": {"operationId": "sandboxFault", "security": [],
                                          "summary": "Plan a fault",
                                          "responses": {"200": {"description": "Faults"}}}},
            "/_sandbox/clock": {"post": {"operationId": "sandboxClock", "security": [],
                                         "summary": "Move the clock forward",
                                         "responses": {"200": {"description": "Clock"}}}},
            "/_sandbox/config": {"post": {"operationId": "sandboxConfig", "security": [],
                                          "summary": "Change switches",
                                          "responses": {"200": {"description": "Config"}}}},
            "/_sandbox/keys": {"post": {"operationId": "sandboxKeys", "security": [],
                                        "summary": "Add or change an API key",
                                        "responses": {"200": {"description": "Key id"}}}},
        },
        "components": {
            "schemas": {
                "Wan26ReferenceVideoRequest": generation_request_schema(),
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
