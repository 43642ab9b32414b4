"""The studio's jobs: what the page asks for, turned into the engine's own jobs.

A job on the page is 1-3 clip windows and the request options. `JobDraft.parse` checks what the
page sent; `bill` is the bill `prep estimate` prints for the same clip specs and options; and
`Jobs.start` runs `prep.jobs.generate.generate` in a worker thread, so the job is journaled in the
output folder under the name the same `prep generate` command would give it. Running the same
job again resumes it there (it never pays twice); asking for a job that is already running here
follows that run instead of starting another.

Each run's progress is a list of events (stage, progress, notes, the outcome) that the page reads
as server-sent events; a page that reloads mid-job is sent the events so far, then the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prep.core import billing, rules
from prep.core.clipspec import ClipSpec, spec_text
from prep.core.models import model_spec
from prep.core.request import RequestOptions, check_clip_count
from prep.core.timecode import format_ms
from prep.errors import ExitCode, Interrupted, PrepError, UsageError

if TYPE_CHECKING:
    from prep.api.client import Client, Task
    from prep.core.billing import Estimate
    from prep.jobs.generate import GenerateOptions
    from prep.settings import Settings
    from prep.ui.studio.library import Library

__all__ = ["JobDraft", "Jobs", "StudioJob", "WindowDraft", "compare_dict"]

# The stages a person follows, in order (the engine's stage names -> the page's).
STAGES = ("prepare", "upload", "submit", "rendering", "download")
_PAGE_STAGE = {"validate": "check", "pick": "check", "estimate": "check", "prepare": "prepare",
               "upload": "upload", "submit": "submit", "wait": "rendering",
               "download": "download"}
# Progress events are sent at most this often per stage (a fast upload reports every chunk).
_PROGRESS_EVERY_S = 0.2


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowDraft:
    """One clip of a job and the part of it to use (ms); the whole clip when `whole`."""

    clip_id: str
    path: Path
    start_ms: int
    end_ms: int
    whole: bool

    @property
    def spec_text(self) -> str:
        """The clip spec the command line takes for this window."""
        if self.whole:
            return str(self.path)
        return spec_text(self.path, self.start_ms, self.end_ms)

    @property
    def short_spec(self) -> str:
        """The same spec with the file's name alone (what the page shows)."""
        if self.whole:
            return self.path.name
        return spec_text(self.path.name, self.start_ms, self.end_ms)

    def spec(self) -> ClipSpec:
        """As a ClipSpec (parsed the way the command line parses it)."""
        from prep.media.clips import parse_clip_spec

        return parse_clip_spec(self.spec_text)

    def as_dict(self) -> dict[str, Any]:
        """JSON shape for the page."""
        return {"clip_id": self.clip_id, "start_ms": self.start_ms, "end_ms": self.end_ms,
                "whole": self.whole, "spec": self.short_spec, "path": str(self.path)}


@dataclass(frozen=True, slots=True, kw_only=True)
class JobDraft:
    """A job as the page describes it, checked."""

    windows: tuple[WindowDraft, ...]
    prompt: str  # as the page has it: checked when the job starts (a bill needs none)
    request: RequestOptions  # the other fields, checked (its prompt is `prompt`, set by `options`)

    @classmethod
    def parse(cls, body: Any, library: Library) -> JobDraft:
        """Check the page's JSON; UsageError (with a message for people) when it is not a job."""
        if not isinstance(body, dict):
            raise UsageError("the job must be a JSON object")
        raw_clips = body.get("clips")
        if not isinstance(raw_clips, list):
            raise UsageError("add a clip to the job")
        # The page's own spellings (a blank prompt, "6" from a field, audio left on for a model
        # that has no switch) become the request's values; the rules are RequestOptions'.
        spec = model_spec(body.get("model") or rules.DEFAULT_MODEL)
        model = spec.id
        check_clip_count(len(raw_clips), spec)
        windows = tuple(_window(item, library) for item in raw_clips)
        audio = body.get("generate_audio")
        values = {"duration": _int(body.get("duration"), rules.DEFAULT_OUTPUT_S, "duration"),
                  "quality": body.get("quality") or None, "aspect_ratio": body.get("aspect_ratio") or None,
                  "model": model,
                  "generate_audio": bool(audio)
                  if audio is not None and spec.generate_audio_default is not None else None}
        request = RequestOptions.from_dict(values)
        assert request is not None
        return cls(windows=windows, prompt=str(body.get("prompt") or ""), request=request)

    def specs(self) -> list[ClipSpec]:
        """The job's clips as the command line would give them."""
        return [w.spec() for w in self.windows]

    def options(self, out_dir: Path) -> GenerateOptions:
        """The engine's options for this job (the CLI's defaults for everything else);
        UsageError when the prompt is not one the API takes."""
        from prep.jobs.generate import GenerateOptions

        return GenerateOptions(request=replace(self.request, prompt=self.prompt), out_dir=out_dir)

    def command(self, out_dir: Path) -> str:
        """The `prep generate` command line that names the same job."""
        import shlex

        request = self.request
        parts = ["prep", "generate", *(w.spec_text for w in self.windows), "--prompt",
                 self.prompt or "...", "--duration", str(request.duration_s), "--quality",
                 request.quality, "--aspect-ratio", request.aspect_ratio]
        if request.model != rules.DEFAULT_MODEL:
            parts += ["--model", request.model]
        if request.generate_audio is not None:
            parts.append("--audio" if request.generate_audio else "--no-audio")
        parts += ["-o", str(out_dir)]
        return shlex.join(parts)

    def as_dict(self) -> dict[str, Any]:
        """JSON shape for the page (a reloaded page rebuilds its job view from it)."""
        request = self.request
        return {"clips": [w.as_dict() for w in self.windows], "prompt": self.prompt,
                "duration": request.duration_s, "quality": request.quality,
                "aspect_ratio": request.aspect_ratio, "model": request.model,
                "generate_audio": request.generate_audio}


