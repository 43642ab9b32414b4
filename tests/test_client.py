"""Client unit tests with httpx.MockTransport: status mapping, retries, safe create, polling, downloads."""

from __future__ import annotations

import ast
import errno
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import prep.api.client
from prep import errors
from prep.api.client import Client, PollPolicy, RetryPolicy, Task, error_from_response, result_filename
from prep.core import rules
from prep.core.request import GenerationRequest, RequestOptions
from prep.errors import (
    ApiError,
    AuthError,
    MediaError,
    NetworkError,
    OutcomeUnknownError,
    QuotaError,
    RateLimitError,
    RequestRejected,
    ServerError,
    TaskFailedError,
    TaskNotFoundError,
    TaskTimeoutError,
)
from prep.settings import Settings

KEY = "sk-test-SECRET-0123456789abcdef"
API = "http://api.test"
FILES = "http://files.test"
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(range(256)) * 40

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that answers from a script and keeps every request."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.read())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


def make_client(handler: Handler, **kwargs: Any) -> tuple[Client, list[float]]:
    sleeps: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = Client(KEY, base_url=API, files_url=FILES, http=http, sleep=sleeps.append,
                    rand=lambda: 0.0, **kwargs)
    return client, sleeps


def task_json(status: str = "pending", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "created": 1757169743, "id": "task-unified-1757169743-7cvnl5zw", "model": rules.MODEL,
        "object": "video.generation.task", "progress": 0, "status": status,
        "task_info": {"can_cancel": True, "estimated_time": 120}, "type": "video",
        "usage": {"billing_rule": "per_second", "credits_reserved": 47.6, "user_group": "default"},
    }
    body.update(extra)
    return body


def err_body(status: int, code: str, message: str, kind: str = "x") -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, "type": kind}},
                          headers={"x-request-id": "req-42"})


REQUEST = GenerationRequest(options=RequestOptions(prompt="a person waves"),
                            video_urls=("https://files.test/a.mp4",))


# -- status mapping ----------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "code", "cls", "exit_code"), [
    (400, "invalid_request", RequestRejected, 3),
    (400, "invalid_task_id", RequestRejected, 3),
    (401, "unauthorized", AuthError, 4),
    (402, "insufficient_quota", QuotaError, 5),
    (403, "model_access_denied", AuthError, 4),
    (404, "not_found", TaskNotFoundError, 3),
    (429, "rate_limit_exceeded", RateLimitError, 6),
    (500, "internal_error", ServerError, 6),
    (503, "unavailable", ServerError, 6),
])
def test_error_statuses_map_to_exit_codes(status: int, code: str, cls: type[ApiError],
                                          exit_code: int) -> None:
    client, _ = make_client(Recorder(err_body(status, code, f"server says {code}")))
    with pytest.raises(cls) as info:
        client.get_task("task-1")
    exc = info.value
    assert type(exc) is cls and exc.exit_code == exit_code
    assert f"server says {code}" in str(exc) and "req-42" in str(exc)
    assert exc.status == status and exc.code == code
    if status in (401, 402, 403):
        assert exc.hint


def test_403_model_access_hint_names_the_model() -> None:
    client, _ = make_client(Recorder(err_body(403, "model_access_denied", "no access")))
    with pytest.raises(AuthError) as info:
        client.get_task("task-1")
    assert "wan2.6-reference-video" in info.value.hint


def test_files_api_error_shape_and_non_json_bodies() -> None:
    request = httpx.Request("GET", FILES)
    files = httpx.Response(400, json={"success": False, "code": 400, "msg": "bad base64"},
                           request=request)
    assert "bad base64" in str(error_from_response(files, what="uploading x"))
    html = httpx.Response(502, text="<html>Bad Gateway</html>", request=request)
    exc = error_from_response(html, what="reading task t")
    assert isinstance(exc, ServerError) and "502" in str(exc)


@pytest.mark.parametrize("status", rules.TASK_STATUSES)
def test_every_task_status(status: str) -> None:
    task = Task.from_json(task_json(status, error={"code": "x", "message": "content policy"}))
    assert task.terminal == (status in ("completed", "failed", "cancelled"))
    assert task.succeeded == (status == "completed")
    if status in ("failed", "cancelled"):
        with pytest.raises(TaskFailedError) as info:
            task.raise_for_failure()
        assert info.value.exit_code == 7 and info.value.task_id == task.id
        assert "content policy" in str(info.value)
    else:
        task.raise_for_failure()


