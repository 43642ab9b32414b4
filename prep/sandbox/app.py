"""The sandbox's HTTP application (Starlette): EvoLink's files API, generation API and task API.

One application serves both hosts' paths. Files and results are served under `/cdn/...` without
auth, like a CDN; control endpoints for tests live under `/_sandbox/...`, outside EvoLink's paths.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from prep.errors import PrepError
from prep.files import file_sha256

from . import limits
from .bodies import BodyError, DecodedUpload, read_base64_envelope, read_multipart, sniff_media
from .boxes import NotAMovie, read_movie
from .config import KeyConfig, SandboxConfig
from .faults import Fault, parse_fault
from .models import NEW_MODELS, ModelRules, charge_units, smart_duration_s
from .openapi import openapi_document
from .pricing import FLASH_PRICES, UNITS_PER_CREDIT, Prices, charge
from .results import render_result
from .store import (
    FAIL_TASK_DEFAULT_CODE,
    Store,
    StoredFile,
    Task,
    iso,
    new_task_id,
    task_work_s,
)
from .validation import (
    GenerationRequest,
    Invalid,
    check_callback_host,
    find_lone_surrogate,
    parse_generation,
)

__all__ = ["SandboxApp", "create_app"]

MAX_JSON_BODY_BYTES = 1024 * 1024
_CHUNK = 256 * 1024
_ERROR_TYPES = {
    400: ("invalid_request", "invalid_request_error"),
    401: ("unauthorized", "authentication_error"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("model_access_denied", "invalid_request_error"),
    404: ("not_found", "invalid_request_error"),
    405: ("method_not_allowed", "invalid_request_error"),
    408: ("request_timeout", "invalid_request_error"),
    409: ("idempotency_conflict", "invalid_request_error"),
    411: ("length_required", "invalid_request_error"),
    413: ("request_too_large", "invalid_request_error"),
    415: ("unsupported_media_type", "invalid_request_error"),
    416: ("range_not_satisfiable", "invalid_request_error"),
    429: ("rate_limit_exceeded", "rate_limit_error"),
    500: ("internal_error", "api_error"),
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
_SAFE_FOLDER = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
_EXTENSIONS = {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm",
               "video/x-matroska": ".mkv", "video/x-msvideo": ".avi", "video/mpeg": ".mpg",
               "video/3gpp": ".3gp", "video/x-flv": ".flv", "video/mp2t": ".ts",
               "image/png": ".png", "image/jpeg": ".jpg", "image/bmp": ".bmp", "image/webp": ".webp",
               "image/gif": ".gif", "audio/wav": ".wav", "audio/mpeg": ".mp3", "audio/mp4": ".m4a",
               "audio/flac": ".flac", "audio/ogg": ".ogg"}


_IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/webp")
_AUDIO_TYPES = ("audio/wav", "audio/mpeg")
_IMAGE_MAX_BYTES = 20_000_000
_AUDIO_MAX_BYTES = 15_000_000
_FFMPEG_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


def _bad_request_code(model: str) -> str:
    """The code of a 400 for bad parameters: wan3.0 and prime say `invalid_parameter`."""
    newer = NEW_MODELS.get(model)
    return "invalid_request" if newer is None else newer.error_code


def error_body(status: int, message: str, code: str | None = None,
               *, files_api: bool = False) -> dict[str, Any]:
    """The spec's error shape; the files API adds its `success/code/msg` envelope around it."""
    default_code, kind = _ERROR_TYPES.get(status, ("invalid_request", "invalid_request_error"))
    error = {"code": code or default_code, "message": message, "type": kind}
    if files_api:
        return {"success": False, "code": status, "msg": message, "error": error}
    return {"error": error}


def error_response(status: int, message: str, code: str | None = None, *, files_api: bool = False,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return _SafeJSON(error_body(status, message, code, files_api=files_api), status_code=status,
                     headers=headers)


async def _abort(scope: Scope) -> None:
    """Cut the TCP connection for real (needs the transport that prep's uvicorn protocol shares)."""
    transport = scope.get("state", {}).get("prep.transport")
    if transport is None:
        raise ConnectionAbortedError("sandbox fault: connection dropped")
    transport.abort()
    await asyncio.sleep(0.01)  # let the server notice the connection is gone


class _Dropped(Response):
    """No answer at all: optionally read part of the body first, then cut the connection."""

    def __init__(self, *, read_some: bool) -> None:
        super().__init__(status_code=599)
        self._read_some = read_some

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._read_some:
            await receive()
        await _abort(scope)


class _Cut(Response):
    """Status line, headers and half of the body of `inner`, then the connection is cut."""

    def __init__(self, inner: Response) -> None:
        super().__init__(content=inner.body, status_code=inner.status_code)
        self.raw_headers = inner.raw_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2],
                    "more_body": True})
        await _abort(scope)


def _own_copy(path: Path, folder: Path) -> Path:
    """A private name for the rendered `path` in `folder`: a hard link, else a copy."""
    folder.mkdir(parents=True, exist_ok=True)
    own = folder / f"result-{os.urandom(8).hex()}.mp4"
    try:
        os.link(path, own)
    except OSError:
        shutil.copyfile(path, own)
    return own


class _FileBody(Response):
    """Bytes `start` to `end` (exclusive) of a file, streamed; `cut` stops halfway and drops."""

    def __init__(self, path: Path, start: int, end: int, *, status: int, headers: dict[str, str],
                 head_only: bool, cut: bool) -> None:
        super().__init__(status_code=status, headers=headers)
        self._path, self._start, self._end = path, start, end
        self._head_only, self._cut = head_only, cut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        if self._head_only:
            await send({"type": "http.response.body", "body": b""})
            return
        length = self._end - self._start
        limit = length // 2 if self._cut else length
        sent = 0
        with self._path.open("rb") as fh:
            fh.seek(self._start)
            while sent < limit:
                chunk = fh.read(min(_CHUNK, limit - sent))
                if not chunk:
                    break
                sent += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if self._cut:
            await _abort(scope)
            return
        await send({"type": "http.response.body", "body": b""})


async def _body_chunks(request: Request, idle_s: float) -> AsyncIterator[bytes]:
    """The request body's chunks; a client that stops sending for `idle_s` gets a 408."""
    chunks = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), idle_s)
        except StopAsyncIteration:
            return
        except TimeoutError as err:
            raise BodyError(f"the request body stalled for {idle_s:g} s", status=408,
                            code="request_timeout") from err
        if chunk:
            yield chunk


