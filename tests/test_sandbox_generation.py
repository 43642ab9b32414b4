"""The sandbox's generation and task API over real HTTP: rules, billing, timeline, callbacks."""

from __future__ import annotations

import http.server
import json
import math
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest
from sandbox_util import client, create, error_of, generation, tiny_clip, upload, wait_task

from prep.core import billing, rules
from prep.media.probe import probe
from prep.sandbox import NO_ACCESS_KEY, NO_CREDITS_KEY, Sandbox


@pytest.fixture()
def ref_url(sandbox: Sandbox) -> str:
    url: str = upload(sandbox, tiny_clip())["file_url"]
    return url


def _rejected(answer: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    return error_of(answer)


@pytest.mark.parametrize(("change", "needle"), [
    ({"model": "wan2.5"}, "model 'wan2.5' is not supported"),
    ({"model": None}, "model must be a string"),
    ({"prompt": "x" * 1501}, "1501 characters; the limit is 1500"),
    ({"prompt": "   "}, "prompt must not be empty"),
    ({"prompt": 5}, "prompt must be a string"),
    ({"video_urls": []}, "give 1 to 3"),
    ({"video_urls": "http://a/b.mp4"}, "must be an array"),
    ({"video_urls": ["ftp://host/a.mp4"]}, "must use http or https"),
    ({"video_urls": ["not a url"]}, "must use http or https"),
    ({"video_urls": ["http:///a.mp4"]}, "has no host"),
    ({"video_urls": [3]}, "video_urls[0] must be a string"),
    ({"aspect_ratio": "21:9"}, "aspect_ratio '21:9' is not supported"),
    ({"aspect_ratio": 1.5}, "aspect_ratio must be a string"),
    ({"quality": "4k"}, "quality '4k' is not supported"),
    ({"duration": 1}, "duration 1 is out of range"),
    ({"duration": 11}, "duration 11 is out of range"),
    ({"duration": 5.0}, "whole number"),
    ({"duration": "5"}, "whole number"),
    ({"duration": True}, "whole number"),
    ({"model_params": {"shot_type": "triple"}}, "shot_type 'triple' is not supported"),
    ({"model_params": "single"}, "model_params must be an object"),
    ({"callback_url": 7}, "callback_url must be a string"),
    ({"callback_url": "http://hooks.example.com/x"}, "must use https"),
    ({"callback_url": "https://" + "a" * 2050 + ".com/"}, "the limit is 2048"),
    ({"callback_url": "https://127.0.0.1/hook"}, "internal address"),
    ({"callback_url": "https://10.1.2.3/hook"}, "internal address"),
    ({"callback_url": "https://172.16.9.1/hook"}, "internal address"),
    ({"callback_url": "https://192.168.1.1/hook"}, "internal address"),
    ({"callback_url": "https://169.254.169.254/latest"}, "internal address"),
    ({"callback_url": "https://[::1]:8443/hook"}, "internal address"),
    ({"callback_url": "https://[::ffff:10.0.0.1]/hook"}, "internal address"),
    ({"callback_url": "https://localhost/hook"}, "internal address"),
    ({"callback_url": "https://db.internal/hook"}, "internal address"),
    ({"callback_url": "https://intranet/hook"}, "internal address"),
    ({"callback_url": "https://sneaky.example.com/hook"}, "resolves to an internal address"),
    ({"callback_url": "https:///nohost"}, "with a host"),
])
def test_every_rule_is_checked(sandbox: Sandbox, ref_url: str, change: dict[str, Any],
                               needle: str) -> None:
    sandbox.configure(hosts={"sneaky.example.com": "10.9.8.7"})
    answer = create(sandbox, [ref_url], **change)
    error = _rejected(answer)
    assert error == {"code": "invalid_request", "type": "invalid_request_error",
                     "message": error["message"]}
    assert needle in error["message"]
    assert sandbox.state()["tasks"] == []


@pytest.mark.parametrize("missing", ["model", "prompt", "video_urls"])
def test_required_fields(sandbox: Sandbox, ref_url: str, missing: str) -> None:
    body = generation([ref_url])
    del body[missing]
    with client(sandbox) as http:
        answer = http.post("/v1/videos/generations", json=body)
    assert _rejected(answer)["message"] == f"{missing} is required"


def test_too_many_urls(sandbox: Sandbox, ref_url: str) -> None:
    assert "give 1 to 3" in _rejected(create(sandbox, [ref_url] * 4))["message"]


def test_body_must_be_json(sandbox: Sandbox) -> None:
    with client(sandbox) as http:
        form = http.post("/v1/videos/generations", data={"model": rules.MODEL})
        assert "application/json" in _rejected(form)["message"]
        for raw in (b"{", b"[1,2", b"\xff\xfe", b"NaN", b'{"model": Infinity}', b"null", b"[]"):
            answer = http.post("/v1/videos/generations", content=raw,
                               headers={"content-type": "application/json"})
            _rejected(answer)


@pytest.mark.parametrize(("clip_kwargs", "needle"), [
    ({"seconds": 1.5, "name": "sandbox-short"}, "must be 2 to 30 seconds"),
    ({"seconds": 31, "name": "sandbox-long"}, "must be 2 to 30 seconds"),
    ({"seconds": 3, "suffix": ".mkv", "name": "sandbox-mkv"}, "only mp4 and mov"),
])
def test_reference_videos_are_probed(sandbox: Sandbox, clip_kwargs: dict[str, Any],
                                     needle: str) -> None:
    url = upload(sandbox, tiny_clip(**clip_kwargs))["file_url"]
    error = _rejected(create(sandbox, [url]))
    assert error["message"].startswith(f"video_urls[0] {url}: ")
    assert needle in error["message"]


def test_mov_and_three_references_are_accepted(sandbox: Sandbox, ref_url: str) -> None:
    mov = upload(sandbox, tiny_clip(suffix=".mov", name="sandbox-ref-mov"))["file_url"]
    answer = create(sandbox, [ref_url, mov, ref_url], duration=2)
    assert answer.status_code == 200, answer.text


def test_broken_gone_and_foreign_references(sandbox: Sandbox, ref_url: str) -> None:
    fake = upload(sandbox, _fake_mp4(), data_url=False)["file_url"]
    assert "not a readable video" in _rejected(create(sandbox, [fake]))["message"]
    gone = ref_url.replace("/cdn/files/file_", "/cdn/files/file_0")
    assert "HTTP 404" in _rejected(create(sandbox, [ref_url, gone]))["message"]
    foreign = "https://cdn.example.com/clip.mp4"
    error = _rejected(create(sandbox, [foreign]))
    assert error["message"].startswith(f"video_urls[0] {foreign}: ")
    assert "only fetch videos it hosts" in error["message"]
    sandbox.configure(accept_foreign_urls=True)
    accepted = create(sandbox, [foreign], duration=2)
    assert accepted.status_code == 200
    # Nothing was fetched, so the input is billed at its cap: 5 s + 2 s at 720p.
    assert accepted.json()["usage"]["credits_reserved"] == 33.32
    sandbox.advance_clock(rules.UPLOAD_TTL_S + 1)
    assert "expired" in _rejected(create(sandbox, [ref_url]))["message"]


def _fake_mp4() -> Path:
    path = tiny_clip().with_name("sandbox-fake-ftyp.mp4")
    if not path.exists():
        path.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 4000)
    return path