def test_task_fields_and_credits_units() -> None:
    task = Task.from_json(task_json("completed", progress=100, results=["https://cdn.test/r.mp4"]))
    assert task.credits_reserved_units == 476_000
    assert task.estimated_time_s == 120 and task.results == ("https://cdn.test/r.mp4",)
    assert task.as_dict()["credits_reserved"] == 47.6
    with pytest.raises(ApiError):
        Task.from_json({"error": "no id"})


@pytest.mark.parametrize(("reserved", "units"), [
    (5, 50_000), (47.6, 476_000), (79.492, 794_920), ("33.32", 333_200), (0, 0),
    (0.1 + 0.2, 3_000),  # a server that adds in binary floats still means 0.3 credits
    ("4.76005", 47_601),  # half a unit rounds up, as prep's own bill does
    (-5, None), ("lots", None), (True, None), (None, None), ([5], None), (float("nan"), None),
])
def test_reserved_credits_become_integer_units(reserved: Any, units: int | None) -> None:
    task = Task.from_json(task_json(usage={"credits_reserved": reserved}))
    assert task.credits_reserved_units == units
    assert units is None or type(task.credits_reserved_units) is int
    data = json.loads(json.dumps(task.as_dict()))
    assert data["credits_reserved_units"] == units
    assert units is None or type(data["credits_reserved_units"]) is int
    assert data["credits_reserved"] == (None if units is None else units / 10_000)


def test_client_module_imports_neither_uploads_nor_jobs() -> None:
    """Uploads build on the client, and jobs on both: the client must not reach up to either."""
    tree = ast.parse(Path(prep.api.client.__file__).read_text(encoding="utf-8"))
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m.startswith(("prep.api.upload", "prep.jobs", "prep.ui"))}
    assert not hasattr(Client, "upload")  # prep.api.upload.upload_file / upload_files instead


# -- retries -----------------------------------------------------------------------------------

def test_reads_retry_with_exponential_backoff() -> None:
    rec = Recorder(httpx.Response(503), httpx.Response(502), httpx.Response(500),
                   httpx.Response(200, json=task_json()))
    client, sleeps = make_client(rec)
    assert client.get_task("task-1").status == "pending"
    assert len(rec.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]  # rand=0: half of 1, 2, 4 s (equal jitter)


def test_jitter_stays_within_the_ceiling() -> None:
    policy = RetryPolicy(base_delay_s=1, max_delay_s=10)
    assert policy.delay_s(1, None, 0.0) == 0.5 and policy.delay_s(1, None, 0.999) < 1.0
    assert policy.delay_s(10, None, 0.999) <= 10
    assert policy.delay_s(3, 7.0, 0.5) == 7.0
    assert policy.delay_s(3, 10_000.0, 0.5) == policy.max_retry_after_s


def test_retry_after_is_honoured_and_capped() -> None:
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "7"}),
                   httpx.Response(429, headers={"Retry-After": "99999"}),
                   httpx.Response(200, json=task_json()))
    client, sleeps = make_client(rec)
    client.get_task("task-1")
    assert sleeps == [7.0, 120.0]


def test_retries_give_up_with_the_last_error() -> None:
    rec = Recorder(err_body(429, "rate_limit_exceeded", "slow down"))
    client, sleeps = make_client(rec, retry=RetryPolicy(attempts=3))
    with pytest.raises(RateLimitError, match="slow down"):
        client.get_task("task-1")
    assert len(rec.requests) == 3 and len(sleeps) == 2


def test_network_errors_on_reads_are_retried() -> None:
    rec = Recorder(httpx.ReadError("reset"), httpx.ConnectError("refused"),
                   httpx.Response(200, json=task_json()))
    client, _ = make_client(rec)
    assert client.get_task("task-1").id.startswith("task-")
    rec2 = Recorder(httpx.ConnectError("refused"))
    client2, _ = make_client(rec2, retry=RetryPolicy(attempts=2))
    with pytest.raises(NetworkError) as info:
        client2.get_task("task-1")
    assert info.value.exit_code == 6


def test_no_retry_on_client_errors() -> None:
    rec = Recorder(err_body(401, "unauthorized", "bad key"))
    client, sleeps = make_client(rec)
    with pytest.raises(AuthError):
        client.get_task("task-1")
    assert len(rec.requests) == 1 and sleeps == []


