"""Fault injection over real HTTP: each fault does what it says, and the server keeps serving."""

from __future__ import annotations

import base64
import time

import httpx
import pytest
from sandbox_util import client, create, error_of, tiny_clip, upload, wait_task

from prep.sandbox import Sandbox

DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


@pytest.fixture()
def ref_url(sandbox: Sandbox) -> str:
    url: str = upload(sandbox, tiny_clip())["file_url"]
    return url


def _b64_body() -> dict[str, str]:
    return {"base64_data": base64.b64encode(tiny_clip().read_bytes()).decode()}


def test_rate_limit_with_retry_after(sandbox: Sandbox, ref_url: str) -> None:
    sandbox.fail_next("rate_limit", endpoint="generate", retry_after_s=7, times=2)
    for _ in range(2):
        answer = create(sandbox, [ref_url])
        assert answer.status_code == 429 and answer.headers["retry-after"] == "7"
        assert error_of(answer) == {"code": "rate_limit_exceeded", "type": "rate_limit_error",
                                    "message": "Too many requests, please try again later"}
    assert create(sandbox, [ref_url]).status_code == 200
    assert len(sandbox.state()["tasks"]) == 1


def test_server_error_on_uploads_and_reads(sandbox: Sandbox, ref_url: str) -> None:
    sandbox.fail_next("server_error", endpoint="upload")
    with client(sandbox) as http:
        answer = http.post("/api/v1/files/upload/base64", json=_b64_body())
        assert answer.status_code == 500 and error_of(answer)["code"] == "internal_error"
        assert answer.json()["success"] is False
        task = create(sandbox, [ref_url]).json()
        sandbox.fail_next("server_error", endpoint="task")
        assert http.get(f"/v1/tasks/{task['id']}").status_code == 500
        assert http.get(f"/v1/tasks/{task['id']}").status_code == 200
    assert len(sandbox.state()["uploads"]) == 1  # only the fixture's upload


def test_faults_can_target_one_key(sandbox: Sandbox, ref_url: str) -> None:
    sandbox.add_key("sk-unlucky")
    sandbox.fail_next("server_error", key="sk-unlucky", times=None)
    with client(sandbox, "sk-unlucky") as unlucky, client(sandbox) as lucky:
        for _ in range(3):
            assert unlucky.get("/api/v1/files/quota").status_code == 500
            assert lucky.get("/api/v1/files/quota").status_code == 200
    assert sandbox.state()["faults"][0]["key"] == "<set>"  # the key itself is not shown
    sandbox.clear_faults()
    with client(sandbox, "sk-unlucky") as unlucky:
        assert unlucky.get("/api/v1/files/quota").status_code == 200


def test_slow_responses(sandbox: Sandbox) -> None:
    sandbox.fail_next("slow", endpoint="quota", delay_s=0.6)
    with client(sandbox) as http:
        started = time.monotonic()
        assert http.get("/api/v1/files/quota").status_code == 200
        assert time.monotonic() - started >= 0.55
        sandbox.fail_next("slow", endpoint="quota", delay_s=2)
        with pytest.raises(httpx.ReadTimeout):
            http.get("/api/v1/files/quota", timeout=0.3)
        assert http.get("/api/v1/files/quota").status_code == 200  # still serving


def test_drop_mid_request_on_upload(sandbox: Sandbox) -> None:
    sandbox.fail_next("drop_mid_request", endpoint="upload")
    with client(sandbox) as http:
        with pytest.raises(DROPPED):
            http.post("/api/v1/files/upload/base64", json=_b64_body())
        assert http.post("/api/v1/files/upload/base64", json=_b64_body()).status_code == 200
    state = sandbox.state()
    assert len(state["uploads"]) == 1
    assert [r["status"] for r in state["requests"]] == ["dropped", 200]


def test_reset_mid_body_alias_and_big_body(sandbox: Sandbox) -> None:
    sandbox.fail_next("reset_mid_body", endpoint="upload")
    body = b'{"base64_data": "' + b"A" * 4_000_000 + b'"}'
    with client(sandbox) as http, pytest.raises(DROPPED):
        http.post("/api/v1/files/upload/base64", content=body,
                  headers={"content-type": "application/json"})
    assert sandbox.state()["uploads"] == []


def test_drop_mid_response_on_generate_still_creates(sandbox: Sandbox, ref_url: str) -> None:
    sandbox.fail_next("drop_mid_response", endpoint="generate")
    with pytest.raises(DROPPED):
        create(sandbox, [ref_url])
    [task] = sandbox.state()["tasks"]
    assert wait_task(sandbox, task["id"])["status"] == "completed"


def test_drop_after_create(sandbox: Sandbox, ref_url: str) -> None:
    sandbox.fail_next("drop_after_create", endpoint="generate")
    with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
        create(sandbox, [ref_url])
    state = sandbox.state()
    assert len(state["tasks"]) == 1
    assert state["requests"][-1]["status"] == "dropped"
    assert state["requests"][-1]["fault"] == "drop_after_create"


def test_drop_mid_download(sandbox: Sandbox, ref_url: str) -> None:
    sandbox.fail_next("drop_mid_response", endpoint="download")
    with httpx.Client(trust_env=False) as http:
        with pytest.raises(DROPPED):
            http.get(ref_url)
        assert http.get(ref_url).content == tiny_clip().read_bytes()


def test_fail_task(sandbox: Sandbox, ref_url: str) -> None:
    sandbox.fail_next("fail_task")
    failed = create(sandbox, [ref_url]).json()
    ok = create(sandbox, [ref_url], duration=2).json()
    assert wait_task(sandbox, failed["id"])["status"] == "failed"
    assert wait_task(sandbox, ok["id"])["status"] == "completed"


@pytest.mark.parametrize("body", [
    {"kind": "explode"}, {"kind": "rate_limit", "endpoint": "nowhere"},
    {"kind": "rate_limit", "times": 0}, {"kind": "slow", "delay_s": -1}, {"kind": "slow", "x": 1},
    ["rate_limit"],
])
def test_bad_fault_requests(sandbox: Sandbox, body: object) -> None:
    answer = httpx.post(f"{sandbox.url}/_sandbox/faults", json=body, trust_env=False)
    assert answer.status_code == 400 and error_of(answer)
    assert sandbox.state()["faults"] == []


def test_server_survives_every_fault_in_a_row(sandbox: Sandbox, ref_url: str) -> None:
    for kind in ("rate_limit", "server_error", "drop_mid_request", "drop_mid_response",
                 "drop_after_create"):
        sandbox.fail_next(kind, endpoint="task")
    task = create(sandbox, [ref_url], duration=2).json()
    outcomes = []
    with client(sandbox) as http:
        for _ in range(6):
            try:
                outcomes.append(http.get(f"/v1/tasks/{task['id']}").status_code)
            except DROPPED:
                outcomes.append("dropped")
    assert outcomes == [429, 500, "dropped", "dropped", "dropped", 200]
