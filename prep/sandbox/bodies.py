"""Upload bodies decoded as streams: a 134 MB base64 request never sits in memory.

`read_base64_envelope` parses the JSON object of the base64 upload incrementally: the small fields
are collected, and the `base64_data` string is decoded chunk by chunk straight into a file.
`read_multipart` does the same for the multipart stream upload. `sniff_video` names the container
from the first bytes (magic numbers), or None for data that is not a video.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

__all__ = [
    "BodyError",
    "DecodedUpload",
    "read_base64_envelope",
    "read_multipart",
    "sniff_media",
    "sniff_video",
]

HEAD_BYTES = 512
# Bytes of the JSON envelope besides the base64 payload itself (keys, small fields, whitespace).
MAX_ENVELOPE_BYTES = 64 * 1024
MAX_FIELD_CHARS = 1024
MAX_DEPTH = 32
_B64_ALPHABET = re.compile(rb"[A-Za-z0-9+/=]*")
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)?((?:;[\w.+-]+=[^;,]*)*);base64", re.ASCII)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")
# ISO files that hold sound only (iTunes audio and audiobooks): audio, not video.
_AUDIO_BRANDS = (b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B ")


class BodyError(Exception):
    """A request body that cannot be accepted: `status` and a one-line message for the client."""

    def __init__(self, message: str, *, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass(slots=True, kw_only=True)
class DecodedUpload:
    """What an upload body held: the file went to `out`; the rest is here."""

    size_bytes: int = 0
    head: bytes = b""
    fields: dict[str, str] = field(default_factory=dict)
    declared_type: str | None = None
    original_name: str | None = None
    sha256: Any = field(default_factory=hashlib.sha256)


def sniff_video(head: bytes) -> str | None:
    """The MIME type of a video container from its first bytes, or None when it is not a video."""
    box = head[4:8]
    if box == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS or brand in _AUDIO_BRANDS:
            return None  # HEIF/AVIF still images and m4a sound share the ISO box format
        if brand == b"qt  ":
            return "video/quicktime"
        if brand.startswith((b"3gp", b"3g2")):
            return "video/3gpp"
        return "video/mp4"
    if box in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "video/quicktime"  # QuickTime files that predate the ftyp box
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "video/mpeg"
    if head[:3] == b"FLV":
        return "video/x-flv"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "video/mp2t"
    return None


def sniff_media(head: bytes) -> str | None:
    """The MIME type of a video, image or audio file from its first bytes (None: none of these).

    The newer models take images (JPEG, PNG, BMP, WEBP) and sound (WAV, MP3) beside videos."""
    video = sniff_video(head)
    if video is not None:
        return video
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if head[:2] == b"BM" and len(head) >= 26:
        return "image/bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
                              and head[1] & 0x06 != 0):
        return "audio/mpeg"  # an ID3 tag, or an MPEG audio frame header (layer bits set)
    if head[4:8] == b"ftyp" and head[8:12] in _AUDIO_BRANDS:
        return "audio/mp4"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[:4] == b"OggS":
        return "audio/ogg"
    return None


class _FileSink:
    """Decoded bytes to a file, with a size limit and the head kept for sniffing."""

    def __init__(self, out: BinaryIO, result: DecodedUpload, max_bytes: int) -> None:
        self._out = out
        self._result = result
        self._max_bytes = max_bytes

    def write(self, data: bytes) -> None:
        if not data:
            return
        result = self._result
        result.size_bytes += len(data)
        if result.size_bytes > self._max_bytes:
            raise BodyError(
                f"the file is larger than the upload limit of {self._max_bytes:,} bytes",
                status=413, code="file_too_large",
            )
        if len(result.head) < HEAD_BYTES:
            result.head += data[: HEAD_BYTES - len(result.head)]
        result.sha256.update(data)
        self._out.write(data)


class _Base64Stream:
    """Base64 text (optionally a data URL) decoded in 4-character-aligned slices."""

    def __init__(self, sink: _FileSink, result: DecodedUpload) -> None:
        self._sink = sink
        self._result = result
        self._prefix: bytes | None = b""  # None once the data-URL question is settled
        self._pending = b""
        self._padded = False
        self._chars = 0

    def feed(self, text: bytes) -> None:
        if self._prefix is not None:
            text = self._settle_prefix(text)
            if self._prefix is not None:
                return
        if not text:
            return
        self._chars += len(text)
        data = self._pending + text
        if self._padded:
            raise BodyError("base64_data is not valid base64: data follows the '=' padding")
        usable = len(data) - len(data) % 4
        self._pending = data[usable:]
        if usable:
            self._decode(data[:usable])

    def close(self) -> None:
        if self._prefix is not None:
            rest = self._settle_prefix(b"", final=True)
            self._prefix = None
            self.feed(rest)
        if self._pending:
            raise BodyError(
                "base64_data is not valid base64: its length is not a multiple of 4 "
                "(missing '=' padding?)"
            )
        if self._chars == 0:
            raise BodyError("base64_data is empty")

    def _decode(self, chunk: bytes) -> None:
        try:
            decoded = binascii.a2b_base64(chunk, strict_mode=True)
        except binascii.Error as err:
            if not _B64_ALPHABET.fullmatch(chunk):
                raise BodyError(
                    "base64_data is not valid base64: it contains characters outside "
                    "A-Z a-z 0-9 + / ="
                ) from err
            raise BodyError(f"base64_data is not valid base64 ({err})") from err
        if chunk.endswith(b"="):
            self._padded = True
        self._sink.write(decoded)

    def _settle_prefix(self, text: bytes, *, final: bool = False) -> bytes:
        assert self._prefix is not None
        buf = self._prefix + text
        if not b"data:".startswith(buf[:5]):
            self._prefix = None
            return buf  # bare base64
        if len(buf) < 5:
            if final:  # a tiny bare payload such as "data" itself
                self._prefix = None
                return buf
            self._prefix = buf
            return b""
        comma = buf.find(b",")
        if comma < 0:
            if len(buf) > 256 or final:
                raise BodyError("base64_data starts like a data URL but has no ',' before its data")
            self._prefix = buf
            return b""
        header = buf[:comma].decode("ascii", "replace")
        match = _DATA_URL.fullmatch(header)
        if not match:
            raise BodyError(
                f"base64_data is a data URL without ';base64' ({header[:60]!r}); "
                "use data:video/mp4;base64,<data> or bare base64"
            )
        self._result.declared_type = match.group(1)
        self._prefix = None
        return buf[comma + 1:]


class _Reader:
    """Pull-style access to an async stream of byte chunks, counting envelope bytes."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0
        self._eof = False
        self.envelope_bytes = 0

    async def _fill(self) -> bool:
        while self._pos >= len(self._buf):
            if self._eof:
                return False
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._eof = True
                return False
            self._buf, self._pos = chunk, 0
        return True

    def _count(self, n: int) -> None:
        self.envelope_bytes += n
        if self.envelope_bytes > MAX_ENVELOPE_BYTES:
            raise BodyError(
                f"the JSON body holds more than {MAX_ENVELOPE_BYTES:,} bytes besides base64_data",
                status=413, code="request_too_large",
            )

    async def peek(self) -> int | None:
        if not await self._fill():
            return None
        return self._buf[self._pos]

    async def next(self) -> int:
        if not await self._fill():
            raise BodyError("the JSON body ends early (truncated request?)")
        self._count(1)
        ch = self._buf[self._pos]
        self._pos += 1
        return ch

    async def skip_ws(self) -> int | None:
        while True:
            ch = await self.peek()
            if ch is None or ch not in b" \t\r\n":
                return ch
            await self.next()

    async def expect(self, wanted: bytes, what: str) -> None:
        ch = await self.skip_ws()
        if ch is None:
            raise BodyError(f"the JSON body ends early: expected {what}")
        if ch != wanted[0]:
            raise BodyError(f"the body is not valid JSON: expected {what}, found {chr(ch)!r}")
        await self.next()

    async def raw_string(self, limit: int | None) -> bytes:
        """The raw bytes of a JSON string after its opening quote, through the closing quote."""
        out = bytearray(b'"')
        while True:
            if not await self._fill():
                raise BodyError("the JSON body ends inside a string (truncated request?)")
            buf, pos = self._buf, self._pos
            quote = buf.find(b'"', pos)
            slash = buf.find(b"\\", pos)
            if slash >= 0 and (quote < 0 or slash < quote):
                end = slash + 1
                out += buf[pos:end]
                self._advance(end)
                out.append(await self.next())  # the escaped character, taken verbatim
            elif quote >= 0:
                out += buf[pos:quote + 1]
                self._advance(quote + 1)
                return bytes(out)
            else:
                out += buf[pos:]
                self._advance(len(buf))
            if limit is not None and len(out) > limit:
                raise BodyError(f"a string in the JSON body is longer than {limit:,} characters")

    async def stream_string(self, target: _Base64Stream) -> None:
        """Feed a JSON string's content to `target` without holding it, escapes resolved."""
        while True:
            if not await self._fill():
                raise BodyError("the JSON body ends inside base64_data (truncated request?)")
            buf, pos = self._buf, self._pos
            quote = buf.find(b'"', pos)
            slash = buf.find(b"\\", pos, quote if quote >= 0 else len(buf))
            stop = slash if slash >= 0 else quote if quote >= 0 else len(buf)
            if stop > pos:
                target.feed(buf[pos:stop])
            self._pos = stop
            if slash >= 0:
                self._advance(stop + 1)
                target.feed(await self._escape())
            elif quote >= 0:
                self._advance(stop + 1)
                return

    async def _escape(self) -> bytes:
        ch = await self.next()
        if ch in b"nrt":
            return b""  # line breaks inside base64 (MIME style) carry no data
        if ch in b"/\\\"":
            return bytes([ch])
        if ch == ord("u"):
            digits = bytes([await self.next() for _ in range(4)])
            try:
                return chr(int(digits, 16)).encode("utf-8")
            except ValueError as err:
                raise BodyError("the body is not valid JSON: a bad \\u escape") from err
        raise BodyError(f"the body is not valid JSON: unknown escape '\\{chr(ch)}'")

    def _advance(self, end: int) -> None:
        self._count(end - self._pos)
        self._pos = end

    async def skip_value(self, depth: int = 0) -> None:
        """Skip any JSON value (an unknown field), checking that it is well formed."""
        if depth > MAX_DEPTH:
            raise BodyError(f"the JSON body nests deeper than {MAX_DEPTH} levels")
        ch = await self.skip_ws()
        if ch is None:
            raise BodyError("the JSON body ends early: expected a value")
        if ch == ord('"'):
            await self.next()
            await self.small_string()
            return
        if ch in b"{[":
            close = b"}" if ch == ord("{") else b"]"
            await self.next()
            if await self.skip_ws() == close[0]:
                await self.next()
                return
            while True:
                if close == b"}":
                    await self.expect(b'"', "a field name")
                    await self.small_string()
                    await self.expect(b":", "':'")
                await self.skip_value(depth + 1)
                ch = await self.skip_ws()
                if ch == close[0]:
                    await self.next()
                    return
                await self.expect(b",", f"',' or '{close.decode()}'")
        token = bytearray()
        while (ch := await self.peek()) is not None and ch not in b" \t\r\n,]}":
            token.append(await self.next())
            if len(token) > 64:
                break
        try:
            json.loads(token)
        except ValueError as err:
            raise BodyError(f"the body is not valid JSON near {bytes(token[:20])!r}") from err

    async def small_string(self, limit: int = MAX_FIELD_CHARS) -> str:
        raw = await self.raw_string(limit * 6)
        try:
            text: str = json.loads(raw)
        except ValueError as err:  # bad UTF-8, control characters, bad escapes
            raise BodyError("the body is not valid JSON: a string is malformed or not UTF-8") from err
        if len(text) > limit:
            raise BodyError(f"a string in the JSON body is longer than {limit:,} characters")
        return text

    async def at_end(self) -> bool:
        return await self.skip_ws() is None