# -- creating tasks ----------------------------------------------------------------------------

def test_create_sends_one_idempotency_key_and_reuses_it_on_429() -> None:
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "2"}),
                   httpx.ConnectError("refused"),
                   httpx.Response(200, json=task_json()))
    client, sleeps = make_client(rec)
    task = client.create_task(REQUEST)
    assert task.status == "pending"
    keys = {r.headers["Idempotency-Key"] for r in rec.requests}
    assert len(rec.requests) == 3 and len(keys) == 1
    assert rules.IDEMPOTENCY_KEY_RE.match(keys.pop())
    assert json.loads(rec.bodies[0]) == REQUEST.body() == json.loads(rec.bodies[2])
    assert sleeps[0] == 2.0


def test_create_with_a_given_key_and_replayed_answer() -> None:
    rec = Recorder(httpx.Response(200, json=task_json(), headers={"idempotency-replayed": "true"}))
    client, _ = make_client(rec)
    task = client.create_task(REQUEST, idempotency_key="job-0001-abcdefgh")
    assert task.replayed and rec.requests[0].headers["Idempotency-Key"] == "job-0001-abcdefgh"
    with pytest.raises(ValueError):
        client.create_task(REQUEST, idempotency_key="short")


@pytest.mark.parametrize("failure", [
    httpx.ReadTimeout("no answer"), httpx.RemoteProtocolError("dropped"), httpx.ReadError("reset"),
    httpx.WriteError("broken pipe"), httpx.Response(500), httpx.Response(502),
])
def test_create_never_resends_an_unknown_outcome(failure: httpx.Response | Exception) -> None:
    rec = Recorder(failure, httpx.Response(200, json=task_json()))
    client, sleeps = make_client(rec)
    with pytest.raises(OutcomeUnknownError) as info:
        client.create_task(REQUEST, idempotency_key="job-0001-abcdefgh")
    assert len(rec.requests) == 1 and sleeps == []
    exc = info.value
    assert exc.exit_code == 6 and "outcome unknown" in str(exc) and "may exist" in str(exc)
    assert "job-0001-abcdefgh" in str(exc) and "\n" not in str(exc) and exc.hint
    # Everything the caller needs to journal it: the key, the body and where it went, and why.
    assert exc.idempotency_key == "job-0001-abcdefgh"
    assert exc.body == REQUEST.body() == json.loads(rec.bodies[0])
    assert exc.url == f"{API}/v1/videos/generations"
    assert exc.reason and exc.reason in str(exc)
    assert exc.status == (failure.status_code if isinstance(failure, httpx.Response) else None)


def test_unknown_outcome_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client keeps no record of its own (the caller journals the error's fields)."""
    monkeypatch.chdir(tmp_path)
    settings = Settings(api_key=KEY, base_url=API, files_url=FILES, cache_dir=tmp_path / "cache",
                        config_file=tmp_path / "config.toml")
    http = httpx.Client(transport=httpx.MockTransport(Recorder(httpx.ReadTimeout("no answer"))))
    client = Client.from_settings(settings, http=http, sleep=lambda s: None)
    with pytest.raises(OutcomeUnknownError):
        client.create_task(REQUEST)
    assert list(tmp_path.rglob("*")) == []
    with pytest.raises(TypeError):
        Client(KEY, outcomes_dir=tmp_path)  # type: ignore[call-arg]


@pytest.mark.parametrize(("status", "cls"), [(400, RequestRejected), (401, AuthError),
                                             (402, QuotaError), (403, AuthError)])
def test_create_refusals_are_not_retried(status: int, cls: type[ApiError]) -> None:
    rec = Recorder(err_body(status, "c", "refused"))
    client, _ = make_client(rec)
    with pytest.raises(cls) as info:
        client.create_task(REQUEST)
    assert len(rec.requests) == 1 and not isinstance(info.value, OutcomeUnknownError)


# -- the key -----------------------------------------------------------------------------------

def test_key_never_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rec = Recorder(httpx.Response(503), httpx.ReadError("x"), err_body(401, "unauthorized", "nope"))
    client, _ = make_client(rec)
    assert KEY not in repr(client) and KEY not in str(client)
    raised: list[BaseException] = []
    for call in (lambda: client.get_task("task-1"), lambda: client.create_task(REQUEST)):
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - every failure is inspected below
            raised.append(exc)
    assert raised
    for exc in raised:
        chain: BaseException | None = exc
        while chain is not None:
            assert KEY not in str(chain) and KEY not in repr(chain)
            assert KEY not in repr(vars(chain))  # nor in the fields an unknown outcome carries
            chain = chain.__cause__ or chain.__context__
    assert all(KEY not in r.getMessage() for r in caplog.records)
    assert rec.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_key_is_never_sent_to_file_or_result_urls(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=MP4)

    client, _ = make_client(handler)
    client.download("https://cdn.test/result.mp4", tmp_path / "r.mp4")
    assert client.url_alive("https://cdn.test/a.mp4")
    assert seen and all("authorization" not in r.headers for r in seen)
    with pytest.raises(ValueError):
        client._auth_headers("https://cdn.test/x")


def test_default_public_client_is_separate() -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)),
                        headers={"Authorization": "Bearer leaked"})
    client = Client(KEY, base_url=API, files_url=FILES, http=http)
    assert client._public is not http and "authorization" not in client._public.headers
    client.close()