@pytest.mark.parametrize(("quality", "output_s"), [("720p", 5), ("1080p", 5), ("720p", 2),
                                                    ("1080p", 10)])
def test_credits_reserved_matches_prep_estimate(sandbox: Sandbox, ref_url: str, quality: str,
                                                output_s: int) -> None:
    answer = create(sandbox, [ref_url, ref_url], quality=quality, duration=output_s)
    assert answer.status_code == 200, answer.text
    duration_ms = probe(tiny_clip()).duration_ms
    est = billing.estimate_durations([("a", duration_ms), ("b", duration_ms)],
                                     output_s=output_s, quality=quality)
    assert answer.json()["usage"] == {
        "billing_rule": "per_second", "credits_reserved": float(est.credits),
        "user_group": "default",
    }


def test_worked_example_from_the_spec(sandbox: Sandbox) -> None:
    long_clip = upload(sandbox, tiny_clip(6, name="sandbox-six"))["file_url"]
    answer = create(sandbox, [long_clip], duration=5)
    assert answer.json()["usage"]["credits_reserved"] == 47.6
    hd = create(sandbox, [long_clip], duration=5, quality="1080p")
    assert hd.json()["usage"]["credits_reserved"] == 79.492


def test_auth_credits_and_model_access(sandbox: Sandbox, ref_url: str) -> None:
    assert _rejected(create(sandbox, [ref_url], key=""), 401)["code"] == "unauthorized"
    assert _rejected(create(sandbox, [ref_url], key="sk-nope"), 401)["type"] == (
        "authentication_error")
    upload_for = {k: upload(sandbox, tiny_clip(), key=k)["file_url"]
                  for k in (NO_CREDITS_KEY, NO_ACCESS_KEY)}
    poor = _rejected(create(sandbox, [upload_for[NO_CREDITS_KEY]], key=NO_CREDITS_KEY), 402)
    assert poor["code"] == "insufficient_quota" and poor["type"] == "insufficient_quota"
    denied = _rejected(create(sandbox, [upload_for[NO_ACCESS_KEY]], key=NO_ACCESS_KEY), 403)
    assert denied == {"code": "model_access_denied", "type": "invalid_request_error",
                      "message": f"Token does not have access to model: {rules.MODEL}"}
    sandbox.add_key("sk-fifty", credits=50)
    mine = upload(sandbox, tiny_clip(), key="sk-fifty")["file_url"]
    first = create(sandbox, [mine], key="sk-fifty")  # 38.08 credits reserved
    assert first.status_code == 200
    assert create(sandbox, [mine], key="sk-fifty").status_code == 402  # 11.92 left
    wait_task(sandbox, first.json()["id"], key="sk-fifty")
    assert create(sandbox, [mine], key="sk-fifty", duration=2).status_code == 402  # charged


