"""Never pay twice (issue 24): two runs in one folder, a lost journal, --retry-failed, a journal
that cannot be written. Against the in-process sandbox; what is counted is its tasks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sandbox_util import default_signals

from prep.api.client import Client, RetryPolicy
from prep.core.request import RequestOptions
from prep.errors import ExitCode, FolderBusyError, OutcomeUnknownError, UsageError
from prep.jobs.generate import GenerateOptions, generate
from prep.jobs.journal import Journal
from prep.jobs.layout import journal_path, sidecar_path
from prep.jobs.lock import RunLock
from prep.jobs.policy import Pacing
from prep.jobs.reconcile import resolve_unknown
from prep.jobs.recover import REBUILT_META, fingerprint, idempotency_key, read_sidecar
from prep.sandbox import Sandbox
from prep.settings import Settings, load_settings
from prep.ui.cli import cli
from tests import mediagen

# What is tested is what a second run pays; each job's reference check of the one clip is analysed
# once (tests/analyses.py).
pytestmark = [pytest.mark.media, pytest.mark.usefixtures("reuse_analyses")]

PROMPT = "A person looks at the camera and waves"
QUICK = Pacing(defer_base_ms=1, retry_base_ms=1, max_deferrals=2)


@pytest.fixture(scope="module")
def clip() -> Path:
    return mediagen.clip("twice-ref", seconds=3, size="320x180", rate="25")


def _settings(sb: Sandbox, tmp_path: Path) -> Settings:
    return load_settings({"api_key": sb.key, "base_url": sb.url, "files_url": sb.files_url,
                          "cache_dir": str(tmp_path / "cache")})


def _generate(sb: Sandbox, tmp_path: Path, clip: Path, **options: Any) -> Any:
    settings = _settings(sb, tmp_path)
    opts = GenerateOptions(request=RequestOptions(prompt=PROMPT), out_dir=tmp_path / "out",
                           pacing=QUICK, **options)
    with Client.from_settings(settings, sleep=lambda s: None, retry=RetryPolicy(attempts=4)) as api:
        return generate([str(clip)], opts, settings, client=api, raise_on_failure=False)


def _tasks(sb: Sandbox) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = sb.state()["tasks"]
    return tasks


# -- state that survives the journal -------------------------------------------------------------


def test_the_key_follows_the_request_the_folder_and_the_job(tmp_path: Path) -> None:
    body = {"model": "m", "prompt": "p", "video_urls": ["https://a/1"]}
    moved = {**body, "video_urls": ["https://b/2"]}
    print_ = fingerprint(body, ["aa"])
    assert fingerprint(moved, ["aa"]) == print_  # a fresh upload of the same clip: the same request
    assert fingerprint(body, ["bb"]) != print_ and fingerprint({**body, "prompt": "q"}, ["aa"]) != print_
    key = idempotency_key(print_, tmp_path, "job", 0)
    assert key == idempotency_key(print_, tmp_path / "." , "job", 0) and 16 <= len(key) <= 96
    assert key != idempotency_key(print_, tmp_path / "other", "job", 0)
    assert key != idempotency_key(print_, tmp_path, "job2", 0)
    assert key != idempotency_key(print_, tmp_path, "job", 1)  # --retry-failed after a failed task


@pytest.mark.parametrize("loss", ["emptied", "removed", "damaged"])
def test_a_lost_journal_next_to_a_result_pays_nothing(sandbox: Sandbox, clip: Path,
                                                      tmp_path: Path, loss: str) -> None:
    first = _generate(sandbox, tmp_path, clip)
    assert first.exit_code == 0, first.as_dict()
    out = tmp_path / "out"
    result = first.files[0]
    before = result.read_bytes()
    side = read_sidecar(out, first.job)
    assert side is not None and side["task_id"] == first.task_id
    assert side["credits_reserved_units"] == first.credits_reserved_units and side["fingerprint"]
    for _ in range(2):  # and once more, from the journal the first recovery wrote
        if loss == "emptied":
            journal_path(out).write_bytes(b"")
        elif loss == "removed":
            journal_path(out).unlink()
        else:
            journal_path(out).write_bytes(b"not a journal at all" * 100)
        for extra in ("-wal", "-shm"):
            Path(f"{journal_path(out)}{extra}").unlink(missing_ok=True)
        again = _generate(sandbox, tmp_path, clip)
        assert again.exit_code == 0, again.as_dict()
        assert len(_tasks(sandbox)) == 1  # no second task
        assert again.task_id == first.task_id and result.read_bytes() == before
    with Journal.open(out, create=False) as journal:
        assert journal.meta(REBUILT_META) is not None
    if loss == "damaged":
        assert list(out.glob("batch-journal.sqlite.damaged-*"))


def test_a_lost_journal_with_a_task_and_no_result_stops_and_says_how_to_settle(
        sandbox: Sandbox, clip: Path, tmp_path: Path) -> None:
    first = _generate(sandbox, tmp_path, clip, wait=False)  # the task is made, nothing downloaded
    assert first.stopped == "no-wait" and first.task_id
    out = tmp_path / "out"
    journal_path(out).unlink()
    again = _generate(sandbox, tmp_path, clip)
    err = again.error()
    assert isinstance(err, OutcomeUnknownError) and again.exit_code == ExitCode.SERVICE
    assert first.task_id in err.message and "resolve" in err.hint and "move" not in err.hint
    assert len(_tasks(sandbox)) == 1
    resolve_unknown(out, first.job, task_id=first.task_id, not_created=False)
    done = _generate(sandbox, tmp_path, clip)
    assert done.exit_code == 0, done.as_dict()
    assert done.task_id == first.task_id and len(_tasks(sandbox)) == 1 and done.files[0].is_file()


def test_a_lost_journal_with_a_key_honoured_replays_the_task(sandbox: Sandbox, clip: Path,
                                                             tmp_path: Path) -> None:
    sandbox.configure(honour_idempotency=True)
    sandbox.fail_next("drop_after_create", endpoint="generate")
    first = _generate(sandbox, tmp_path, clip)
    assert first.exit_code == ExitCode.SERVICE and len(_tasks(sandbox)) == 1
    journal_path(tmp_path / "out").unlink()
    # The folder's own check stops it (the listed task may be this job's); the user says it is
    # not, and the very same request goes out under the very same key: the service replays it.
    stopped = _generate(sandbox, tmp_path, clip)
    assert stopped.exit_code == ExitCode.SERVICE and len(_tasks(sandbox)) == 1
    resolve_unknown(tmp_path / "out", first.job, task_id=None, not_created=True)
    again = _generate(sandbox, tmp_path, clip)
    assert again.exit_code == 0, again.as_dict()
    assert again.replayed and len(_tasks(sandbox)) == 1


def test_an_unreadable_journal_hint_never_says_to_move_it_away(tmp_path: Path) -> None:
    journal_path(tmp_path).write_bytes(b"garbage" * 200)
    with pytest.raises(UsageError) as caught:
        Journal.open(tmp_path, create=False)
    assert "move" not in caught.value.hint and "paid" in caught.value.hint


def test_a_journal_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        journal._db.execute("PRAGMA query_only = 1")  # as a read-only file answers every write
        with pytest.raises(UsageError) as caught:
            journal.set_meta("x", "y")
    assert "cannot be written" in caught.value.message and caught.value.exit_code == ExitCode.USAGE
    if os.geteuid() != 0:  # root writes read-only files anyway
        journal_path(tmp_path).chmod(0o444)
        with pytest.raises(UsageError):
            Journal.open(tmp_path, for_run=True)


def test_journal_write_errors_in_a_run_are_not_internal_errors(sandbox: Sandbox, clip: Path,
                                                               tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    real = sqlite3.connect

    def read_only(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = real(*args, **kwargs)
        db.execute("PRAGMA query_only = 1")
        return db

    first = _generate(sandbox, tmp_path, clip, wait=False)
    assert first.task_id
    monkeypatch.setattr(sqlite3, "connect", read_only)
    env = {**sandbox.env(), "PREP_CACHE_DIR": str(tmp_path / "cache")}
    ran = CliRunner().invoke(cli, ["generate", str(clip), "-p", PROMPT, "-o", str(tmp_path / "out"),
                                   "-y"], env=env)
    assert ran.exit_code == ExitCode.USAGE, ran.stderr
    assert "cannot be written" in ran.stderr and "internal" not in ran.stderr


# -- --retry-failed ------------------------------------------------------------------------------


def test_generate_retry_failed_runs_a_failed_job_again(sandbox: Sandbox, clip: Path,
                                                       tmp_path: Path) -> None:
    sandbox.fail_next("fail_task", endpoint="generate")
    first = _generate(sandbox, tmp_path, clip)
    assert first.exit_code == ExitCode.TASK_FAILED
    same = _generate(sandbox, tmp_path, clip)
    assert same.exit_code == ExitCode.TASK_FAILED and len(_tasks(sandbox)) == 1
    again = _generate(sandbox, tmp_path, clip, retry_failed=True)
    assert again.exit_code == 0, again.as_dict()
    assert len(_tasks(sandbox)) == 2 and again.task_id != first.task_id
    keys = {t["idempotency_key"] for t in _tasks(sandbox)}
    assert len(keys) == 2  # a new request, not a replay of the failed task


def test_generate_retry_failed_after_a_failure_before_submission(sandbox: Sandbox, clip: Path,
                                                                 tmp_path: Path) -> None:
    sandbox.fail_next("server_error", endpoint="upload", times=100)
    first = _generate(sandbox, tmp_path, clip)
    assert first.exit_code == ExitCode.SERVICE and not _tasks(sandbox)
    sandbox.clear_faults()
    same = _generate(sandbox, tmp_path, clip)
    assert same.exit_code == ExitCode.SERVICE and "--retry-failed" in (same.error().hint or "")
    again = _generate(sandbox, tmp_path, clip, retry_failed=True)
    assert again.exit_code == 0, again.as_dict()
    assert len(_tasks(sandbox)) == 1


# -- one run per folder ------------------------------------------------------------------------


def test_generate_in_a_busy_folder_exits_8_naming_the_holder(sandbox: Sandbox, clip: Path,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "out"
    with RunLock(out):
        env = {**sandbox.env(), "PREP_CACHE_DIR": str(tmp_path / "cache")}
        ran = CliRunner().invoke(cli, ["generate", str(clip), "-p", PROMPT, "-o", str(out), "-y"],
                                 env=env)
        assert ran.exit_code == ExitCode.BUSY, ran.stderr
        assert f"pid {os.getpid()}" in ran.stderr and "--wait" in ran.stderr
        with pytest.raises(FolderBusyError):
            _generate(sandbox, tmp_path, clip)
    assert not _tasks(sandbox) and not journal_path(out).exists()


MANIFEST = [{"name": f"job{i}", "clips": ["clip.mp4"], "prompt": f"Take {i} waves", "duration": 2}
            for i in range(3)]


def _batch(manifest: Path, out: Path, sb: Sandbox, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, **sb.env(), "PREP_TEST_MEDIA": str(mediagen.CACHE)}
    return subprocess.Popen([sys.executable, "-m", "prep", "batch", str(manifest), "-o", str(out),
                             "--yes", "--quiet", "--json", "--concurrency", "2", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("wait", [False, True])
def test_two_runs_of_one_batch_in_one_folder(sandbox: Sandbox, clip: Path, tmp_path: Path,
                                             wait: bool) -> None:
    """Started together while each create is held open: one task per job, every result whole."""
    (tmp_path / "clip.mp4").symlink_to(clip)
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in MANIFEST))
    out = tmp_path / "out"
    sandbox.fail_next("slow", endpoint="generate", times=None, delay_s=1.0)
    extra = ("--wait",) if wait else ()
    runs = [_batch(manifest, out, sandbox, *extra) for _ in range(2)]
    answers = [run.communicate(timeout=240) for run in runs]
    codes = sorted(run.returncode for run in runs)
    if wait:  # the second waited, then found every job done
        assert codes == [0, 0], answers
    else:
        assert codes == [0, ExitCode.BUSY], answers
        busy = answers[[r.returncode for r in runs].index(ExitCode.BUSY)][1]
        assert "another prep run" in busy and "--wait" in busy
    tasks = _tasks(sandbox)
    assert len(tasks) == len(MANIFEST)
    with Journal.open(out, create=False) as journal:
        jobs = journal.jobs()
        assert {j.state for j in jobs} == {"done"}
        assert sorted(j.task_id or "" for j in jobs) == sorted(t["id"] for t in tasks)
        for job in jobs:
            assert Path(job.result_path or "").stat().st_size == job.result_bytes
            assert read_sidecar(out, job.name) is not None
    assert not list(out.glob("*.part"))
    assert sidecar_path(out, "job0").is_file()


def test_waiting_for_the_folder_is_said_once(tmp_path: Path) -> None:
    heard: list[str] = []
    holder = RunLock(tmp_path).acquire()
    started = time.monotonic()
    import threading

    threading.Timer(0.3, holder.release).start()
    second = RunLock(tmp_path).acquire(wait=True, on_wait=heard.append, poll_s=0.05)
    second.release()
    assert len(heard) == 1 and "waiting for another prep run" in heard[0]
    assert time.monotonic() - started >= 0.25


# -- SIGTERM and Ctrl-C ---------------------------------------------------------------------------


def _until(check: Any, limit_s: float = 60.0) -> None:
    end = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_download_says_what_was_left_and_leaves_no_part(
        sandbox: Sandbox, clip: Path, tmp_path: Path, signum: int) -> None:
    sandbox.fail_next("slow", endpoint="download", times=None, delay_s=4.0)
    out = tmp_path / "out"
    env = {**os.environ, **sandbox.env(), "PREP_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.Popen([sys.executable, "-m", "prep", "generate", str(clip), "-p", PROMPT,
                            "-o", str(out), "-y", "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                           preexec_fn=default_signals)
    _until(lambda: list(out.glob("*.part")) or run.poll() is not None)
    run.send_signal(signum)
    _, stderr = run.communicate(timeout=60)
    expected = ExitCode.TERMINATED if signum == signal.SIGTERM else ExitCode.INTERRUPTED
    assert run.returncode == expected, stderr
    assert "stopped: 1 with a task still to follow or download" in stderr
    assert "run the same command again" in stderr
    assert not list(out.glob("*.part"))
    sandbox.clear_faults()
    again = _generate(sandbox, tmp_path, clip)
    assert again.exit_code == 0 and len(_tasks(sandbox)) == 1


@pytest.mark.parametrize("loss", ["emptied", "damaged"])
def test_a_batch_whose_journal_was_lost_pays_nothing_again(sandbox: Sandbox, clip: Path,
                                                           tmp_path: Path, loss: str) -> None:
    (tmp_path / "clip.mp4").symlink_to(clip)
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in MANIFEST))
    out = tmp_path / "out"
    env = {**sandbox.env(), "PREP_CACHE_DIR": str(tmp_path / "cache")}
    args = ["batch", str(manifest), "-o", str(out), "--yes", "--quiet", "--json"]
    first = CliRunner().invoke(cli, args, env=env)
    assert first.exit_code == 0, first.stderr
    results = {p.name: p.read_bytes() for p in out.glob("*.mp4")}
    assert len(results) == len(MANIFEST)
    journal_path(out).write_bytes(b"" if loss == "emptied" else b"\x00garbage" * 300)
    again = CliRunner().invoke(cli, args, env=env)
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["counts"]["done"] == len(MANIFEST)
    assert len(_tasks(sandbox)) == len(MANIFEST)
    assert {p.name: p.read_bytes() for p in out.glob("*.mp4")} == results
