"""The batch journal: an SQLite file in the output folder recording every step of every job.

Why: a batch can be stopped at any moment (Ctrl-C, SIGKILL, a power cut) and must resume without
paying twice. Each step is its own committed transaction, and the create request is written
(with its idempotency key) *before* it is sent, so after a crash the journal knows every request
that may have reached EvoLink.

- WAL mode with `synchronous=FULL`: a committed step survives the process being killed, and
  `prep batch status` can read while a batch runs.
- The schema changes only through ordered, numbered migrations (`m001_initial`, ...) recorded in
  the `migrations` table; a journal written by a newer prep is refused rather than misread.
- One connection, guarded by a lock, so the batch's worker threads can record steps.

Job states, in order: pending -> prepared -> uploaded -> submitting -> running -> completed -> done;
or failed (an error; `--retry-failed` runs it again) or unknown (a create request was sent and no
answer came back: the task may exist, and the job waits for the user to resolve it).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from prep.core.billing import UNITS_PER_CREDIT
from prep.errors import UsageError
from prep.jobs.layout import JOURNAL_NAME, journal_path
from prep.jobs.recover import REBUILT_META, folder_evidence_since

__all__ = [
    "FOLLOWED",
    "MIGRATIONS",
    "NOT_SENT",
    "SENT",
    "SETTLED",
    "ClipRecord",
    "Event",
    "JobRecord",
    "Journal",
    "JournalDamaged",
    "RefFile",
    "RefLink",
    "Submission",
]


JobState = Literal["pending", "prepared", "uploaded", "submitting", "running", "completed", "done",
                   "failed", "unknown"]
JOB_STATES: tuple[str, ...] = ("pending", "prepared", "uploaded", "submitting", "running",
                               "completed", "done", "failed", "unknown")
# The groups of job states that decisions are made on, named once.
NOT_SENT: Final = ("pending", "prepared", "uploaded")  # nothing was sent for it: safe to send
SENT: Final = ("submitting", "running", "completed", "done", "unknown")  # a task may exist: never send again
FOLLOWED: Final = ("submitting", "running")  # a create or a task to follow
SETTLED: Final = ("done", "failed", "unknown")  # nothing more happens without the user
# sending: journaled, no answer recorded yet; created / replayed: a task came back (replayed: the
# server answered a repeated Idempotency-Key with the first task); rejected: the server refused it
# (no task); deferred: provably not taken (429, never connected), to be sent again with the same
# key; unknown: sent, no answer; resolved: the user named the task; abandoned: the user says none.
SubmissionOutcome = Literal["sending", "created", "replayed", "rejected", "deferred", "unknown",
                            "resolved", "abandoned"]

_M001_INITIAL = """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE jobs (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    line INTEGER NOT NULL,
    spec_json TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    estimate_units INTEGER,
    task_id TEXT,
    task_status TEXT,
    progress INTEGER,
    credits_reserved REAL,
    result_url TEXT,
    result_path TEXT,
    result_sha256 TEXT,
    result_bytes INTEGER,
    error TEXT,
    error_exit INTEGER,
    updated_at REAL NOT NULL
);
CREATE TABLE clips (
    key TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    prepared_path TEXT,
    prepared_sha256 TEXT,
    prepared_bytes INTEGER,
    prepared_duration_ms INTEGER,
    action TEXT,
    file_url TEXT,
    file_id TEXT,
    expires_at REAL,
    uploaded_at REAL,
    updated_at REAL NOT NULL
);
CREATE TABLE job_clips (
    job TEXT NOT NULL REFERENCES jobs(name) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    clip TEXT NOT NULL REFERENCES clips(key),
    PRIMARY KEY (job, position)
);
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL REFERENCES jobs(name),
    idempotency_key TEXT NOT NULL,
    request_json TEXT NOT NULL,
    sent_at REAL NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'sending',
    task_id TEXT,
    http_status INTEGER,
    error TEXT,
    answered_at REAL
);
CREATE INDEX submissions_job ON submissions(job);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    job TEXT,
    clip TEXT,
    step TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX events_job ON events(job);