def test_task_ids_keys_and_404s(sandbox: Sandbox, ref_url: str) -> None:
    task_id = create(sandbox, [ref_url], duration=2).json()["id"]
    with client(sandbox) as http:
        for bad in ("x", "task-unified-1-abc", "task-unified-1757169743-7CVNL5ZW", "%20"):
            answer = http.get(f"/v1/tasks/{bad}")
            assert _rejected(answer)["code"] == "invalid_task_id"
        unknown = http.get("/v1/tasks/task-unified-1757169743-7cvnl5zw")
        assert _rejected(unknown, 404)["code"] == "task_not_found"
    with client(sandbox, "") as anonymous:
        assert anonymous.get(f"/v1/tasks/{task_id}").status_code == 401
    sandbox.add_key("sk-other")
    with client(sandbox, "sk-other") as other:
        assert other.get(f"/v1/tasks/{task_id}").status_code == 404


def test_timeline_on_a_moving_clock(sandbox: Sandbox, ref_url: str) -> None:
    sandbox.configure(speed=1)
    created = create(sandbox, [ref_url], aspect_ratio="4:3")
    body = created.json()
    assert set(body) == {"created", "id", "model", "object", "progress", "status", "task_info",
                         "type", "usage"}
    assert body["status"] == "pending" and body["progress"] == 0
    assert body["object"] == "video.generation.task" and body["type"] == "video"
    assert body["model"] == rules.MODEL and body["task_info"]["can_cancel"] is True
    assert body["task_info"]["estimated_time"] == 74  # 4 s queued + 30 s + 8 s per output second
    with client(sandbox) as http:
        def get() -> dict[str, Any]:
            answer: dict[str, Any] = http.get(f"/v1/tasks/{body['id']}").json()
            return answer

        assert get()["status"] == "pending" and "results" not in get()
        sandbox.advance_clock(10)
        one = get()
        assert one["status"] == "processing" and 0 < one["progress"] < 100
        assert one["task_info"]["can_cancel"] is False
        sandbox.advance_clock(30)
        two = get()
        assert two["progress"] > one["progress"]
        assert two["task_info"]["estimated_time"] < one["task_info"]["estimated_time"]
        sandbox.advance_clock(40)
        done = wait_task(sandbox, body["id"])
        assert done["status"] == "completed" and done["progress"] == 100
        assert done["task_info"]["estimated_time"] == 0
        [url] = done["results"]
        video = httpx.get(url, trust_env=False)
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        sandbox.advance_clock(rules.RESULT_TTL_S - 60)
        assert httpx.head(url, trust_env=False).status_code == 200
        sandbox.advance_clock(120)
        expired = httpx.get(url, trust_env=False)
        assert expired.status_code == 403 and error_of(expired)["code"] == "expired"


