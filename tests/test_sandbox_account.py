"""The sandbox as EvoLink's own clients find it: both spellings of the upload fields, the files
list, the task list and batch query, the credits endpoint and its reservations, 404s for what is not
served, every request in the log, and the flash model over HTTP."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from sandbox_util import client, create, error_of, tiny_clip, upload, wait_task

from prep.media.probe import probe
from prep.sandbox import Sandbox

FLASH = "wan2.6-reference-video-flash"


@pytest.fixture()
def ref_url(sandbox: Sandbox) -> str:
    url: str = upload(sandbox, tiny_clip())["file_url"]
    return url


def _credits(sandbox: Sandbox, key: str) -> dict[str, Any]:
    with client(sandbox, key) as http:
        answer = http.get("/v1/credits")
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


# -- uploads -----------------------------------------------------------------------------------


def test_stream_upload_takes_the_camel_case_fields(sandbox: Sandbox) -> None:
    """EvoLink's MCP client sends uploadPath / fileName; they used to be dropped silently."""
    clip = tiny_clip()
    with client(sandbox) as http:
        answer = http.post("/api/v1/files/upload/stream",
                           files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")},
                           data={"uploadPath": "camel/case", "fileName": "named.mp4"})
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert (data["upload_path"], data["file_name"]) == ("camel/case", "named.mp4")
    assert data["file_url"].endswith("/named.mp4")


def test_base64_upload_takes_the_camel_case_fields(sandbox: Sandbox) -> None:
    data = upload(sandbox, tiny_clip(), uploadPath="b64", fileName="b.mp4")
    assert (data["upload_path"], data["file_name"]) == ("b64", "b.mp4")


def test_two_spellings_that_disagree_are_refused(sandbox: Sandbox) -> None:
    b64 = base64.b64encode(tiny_clip().read_bytes()).decode()
    with client(sandbox) as http:
        same = http.post("/api/v1/files/upload/base64", json={
            "base64_data": b64, "file_name": "a.mp4", "fileName": "a.mp4"})
        differ = http.post("/api/v1/files/upload/base64", json={
            "base64_data": b64, "upload_path": "a", "uploadPath": "b"})
    assert same.status_code == 200 and same.json()["data"]["file_name"] == "a.mp4"
    assert differ.status_code == 400
    assert "uploadPath" in differ.json()["error"]["message"]
    assert len(sandbox.state()["uploads"]) == 1


# -- files list ----------------------------------------------------------------------------------


def test_files_list_pages_the_keys_files_newest_first(sandbox: Sandbox) -> None:
    names = [upload(sandbox, tiny_clip(), file_name=f"f{i}.mp4")["file_id"] for i in range(3)]
    sandbox.add_key("sk-other")
    upload(sandbox, tiny_clip(), key="sk-other")
    with client(sandbox) as http:
        first = http.get("/api/v1/files/list", params={"page": 1, "pageSize": 2})
        second = http.get("/api/v1/files/list?page=2&pageSize=2")
        default = http.get("/api/v1/files/list")
        bad = http.get("/api/v1/files/list?pageSize=0")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["success"] is True and body["code"] == 200
    page = body["data"]
    assert (page["total"], page["page"], page["page_size"]) == (3, 1, 2)
    assert [f["file_id"] for f in page["files"]] == names[::-1][:2]
    assert set(page["files"][0]) >= {"file_id", "file_name", "file_size", "file_url",
                                     "upload_time", "expires_at", "mime_type"}
    assert [f["file_id"] for f in second.json()["data"]["files"]] == names[:1]
    assert default.json()["data"]["page_size"] == 20 and len(default.json()["data"]["files"]) == 3
    assert bad.status_code == 400 and bad.json()["success"] is False


# -- 404s and the request log ----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/files/file_abc"),  # the DELETE-only route must not answer 405 to a GET
    ("GET", "/api/v1/files/nothing/here"), ("POST", "/api/v1/files/list"),
    ("PUT", "/v1/credits"), ("DELETE", "/v1/tasks"), ("GET", "/v1/videos/generations"),
    ("GET", "/v1/nothing"),
])
def test_unknown_paths_and_methods_are_404_and_logged(sandbox: Sandbox, method: str,
                                                      path: str) -> None:
    with client(sandbox) as http:
        answer = http.request(method, path)
    assert answer.status_code == 404, answer.text
    assert error_of(answer)["code"] == "not_found"
    logged = sandbox.state()["requests"]
    assert [(r["method"], r["path"], r["status"]) for r in logged] == [(method, path, 404)]