def test_no_key_is_an_auth_error_before_any_request() -> None:
    rec = Recorder(httpx.Response(200, json=task_json()))
    client = Client(None, base_url=API, files_url=FILES,
                    http=httpx.Client(transport=httpx.MockTransport(rec)))
    with pytest.raises(AuthError) as info:
        client.get_task("task-1")
    assert info.value.exit_code == 4 and rec.requests == []


# -- polling -----------------------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def polling_client(statuses: list[dict[str, Any]]) -> tuple[Client, FakeClock, Recorder]:
    clock = FakeClock()
    rec = Recorder(*[httpx.Response(200, json=s) for s in statuses])
    client = Client(KEY, base_url=API, files_url=FILES,
                    http=httpx.Client(transport=httpx.MockTransport(rec)), sleep=clock.sleep,
                    clock=clock)
    return client, clock, rec


def test_wait_backs_off_to_the_cap_and_reports_progress() -> None:
    statuses = [task_json("pending")] * 8 + [task_json("processing", progress=60),
                                             task_json("completed", progress=100,
                                                       results=["https://cdn.test/r.mp4"])]
    client, clock, _ = polling_client(statuses)
    seen: list[tuple[str, int]] = []
    done = client.wait(Task.from_json(task_json()), poll=PollPolicy(max_s=8, deadline_s=None),
                       on_update=lambda t: seen.append((t.status, t.progress)))
    assert done.succeeded and seen[-1] == ("completed", 100) and ("processing", 60) in seen
    assert clock.sleeps[:3] == [1.0, 1.5, 2.25] and max(clock.sleeps) == 8.0
    assert clock.sleeps == sorted(clock.sleeps)


def test_wait_raises_on_failure_with_the_server_reason() -> None:
    client, _, _ = polling_client([task_json("failed", error={"message": "face not found"})])
    with pytest.raises(TaskFailedError, match="face not found") as info:
        client.wait(Task.from_json(task_json()))
    assert info.value.exit_code == 7


def _settings(base_url: str = rules.DEFAULT_BASE_URL, **fields: Any) -> Settings:
    return Settings(base_url=base_url, cache_dir=Path("unused"), config_file=Path("unused.toml"),
                    **fields)


@pytest.mark.parametrize(("settings", "options", "pace"), [
    # EvoLink: from 1 s to its own 8 s pace (each read makes it ask the upstream provider).
    (_settings(), {}, (1.0, 8.0)),
    (_settings(poll_max_interval_s=20.0), {}, (1.0, 20.0)),
    (_settings(poll_max_interval_s=0.5), {}, (0.5, 0.5)),
    (_settings(poll_max_interval_s=0.0), {}, (0.05, 0.05)),
    (_settings(), {"initial_s": 3.0, "max_s": 12.0}, (3.0, 12.0)),
    (_settings(), {"initial_s": 30.0}, (8.0, 8.0)),
    # A sandbox or proxy elsewhere: from 0.2 s to at most 2 s.
    (_settings("http://127.0.0.1:8765"), {}, (0.2, 2.0)),
    (_settings("http://127.0.0.1:8765", poll_max_interval_s=0.1), {}, (0.1, 0.1)),
    (_settings("http://127.0.0.1:8765"), {"initial_s": 0.05, "max_s": 1.0}, (0.05, 1.0)),
    (_settings("http://127.0.0.1:8765"), {"max_s": 9.0}, (0.2, 2.0)),
])
def test_poll_pace_for_settings(settings: Settings, options: dict[str, float],
                                pace: tuple[float, float]) -> None:
    policy = PollPolicy.for_settings(settings, **options)
    assert (policy.initial_s, policy.max_s) == pace
    assert policy.factor == PollPolicy().factor and policy.deadline_s == 30 * 60
    assert PollPolicy.for_settings(settings, deadline_s=None).deadline_s is None
    with pytest.raises(ValueError):
        PollPolicy.for_settings(settings, initial_s=0)