@pytest.mark.parametrize(("quality", "aspect", "size"), [
    ("720p", "16:9", (1280, 720)), ("1080p", "9:16", (1080, 1920)), ("720p", "1:1", (720, 720)),
    ("720p", "3:4", (720, 960)),
])
def test_results_are_real_videos(sandbox: Sandbox, ref_url: str, tmp_path: Path, quality: str,
                                 aspect: str, size: tuple[int, int]) -> None:
    task = create(sandbox, [ref_url], quality=quality, aspect_ratio=aspect, duration=2).json()
    done = wait_task(sandbox, task["id"])
    out = tmp_path / "result.mp4"
    out.write_bytes(httpx.get(done["results"][0], trust_env=False).content)
    info = probe(out)
    assert info.container == "mp4" and info.video_codec == "h264" and info.has_audio
    assert (info.width, info.height) == size
    assert abs(info.duration_ms - 2000) <= 100


def test_failed_tasks_cost_nothing(sandbox: Sandbox, ref_url: str) -> None:
    sandbox.add_key("sk-forty", credits=40)
    url = upload(sandbox, tiny_clip(), key="sk-forty")["file_url"]
    sandbox.fail_next("fail_task")
    task = create(sandbox, [url], key="sk-forty").json()
    done = wait_task(sandbox, task["id"], key="sk-forty")
    assert done["status"] == "failed" and "results" not in done
    # EvoLink's task error vocabulary: a code its clients know and its type, so they do not call
    # it "unknown" and retry it blindly.
    assert done["error"] == {"code": "content_policy_violation", "type": "invalid_request_error",
                             "message": done["error"]["message"]}
    keys = {k["key_id"]: k for k in sandbox.state()["keys"]}
    assert sandbox.state()["tasks"][0]["key_id"] in keys
    assert create(sandbox, [url], key="sk-forty").status_code == 200  # nothing was charged