"""

# The bill re-computed from the prepared files as measured (a remux can expose audio priming, so a
# clip billed in full may be a few ms longer than its source said).
_M002_MEASURED_ESTIMATE = """
ALTER TABLE jobs ADD COLUMN measured_units INTEGER;
"""

# What EvoLink reserved, in the same integer units as every estimate (it was a REAL of credits).
_M003_RESERVED_UNITS = f"""
ALTER TABLE jobs ADD COLUMN credits_reserved_units INTEGER;
UPDATE jobs SET credits_reserved_units = CAST(ROUND(credits_reserved * {UNITS_PER_CREDIT}) AS INTEGER)
    WHERE credits_reserved IS NOT NULL;
ALTER TABLE jobs DROP COLUMN credits_reserved;
"""

# A job's references besides its clips (images, standalone audio, voices), each file a row of
# `clips` (keyed by its content, "prepared" as it is) so it is uploaded and resumed like a clip.
_M004_REFERENCES = """
CREATE TABLE job_refs (
    job TEXT NOT NULL REFERENCES jobs(name) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    kind TEXT NOT NULL,
    binds TEXT,
    clip TEXT NOT NULL REFERENCES clips(key),
    PRIMARY KEY (job, position)
);
"""

# Ordered (name, SQL). Append new migrations; never edit or reorder applied ones.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    ("m001_initial", _M001_INITIAL),
    ("m002_measured_estimate", _M002_MEASURED_ESTIMATE),
    ("m003_reserved_units", _M003_RESERVED_UNITS),
    ("m004_references", _M004_REFERENCES),
)


def _statements(sql: str) -> Iterator[str]:
    """The SQL statements of a migration script, one by one (executescript would commit first)."""
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        yield pending.strip()


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRecord:
    """A job as the journal knows it."""

    name: str
    position: int
    line: int
    spec: dict[str, Any]
    spec_hash: str
    state: str
    estimate_units: int | None
    task_id: str | None
    task_status: str | None
    progress: int | None
    credits_reserved_units: int | None
    result_url: str | None
    result_path: str | None
    result_sha256: str | None
    result_bytes: int | None
    error: str | None
    error_exit: int | None
    updated_at: float
    measured_units: int | None = None
    clip_keys: tuple[str, ...] = ()
    refs: tuple[RefLink, ...] = ()  # the job's images, audio and voices, in order


@dataclass(frozen=True, slots=True)
class RefLink:
    """One reference of a job: its kind, its file's key in `clips`, and what a voice binds to."""

    kind: str
    key: str
    binds: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RefFile:
    """A reference file to link to a job: `clips`' key, the file, its checksum, size and length."""

    kind: str
    key: str
    path: str
    sha256: str
    size_bytes: int
    duration_ms: int
    binds: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClipRecord:
    """A prepared (and maybe uploaded) clip; jobs that use the same source and window share it."""

    key: str
    source: str
    start_ms: int
    end_ms: int
    prepared_path: str | None
    prepared_sha256: str | None
    prepared_bytes: int | None
    prepared_duration_ms: int | None
    action: str | None
    file_url: str | None
    file_id: str | None
    expires_at: float | None
    uploaded_at: float | None
    updated_at: float

    def upload_fresh(self, now: float, margin_s: float) -> bool:
        """True while the uploaded URL stays valid for at least `margin_s` more seconds."""
        return bool(self.file_url) and self.expires_at is not None and self.expires_at - margin_s > now


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    """One create request: written before it is sent, then its outcome."""

    id: int
    job: str
    idempotency_key: str
    request: dict[str, Any]
    sent_at: float
    outcome: str
    task_id: str | None
    http_status: int | None
    error: str | None
    answered_at: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One recorded step."""

    at: float
    job: str | None
    clip: str | None
    step: str
    detail: str | None


class JournalDamaged(UsageError):
    """The file where the journal should be is not a readable prep journal."""


def _read_only(err: sqlite3.Error) -> bool:
    return "readonly" in str(err) or "read-only" in str(err)


def _read_only_error(path: Path) -> UsageError:
    return UsageError(f"{path}: the batch journal cannot be written (read-only file or folder)",
                      hint="make the output folder and its journal writable (chmod u+w), or run "
                           "as the user who owns them")


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


class Journal:
    """The SQLite journal of one batch output folder. Use as a context manager, or call close()."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time,
                 migrations: Sequence[tuple[str, str]] = MIGRATIONS) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                       timeout=30)
        except sqlite3.Error as err:
            raise UsageError(f"{path}: the batch journal cannot be opened ({err})") from err
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self.applied = self._migrate(migrations)
        except sqlite3.DatabaseError as err:
            self._db.close()
            if _read_only(err):
                raise _read_only_error(path) from err
            raise JournalDamaged(
                f"{path}: not a prep batch journal, or a damaged one ({err})",
                hint="it may record tasks already paid for, so prep keeps it: restore it from a "
                     "backup, or run the job again (`prep batch` / `prep generate`), which sets "
                     "it aside and checks EvoLink's task list before sending anything") from err
        except UsageError:
            self._db.close()
            raise

    @classmethod
    def open(cls, folder: Path | str, *, create: bool = True, clock: Callable[[], float] = time.time,
             for_run: bool = False) -> Journal:
        """The journal of output folder `folder`; with create=False a missing one is a UsageError.

        `for_run` (a run that may create tasks, holding the folder's lock): a journal that cannot
        be written is a UsageError; one that is missing or empty where the folder shows jobs ran
        (prepared clips, results' sidecars) is started afresh and marked rebuilt
        (`REBUILT_META`), and a damaged one is set aside (`NAME.damaged-TIME`) and marked so too:
        the engine then never takes "not in the journal" for "never sent" (`prep.jobs.recover`).
        """
        folder = Path(folder)
        path = journal_path(folder)
        if not create and not path.exists():
            raise UsageError(f"{folder}: no batch journal here ({JOURNAL_NAME})",
                             hint="give the output folder of a `prep batch ... -o DIR` run")
        if not for_run:
            folder.mkdir(parents=True, exist_ok=True)
            return cls(path, clock=clock)
        # A run: a journal that is missing, empty or damaged where jobs already ran is a lost one.
        since = folder_evidence_since(folder) if not _has_content(path) else None
        if path.exists() and not os.access(path, os.W_OK):
            raise _read_only_error(path)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            journal = cls(path, clock=clock)
        except JournalDamaged:
            aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
            since = min(t for t in (folder_evidence_since(folder), _mtime(path)) if t is not None)
            for extra in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{path}{extra}", f"{aside}{extra}")
            journal = cls(path, clock=clock)
            journal.set_meta("damaged_journal", aside.name)
        if since is not None and journal.meta(REBUILT_META) is None:
            journal.set_meta(REBUILT_META, str(int(since)))
        return journal

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite)."""
        with self._lock:
            self._db.close()

    # -- schema ------------------------------------------------------------------------------------

    def _migrate(self, migrations: Sequence[tuple[str, str]]) -> list[str]:
        self._db.execute("CREATE TABLE IF NOT EXISTS migrations "
                         "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        done = [r[0] for r in self._db.execute("SELECT name FROM migrations ORDER BY name")]
        known = [name for name, _ in migrations]
        newer = [name for name in done if name not in known]
        if newer:
            raise UsageError(f"{self.path}: this journal was written by a newer prep "
                             f"(migration {newer[0]})", hint="upgrade prep to resume this batch")
        for name, sql in migrations:
            if name in done:
                continue
            # One transaction per migration: a crash leaves the schema before or after it. Two
            # processes opening an old journal at once both see the migration missing; the
            # second finds it applied once it holds the write lock, and skips it.
            try:
                self._db.execute("BEGIN IMMEDIATE")
                applied = self._db.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone()
                if applied is None:
                    for statement in _statements(sql):
                        self._db.execute(statement)
                    self._db.execute("INSERT INTO migrations VALUES (?, ?)", (name, self._clock()))
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise UsageError(f"{self.path}: journal migration {name} failed ({err})",
                                 hint="the journal was left as it was") from err
        return [r[0] for r in self._db.execute("SELECT name FROM migrations ORDER BY name")]

    @property
    def journal_mode(self) -> str:
        """SQLite's journal mode for this file ('wal')."""
        with self._lock:
            return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as err:
                if _read_only(err):
                    raise _read_only_error(self.path) from err
                raise
            try:
                yield self._db
            except sqlite3.OperationalError as err:
                self._db.execute("ROLLBACK")
                if _read_only(err):
                    raise _read_only_error(self.path) from err
                raise
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _event(self, db: sqlite3.Connection, step: str, *, job: str | None = None,
               clip: str | None = None, detail: str | None = None) -> None:
        db.execute("INSERT INTO events (at, job, clip, step, detail) VALUES (?, ?, ?, ?, ?)",
                   (self._clock(), job, clip, step, detail))

    # -- meta --------------------------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        """Store a batch-wide value (manifest path, service URL, ...)."""
        with self._tx() as db:
            db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       (key, value))

    def meta(self, key: str) -> str | None:
        """A batch-wide value, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- jobs --------------------------------------------------------------------------------------

    def add_job(self, *, name: str, position: int, line: int, spec: dict[str, Any], spec_hash: str,
                estimate_units: int, clips: Sequence[tuple[str, str, int, int]],
                refs: Sequence[RefFile] = ()) -> None:
        """Record a new job and its clips (key, source, start_ms, end_ms), shared clips once, and
        its reference files (ready to upload as they are)."""
        now = self._clock()
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (name, position, line, spec_json, spec_hash, state, estimate_units,"
                " updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                (name, position, line, json.dumps(spec, sort_keys=True), spec_hash, estimate_units, now),
            )
            self._link_clips(db, name, clips, now)
            self._link_refs(db, name, refs, now)
            self._event(db, "added", job=name, detail=f"line {line}")

    def replan_job(self, *, name: str, position: int, line: int, spec: dict[str, Any],
                   spec_hash: str, estimate_units: int,
                   clips: Sequence[tuple[str, str, int, int]], refs: Sequence[RefFile] = ()) -> None:
        """Replace a job that was never submitted with its changed manifest row; it starts over."""
        now = self._clock()
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET position = ?, line = ?, spec_json = ?, spec_hash = ?, state = 'pending',"
                " estimate_units = ?, measured_units = NULL, error = NULL, error_exit = NULL,"
                " updated_at = ? WHERE name = ?",
                (position, line, json.dumps(spec, sort_keys=True), spec_hash, estimate_units, now, name),
            )
            db.execute("DELETE FROM job_clips WHERE job = ?", (name,))
            db.execute("DELETE FROM job_refs WHERE job = ?", (name,))
            self._link_clips(db, name, clips, now)
            self._link_refs(db, name, refs, now)
            self._event(db, "replanned", job=name, detail="the manifest row changed")

    def update_position(self, name: str, position: int, line: int) -> None:
        """The job moved in the manifest (order of the status table)."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET position = ?, line = ? WHERE name = ?", (position, line, name))

    def _link_clips(self, db: sqlite3.Connection, job: str, clips: Sequence[tuple[str, str, int, int]],
                    now: float) -> None:
        for position, (key, source, start_ms, end_ms) in enumerate(clips):
            db.execute("INSERT INTO clips (key, source, start_ms, end_ms, updated_at) VALUES (?, ?, ?, ?, ?)"
                       " ON CONFLICT(key) DO NOTHING", (key, source, start_ms, end_ms, now))
            db.execute("INSERT INTO job_clips VALUES (?, ?, ?)", (job, position, key))

    def _link_refs(self, db: sqlite3.Connection, job: str, refs: Sequence[RefFile],
                   now: float) -> None:
        for position, ref in enumerate(refs):
            # The file is what is uploaded: "prepared" from the start (a file of the same content
            # shares its row, and its upload, with every job that names it).
            db.execute("INSERT INTO clips (key, source, start_ms, end_ms, prepared_path,"
                       " prepared_sha256, prepared_bytes, prepared_duration_ms, action, updated_at)"
                       " VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
                       (ref.key, ref.path, ref.duration_ms, ref.path, ref.sha256, ref.size_bytes,
                        ref.duration_ms, f"reference {ref.kind}", now))
            db.execute("INSERT INTO job_refs VALUES (?, ?, ?, ?, ?)",
                       (job, position, ref.kind, ref.binds, ref.key))

    def set_state(self, name: str, state: JobState, *, error: str | None = None,
                  error_exit: int | None = None, detail: str | None = None) -> None:
        """Move a job to `state` (an error is kept only with failed/unknown)."""
        if state not in JOB_STATES:
            raise ValueError(f"unknown job state {state!r}")
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = ?, error = ?, error_exit = ?, updated_at = ? WHERE name = ?",
                       (state, error, error_exit, self._clock(), name))
            self._event(db, state, job=name, detail=error or detail)

    def record_measured(self, name: str, units: int) -> None:
        """The job's bill from its prepared clips as measured (what EvoLink will see)."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET measured_units = ?, updated_at = ? WHERE name = ?",
                       (units, self._clock(), name))

    def note_error(self, name: str, error: str, error_exit: int) -> None:
        """Keep an error on a job without changing its state (e.g. polling stopped; it resumes)."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET error = ?, error_exit = ?, updated_at = ? WHERE name = ?",
                       (error, error_exit, self._clock(), name))
            self._event(db, "error", job=name, detail=error)

    def job(self, name: str) -> JobRecord | None:
        """A job by name, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE name = ?", (name,)).fetchone()
            return None if row is None else self._job_record(row)

    def jobs(self) -> list[JobRecord]:
        """Every job, in manifest order."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY position, name").fetchall()
            return [self._job_record(r) for r in rows]

    def _job_record(self, row: sqlite3.Row) -> JobRecord:
        keys = tuple(r[0] for r in self._db.execute(
            "SELECT clip FROM job_clips WHERE job = ? ORDER BY position", (row["name"],)))
        refs = tuple(RefLink(r[0], r[1], r[2]) for r in self._db.execute(
            "SELECT kind, clip, binds FROM job_refs WHERE job = ? ORDER BY position", (row["name"],)))
        data = dict(row)
        spec = json.loads(data.pop("spec_json"))
        return JobRecord(spec=spec, clip_keys=keys, refs=refs, **data)

    # -- clips -------------------------------------------------------------------------------------

    def clip(self, key: str) -> ClipRecord | None:
        """A clip by key, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM clips WHERE key = ?", (key,)).fetchone()
        return None if row is None else ClipRecord(**dict(row))

    def clips(self) -> list[ClipRecord]:
        """Every clip of the batch."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM clips ORDER BY key").fetchall()
        return [ClipRecord(**dict(r)) for r in rows]

    def record_prepared(self, key: str, *, path: str, sha256: str, size_bytes: int, duration_ms: int,
                        action: str) -> None:
        """A clip was prepared: where, its checksum, and what was done. Any older upload is dropped."""
        with self._tx() as db:
            db.execute(
                "UPDATE clips SET prepared_path = ?, prepared_sha256 = ?, prepared_bytes = ?,"
                " prepared_duration_ms = ?, action = ?, file_url = NULL, file_id = NULL,"
                " expires_at = NULL, uploaded_at = NULL, updated_at = ? WHERE key = ?",
                (path, sha256, size_bytes, duration_ms, action, self._clock(), key),
            )
            db.execute("UPDATE jobs SET measured_units = NULL WHERE name IN"
                       " (SELECT job FROM job_clips WHERE clip = ?)", (key,))
            self._event(db, "prepared", clip=key, detail=f"{action} -> {path} ({size_bytes} bytes)")

    def record_upload(self, key: str, *, file_url: str, file_id: str | None, expires_at: float) -> None:
        """A clip was uploaded: its URL and when that URL expires (epoch seconds)."""
        now = self._clock()
        with self._tx() as db:
            db.execute("UPDATE clips SET file_url = ?, file_id = ?, expires_at = ?, uploaded_at = ?,"
                       " updated_at = ? WHERE key = ?", (file_url, file_id, expires_at, now, now, key))
            self._event(db, "uploaded", clip=key, detail=file_url)

    def forget_upload(self, key: str, reason: str) -> None:
        """The uploaded URL cannot be used (expired early, refused): upload the clip again."""
        with self._tx() as db:
            db.execute("UPDATE clips SET file_url = NULL, file_id = NULL, expires_at = NULL,"
                       " uploaded_at = NULL, updated_at = ? WHERE key = ?", (self._clock(), key))
            self._event(db, "redo-upload", clip=key, detail=reason)

    def forget_prepared(self, key: str, reason: str) -> None:
        """The prepared file is gone or changed: prepare (and upload) it again."""
        with self._tx() as db:
            db.execute("UPDATE clips SET prepared_path = NULL, prepared_sha256 = NULL, prepared_bytes = NULL,"
                       " prepared_duration_ms = NULL, action = NULL, file_url = NULL, file_id = NULL,"
                       " expires_at = NULL, uploaded_at = NULL, updated_at = ? WHERE key = ?",
                       (self._clock(), key))
            db.execute("UPDATE jobs SET measured_units = NULL WHERE name IN"
                       " (SELECT job FROM job_clips WHERE clip = ?)", (key,))
            self._event(db, "redo-prepare", clip=key, detail=reason)

    # -- submissions -------------------------------------------------------------------------------

    def begin_submission(self, name: str, *, idempotency_key: str, request: dict[str, Any]) -> int:
        """Write the create request BEFORE it is sent; the job becomes `submitting`."""
        now = self._clock()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO submissions (job, idempotency_key, request_json, sent_at) VALUES (?, ?, ?, ?)",
                # Key order kept: a re-send must be byte-for-byte the same request (servers that
                # honour Idempotency-Key compare bodies).
                (name, idempotency_key, json.dumps(request), now),
            )
            db.execute("UPDATE jobs SET state = 'submitting', error = NULL, error_exit = NULL,"
                       " updated_at = ? WHERE name = ?", (now, name))
            self._event(db, "submitting", job=name, detail=f"idempotency key {idempotency_key}")
            assert cur.lastrowid is not None
            return cur.lastrowid

    def record_created(self, submission_id: int, *, task_id: str, status: str,
                       credits_reserved_units: int | None, http_status: int | None = 200,
                       outcome: SubmissionOutcome = "created") -> None:
        """The create request was answered with a task: the job is `running`."""
        now = self._clock()
        with self._tx() as db:
            job = self._submission_job(db, submission_id)
            db.execute("UPDATE submissions SET outcome = ?, task_id = ?, http_status = ?, answered_at = ?"
                       " WHERE id = ?", (outcome, task_id, http_status, now, submission_id))
            db.execute("UPDATE jobs SET state = 'running', task_id = ?, task_status = ?, progress = 0,"
                       " credits_reserved_units = ?, error = NULL, error_exit = NULL, updated_at = ?"
                       " WHERE name = ?", (task_id, status, credits_reserved_units, now, job))
            self._event(db, "created" if outcome == "created" else outcome, job=job,
                        detail=f"task {task_id}")

    def record_rejected(self, submission_id: int, *, error: str, error_exit: int,
                        http_status: int | None) -> None:
        """The server answered that it did not create a task (4xx, 429): nothing to pay for."""
        now = self._clock()
        with self._tx() as db:
            job = self._submission_job(db, submission_id)
            db.execute("UPDATE submissions SET outcome = 'rejected', http_status = ?, error = ?,"
                       " answered_at = ? WHERE id = ?", (http_status, error, now, submission_id))
            db.execute("UPDATE jobs SET state = 'failed', error = ?, error_exit = ?, updated_at = ?"
                       " WHERE name = ?", (error, error_exit, now, job))
            self._event(db, "rejected", job=job, detail=error)

    def record_retryable(self, submission_id: int, *, error: str, http_status: int | None) -> None:
        """The server proved it did not take the request (429): the job goes back to `uploaded`."""
        now = self._clock()
        with self._tx() as db:
            job = self._submission_job(db, submission_id)
            db.execute("UPDATE submissions SET outcome = 'deferred', http_status = ?, error = ?,"
                       " answered_at = ? WHERE id = ?", (http_status, error, now, submission_id))
            db.execute("UPDATE jobs SET state = 'uploaded', updated_at = ? WHERE name = ?", (now, job))
            self._event(db, "deferred", job=job, detail=error)

    def record_unknown(self, submission_id: int, *, error: str) -> None:
        """The request was sent and no answer came back: the task may exist. Never re-sent blindly."""
        now = self._clock()
        with self._tx() as db:
            job = self._submission_job(db, submission_id)
            db.execute("UPDATE submissions SET outcome = 'unknown', error = ?, answered_at = ?"
                       " WHERE id = ?", (error, now, submission_id))
            db.execute("UPDATE jobs SET state = 'unknown', error = ?, error_exit = 6, updated_at = ?"
                       " WHERE name = ?", (error, now, job))
            self._event(db, "unknown", job=job, detail=error)

    def abandon_submission(self, submission_id: int, reason: str) -> None:
        """The user says this request made no task: the job may be submitted again."""
        now = self._clock()
        with self._tx() as db:
            job = self._submission_job(db, submission_id)
            db.execute("UPDATE submissions SET outcome = 'abandoned', error = ?, answered_at = ?"
                       " WHERE id = ?", (reason, now, submission_id))
            db.execute("UPDATE jobs SET state = 'uploaded', error = NULL, error_exit = NULL,"
                       " updated_at = ? WHERE name = ?", (now, job))
            self._event(db, "abandoned", job=job, detail=reason)

    def _submission_job(self, db: sqlite3.Connection, submission_id: int) -> str:
        row = db.execute("SELECT job FROM submissions WHERE id = ?", (submission_id,)).fetchone()
        if row is None:
            raise ValueError(f"no submission {submission_id}")
        return str(row[0])

    def submissions(self, name: str | None = None) -> list[Submission]:
        """Every create request sent (of one job, or of all), oldest first."""
        with self._lock:
            if name is None:
                rows = self._db.execute("SELECT * FROM submissions ORDER BY id").fetchall()
            else:
                rows = self._db.execute("SELECT * FROM submissions WHERE job = ? ORDER BY id",
                                        (name,)).fetchall()
        out = []
        for row in rows:
            data = dict(row)
            data["request"] = json.loads(data.pop("request_json"))
            out.append(Submission(**data))
        return out

    def last_submission(self, name: str) -> Submission | None:
        """The newest create request of a job, or None."""
        subs = self.submissions(name)
        return subs[-1] if subs else None

    # -- tasks and results -------------------------------------------------------------------------

    def record_task(self, name: str, *, status: str, progress: int | None,
                    credits_reserved_units: int | None, result_url: str | None = None) -> None:
        """What the last task query said. `completed` moves the job on; other states keep it running."""
        state = "completed" if status == "completed" else "running"
        with self._tx() as db:
            old = db.execute("SELECT task_status FROM jobs WHERE name = ?", (name,)).fetchone()
            db.execute("UPDATE jobs SET state = ?, task_status = ?, progress = ?,"
                       " credits_reserved_units = COALESCE(?, credits_reserved_units),"
                       " result_url = COALESCE(?, result_url), updated_at = ? WHERE name = ?",
                       (state, status, progress, credits_reserved_units, result_url, self._clock(), name))
            if old is None or old[0] != status:
                self._event(db, f"task-{status}", job=name, detail=result_url)

    def record_result(self, name: str, *, path: str, sha256: str, size_bytes: int) -> None:
        """The result was downloaded whole: the job is done."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = 'done', result_path = ?, result_sha256 = ?,"
                       " result_bytes = ?, error = NULL, error_exit = NULL, updated_at = ? WHERE name = ?",
                       (path, sha256, size_bytes, self._clock(), name))
            self._event(db, "downloaded", job=name, detail=f"{path} ({size_bytes} bytes, sha256 {sha256})")

    def record_adopted(self, name: str, *, task_id: str | None, path: str, sha256: str,
                       size_bytes: int, credits_reserved_units: int | None) -> None:
        """The job's result was already in the folder (its sidecar names the same request): the
        job is done without sending anything."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = 'done', task_id = ?, task_status = 'completed',"
                       " credits_reserved_units = ?, result_path = ?, result_sha256 = ?,"
                       " result_bytes = ?, error = NULL, error_exit = NULL, updated_at = ?"
                       " WHERE name = ?", (task_id, credits_reserved_units, path, sha256,
                                           size_bytes, self._clock(), name))
            self._event(db, "adopted", job=name,
                        detail=f"{path}: made by task {task_id} (its sidecar matches the request)")

    def reset_for_retry(self, name: str) -> None:
        """`--retry-failed`: a failed job runs again from its last good step.

        A job whose task failed (not billed) is submitted again with a new idempotency key; a job
        that failed before any task existed resumes from its clips.
        """
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = 'pending', task_id = NULL, task_status = NULL,"
                       " progress = NULL, credits_reserved_units = NULL, result_url = NULL, error = NULL,"
                       " error_exit = NULL, updated_at = ? WHERE name = ?", (self._clock(), name))
            self._event(db, "retry", job=name)

    def attach_task(self, name: str, *, task_id: str, reason: str) -> None:
        """The user says which task an unknown create request made (`prep batch resolve --task-id`)."""
        now = self._clock()
        with self._tx() as db:
            db.execute("UPDATE submissions SET outcome = 'resolved', task_id = ?, answered_at = ?"
                       " WHERE job = ? AND outcome IN ('sending', 'unknown')", (task_id, now, name))
            db.execute("UPDATE jobs SET state = 'running', task_id = ?, task_status = NULL, progress = NULL,"
                       " error = NULL, error_exit = NULL, updated_at = ? WHERE name = ?",
                       (task_id, now, name))
            self._event(db, "resolved", job=name, detail=f"task {task_id}: {reason}")

    def events(self, name: str | None = None) -> list[Event]:
        """Recorded steps (of one job, or all), oldest first."""
        with self._lock:
            if name is None:
                rows = self._db.execute("SELECT at, job, clip, step, detail FROM events ORDER BY id")
            else:
                rows = self._db.execute("SELECT at, job, clip, step, detail FROM events WHERE job = ?"
                                        " ORDER BY id", (name,))
            return [Event(**dict(r)) for r in rows.fetchall()]
