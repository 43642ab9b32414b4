"""Bad input never gets a 500 or a hang; the OpenAPI document agrees with EvoLink's published one."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sandbox_util import client, error_of, generation

from prep.core import rules
from prep.sandbox import Sandbox
from prep.sandbox.openapi import generation_request_schema

# EvoLink's published document, copied into the repository (docs/spec/README.md says from where).
YAML = Path(__file__).resolve().parent.parent / "docs" / "spec" / "wan26-reference-video.openapi.yaml"


def _ok_shape(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        error_of(answer)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/videos/generations"), ("PUT", "/v1/videos/generations"),
    ("POST", "/v1/tasks/task-unified-1757169743-7cvnl5zw"), ("GET", "/api/v1/files/upload/base64"),
    ("PATCH", "/api/v1/files/quota"), ("GET", "/v2/anything"), ("POST", "/"),
    ("GET", "/cdn/files/only-one-segment"), ("DELETE", "/v1/tasks/x"),
])
def test_unknown_paths_and_wrong_methods(sandbox: Sandbox, method: str, path: str) -> None:
    with client(sandbox) as http:
        answer = http.request(method, path)
    assert answer.status_code == 404  # as EvoLink answers: never 405
    error_of(answer)


def _raw(sandbox: Sandbox, data: bytes, *, shut: bool = True, wait_s: float = 5) -> bytes:
    port = int(sandbox.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def _head(path: str, length: int, key: str, ctype: str = "application/json") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {length}\r\n\r\n").encode()


@pytest.mark.parametrize(("path", "ctype"), [
    ("/v1/videos/generations", "application/json"),
    ("/api/v1/files/upload/base64", "application/json"),
    ("/api/v1/files/upload/stream", "multipart/form-data; boundary=b"),
])
def test_a_body_that_stops_early(sandbox: Sandbox, path: str, ctype: str) -> None:
    sandbox.configure(body_idle_s=0.3)
    part = b"--b\r\n" if ctype.startswith("multipart") else b'{"base64_data": "AAAA'
    start = _head(path, 1000, sandbox.key, ctype) + part
    # The client gives up half way and closes: nobody is left to answer; the server carries on.
    port = int(sandbox.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(start)
    # The client stalls half way and keeps the connection open: a 408, not a hang.
    started = time.monotonic()
    answer = _raw(sandbox, start, shut=False)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < 4
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"
    with client(sandbox) as http:
        assert http.get("/api/v1/files/quota").status_code == 200
    assert sandbox.state()["uploads"] == [] and sandbox.state()["tasks"] == []


def test_huge_and_broken_generation_bodies(sandbox: Sandbox) -> None:
    with client(sandbox) as http:
        big = http.post("/v1/videos/generations", content=b" " * (2 * 1024 * 1024),
                        headers={"content-type": "application/json"})
        assert big.status_code == 413 and error_of(big)["code"] == "request_too_large"
        deep = http.post("/v1/videos/generations", content=b"[" * 100_000 + b"]" * 100_000,
                         headers={"content-type": "application/json"})
        assert deep.status_code == 400
        prompt = "caf\u00e9 " * 10
        utf = http.post("/v1/videos/generations",
                        content=json.dumps(generation(["ftp://x"], prompt=prompt)).encode("latin-1"),
                        headers={"content-type": "application/json"})
        assert utf.status_code == 400
    deep_upload = httpx.post(f"{sandbox.url}/api/v1/files/upload/base64",
                             content=b'{"x": ' + b"[" * 1000, trust_env=False,
                             headers={"authorization": f"Bearer {sandbox.key}"})
    assert deep_upload.status_code == 400 and "nests deeper" in error_of(deep_upload)["message"]


# -- property-based fuzz: any body, any endpoint: a 4xx with the error shape, never a 500 -------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=12,
)
_fields = st.sampled_from(["model", "prompt", "video_urls", "aspect_ratio", "quality", "duration",
                           "model_params", "callback_url", "base64_data", "file_name"])


@st.composite
def _generation_bodies(draw: st.DrawFn) -> bytes:
    body: dict[str, Any] = generation(["https://cdn.example.com/a.mp4"], duration=5)
    for _ in range(draw(st.integers(0, 3))):
        field = draw(_fields)
        if draw(st.booleans()):
            body[field] = draw(_json_values)
        else:
            body.pop(field, None)
    raw = json.dumps(body).encode()
    if draw(st.integers(0, 4)) == 0:  # sometimes cut or corrupt the bytes
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.binary(max_size=8))
    return raw


_PATHS = ["/v1/videos/generations", "/api/v1/files/upload/base64", "/api/v1/files/upload/stream",
          "/v1/tasks/task-unified-1757169743-7cvnl5zw", "/api/v1/files/quota",
          "/api/v1/files/file_0", "/cdn/files/file_0/a.mp4", "/v1/tasks/%00", "/nowhere"]

_FUZZ = settings(max_examples=120, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fuzzed(sandbox_server: Sandbox) -> Sandbox:
    """The worker's sandbox, emptied once for the fuzzers and the check after them. A module-scoped
    fixture keeps its tests together on one pytest-xdist worker (tests/testmarks.py), in order, so
    whatever the sandbox holds at the check, the fuzzers left."""
    sandbox_server.reset()
    return sandbox_server


@_FUZZ
@given(body=_generation_bodies() | st.binary(max_size=200)
       | _json_values.map(lambda v: json.dumps(v).encode()))
def test_fuzz_generation_and_upload_bodies(fuzzed: Sandbox, body: bytes) -> None:
    with client(fuzzed) as http:
        for path in ("/v1/videos/generations", "/api/v1/files/upload/base64"):
            _ok_shape(http.post(path, content=body, headers={"content-type": "application/json"}))
        _ok_shape(http.post("/api/v1/files/upload/stream", content=body,
                            headers={"content-type": "multipart/form-data; boundary=xyz"}))


@_FUZZ
@given(method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "HEAD"]),
       path=st.sampled_from(_PATHS), ctype=st.sampled_from(
           ["application/json", "text/plain", "multipart/form-data", "", "application/json; x=\xff"]),
       key=st.sampled_from(["", "sk-sandbox-demo", "sk-x", "Bearer"]),
       body=st.binary(max_size=64))
def test_fuzz_methods_paths_headers(fuzzed: Sandbox, method: str, path: str, ctype: str,
                                    key: str, body: bytes) -> None:
    headers = {"authorization": f"Bearer {key}".encode()} if key else {}
    if ctype:
        headers["content-type"] = ctype.encode("latin-1")  # raw bytes, even non-ASCII ones
    with httpx.Client(base_url=fuzzed.url, timeout=10, trust_env=False) as http:
        answer = http.request(method, path, content=body or None, headers=headers)
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400 and method != "HEAD":
        error_of(answer)


def test_fuzzing_left_the_server_healthy(fuzzed: Sandbox) -> None:
    state = fuzzed.state()
    assert state["tasks"] == [] and state["uploads"] == []  # nothing random got through
    with client(fuzzed) as http:
        assert http.get("/api/v1/files/quota").status_code == 200


# -- the OpenAPI document ---------------------------------------------------------------------------

def test_generation_schema_agrees_with_evolink() -> None:
    published = yaml.safe_load(YAML.read_text(encoding="utf-8"))
    theirs = published["components"]["schemas"]["Wan26ReferenceVideoRequest"]
    ours = generation_request_schema()
    assert ours["type"] == theirs["type"] == "object"
    assert sorted(ours["required"]) == sorted(theirs["required"])
    assert set(ours["properties"]) == set(theirs["properties"])
    limits = ("enum", "maxLength", "maxItems", "minimum", "maximum", "format", "default")
    for name, their in theirs["properties"].items():
        mine = ours["properties"][name]
        assert mine["type"] == their["type"], name
        for limit in limits:
            if limit in their:
                assert mine[limit] == their[limit], (name, limit)
        if "items" in their:
            # Ours may say more (a scheme pattern), never less.
            assert their["items"].items() <= mine["items"].items(), name
        if "properties" in their:
            for sub, sub_schema in their["properties"].items():
                assert mine["properties"][sub]["enum"] == sub_schema["enum"], sub
    # What the published document says only in prose, ours states as keywords:
    props = theirs["properties"]
    for value in ours["properties"]["aspect_ratio"]["enum"]:
        assert f"`{value}`" in props["aspect_ratio"]["description"]
    for value in ours["properties"]["quality"]["enum"]:
        assert f"`{value}`" in props["quality"]["description"]
    assert "`2048`" in props["callback_url"]["description"]
    assert ours["properties"]["callback_url"]["maxLength"] == 2048
    assert ours["properties"]["video_urls"]["minItems"] == rules.MIN_CLIPS
    their_response = published["components"]["schemas"]["VideoGenerationResponse"]["properties"]
    served = _served_schema()
    mine_response = served["components"]["schemas"]["VideoGenerationResponse"]["properties"]
    assert set(their_response) <= set(mine_response)
    for name in ("object", "type"):
        assert mine_response[name]["enum"] == their_response[name]["enum"]
    assert set(their_response["status"]["enum"]) <= set(mine_response["status"]["enum"])
    for name in ("billing_rule", "user_group"):
        their_usage = published["components"]["schemas"]["Usage"]["properties"][name]
        assert mine_response["usage"]["properties"][name]["enum"] == their_usage["enum"]
    their_error = published["components"]["schemas"]["ErrorResponse"]["properties"]["error"]
    mine_error = served["components"]["schemas"]["ErrorResponse"]["properties"]["error"]
    assert set(mine_error["properties"]) == set(their_error["properties"])


_SERVED: dict[str, Any] = {}


def _served_schema() -> dict[str, Any]:
    from prep.sandbox.openapi import openapi_document

    return _SERVED.setdefault("doc", openapi_document("http://127.0.0.1:1"))


def test_openapi_is_served_and_lists_what_exists(sandbox: Sandbox) -> None:
    doc = sandbox.openapi()
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": sandbox.url}]
    assert doc["components"]["schemas"]["Wan26ReferenceVideoRequest"] == generation_request_schema()
    for path, methods in doc["paths"].items():
        concrete = path.replace("{file_id}", "file_0").replace("{name}", "a.mp4").replace(
            "{task_id}", "task-unified-1757169743-7cvnl5zw")
        for method in methods:
            answer = httpx.request(method.upper(), f"{sandbox.url}{concrete}", trust_env=False)
            if method == "head":  # no body to tell "no such route" from "no such file"
                assert answer.status_code != 405, path
                continue
            assert answer.status_code not in (404, 405) or answer.json()["error"]["code"] not in (
                "not_found", "method_not_allowed"), (method, path)