# The optional text fields, by every spelling EvoLink accepts (its upload page takes both; its MCP
# server sends the camelCase ones), and the name the sandbox keeps each under.
_TEXT_FIELDS = {"upload_path": "upload_path", "uploadPath": "upload_path",
                "file_name": "file_name", "fileName": "file_name"}


def _keep_field(result: DecodedUpload, name: str, value: str) -> None:
    """Store a text field under its one name; two spellings of it must agree."""
    canonical = _TEXT_FIELDS[name]
    if result.fields.get(canonical, value) != value:
        spellings = " and ".join(n for n, c in _TEXT_FIELDS.items() if c == canonical)
        raise BodyError(f"{name} was given two different values ({spellings} are one field)")
    result.fields[canonical] = value


async def read_base64_envelope(
    chunks: AsyncIterator[bytes], out: BinaryIO, *, max_bytes: int
) -> DecodedUpload:
    """Parse `{"base64_data": ..., "upload_path": ..., "file_name": ...}` from a byte stream.

    The decoded file is written to `out` as it arrives. BodyError for anything malformed.
    """
    result = DecodedUpload()
    reader = _Reader(chunks)
    sink = _FileSink(out, result, max_bytes)
    await reader.expect(b"{", "a JSON object")
    seen: set[str] = set()
    if await reader.skip_ws() == ord("}"):
        await reader.next()
    else:
        while True:
            await reader.expect(b'"', "a field name")
            name = await reader.small_string(256)
            if name in seen:
                raise BodyError(f"the field {name!r} appears twice")
            seen.add(name)
            await reader.expect(b":", "':'")
            ch = await reader.skip_ws()
            if name == "base64_data":
                if ch != ord('"'):
                    raise BodyError("base64_data must be a string (a data URL or bare base64)")
                await reader.next()
                stream = _Base64Stream(sink, result)
                await reader.stream_string(stream)
                stream.close()
            elif name in _TEXT_FIELDS:
                if ch != ord('"'):
                    raise BodyError(f"{name} must be a string")
                await reader.next()
                value = await reader.small_string()
                if any("\ud800" <= c <= "\udfff" for c in value):
                    raise BodyError(f"{name} holds a lone UTF-16 surrogate (such as \\ud800), "
                                    "which is not a character; send valid Unicode text")
                _keep_field(result, name, value)
            else:
                await reader.skip_value()
            ch = await reader.skip_ws()
            if ch == ord("}"):
                await reader.next()
                break
            await reader.expect(b",", "',' or '}'")
    if not await reader.at_end():
        raise BodyError("the body is not valid JSON: data follows the closing '}'")
    if "base64_data" not in seen:
        raise BodyError("base64_data is required")
    return result


