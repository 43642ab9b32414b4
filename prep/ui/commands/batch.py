"""`prep batch`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from prep.errors import PrepError, UsageError
from prep.ui.endings import confirm_cost, exit_with, json_or_table
from prep.ui.options import (
    CONTEXT_SETTINGS,
    PrepGroup,
    check_reference_options,
    cli_settings,
    common_options,
    connect_timeout_option,
    extend_option,
    price_options,
    profile_option,
    reference_check_options,
    timeline_options,
    timeline_settings,
)

if TYPE_CHECKING:
    from prep.core.plan import Profile
    from prep.jobs.planning import BatchPlan

F = TypeVar("F", bound=Callable[..., Any])


class _BatchGroup(PrepGroup):
    """`prep batch MANIFEST ...` runs a batch; `prep batch status DIR` etc. are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_BatchGroup, context_settings=CONTEXT_SETTINGS)
def batch() -> None:
    """Many generate jobs from a CSV or JSONL manifest (or an editor's timeline): costed up
    front, pipelined, resumable.

    \b
    Examples:
        prep batch jobs.csv --dry-run                 # validate, probe, plan and cost; no network
        prep batch jobs.jsonl -o out/ --max-cost 500  # run (asks to confirm the total first)
        prep batch selects.edl --media /mnt/rushes --prompt "slow dolly in" -o out/
        prep batch status out/                        # where every job stands
        prep batch export out/ -o results.otio        # the results as a timeline for the editor
    """


@batch.command("run")
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", "output", metavar="DIR",
              help="Output folder: results, prepared clips and the journal (needed to run).")
@click.option("--dry-run", is_flag=True, help="Validate, probe, plan and cost every job; send nothing.")
@click.option("--max-cost", metavar="CREDITS", help="Refuse to run if the whole batch costs more.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Uploads, task queries and downloads at once.")
@click.option("--cpu-workers", type=click.IntRange(1, 16), default=None,
              help="Encode in a pool of N processes on this machine (default: 1 or 2 threads).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Encode on a Dask cluster: tcp://HOST:PORT, or local[:N] for N worker processes "
                   "here (also PREP_SCHEDULER or the config file). Needs the cluster extra.")
@click.option("--retry-failed", is_flag=True, help="Run failed jobs again (failed tasks are not billed).")
@click.option("--wait", "wait_lock", is_flag=True,
              help="If another prep run is working in DIR, wait for it to finish (else exit 8 at "
                   "once).")
@click.option("--resubmit-unknown", is_flag=True,
              help="Re-send create requests whose outcome is unknown, under the same Idempotency-Key "
                   "(a second bill if the server does not honour the key).")
@click.option("--upload-mode", type=click.Choice(["auto", "base64", "stream"]), default="auto",
              show_default=True,
              help="Files API endpoint for uploads. auto: base64, and the stream endpoint for a "
                   "file base64 refuses by its type; base64: strictly base64.")
@profile_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask to confirm the cost.")
@click.option("--test-fault", hidden=True, metavar="POINT[:JOB]",
              help="Tests only: the process kills itself (SIGKILL) at POINT.")
@click.option("--report", "report_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Also write the summary as one self-contained HTML file (contact sheets, costs, "
                   "results); with --dry-run, of the plan.")
@click.option("--check-credits/--no-check-credits", default=True, show_default=True,
              help="Read the key's balance (GET /v1/credits) first and stop (exit 5) if the jobs "
                   "still to run cost more.")
@click.option("--group", type=click.Choice(["event", "track"]), default="event", show_default=True,
              help="Timeline files: one job per event, or each video track's events (1-3) as the "
                   "clips of one job.")
@click.option("--prompt", "default_prompt", metavar="TEXT",
              help="Timeline files: the prompt of every job whose event has no comment or marker "
                   "note.")
