"""`prep batch --scheduler`: encodes on Dask workers, the coordinator keeps everything that costs.

A real LocalCluster of 2 worker processes, the in-process sandbox, generated clips. Workers are
separate processes: whatever the coordinator patches does not reach them, which is how these
tests prove where the encodes ran.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from prep.errors import MediaError, UsageError
from prep.jobs import cluster, steps
from prep.jobs.engine import BatchOptions, RunHooks, run_batch
from prep.jobs.journal import Journal
from prep.jobs.manifest import load_manifest
from prep.jobs.planning import plan_batch
from prep.sandbox import Sandbox
from prep.settings import Settings, load_settings
from prep.ui.cli import cli
from tests import mediagen

distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")


@pytest.mark.parametrize(("text", "kind", "address", "workers"), [
    ("local", "local", None, 2),
    ("local:3", "local", None, 3),
    ("tcp://10.0.0.5:8786", "remote", "tcp://10.0.0.5:8786", 2),
    (" tls://sched.example:8786 ", "remote", "tls://sched.example:8786", 2),
])
def test_scheduler_addresses(text: str, kind: str, address: str | None, workers: int) -> None:
    parsed = cluster.parse_scheduler(text)
    assert (parsed.kind, parsed.address, parsed.workers) == (kind, address, workers)


@pytest.mark.parametrize("text", ["", "local:0", "local:999", "localhost:8786", "http://x:1", "tcp://"])
def test_bad_scheduler_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="scheduler"):
        cluster.parse_scheduler(text)


def test_scheduler_and_cpu_workers_exclude_each_other(tmp_path: Path) -> None:
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("name,clips,prompt\na,x.mp4,hi\n")
    result = CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(tmp_path / "out"),
                                      "--scheduler", "local:2", "--cpu-workers", "2", "--yes"])
    assert result.exit_code == 2 and "not both" in result.stderr


# -- against a real LocalCluster -----------------------------------------------------------------



@pytest.fixture(scope="module")
def clips() -> dict[str, Path]:
    mpeg4 = ["-c:v", "mpeg4", "-q:v", "5"]  # not H.264: preparing them means encoding
    return {
        "a.avi": mediagen.clip("cl-a", seconds=6, size="320x180", rate="25", suffix=".avi",
                               vcodec=mpeg4),
        "b.avi": mediagen.clip("cl-b", seconds=6, size="320x180", rate="25", suffix=".avi",
                               vcodec=mpeg4),
        "c.mp4": mediagen.clip("cl-c", seconds=4, size="160x90", rate="10"),
    }


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[tuple[Any, Any]]:
    with cluster.cpu_executor(cluster.Scheduler("local", workers=2)) as (executor, client):
        yield executor, client


def _manifest(tmp_path: Path, clips: dict[str, Path]) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    for name, path in clips.items():
        (folder / name).symlink_to(path)
    rows = [{"name": "one", "clips": ["clips/a.avi"], "prompt": "A person waves", "duration": 2},
            {"name": "two", "clips": ["clips/b.avi", "clips/c.mp4"], "prompt": "Two talk",
             "duration": 2}]
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def _settings(sandbox: Sandbox) -> Settings:
    return load_settings({"api_key": sandbox.key, "base_url": sandbox.url,
                          "files_url": sandbox.files_url})


def _no_local_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any encode in this (the coordinator's) process fails the test: they belong on the workers."""
    import prep.media.prepare

    def here(*args: object, **kwargs: object) -> None:
        raise AssertionError("an encode ran in the coordinator, not on a worker")

    monkeypatch.setattr(prep.media.prepare, "prepare", here)


def _check_one_task_per_job(sandbox: Sandbox, out: Path, names: list[str]) -> None:
    tasks = sandbox.state()["tasks"]
    with Journal.open(out, create=False) as journal:
        jobs = {j.name: j for j in journal.jobs()}
    assert len(tasks) == len(names)
    for name in names:
        job = jobs[name]
        assert job.state == "done", (name, job.state, job.error)
        assert Path(job.result_path or "").read_bytes()[4:8] == b"ftyp"