async def read_multipart(
    chunks: AsyncIterator[bytes], content_type: str, out: BinaryIO, *, max_bytes: int
) -> DecodedUpload:
    """Parse a multipart/form-data body with a `file` part (and optional text fields)."""
    ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise BodyError("send multipart/form-data with a boundary and a 'file' part")
    result = DecodedUpload()
    sink = _FileSink(out, result, max_bytes)
    state: dict[str, object] = {"headers": {}, "field": "", "value": "", "name": None, "ended": False}
    small = bytearray()
    files = 0

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] = str(state["field"]) + data[start:end].decode("latin-1")

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] = str(state["value"]) + data[start:end].decode("latin-1")

    def on_header_end() -> None:
        headers = state["headers"]
        assert isinstance(headers, dict)
        headers[str(state["field"]).lower()] = str(state["value"])
        state["field"], state["value"] = "", ""

    def on_headers_finished() -> None:
        nonlocal files
        headers = state["headers"]
        assert isinstance(headers, dict)
        _, disp = parse_options_header(headers.get("content-disposition", ""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        if name == "file":
            files += 1
            if files > 1:
                raise BodyError("send one 'file' part per request")
            filename = disp.get(b"filename")
            result.original_name = filename.decode("utf-8", "replace") if filename else None
            result.declared_type = headers.get("content-type")
        small.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["name"] == "file":
            sink.write(data[start:end])
        else:
            small.extend(data[start:end])
            if len(small) > MAX_FIELD_CHARS * 4:
                raise BodyError(f"the form field {state['name']!r} is too long")

    def on_part_end() -> None:
        name = state["name"]
        if name in _TEXT_FIELDS:
            try:
                value = small.decode("utf-8")
            except UnicodeDecodeError as err:
                raise BodyError(f"the form field {name!r} is not UTF-8 text") from err
            _keep_field(result, str(name), value)
        state["headers"], state["name"] = {}, None

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end, "on_end": on_end,
    })
    async for chunk in chunks:
        try:
            parser.write(chunk)
        except BodyError:
            raise
        except Exception as err:  # python-multipart raises its own errors for malformed bodies
            raise BodyError(f"the multipart body is malformed ({err})") from err
    if not state["ended"]:
        raise BodyError("the multipart body ends before its closing boundary (truncated request?)")
    if files == 0:
        raise BodyError("the form has no 'file' part")
    if result.size_bytes == 0:
        raise BodyError("the uploaded file is empty")
    return result
