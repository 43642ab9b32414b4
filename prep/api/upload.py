"""Uploads through EvoLink's files API: streamed bodies, pre-flight checks, and a cache by content.

The base64 endpoint takes a JSON body whose `base64_data` holds the whole file: ~134 MB for a 100 MB
clip. Building that in memory costs several times the file; here the body is a stream instead. The
file is read in chunks whose size is a multiple of 3 bytes, so each chunk encodes to base64 on its
own with no padding in the middle, and the concatenation is byte-for-byte what
`json.dumps({"base64_data": "data:...;base64," + b64encode(whole), ...}, separators=(",", ":"))`
gives. Its exact length is known from the file size alone, so it is sent with a Content-Length.
`mode="stream"` sends a multipart body to the stream endpoint instead, also streamed.

The default, `mode="auto"`, sends to the base64 endpoint (the one EvoLink's docs name) and, when it
refuses a file by its type (its upload page lists only image types), sends that file once to the
stream endpoint, which is where EvoLink's own clients send local videos. A refusal stores nothing,
so this cannot count a file twice; the result says so in its `notes`. `mode="base64"` is strict.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prep.core import rules
from prep.errors import MediaError, QuotaError, UploadRejected
from prep.files import file_sha256, write_text_atomic

if TYPE_CHECKING:
    from prep.api.client import Client

__all__ = [
    "BASE64_ENDPOINT",
    "READ_CHUNK_BYTES",
    "STREAM_ENDPOINT",
    "StreamedBody",
    "UploadCache",
    "UPLOAD_MODES",
    "UploadMode",
    "UploadedFile",
    "base64_body",
    "check_upload_file",
    "file_sha256",
    "multipart_body",
    "naive_base64_body",
    "refused_for_type",
    "upload_file",
    "upload_files",
]

UploadMode = Literal["auto", "base64", "stream"]
UPLOAD_MODES: tuple[UploadMode, ...] = ("auto", "base64", "stream")
# How a files API says it does not take this kind of file (codes seen from EvoLink and its sandbox).
_TYPE_CODES = ("unsupported_file_type", "unsupported_media_type", "invalid_file_type",
               "file_type_not_allowed")
_TYPE_WORDS = re.compile(r"\b(file type|mime|media type|content type|format|image|not a video|"
                         r"unsupported|only .*(jpe?g|png|gif|webp))", re.IGNORECASE)
BASE64_ENDPOINT = "/api/v1/files/upload/base64"
STREAM_ENDPOINT = "/api/v1/files/upload/stream"
# 768 KiB: a multiple of 3, so every chunk encodes to exactly 1 MiB of base64 with no padding.
READ_CHUNK_BYTES = 3 * 256 * 1024
# Reuse a cached upload only while it has at least this long to live: a job submitted with a URL
# that expires while the task waits in the queue would fail.
CACHE_MARGIN = timedelta(hours=1)

_QUICKTIME_BRANDS = (b"qt  ",)
_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")

BodyProgress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadedFile:
    """A local file and the temporary URL it has on EvoLink's file host."""

    path: Path
    file_url: str
    expires_at: str | None
    file_id: str | None = None
    size_bytes: int
    sha256: str
    cached: bool = False
    endpoint: Literal["base64", "stream"] | None = None  # None: from the cache
    notes: tuple[str, ...] = ()  # what people should know (the base64 endpoint refused it...)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `prep upload --json` (contract: extend, never rename)."""
        return {"path": str(self.path), "file_url": self.file_url, "expires_at": self.expires_at,
                "cached": self.cached, "file_id": self.file_id, "size_bytes": self.size_bytes,
                "sha256": self.sha256, "endpoint": self.endpoint, "notes": list(self.notes)}


