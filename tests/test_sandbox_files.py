"""The sandbox's files API over real HTTP: uploads, serving, expiry, quota, delete, bad bodies."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sandbox_util import client, error_of, tiny_clip, upload

from prep.core import rules
from prep.sandbox import Sandbox

MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


def _post_b64(sandbox: Sandbox, body: object, *, key: str | None = None) -> httpx.Response:
    with client(sandbox, key) as http:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return http.post("/api/v1/files/upload/base64", content=raw,
                         headers={"content-type": "application/json"})


def _files_error(answer: httpx.Response, status: int) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["success"] is False and body["code"] == status and body["msg"]
    return error_of(answer)


@pytest.mark.parametrize("data_url", [True, False])
def test_base64_upload_round_trip(sandbox: Sandbox, data_url: bool) -> None:
    clip = tiny_clip()
    data = upload(sandbox, clip, data_url=data_url, file_name="take 1.mp4", upload_path="jobs/a")
    assert data["file_size"] == clip.stat().st_size
    assert data["mime_type"] == "video/mp4"
    assert data["file_name"] == "take 1.mp4" and data["upload_path"] == "jobs/a"
    assert data["file_id"] and data["original_name"] == "take 1.mp4"
    uploaded = datetime.strptime(data["upload_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    expires = datetime.strptime(data["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert (expires - uploaded).total_seconds() == rules.UPLOAD_TTL_S
    got = httpx.get(data["file_url"], trust_env=False)  # no auth: like a CDN link
    assert got.status_code == 200 and got.content == clip.read_bytes()
    assert got.headers["content-type"] == "video/mp4"
    download = httpx.get(data["download_url"], trust_env=False)
    assert download.content == clip.read_bytes()
    assert "attachment" in download.headers["content-disposition"]
    state = sandbox.state()
    assert [u["sha256"] for u in state["uploads"]] == [hashlib.sha256(clip.read_bytes()).hexdigest()]
    assert state["auth_header_requests"] == 0


def test_stream_upload_multipart(sandbox: Sandbox) -> None:
    clip = tiny_clip(suffix=".mov", name="sandbox-ref-mov")
    with client(sandbox) as http:
        answer = http.post("/api/v1/files/upload/stream",
                           files={"file": ("my clip.mov", clip.read_bytes(), "video/quicktime")},
                           data={"upload_path": "stream"})
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["original_name"] == "my clip.mov" and data["file_name"] == "my clip.mov"
    assert data["mime_type"] == "video/quicktime" and data["upload_path"] == "stream"
    assert httpx.get(data["file_url"], trust_env=False).content == clip.read_bytes()
    assert sandbox.state()["uploads"][0]["endpoint"] == "stream"


def test_range_head_and_auth_header_count(sandbox: Sandbox) -> None:
    clip = tiny_clip()
    raw = clip.read_bytes()
    url = upload(sandbox, clip)["file_url"]
    with httpx.Client(trust_env=False) as http:
        part = http.get(url, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == raw[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{len(raw)}"
        tail = http.get(url, headers={"Range": "bytes=-5"})
        assert tail.status_code == 206 and tail.content == raw[-5:]
        rest = http.get(url, headers={"Range": f"bytes={len(raw) - 3}-"})
        assert rest.content == raw[-3:]
        bad = http.get(url, headers={"Range": f"bytes={len(raw)}-"})
        assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(raw)}"
        head = http.head(url)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(raw))
        assert head.content == b""
        assert sandbox.state()["auth_header_requests"] == 0
        leaked = http.get(url, headers={"Authorization": f"Bearer {sandbox.key}"})
        assert leaked.status_code == 200  # served, but counted: the key must never go there
    assert sandbox.state()["auth_header_requests"] == 1


@pytest.mark.parametrize("header", ["bytes=0-abc", "bytes=\u00b2-", "bytes=-\u00b2", "bytes=a-b",
                                    "bytes=1-2x"])
def test_a_malformed_range_is_416_not_500(sandbox: Sandbox, header: str) -> None:
    url = upload(sandbox, tiny_clip())["file_url"]
    with httpx.Client(trust_env=False) as http:
        answer = http.get(url, headers={"Range": header.encode("utf-8")})
    assert answer.status_code == 416


def test_files_expire_after_72_hours(sandbox: Sandbox) -> None:
    url = upload(sandbox, tiny_clip())["file_url"]
    sandbox.advance_clock(rules.UPLOAD_TTL_S - 60)
    assert httpx.get(url, trust_env=False).status_code == 200
    sandbox.advance_clock(120)
    gone = httpx.get(url, trust_env=False)
    assert gone.status_code == 403 and error_of(gone)["code"] == "expired"
    with client(sandbox) as http:
        assert http.get("/api/v1/files/quota").json()["data"]["used_files"] == 0


def test_quota_counts_and_delete(sandbox: Sandbox) -> None:
    sandbox.add_key("sk-two-files", max_files=2)
    with client(sandbox, "sk-two-files") as http:
        quota = http.get("/api/v1/files/quota").json()
        assert quota["success"] is True
        assert quota["data"] == {"user_group": "default", "used_files": 0, "max_files": 2,
                                 "remain_files": 2}
        first = upload(sandbox, tiny_clip(), key="sk-two-files")
        upload(sandbox, tiny_clip(), key="sk-two-files")
        assert http.get("/api/v1/files/quota").json()["data"]["remain_files"] == 0
        full = http.post("/api/v1/files/upload/base64", json={"base64_data": "AAAA"})
        assert _files_error(full, 403)["code"] == "file_quota_exceeded"
        deleted = http.delete(f"/api/v1/files/{first['file_id']}")
        assert deleted.status_code == 200 and deleted.json()["success"] is True
        assert http.get("/api/v1/files/quota").json()["data"]["used_files"] == 1
        assert httpx.get(first["file_url"], trust_env=False).status_code == 404
        again = http.delete(f"/api/v1/files/{first['file_id']}")
        assert _files_error(again, 404)["code"] == "file_not_found"
    with client(sandbox) as other:  # another key cannot delete it
        second_id = sandbox.state()["uploads"][1]["file_id"]
        assert other.delete(f"/api/v1/files/{second_id}").status_code == 404


@pytest.mark.parametrize("key", ["", "sk-wrong"])
def test_files_api_needs_a_valid_key(sandbox: Sandbox, key: str) -> None:
    with client(sandbox, key) as http:
        for answer in (http.get("/api/v1/files/quota"),
                       http.post("/api/v1/files/upload/base64", json={"base64_data": "AAAA"}),
                       http.delete("/api/v1/files/file_x")):
            assert _files_error(answer, 401)["type"] == "authentication_error"
    assert sandbox.state()["uploads"] == []


_VALID = base64.b64encode(MP4_HEAD + b"\x00" * 40).decode()


@pytest.mark.parametrize(("body", "needle"), [
    ({"base64_data": "not base64!!"}, "not valid base64"),
    ({"base64_data": _VALID[:-1]}, "multiple of 4"),
    ({"base64_data": "AA==" + _VALID}, "padding"),
    ({"base64_data": "AAA=AAAA"}, "padding"),
    ({"base64_data": _VALID.replace("A", "-", 1)}, "not valid base64"),
    ({"base64_data": ""}, "empty"),
    ({"base64_data": "data:video/mp4," + _VALID}, "without ';base64'"),
    ({"base64_data": "data:video/mp4;base64"}, "no ','"),
    ({"base64_data": 12}, "must be a string"),
    ({"base64_data": None}, "must be a string"),
    ({}, "base64_data is required"),
    ({"file_name": "x.mp4"}, "base64_data is required"),
    ({"base64_data": _VALID, "file_name": 3}, "file_name must be a string"),
    ({"base64_data": _VALID, "upload_path": "../etc"}, "upload_path"),
    ([_VALID], "JSON object"),
    (b'{"base64_data": "' + _VALID.encode() + b'"', "ends early"),
    (b'{"base64_data": "' + _VALID.encode(), "ends inside base64_data"),
    (b'{"base64_data": "' + _VALID.encode() + b'"} trailing', "follows the closing"),
    (b'{"base64_data": "' + _VALID.encode() + b'", "base64_data": "AAAA"}', "appears twice"),
    (b'{"file_name": "\xff\xfe", "base64_data": "AAAA"}', "not UTF-8"),
    (b"\xff\xfe\x00", "not valid JSON"),
    (b"", "ends early"),
])
def test_bad_base64_bodies_are_400(sandbox: Sandbox, body: object, needle: str) -> None:
    answer = _post_b64(sandbox, body)
    error = _files_error(answer, 400)
    assert needle in error["message"], error
    assert sandbox.state()["uploads"] == []


def test_escaped_json_and_unknown_fields_are_fine(sandbox: Sandbox) -> None:
    payload = MP4_HEAD + bytes(range(256)) * 4
    text = base64.encodebytes(payload).decode()  # MIME style: a newline every 76 characters
    raw = json.dumps({"meta": {"a": [1, 2.5, None, True, {"b": "c"}]}, "base64_data": text,
                      "file_name": "x\u00e9.mp4"}).replace("/", "\\/").encode()
    answer = _post_b64(sandbox, raw)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["file_size"] == len(payload)
    assert httpx.get(answer.json()["data"]["file_url"], trust_env=False).content == payload


# Images and sound are references of the newer models (a PNG is stored: test_models_agree.py).
@pytest.mark.parametrize("head", [
    b"%PDF-1.7\n" + b"\x00" * 20, b"hello world, plain text",
    b"\x00\x00\x00\x18ftypheic" + b"\x00" * 12,
])
def test_non_video_data_is_refused(sandbox: Sandbox, head: bytes) -> None:
    answer = _post_b64(sandbox, {"base64_data": base64.b64encode(head).decode()})
    assert _files_error(answer, 400)["code"] == "unsupported_file_type"
    with client(sandbox) as http:
        multi = http.post("/api/v1/files/upload/stream", files={"file": ("a.mp4", head)})
    assert _files_error(multi, 400)["code"] == "unsupported_file_type"


def test_uploads_over_the_size_limit_are_413(sandbox: Sandbox) -> None:
    sandbox.configure(max_upload_bytes=1000)
    small = MP4_HEAD + b"\x00" * (1000 - len(MP4_HEAD))
    assert _post_b64(sandbox, {"base64_data": base64.b64encode(small).decode()}).status_code == 200
    big = base64.b64encode(small + b"\x00").decode()
    assert _files_error(_post_b64(sandbox, {"base64_data": big}), 413)["code"] == "file_too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit is found while decoding
        yield b'{"base64_data": "'
        yield big.encode()
        yield b'"}'

    with client(sandbox) as http:
        answer = http.post("/api/v1/files/upload/base64", content=chunked(),
                           headers={"content-type": "application/json"})
        assert _files_error(answer, 413)["code"] == "file_too_large"
        huge = http.post("/api/v1/files/upload/base64", content=b"x" * 100_000,
                         headers={"content-type": "application/json"})
        assert _files_error(huge, 413)["code"] == "file_too_large"
        multi = http.post("/api/v1/files/upload/stream", files={"file": ("a.mp4", small + b"1")})
        assert _files_error(multi, 413)["code"] == "file_too_large"
    assert len(sandbox.state()["uploads"]) == 1


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"content": b"plain", "headers": {"content-type": "text/plain"}}, "multipart/form-data"),
    ({"data": {"upload_path": "x"}, "files": {"other": ("a", b"1")}}, "no 'file' part"),
    ({"content": b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n\x00\x00",
      "headers": {"content-type": "multipart/form-data; boundary=b"}}, "closing boundary"),
])
def test_bad_multipart_bodies_are_400(sandbox: Sandbox, kwargs: dict[str, object],
                                      needle: str) -> None:
    with client(sandbox) as http:
        answer = http.post("/api/v1/files/upload/stream", **kwargs)  # type: ignore[arg-type]
    assert needle in _files_error(answer, 400)["message"]


def test_unknown_file_urls_are_404(sandbox: Sandbox) -> None:
    answer = httpx.get(f"{sandbox.url}/cdn/files/file_nope/a.mp4", trust_env=False)
    assert answer.status_code == 404 and error_of(answer)["code"] == "file_not_found"