@timeline_options
@reference_check_options
@extend_option
@price_options
@connect_timeout_option
@common_options
def batch_run(manifest: str, output: str | None, dry_run: bool, max_cost: str | None,
              concurrency: int, cpu_workers: int | None, scheduler: str | None, retry_failed: bool,
              wait_lock: bool, resubmit_unknown: bool, upload_mode: str, profile: Profile | None,
              yes: bool, test_fault: str | None, report_file: str | None, extend: Any,
              check_credits: bool, group: str, default_prompt: str | None,
              media_dirs: tuple[str, ...], map_paths: tuple[str, ...],
              require: str | None, no_check: bool, prices: dict[str, str],
              json_: bool, quiet: bool, verbose: bool) -> None:
    """Run (or with --dry-run, cost) every job of MANIFEST; run it again to resume.

    \b
    MANIFEST is CSV (columns name, clips, prompt, and optionally duration, quality,
    aspect_ratio, shot_type, callback_url, pick, model, generate_audio; clips separated by ';')
    or JSONL (one object per line, same fields; clips a list), or an editor's timeline (.otio,
    .edl, .fcpxml, .fcpxmld, FCP 7 .xml; the timeline extra): each event on a video track is
    a job of its source range, its media found by path or by name (--media, --map-path), its
    prompt from the event's comment or marker (else --prompt). Every row is checked before
    anything runs. A job with pick=true gets a picked window (as `prep pick` chooses) for each
    clip given without one; model=wan2.6-reference-video-flash runs the cheaper model, and
    generate_audio=false (flash only) leaves out the audio for half its price.
    Every clip's window is checked as a reference, as `prep check` does, and the warnings are
    shown before the cost (--require good|fair refuses jobs below it, --no-check skips it).
    Results are DIR/NAME.mp4; `prep batch status DIR` shows where every job stands.
    """

    from prep.core.billing import credits_text, parse_credits
    from prep.jobs.cluster import parse_scheduler
    from prep.jobs.planning import check_budget
    from prep.ui import render

    settings = cli_settings(**prices)
    budget = parse_credits(max_cost, "--max-cost") if max_cost is not None else None
    if not dry_run and not output:
        raise UsageError("give an output folder with -o DIR, or --dry-run to cost the batch only")
    where = scheduler or settings.scheduler
    cluster = parse_scheduler(where) if where else None
    if cluster is not None and cpu_workers is not None:
        raise UsageError("give --scheduler or --cpu-workers, not both",
                         hint="--cpu-workers N encodes in N processes here; --scheduler on a cluster")
    check_reference_options(require, no_check)
    plan = _plan(manifest, output, settings, extend, require=require, no_check=no_check,
                 json_=json_, quiet=quiet, timeline=timeline_settings(
                     media_dirs, map_paths, group=group, prompt=default_prompt, quiet=quiet))
    if dry_run:
        json_or_table(plan.as_dict(), lambda to_stderr: render.batch_cost_table(plan, to_stderr=to_stderr),
                      json_=json_, quiet=quiet)
        if report_file:
            from prep.ui.report import report_from_plan

            _write_report(report_from_plan(plan), report_file, quiet)
        check_budget(plan, budget)
        return
    check_budget(plan, budget)
    assert output is not None
    from prep.jobs.engine import BatchOptions, default_cpu_workers

    options = BatchOptions(output_dir=Path(output), concurrency=concurrency,
                           cpu_workers=cpu_workers or default_cpu_workers(),
                           retry_failed=retry_failed, resubmit_unknown=resubmit_unknown,
                           wait_lock=wait_lock,
                           upload_mode=upload_mode, max_cost_units=budget,  # type: ignore[arg-type]
                           profile=profile,
                           fault=test_fault, check_credits=False)  # checked here, before the prompt
    if not quiet:
        render.batch_cost_table(plan, to_stderr=True)
    if check_credits:
        _check_balance(plan, settings, Path(output), retry_failed)
    confirm_cost(f"Run {len(plan.jobs)} jobs for up to {credits_text(plan.credits_units)} credits "
                 "(jobs already submitted are not paid again)?", yes=yes)
    if resubmit_unknown and not quiet:
        render.warn("--resubmit-unknown re-sends requests whose outcome is unknown under the same "
                    "Idempotency-Key; if EvoLink does not honour the key, such a job may be billed twice")
    try:
        result = _run(plan, settings, options, extend, cluster, where, cpu_workers, quiet)
    except BaseException:
        # Also after an interruption or an error: the report shows what the journal holds.
        if report_file:
            with contextlib.suppress(PrepError):
                _journal_report(Path(output), report_file, quiet, plan)
        raise
    if report_file:
        _journal_report(Path(output), report_file, quiet, plan)
    json_or_table(result.as_dict(), lambda to_stderr: render.batch_summary(result, to_stderr=to_stderr),
                  json_=json_, quiet=quiet)
    exit_with([result.exit_code])


