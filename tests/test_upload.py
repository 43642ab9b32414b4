"""Streamed upload bodies, pre-flight checks, the upload cache and the upload flow (MockTransport)."""

from __future__ import annotations

import json
import os
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prep.api.client import Client, RetryPolicy
from prep.api.upload import (
    BASE64_ENDPOINT,
    STREAM_ENDPOINT,
    UploadCache,
    UploadedFile,
    base64_body,
    check_upload_file,
    multipart_body,
    naive_base64_body,
    upload_file,
    upload_files,
)
from prep.core import rules
from prep.errors import MediaError, PrepError, QuotaError, UploadRejected

HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
KEY = "sk-upload-SECRET-abcdef0123456789"


def mp4_file(path: Path, size: int) -> Path:
    data = (HEAD + os.urandom(max(0, size - len(HEAD))))[:size] if size >= len(HEAD) else HEAD[:size]
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 6, 7, 100, 3 * 1024, 3 * 1024 + 1,
                                  3 * 1024 + 2, 65_537])
@pytest.mark.parametrize("chunk", [3, 6, 3 * 7, 3 * 1024])
def test_streamed_base64_body_equals_the_naive_body(tmp_path: Path, size: int, chunk: int) -> None:
    path = mp4_file(tmp_path / "c.mp4", size)
    body = base64_body(path, file_name="c.mp4", chunk_bytes=chunk)
    streamed = b"".join(body)
    assert streamed == naive_base64_body(path, file_name="c.mp4")
    assert len(streamed) == body.content_length
    assert b"".join(body) == streamed  # iterable again, for a retry


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=200), name=st.text(max_size=12), upload_path=st.none() | st.text(
    max_size=8), chunk3=st.integers(min_value=1, max_value=20))
def test_streamed_body_is_valid_json_for_any_name(tmp_path_factory: pytest.TempPathFactory,
                                                  data: bytes, name: str, upload_path: str | None,
                                                  chunk3: int) -> None:
    path = tmp_path_factory.mktemp("h") / "x.bin"
    path.write_bytes(data)
    body = base64_body(path, mime="video/quicktime", file_name=name, upload_path=upload_path,
                       chunk_bytes=3 * chunk3)
    raw = b"".join(body)
    assert raw == naive_base64_body(path, mime="video/quicktime", file_name=name,
                                    upload_path=upload_path)
    parsed = json.loads(raw)
    assert parsed["file_name"] == name and parsed["base64_data"].startswith("data:video/quicktime")