def test_every_answer_is_in_the_request_log(sandbox: Sandbox, ref_url: str) -> None:
    with client(sandbox, key="sk-wrong") as http:
        assert http.get("/v1/credits").status_code == 401
    with client(sandbox) as http:
        assert http.get("/v1/tasks/x").status_code == 400
        assert http.post("/v1/videos/generations", json={"model": "nope"}).status_code == 400
        assert http.get("/openapi.json").status_code == 200
    sandbox.fail_next("rate_limit", endpoint="credits")
    with client(sandbox) as http:
        assert http.get("/v1/credits").status_code == 429
    logged = [(r["path"], r["status"], r["endpoint"]) for r in sandbox.state()["requests"]]
    assert logged[1:] == [("/v1/credits", 401, "credits"), ("/v1/tasks/x", 400, "task"),
                          ("/v1/videos/generations", 400, "generate"),
                          ("/openapi.json", 200, None), ("/v1/credits", 429, "credits")]
    assert logged[0][:2] == ("/api/v1/files/upload/base64", 200)


# -- credits ---------------------------------------------------------------------------------------


def test_credits_are_reserved_settled_and_refunded(sandbox: Sandbox) -> None:
    sandbox.add_key("sk-hundred", credits=100)
    url = upload(sandbox, tiny_clip(), key="sk-hundred")["file_url"]
    start = _credits(sandbox, "sk-hundred")
    assert start["user"] == {"remaining_credits": 100, "used_credits": 0}
    assert start["token"]["unlimited_credits"] is True
    sandbox.configure(speed=1)  # the task stays pending while the reservation is looked at
    task = create(sandbox, [url], key="sk-hundred", duration=2).json()
    cost = task["usage"]["credits_reserved"]  # 3 s + 2 s at 4.76 = 23.8 credits
    assert cost == 23.8
    held = _credits(sandbox, "sk-hundred")
    assert held["user"] == {"remaining_credits": 76.2, "used_credits": 0}
    assert held["reserved_credits"] == cost
    sandbox.configure(speed=1000)
    sandbox.advance_clock(3600)
    assert wait_task(sandbox, task["id"], key="sk-hundred")["status"] == "completed"
    done = _credits(sandbox, "sk-hundred")
    assert done["user"] == {"remaining_credits": 76.2, "used_credits": cost}
    assert done["token"]["used_credits"] == cost and done["reserved_credits"] == 0
    # A failed task gives its reservation back.
    sandbox.fail_next("fail_task")
    failed = create(sandbox, [url], key="sk-hundred", duration=2).json()
    assert wait_task(sandbox, failed["id"], key="sk-hundred")["status"] == "failed"
    assert _credits(sandbox, "sk-hundred")["user"] == {"remaining_credits": 76.2,
                                                        "used_credits": cost}


def test_a_task_the_balance_cannot_cover_is_402(sandbox: Sandbox) -> None:
    sandbox.add_key("sk-thirty", credits=30)
    url = upload(sandbox, tiny_clip(), key="sk-thirty")["file_url"]
    sandbox.configure(speed=1)
    assert create(sandbox, [url], key="sk-thirty", duration=2).status_code == 200  # 23.8 held
    refused = create(sandbox, [url], key="sk-thirty", duration=2)
    assert refused.status_code == 402
    assert error_of(refused) == {"code": "insufficient_quota", "type": "insufficient_quota",
                                 "message": error_of(refused)["message"]}
    assert "6.2 left" in error_of(refused)["message"]
    assert len(sandbox.state()["tasks"]) == 1


def test_a_keys_own_limit_is_reported_and_enforced(sandbox: Sandbox) -> None:
    sandbox.add_key("sk-capped", credits=1000, limit=30)
    url = upload(sandbox, tiny_clip(), key="sk-capped")["file_url"]
    report = _credits(sandbox, "sk-capped")
    assert report["token"] == {"remaining_credits": 30, "used_credits": 0,
                               "unlimited_credits": False}
    sandbox.configure(speed=1)
    assert create(sandbox, [url], key="sk-capped", duration=2).status_code == 200
    refused = create(sandbox, [url], key="sk-capped", duration=2)
    assert refused.status_code == 402 and error_of(refused)["code"] == "key_quota_exhausted"
    assert _credits(sandbox, "sk-capped")["token"]["remaining_credits"] == 6.2


def test_credits_need_a_key(sandbox: Sandbox) -> None:
    with client(sandbox, key="") as http:
        answer = http.get("/v1/credits")
    assert answer.status_code == 401 and error_of(answer)["code"] == "unauthorized"


# -- task list and batch ---------------------------------------------------------------------------