def _plan(manifest: str, output: str | None, settings: Any, extend: Any, *, require: str | None,
          no_check: bool, json_: bool, quiet: bool, timeline: Any) -> BatchPlan:
    """The manifest (or timeline) read, probed, picked, checked and costed; its problems listed
    (and answered in JSON with --json) when it has any."""
    from prep.jobs.manifest import ManifestError
    from prep.jobs.planning import plan_batch
    from prep.jobs.reconcile import read_journaled_picks
    from prep.jobs.timeline import load_jobs
    from prep.pick.check import CheckCache, Checker
    from prep.pick.picker import Picker
    from prep.ui import render

    checker = None
    if not no_check:
        checker = Checker(required=require, on_note=render.note,  # type: ignore[arg-type]
                          on_report=lambda report: render.job_check(report, quiet=quiet),
                          progress=lambda path: render.progress_bar(f"checking {path.name}",
                                                                    enabled=not quiet),
                          ffmpeg=settings.ffmpeg, cache=CheckCache(settings.cache_dir / "checks"))
        checker = checker if checker.available(manifest) else None
    picker = Picker(cache_dir=settings.cache_dir / "picks",
                    known=read_journaled_picks(Path(output)) if output else None,
                    progress=lambda path: render.progress_bar(f"picking a window in {path.name}",
                                                              enabled=not quiet),
                    for_check=checker is not None, ffmpeg=settings.ffmpeg)
    try:
        plan = plan_batch(load_jobs(manifest, timeline), prices=settings.prices, extend=extend,
                          picker=picker, checker=checker,
                          references_dir=Path(output) if output else None, ffmpeg=settings.ffmpeg)
    except ManifestError as exc:
        if json_:
            render.json_out({"manifest": exc.source, "problems": [
                {"line": p.line, "name": p.name or None, "message": p.message,
                 "exit_code": p.exit_code} for p in exc.problems]})
        render.manifest_problems(exc.source, exc.problems)
        raise
    render.batch_picks(plan, to_stderr=True, quiet=quiet)
    if not quiet:
        render.batch_checks(plan)
    return plan


def _run(plan: BatchPlan, settings: Any, options: Any, extend: Any, cluster: Any,
         where: str | None, cpu_workers: int | None, quiet: bool) -> Any:
    """The batch on the engine: encoding here or on the cluster, progress on stderr. Each Dask
    worker is vetted with its own ffmpeg when it joins; one that leaves is a note, kept in the
    journal."""
    from prep.jobs.cluster import check_workers, cpu_executor, watch_workers
    from prep.jobs.engine import RunHooks, run_batch
    from prep.ui import render

    lost: list[str] = []
    with cpu_executor(cluster, processes=cpu_workers) as (executor, client):
        watch: Any = contextlib.nullcontext()
        if client is not None:
            # Each worker is vetted with its own ffmpeg (not this machine's path).
            check_workers(client, [c.spec.path for j in plan.jobs for c in j.clips],
                          options.output_dir)
            workers = len(client.scheduler_info().get("workers", {}))
            render.note(f"encoding on {workers} Dask worker{'s' if workers != 1 else ''} "
                        f"({where}); dashboard: {client.dashboard_link}")

            def worker_lost(address: str) -> None:
                lost.append(address)
                render.warn(f"Dask worker {address} left the cluster: its encodes run again "
                            "on the others")

            watch = watch_workers(client, worker_lost)
        with watch, render.BatchProgress([j.name for j in plan.jobs], enabled=not quiet) as progress:
            hooks = RunHooks(on_state=progress.state, on_progress=progress.progress,
                             on_warning=render.warn)
            result = run_batch(plan, settings, options, extend=extend, hooks=hooks,
                               cpu_executor=executor)
    if lost:
        _journal_lost_workers(options.output_dir, lost)
    return result


@batch.command("resolve")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, path_type=str))
@click.argument("job")
@click.option("--task-id", metavar="ID", help="The task this job's request made (from the dashboard).")
@click.option("--not-created", is_flag=True,
              help="You checked: the request made no task; the next run submits the job again.")
@common_options
def batch_resolve(folder: str, job: str, task_id: str | None, not_created: bool, json_: bool,
                  quiet: bool, verbose: bool) -> None:
    """Settle a job whose create request had an unknown outcome (prep never guesses).

    \b
    Examples:
        prep batch resolve out/ intro --task-id task-unified-1757169743-7cvnl5zw
        prep batch resolve out/ intro --not-created
    """

    from prep.jobs.reconcile import resolve_unknown
    from prep.ui import render

    client = None
    if task_id is not None:
        from prep.api.client import Client

        settings = cli_settings()
        client = Client.from_settings(settings)
    try:
        message = resolve_unknown(Path(folder), job, task_id=task_id,
                                  not_created=not_created, client=client)
    finally:
        if client is not None:
            client.close()
    if json_:
        render.json_out({"job": job, "resolved": True, "message": message})
    elif not quiet:
        render.note(message)


