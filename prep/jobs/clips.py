"""A job's clips before its create: prepare each one, bill the job again on what was prepared,
upload each one, and upload again what the server refused.

`ClipPipeline` takes a job one step further each time the runner looks at it (`advance`) and says
when every clip and reference is uploaded and fresh, so the job can be sent. Preparing runs on the
`cpu` executor (`prep.jobs.steps.prepare_clip`, picklable), uploading on the `io` executor; what
comes back is journaled here, on the coordinator thread. A clip shared by several jobs is
prepared and uploaded once (its key is its content and plan).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from prep.errors import PrepError
from prep.jobs.budget import measured_units
from prep.jobs.journal import ClipRecord, JobRecord
from prep.jobs.layout import prepared_dir, read_progress
from prep.jobs.policy import Decision, Step, Verdict
from prep.jobs.reconcile import job_clips
from prep.jobs.references import REFERENCE_KEY_PREFIX
from prep.jobs.steps import (
    ClipWork,
    PreparedClip,
    Uploaded,
    fault_matches,
    kill_self,
    prepare_clip,
    upload_clip,
)

if TYPE_CHECKING:
    from prep.api.upload import UploadCache
    from prep.core.window import Extend, PlannedClip
    from prep.jobs.runstate import RunState
    from prep.media.prepare import PrepareOptions

__all__ = ["ClipPipeline"]


class ClipPipeline:
    """Prepare, measure and upload the clips and references of the run's jobs."""

    def __init__(self, state: RunState, *, prepare_options: PrepareOptions, extend: Extend | None,
                 upload_cache: UploadCache | None, in_process_cpu: bool) -> None:
        self.state = state
        self.prepare_options = prepare_options
        self.upload_cache = upload_cache
        self.in_process_cpu = in_process_cpu  # progress callbacks reach this process
        self.errors: dict[str, PrepError] = {}  # clip key -> why it cannot be prepared or uploaded
        self.planned: dict[str, PlannedClip] = {}
        self.jobs_of_clip: dict[str, list[str]] = {}
        self.encoding: dict[str, tuple[int, int]] = {}  # clip key -> (encoded ms, total ms)
        for job_plan in state.plan.jobs:
            for (key, *_), planned in zip(job_clips(job_plan, extend), job_plan.clips, strict=True):
                self.planned[key] = planned
                self.jobs_of_clip.setdefault(key, []).append(job_plan.name)

    def _prepared_dir(self, key: str) -> Path:
        return prepared_dir(self.state.options.output_dir, key)

    def report_encoding(self) -> None:
        """How far each encode in flight is, from the progress file its worker keeps (threads,
        processes and Dask workers alike), as each of its jobs' state."""
        hooks = self.state.hooks
        for step, key in list(self.state.busy):
            if step is not Step.PREPARE:
                continue
            found = read_progress(self._prepared_dir(key))
            if found is None or found == self.encoding.get(key):
                continue
            self.encoding[key] = found
            done_ms, total_ms = found
            name = self.planned[key].spec.path.name
            if hooks.on_prepare_progress is not None and not self.in_process_cpu:
                hooks.on_prepare_progress(name, done_ms, total_ms)
            for job in self.jobs_of_clip.get(key, ()):
                hooks.state(job, "preparing", f"{name} {done_ms / 1000:.1f}/{total_ms / 1000:.1f} s")

    def advance(self, job: JobRecord, now: float) -> tuple[JobRecord, list[str]] | None:
        """The next step of a job before its create: prepare and upload its clips. Once every
        clip and reference is uploaded and fresh: the job (as journaled now) and its clips' URLs,
        for the create; else None."""
        state = self.state
        failed = [self.errors[k] for k in job.clip_keys if k in self.errors]
        if failed:
            state.fail(job.name, failed[0].message, failed[0].exit_code)
            return None
        clips = [state.clip(key) for key in job.clip_keys]
        refs = [state.clip(ref.key) for ref in job.refs]  # ready as they are: only uploaded
        prepared = all(c.prepared_path for c in clips)
        if prepared and job.measured_units is None:
            self._measure(job, [c.prepared_duration_ms or 0 for c in clips])
            job = state.job(job.name)
        if all(c.upload_fresh(now, state.options.upload_margin_s) for c in clips + refs):
            return job, [c.file_url or "" for c in clips]
        if prepared and job.state == "pending":
            state.journal.set_state(job.name, "prepared")
            state.hooks.state(job.name, "prepared")
        self._advance_each(job.name, clips, refs, now)
        return None

    def _advance_each(self, name: str, clips: list[ClipRecord], refs: list[ClipRecord],
                      now: float) -> None:
        """The next step of each clip, then of each reference, of job `name`."""
        for clip in clips:
            if not clip.prepared_path and clip.key not in self.planned:
                # A journaled job kept under clips this run did not plan (its row changed).
                self.state.fail(name, f"job {name!r}: its clip {clip.source} is not the one the "
                                "manifest names now; give the job a new name to run it with the "
                                "new clips", 2)
                return
            self._advance_clip(name, clip, now)
        for ref in refs:
            self._advance_clip(name, ref, now)

    def _advance_clip(self, name: str, clip: ClipRecord, now: float) -> None:
        """The next step of one clip of job `name`: prepare it, or upload it (again)."""
        state = self.state
        if not clip.prepared_path:
            if (Step.PREPARE, clip.key) in state.busy:
                return
            state.hooks.state(name, "preparing", clip.source)
            work = ClipWork(key=clip.key, clip=self.planned[clip.key],
                            out_dir=self._prepared_dir(clip.key),
                            options=self._prepare_options(name), fault=state.options.fault)
            # Progress callbacks cannot cross a process boundary: only in-process pools.
            progress = state.hooks.on_prepare_progress if self.in_process_cpu else None
            state.submit(state.cpu, Step.PREPARE, clip.key, prepare_clip, work, progress)
        elif not clip.upload_fresh(now, state.options.upload_margin_s) and state.halted is None \
                and state.idle(Step.UPLOAD, clip.key):
            state.hooks.state(name, "uploading", clip.source)
            state.submit(state.io, Step.UPLOAD, clip.key, self._upload, clip)

    def _prepare_options(self, name: str) -> PrepareOptions:
        """The run's prepare options, held to the rules of job `name`'s model."""
        return self.prepare_options.for_model(self.state.plans[name].request.spec)

    def _measure(self, job: JobRecord, durations_ms: list[int]) -> None:
        """Bill the job again from its prepared clips as measured: what EvoLink will see."""
        request = self.state.plans[job.name].request
        self.state.journal.record_measured(job.name, measured_units(
            durations_ms, output_s=request.duration_s, quality=request.quality,
            prices=self.state.plan.prices, model=request.model,
            generate_audio=request.generate_audio))

    def _upload(self, clip: ClipRecord) -> Uploaded:
        """Upload one prepared clip (runs on the io executor; returns a value, journals nothing)."""
        assert clip.prepared_path is not None
        state = self.state
        path = Path(clip.prepared_path)
        fault = fault_matches(state.options.fault, "upload")
        report = state.hooks.on_upload_progress

        def progress(sent: int, total: int) -> None:
            if fault and sent >= total // 2:
                kill_self()
            if report is not None:
                report(path, sent, total)

        return upload_clip(state.api, state.gate, path, sha256=clip.prepared_sha256,
                           mode=state.options.upload_mode, cache=self.upload_cache, now=time.time(),
                           margin_s=state.options.upload_margin_s,
                           on_progress=progress if fault or report else None,
                           reference=clip.key.startswith(REFERENCE_KEY_PREFIX))

    # -- what comes back (coordinator thread)

    def prepared(self, key: str, prepared: PreparedClip) -> None:
        self.state.warn(prepared.notes)
        self.state.journal.record_prepared(key, path=str(prepared.path), sha256=prepared.sha256,
                                           size_bytes=prepared.size_bytes,
                                           duration_ms=prepared.duration_ms, action=prepared.action)

    def uploaded(self, key: str, uploaded: Uploaded) -> None:
        self.state.warn(uploaded.notes)
        self.state.journal.record_upload(key, file_url=uploaded.file_url, file_id=uploaded.file_id,
                                         expires_at=uploaded.expires_at)

    def prepare_failed(self, key: str, err: PrepError, decision: Decision) -> None:
        self._failed(Step.PREPARE, key, err, decision)

    def upload_failed(self, key: str, err: PrepError, decision: Decision) -> None:
        self._failed(Step.UPLOAD, key, err, decision)

    def _failed(self, step: Step, key: str, err: PrepError, decision: Decision) -> None:
        """Tried again after a pause, or the clip fails the jobs that use it (on their next turn)."""
        if decision.verdict in (Verdict.PACE, Verdict.RETRY):
            self.state.defer(step, key, decision)
        else:
            self.errors[key] = err

    def upload_again(self, name: str, err: PrepError) -> None:
        """The server could not use an uploaded reference of job `name` (expired early or
        deleted): upload afresh, and send again (the 400 proves no task was made)."""
        state = self.state
        job = state.job(name)
        for key in [*job.clip_keys, *(ref.key for ref in job.refs)]:
            clip = state.journal.clip(key)
            if self.upload_cache is not None and clip is not None and clip.prepared_sha256:
                self.upload_cache.forget(clip.prepared_sha256, state.api.files_url)
            state.journal.forget_upload(key, f"the server refused it: {err.message}")
        state.journal.set_state(name, "prepared", detail="references refused: uploading again")