def _window(item: Any, library: Library) -> WindowDraft:
    """One clip of the page's job: its window snapped to frames and kept inside the clip."""
    from prep.ui.studio.library import snap_ms

    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise UsageError("each clip of the job needs its id")
    try:
        clip = library.get(item["id"])
    except KeyError:
        raise UsageError("a clip of the job is no longer in the library",
                         hint="reload the page") from None
    if clip.info is None:
        raise clip.error or UsageError(f"{clip.path.name} could not be read")
    duration = clip.duration_ms
    start, end = _ms(item.get("start_ms"), 0), _ms(item.get("end_ms"), duration)
    start = min(max(snap_ms(start, clip.info.fps), 0), duration)
    end = min(max(snap_ms(end, clip.info.fps), 0), duration)
    if end <= start:
        raise UsageError(f"{clip.path.name}: the window ends at {format_ms(end)} s, "
                         f"before it starts ({format_ms(start)} s)")
    return WindowDraft(clip_id=clip.id, path=clip.path, start_ms=start, end_ms=end,
                       whole=start == 0 and end >= duration)


def _ms(value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"a window time must be a number of ms, not {value!r}")
    return int(value)


def _int(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a whole number, not {value!r}") from None


def bill(draft: JobDraft, settings: Settings) -> tuple[Estimate | None, list[PrepError]]:
    """The bill of the draft, as `prep estimate` computes it for the same clip specs; or the
    problems (one per clip) that keep it from being billed."""
    from prep.jobs.estimate import estimate_planned, plan_clips

    request = draft.request
    planned, errors = plan_clips(draft.specs(), clip_ms=request.spec.clip_ms)
    if errors:
        return None, errors
    try:
        est = estimate_planned(planned, request, prices=settings.prices)
    except PrepError as err:
        return None, [err]
    return est, []


def compare_dict(draft: JobDraft, settings: Settings) -> dict[str, Any]:
    """The draft's clips and options priced on every model, as `prep estimate --compare --json`
    answers for the same clip specs (each model says what it would cut or refuse); a clip that
    cannot be read is a PrepError."""
    from prep.core.models import widest_clip_ms
    from prep.jobs.estimate import compare_planned, plan_clips

    planned, errors = plan_clips(draft.specs(), clip_ms=widest_clip_ms())
    if errors:
        raise errors[0]
    request = draft.request
    data = compare_planned(planned, output_s=request.duration_s, quality=request.quality,
                           prices=settings.prices)
    for row in data["models"]:
        units = row["credits_units"]
        row["credits_text"] = None if units is None else f"{billing.credits_text(units)} credits"
    data["chosen_model"] = request.model
    return data


def bill_dict(est: Estimate) -> dict[str, Any]:
    """The bill for the page: `prep estimate --json`'s shape plus the text the CLI prints."""
    data = est.as_dict()
    data["credits_text"] = f"{billing.credits_text(est.credits_units)} credits"
    data["by_quality_text"] = {q: billing.credits_text(est.credits_at(q)) for q in rules.QUALITIES}
    return data


@dataclass(slots=True, kw_only=True)
class StudioJob:
    """One run of a job in this studio, and everything it reported so far."""

    name: str
    draft: JobDraft
    out_dir: Path
    credits_units: int
    command: str
    events: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    result_path: Path | None = None
    started: float = field(default_factory=time.time)
    _listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = field(
        default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _last_progress: dict[str, float] = field(default_factory=dict)
    # Set by the page's Cancel: the job stops at its next wait or progress report.
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> bool:
        """Ask the running job to stop; False when it has already finished."""
        with self._lock:
            if self.finished:
                return False
        self.cancelled.set()
        self.emit({"type": "note", "text": "cancelling: the job stops at its next step"})
        return True

    def stop_if_cancelled(self) -> None:
        """Interrupted (exit 130) once the page has asked the job to stop."""
        if self.cancelled.is_set():
            raise Interrupted("cancelled from the page",
                              hint="what was finished is kept in the journal; start the job again "
                                   "to resume it")

    def emit(self, event: dict[str, Any]) -> None:
        """Record an event and hand it to every page that follows the job."""
        with self._lock:
            kind = event.get("type")
            if kind == "progress":
                # Keep one progress event per stage in the record: a reload needs only the last.
                key = f"{event.get('stage')}\n{event.get('label')}"  # a stage's, per clip
                now = time.monotonic()
                if event.get("done") != event.get("total") and \
                        now - self._last_progress.get(key, 0.0) < _PROGRESS_EVERY_S:
                    return
                self._last_progress[key] = now
                last = self.events[-1] if self.events else {}
                if last.get("type") == "progress" and last.get("stage") == event.get("stage") \
                        and last.get("label") == event.get("label"):
                    self.events[-1] = event
                else:
                    self.events.append(event)
            else:
                self.events.append(event)
            if kind == "finished":
                self.finished = True
            listeners = list(self._listeners)
        for loop, queue in listeners:
            with contextlib.suppress(RuntimeError):  # that page's loop is gone
                loop.call_soon_threadsafe(queue.put_nowait, event)

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        """Every event so far, then each new one, until the job has finished."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        with self._lock:
            past = list(self.events)
            done = self.finished
            if not done:
                self._listeners.append((loop, queue))
        try:
            for event in past:
                yield event
            if done:
                return
            while True:
                event = await queue.get()
                yield event
                if event.get("type") == "finished":
                    return
        finally:
            with self._lock:
                if (loop, queue) in self._listeners:
                    self._listeners.remove((loop, queue))

    def summary(self) -> dict[str, Any]:
        """Where the job stands, for the page's list of jobs."""
        with self._lock:
            last = self.events[-1] if self.events else {}
            outcome = next((e for e in reversed(self.events) if e.get("type") == "finished"), None)
        return {"name": self.name, "running": not self.finished, "started": self.started,
                "draft": self.draft.as_dict(), "credits_text": billing.credits_text(self.credits_units),
                "command": self.command, "last": last, "outcome": outcome,
                "result": str(self.result_path) if self.result_path else None}


class Jobs:
    """The jobs started from the page; one runs at a time (they share the output folder's journal)."""

    def __init__(self, settings: Settings, out_dir: Path,
                 run: Callable[..., Any] | None = None) -> None:
        self.settings = settings
        self.out_dir = out_dir
        self._run = run  # the engine's generate (a test may hand in another)
        self._jobs: dict[str, StudioJob] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prep-studio-job")

    def get(self, name: str) -> StudioJob | None:
        """The job of this name started here, if any."""
        with self._lock:
            return self._jobs.get(name)

    def all(self) -> list[StudioJob]:
        """Every job started here, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.started, reverse=True)

    def name_of(self, draft: JobDraft) -> str:
        """The engine's name of the job (the same as `prep generate` gives the same command)."""
        from prep.jobs.generate import job_name

        return job_name(draft.specs(), draft.options(self.out_dir))

    def start(self, draft: JobDraft, confirmed_units: int) -> tuple[StudioJob, bool]:
        """Run the job (confirmed for `confirmed_units`), or follow the run of it already going.

        Returns the job and whether this call started it.
        """
        name = self.name_of(draft)
        with self._lock:
            running = self._jobs.get(name)
            if running is not None and not running.finished:
                return running, False
            job = StudioJob(name=name, draft=draft, out_dir=self.out_dir,
                            credits_units=confirmed_units, command=draft.command(self.out_dir))
            self._jobs[name] = job
        job.emit({"type": "queued", "name": name, "credits_text":
                  f"{billing.credits_text(confirmed_units)} credits"})
        self._pool.submit(self._work, job, confirmed_units)
        return job, True

    def close(self) -> None:
        """Stop taking jobs; a job running now goes on in its thread until it ends."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _client(self, job: StudioJob) -> Client:
        """The engine's client for one job: its retries wait on the page's Cancel, and each new
        try at a service that cannot be reached is shown on the page."""
        from prep.api.client import Client
        from prep.jobs.engine import retry_policy
        from prep.jobs.policy import DEFAULT_PACING

        def wait(delay_s: float) -> None:
            job.cancelled.wait(delay_s)
            job.stop_if_cancelled()

        return Client.from_settings(self.settings, retry=retry_policy(DEFAULT_PACING), sleep=wait,
                                    on_retry=lambda text: job.emit({"type": "retry", "text": text}))

    def _work(self, job: StudioJob, confirmed_units: int) -> None:
        from prep.jobs.generate import GenerateHooks, generate

        run = self._run or generate
        stage: list[str] = [""]
        extra: dict[str, Any] = {}
        if self._run is None:
            extra["client"] = self._client(job)

        def on_stage(name: str) -> None:
            job.stop_if_cancelled()
            page = _PAGE_STAGE.get(name, name)
            if page != stage[0]:
                stage[0] = page
                job.emit({"type": "stage", "stage": page})

        def progress(page_stage: str) -> Callable[..., None]:
            def report(label: Any, done: int, total: int | None) -> None:
                # The label tells the clips apart, so the page adds their shares up.
                job.stop_if_cancelled()
                job.emit({"type": "progress", "stage": page_stage, "done": int(done),
                          "total": int(total) if total else None,
                          "label": str(label) if label is not None else None})
            return report

        def on_task(task: Task) -> None:
            if stage[0] != "rendering" and task.status in rules.ACTIVE_STATUSES:
                on_stage("wait")
            job.emit({"type": "task", "task_id": task.id, "status": task.status,
                      "progress": int(task.progress),
                      "estimated_time_s": task.estimated_time_s})

        def confirm(est: Estimate) -> bool:
            if est.credits_units != confirmed_units:
                job.emit({"type": "note", "text": "the bill changed to "
                          f"{billing.credits_text(est.credits_units)} credits since it was "
                          "confirmed: nothing was sent; confirm the new amount"})
                return False
            return True

        hooks = GenerateHooks(
            confirm=confirm, on_stage=on_stage,
            on_note=lambda text: job.emit({"type": "note", "text": text}),
            on_prepare_progress=progress("prepare"),
            on_upload_progress=progress("upload"),
            on_task=on_task,
            on_download_progress=lambda done, total: progress("download")(None, done, total),
        )
        try:
            result = run(job.draft.specs(), job.draft.options(self.out_dir), self.settings,
                         hooks=hooks, raise_on_failure=False, **extra)
        except PrepError as err:
            job.emit({"type": "finished", "ok": False, "state": "error", "error": err.message,
                      "hint": err.hint, "exit_code": err.exit_code})
            return
        except Exception as err:  # a bug: the page says so rather than spin forever
            job.emit({"type": "finished", "ok": False, "state": "error",
                      "error": f"internal error: {type(err).__name__}: {err}",
                      "hint": "this is a bug in prep; please report it",
                      "exit_code": ExitCode.INTERNAL})
            return
        finally:
            if "client" in extra:
                extra["client"].close()
        data = result.as_dict()
        problem = result.error()
        if result.files:
            job.result_path = Path(result.files[0])
        ok = problem is None and result.stopped is None and bool(result.files)
        job.emit({
            "type": "finished", "ok": ok,
            "state": "completed" if ok else (result.stopped or data.get("state") or "error"),
            "task_id": result.task_id, "resumed": result.resumed,
            "result": str(job.result_path) if job.result_path else None,
            "credits_estimated": billing.credits_text(result.estimate.credits_units),
            "credits_reserved": (billing.credits_text(result.credits_reserved_units)
                                 if result.credits_reserved_units is not None else None),
            "error": problem.message if problem else ("not submitted: the bill changed"
                                                      if result.stopped == "declined" else None),
            "hint": problem.hint if problem else None, "exit_code": data["exit_code"],
            "journal": data.get("journal"),
        })