@pytest.mark.media
def test_batch_encodes_on_the_workers(tmp_path: Path, clips: dict[str, Path], sandbox: Sandbox,
                                      local_cluster: tuple[Any, Any],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    executor, client = local_cluster
    plan = plan_batch(load_manifest(_manifest(tmp_path, clips)))
    out = tmp_path / "out"
    cluster.check_workers(client, [c.spec.path for j in plan.jobs for c in j.clips], out)
    _no_local_encoding(monkeypatch)
    result = run_batch(plan, _settings(sandbox), BatchOptions(output_dir=out), cpu_executor=executor)
    assert result.exit_code == 0, result.as_dict()
    _check_one_task_per_job(sandbox, out, ["one", "two"])
    # (How encode progress travels from a worker to the coordinator is tested in test_engine.py,
    # where the encode can wait for it: here the encodes may end before the first report.)


@pytest.mark.media
def test_cli_runs_a_batch_on_a_local_cluster(tmp_path: Path, clips: dict[str, Path],
                                             sandbox: Sandbox) -> None:
    manifest = _manifest(tmp_path, clips)
    out = tmp_path / "out"
    env = {"EVOLINK_API_KEY": sandbox.key, "EVOLINK_BASE_URL": sandbox.url,
           "EVOLINK_FILES_URL": sandbox.files_url, "PREP_SCHEDULER": "local:2"}
    result = CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(out), "--yes", "--json"],
                                env=env)
    assert result.exit_code == 0, result.stderr
    assert "encoding on 2 Dask workers" in result.stderr and "dashboard: http" in result.stderr
    assert json.loads(result.stdout)["counts"]["done"] == 2
    _check_one_task_per_job(sandbox, out, ["one", "two"])


