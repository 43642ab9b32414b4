"""Where a batch's encodes run: this process's threads (the default), a pool of local processes
(`--cpu-workers N --processes`), or the workers of a Dask cluster (`--scheduler`).

Only the CPU stage moves: the coordinator keeps the journal, the uploads, the task polling and the
downloads, so a cluster changes how fast clips are prepared and nothing about what is paid. A
worker must see the clips and the output folder at the same paths (a shared filesystem) and have
prep and a usable ffmpeg; `check_workers` proves that before the first encode, and names the
worker and what it lacks otherwise.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from prep.errors import ExitCode, MediaError, NetworkError, ToolMissingError, UsageError, install_hint

__all__ = ["Scheduler", "WorkerProblem", "check_workers", "cpu_executor", "parse_scheduler",
           "watch_workers"]

_LOCAL = re.compile(r"^local(?::(\d+))?$")
_REMOTE = re.compile(r"^(tcp|tls|ucx|inproc)://\S+$")
MAX_LOCAL_WORKERS = 64


@dataclass(frozen=True, slots=True)
class Scheduler:
    """A parsed `--scheduler`: `local[:N]` (a LocalCluster of N processes) or a scheduler address."""

    kind: Literal["local", "remote"]
    address: str | None = None
    workers: int = 2


def parse_scheduler(text: str) -> Scheduler:
    """`local`, `local:N` or `tcp://HOST:PORT`; UsageError (exit 2) naming the value otherwise."""
    value = text.strip()
    local = _LOCAL.match(value)
    if local:
        workers = int(local.group(1) or 2)
        if not 1 <= workers <= MAX_LOCAL_WORKERS:
            raise UsageError(f"--scheduler {value}: the number of local workers must be 1 to "
                             f"{MAX_LOCAL_WORKERS}")
        return Scheduler("local", workers=workers)
    if _REMOTE.match(value):
        return Scheduler("remote", address=value)
    raise UsageError(f"--scheduler {value!r} is not understood",
                     hint="give local, local:N (N worker processes here) or a Dask scheduler's "
                          "address such as tcp://10.0.0.5:8786")


@contextlib.contextmanager
def cpu_executor(scheduler: Scheduler | None, *, processes: int | None = None
                 ) -> Iterator[tuple[Executor | None, Any]]:
    """The executor for `prepare_clip` and the Dask client behind it (or None for either).

    No scheduler and no `processes`: (None, None), and the run uses its own thread pool.
    """
    if scheduler is None:
        if processes is None:
            yield None, None
            return
        # spawn, not fork: the coordinator runs threads (the I/O pool), which fork does not copy.
        with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
            yield pool, None
        return
    try:
        # Typed as Any: distributed ships no type information for these entry points.
        distributed: Any = importlib.import_module("distributed")
    except ImportError as err:
        raise ToolMissingError("--scheduler needs Dask's distributed package",
                               hint=install_hint("cluster")) from err
    cluster = None
    try:
        if scheduler.kind == "local":
            cluster = distributed.LocalCluster(n_workers=scheduler.workers, threads_per_worker=1,
                                   processes=True, dashboard_address=":0")
            client = distributed.Client(cluster, timeout="30s")
        else:
            client = distributed.Client(scheduler.address, timeout="15s")
    except (OSError, TimeoutError) as err:
        if cluster is not None:
            cluster.close()
        raise NetworkError(f"--scheduler {scheduler.address or 'local'}: cannot reach the Dask "
                           f"scheduler ({err})",
                           hint="start it with `dask scheduler`, and check the address and port") from err
    try:
        yield client.get_executor(pure=False), client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@dataclass(frozen=True, slots=True)
class WorkerProblem:
    """What one worker lacks, in words, and the exit code it means."""

    worker: str
    problem: str
    exit_code: int


@contextlib.contextmanager
def watch_workers(client: Any, on_lost: Callable[[str], None], *,
                  every_s: float = 1.0) -> Iterator[None]:
    """Call `on_lost(address)` for each worker that leaves the cluster while the block runs (Dask
    runs its encodes again elsewhere without a word; the user is told, and the journal keeps it)."""
    stop = threading.Event()

    def workers() -> set[str]:
        try:
            return set(client.scheduler_info().get("workers", {}))
        except Exception:  # noqa: BLE001 - a scheduler that stops answering ends the watch
            return set()

    def watch() -> None:
        known = workers()
        while not stop.wait(every_s):
            now = workers()
            if not now:
                continue
            for address in sorted(known - now):
                on_lost(address)
            known = now

    thread = threading.Thread(target=watch, name="prep-dask-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def _worker_can(identities: list[tuple[str, int, int]], marker: str, ffmpeg: str | None
                ) -> tuple[str, int] | None:
    """Runs ON a worker: what it lacks to prepare these clips into this folder, or None.
    `ffmpeg` is the coordinator's configured value (`Settings.ffmpeg`), which the worker
    resolves for itself."""
    try:
        import prep.media.prepare  # noqa: F401  (the same prep the coordinator runs)
    except ImportError as err:
        return f"cannot import prep ({err})", 6
    from prep.media.ffmpeg import find_ffmpeg

    try:
        # Resolved here, on the worker, by the rules prepare follows there: the configured
        # ffmpeg, else PATH, else the bundled one.
        binary = find_ffmpeg(ffmpeg).path
    except ToolMissingError as err:
        return f"has no usable ffmpeg ({err.message})", 6
    try:
        subprocess.run([binary, "-hide_banner", "-version"], capture_output=True, timeout=30,
                       check=True)
    except (OSError, subprocess.SubprocessError) as err:
        return f"cannot run ffmpeg at {binary} ({err})", 6
    if not os.path.isfile(marker):
        return (f"cannot see the output folder {os.path.dirname(marker)} (it must be on a "
                "filesystem every worker shares, at the same path)"), 3
    for path, size, mtime_ns in identities:
        try:
            stat = os.stat(path)
        except OSError:
            return f"cannot see {path} (the clips must be on a shared filesystem, at the same path)", 3
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns):
            return f"sees another file at {path} than this machine does", 3
    return None


def check_workers(client: Any, clips: Sequence[Path], out_dir: Path, *,
                  ffmpeg: str | None = None) -> None:
    """Prove every worker can prepare `clips` into `out_dir`; raise naming the first that cannot.

    MediaError (exit 3) when a worker cannot see a clip or the folder, ToolMissingError (exit 6)
    when it lacks prep or ffmpeg. Nothing has been encoded or uploaded when this raises.
    """
    problems = find_worker_problems(client, clips, out_dir, ffmpeg=ffmpeg)
    if not problems:
        return
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    message = f"worker {first.worker} {first.problem}{more}"
    if first.exit_code == ExitCode.MEDIA:
        raise MediaError(out_dir, message, hint="mount the clips and the output folder at the same "
                                                "paths on every worker")
    raise ToolMissingError(message, hint="install prep (and ffmpeg) on every worker")


def find_worker_problems(client: Any, clips: Sequence[Path], out_dir: Path, *,
                         ffmpeg: str | None = None) -> list[WorkerProblem]:
    """What each worker lacks (an empty list when every worker can do the job)."""
    identities = [_identity(Path(p).resolve()) for p in dict.fromkeys(clips)]
    out_dir.mkdir(parents=True, exist_ok=True)
    marker = out_dir.resolve() / f".prep-worker-check-{os.getpid()}"
    marker.write_text("prep checks that the workers see this folder\n")
    try:
        answers: dict[str, Any] = client.run(_worker_can, identities, str(marker), ffmpeg)
    finally:
        marker.unlink(missing_ok=True)
    if not answers:
        raise NetworkError("the Dask scheduler has no workers",
                           hint="start some with `dask worker tcp://SCHEDULER:8786`")
    return [WorkerProblem(worker, answer[0], int(answer[1]))
            for worker, answer in sorted(answers.items()) if answer is not None]
