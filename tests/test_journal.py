"""The batch journal: migrations, WAL, every step recorded, resume queries, crash safety."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from prep.errors import UsageError
from prep.jobs.journal import MIGRATIONS, Journal
from prep.jobs.layout import JOURNAL_NAME, journal_path
from prep.jobs.status import batch_status


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _job(journal: Journal, name: str, clips: list[tuple[str, str, int, int]], position: int = 0) -> None:
    journal.add_job(name=name, position=position, line=position + 2, spec={"name": name},
                    spec_hash=f"h-{name}", estimate_units=476_000, clips=clips)


def test_new_journal_is_wal_and_migrated(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "out") as journal:
        assert journal.path == tmp_path / "out" / JOURNAL_NAME
        assert journal.journal_mode == "wal"
        assert journal.applied == [name for name, _ in MIGRATIONS]
        assert journal.applied[:2] == ["m001_initial", "m002_measured_estimate"]
    db = sqlite3.connect(journal_path(tmp_path / "out"))
    names = [r[0] for r in db.execute("SELECT name FROM migrations")]
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert names == ["m001_initial", "m002_measured_estimate", "m003_reserved_units",
                     "m004_references"]
    assert {"jobs", "clips", "job_clips", "job_refs", "submissions", "events", "meta",
            "migrations"} <= tables


def test_migrations_apply_once_in_order(tmp_path: Path) -> None:
    # A journal written when only m001 existed gets the later migrations, in order, once.
    path = tmp_path / "old.sqlite"
    Journal(path, migrations=MIGRATIONS[:1]).close()
    with Journal(path) as journal:
        assert journal.applied == [name for name, _ in MIGRATIONS]
        _job(journal, "a", [("k1", "/f/a.mov", 0, 5000)])
        journal.record_measured("a", 123)
        assert journal.job("a").measured_units == 123  # type: ignore[union-attr]
    extra = (*MIGRATIONS, ("m099_job_notes", "ALTER TABLE jobs ADD COLUMN notes TEXT;"))
    with Journal(path, migrations=extra) as journal:
        assert journal.applied[-1] == "m099_job_notes"
    with Journal(path, migrations=extra) as journal:  # nothing to do the second time
        assert journal.applied == [name for name, _ in extra]
    db = sqlite3.connect(path)
    assert "notes" in [r[1] for r in db.execute("PRAGMA table_info(jobs)")]
    db.close()


def test_failed_migration_leaves_schema_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    broken = (*MIGRATIONS, ("m098_broken", "CREATE TABLE half (x INTEGER); SELECT nope FROM nowhere;"))
    with pytest.raises(UsageError):
        Journal(path, migrations=broken)
    db = sqlite3.connect(path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    applied = [r[0] for r in db.execute("SELECT name FROM migrations")]
    db.close()
    assert "half" not in tables and applied == [name for name, _ in MIGRATIONS]


def test_journal_from_newer_prep_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    extra = (*MIGRATIONS, ("m099_future", "CREATE TABLE future (x INTEGER);"))
    Journal(path, migrations=extra).close()
    with pytest.raises(UsageError, match="newer prep"):
        Journal(path)


def test_not_a_journal(tmp_path: Path) -> None:
    (tmp_path / JOURNAL_NAME).write_bytes(b"this is not sqlite at all, just some bytes" * 10)
    with pytest.raises(UsageError, match="not a prep batch journal"):
        Journal.open(tmp_path)


def test_open_without_create_needs_a_journal(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no batch journal"):
        Journal.open(tmp_path, create=False)


def test_shared_clips_are_recorded_once(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        _job(journal, "a", [("k1", "/f/a.mov", 0, 5000), ("k2", "/f/b.mov", 0, 3000)], 0)
        _job(journal, "b", [("k2", "/f/b.mov", 0, 3000)], 1)
        assert [c.key for c in journal.clips()] == ["k1", "k2"]
        assert journal.job("a") is not None
        assert [j.clip_keys for j in journal.jobs()] == [("k1", "k2"), ("k2",)]
        assert journal.job("nope") is None


def test_every_step_recorded_and_status(tmp_path: Path) -> None:
    clock = Clock()
    with Journal(tmp_path / JOURNAL_NAME, clock=clock) as journal:
        _job(journal, "a", [("k1", "/f/a.mov", 0, 5000)])
        journal.record_prepared("k1", path="/out/prepared/k1.mp4", sha256="ab" * 32, size_bytes=1234,
                                duration_ms=5000, action="copy")
        journal.set_state("a", "prepared")
        journal.record_upload("k1", file_url="http://files/k1.mp4", file_id="f1",
                              expires_at=clock.now + 3600)
        journal.set_state("a", "uploaded")
        sub = journal.begin_submission("a", idempotency_key="prep-a-0123456789abcdef",
                                       request={"model": "m", "prompt": "p"})
        assert journal.job("a").state == "submitting"  # type: ignore[union-attr]
        assert journal.submissions("a")[0].outcome == "sending"
        journal.record_created(sub, task_id="task-1", status="pending", credits_reserved_units=476_000)
        journal.record_task("a", status="processing", progress=40, credits_reserved_units=None)
        journal.record_task("a", status="completed", progress=100, credits_reserved_units=476_000,
                            result_url="http://results/r.mp4")
        journal.record_result("a", path="/out/a.mp4", sha256="cd" * 32, size_bytes=999)
        job = journal.job("a")
        assert job is not None
        assert (job.state, job.task_id, job.credits_reserved_units, job.result_path) == (
            "done", "task-1", 476_000, "/out/a.mp4")
        steps = [e.step for e in journal.events()]
        assert steps == ["added", "prepared", "prepared", "uploaded", "uploaded", "submitting", "created",
                         "task-processing", "task-completed", "downloaded"]
        (row,) = batch_status(journal, now=clock.now)
        assert (row.state, row.clips_prepared, row.clips_uploaded, row.exit_code) == ("done", 1, 1, 0)
        assert row.idempotency_key == "prep-a-0123456789abcdef" and row.submissions == 1
        clock.now += 7200  # the upload URL has expired
        (row,) = batch_status(journal, now=clock.now)
        assert row.clips_uploaded == 0


def test_request_is_durable_before_it_is_sent(tmp_path: Path) -> None:
    """What a resumed run sees after a crash between writing the request and hearing back."""
    with Journal.open(tmp_path) as journal:
        _job(journal, "a", [("k1", "/f/a.mov", 0, 5000)])
        journal.begin_submission("a", idempotency_key="prep-a-0123456789abcdef", request={"x": 1})
    # A second process (as a resumed batch would be) reads it back.
    code = ("import sys; from prep.jobs.journal import Journal; j = Journal.open(sys.argv[1], create=False);"
            "s = j.last_submission('a'); print(j.job('a').state, s.outcome, s.idempotency_key, s.request)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         check=True).stdout.split(maxsplit=3)
    assert out == ["submitting", "sending", "prep-a-0123456789abcdef", "{'x': 1}\n"]


def test_unknown_then_resolved_with_task_id(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        _job(journal, "a", [("k1", "/f/a.mov", 0, 5000)])
        sub = journal.begin_submission("a", idempotency_key="k" * 16, request={})
        journal.record_unknown(sub, error="the connection dropped after the request was sent")
        job = journal.job("a")
        assert job is not None and job.state == "unknown" and job.error_exit == 6
        (row,) = batch_status(journal, now=0)
        assert row.exit_code == 6
        journal.attach_task("a", task_id="task-9", reason="found in the dashboard")
        job = journal.job("a")
        assert job is not None and (job.state, job.task_id) == ("running", "task-9")
        assert [s.outcome for s in journal.submissions("a")] == ["resolved"]


def test_rejected_retryable_abandoned_and_retry(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        _job(journal, "a", [("k1", "/f/a.mov", 0, 5000)])
        s1 = journal.begin_submission("a", idempotency_key="a" * 16, request={})
        journal.record_retryable(s1, error="429", http_status=429)
        assert journal.job("a").state == "uploaded"  # type: ignore[union-attr]
        s2 = journal.begin_submission("a", idempotency_key="a" * 16, request={})
        journal.record_rejected(s2, error="400 bad prompt", error_exit=3, http_status=400)
        job = journal.job("a")
        assert job is not None and (job.state, job.error_exit) == ("failed", 3)
        journal.reset_for_retry("a")
        assert journal.job("a").state == "pending"  # type: ignore[union-attr]
        s3 = journal.begin_submission("a", idempotency_key="b" * 16, request={})
        journal.abandon_submission(s3, "the user says no task was made")
        assert journal.job("a").state == "uploaded"  # type: ignore[union-attr]
        assert [s.outcome for s in journal.submissions("a")] == ["deferred", "rejected", "abandoned"]
        assert journal.last_submission("a") is not None


def test_replan_and_forget_prepared(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        _job(journal, "a", [("k1", "/f/a.mov", 0, 5000)])
        journal.record_prepared("k1", path="/p", sha256="0" * 64, size_bytes=1, duration_ms=5000,
                                action="copy")
        journal.record_upload("k1", file_url="u", file_id=None, expires_at=10.0)
        journal.forget_prepared("k1", "the prepared file is missing")
        clip = journal.clip("k1")
        assert clip is not None and clip.prepared_path is None and clip.file_url is None
        journal.replan_job(name="a", position=3, line=5, spec={"name": "a", "v": 2}, spec_hash="h2",
                           estimate_units=1, clips=[("k9", "/f/z.mov", 0, 2000)])
        job = journal.job("a")
        assert job is not None and (job.spec_hash, job.clip_keys, job.line) == ("h2", ("k9",), 5)
        journal.update_position("a", 0, 2)
        assert journal.job("a").line == 2  # type: ignore[union-attr]
        journal.set_meta("manifest", "/m.csv")
        journal.set_meta("manifest", "/n.csv")
        assert journal.meta("manifest") == "/n.csv" and journal.meta("nope") is None
        with pytest.raises(ValueError):
            journal.set_state("a", "bogus")  # type: ignore[arg-type]


def test_concurrent_writers_from_threads(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        for i in range(8):
            _job(journal, f"j{i}", [(f"k{i}", f"/f/{i}.mov", 0, 3000)], i)

        def work(i: int) -> None:
            for p in range(20):
                journal.record_task(f"j{i}", status="processing", progress=p, credits_reserved_units=None)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert {j.progress for j in journal.jobs()} == {19}


def test_reader_sees_commits_while_writer_is_open(tmp_path: Path) -> None:
    """WAL: `prep batch status` can read while a batch holds the journal open."""
    with Journal.open(tmp_path) as writer:
        _job(writer, "a", [("k1", "/f/a.mov", 0, 5000)])
        with Journal.open(tmp_path, create=False) as reader:
            assert [j.name for j in reader.jobs()] == ["a"]
            writer.set_state("a", "prepared")
            assert reader.job("a").state == "prepared"  # type: ignore[union-attr]