@pytest.mark.media
def test_a_worker_killed_mid_encode_costs_only_the_retry(tmp_path: Path, clips: dict[str, Path],
                                                         sandbox: Sandbox) -> None:
    long = {**clips,
            "a.avi": mediagen.clip("cl-long-a", seconds=12, size="640x360", rate="25", suffix=".avi",
                                   vcodec=["-c:v", "mpeg4", "-q:v", "5"]),
            "b.avi": mediagen.clip("cl-long-b", seconds=12, size="640x360", rate="25", suffix=".avi",
                                   vcodec=["-c:v", "mpeg4", "-q:v", "5"])}
    plan = plan_batch(load_manifest(_manifest(tmp_path, long)))
    out = tmp_path / "out"
    killed: list[int] = []
    timers: list[threading.Timer] = []
    with cluster.cpu_executor(cluster.Scheduler("local", workers=2)) as (executor, client):
        pids: dict[str, int] = client.run(os.getpid)

        def kill() -> None:
            pid = sorted(pids.values())[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

        def on_state(job: str, state: str, detail: str) -> None:
            # Both encodes were handed to the workers: kill one of the workers a moment later,
            # while its encode runs (a 12 s 640x360 re-encode takes a few seconds here).
            if state == "preparing" and not timers:
                timers.append(threading.Timer(1.0, kill))
                timers[0].start()

        result = run_batch(plan, _settings(sandbox), BatchOptions(output_dir=out),
                           cpu_executor=executor, hooks=RunHooks(on_state=on_state))
        timers[0].join()
    assert killed
    assert result.exit_code == 0, result.as_dict()
    _check_one_task_per_job(sandbox, out, ["one", "two"])
    # Nothing half-written is left beside the prepared clips.
    assert not [p for p in (out / "prepared").rglob("*") if ".part" in p.name]


@pytest.mark.media
def test_a_worker_that_sees_another_file_is_named(tmp_path: Path, clips: dict[str, Path],
                                                  local_cluster: tuple[Any, Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _, client = local_cluster
    real = cluster._identity

    def elsewhere(path: Path) -> tuple[str, int, int]:
        name, size, mtime = real(path)
        return name, size + 1, mtime  # as if this machine's copy differed from the workers'

    monkeypatch.setattr(cluster, "_identity", elsewhere)
    with pytest.raises(MediaError) as info:
        cluster.check_workers(client, [clips["c.mp4"]], tmp_path / "out")
    assert info.value.exit_code == 3
    assert info.value.message.count("worker tcp://") == 1 and "another file" in info.value.message
    assert "shared" in info.value.hint or "same paths" in info.value.hint


@pytest.mark.media
def test_a_worker_that_cannot_see_a_clip_is_named(tmp_path: Path, local_cluster: tuple[Any, Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _, client = local_cluster
    monkeypatch.setattr(cluster, "_identity", lambda path: (str(path), 1, 1))
    with pytest.raises(MediaError, match="cannot see /nowhere/take.mov"):
        cluster.check_workers(client, [Path("/nowhere/take.mov")], tmp_path / "out")


@pytest.mark.media
def test_a_workers_media_error_arrives_intact(tmp_path: Path, sandbox: Sandbox,
                                              local_cluster: tuple[Any, Any]) -> None:
    executor, _ = local_cluster
    folder = tmp_path / "clips"
    folder.mkdir()
    good = mediagen.clip("cl-c", seconds=4, size="160x90", rate="10")
    (folder / "ok.mp4").symlink_to(good)
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(json.dumps({"name": "one", "clips": ["clips/ok.mp4"], "prompt": "Hi",
                                    "duration": 2}) + "\n")
    plan = plan_batch(load_manifest(manifest))
    # The clip goes away after planning: the worker's prepare fails with a MediaError, which
    # must reach the journal as itself (exit 3), not as a broken pool or "a bug in prep".
    (folder / "ok.mp4").unlink()
    (folder / "ok.mp4").write_bytes(b"")
    result = run_batch(plan, _settings(sandbox), BatchOptions(output_dir=tmp_path / "out"),
                       cpu_executor=executor)
    (job,) = result.jobs
    assert job.state == "failed" and job.exit_code == 3, job
    assert "bug" not in (job.error or "")


# -- workers that join late, leave, or keep ffmpeg elsewhere (issue 25) ---------------------------

@pytest.mark.media
def test_each_encode_vets_its_worker(tmp_path: Path, local_cluster: tuple[Any, Any]) -> None:
    """A worker that joins after `check_workers` is vetted when it takes an encode: without the
    clips it is named, where it used to fail with ffmpeg's "No such file" and no worker named."""
    _, client = local_cluster
    (tmp_path / "out" / "prepared").mkdir(parents=True)
    future = client.submit(steps.vet_this_worker, [Path("/nowhere/take.mov")],
                           tmp_path / "out" / "prepared" / "take", pure=False)
    with pytest.raises(MediaError, match=r"worker tcp://\S+ cannot see this clip"):
        future.result()
    missing_out = client.submit(steps.vet_this_worker, [], Path("/nowhere/out/prepared/x"),
                                pure=False)
    with pytest.raises(MediaError, match="cannot see the output folder"):
        missing_out.result()
    steps.vet_this_worker([Path("/nowhere/take.mov")], tmp_path)  # off a worker: nothing


@pytest.mark.media
def test_workers_use_their_own_ffmpeg(tmp_path: Path, clips: dict[str, Path], sandbox: Sandbox,
                                      local_cluster: tuple[Any, Any]) -> None:
    """The coordinator's PREP_FFMPEG is a path on the coordinator: the workers find their own
    (it used to be sent along, and every encode failed where ffmpeg lives elsewhere)."""
    executor, client = local_cluster
    plan = plan_batch(load_manifest(_manifest(tmp_path, clips)))
    out = tmp_path / "out"
    cluster.check_workers(client, [c.spec.path for j in plan.jobs for c in j.clips], out)
    settings = load_settings({"api_key": sandbox.key, "base_url": sandbox.url,
                              "files_url": sandbox.files_url,
                              "ffmpeg": str(tmp_path / "only-on-the-coordinator" / "ffmpeg")})
    result = run_batch(plan, settings, BatchOptions(output_dir=out), cpu_executor=executor)
    assert result.exit_code == 0, result.as_dict()


def test_a_lost_worker_is_told(tmp_path: Path) -> None:
    told: list[str] = []
    with cluster.cpu_executor(cluster.Scheduler("local", workers=2)) as (_, client):
        addresses = sorted(client.scheduler_info()["workers"])
        with cluster.watch_workers(client, told.append, every_s=0.2):
            client.retire_workers([addresses[0]], close_workers=True)
            for _ in range(100):
                if told:
                    break
                time.sleep(0.1)
    assert told == [addresses[0]]
