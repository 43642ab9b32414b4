"""`prep batch` against the sandbox: mixed jobs with faults, unknown outcomes, kills and resumes.

What every test proves through `/_sandbox/state`: each job was created exactly once (one task per
job, no idempotency key used twice), and every result on disk is whole (its bytes are exactly what
the sandbox serves at the task's result URL, and the journal's checksum matches).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from prep.errors import UsageError
from prep.jobs.budget import RateGate
from prep.jobs.engine import BatchOptions, run_batch
from prep.jobs.journal import Journal
from prep.jobs.manifest import load_manifest
from prep.jobs.planning import plan_batch
from prep.jobs.reconcile import resolve_unknown
from prep.sandbox import Sandbox
from prep.settings import Settings, load_settings
from prep.ui import endings
from prep.ui.cli import cli
from tests import mediagen

pytestmark = pytest.mark.media
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def clips() -> dict[str, Path]:
    return {
        # Long enough that every clip is billed at its cap (5 s alone, 2.5 s in pairs): then the
        # dry run's estimate is exactly what EvoLink reserves, whatever a remux does to the end.
        "a.mp4": mediagen.clip("br-a", seconds=6, size="160x90", rate="10"),
        "b.mp4": mediagen.clip("br-b", seconds=4, size="160x90", rate="10"),
        "c.mov": mediagen.clip("br-c", seconds=3, size="90x160", rate="10", suffix=".mov"),
        # Not H.264: preparing it means encoding (the "kill during encoding" point needs that).
        "d.avi": mediagen.clip("br-d", seconds=6, size="160x90", rate="10", suffix=".avi",
                               vcodec=["-c:v", "mpeg4", "-q:v", "5"]),
    }


def _folder(tmp_path: Path, clips: dict[str, Path], rows: list[dict[str, Any]]) -> Path:
    (tmp_path / "clips").mkdir()
    for name, path in clips.items():
        (tmp_path / "clips" / name).symlink_to(path)
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


MIXED = [
    {"name": "one", "clips": ["clips/a.mp4"], "prompt": "A person waves", "duration": 2},
    {"name": "two", "clips": ["clips/a.mp4", "clips/b.mp4@0.5-3.5"], "prompt": "Two people talk",
     "duration": 3, "quality": "1080p"},
    {"name": "three", "clips": ["clips/c.mov", "clips/a.mp4", "clips/b.mp4@0.5-3.5"],
     "prompt": "Three friends", "duration": 2, "aspect_ratio": "auto"},
    {"name": "four", "clips": [{"path": "clips/d.avi"}], "prompt": "A short ad", "duration": 2},
]


def _settings(sandbox: Sandbox) -> Settings:
    return load_settings({"api_key": sandbox.key, "base_url": sandbox.url,
                          "files_url": sandbox.files_url})


def _run(manifest: Path, out: Path, sandbox: Sandbox, **options: Any) -> Any:
    plan = plan_batch(load_manifest(manifest))
    return run_batch(plan, _settings(sandbox), BatchOptions(output_dir=out, **options))


def _tasks(sandbox: Sandbox) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = sandbox.state()["tasks"]
    return tasks


def _check_exactly_once_and_whole(sandbox: Sandbox, out: Path, names: list[str]) -> None:
    tasks = _tasks(sandbox)
    keys = [t["idempotency_key"] for t in tasks]
    assert len(keys) == len(set(keys)), "an idempotency key was used for two tasks"
    with Journal.open(out, create=False) as journal:
        jobs = {j.name: j for j in journal.jobs()}
        by_id = {t["id"]: t for t in tasks}
        assert len(tasks) == len(names), [t["id"] for t in tasks]
        for name in names:
            job = jobs[name]
            assert job.state == "done", (name, job.state, job.error)
            task = by_id[job.task_id]  # the task the journal follows is one the server made
            served = httpx.get(task["results"][0], timeout=30, trust_env=False).content
            data = Path(job.result_path or "").read_bytes()
            assert data == served and hashlib.sha256(data).hexdigest() == job.result_sha256
            assert job.credits_reserved_units is not None
            # EvoLink's own figure for the job is exactly prep's estimate (the dry-run's number),
            # and the same as prep's bill from the prepared files as measured.
            assert job.credits_reserved_units == job.estimate_units == job.measured_units


def test_mixed_batch_with_faults(tmp_path: Path, clips: dict[str, Path], sandbox: Sandbox) -> None:
    manifest = _folder(tmp_path, clips, MIXED)
    out = tmp_path / "out"
    sandbox.fail_next("rate_limit", endpoint="upload", times=2, retry_after_s=1)
    sandbox.fail_next("server_error", endpoint="task", times=2)
    sandbox.fail_next("rate_limit", endpoint="generate", times=1, retry_after_s=1)
    result = _run(manifest, out, sandbox, concurrency=3)
    assert result.exit_code == 0, result.as_dict()
    assert result.rate_limit_pauses >= 1  # the 429s braked the batch, they failed nothing
    _check_exactly_once_and_whole(sandbox, out, ["one", "two", "three", "four"])
    state = sandbox.state()
    # Shared clips (a.mp4 whole, b.mp4@0.5-3.5) were prepared and uploaded once: 4 distinct clips.
    assert len(state["uploads"]) == 4
    assert len(list((out / "prepared").glob("*/*.mp4"))) == 4
    three = next(t for t in state["tasks"] if t["request"]["prompt"] == "Three friends")
    # auto: one portrait and two landscape clips; the most common ratio wins (no averaging).
    assert three["request"]["aspect_ratio"] == "16:9"
    # Resuming a finished batch sends nothing.
    again = _run(manifest, out, sandbox)
    assert again.exit_code == 0 and len(_tasks(sandbox)) == 4
    assert len(sandbox.state()["uploads"]) == 4


def test_failed_task_does_not_stop_the_others_and_retry_failed(
        tmp_path: Path, clips: dict[str, Path], sandbox: Sandbox) -> None:
    manifest = _folder(tmp_path, clips, MIXED[:2])
    out = tmp_path / "out"
    sandbox.fail_next("fail_task", endpoint="generate")
    result = _run(manifest, out, sandbox, concurrency=1)
    outcomes = sorted(j.state for j in result.jobs)
    assert outcomes == ["done", "failed"] and result.exit_code == 7
    failed = next(j for j in result.jobs if j.state == "failed")
    assert "not billed" in (failed.error or "")
    # A plain re-run leaves the failed job alone; --retry-failed makes it a new task.
    assert _run(manifest, out, sandbox).exit_code == 7 and len(_tasks(sandbox)) == 2
    retried = _run(manifest, out, sandbox, retry_failed=True)
    assert retried.exit_code == 0 and len(_tasks(sandbox)) == 3
    with Journal.open(out, create=False) as journal:
        subs = journal.submissions(failed.name)
        assert len(subs) == 2 and subs[0].idempotency_key != subs[1].idempotency_key


def test_unknown_outcome_is_never_resent_until_resolved(
        tmp_path: Path, clips: dict[str, Path], sandbox: Sandbox) -> None:
    manifest = _folder(tmp_path, clips, MIXED[:1])
    out = tmp_path / "out"
    sandbox.fail_next("drop_after_create", endpoint="generate")
    result = _run(manifest, out, sandbox)
    assert [j.state for j in result.jobs] == ["unknown"] and result.exit_code == 6
    assert len(_tasks(sandbox)) == 1  # the server did make it
    # Re-running does not send it again.
    assert _run(manifest, out, sandbox).exit_code == 6 and len(_tasks(sandbox)) == 1
    # The user finds the task (here: in the sandbox's state, by the journaled idempotency key).
    with Journal.open(out, create=False) as journal:
        key = journal.submissions("one")[0].idempotency_key
    task_id = next(t["id"] for t in _tasks(sandbox) if t["idempotency_key"] == key)
    runner = CliRunner()
    bad = runner.invoke(cli, ["batch", "resolve", str(out), "one"])
    assert bad.exit_code == 2
    env = {"EVOLINK_API_KEY": sandbox.key, "EVOLINK_BASE_URL": sandbox.url,
           "EVOLINK_FILES_URL": sandbox.files_url}
    done = runner.invoke(cli, ["batch", "resolve", str(out), "one", "--task-id", task_id], env=env)
    assert done.exit_code == 0, done.output
    assert _run(manifest, out, sandbox).exit_code == 0
    _check_exactly_once_and_whole(sandbox, out, ["one"])


def test_resubmit_unknown_with_an_honouring_server_replays(
        tmp_path: Path, clips: dict[str, Path], sandbox: Sandbox) -> None:
    sandbox.configure(honour_idempotency=True)
    manifest = _folder(tmp_path, clips, MIXED[:1])
    out = tmp_path / "out"
    sandbox.fail_next("drop_after_create", endpoint="generate")
    assert _run(manifest, out, sandbox).exit_code == 6
    result = _run(manifest, out, sandbox, resubmit_unknown=True)
    assert result.exit_code == 0
    _check_exactly_once_and_whole(sandbox, out, ["one"])
    with Journal.open(out, create=False) as journal:
        assert [s.outcome for s in journal.submissions("one")] == ["unknown", "replayed"]


def test_not_created_resolution(tmp_path: Path, clips: dict[str, Path], sandbox: Sandbox) -> None:
    manifest = _folder(tmp_path, clips, MIXED[:1])
    out = tmp_path / "out"
    sandbox.fail_next("drop_mid_request", endpoint="generate")  # cut before the server acted
    result = _run(manifest, out, sandbox)
    assert result.exit_code == 6 and _tasks(sandbox) == []
    with pytest.raises(UsageError):
        resolve_unknown(out, "nope", task_id=None, not_created=True)
    message = resolve_unknown(out, "one", task_id=None, not_created=True)
    assert "same Idempotency-Key" in message
    assert _run(manifest, out, sandbox).exit_code == 0
    _check_exactly_once_and_whole(sandbox, out, ["one"])


def test_expired_upload_is_redone(tmp_path: Path, clips: dict[str, Path], sandbox: Sandbox) -> None:
    manifest = _folder(tmp_path, clips, MIXED[:1])
    out = tmp_path / "out"
    plan = plan_batch(load_manifest(manifest))
    # A key with no credits: the clip is prepared and uploaded, then the batch stops submitting.
    sandbox.add_key("sk-poor", credits=0)
    poor = load_settings({"api_key": "sk-poor", "base_url": sandbox.url, "files_url": sandbox.files_url})
    # (no balance check first: what is tested is the 402 at create, after the uploads)
    first = run_batch(plan, poor, BatchOptions(output_dir=out, check_credits=False))
    assert first.jobs[0].state == "uploaded" and first.exit_code == 5
    with Journal.open(out, create=False) as journal:
        (clip,) = journal.clips()
        journal.record_upload(clip.key, file_url=clip.file_url or "", file_id=clip.file_id,
                              expires_at=1.0)  # long expired
    # (without the upload cache, which would rightly reuse the upload: its URL still answers)
    assert run_batch(plan, _settings(sandbox), BatchOptions(output_dir=out, use_cache=False)).exit_code == 0
    assert len(sandbox.state()["uploads"]) == 2
    _check_exactly_once_and_whole(sandbox, out, ["one"])


def test_quota_halts_submitting_but_keeps_jobs_ready(
        tmp_path: Path, clips: dict[str, Path], sandbox: Sandbox) -> None:
    manifest = _folder(tmp_path, clips, MIXED[:2])
    out = tmp_path / "out"
    sandbox.add_key("sk-poor", credits=0)
    plan = plan_batch(load_manifest(manifest))
    settings = load_settings({"api_key": "sk-poor", "base_url": sandbox.url,
                              "files_url": sandbox.files_url})
    # The 402 at create (the balance read up front is tested in test_flash_jobs.py).
    result = run_batch(plan, settings, BatchOptions(output_dir=out, concurrency=1, check_credits=False))
    assert result.exit_code == 5 and result.halted
    # Nothing more is uploaded or sent once the account is out of credits; every job says why.
    assert {j.state for j in result.jobs} <= {"prepared", "uploaded"} and _tasks(sandbox) == []
    assert all(j.exit_code == 5 and "not submitted" in (j.error or "") for j in result.jobs)
    again = run_batch(plan, _settings(sandbox), BatchOptions(output_dir=out))
    assert again.exit_code == 0 and len(_tasks(sandbox)) == 2


def _subprocess(manifest: Path, out: Path, sandbox: Sandbox, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **sandbox.env(), "PREP_TEST_MEDIA": str(mediagen.CACHE)}
    # --no-check: the reference check (face and speech analysis of every clip, in each of the two or
    # three runs) reads and pays nothing; what is tested here is what a kill leaves to the resume.
    return subprocess.run([sys.executable, "-m", "prep", "batch", str(manifest), "-o", str(out),
                           "--yes", "--quiet", "--no-check", "--concurrency", "2", *extra],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("point", ["prepare", "upload", "after-create:two", "before-create:three"])
def test_killed_and_resumed(tmp_path: Path, clips: dict[str, Path], sandbox: Sandbox, point: str) -> None:
    """SIGKILL at a named point, then resume: every job created exactly once, every result whole."""
    manifest = _folder(tmp_path, clips, MIXED)
    out = tmp_path / "out"
    killed = _subprocess(manifest, out, sandbox, "--test-fault", point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = _subprocess(manifest, out, sandbox, "--json")
    summary = json.loads(resumed.stdout)
    unknown = [j["name"] for j in summary["jobs"] if j["outcome"] == "unknown"]
    if point.startswith(("after-create", "before-create")):
        # The request was journaled before it was sent and prep died before the answer: never
        # re-sent by itself. (Other creates in flight at the kill are unknown for the same reason.)
        named = point.split(":")[1]
        assert named in unknown and resumed.returncode == 6
        made_any = 0
        for name in unknown:
            with Journal.open(out, create=False) as journal:
                key = journal.submissions(name)[0].idempotency_key
            made = [t["id"] for t in _tasks(sandbox) if t["idempotency_key"] == key]
            if name == named:  # after-create: the task exists; before-create: never sent
                assert len(made) == (1 if point.startswith("after") else 0)
            made_any += len(made)
            # What a user does after checking the dashboard.
            resolve_unknown(out, name, task_id=made[0] if made else None, not_created=not made)
        assert len(_tasks(sandbox)) >= made_any
        resumed = _subprocess(manifest, out, sandbox)
    else:
        assert not unknown
    assert resumed.returncode == 0, resumed.stderr
    _check_exactly_once_and_whole(sandbox, out, ["one", "two", "three", "four"])


def test_cli_run_json_and_status(tmp_path: Path, clips: dict[str, Path], sandbox: Sandbox) -> None:
    manifest = _folder(tmp_path, clips, MIXED[:2])
    out = tmp_path / "out"
    env = sandbox.env()
    runner = CliRunner()
    no_yes = runner.invoke(cli, ["batch", str(manifest), "-o", str(out)], env=env)
    assert no_yes.exit_code == 2 and "--yes" in no_yes.stderr
    capped = runner.invoke(cli, ["batch", str(manifest), "-o", str(out), "--yes", "--max-cost", "10"],
                           env=env)
    assert capped.exit_code == 2 and _tasks(sandbox) == []
    result = runner.invoke(cli, ["batch", str(manifest), "-o", str(out), "--yes", "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["counts"]["done"] == 2 and summary["exit_code"] == 0
    for job in summary["jobs"]:
        assert job["outcome"] == "done" and Path(job["result_path"]).is_file()
        assert job["credits_reserved"] == job["estimate_credits"]
    status = runner.invoke(cli, ["batch", "status", str(out), "--json"])
    assert status.exit_code == 0
    assert [j["state"] for j in json.loads(status.stdout)["jobs"]] == ["done", "done"]
    table = runner.invoke(cli, ["batch", "status", str(out)])
    assert "one" in table.stdout and "done" in table.stdout
    missing = runner.invoke(cli, ["batch", "status", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2


def test_no_key_is_auth_error(tmp_path: Path, clips: dict[str, Path]) -> None:
    manifest = _folder(tmp_path, clips, MIXED[:1])
    result = CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(tmp_path / "o"), "--yes"])
    assert result.exit_code == 4


def test_rate_gate_pauses_and_recovers() -> None:
    now = [0.0]
    gate = RateGate(4, clock=lambda: now[0], sleep=lambda s: None)
    gate.backoff(5)
    assert gate.limit == 2 and gate.paused_until == 5
    now[0] = 6
    with gate.call():
        assert gate.in_flight == 1
    assert gate.limit == 3 and gate.in_flight == 0
    with pytest.raises(ValueError):
        RateGate(0)


def test_changed_rows_replan_before_submission_and_keep_tasks_after(
        tmp_path: Path, clips: dict[str, Path], sandbox: Sandbox) -> None:
    from prep.jobs.engine import RunHooks

    manifest = _folder(tmp_path, clips, MIXED[:1])
    out = tmp_path / "out"
    sandbox.add_key("sk-poor", credits=0)
    poor = load_settings({"api_key": "sk-poor", "base_url": sandbox.url, "files_url": sandbox.files_url})
    assert run_batch(plan_batch(load_manifest(manifest)), poor,
                     BatchOptions(output_dir=out, check_credits=False)).exit_code == 5
    # Not submitted yet: a changed prompt simply replaces the job (its clip stays uploaded).
    manifest.write_text(json.dumps({**MIXED[0], "prompt": "A person waves twice"}) + "\n")
    result = run_batch(plan_batch(load_manifest(manifest)), _settings(sandbox), BatchOptions(output_dir=out))
    assert result.exit_code == 0 and len(sandbox.state()["uploads"]) == 1
    assert _tasks(sandbox)[0]["request"]["prompt"] == "A person waves twice"
    # Submitted: changing the row again keeps the task and says so; nothing is sent.
    manifest.write_text(json.dumps({**MIXED[0], "prompt": "Something else"}) + "\n")
    warnings: list[str] = []
    again = run_batch(plan_batch(load_manifest(manifest)), _settings(sandbox),
                      BatchOptions(output_dir=out), hooks=RunHooks(on_warning=warnings.append))
    assert again.exit_code == 0 and len(_tasks(sandbox)) == 1
    assert any("changed in the manifest after it was submitted" in w for w in warnings)


def test_declining_the_cost_exits_2_as_in_generate(tmp_path: Path, clips: dict[str, Path],
                                                  sandbox: Sandbox,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: a "no" at the prompt exited 1 (generate's README code is 2: now both say 2).
    monkeypatch.setattr(endings, "can_ask", lambda: True)
    manifest = _folder(tmp_path, clips, MIXED[:1])
    declined = CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(tmp_path / "out")],
                                  env=sandbox.env(), input="n\n")
    assert declined.exit_code == 2, declined.stderr
    assert "credits (jobs already submitted are not paid again)? [y/N]" in declined.stderr
    assert "not confirmed" in declined.stderr and _tasks(sandbox) == []