# A refused body smaller than this is read to its end before the answer goes out, so the client,
# still sending, gets to read the error instead of a reset connection. Larger ones are cut off.
_DRAIN_CAP_BYTES = 32 * 1024 * 1024


async def _drain_rest(request: Request, idle_s: float) -> bool:
    """Read and drop what is left of the body; False when it is too big or stalls."""
    if getattr(request.state, "body_done", False):
        return True
    seen = 0
    while seen <= _DRAIN_CAP_BYTES:
        try:
            message = await asyncio.wait_for(request.receive(), idle_s)
        except TimeoutError:
            return False
        if message["type"] != "http.request":
            return False
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def _limited(request: Request, limit: int, idle_s: float) -> bytes:
    """The whole body, refusing more than `limit` bytes (413) without reading past it."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BodyError(f"the request body is larger than {limit:,} bytes", status=413)
    body = bytearray()
    async for chunk in _body_chunks(request, idle_s):
        body += chunk
        if len(body) > limit:
            raise BodyError(f"the request body is larger than {limit:,} bytes", status=413)
    return bytes(body)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json(raw: bytes) -> Any:
    """The decoded body. BodyError for bytes that are not UTF-8 JSON, and for strings holding a
    lone surrogate escape ("\\ud800"): valid JSON syntax, but no text (nothing can print it)."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as err:
        raise BodyError("the request body is not UTF-8 text") from err
    except (ValueError, RecursionError) as err:
        raise BodyError(f"the request body is not valid JSON ({str(err)[:120]})") from err
    where = find_lone_surrogate(value)
    if where is not None:
        raise BodyError(f"{where} holds a lone UTF-16 surrogate (such as \\ud800), which is not a "
                        "character; send valid Unicode text")
    return value