def _check_balance(plan: Any, settings: Any, output: Path, retry_failed: bool) -> None:
    """Exit 5 before anything is prepared when the jobs still to run cost more than the key has."""
    from prep.api.client import Client
    from prep.jobs.budget import check_balance, jobs_to_pay
    from prep.ui import render

    if not settings.api_key:
        return  # run_batch says so, with its hint
    with Client.from_settings(settings) as client:
        check_balance(jobs_to_pay(plan, output, retry_failed=retry_failed), client,
                      on_note=render.note, batch=len(plan.jobs) > 1)


def _write_report(report: Any, report_file: str, quiet: bool) -> None:
    from prep.ui import render
    from prep.ui.report import write_report

    for warning in write_report(report, report_file, ffmpeg=cli_settings().ffmpeg):
        render.warn(warning)
    if not quiet:
        render.note(f"report: {report_file}")


def _journal_report(folder: Any, report_file: str, quiet: bool, plan: Any = None) -> None:
    from prep.jobs.journal import Journal
    from prep.jobs.layout import journal_path
    from prep.ui.report import plan_checks, report_from_journal

    if not journal_path(folder).is_file():
        return
    checks = plan_checks(plan) if plan is not None else None
    with Journal.open(folder, create=False) as journal:
        report = report_from_journal(journal, checks=checks)
    _write_report(report, report_file, quiet)


@batch.command("status")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, path_type=str))
@click.option("--report", "report_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Also write the batch as one self-contained HTML file (contact sheets, costs, "
                   "results).")
@common_options
def batch_status_cmd(folder: str, report_file: str | None, json_: bool, quiet: bool,
                     verbose: bool) -> None:
    """Where every job of the batch in DIR stands, from its journal (no network).

    \b
    Examples:
        prep batch status out/ --json
        prep batch status out/ --report out/report.html
    """
    import time

    from prep.jobs.journal import Journal
    from prep.jobs.status import batch_status
    from prep.ui import render

    with Journal.open(folder, create=False) as journal:
        rows = batch_status(journal, now=time.time())
    if json_:
        render.json_out({"folder": folder, "jobs": [r.as_dict() for r in rows]})
    else:
        render.batch_status_table(rows)
    if report_file:
        from pathlib import Path

        _journal_report(Path(folder), report_file, quiet)


def _journal_lost_workers(folder: Path, lost: list[str]) -> None:
    """Keep the Dask workers lost during the run in the output folder's journal (after the run,
    which holds the journal while it goes)."""
    import time

    from prep.jobs.journal import Journal

    with Journal.open(folder, create=False) as journal:
        earlier = journal.meta("lost_workers")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lines = [*(earlier.splitlines() if earlier else []),
                 *(f"{stamp} {address}: left the cluster; its encodes ran again elsewhere"
                   for address in lost)]
        journal.set_meta("lost_workers", "\n".join(lines))


@batch.command("export")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, path_type=str))
@click.option("-o", "--output", "output", metavar="FILE", required=True,
              help="The timeline to write: .otio, .edl, .fcpxml or .xml (FCP 7 XML), by suffix.")
@common_options
def batch_export(folder: str, output: str, json_: bool, quiet: bool, verbose: bool) -> None:
    """Write the batch's results in DIR as a timeline to import into the editing application.

    One video track of the generated clips, each where its source event sat when the batch came
    from a timeline (else one after another), pointing at the downloaded file; prompt, model,
    task id and credits are in each clip's metadata (a marker in EDL and XML). Needs the
    timeline extra.

    \b
    Examples:
        prep batch export out/ -o results.otio
        prep batch export out/ -o results.xml         # for Premiere or Resolve
    """
    from prep.jobs.timeline import export_results
    from prep.ui import render

    clips = export_results(Path(folder), Path(output), on_note=None if quiet else render.note)
    if json_:
        render.json_out({"folder": folder, "timeline": output,
                         "clips": [c.as_dict() for c in clips]})
    elif not quiet:
        render.note(f"{output}: {len(clips)} result{'s' if len(clips) != 1 else ''} on one track")