def reference_mime(head: bytes) -> str | None:
    """The mime type of an image or sound reference by its first bytes (12 of them), or None."""
    if head.startswith(b"\x89PNG"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"BM"):
        return "image/bmp"
    if head.startswith(b"RIFF") and head[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if head[8:12] == b"WEBP" else "audio/wav"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def check_upload_file(path: Path, *, reference: bool = False) -> tuple[int, str]:
    """(size_bytes, mime type) of a file fit to upload; MediaError (exit 3) naming the file if it is
    missing, empty, too big, or not an mp4 / mov by its first bytes (whatever its name says); with
    `reference`, an image or sound reference instead (PNG, JPEG, BMP, WEBP, WAV, MP3)."""
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a FIFO would block the open until a writer came
            raise MediaError(path, "is not a regular file" if not stat.S_ISDIR(status.st_mode)
                             else "is a folder, not a file",
                             hint="give the mp4 file itself (not a pipe, device or socket)")
        size = status.st_size
        with path.open("rb") as fh:
            head = fh.read(12)
    except FileNotFoundError as err:
        raise MediaError(path, "no such file") from err
    except IsADirectoryError as err:
        raise MediaError(path, "is a folder, not a file") from err
    except OSError as err:
        raise MediaError(path, f"cannot be read ({err.strerror})") from err
    if size == 0:
        raise MediaError(path, "is empty")
    if size > rules.MAX_FILE_BYTES:
        raise MediaError(path, f"is {size:,} bytes; the API takes at most {rules.MAX_FILE_BYTES:,}",
                         hint="run `prep prepare` to make it fit")
    if reference:
        mime = reference_mime(head)
        if mime is None:
            raise MediaError(path, "is not a PNG, JPEG, BMP, WEBP, WAV or MP3 file (by its first bytes)",
                             hint="convert it to one of those")
        return size, mime
    if len(head) < 8 or head[4:8] not in _FIRST_BOXES:
        raise MediaError(path, "is not an mp4 or mov file (by its first bytes)",
                         hint="run `prep prepare` to make an mp4 the API takes")
    quicktime = head[4:8] == b"ftyp" and head[8:12] in _QUICKTIME_BRANDS or head[4:8] in (
        b"wide", b"pnot")
    return size, "video/quicktime" if quicktime else "video/mp4"


class StreamedBody:
    """A request body produced chunk by chunk, with its exact length known up front.

    Iterable any number of times: each iteration reads the file afresh, so a retry resends it."""

    def __init__(self, content_length: int, content_type: str,
                 chunks: Callable[[], Iterator[bytes]],
                 on_progress: BodyProgress | None = None) -> None:
        self.content_length = content_length
        self.content_type = content_type
        self._chunks = chunks
        self._on_progress = on_progress

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self._chunks():
            sent += len(chunk)
            yield chunk
            if self._on_progress is not None:
                self._on_progress(sent, self.content_length)
        if sent != self.content_length:  # the file changed under us: never send a wrong length
            raise MediaError("upload", f"the body came out at {sent} bytes, not "
                             f"{self.content_length}; did the file change while uploading?")

    def __repr__(self) -> str:
        return f"StreamedBody({self.content_type}, {self.content_length} bytes)"


def _read_exactly(path: Path, size_bytes: int, chunk_bytes: int) -> Iterator[bytes]:
    left = size_bytes
    with path.open("rb") as fh:
        while left > 0:
            chunk = fh.read(min(chunk_bytes, left))
            if not chunk:
                raise MediaError(path, f"got shorter while uploading ({size_bytes - left} of "
                                 f"{size_bytes} bytes)", hint="upload it again when it is complete")
            left -= len(chunk)
            yield chunk


def _json_fields(fields: dict[str, str | None]) -> bytes:
    return b"".join(b"," + json.dumps(k).encode() + b":" + json.dumps(v).encode()
                    for k, v in fields.items() if v is not None)


def base64_body(
    path: Path, *, mime: str = "video/mp4", file_name: str | None = None,
    upload_path: str | None = None, chunk_bytes: int = READ_CHUNK_BYTES,
    size_bytes: int | None = None, on_progress: BodyProgress | None = None,
) -> StreamedBody:
    """The base64 endpoint's JSON body for `path`, streamed; equal to `naive_base64_body`."""
    if chunk_bytes <= 0 or chunk_bytes % 3:
        raise ValueError("chunk_bytes must be a positive multiple of 3")
    size = path.stat().st_size if size_bytes is None else size_bytes
    prefix = b'{"base64_data":"data:' + mime.encode("ascii") + b';base64,'
    suffix = b'"' + _json_fields({"file_name": file_name, "upload_path": upload_path}) + b"}"
    encoded_bytes = 4 * ((size + 2) // 3)

    def chunks() -> Iterator[bytes]:
        yield prefix
        for chunk in _read_exactly(path, size, chunk_bytes):
            yield base64.b64encode(chunk)
        yield suffix

    return StreamedBody(len(prefix) + encoded_bytes + len(suffix), "application/json", chunks,
                        on_progress)


def naive_base64_body(path: Path, *, mime: str = "video/mp4", file_name: str | None = None,
                      upload_path: str | None = None) -> bytes:
    """The same body built the obvious way (read, encode, dump): the reference for tests and the
    benchmark's baseline. Costs several times the file's size in memory."""
    data = "data:" + mime + ";base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    body: dict[str, str] = {"base64_data": data}
    if file_name is not None:
        body["file_name"] = file_name
    if upload_path is not None:
        body["upload_path"] = upload_path
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def _header_value(text: str) -> str:
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in text)


def multipart_body(
    path: Path, *, mime: str = "video/mp4", file_name: str | None = None,
    upload_path: str | None = None, boundary: str | None = None,
    chunk_bytes: int = READ_CHUNK_BYTES, size_bytes: int | None = None,
    on_progress: BodyProgress | None = None,
) -> StreamedBody:
    """The stream endpoint's multipart/form-data body (field `file`), streamed, exact length."""
    size = path.stat().st_size if size_bytes is None else size_bytes
    mark = boundary or "prep-" + secrets.token_hex(16)
    name = _header_value(file_name or path.name)
    head = b""
    for field_name, value in (("upload_path", upload_path), ("file_name", file_name)):
        if value is not None:
            head += (f'--{mark}\r\nContent-Disposition: form-data; name="{field_name}"\r\n\r\n'
                     .encode("ascii") + value.encode("utf-8") + b"\r\n")
    head += (f'--{mark}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
             f"Content-Type: {mime}\r\n\r\n").encode("ascii")
    tail = f"\r\n--{mark}--\r\n".encode("ascii")

    def chunks() -> Iterator[bytes]:
        yield head
        yield from _read_exactly(path, size, chunk_bytes)
        yield tail

    return StreamedBody(len(head) + size + len(tail), f"multipart/form-data; boundary={mark}",
                        chunks, on_progress)


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class UploadCache:
    """Uploads remembered by content hash and files host, until `margin` before they expire.

    One small JSON file per upload under `<cache dir>/uploads/`; a corrupt entry is a miss."""

    def __init__(self, directory: Path, *, margin: timedelta = CACHE_MARGIN,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.directory = directory
        self.margin = margin
        self._now = now

    def _entry(self, sha256: str, files_url: str) -> Path:
        key = hashlib.sha256(f"{files_url.rstrip('/')}\n{sha256}".encode()).hexdigest()
        return self.directory / f"{key}.json"

    def get(self, sha256: str, files_url: str) -> dict[str, Any] | None:
        """The stored answer for this content on this host, if it lives past the margin."""
        entry = self._entry(sha256, files_url)
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            self.forget(sha256, files_url)
            return None
        expires = _parse_time(data.get("expires_at"))
        if expires is None or not isinstance(data.get("file_url"), str):
            self.forget(sha256, files_url)
            return None
        if expires - self.margin <= self._now():
            self.forget(sha256, files_url)
            return None
        result: dict[str, Any] = data
        return result

    def put(self, uploaded: UploadedFile, files_url: str) -> None:
        """Remember an upload (atomically; a cache that cannot be written is only a lost speed-up)."""
        entry = self._entry(uploaded.sha256, files_url)
        expires = uploaded.expires_at
        if _parse_time(expires) is None:
            expires = (self._now() + timedelta(seconds=rules.UPLOAD_TTL_S)).isoformat()
        data = {"file_url": uploaded.file_url, "expires_at": expires, "file_id": uploaded.file_id,
                "size_bytes": uploaded.size_bytes, "sha256": uploaded.sha256,
                "uploaded_at": self._now().isoformat(timespec="seconds")}
        # The cache only saves uploads: a cache that cannot be written is not an error.
        with contextlib.suppress(OSError):
            write_text_atomic(entry, json.dumps(data, indent=2) + "\n")

    def forget(self, sha256: str, files_url: str) -> None:
        """Drop an entry (expired, or its URL was refused)."""
        self._entry(sha256, files_url).unlink(missing_ok=True)

    def forget_url(self, file_url: str) -> bool:
        """Drop whichever entry holds `file_url`; True when one did."""
        if not self.directory.is_dir():
            return False
        for entry in self.directory.glob("*.json"):
            try:
                if json.loads(entry.read_text(encoding="utf-8")).get("file_url") == file_url:
                    entry.unlink(missing_ok=True)
                    return True
            except (OSError, ValueError, AttributeError):
                continue
        return False


def refused_for_type(err: UploadRejected) -> bool:
    """Whether the files API refused an upload because of the file's type (not its size, the
    quota or the key): the one refusal another endpoint may not share."""
    if err.status not in (400, 415, 422):
        return False
    return err.status == 415 or (err.code or "").lower() in _TYPE_CODES or bool(
        _TYPE_WORDS.search(err.message))


def _send_file(client: Client, path: Path, endpoint: Literal["base64", "stream"], *, size: int,
               mime: str, on_progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    name = path.name
    if endpoint == "base64":
        body = base64_body(path, mime=mime, file_name=name, size_bytes=size, on_progress=on_progress)
        url = BASE64_ENDPOINT
    else:
        body = multipart_body(path, mime=mime, file_name=name, size_bytes=size,
                              on_progress=on_progress)
        url = STREAM_ENDPOINT
    return client.post_file(url, lambda: iter(body), content_type=body.content_type,
                            content_length=body.content_length, what=f"uploading {path}")


def upload_file(
    client: Client, path: Path, *, mode: UploadMode = "auto",
    on_progress: Callable[[int, int], None] | None = None, sha256: str | None = None,
    reference: bool = False,
) -> UploadedFile:
    """Check and upload one file, with no cache. `on_progress(sent_bytes, body_bytes)`.
    `reference`: an image or sound reference (see `check_upload_file`), not a clip.

    `auto`: base64, then once on the stream endpoint if base64 refuses the file by its type."""
    if mode not in UPLOAD_MODES:
        raise ValueError(f"unknown upload mode {mode!r}")
    size, mime = check_upload_file(path, reference=reference)
    digest = sha256 or file_sha256(path)
    endpoint: Literal["base64", "stream"] = "stream" if mode == "stream" else "base64"
    notes: tuple[str, ...] = ()
    try:
        data = _send_file(client, path, endpoint, size=size, mime=mime, on_progress=on_progress)
    except UploadRejected as err:
        if endpoint != "base64":
            raise
        if mode == "auto" and refused_for_type(err):
            endpoint = "stream"
            notes = (f"{path.name}: the base64 endpoint refused it by its type ({err.message}); "
                     "uploaded on the stream endpoint instead, as EvoLink's own clients do",)
            data = _send_file(client, path, endpoint, size=size, mime=mime, on_progress=on_progress)
        else:
            better = UploadRejected(
                err.message, status=err.status, code=err.code,
                hint="the files API may not take video as base64; try --upload-mode stream"
                if mode == "base64" else "the files API refused the upload",
            )
            better.request_id = err.request_id
            raise better from err
    return UploadedFile(path=path, file_url=str(data["file_url"]),
                        expires_at=str(data["expires_at"]) if data.get("expires_at") else None,
                        file_id=str(data["file_id"]) if data.get("file_id") else None,
                        size_bytes=size, sha256=digest, cached=False, endpoint=endpoint,
                        notes=notes)


def upload_files(
    client: Client,
    paths: Sequence[Path],
    *,
    mode: UploadMode = "auto",
    cache: UploadCache | None = None,
    check_quota: bool = True,
    verify_cached: bool = True,
    on_progress: Callable[[Path, int, int], None] | None = None,
) -> list[UploadedFile]:
    """Upload each file once: all are checked first (nothing is sent if one is unfit), cached
    uploads that still live (and still answer, with `verify_cached`) are reused, and the file
    quota is checked when the server offers one."""
    checked = [(path, check_upload_file(path)) for path in paths]
    results: dict[Path, UploadedFile] = {}
    todo: list[tuple[Path, str]] = []
    for path, (size, _mime) in checked:
        digest = file_sha256(path)
        hit = cache.get(digest, client.files_url) if cache is not None else None
        if hit is not None and verify_cached and not client.url_alive(str(hit["file_url"])):
            assert cache is not None
            cache.forget(digest, client.files_url)
            hit = None
        if hit is not None:
            results[path] = UploadedFile(path=path, file_url=str(hit["file_url"]),
                                         expires_at=hit.get("expires_at"),
                                         file_id=hit.get("file_id"), size_bytes=size,
                                         sha256=digest, cached=True)
        elif path not in dict(todo):
            todo.append((path, digest))
    if todo and check_quota:
        quota = client.files_quota()
        remain = quota.get("remain_files") if quota else None
        if isinstance(remain, int) and remain < len(todo):
            raise QuotaError(
                f"the file storage quota has room for {remain} more file(s); "
                f"{len(todo)} to upload (used {quota.get('used_files') if quota else '?'} "
                f"of {quota.get('max_files') if quota else '?'})",
                hint="uploads expire after 72 h; delete old ones or wait, then run again",
            )
    for path, digest in todo:
        uploaded = upload_file(client, path, mode=mode, on_progress=_per_file(on_progress, path),
                               sha256=digest)
        if cache is not None:
            cache.put(uploaded, client.files_url)
        results[path] = uploaded
    return [results[path] for path, _ in checked]


def _per_file(on_progress: Callable[[Path, int, int], None] | None,
              path: Path) -> Callable[[int, int], None] | None:
    if on_progress is None:
        return None
    callback = on_progress

    def progress(sent: int, total: int) -> None:
        callback(path, sent, total)

    return progress