def test_task_list_filters_pages_and_leaves_out_result_links(sandbox: Sandbox,
                                                               ref_url: str) -> None:
    ids = [create(sandbox, [ref_url], duration=2).json()["id"] for _ in range(2)]
    flash = create(sandbox, [ref_url], duration=2, model=FLASH).json()["id"]
    for task_id in (*ids, flash):
        wait_task(sandbox, task_id)
    sandbox.configure(speed=1)
    pending = create(sandbox, [ref_url], duration=2).json()["id"]
    with client(sandbox) as http:
        every = http.get("/v1/tasks").json()
        done = http.get("/v1/tasks", params={"status": "completed", "model": FLASH}).json()
        running = http.get("/v1/tasks", params={"status": "processing"}).json()
        paged = http.get("/v1/tasks", params={"page": 2, "page_size": 3}).json()
        bad = [http.get("/v1/tasks", params=p) for p in (
            {"status": "done"}, {"page_size": "101"}, {"page": "0"}, {"page": "x"})]
    assert every["total"] == 4 and (every["page"], every["page_size"]) == (1, 20)
    assert [t["id"] for t in every["data"]][0] == pending
    assert all("results" not in t for t in every["data"])
    completed = next(t for t in every["data"] if t["id"] == flash)
    assert completed["has_results"] is True and completed["model"] == FLASH
    assert completed["credits_used"] == completed["usage"]["credits_reserved"]
    assert [t["id"] for t in done["data"]] == [flash]
    assert [t["id"] for t in running["data"]] == [pending]  # processing includes queued tasks
    assert len(paged["data"]) == 1 and paged["total"] == 4
    assert all(b.status_code == 400 for b in bad), [b.text for b in bad]


def test_batch_query_returns_the_known_tasks_in_order(sandbox: Sandbox, ref_url: str) -> None:
    first, second = (create(sandbox, [ref_url], duration=2).json()["id"] for _ in range(2))
    wait_task(sandbox, first)
    sandbox.add_key("sk-other")
    other_url = upload(sandbox, tiny_clip(), key="sk-other")["file_url"]
    theirs = create(sandbox, [other_url], key="sk-other", duration=2).json()["id"]
    unknown = "task-unified-1757169743-zzzzzzzz"
    with client(sandbox) as http:
        answer = http.post("/v1/tasks/batch", json={
            "task_ids": [second, unknown, first, theirs, "not-an-id", second]})
        fifty = http.post("/v1/tasks/batch", json={"task_ids": [unknown] * 50})
        too_many = http.post("/v1/tasks/batch", json={"task_ids": [unknown] * 51})
        empty = http.post("/v1/tasks/batch", json={"task_ids": []})
        wrong = http.post("/v1/tasks/batch", json={"ids": [first]})
    assert answer.status_code == 200, answer.text
    found = answer.json()["data"]
    assert [t["id"] for t in found] == [second, first]
    assert found[1]["status"] == "completed" and found[1]["results"]
    assert fifty.status_code == 200 and fifty.json() == {"data": []}
    for refused in (too_many, empty, wrong):
        assert refused.status_code == 400 and error_of(refused)["code"] == "invalid_request"


# -- failed tasks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "kind"), [("service_error", "api_error"),
                                            ("invalid_parameters", "invalid_request_error")])
def test_a_planned_failure_carries_the_code_asked_for(sandbox: Sandbox, ref_url: str, code: str,
                                                      kind: str) -> None:
    sandbox.fail_next("fail_task", error_code=code)
    task = create(sandbox, [ref_url], duration=2).json()
    error = wait_task(sandbox, task["id"])["error"]
    assert (error["code"], error["type"]) == (code, kind) and error["message"]


def test_an_unknown_failure_code_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="error_code"):
        sandbox.fail_next("fail_task", error_code="generation_failed")


# -- the flash model -----------------------------------------------------------------------------


@pytest.mark.parametrize(("audio", "credits"), [
    (True, 11.9),   # 3 s + 2 s = 5 s x 2.38
    (False, 9),     # 5 s x 1.19 = 5.95 credits: the 9-credit minimum binds
    (None, 11.9),   # generate_audio defaults to true
])
def test_flash_task_is_priced_and_rendered_with_or_without_audio(
        sandbox: Sandbox, ref_url: str, tmp_path: Path, audio: bool | None,
        credits: float) -> None:
    fields: dict[str, Any] = {"model": FLASH, "duration": 2}
    if audio is not None:
        fields["generate_audio"] = audio
    answer = create(sandbox, [ref_url], **fields)
    assert answer.status_code == 200, answer.text
    task = answer.json()
    assert task["model"] == FLASH and task["usage"]["credits_reserved"] == credits
    done = wait_task(sandbox, task["id"])
    assert done["status"] == "completed" and done["model"] == FLASH
    out = tmp_path / "result.mp4"
    out.write_bytes(httpx.get(done["results"][0], trust_env=False).content)
    info = probe(out)
    assert info.has_audio is (audio is not False)
    assert abs(info.duration_ms - 2000) <= 100


def test_generate_audio_is_refused_on_the_standard_model(sandbox: Sandbox, ref_url: str) -> None:
    answer = create(sandbox, [ref_url], generate_audio=False)
    assert answer.status_code == 400 and "generate_audio" in error_of(answer)["message"]


def test_a_key_without_the_flash_model_is_403(sandbox: Sandbox) -> None:
    sandbox.add_key("sk-standard-only", models=("wan2.6-reference-video",))
    url = upload(sandbox, tiny_clip(), key="sk-standard-only")["file_url"]
    answer = create(sandbox, [url], key="sk-standard-only", model=FLASH)
    assert answer.status_code == 403 and error_of(answer)["code"] == "model_access_denied"
