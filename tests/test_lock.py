"""One run per output folder (the OS lock), and journal migrations that two processes can race."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from prep.errors import ExitCode, FolderBusyError
from prep.jobs.journal import MIGRATIONS, Journal
from prep.jobs.layout import journal_path
from prep.jobs.lock import RunLock, holder_of

_HOLD = """
import sys, time
from prep.jobs.lock import RunLock
RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(60)
"""


def _holder(folder: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_is_told_who_holds_the_folder(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        with pytest.raises(FolderBusyError) as err:
            RunLock(tmp_path).acquire()
        assert err.value.exit_code == ExitCode.BUSY == 8
        assert f"pid {proc.pid}" in str(err.value) and "--wait" in err.value.hint
        assert holder_of(tmp_path) is not None
    finally:
        proc.kill()
        proc.communicate()


def test_kill_9_leaves_nothing_stale(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    with RunLock(tmp_path) as lock:  # free at once: the OS dropped it with the process
        assert lock.held
    assert not lock.held


def test_wait_blocks_until_the_holder_ends(tmp_path: Path) -> None:
    first = RunLock(tmp_path).acquire()
    told: list[str] = []
    threading.Timer(0.3, first.release).start()
    started = time.monotonic()
    second = RunLock(tmp_path).acquire(wait=True, on_wait=told.append, poll_s=0.05)
    assert second.held and time.monotonic() - started >= 0.25
    assert len(told) == 1 and "waiting for another prep run" in told[0]
    second.release()


def test_an_unwritable_folder_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(Exception, match="cannot use this output folder"):
        RunLock(blocker / "out").acquire()


def test_two_processes_migrate_an_old_journal_at_once(tmp_path: Path) -> None:
    Journal(journal_path(tmp_path), migrations=MIGRATIONS[:1]).close()  # a journal from an old prep
    script = ("import sys; from prep.jobs.journal import Journal; "
              "j = Journal.open(sys.argv[1]); print(','.join(j.applied)); j.close()")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert {out.strip() for out, _ in outputs} == {",".join(name for name, _ in MIGRATIONS)}
