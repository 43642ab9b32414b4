"""`generate`: one job end to end. Validate -> (pick) -> estimate -> confirm -> prepare -> upload ->
submit -> follow -> download.

Everything that can be judged locally is judged before anything slow or remote happens: the prompt,
the request options, the clip count, the key, the output folder, and every clip (probed and
windowed). The bill is computed exactly as `prep estimate` computes it and shown before any
encoding or upload, so a declined job costs nothing but the probe. Nothing leaves the machine until
the user agrees (or passed --yes), and the create request is sent once (see prep.client).

With `pick`, clips given without a start or end first get the window `prep pick` would choose for
a job of this many clips (remembered in `<cache>/picks/`, see prep.picks); the picks are reported
before the bill, since they are what the bill is for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prep.api.client import Client, PollPolicy, Task, new_idempotency_key
from prep.api.upload import UploadCache, UploadedFile, UploadMode, upload_files
from prep.core import billing, rules
from prep.core.clipspec import ClipSpec, expand_paths, parse_clip_spec
from prep.core.request import GenerationRequest, check_clip_count, check_options, check_prompt
from prep.errors import AuthError, Interrupted, OutcomeUnknownError, RequestRejected, UsageError
from prep.jobs import outcomes

if TYPE_CHECKING:
    from prep.core.billing import Estimate
    from prep.core.plan import Extend
    from prep.pick.picks import PickedWindow
    from prep.settings import Settings

__all__ = ["GenerateOptions", "GenerateResult", "Hooks", "generate", "poll_policy"]

Stage = Literal["validate", "pick", "estimate", "prepare", "upload", "submit", "wait", "download"]


def poll_policy(settings: Settings, deadline_s: float | None = 30 * 60.0) -> PollPolicy:
    """How often to read a task: the client's one rule, PollPolicy.for_settings."""
    return PollPolicy.for_settings(settings, deadline_s=deadline_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerateOptions:
    """What to generate and how far to go (defaults are the CLI's)."""

    prompt: str
    out_dir: Path
    duration_s: int = rules.DEFAULT_OUTPUT_S
    quality: str = rules.DEFAULT_QUALITY
    aspect_ratio: str = rules.DEFAULT_ASPECT_RATIO  # or "auto"
    shot_type: str = rules.DEFAULT_SHOT_TYPE
    callback_url: str | None = None
    upload_mode: UploadMode = "base64"
    max_cost_units: int | None = None
    dry_run: bool = False
    wait: bool = True
    deadline_s: float | None = 30 * 60.0
    extend: Extend | None = None
    profile: str | None = None
    use_cache: bool = True
    resubmit: bool = False
    pick: bool = False  # choose a window for clips given without one, as `prep pick` does


@dataclass(slots=True, kw_only=True)
class Hooks:
    """Callbacks the pipeline reports through (the CLI draws them; the library never prints).

    `confirm(estimate)` returns False to stop before anything is prepared or sent; None means yes.
    """

    confirm: Callable[[Estimate], bool] | None = None
    on_estimate: Callable[[Estimate], None] | None = None
    on_note: Callable[[str], None] | None = None
    on_stage: Callable[[str], None] | None = None
    on_pick: Callable[[PickedWindow], None] | None = None
    on_pick_progress: Callable[[str, int, int], None] | None = None
    on_prepare_progress: Callable[[str, int, int], None] | None = None
    on_upload_progress: Callable[[Path, int, int], None] | None = None
    on_task: Callable[[Task], None] | None = None
    on_download_progress: Callable[[int, int | None], None] | None = None


@dataclass(slots=True, kw_only=True)
class GenerateResult:
    """What a `generate` run did, stage by stage."""

    estimate: Estimate
    aspect_ratio: str
    prepared: list[Path] = field(default_factory=list)
    picks: list[PickedWindow] = field(default_factory=list)
    uploads: list[UploadedFile] = field(default_factory=list)
    request: GenerationRequest | None = None
    idempotency_key: str | None = None
    task: Task | None = None
    replayed: bool = False
    files: list[Path] = field(default_factory=list)
    stage_s: dict[str, float] = field(default_factory=dict)
    stopped: Literal["dry-run", "declined", "no-wait"] | None = None

    @property
    def credits_reserved_units(self) -> int | None:
        """EvoLink's own figure for the job, once a task exists."""
        return self.task.credits_reserved_units if self.task is not None else None

    @property
    def credits_differ(self) -> bool:
        """True when EvoLink reserved another amount than prep estimated."""
        reserved = self.credits_reserved_units
        return reserved is not None and reserved != self.estimate.credits_units

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `prep generate --json` (contract: extend, never rename)."""
        reserved = self.credits_reserved_units
        return {
            "task_id": self.task.id if self.task else None,
            "status": self.task.status if self.task else None,
            "stopped": self.stopped,
            "files": [str(p) for p in self.files],
            "credits_estimated": float(self.estimate.credits),
            "credits_reserved": None if reserved is None else reserved / 10_000,
            "credits_differ": self.credits_differ,
            "aspect_ratio": self.aspect_ratio,
            "estimate": self.estimate.as_dict(),
            "prepared": [str(p) for p in self.prepared],
            "picks": [p.as_dict() for p in self.picks],
            "uploads": [u.as_dict() for u in self.uploads],
            "request": self.request.body() if self.request else None,
            "idempotency_key": self.idempotency_key,
            "replayed": self.replayed,
            "task": self.task.as_dict() if self.task else None,
            "stage_s": {k: round(v, 3) for k, v in self.stage_s.items()},
        }


def _specs(clips: Sequence[ClipSpec | str | Path]) -> list[ClipSpec]:
    specs = [c if isinstance(c, ClipSpec) else parse_clip_spec(str(c)) for c in clips]
    return expand_paths(specs)


def generate(
    clips: Sequence[ClipSpec | str | Path],
    options: GenerateOptions,
    settings: Settings,
    *,
    client: Client | None = None,
    hooks: Hooks | None = None,
) -> GenerateResult:
    """Run one job; see the module docstring for the order. Raises prep errors (exit codes)."""
    hooks = hooks or Hooks()
    timings: dict[str, float] = {}

    @contextmanager
    def stage(name: Stage) -> Iterator[None]:
        if hooks.on_stage is not None:
            hooks.on_stage(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started

    with stage("validate"):
        specs = _specs(clips)
        check_prompt(options.prompt)
        check_clip_count(len(specs))
        if options.aspect_ratio != "auto" and options.aspect_ratio not in rules.ASPECT_RATIOS:
            raise UsageError(f"--aspect-ratio {options.aspect_ratio} is not allowed; use auto or one "
                             f"of {', '.join(rules.ASPECT_RATIOS)}")
        check_options(duration_s=options.duration_s, quality=options.quality,
                      shot_type=options.shot_type, callback_url=options.callback_url)
        if not options.dry_run and not settings.api_key:
            raise AuthError("no EvoLink API key is configured",
                            hint="set EVOLINK_API_KEY, or run `prep config set api_key` (stored "
                                 "0600); --dry-run works without one")
        from prep.media.prepare import check_out_dir

        check_out_dir(options.out_dir)

    picks: list[PickedWindow] = []
    if options.pick:
        with stage("pick"):
            specs = _pick_windows(specs, picks, options, settings, hooks)

    with stage("estimate"):
        from prep.jobs.estimate import plan_clips

        planned, problems = plan_clips(specs, extend=options.extend)
        if problems:
            raise problems[0]
        aspect = options.aspect_ratio
        if aspect == "auto":
            from prep.core.request import nearest_aspect_ratio

            aspect = nearest_aspect_ratio([p.info.display_aspect for p in planned])
        estimate = billing.estimate_durations([p.bill() for p in planned],
                                              output_s=options.duration_s, quality=options.quality,
                                              prices=settings.prices)
    result = GenerateResult(estimate=estimate, aspect_ratio=aspect, stage_s=timings, picks=picks)
    if hooks.on_estimate is not None:
        hooks.on_estimate(estimate)
    if options.max_cost_units is not None and estimate.credits_units > options.max_cost_units:
        raise UsageError(
            f"the job costs {billing.credits_text(estimate.credits_units)} credits, more than "
            f"--max-cost {billing.credits_text(options.max_cost_units)}",
            hint="raise --max-cost, or lower --duration / --quality",
        )
    if not options.dry_run and hooks.confirm is not None and not hooks.confirm(estimate):
        result.stopped = "declined"
        return result

    with stage("prepare"):
        from prep.media.prepare import PrepareOptions, prepare

        prepare_kwargs: dict[str, Any] = {"extend": options.extend, "use_cache": options.use_cache,
                                          "cache_dir": settings.cache_dir,
                                          "ffmpeg": settings.ffmpeg}
        if options.profile:
            prepare_kwargs["profile"] = options.profile
        done = prepare([p.spec for p in planned], options.out_dir / "prepared",
                       PrepareOptions(**prepare_kwargs), on_progress=hooks.on_prepare_progress)
        result.prepared = [r.output for r in done if r.output is not None]
        _refine_estimate(result, done, planned, options, settings, hooks)
    if options.dry_run:
        result.stopped = "dry-run"
        return result

    own_client = client is None
    api = client or Client.from_settings(settings)
    try:
        _send(api, result, options, settings, hooks, stage)
    finally:
        if own_client:
            api.close()
    return result


def _pick_windows(specs: list[ClipSpec], picks: list[PickedWindow], options: GenerateOptions,
                  settings: Settings, hooks: Hooks) -> list[ClipSpec]:
    """Each clip given without a start or end, with the window `prep pick` chooses for it."""
    from prep.pick.picks import Picker, needs_pick

    targets = [i for i, spec in enumerate(specs) if needs_pick(spec)]
    if not targets:
        if hooks.on_note is not None:
            hooks.on_note("--pick: every clip has a window already; they are used as given")
        return specs
    from prep.media.probe import probe
    from prep.pick.analyze import require_extras

    require_extras(specs[targets[0]].path)

    @contextmanager
    def progress(path: Path) -> Iterator[Callable[[int, int], None]]:
        report = hooks.on_pick_progress
        yield (lambda done, total: report(path.name, done, total)) if report else (lambda d, t: None)

    picker = Picker(cache_dir=settings.cache_dir / "picks", refresh=not options.use_cache,
                    progress=progress)
    out = list(specs)
    for index in targets:
        spec = specs[index]
        info = probe(spec.path)
        length = spec.window.length
        try:
            length_ms = length.resolve(info.fps) if length is not None else None
        except ValueError as err:
            raise UsageError(f"--length: {err}") from err
        picked = picker(spec.path, len(specs), length_ms, info=info)
        if picked is None:
            if hooks.on_note is not None:
                hooks.on_note(f"{spec}: too short to choose a window in; used whole")
            continue
        out[index] = picked.spec(spec)
        picks.append(picked)
        if hooks.on_pick is not None:
            hooks.on_pick(picked)
    return out


def _send(api: Client, result: GenerateResult, options: GenerateOptions, settings: Settings,
          hooks: Hooks, stage: Callable[[Stage], Any]) -> None:
    cache = UploadCache(settings.cache_dir / "uploads") if options.use_cache else None
    with stage("upload"):
        result.uploads = upload_files(api, result.prepared, mode=options.upload_mode, cache=cache,
                                      on_progress=hooks.on_upload_progress)

    def build() -> GenerationRequest:
        return GenerationRequest(
            prompt=options.prompt, video_urls=tuple(u.file_url for u in result.uploads),
            duration_s=options.duration_s, quality=options.quality,
            aspect_ratio=result.aspect_ratio, shot_type=options.shot_type,
            callback_url=options.callback_url)

    journal = settings.cache_dir / "outcomes"
    with stage("submit"):
        result.request = build()
        result.idempotency_key = _idempotency_key(journal, result.request, options.resubmit)
        try:
            task = api.create_task(result.request, idempotency_key=result.idempotency_key)
        except RequestRejected:
            # A cached URL that the server no longer takes (expired early, deleted, another
            # account's host) is uploaded afresh, once; a 400 proves nothing was created.
            if cache is None or not any(u.cached for u in result.uploads):
                raise
            for uploaded in result.uploads:
                if uploaded.cached:
                    cache.forget(uploaded.sha256, api.files_url)
            with stage("upload"):
                result.uploads = upload_files(api, result.prepared, mode=options.upload_mode,
                                              cache=cache, verify_cached=False,
                                              on_progress=hooks.on_upload_progress)
            result.request = build()
            result.idempotency_key = new_idempotency_key()
            task = api.create_task(result.request, idempotency_key=result.idempotency_key)
        if options.resubmit:
            outcomes.resolve(journal, result.idempotency_key)
        result.task = task
        result.replayed = task.replayed
    if hooks.on_task is not None:
        hooks.on_task(task)
    if not options.wait:
        result.stopped = "no-wait"
        return
    try:
        with stage("wait"):
            result.task = api.wait(task, poll=poll_policy(settings, options.deadline_s),
                                   on_update=hooks.on_task)
        with stage("download"):
            result.files = api.download_results(result.task, options.out_dir,
                                                on_progress=hooks.on_download_progress)
    except KeyboardInterrupt as err:
        raise Interrupted(
            f"stopped following task {task.id}; the task goes on at EvoLink",
            hint=f"pick it up with `prep task {task.id} --wait -o {options.out_dir}`",
        ) from err


def _refine_estimate(result: GenerateResult, done: Sequence[Any], planned: Sequence[Any],
                     options: GenerateOptions, settings: Settings, hooks: Hooks) -> None:
    """Bill the prepared files as measured (what is uploaded is what the server measures); the
    plan's figure was shown before encoding, this one is what EvoLink should reserve."""
    from dataclasses import replace

    bills = []
    for prepared, plan in zip(done, planned, strict=True):
        info = prepared.output_info
        bill = plan.bill()
        bills.append(replace(bill, duration_ms=info.duration_ms) if info is not None else bill)
    refined = billing.estimate_durations(bills, output_s=options.duration_s,
                                         quality=options.quality, prices=settings.prices)
    before = result.estimate
    result.estimate = refined
    if refined.credits_units != before.credits_units and hooks.on_note is not None:
        hooks.on_note(f"the prepared clips measure {refined.input_billed_ms / 1000:g} s of billed "
                      f"input: the estimate is {billing.credits_text(refined.credits_units)} "
                      f"credits (planned {billing.credits_text(before.credits_units)})")
    if options.max_cost_units is not None and refined.credits_units > options.max_cost_units:
        raise UsageError(
            f"the prepared job costs {billing.credits_text(refined.credits_units)} credits, more "
            f"than --max-cost {billing.credits_text(options.max_cost_units)}",
            hint="raise --max-cost, or lower --duration / --quality")


def _idempotency_key(journal: Path, request: GenerationRequest, resubmit: bool) -> str:
    """A fresh key, unless this exact request was sent before with no definite answer: then
    stop (the task may exist), or with --resubmit send it again under the same key."""
    earlier = outcomes.find(journal, request.body())
    if earlier is None:
        return new_idempotency_key()
    if resubmit:
        return earlier.idempotency_key
    raise OutcomeUnknownError(
        f"this exact request was sent at {earlier.sent_at} and its outcome is unknown "
        f"({earlier.reason}); the task may exist",
        hint="look for it in your EvoLink dashboard; if there is none, run again with --resubmit "
             f"(record: {earlier.path})",
    )
