"""Issue 13, the client half, at the jobs level: the flash model through manifest, job identity and
request; the balance before the spend; several tasks followed with one query; and the sandbox
tests that wait for the sandbox half (skipped, with the reason, while the sandbox lacks them)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_engine import PROMPT, Env

from prep.api.client import Client, Credits, Task
from prep.core import rules
from prep.core.request import RequestOptions
from prep.errors import QuotaError
from prep.jobs.budget import check_balance, credits_label, fitting_jobs, jobs_to_pay
from prep.jobs.generate import GenerateOptions, generate, job_name
from prep.jobs.manifest import parse_manifest
from prep.jobs.reconcile import _spec_hash, job_clips
from prep.media.clips import parse_clip_spec
from prep.sandbox import Sandbox

FLASH = rules.FLASH_MODEL


# Every test here runs on the engine's test bench: conftest.py's `fast` and `env`.
pytestmark = pytest.mark.usefixtures("fast")


# -- the manifest ------------------------------------------------------------------------------------


def _jsonl(*rows: dict[str, Any]) -> str:
    return "\n".join(json.dumps({"name": f"j{i}", "clips": ["a.mp4"], "prompt": "Hi", **row})
                     for i, row in enumerate(rows))


def test_manifest_model_and_generate_audio(tmp_path: Path) -> None:
    manifest = parse_manifest(_jsonl({}, {"model": FLASH}, {"model": FLASH, "generate_audio": False}),
                              fmt="jsonl", base_dir=tmp_path)
    assert not manifest.problems
    assert [(j.request.model, j.request.generate_audio) for j in manifest.jobs] == [
        (rules.MODEL, None), (FLASH, None), (FLASH, False)]
    csv_text = ("name,clips,prompt,model,generate_audio\n"
                f"a,a.mp4,Hi,{FLASH},no\nb,a.mp4,Hi,{FLASH},\nc,a.mp4,Hi,,\n")
    rows = parse_manifest(csv_text, fmt="csv", base_dir=tmp_path)
    assert not rows.problems
    assert [(j.request.model, j.request.generate_audio) for j in rows.jobs] == [
        (FLASH, False), (FLASH, None), (rules.MODEL, None)]


@pytest.mark.parametrize(("row", "words"), [
    ({"generate_audio": False}, "generate_audio is only for"),
    ({"model": "wan9"}, "model 'wan9' is not a model prep knows"),
    ({"model": FLASH, "generate_audio": "off"}, "generate_audio 'off' is not allowed"),
])
def test_manifest_refuses_bad_model_fields(tmp_path: Path, row: dict[str, Any], words: str) -> None:
    manifest = parse_manifest(_jsonl(row), fmt="jsonl", base_dir=tmp_path)
    assert not manifest.jobs and any(words in p.message for p in manifest.problems)


# -- the job's identity ------------------------------------------------------------------------------


def test_a_flash_job_is_another_job_and_a_standard_one_keeps_its_name(tmp_path: Path) -> None:
    clip = tmp_path / "take.mp4"
    clip.write_bytes(b"x")
    specs = [parse_clip_spec(str(clip))]
    standard = GenerateOptions(request=RequestOptions(prompt="Hi"), out_dir=tmp_path)
    # The name a standard job had before the model existed (the same inputs, the same digest).
    inputs = {"clips": [str(clip.resolve())], "prompt": "Hi", "duration": 5, "quality": "720p",
              "aspect_ratio": "16:9", "shot_type": "single", "callback_url": None, "pick": False,
              "extend": None}
    old = "take-" + hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:10]
    assert job_name(specs, standard) == old
    names = {job_name(specs, replace(standard, request=RequestOptions(prompt="Hi", model=FLASH,
                                                                      generate_audio=audio)))
             for audio in (None, True, False)}
    assert len(names) == 3 and old not in names


def test_the_journal_spec_hash_includes_model_and_audio(env: Env) -> None:
    plain = env.plan(env.job("one"))
    hashes = {_spec_hash(p.jobs[0], job_clips(p.jobs[0], None)) for p in (
        plain, env.plan(env.job("one", model=FLASH)),
        env.plan(env.job("one", model=FLASH, generate_audio=False)))}
    assert len(hashes) == 3
    # A standard job hashes as it did before the fields existed (journals written then match).
    job = plain.jobs[0]
    spec = {k: v for k, v in job.job.as_dict().items()
            if k not in ("line", "pick", "model", "generate_audio", "seed", "negative_prompt",
                         "prompt_extend")}
    spec["aspect_ratio"] = job.aspect_ratio
    spec["clip_keys"] = [c[0] for c in job_clips(job, None)]
    assert _spec_hash(job, job_clips(job, None)) == hashlib.sha256(
        json.dumps(spec, sort_keys=True).encode()).hexdigest()


def test_a_flash_job_is_billed_and_sent_as_flash(env: Env) -> None:
    plan = env.plan(env.job("quiet", model=FLASH, generate_audio=False))
    assert plan.jobs[0].estimate.credits_units == 90_000  # 3 s + 2 s x 11,900 < the minimum
    assert plan.jobs[0].as_dict()["model"] == FLASH
    env.run(plan, follow=False, check_credits=False)
    with env.journal() as journal:
        sub = journal.last_submission("quiet")
    # Journaled before it was sent: what went (or would go, before the sandbox knows flash) out.
    assert sub is not None and sub.request["model"] == FLASH
    assert sub.request["generate_audio"] is False


# -- the balance ---------------------------------------------------------------------------------------


class _Balance:
    """Stands in for a Client: only `credits()`."""

    def __init__(self, answer: Credits | None | Exception) -> None:
        self.answer = answer
        self.calls = 0

    def credits(self) -> Credits | None:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _key(units: int, account: int | None = None) -> Credits:
    return Credits(key_remaining_units=units, account_remaining_units=account)


def test_a_job_that_costs_more_than_the_key_has_stops_with_exit_5() -> None:
    with pytest.raises(QuotaError) as info:
        check_balance([("one", 476_000)], _Balance(_key(300_000)))  # type: ignore[arg-type]
    assert str(info.value) == "this job needs 47.6 credits; the key has 30.0 left"
    assert info.value.exit_code == 5 and "top up" in info.value.hint


def test_the_account_can_be_what_binds() -> None:
    with pytest.raises(QuotaError, match="the account has 10.0 left"):
        check_balance([("one", 476_000)], _Balance(_key(900_000, 100_000)))  # type: ignore[arg-type]


def test_exactly_enough_passes() -> None:
    credits = _key(476_000)
    assert check_balance([("one", 476_000)], _Balance(credits)) is credits  # type: ignore[arg-type]


def test_a_batch_says_which_jobs_would_fit() -> None:
    jobs = [("a", 476_000), ("b", 794_920), ("c", 90_000), ("d", 200_000)]
    assert fitting_jobs(jobs, 600_000) == [("a", 476_000), ("c", 90_000)]
    with pytest.raises(QuotaError) as info:
        check_balance(jobs, _Balance(_key(600_000)), batch=True)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("the 4 jobs still to run need 156.092 credits; the key has 60.0 left")
    assert "these 2 would fit: a, c (56.6 credits)" in message
    with pytest.raises(QuotaError, match=r"no job would fit \(the cheapest needs 9.0\)"):
        check_balance(jobs, _Balance(_key(10_000)), batch=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("answer", [None, QuotaError("reading the credits: HTTP 500"),
                                    Credits(key_unlimited=True)])
def test_an_optional_endpoint_never_blocks_and_says_so_once(answer: Any) -> None:
    notes: list[str] = []
    balance = _Balance(answer)
    assert check_balance([("one", 10**9)], balance, on_note=notes.append) is None  # type: ignore[arg-type]
    assert balance.calls == 1 and len(notes) == 1 and "going on" in notes[0]


def test_nothing_to_pay_asks_nothing() -> None:
    balance = _Balance(_key(0))
    assert check_balance([], balance) is None and balance.calls == 0  # type: ignore[arg-type]


def test_credits_label() -> None:
    assert [credits_label(u) for u in (300_000, 476_000, 794_920, 0)] == ["30.0", "47.6", "79.492",
                                                                          "0.0"]


class _LowBalance(Client):
    def credits(self) -> Credits | None:
        return Credits(key_remaining_units=10_000, account_remaining_units=10**9)


def test_an_unaffordable_batch_stops_before_anything_is_prepared_or_uploaded(env: Env) -> None:
    plan = env.plan(env.job("one"), env.job("two", prompt=PROMPT + "!"))
    settings = env.settings()
    with _LowBalance.from_settings(settings) as low, pytest.raises(QuotaError, match="the key has 1.0"):
        env.run(plan, client=low)
    assert env.uploads() == 0 and not env.tasks() and not env.encoder.calls


def test_an_unaffordable_generate_stops_before_the_confirmation(env: Env) -> None:
    asked: list[Any] = []
    options = GenerateOptions(request=RequestOptions(prompt=PROMPT, duration_s=2), out_dir=env.out)
    from prep.jobs.generate import GenerateHooks

    def confirm(est: Any) -> bool:
        asked.append(est)
        return True

    with _LowBalance.from_settings(env.settings()) as low, pytest.raises(
            QuotaError, match=r"^this job needs \d+(\.\d+)? credits; the key has 1.0 left$"):
        generate([env.clip()], options, env.settings(), client=low,
                 hooks=GenerateHooks(confirm=confirm))
    assert not asked and env.uploads() == 0 and not env.encoder.calls


def test_jobs_to_pay_leaves_out_what_the_journal_has_sent(env: Env) -> None:
    plan = env.plan(env.job("one"), env.job("two", prompt=PROMPT + "!"))
    assert [name for name, _ in jobs_to_pay(plan, env.out)] == ["one", "two"]
    env.run(plan, check_credits=False)
    assert jobs_to_pay(plan, env.out) == []


# -- several tasks with one query ------------------------------------------------------------------------


class _Counting(Client):
    """Serves POST /v1/tasks/batch from single reads (or not at all), counting the calls."""

    offered = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_calls: list[list[str]] = []

    def __enter__(self) -> _Counting:
        return self

    def get_tasks(self, task_ids: Any) -> dict[str, Task] | None:
        ids = list(task_ids)
        self.batch_calls.append(ids)
        if not self.offered:
            return None
        return {i: self.get_task(i) for i in ids}


def test_a_batch_follows_its_tasks_with_one_query(env: Env) -> None:
    plan = env.plan(*(env.job(f"j{n}", prompt=PROMPT + "!" * n) for n in range(3)))
    env.run(plan, check_credits=False, follow=False)  # three tasks created, none followed yet
    settings = env.settings()
    with _Counting(settings.api_key, base_url=settings.base_url, files_url=settings.files_url) as api:
        result = env.run(plan, client=api, check_credits=False, concurrency=3)
    assert result.exit_code == 0, result.as_dict()
    assert len(api.batch_calls[0]) == 3  # all three due at start: one query
    assert all(1 < len(ids) <= rules.MAX_BATCH_TASK_IDS for ids in api.batch_calls)
    assert result.as_dict()["batch_queries"] == len(api.batch_calls)
    assert len(env.tasks()) == 3  # nothing created twice


def test_without_the_batch_query_each_task_is_followed_and_the_fallback_is_remembered(
        env: Env) -> None:
    plan = env.plan(*(env.job(f"j{n}", prompt=PROMPT + "!" * n) for n in range(3)))
    env.run(plan, check_credits=False, follow=False)
    settings = env.settings()
    with _Counting(settings.api_key, base_url=settings.base_url, files_url=settings.files_url) as api:
        api.offered = False
        result = env.run(plan, client=api, check_credits=False, concurrency=3)
    assert result.exit_code == 0, result.as_dict()
    assert len(api.batch_calls) == 1  # tried once; the run remembers the answer
    assert len([w for w in env.warnings if "POST /v1/tasks/batch" in w]) == 1


# -- against the sandbox, once it serves the account endpoints (the sandbox half of issue 13) ---------


def _serves(sandbox: Sandbox, method: str, path: str, **kwargs: Any) -> bool:
    with httpx.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox.key}"}) as http:
        return http.request(method, path, **kwargs).status_code not in (404, 405)


def test_sandbox_account_endpoints(sandbox: Sandbox) -> None:
    if not _serves(sandbox, "GET", "/v1/credits"):
        pytest.skip("the sandbox does not serve GET /v1/credits yet (the sandbox half of issue 13)")
    with Client(sandbox.key, base_url=sandbox.url, files_url=sandbox.files_url) as client:
        credits = client.credits()
        assert credits is not None and (credits.key_unlimited or credits.spendable_units is not None)
        page = client.list_tasks(page_size=5)
        assert page.page == 1 and len(page.tasks) <= 5
        assert client.get_tasks(["task-unified-0-nosuchtask"]) == {}  # unknown ids are absent


def test_sandbox_key_without_credits_is_stopped_before_any_upload(env: Env) -> None:
    from prep.sandbox import NO_CREDITS_KEY

    if not _serves(env.sb, "GET", "/v1/credits"):
        pytest.skip("the sandbox does not serve GET /v1/credits yet (the sandbox half of issue 13)")
    with Client(NO_CREDITS_KEY, base_url=env.sb.url) as client:
        credits = client.credits()
    if credits is None or credits.spendable_units is None or credits.spendable_units > 0:
        pytest.skip("the sandbox's no-credits key reports no empty balance")
    with pytest.raises(QuotaError, match="credits; the (key|account) has 0.0 left"):
        env.run(env.plan(env.job("one")), key=NO_CREDITS_KEY)
    assert env.uploads() == 0 and not env.encoder.calls


def test_sandbox_runs_a_flash_job(env: Env) -> None:
    from prep.sandbox.validation import Invalid, parse_generation

    try:  # the sandbox's own validation, asked directly: does it take the flash model?
        parse_generation({"model": FLASH, "prompt": "x", "generate_audio": False,
                          "video_urls": ["https://cdn.example.com/a.mp4"]})
    except Invalid:
        pytest.skip("the sandbox does not take the flash model yet (the sandbox half of issue 13)")
    result = env.run(env.plan(env.job("quiet", model=FLASH, generate_audio=False)))
    assert result.exit_code == 0, result.as_dict()
    [task] = env.tasks()
    assert task["credits_units"] == 90_000  # the minimum binds, on both sides