class _Receiver:
    """A tiny callback receiver on 127.0.0.1 answering with the given statuses in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers["content-length"])
                outer.bodies.append(json.loads(self.rfile.read(length)))
                outer.headers.append(dict(self.headers))
                status = outer.statuses[min(len(outer.bodies), len(outer.statuses)) - 1]
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?job=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[_Receiver]:
    made: list[_Receiver] = []

    def make(statuses: list[int]) -> _Receiver:
        made.append(_Receiver(statuses))
        return made[-1]

    yield make  # type: ignore[misc]
    for r in made:
        r.close()


def _callbacks(sandbox: Sandbox, task_id: str, count: int) -> list[dict[str, Any]]:
    for _ in range(400):
        task = next(t for t in sandbox.state()["tasks"] if t["id"] == task_id)
        if len(task["callbacks"]) >= count:
            return list(task["callbacks"])
        threading.Event().wait(0.02)
    raise AssertionError(f"no {count} callback attempts: {task['callbacks']}")


def test_callback_retried_until_2xx(sandbox: Sandbox, ref_url: str, receiver: Any) -> None:
    hook = receiver([500, 503, 200])
    assert create(sandbox, [ref_url], callback_url=hook.url).status_code == 400  # switch off
    sandbox.configure(allow_local_callbacks=True)
    task = create(sandbox, [ref_url], callback_url=hook.url, duration=2).json()
    attempts = _callbacks(sandbox, task["id"], 3)
    assert [a["status"] for a in attempts] == [500, 503, 200]
    assert [a["ok"] for a in attempts] == [False, False, True]
    assert len(hook.bodies) == 3
    final = wait_task(sandbox, task["id"])
    assert hook.bodies[-1] == final  # the same body as the task query
    assert all("authorization" not in {k.lower() for k in h} for h in hook.headers)


def test_callback_gives_up_after_three_retries(sandbox: Sandbox, ref_url: str,
                                               receiver: Any) -> None:
    hook = receiver([500])
    sandbox.configure(allow_local_callbacks=True)
    sandbox.fail_next("fail_task")
    task = create(sandbox, [ref_url], callback_url=hook.url).json()
    attempts = _callbacks(sandbox, task["id"], 4)
    threading.Event().wait(0.1)
    assert len(_callbacks(sandbox, task["id"], 4)) == 4 == len(hook.bodies)
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert hook.bodies[-1]["status"] == "failed"


def test_public_callbacks_are_accepted_but_not_sent(sandbox: Sandbox, ref_url: str) -> None:
    sandbox.configure(hosts={"hooks.example.com": "93.184.216.34"}, resolve_timeout_s=0.3)
    task = create(sandbox, [ref_url], callback_url="https://hooks.example.com/x", duration=2)
    assert task.status_code == 200, task.text
    [attempt] = _callbacks(sandbox, task.json()["id"], 1)
    assert attempt["attempt"] == 0 and "not sent" in attempt["error"]
    unresolved = create(sandbox, [ref_url], callback_url="https://hooks.invalid/x", duration=2)
    assert unresolved.status_code == 200
    note = sandbox.state()["tasks"][-1]["callback_note"]
    assert note and "could not be resolved" in note


def test_idempotency_ignored_by_default(sandbox: Sandbox, ref_url: str) -> None:
    headers = {"Idempotency-Key": "job-0001-abcdef-retry"}
    one = create(sandbox, [ref_url], headers=headers)
    two = create(sandbox, [ref_url], headers=headers)
    assert one.json()["id"] != two.json()["id"]
    assert "idempotency-replayed" not in two.headers
    assert len(sandbox.state()["tasks"]) == 2
    assert [r["idempotency_key"] for r in sandbox.state()["requests"]
            if r["endpoint"] == "generate"] == [headers["Idempotency-Key"]] * 2


def test_idempotency_honoured_when_switched_on(sandbox: Sandbox, ref_url: str) -> None:
    sandbox.configure(honour_idempotency=True)
    headers = {"Idempotency-Key": "job-0001-abcdef-retry"}
    one = create(sandbox, [ref_url], headers=headers)
    two = create(sandbox, [ref_url], headers=headers)
    assert two.status_code == 200 and two.json() == one.json()
    assert two.headers["idempotency-replayed"] == "true"
    assert "idempotency-replayed" not in one.headers
    assert len(sandbox.state()["tasks"]) == 1
    other = create(sandbox, [ref_url], headers=headers, prompt="something else")
    assert _rejected(other, 409)["code"] == "idempotency_conflict"
    short = create(sandbox, [ref_url], headers={"Idempotency-Key": "short"})
    assert "Idempotency-Key" in _rejected(short)["message"]
    fresh = create(sandbox, [ref_url], headers={"Idempotency-Key": "job-0002-abcdef-first"})
    assert fresh.json()["id"] != one.json()["id"]


def test_estimated_time_is_in_real_seconds(sandbox: Sandbox, ref_url: str) -> None:
    sandbox.configure(speed=10)
    body = create(sandbox, [ref_url], duration=10, quality="1080p").json()
    work = (30 + 8 * 10) * Fraction(3, 2) + 4
    assert body["task_info"]["estimated_time"] == math.ceil(work / 10)