def test_wait_gives_up_at_the_deadline_naming_the_task() -> None:
    client, clock, _ = polling_client([task_json("processing", progress=10)])
    with pytest.raises(TaskTimeoutError) as info:
        client.wait(Task.from_json(task_json()), poll=PollPolicy(deadline_s=30))
    assert info.value.task_id in info.value.hint and "prep task" in info.value.hint
    assert clock.now <= 30


def test_unknown_task_id_is_an_input_problem() -> None:
    rec = Recorder(err_body(404, "task_not_found", "Task not found: task-NOSUCH"))
    client, sleeps = make_client(rec)
    with pytest.raises(TaskNotFoundError) as info:
        client.get_task("task-NOSUCH")
    exc = info.value
    assert exc.exit_code == 3 and exc.task_id == "task-NOSUCH" and exc.status == 404
    assert "task-NOSUCH" in exc.message and "\n" not in exc.message and "req-42" in exc.message
    assert "task id" in exc.hint and "24 h" in exc.hint
    assert len(rec.requests) == 1 and sleeps == []  # a 404 is an answer, not a failure to retry
    bare, _ = make_client(Recorder(httpx.Response(404, text="")))
    with pytest.raises(TaskNotFoundError, match=r"^no task task-NOSUCH at api\.test: HTTP 404$"):
        bare.get_task("task-NOSUCH")


def test_a_404_elsewhere_keeps_its_meaning(tmp_path: Path) -> None:
    client, _ = make_client(Recorder(err_body(404, "not_found", "no such route")))
    for call in (lambda: client.create_task(REQUEST),
                 lambda: client.post_file("/api/v1/files/upload/base64", lambda: iter([b"{}"]),
                                          content_type="application/json", content_length=2,
                                          what="uploading a.mp4")):
        with pytest.raises(ApiError) as info:
            call()
        assert type(info.value) is ApiError and info.value.exit_code == 6
    assert client.files_quota() is None  # an optional endpoint that is not there
    with pytest.raises(ApiError, match="expired") as expired:
        client.download("https://cdn.test/r.mp4", tmp_path / "t.mp4")
    assert type(expired.value) is ApiError


@pytest.mark.parametrize("task_id", ["../files", "hello", "task-a\nb", "task-1\n", "", "task-",
                                     "task-a/b", "task-" + "x" * 200])
def test_get_task_refuses_what_is_not_a_task_id(task_id: str) -> None:
    rec = Recorder(httpx.Response(200, json=task_json()))
    client, _ = make_client(rec)
    with pytest.raises(errors.UsageError):
        client.get_task(task_id)
    assert rec.requests == []


# -- downloads ---------------------------------------------------------------------------------