class _SafeJSON(JSONResponse):
    """JSON written with ASCII escapes: whatever a message quotes, the answer can be encoded."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")


@dataclass(frozen=True, slots=True)
class _Caller:
    key: str
    config: KeyConfig
    key_id: str


class SandboxApp:
    """The sandbox's state and its ASGI application (`.asgi`)."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.store = Store(config or SandboxConfig())
        self.public_base = "http://127.0.0.1"
        self.bound: tuple[str, int] | None = None
        self._render_lock = asyncio.Semaphore(1)
        self._runners: set[asyncio.Task[None]] = set()
        self._generation = 0
        self._ffmpeg: str | None = None
        self.asgi = Starlette(
            routes=self._routes(),
            exception_handlers={HTTPException: self._http_error, Exception: self._crash},
        )

    def set_address(self, host: str, port: int) -> None:
        """Tell the app where it listens, so the URLs it hands out point back at it."""
        self.bound = (host, port)
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        self.public_base = f"http://{shown}:{port}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.asgi(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def watched() -> Message:
            # Notes when the last piece of the body has arrived, so an early error answer knows
            # whether there is anything left to drain (see _drain_rest).
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                state["body_done"] = True
            return message

        path: str = scope.get("path", "")
        if path.startswith("/_sandbox/"):
            await self.asgi(scope, watched, send)  # the tests' own controls are not EvoLink calls
            return
        # Every other request is logged here, before routing, so that an answer the router gives
        # itself (an unknown path) is in /_sandbox/state too. Handlers fill in the details.
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        entry = self.store.log_request({
            "method": scope.get("method", ""), "path": path, "endpoint": None,
            "authorization": "authorization" in headers,
            "idempotency_key": headers.get("idempotency-key"), "status": None, "fault": None,
        })
        state["prep.log_entry"] = entry

        async def noted(message: Message) -> None:
            if message["type"] == "http.response.start" and entry["status"] is None:
                entry["status"] = message["status"]
            await send(message)

        await self.asgi(scope, watched, noted)

    # -- routing ---------------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        return [
            Route("/api/v1/files/upload/base64", self._wrap("upload", self._upload_base64, True),
                  methods=["POST"]),
            Route("/api/v1/files/upload/url", self._wrap("upload", self._upload_url, True),
                  methods=["POST"]),
            Route("/api/v1/files/upload/stream", self._wrap("upload", self._upload_stream, True),
                  methods=["POST"]),
            Route("/api/v1/files/quota", self._wrap("quota", self._quota, True), methods=["GET"]),
            Route("/api/v1/files/list", self._wrap("files", self._files, True), methods=["GET"]),
            Route("/api/v1/files/{file_id}", self._wrap("delete", self._delete, True),
                  methods=["DELETE"]),
            Route("/v1/videos/generations", self._wrap("generate", self._generate, False),
                  methods=["POST"]),
            Route("/v1/credits", self._wrap("credits", self._credits, False), methods=["GET"]),
            Route("/v1/tasks", self._wrap("tasks", self._tasks, False), methods=["GET"]),
            Route("/v1/tasks/batch", self._wrap("tasks", self._tasks_batch, False),
                  methods=["POST"]),
            Route("/v1/tasks/{task_id}", self._wrap("task", self._task, False), methods=["GET"]),
            Route("/cdn/files/{file_id}/{name}", self._wrap("download", self._download_file, False),
                  methods=["GET", "HEAD"]),
            Route("/cdn/results/{task_id}/{name}",
                  self._wrap("download", self._download_result, False), methods=["GET", "HEAD"]),
            Route("/openapi.json", self._openapi, methods=["GET"]),
            Route("/", self._index, methods=["GET"]),
            Route("/_sandbox/state", self._state, methods=["GET"]),
            Route("/_sandbox/reset", self._reset, methods=["POST"]),
            Route("/_sandbox/faults", self._faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sandbox/clock", self._clock, methods=["GET", "POST"]),
            Route("/_sandbox/config", self._config, methods=["GET", "POST"]),
            Route("/_sandbox/keys", self._keys, methods=["POST"]),
        ]

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        files_api = request.url.path.startswith("/api/v1/files")
        if exc.status_code in (404, 405):
            # EvoLink answers a method a path does not serve as it answers an unknown path: 404.
            return error_response(404, f"no such endpoint: {request.method} {request.url.path}",
                                  files_api=files_api)
        return error_response(exc.status_code, str(exc.detail), files_api=files_api,
                              headers=dict(exc.headers or {}))

    async def _crash(self, request: Request, exc: Exception) -> Response:
        return error_response(500, f"the sandbox hit a bug: {type(exc).__name__}: {exc!r}"[:500])

    def _wrap(
        self, endpoint: str, handler: Callable[[Request, Fault | None], Awaitable[Response]],
        files_api: bool,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            store = self.store
            key = _bearer(request)
            entry: dict[str, Any] = request.scope.get("state", {}).get("prep.log_entry") or (
                store.log_request({"method": request.method, "path": request.url.path,
                                   "authorization": "authorization" in request.headers,
                                   "idempotency_key": request.headers.get("idempotency-key"),
                                   "status": None, "fault": None}))
            entry["endpoint"] = endpoint
            if endpoint == "download" and entry["authorization"]:
                store.auth_header_requests += 1
            fault = store.faults.take(endpoint, key)
            entry["fault"] = fault.kind if fault else None
            response = await self._with_fault(request, fault, handler, files_api)
            entry["status"] = "dropped" if isinstance(response, _Dropped | _Cut) else (
                response.status_code)
            return response

        return serve

    async def _with_fault(
        self, request: Request, fault: Fault | None,
        handler: Callable[[Request, Fault | None], Awaitable[Response]], files_api: bool,
    ) -> Response:
        kind = fault.kind if fault else None
        if fault and kind == "rate_limit":
            return error_response(429, "Too many requests, please try again later",
                                  files_api=files_api,
                                  headers={"Retry-After": str(fault.retry_after_s)})
        if kind == "server_error":
            return error_response(500, "Internal server error", files_api=files_api)
        if fault and kind == "slow":
            await asyncio.sleep(fault.delay_s)
        if kind == "drop_mid_request":
            return _Dropped(read_some=True)
        try:
            response = await handler(request, fault)
        except BodyError as err:
            # The rest of the body may still be on its way: read a modest remainder so the client
            # sees this answer, and close the connection either way.
            if err.status != 408:
                await _drain_rest(request, min(self.store.config.body_idle_s, 5.0))
            response = error_response(err.status, err.message, err.code, files_api=files_api,
                                      headers={"connection": "close"})
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; nothing to say
        if kind == "drop_mid_response":
            return _Cut(response) if not isinstance(response, _FileBody) else response
        if kind == "drop_after_create":
            return _Dropped(read_some=False)
        return response

    def _auth(self, request: Request, *, files_api: bool) -> _Caller | Response:
        key = _bearer(request)
        store = self.store
        if key is None:
            return error_response(401, "Missing API key: send 'Authorization: Bearer <key>'",
                                  files_api=files_api)
        config = store.keys.get(key)
        if config is None:
            return error_response(401, "Invalid or expired token", files_api=files_api)
        return _Caller(key=key, config=config, key_id=store.key_ids[key])

    # -- files API -------------------------------------------------------------------------------
    async def _upload_url(self, request: Request, fault: Fault | None) -> Response:
        """POST /api/v1/files/upload/url: `{"file_url": ..., "upload_path"?, "file_name"?}`, the
        file fetched by the server. The sandbox fetches only what is on this machine: its own
        files, or an http(s) URL on a loopback address."""

        async def decode(chunks: AsyncIterator[bytes], out: Any, limit: int) -> DecodedUpload:
            raw = bytearray()
            async for chunk in chunks:
                raw += chunk
                if len(raw) > MAX_JSON_BODY_BYTES:
                    raise BodyError("the request body is too large for a URL upload", status=413)
            body = _json(bytes(raw))
            url = body.get("file_url") if isinstance(body, dict) else None
            if not isinstance(url, str) or not url:
                raise BodyError("file_url is required: the address of the file to fetch")
            result = DecodedUpload()
            for name, alias in (("upload_path", "uploadPath"), ("file_name", "fileName")):
                value = body.get(name, body.get(alias))
                if isinstance(value, str):
                    result.fields[name] = value[:1024]
            result.original_name = PurePosixPath(urlsplit(url).path).name or None
            await self._fetch_into(url, out, result, limit)
            return result

        return await self._upload(request, decode, "url", body_overhead=0.0)

    async def _fetch_into(self, url: str, out: Any, result: DecodedUpload, limit: int) -> None:
        def take(data: bytes) -> None:
            if result.size_bytes + len(data) > limit:
                raise BodyError(f"the file at file_url is larger than the upload limit "
                                f"({limit:,} bytes)", status=413, code="file_too_large")
            if len(result.head) < 512:
                result.head += data[:512 - len(result.head)]
            result.sha256.update(data)
            result.size_bytes += len(data)
            out.write(data)

        stored = self._own_file(url)
        if isinstance(stored, StoredFile):
            with stored.path.open("rb") as source:
                while data := source.read(1 << 20):
                    take(data)
            return
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or (parts.hostname or "") not in (
                "127.0.0.1", "localhost", "::1"):
            raise BodyError("the sandbox fetches file_url only from this machine (127.0.0.1); "
                            "upload the file itself with upload/base64 or upload/stream")
        try:
            async with httpx.AsyncClient(timeout=30, follow_redirects=False) as client, \
                    client.stream("GET", url) as answer:
                if answer.status_code != 200:
                    raise BodyError(f"file_url answered HTTP {answer.status_code}")
                async for data in answer.aiter_bytes():
                    take(data)
        except httpx.HTTPError as err:
            raise BodyError(f"file_url could not be fetched ({type(err).__name__})") from err

    async def _upload_base64(self, request: Request, fault: Fault | None) -> Response:
        async def decode(chunks: AsyncIterator[bytes], out: Any, limit: int) -> DecodedUpload:
            return await read_base64_envelope(chunks, out, max_bytes=limit)

        return await self._upload(request, decode, "base64", body_overhead=4 / 3)

    async def _upload_stream(self, request: Request, fault: Fault | None) -> Response:
        content_type = request.headers.get("content-type", "")

        async def decode(chunks: AsyncIterator[bytes], out: Any, limit: int) -> DecodedUpload:
            return await read_multipart(chunks, content_type, out, max_bytes=limit)

        return await self._upload(request, decode, "stream", body_overhead=1.0)

    async def _upload(
        self, request: Request,
        decode: Callable[[AsyncIterator[bytes], Any, int], Awaitable[DecodedUpload]],
        endpoint: str, *, body_overhead: float,
    ) -> Response:
        caller = self._auth(request, files_api=True)
        if isinstance(caller, Response):
            await _drain_rest(request, min(self.store.config.body_idle_s, 5.0))
            return caller
        store = self.store
        used = len(store.live_files(caller.key))
        if used >= caller.config.max_files:
            await _drain_rest(request, min(store.config.body_idle_s, 5.0))
            return error_response(
                403, f"File quota exceeded: {used} of {caller.config.max_files} files are stored; "
                "delete some or wait for them to expire", "file_quota_exceeded", files_api=True)
        limit = store.config.max_upload_bytes
        body_limit = int(limit * body_overhead) + 64 * 1024
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > body_limit:
            raise BodyError(f"the request body ({int(length):,} bytes) is larger than the upload "
                            f"limit allows ({limit:,}-byte files)", status=413, code="file_too_large")
        tmp = store.temp_path()
        try:
            with tmp.open("wb") as out:
                decoded = await decode(_body_chunks(request, store.config.body_idle_s), out, limit)
            mime = sniff_media(decoded.head)
            if mime is None:
                raise BodyError("the uploaded data is not a video, image or audio file "
                                "(unrecognised magic bytes); upload mp4 or mov video, an image, "
                                "or wav or mp3 sound", code="unsupported_file_type")
            stored = self._store_file(caller, tmp, decoded, mime, endpoint)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return JSONResponse({"success": True, "code": 200, "msg": "File uploaded successfully",
                             "data": self._file_data(stored)})

    def _store_file(self, caller: _Caller, tmp: Path, decoded: DecodedUpload, mime: str,
                    endpoint: str) -> StoredFile:
        store = self.store
        file_id = store.new_file_id()
        folder = decoded.fields.get("upload_path", "").strip().strip("/") or "uploads"
        if not _SAFE_FOLDER.fullmatch(folder) or ".." in folder.split("/"):
            raise BodyError("upload_path must be a folder name of letters, digits, '.', '_', "
                            "'-' and '/'")
        ext = _EXTENSIONS.get(mime, ".bin")
        given = decoded.fields.get("file_name") or decoded.original_name or ""
        name = _SAFE_NAME.sub("_", PurePosixPath(given.replace("\\", "/")).name).strip(" .")[:200]
        file_name = name or f"{file_id}{ext}"
        final = store.files_dir / file_id
        os.replace(tmp, final)
        now = store.clock.now()
        stored = StoredFile(
            file_id=file_id, key_id=caller.key_id, path=final, file_name=file_name,
            original_name=given or file_name, size_bytes=decoded.size_bytes, mime_type=mime,
            upload_path=folder, sha256=decoded.sha256.hexdigest(), created_at=now,
            expires_at=now + limits.UPLOAD_TTL_S, endpoint=endpoint,
        )
        store.files[file_id] = stored
        store.uploads.append(stored)
        return stored

    def _file_url(self, stored: StoredFile) -> str:
        return f"{self.public_base}/cdn/files/{stored.file_id}/{stored.file_name.replace(' ', '%20')}"

    def _file_data(self, stored: StoredFile) -> dict[str, Any]:
        url = self._file_url(stored)
        return {
            "file_id": stored.file_id, "file_name": stored.file_name,
            "original_name": stored.original_name, "file_size": stored.size_bytes,
            "mime_type": stored.mime_type, "upload_path": stored.upload_path,
            "file_url": url, "download_url": url + "?download=1",
            "upload_time": iso(stored.created_at), "expires_at": iso(stored.expires_at),
        }

    async def _quota(self, request: Request, fault: Fault | None) -> Response:
        caller = self._auth(request, files_api=True)
        if isinstance(caller, Response):
            return caller
        used = len(self.store.live_files(caller.key))
        limit = caller.config.max_files
        return JSONResponse({"success": True, "code": 200, "msg": "ok", "data": {
            "user_group": caller.config.user_group, "used_files": used, "max_files": limit,
            "remain_files": max(0, limit - used),
        }})

    async def _files(self, request: Request, fault: Fault | None) -> Response:
        caller = self._auth(request, files_api=True)
        if isinstance(caller, Response):
            return caller
        try:
            page, size = _paging(request, "pageSize", "page_size")
        except ValueError as err:
            return error_response(400, str(err), files_api=True)
        files = sorted(self.store.live_files(caller.key), key=lambda f: f.created_at,
                       reverse=True)
        shown = files[(page - 1) * size: page * size]
        return JSONResponse({"success": True, "code": 200, "msg": "ok", "data": {
            "files": [self._file_data(f) for f in shown], "total": len(files), "page": page,
            "page_size": size,
        }})

    async def _delete(self, request: Request, fault: Fault | None) -> Response:
        caller = self._auth(request, files_api=True)
        if isinstance(caller, Response):
            return caller
        file_id = request.path_params["file_id"]
        stored = self.store.files.get(file_id)
        if (stored is None or stored.deleted or stored.is_result or stored.key_id != caller.key_id
                or stored.expires_at <= self.store.clock.now()):
            return error_response(404, f"File not found: {file_id}", "file_not_found",
                                  files_api=True)
        stored.deleted = True
        stored.path.unlink(missing_ok=True)
        return JSONResponse({"success": True, "code": 200, "msg": "File deleted successfully",
                             "data": {"file_id": file_id, "deleted": True}})

    # -- downloads (CDN-like: no auth) -------------------------------------------------------------
    async def _download_file(self, request: Request, fault: Fault | None) -> Response:
        stored = self.store.files.get(request.path_params["file_id"])
        if stored is None or stored.is_result or stored.deleted:
            return error_response(404, "File not found", "file_not_found")
        return self._serve(request, stored, fault)

    async def _download_result(self, request: Request, fault: Fault | None) -> Response:
        task = self.store.tasks.get(request.path_params["task_id"])
        if task is not None:
            self.store.refresh(task)
        if task is None or task.result is None or task.status != "completed" or (
                request.path_params["name"] != f"{task.result.file_id}.mp4"):
            return error_response(404, "Result not found", "file_not_found")
        return self._serve(request, task.result, fault)

    def _serve(self, request: Request, stored: StoredFile, fault: Fault | None) -> Response:
        if stored.expires_at <= self.store.clock.now():
            return error_response(403, f"This link expired at {iso(stored.expires_at)}", "expired")
        size = stored.size_bytes
        headers = {"accept-ranges": "bytes", "content-type": stored.mime_type,
                   "etag": f'"{stored.sha256[:32]}"',
                   "cache-control": "private, max-age=3600"}
        if "download" in request.query_params:
            headers["content-disposition"] = f'attachment; filename="{stored.file_name}"'
        start, end, status = 0, size, 200
        wanted = _byte_range(request.headers.get("range"), size)
        if isinstance(wanted, str):
            return error_response(416, f"the range is outside the file ({size} bytes)",
                                  headers={"content-range": f"bytes */{size}"})
        if wanted is not None:
            start, end = wanted
            status = 206
            headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
        headers["content-length"] = str(end - start)
        return _FileBody(stored.path, start, end, status=status, headers=headers,
                         head_only=request.method == "HEAD",
                         cut=fault is not None and fault.kind == "drop_mid_response")

    # -- generation ------------------------------------------------------------------------------
    async def _generate(self, request: Request, fault: Fault | None) -> Response:
        caller = self._auth(request, files_api=False)
        if isinstance(caller, Response):
            return caller
        store = self.store
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            return error_response(400, "send the request body as JSON with "
                                  "'Content-Type: application/json'")
        raw = await _limited(request, MAX_JSON_BODY_BYTES, store.config.body_idle_s)
        body = _json(raw)
        try:
            req = parse_generation(body, allow_local_callbacks=store.config.allow_local_callbacks)
        except Invalid as err:
            return error_response(400, str(err), err.code)
        if req.model not in caller.config.models:
            return error_response(403, f"Token does not have access to model: {req.model}")
        callback_note = None
        if req.callback_host is not None and not req.callback_local:
            try:
                callback_note = await check_callback_host(
                    req.callback_host, hosts=store.config.hosts,
                    timeout_s=store.config.resolve_timeout_s)
            except Invalid as err:
                return error_response(400, str(err), _bad_request_code(req.model))
        idem_key = request.headers.get("idempotency-key")
        fingerprint = hashlib.sha256(raw).hexdigest()
        if store.config.honour_idempotency and idem_key is not None:
            if not limits.IDEMPOTENCY_KEY_RE.fullmatch(idem_key):
                return error_response(400, "Idempotency-Key must be 16 to 96 characters of "
                                      "A-Z a-z 0-9 . _ -")
            seen = store.idempotency.get((caller.key_id, idem_key))
            if seen is not None:
                if seen[0] != fingerprint:
                    return error_response(409, "this Idempotency-Key was already used with a "
                                          "different request body")
                return Response(seen[2], status_code=200, media_type="application/json",
                                headers={"idempotency-replayed": "true"})
        newer = NEW_MODELS.get(req.model)
        try:
            durations = await self._probe_references(req, newer)
            if newer is not None:
                await self._check_other_references(req, newer, durations)
        except Invalid as err:
            return error_response(400, str(err), _bad_request_code(req.model))
        if newer is not None:
            units = charge_units(newer, durations, req.duration_s, req.quality)
        else:
            units = charge(durations, req.duration_s, req.quality, store.config.prices_for(req.model),
                           audio=req.generate_audio).units
        short = store.short_of(caller.key, units)
        if short is not None:
            account = short == "insufficient_quota"
            available = (store.balances[caller.key] if account
                         else store.available_units(caller.key)) or 0
            whose = "the account's balance" if account else "this key's spending limit"
            return error_response(
                402, "Insufficient quota. Please top up your account. "
                f"(this task needs {units / UNITS_PER_CREDIT:g} credits; {whose} has "
                f"{max(available, 0) / UNITS_PER_CREDIT:g} left)", short)
        store.reserve(caller.key, units)
        task = self._create_task(caller, req, body, units, fault, idem_key, callback_note, durations)
        payload = json.dumps(task.body(store.clock.now(), store.config.speed, None)).encode()
        if store.config.honour_idempotency and idem_key is not None:
            store.idempotency[(caller.key_id, idem_key)] = (fingerprint, raw, payload)
        return Response(payload, status_code=200, media_type="application/json")

    def _own_file(self, url: str) -> StoredFile | None | bool:
        """The stored file a URL points at; None if it is ours but gone; False if not ours."""
        parts = urlsplit(url)
        if self.bound is None:
            return False
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return False
        host = (parts.hostname or "").lower()
        if port != self.bound[1] or host not in ("127.0.0.1", "localhost", "::1",
                                                  self.bound[0].lower()):
            return False
        segments = parts.path.split("/")
        if len(segments) == 5 and segments[1] == "cdn" and segments[2] == "files":
            stored = self.store.files.get(segments[3])
            return None if stored is None or stored.deleted else stored
        if len(segments) == 5 and segments[1] == "cdn" and segments[2] == "results":
            task = self.store.tasks.get(segments[3])
            if task is None or task.result is None or task.status != "completed":
                return None
            return task.result
        return None

    async def _probe_references(self, req: GenerationRequest, newer: ModelRules | None) -> list[int]:
        """Each reference video's duration (ms; wan2.6: what of it is billed), after checking it as
        EvoLink would: it must be downloadable, at most 100MB, an mp4 or mov, and within the model's
        per-clip range by every measure it carries (wan2.6: 2 to 30 s)."""
        low = limits.REFERENCE_MIN_MS if newer is None else newer.video_min_ms
        high = limits.REFERENCE_MAX_MS if newer is None else newer.video_max_ms
        durations = []
        for i, url in enumerate(req.video_urls):
            label = f"video_urls[{i}] {url}"
            stored = self._fetchable(url, label, "videos")
            if stored is None:  # a foreign URL the sandbox was told to take on trust
                durations.append(limits.BILLED_INPUT_CAP_MS[len(req.video_urls)] if newer is None
                                 else low)
                continue
            if stored.size_bytes > limits.REFERENCE_MAX_BYTES:
                raise Invalid(f"{label}: the video is {stored.size_bytes:,} bytes; the limit is "
                              f"100MB ({limits.REFERENCE_MAX_BYTES:,} bytes)")
            try:
                movie = await asyncio.to_thread(read_movie, stored.path)
            except NotAMovie as err:
                if err.container is not None and err.container not in limits.REFERENCE_CONTAINERS:
                    raise Invalid(f"{label}: the video format is {err.container}; only mp4 and mov "
                                  "are supported") from err
                raise Invalid(f"{label}: the file is not a readable video ({err})") from err
            except OSError as err:
                raise Invalid(f"{label}: the file is not a readable video "
                              f"({err.strerror or err})") from err
            if movie.container not in limits.REFERENCE_CONTAINERS:
                raise Invalid(f"{label}: the video format is {movie.container}; only mp4 and mov "
                              "are supported")
            shortest, longest = movie.shortest_ms, movie.longest_ms
            if shortest < low or longest > high:
                shown = shortest if shortest < low else longest
                raise Invalid(f"{label}: the video is {shown / 1000:g} s long; reference videos "
                              f"must be {low // 1000} to {high // 1000} seconds")
            durations.append(movie.duration_ms or longest)
        return durations

    def _fetchable(self, url: str, label: str, what: str = "files") -> StoredFile | None:
        """The live stored file behind a reference URL; None for a foreign URL taken on trust."""
        stored = self._own_file(url)
        if stored is False:
            if not self.store.config.accept_foreign_urls:
                raise Invalid(f"{label}: the sandbox can only fetch {what} it hosts; upload the "
                              "file to the sandbox's files API and use its file_url")
            return None
        if not isinstance(stored, StoredFile):
            raise Invalid(f"{label}: the {what[:-1]} could not be downloaded (HTTP 404)")
        if stored.expires_at <= self.store.clock.now():
            raise Invalid(f"{label}: the {what[:-1]} could not be downloaded (the link expired)")
        return stored

    async def _check_other_references(self, req: GenerationRequest, rules: ModelRules,
                                      videos_ms: list[int]) -> None:
        """The newer models' totals, cross-field caps, images, audio references and voices."""
        total = sum(videos_ms)
        if rules.videos_total_max_ms is not None and total > rules.videos_total_max_ms:
            raise Invalid(f"the reference videos total {total / 1000:g} s; {rules.name} takes at "
                          f"most {rules.videos_total_max_ms // 1000} s in all")
        if (rules.videos_plus_output_max_ms is not None and req.video_urls and req.duration_s != -1
                and total + req.duration_s * 1000 > rules.videos_plus_output_max_ms):
            raise Invalid(f"the reference videos ({total / 1000:g} s) and the duration "
                          f"({req.duration_s} s) come to more than "
                          f"{rules.videos_plus_output_max_ms // 1000} s")
        for i, url in enumerate(req.image_urls):
            stored = self._fetchable(url, f"image_urls[{i}] {url}")
            if stored is not None and stored.mime_type not in _IMAGE_TYPES:
                raise Invalid(f"image_urls[{i}] {url}: not an image (JPEG, PNG, BMP or WEBP)")
            if stored is not None and stored.size_bytes > _IMAGE_MAX_BYTES:
                raise Invalid(f"image_urls[{i}] {url}: the image is {stored.size_bytes:,} bytes; "
                              f"the limit is 20MB")
        sounds = [(f"audio_urls[{i}] {url}", url) for i, url in enumerate(req.audio_urls)]
        sounds += [(f"voice_bindings.{key} {url}", url) for key, url in req.voice_bindings]
        audio_total = 0
        for label, url in sounds:
            stored = self._fetchable(url, label)
            if stored is None:
                continue
            if stored.mime_type not in _AUDIO_TYPES:
                raise Invalid(f"{label}: not a wav or mp3 file")
            if stored.size_bytes > _AUDIO_MAX_BYTES:
                raise Invalid(f"{label}: the audio is {stored.size_bytes:,} bytes; the limit is 15MB")
            length = await asyncio.to_thread(self._audio_ms, stored.path)
            if not rules.audio_min_ms <= length <= rules.audio_max_ms:
                raise Invalid(f"{label}: the audio is {length / 1000:g} s long; it must be "
                              f"{rules.audio_min_ms // 1000} to {rules.audio_max_ms // 1000} seconds")
            if label.startswith("audio_urls"):
                audio_total += length
        if rules.audio_total_max_ms is not None and audio_total > rules.audio_total_max_ms:
            raise Invalid(f"the audio references total {audio_total / 1000:g} s; {rules.name} takes "
                          f"at most {rules.audio_total_max_ms // 1000} s in all")

    def _audio_ms(self, path: Path) -> int:
        """An audio file's length in ms, as ffmpeg reads its header (0 when it cannot)."""
        if self._ffmpeg is None:
            from prep.media.ffmpeg import find_ffmpeg

            self._ffmpeg = find_ffmpeg(self.store.config.ffmpeg or "").path
        run = subprocess.run([self._ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)],
                             capture_output=True, text=True, timeout=30, check=False)
        found = _FFMPEG_DURATION.search(run.stderr)
        if found is None:
            return 0
        hours, minutes, seconds = found.groups()
        return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)

    def _create_task(self, caller: _Caller, req: GenerationRequest, body: dict[str, Any],
                     units: int, fault: Fault | None, idem_key: str | None,
                     callback_note: str | None, videos_ms: list[int]) -> Task:
        store = self.store
        now = store.clock.now()
        created = int(now)
        task_id = new_task_id(created)
        while task_id in store.tasks:
            task_id = new_task_id(created)
        newer = NEW_MODELS.get(req.model)
        duration_s, settle = req.duration_s, None
        if newer is not None and req.duration_s == -1:
            # Smart duration: held at the model's hold, charged for what is made.
            duration_s = smart_duration_s(newer, videos_ms)
            settle = charge_units(newer, videos_ms, duration_s, req.quality)
        task = Task(
            id=task_id, key_id=caller.key_id, created=created, created_at=now, request=body,
            model=req.model, generate_audio=req.generate_audio, prompt=req.prompt,
            quality=req.quality, aspect_ratio=req.aspect_ratio,
            duration_s=duration_s, shot_type=req.shot_type, callback_url=req.callback_url,
            credits_units=units, user_group=caller.config.user_group,
            work_s=task_work_s(duration_s, req.quality), settle_units=settle,
            reports_duration=newer is not None and newer.reports_video_duration,
            fail=fault is not None and fault.kind == "fail_task",
            fail_code=fault.error_code if fault is not None else FAIL_TASK_DEFAULT_CODE,
            idempotency_key=idem_key,
            callback_note=callback_note,
        )
        store.tasks[task_id] = task
        runner = asyncio.get_running_loop().create_task(self._run_task(task, self._generation))
        self._runners.add(runner)
        runner.add_done_callback(self._runners.discard)
        return task

    # -- task lifecycle --------------------------------------------------------------------------
    async def _run_task(self, task: Task, generation: int) -> None:
        store = self.store
        if not task.fail:
            try:
                if self._ffmpeg is None:
                    from prep.media.ffmpeg import find_ffmpeg

                    self._ffmpeg = find_ffmpeg(store.config.ffmpeg or "").path
                async with self._render_lock:
                    path = await asyncio.to_thread(
                        render_result, self._ffmpeg, store.render_dir,
                        duration_s=task.duration_s, quality=task.quality,
                        aspect_ratio=task.aspect_ratio, prompt=task.prompt,
                        shot_type=task.shot_type, audio=task.generate_audio)
                # The task keeps its own copy (a hard link where it can): the shared render cache's
                # file may be replaced by another process's render while this one is served.
                path = await asyncio.to_thread(_own_copy, path, store.files_dir)
                size = path.stat().st_size
                digest = await asyncio.to_thread(file_sha256, path)
                if generation != self._generation:
                    return
                now = store.clock.now()
                task.result = StoredFile(
                    file_id="result_" + digest[:12] + os.urandom(4).hex(), key_id=task.key_id,
                    path=path, file_name=f"{task.id}.mp4", original_name=f"{task.id}.mp4",
                    size_bytes=size, mime_type="video/mp4", upload_path="results", sha256=digest,
                    created_at=now, expires_at=now + 10 * limits.RESULT_TTL_S, endpoint="result",
                    is_result=True,
                )
                task.rendered = True
            except (PrepError, RuntimeError, OSError) as err:
                task.render_error = f"the sandbox could not render the result: {err}"
        while generation == self._generation:
            store.refresh(task)
            if task.terminal:
                break
            await asyncio.sleep(0.02 if store.config.speed > 50 else 0.1)
        if generation == self._generation and task.callback_url:
            await self._deliver_callback(task, generation)

    def result_url(self, task: Task) -> str | None:
        if task.result is None or task.status != "completed":
            return None
        return f"{self.public_base}/cdn/results/{task.id}/{task.result.file_id}.mp4"

    def task_body(self, task: Task) -> dict[str, Any]:
        store = self.store
        store.refresh(task)
        return task.body(store.clock.now(), store.config.speed, self.result_url(task))

    async def _deliver_callback(self, task: Task, generation: int) -> None:
        store = self.store
        url = task.callback_url
        assert url is not None
        host = (urlsplit(url).hostname or "").lower()
        if not (store.config.allow_local_callbacks and host in ("127.0.0.1", "localhost", "::1")):
            task.callbacks.append({
                "attempt": 0, "at": iso(store.clock.now()), "status": None, "ok": False,
                "error": "not sent: the sandbox delivers callbacks only to 127.0.0.1, and only "
                         "with allow_local_callbacks",
            })
            return
        delays = limits.CALLBACK_RETRY_DELAYS_S
        async with httpx.AsyncClient(timeout=store.config.callback_timeout_s,
                                     trust_env=False) as client:
            for attempt in range(len(delays) + 1):
                record: dict[str, Any] = {"attempt": attempt + 1, "at": iso(store.clock.now()),
                                          "status": None, "ok": False, "error": None}
                try:
                    answer = await client.post(url, json=self.task_body(task),
                                               headers={"user-agent": "prep-sandbox-callback"})
                    record["status"] = answer.status_code
                    record["ok"] = 200 <= answer.status_code < 300
                except httpx.HTTPError as err:
                    record["error"] = f"{type(err).__name__}: {err}"[:300]
                if generation != self._generation:
                    return
                task.callbacks.append(record)
                if record["ok"] or attempt == len(delays):
                    return
                await asyncio.sleep(delays[attempt] / store.config.speed)

    async def _task(self, request: Request, fault: Fault | None) -> Response:
        caller = self._auth(request, files_api=False)
        if isinstance(caller, Response):
            return caller
        task_id = request.path_params["task_id"]
        if not limits.TASK_ID_RE.fullmatch(task_id):
            return error_response(400, f"Invalid task id: {task_id[:100]!r}", "invalid_task_id")
        task = self.store.tasks.get(task_id)
        if task is None or task.key_id != caller.key_id:
            return error_response(404, f"Task not found: {task_id}", "task_not_found")
        return JSONResponse(self.task_body(task))

    async def _credits(self, request: Request, fault: Fault | None) -> Response:
        caller = self._auth(request, files_api=False)
        if isinstance(caller, Response):
            return caller
        store = self.store
        for task in store.tasks.values():
            store.refresh(task)  # settle what has finished before reporting the balance
        return JSONResponse({"data": store.credits(caller.key)})

    async def _tasks(self, request: Request, fault: Fault | None) -> Response:
        caller = self._auth(request, files_api=False)
        if isinstance(caller, Response):
            return caller
        query = request.query_params
        try:
            page, size = _paging(request, "page_size", "pageSize")
            status = query.get("status") or None
            if status is not None and status not in limits.TASK_STATUSES:
                raise ValueError(f"status {status[:40]!r} is not one of "
                                 f"{', '.join(limits.TASK_STATUSES)}")
            kind = query.get("type") or None
            if kind is not None and kind not in ("text", "image", "audio", "video"):
                raise ValueError(f"type {kind[:40]!r} is not one of text, image, audio, video")
        except ValueError as err:
            return error_response(400, str(err))
        model = query.get("model") or None
        # "processing" takes queued tasks too, as EvoLink's clients describe the filter.
        wanted = ("pending", "processing") if status == "processing" else (status,)
        store = self.store
        now, speed = store.clock.now(), store.config.speed
        tasks = []
        for task in store.tasks.values():
            store.refresh(task)
            if task.key_id != caller.key_id or (model is not None and task.model != model):
                continue
            if (status is not None and task.status not in wanted) or kind not in (None, "video"):
                continue
            tasks.append(task)
        tasks.sort(key=lambda t: t.created_at, reverse=True)
        shown = tasks[(page - 1) * size: page * size]
        return JSONResponse({"data": [t.list_item(now, speed) for t in shown],
                             "total": len(tasks), "page": page, "page_size": size})

    async def _tasks_batch(self, request: Request, fault: Fault | None) -> Response:
        caller = self._auth(request, files_api=False)
        if isinstance(caller, Response):
            return caller
        raw = await _limited(request, MAX_JSON_BODY_BYTES, self.store.config.body_idle_s)
        body = _json(raw)
        ids = body.get("task_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return error_response(400, "send {\"task_ids\": [...]}: an array of task id strings")
        if not 1 <= len(ids) <= limits.TASK_BATCH_MAX:
            return error_response(400, f"task_ids has {len(ids)} ids; send 1 to "
                                  f"{limits.TASK_BATCH_MAX}")
        found = []
        for task_id in dict.fromkeys(ids):  # each id once, in the order asked
            task = self.store.tasks.get(task_id)
            if task is not None and task.key_id == caller.key_id:
                found.append(self.task_body(task))
        return JSONResponse({"data": found})

    # -- documents and control -------------------------------------------------------------------
    async def _openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.public_base))

    async def _index(self, request: Request) -> Response:
        return JSONResponse({
            "service": "prep sandbox: a local stand-in for EvoLink's files and generation APIs",
            "base_url": self.public_base, "files_url": self.public_base,
            "openapi": f"{self.public_base}/openapi.json",
            "state": f"{self.public_base}/_sandbox/state",
        })

    async def _state(self, request: Request) -> Response:
        return JSONResponse(self.store.state(self.result_url))

    async def _reset(self, request: Request) -> Response:
        self._generation += 1
        for runner in list(self._runners):
            runner.cancel()
        self.store.reset()
        return JSONResponse({"ok": True})

    async def _control_json(self, request: Request) -> Any:
        raw = await _limited(request, 64 * 1024, self.store.config.body_idle_s)
        return _json(raw) if raw.strip() else {}

    async def _faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.store.faults.clear()
        elif request.method == "POST":
            try:
                self.store.faults.add(parse_fault(await self._control_json(request)))
            except BodyError as err:
                return error_response(err.status, err.message)
            except ValueError as err:
                return error_response(400, str(err))
        return JSONResponse({"faults": self.store.faults.public()})

    async def _clock(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await self._control_json(request)
            except BodyError as err:
                return error_response(err.status, err.message)
            advance = body.get("advance_s") if isinstance(body, dict) else None
            if not isinstance(advance, int | float) or isinstance(advance, bool) or not (
                    0 <= advance <= 10 * 365 * 86400):
                return error_response(400, "send {\"advance_s\": SECONDS} with SECONDS >= 0")
            self.store.clock.advance(float(advance))
            for task in self.store.tasks.values():
                self.store.refresh(task)
        clock = self.store.clock
        return JSONResponse({"now": iso(clock.now()), "now_s": clock.now(),
                             "offset_s": clock.offset_s})

    async def _config(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await self._control_json(request)
                self.store.configure(**_config_changes(body))
            except BodyError as err:
                return error_response(err.status, err.message)
            except (ValueError, TypeError) as err:
                return error_response(400, str(err))
        return JSONResponse(self.store.config.public())

    async def _keys(self, request: Request) -> Response:
        try:
            body = await self._control_json(request)
            if not isinstance(body, dict) or not isinstance(body.get("key"), str):
                raise ValueError("send {\"key\": ..., \"credits\": N|null, \"limit\": N|null, "
                                 "\"models\": [...], \"max_files\": N, "
                                 "\"user_group\": \"default\"|\"vip\"}")
            credits = body.get("credits")
            if credits is not None and (type(credits) not in (int, float) or not (
                    0 <= credits <= 10**12)):
                raise ValueError("credits must be a number from 0 to 1e12, or null for unlimited")
            limit = body.get("limit")
            if limit is not None and (type(limit) not in (int, float) or not (
                    0 <= limit <= 10**12)):
                raise ValueError("limit must be a number of credits from 0 to 1e12, or null for "
                                 "a key without a limit of its own")
            models = body.get("models", list(limits.SERVED_MODELS))
            if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
                raise ValueError("models must be a list of model names")
            max_files = body.get("max_files", self.store.config.max_files)
            if type(max_files) is not int:
                raise ValueError("max_files must be a whole number")
            if len(body["key"]) > 256 or not body["key"].isprintable():
                raise ValueError("key must be at most 256 printable characters")
            key = KeyConfig(
                key=body["key"],
                credits_units=None if credits is None else round(credits * UNITS_PER_CREDIT),
                limit_units=None if limit is None else round(limit * UNITS_PER_CREDIT),
                models=tuple(models), user_group=str(body.get("user_group", "default")),
                max_files=max_files,
            )
        except BodyError as err:
            return error_response(err.status, err.message)
        except ValueError as err:
            return error_response(400, str(err))
        self.store.add_key(key)
        return JSONResponse({"key_id": self.store.key_ids[key.key]})


CONFIG_FIELDS: dict[str, tuple[type, ...]] = {
    "speed": (int, float), "honour_idempotency": (bool,), "allow_local_callbacks": (bool,),
    "accept_foreign_urls": (bool,), "max_upload_bytes": (int,), "max_files": (int,),
    "callback_timeout_s": (int, float), "resolve_timeout_s": (int, float), "hosts": (dict,),
    "body_idle_s": (int, float), "prices": (dict,), "flash_prices": (dict,),
}
_TYPE_WORDS = {int: "a number", float: "a number", bool: "true or false", dict: "an object"}


def _config_changes(body: Any) -> dict[str, Any]:
    """The switches a POST /_sandbox/config body changes. ValueError names a bad one; the values
    are checked by SandboxConfig itself (ranges, finiteness) when they are applied."""
    if not isinstance(body, dict):
        raise ValueError("send a JSON object of settings to change")
    changes: dict[str, Any] = {}
    for name, value in body.items():
        kinds = CONFIG_FIELDS.get(name)
        if kinds is None:
            raise ValueError(f"unknown setting {name[:60]!r}; known: {', '.join(CONFIG_FIELDS)}")
        if type(value) not in kinds:
            raise ValueError(f"{name} must be {_TYPE_WORDS[kinds[0]]}, not {type(value).__name__}")
        if name == "prices":
            value = Prices.coerce(value)
        elif name == "flash_prices":
            value = Prices.coerce(value, FLASH_PRICES)
        changes[name] = value
    return changes




def _paging(request: Request, size_name: str, other_name: str) -> tuple[int, int]:
    """(page, page size) from the query; the size may come in either spelling. ValueError names
    a value that is not a whole number in range."""
    query = request.query_params
    out = []
    for name, default, high in (("page", 1, 1_000_000),
                                (size_name, limits.PAGE_SIZE_DEFAULT, limits.PAGE_SIZE_MAX)):
        text = query.get(name) or (query.get(other_name) if name == size_name else None)
        if text is None or text == "":
            out.append(default)
            continue
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= high:
            raise ValueError(f"{name} must be a whole number from 1 to {high:,}, not "
                             f"{text[:20]!r}")
        out.append(int(text))
    return out[0], out[1]


def _byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end-exclusive) of a single `bytes=` range; None to send everything."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # other units and multi-range requests get the whole file, as RFC 9110 allows
    first, dash, last = (part.strip() for part in spec.strip().partition("-"))
    if not dash or not (first or last):
        return None
    if any(part and not (part.isascii() and part.isdigit()) for part in (first, last)):
        return "unsatisfiable"  # bytes=0-abc, bytes=²- (a digit to str.isdigit, not to int)
    if not first:  # suffix range: the last N bytes
        count = int(last)
        if count == 0:
            return "unsatisfiable"
        return max(0, size - count), size
    start = int(first)
    if start >= size:
        return "unsatisfiable"
    end = size if not last else min(size, int(last) + 1)
    if last and int(last) < start:
        return None
    return start, end


def create_app(config: SandboxConfig | None = None) -> SandboxApp:
    """A sandbox application with a fresh store (call `.set_address` once it listens)."""
    return SandboxApp(config)