def test_chunk_size_must_be_a_multiple_of_3(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        base64_body(mp4_file(tmp_path / "c.mp4", 10), chunk_bytes=1024)


def test_streamed_body_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    path = mp4_file(tmp_path / "big.mp4", 12_000_000)
    body = base64_body(path, file_name="big.mp4")
    tracemalloc.start()
    try:
        total = sum(len(chunk) for chunk in body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == body.content_length > 16_000_000
    assert peak < 4_000_000  # two chunks in flight, not the 16 MB body


def test_multipart_body_has_the_exact_length_and_the_file(tmp_path: Path) -> None:
    path = mp4_file(tmp_path / "take one.mp4", 5000)
    body = multipart_body(path, file_name="take one.mp4", upload_path="prep", boundary="BOUND")
    raw = b"".join(body)
    assert len(raw) == body.content_length
    assert body.content_type == "multipart/form-data; boundary=BOUND"
    assert path.read_bytes() in raw and raw.endswith(b"\r\n--BOUND--\r\n")
    assert b'name="file"; filename="take one.mp4"\r\nContent-Type: video/mp4' in raw
    assert b'name="upload_path"\r\n\r\nprep\r\n' in raw


def test_check_upload_file(tmp_path: Path) -> None:
    assert check_upload_file(mp4_file(tmp_path / "a.mp4", 100)) == (100, "video/mp4")
    mov = tmp_path / "b.mov"
    mov.write_bytes(b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00" + bytes(50))
    assert check_upload_file(mov)[1] == "video/quicktime"
    cases = {
        "missing.mp4": None, "empty.mp4": b"", "page.mp4": b"<html><body>not a video</body></html>",
        "webm.mp4": b"\x1aE\xdf\xa3" + bytes(40),
    }
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(MediaError) as info:
            check_upload_file(tmp_path / name)
        assert name in str(info.value) and info.value.exit_code == 3
    huge = mp4_file(tmp_path / "huge.mp4", 100)
    with huge.open("r+b") as fh:
        fh.truncate(rules.MAX_FILE_BYTES + 1)  # sparse: no real disk used
    with pytest.raises(MediaError, match="100,000,000"):
        check_upload_file(huge)


# -- the upload flow ---------------------------------------------------------------------------

class FilesServer:
    """A scripted files API + CDN behind MockTransport."""

    def __init__(self) -> None:
        self.uploads: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self.fail: list[httpx.Response | Exception] = []
        self.quota: httpx.Response = httpx.Response(404)
        self.alive = True
        self.public: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.test":
            self.public.append(request)
            return httpx.Response(206 if self.alive else 404, content=HEAD[:1])
        if request.url.path.endswith("/quota"):
            return self.quota
        body = request.read()
        self.uploads.append(request)
        self.bodies.append(body)
        if self.fail:
            failure = self.fail.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return failure
        n = len(self.uploads)
        expires = (datetime.now(UTC) + timedelta(hours=72)).isoformat()
        return httpx.Response(200, json={"success": True, "code": 200, "msg": "ok", "data": {
            "file_id": f"f{n}", "file_url": f"https://cdn.test/f{n}.mp4", "expires_at": expires}})


def files_client(server: FilesServer) -> Client:
    return Client(KEY, base_url="http://api.test", files_url="http://files.test",
                  http=httpx.Client(transport=httpx.MockTransport(server)), sleep=lambda s: None,
                  retry=RetryPolicy(attempts=3))


def test_upload_sends_an_exact_content_length_not_chunked(tmp_path: Path) -> None:
    server = FilesServer()
    path = mp4_file(tmp_path / "c.mp4", 10_001)
    seen: list[tuple[int, int]] = []
    result = upload_file(files_client(server), path, on_progress=lambda s, t: seen.append((s, t)))
    [request] = server.uploads
    assert request.url.path == BASE64_ENDPOINT
    assert int(request.headers["content-length"]) == len(server.bodies[0])
    assert "transfer-encoding" not in request.headers
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert server.bodies[0] == naive_base64_body(path, file_name="c.mp4")
    assert seen[-1] == (len(server.bodies[0]), len(server.bodies[0]))
    assert result.file_url == "https://cdn.test/f1.mp4" and not result.cached


def test_stream_mode_uses_the_multipart_endpoint(tmp_path: Path) -> None:
    server = FilesServer()
    path = mp4_file(tmp_path / "c.mp4", 2000)
    upload_file(files_client(server), path, mode="stream")
    [request] = server.uploads
    assert request.url.path == STREAM_ENDPOINT
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert int(request.headers["content-length"]) == len(server.bodies[0])
    assert path.read_bytes() in server.bodies[0]


def test_upload_is_retried_with_the_whole_body(tmp_path: Path) -> None:
    server = FilesServer()
    server.fail = [httpx.WriteError("reset mid-body"), httpx.Response(500)]
    path = mp4_file(tmp_path / "c.mp4", 3000)
    upload_file(files_client(server), path)
    assert len(server.uploads) == 3 and len(set(server.bodies)) == 1


def test_base64_rejection_suggests_stream_mode(tmp_path: Path) -> None:
    server = FilesServer()
    server.fail = [httpx.Response(400, json={"success": False, "code": 400,
                                             "msg": "unsupported file type video/mp4"},
                                  headers={"x-request-id": "r-9"})]
    with pytest.raises(UploadRejected) as info:
        upload_file(files_client(server), mp4_file(tmp_path / "c.mp4", 300), mode="base64")
    exc = info.value
    assert "unsupported file type" in str(exc) and "--upload-mode stream" in exc.hint
    assert len(server.uploads) == 1  # strict: nothing was sent anywhere else
    assert exc.exit_code == 6 and str(exc).count("r-9") == 1


def test_a_success_false_answer_is_a_rejection(tmp_path: Path) -> None:
    server = FilesServer()
    server.fail = [httpx.Response(200, json={"success": False, "code": 415, "msg": "type"})]
    with pytest.raises(UploadRejected):
        upload_file(files_client(server), mp4_file(tmp_path / "c.mp4", 300), mode="stream")


def test_uploads_are_cached_by_content(tmp_path: Path) -> None:
    server = FilesServer()
    client = files_client(server)
    cache = UploadCache(tmp_path / "cache")
    a = mp4_file(tmp_path / "a.mp4", 500)
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(a.read_bytes())
    first = upload_files(client, [a], cache=cache)
    again = upload_files(client, [copy, a], cache=cache)
    assert len(server.uploads) == 1
    assert not first[0].cached and all(u.cached for u in again)
    assert {u.file_url for u in again} == {first[0].file_url}
    assert server.public and all("authorization" not in r.headers for r in server.public)
    server.alive = False  # the cached URL stopped answering: upload afresh
    fresh = upload_files(client, [a], cache=cache)
    assert len(server.uploads) == 2 and not fresh[0].cached


def test_cache_entries_expire_before_the_url_does(tmp_path: Path) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    cache = UploadCache(tmp_path, now=lambda: now)
    upload = UploadedFile(path=tmp_path / "a.mp4", file_url="https://cdn.test/a.mp4",
                          expires_at=(now + timedelta(minutes=90)).isoformat(), size_bytes=1,
                          sha256="ab" * 32)
    cache.put(upload, "http://files.test")
    assert cache.get("ab" * 32, "http://files.test") is not None
    assert cache.get("ab" * 32, "http://other.test") is None
    later = UploadCache(tmp_path, now=lambda: now + timedelta(minutes=31))
    assert later.get("ab" * 32, "http://files.test") is None
    for entry in tmp_path.glob("*.json"):
        entry.write_text("{broken")
    assert cache.get("ab" * 32, "http://files.test") is None


def test_file_quota_is_checked_before_uploading(tmp_path: Path) -> None:
    server = FilesServer()
    server.quota = httpx.Response(200, json={"success": True, "data": {
        "user_group": "default", "used_files": 100, "max_files": 100, "remain_files": 0}})
    with pytest.raises(QuotaError, match="quota") as info:
        upload_files(files_client(server), [mp4_file(tmp_path / "a.mp4", 50)])
    assert server.uploads == [] and info.value.exit_code == 5


def test_nothing_is_uploaded_when_one_file_is_unfit(tmp_path: Path) -> None:
    server = FilesServer()
    bad = tmp_path / "notes.mp4"
    bad.write_text("hello")
    with pytest.raises(MediaError, match="notes.mp4"):
        upload_files(files_client(server), [mp4_file(tmp_path / "a.mp4", 50), bad])
    assert server.uploads == []


def test_upload_file_without_a_cache(tmp_path: Path) -> None:
    server = FilesServer()
    uploaded = upload_file(files_client(server), mp4_file(tmp_path / "a.mp4", 50))
    data: dict[str, Any] = uploaded.as_dict()
    assert set(data) >= {"path", "file_url", "expires_at", "cached"} and not uploaded.cached
    assert len(server.uploads) == 1


# -- auto: base64 first, the stream endpoint once when base64 refuses the file's type -------------

_TYPE_REFUSALS = [
    httpx.Response(400, json={"success": False, "code": 400, "msg": "unsupported file type video/mp4"}),
    httpx.Response(415, json={"error": {"code": "unsupported_media_type", "message": "no",
                                        "type": "invalid_request_error"}}),
    httpx.Response(400, json={"success": False, "code": "unsupported_file_type", "msg": "refused"}),
    httpx.Response(400, json={"success": False, "code": 400,
                              "msg": "only jpeg, png, gif and webp files are allowed"}),
]


@pytest.mark.parametrize("refusal", _TYPE_REFUSALS, ids=["words", "415", "code", "image-only"])
def test_auto_uploads_on_the_stream_endpoint_once_when_base64_refuses_the_type(
        tmp_path: Path, refusal: httpx.Response) -> None:
    server = FilesServer()
    server.fail = [refusal]
    path = mp4_file(tmp_path / "c.mp4", 3000)
    result = upload_file(files_client(server), path)
    assert [r.url.path for r in server.uploads] == [BASE64_ENDPOINT, STREAM_ENDPOINT]
    assert result.endpoint == "stream" and result.file_url == "https://cdn.test/f2.mp4"
    assert len(result.notes) == 1 and "stream endpoint" in result.notes[0]
    assert path.read_bytes() in server.bodies[1]
    assert result.as_dict()["notes"] == list(result.notes)


@pytest.mark.parametrize("refusal", [
    httpx.Response(413, json={"success": False, "code": 413, "msg": "file too large"}),
    httpx.Response(403, json={"success": False, "code": 403, "msg": "quota exceeded"}),
    httpx.Response(400, json={"success": False, "code": 400, "msg": "bad base64 data"}),
], ids=["size", "quota", "other"])
def test_auto_does_not_fall_back_for_other_refusals(tmp_path: Path, refusal: httpx.Response) -> None:
    server = FilesServer()
    server.fail = [refusal]
    with pytest.raises(PrepError):
        upload_file(files_client(server), mp4_file(tmp_path / "c.mp4", 300))
    assert [r.url.path for r in server.uploads] == [BASE64_ENDPOINT]


def test_auto_falls_back_at_most_once(tmp_path: Path) -> None:
    server = FilesServer()
    server.fail = [_TYPE_REFUSALS[0], _TYPE_REFUSALS[0]]
    with pytest.raises(UploadRejected):
        upload_file(files_client(server), mp4_file(tmp_path / "c.mp4", 300))
    assert [r.url.path for r in server.uploads] == [BASE64_ENDPOINT, STREAM_ENDPOINT]


def test_a_plain_base64_upload_has_no_notes(tmp_path: Path) -> None:
    result = upload_file(files_client(FilesServer()), mp4_file(tmp_path / "c.mp4", 300))
    assert result.endpoint == "base64" and result.notes == ()