class Dropping(httpx.SyncByteStream):
    """A body that stops after `cut` bytes with a read error, like a dropped connection."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data, self.cut = data, cut

    def __iter__(self) -> Iterator[bytes]:
        yield self.data[: self.cut]
        raise httpx.ReadError("connection reset")


def test_download_resumes_with_range_after_a_drop(tmp_path: Path) -> None:
    ranges: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ranges.append(request.headers.get("range"))
        if len(ranges) == 1:
            return httpx.Response(200, headers={"content-length": str(len(MP4))},
                                  stream=Dropping(MP4, len(MP4) // 2))
        start = int(request.headers["range"].split("=")[1].rstrip("-"))
        return httpx.Response(206, content=MP4[start:], headers={
            "content-range": f"bytes {start}-{len(MP4) - 1}/{len(MP4)}"})

    client, _ = make_client(handler)
    progress: list[tuple[int, int | None]] = []
    path = client.download("https://cdn.test/r.mp4", tmp_path / "t.mp4",
                           on_progress=lambda n, t: progress.append((n, t)))
    assert path.read_bytes() == MP4
    assert ranges == [None, f"bytes={len(MP4) // 2}-"]
    assert progress[-1] == (len(MP4), len(MP4))
    assert list(tmp_path.iterdir()) == [path]


def test_download_restarts_when_range_is_ignored(tmp_path: Path) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(200, headers={"content-length": str(len(MP4))},
                                  stream=Dropping(MP4, 100))
        return httpx.Response(200, content=MP4)

    client, _ = make_client(handler)
    assert client.download("https://cdn.test/r.mp4", tmp_path / "t.mp4").read_bytes() == MP4


def test_download_never_leaves_a_truncated_file(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": str(len(MP4))},
                              stream=Dropping(MP4, 10))

    client, _ = make_client(handler, retry=RetryPolicy(attempts=2))
    with pytest.raises(NetworkError):
        client.download("https://cdn.test/r.mp4", tmp_path / "t.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("status", [403, 404, 410])
def test_expired_result_link(tmp_path: Path, status: int) -> None:
    client, _ = make_client(Recorder(httpx.Response(status, text="gone")))
    with pytest.raises(ApiError, match="expired") as info:
        client.download("https://cdn.test/r.mp4", tmp_path / "t.mp4")
    assert info.value.exit_code == 6 and "24 h" in info.value.hint
    assert list(tmp_path.iterdir()) == []


def test_download_refuses_what_is_not_an_mp4(tmp_path: Path) -> None:
    client, _ = make_client(Recorder(httpx.Response(200, content=b"<html>login</html>")))
    with pytest.raises(ApiError, match="not an mp4"):
        client.download("https://cdn.test/r.mp4", tmp_path / "t.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("code", "text"), [(errno.EACCES, "cannot be written"),
                                            (errno.EROFS, "cannot be written"),
                                            (errno.ENOSPC, "disk is full")])
def test_unwritable_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int,
                                  text: str) -> None:
    real_open = Path.open

    def failing_open(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if self.name.endswith(".part"):
            raise OSError(code, "nope")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", failing_open)
    client, _ = make_client(Recorder(httpx.Response(200, content=MP4)))
    with pytest.raises(MediaError, match=text) as info:
        client.download("https://cdn.test/r.mp4", tmp_path / "t.mp4")
    assert info.value.exit_code == 3 and str(tmp_path) in str(info.value)


def test_download_results_names_files_after_the_task(tmp_path: Path) -> None:
    client, _ = make_client(Recorder(httpx.Response(200, content=MP4)))
    task = Task.from_json(task_json("completed", id="../../evil/task 1",
                                    results=["https://cdn.test/../../x/name.mp4"]))
    [path] = client.download_results(task, tmp_path / "out")
    assert path.parent == tmp_path / "out" and path.name == "_.._evil_task_1.mp4"


@pytest.mark.parametrize(("task_id", "name"), [
    ("task-unified-1757169743-7cvnl5zw", "task-unified-1757169743-7cvnl5zw.mp4"),
    ("..", "task.mp4"), ("a/b\\c", "a_b_c.mp4"), (".hidden", "hidden.mp4"),
])
def test_result_filename(task_id: str, name: str) -> None:
    assert result_filename(task_id) == name
    assert result_filename(task_id, 1, 2).endswith("-2.mp4")


# -- account and task endpoints of EvoLink's own clients (optional: absent means None) -----------

CREDITS = {"data": {"token": {"remaining_credits": 30.0, "unlimited_credits": False,
                              "used_credits": 583.5571},
                    "user": {"remaining_credits": 1095.3996, "used_credits": 135.9048}},
           "message": "", "success": True}


def test_credits_are_read_in_integer_units() -> None:
    recorder = Recorder(httpx.Response(200, json=CREDITS))
    client, _ = make_client(recorder)
    credits = client.credits()
    assert credits is not None
    assert (credits.key_remaining_units, credits.key_used_units, credits.account_remaining_units,
            credits.account_used_units) == (300_000, 5_835_571, 10_953_996, 1_359_048)
    assert credits.spendable_units == 300_000 and credits.limited_by == "key"
    assert credits.as_dict()["spendable"] == 30.0
    [request] = recorder.requests
    assert request.method == "GET" and request.url.path == "/v1/credits"
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_an_unlimited_key_spends_what_the_account_has() -> None:
    body = {"data": {"token": {"remaining_credits": 0, "unlimited_credits": True},
                     "user": {"remaining_credits": 12.5}}}
    client, _ = make_client(Recorder(httpx.Response(200, json=body)))
    credits = client.credits()
    assert credits is not None and credits.spendable_units == 125_000
    assert credits.limited_by == "account"


@pytest.mark.parametrize("status", [403, 404, 405, 501])
def test_absent_account_endpoints_answer_none(status: int) -> None:
    client, sleeps = make_client(Recorder(err_body(status, "not_found", "no route")))
    if status == 403:  # the balance read is a job's first call: a refused key stops it there
        with pytest.raises(AuthError):
            client.credits()
    else:
        assert client.credits() is None
    assert client.get_tasks(["t1", "t2"]) is None
    assert sleeps == []  # not retried: absent is an answer


def test_a_broken_credits_endpoint_raises_like_any_call() -> None:
    client, _ = make_client(Recorder(httpx.Response(401, json={"error": {"code": "unauthorized",
                                                                         "message": "bad key"}})))
    with pytest.raises(AuthError):
        client.credits()


def test_batch_task_query_asks_50_at_a_time_and_keeps_only_what_was_asked() -> None:
    asked: list[list[str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        ids = json.loads(request.read())["task_ids"]
        asked.append(ids)
        # unknown ids (here: every tenth) are simply absent; an id nobody asked for is ignored
        data = [task_json("processing", id=i) for i in ids if not i.endswith("0")]
        return httpx.Response(200, json={"data": data + [task_json(id="someone-else")]})

    client, _ = make_client(Recorder(answer))
    ids = [f"task-{n}" for n in range(1, 121)]
    found = client.get_tasks(ids + ids[:5])  # duplicates are asked once
    assert found is not None
    assert [len(chunk) for chunk in asked] == [50, 50, 20]
    assert len(found) == 108 and "task-10" not in found and "someone-else" not in found
    assert found["task-1"].status == "processing"


def test_list_tasks_sends_the_filters_and_reads_the_page() -> None:
    recorder = Recorder(httpx.Response(200, json={
        "data": [task_json("completed", id="t2", model=rules.FLASH_MODEL), task_json(id="t1")],
        "total": 41, "page": 2, "page_size": 20}))
    client, _ = make_client(recorder)
    page = client.list_tasks(status="completed", model=rules.FLASH_MODEL, page=2, page_size=20)
    params = dict(recorder.requests[0].url.params)
    assert params == {"status": "completed", "model": rules.FLASH_MODEL, "page": "2",
                      "page_size": "20"}
    assert [t.id for t in page.tasks] == ["t2", "t1"] and page.pages == 3
    assert page.as_dict()["tasks"][0]["model"] == rules.FLASH_MODEL


def test_list_tasks_where_it_is_not_served_is_an_api_error() -> None:
    client, _ = make_client(Recorder(httpx.Response(404)))
    with pytest.raises(ApiError, match="does not offer a task list") as info:
        client.list_tasks()
    assert info.value.exit_code == 6


def test_with_policy_shares_the_connections_and_owns_none() -> None:
    """A run's downloads use the API client's connections with retries of their own."""
    answers = Recorder(httpx.Response(503), httpx.Response(200, json=task_json("completed")))
    client, sleeps = make_client(answers)
    own: list[float] = []
    other = client.with_policy(retry=RetryPolicy(attempts=2, base_delay_s=0.5, max_delay_s=0.5),
                               sleep=own.append)
    assert type(other) is type(client) and other.retry.attempts == 2
    assert other.get_task("task-1").status == "completed"
    assert own == [0.25] and sleeps == []  # its own sleep; the API client's never slept
    other.close()  # closes nothing: the connections are the API client's
    assert client.get_task("task-1").status == "completed" and len(answers.requests) == 3


def test_closing_a_policy_view_leaves_the_owners_connections_open() -> None:
    owner = Client(KEY, base_url=API, files_url=FILES)
    view = owner.with_policy(sleep=lambda s: None)
    view.close()
    assert not owner._http.is_closed and not owner._public.is_closed
    owner.close()
    assert owner._http.is_closed and owner._public.is_closed
