"""The batch report: one self-contained HTML file with every job's state, clips, cost and result.

`report_from_journal` describes a batch as its journal records it (after a run, or any time with
`prep batch status DIR --report FILE`); `report_from_plan` describes a dry run's plan. `write_report`
renders either to HTML: a contact sheet of each clip (of the prepared file once there is one, else
of the window in its source), and a frame of each downloaded result, all embedded as `data:` URIs,
with inline CSS and no scripts, so the file can be mailed or archived on its own. Every text is
escaped. Pictures need the `pick` extra (Pillow, numpy); without it the report has no pictures and
says how to get them. A picture that cannot be drawn (a file gone or unreadable) is left out with a
note, and never stops the report. The file is written atomically (temp file, then rename).
"""

from __future__ import annotations

import base64
import contextlib
import html
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prep.core import billing
from prep.core.clipspec import spec_text
from prep.errors import MediaError, PrepError
from prep.files import write_text_atomic

if TYPE_CHECKING:
    from prep.jobs.journal import Journal
    from prep.jobs.planning import BatchPlan

__all__ = ["ReportClip", "ReportJob", "plan_checks", "report_from_journal", "report_from_plan",
           "write_report"]

# Contact sheets in the report: one row of small thumbnails per clip.
SHEET_COUNT = 6
SHEET_THUMB_WIDTH = 120
RESULT_THUMB_WIDTH = 320
_VERDICT_COLOURS = {"good": "#2f9e44", "fair": "#f08c00", "poor": "#e03131"}
_STATE_COLOURS = {"done": "#2f9e44", "failed": "#e03131", "unknown": "#ae3ec9", "running": "#1c7ed6",
                  "completed": "#1c7ed6", "submitting": "#f08c00", "planned": "#495057"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportClip:
    """One clip of a job: where it comes from, the window used, and what was made of it."""

    source: str
    start_ms: int
    end_ms: int
    prepared: str | None = None
    picked: bool = False
    pick_usable: bool | None = None
    pick_warnings: tuple[str, ...] = ()
    verdict: str | None = None  # the reference check's (`prep check`), when the clip was checked
    findings: tuple[str, ...] = ()  # the checks that did not pass: "fail one_person: ..."

    @property
    def spec(self) -> str:
        """`SOURCE@START-END`."""
        return spec_text(self.source, self.start_ms, self.end_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportJob:
    """One job as the report shows it."""

    name: str
    line: int
    state: str
    prompt: str = ""
    quality: str = ""
    duration_s: int | None = None
    aspect_ratio: str = ""
    clips: tuple[ReportClip, ...] = ()
    estimate_units: int | None = None
    measured_units: int | None = None
    credits_reserved_units: int | None = None
    task_id: str | None = None
    result_path: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What `write_report` draws: the jobs and a few facts about the batch."""

    title: str
    jobs: tuple[ReportJob, ...]
    facts: Mapping[str, str] = field(default_factory=dict)


CheckKey = tuple[str, int, int]  # resolved source, start_ms, end_ms


def plan_checks(plan: BatchPlan) -> dict[CheckKey, Any]:
    """The reference checks of a plan's clips, by clip (for `report_from_journal`)."""
    found: dict[CheckKey, Any] = {}
    for job in plan.jobs:
        for index, clip in enumerate(job.clips):
            report = job.check_of(index)
            if report is not None:
                found[(str(clip.spec.path.resolve()), clip.window.start_ms,
                       clip.window.end_ms)] = report
    return found


def _check_fields(report: Any) -> dict[str, Any]:
    if report is None:
        return {}
    return {"verdict": report.verdict,
            "findings": tuple(f"{c.status} {c.name}: {c.message}" for c in report.reasons)}


def report_from_journal(journal: Journal, *, title: str = "",
                        checks: Mapping[CheckKey, Any] | None = None) -> Report:
    """The batch as its journal records it; `checks` (from `plan_checks`) adds the reference
    check of each clip the run checked."""
    from prep.jobs.reconcile import journaled_picks
    from prep.jobs.status import batch_status

    clips = {c.key: c for c in journal.clips()}
    picks = list(journaled_picks(journal).values())
    statuses = {s.name: s for s in batch_status(journal, now=time.time())}
    jobs: list[ReportJob] = []
    for record in journal.jobs():
        spec = record.spec
        spec_clips = spec.get("clips") or []
        shown: list[ReportClip] = []
        for index, key in enumerate(record.clip_keys):
            clip = clips.get(key)
            if clip is None:
                continue
            given = spec_clips[index] if index < len(spec_clips) else {}
            picked = bool(spec.get("pick")) and given.get("start") is None and given.get("end") is None
            pick = _find_pick(picks, clip.source, clip.start_ms, clip.end_ms) if picked else None
            shown.append(ReportClip(
                source=clip.source, start_ms=clip.start_ms, end_ms=clip.end_ms,
                prepared=clip.prepared_path, picked=picked,
                pick_usable=None if pick is None else bool(pick.get("usable")),
                pick_warnings=tuple(str(w) for w in (pick or {}).get("warnings", ())),
                **_check_fields((checks or {}).get((clip.source, clip.start_ms, clip.end_ms)))))
        status = statuses.get(record.name)
        jobs.append(ReportJob(
            name=record.name, line=record.line, state=record.state,
            prompt=str(spec.get("prompt") or ""), quality=str(spec.get("quality") or ""),
            duration_s=spec.get("duration"), aspect_ratio=str(spec.get("aspect_ratio") or ""),
            clips=tuple(shown), estimate_units=record.estimate_units,
            measured_units=record.measured_units, credits_reserved_units=record.credits_reserved_units,
            task_id=record.task_id, result_path=record.result_path,
            error=status.error if status is not None else record.error))
    facts = {"manifest": journal.meta("manifest") or "", "journal": str(journal.path)}
    return Report(title=title or f"prep batch: {journal.path.parent}", jobs=tuple(jobs),
                  facts={k: v for k, v in facts.items() if v})


def _find_pick(picks: Sequence[Mapping[str, Any]], source: str, start_ms: int,
               end_ms: int) -> Mapping[str, Any] | None:
    for pick in picks:
        with contextlib.suppress(OSError, TypeError, ValueError):
            if (pick.get("start_ms"), pick.get("end_ms")) == (start_ms, end_ms) and \
                    str(Path(str(pick.get("path"))).resolve()) == source:
                return pick
    return None


def report_from_plan(plan: BatchPlan, *, title: str = "") -> Report:
    """A dry run's plan: each job's clips and windows (picked ones marked), their reference
    checks, and its estimate."""
    jobs = []
    for job in plan.jobs:
        shown = []
        for index, clip in enumerate(job.clips):
            picked = job.pick_of(index)
            shown.append(ReportClip(
                source=str(clip.spec.path), start_ms=clip.window.start_ms, end_ms=clip.window.end_ms,
                picked=picked is not None, pick_usable=None if picked is None else picked.usable,
                pick_warnings=() if picked is None else picked.warnings,
                **_check_fields(job.check_of(index))))
        spec, request = job.job, job.request
        jobs.append(ReportJob(name=spec.name, line=spec.line, state="planned",
                              prompt=request.prompt or "", quality=request.quality,
                              duration_s=request.duration_s,
                              aspect_ratio=job.aspect_ratio, clips=tuple(shown),
                              estimate_units=job.estimate.credits_units))
    return Report(title=title or f"prep batch (dry run): {plan.manifest.source}", jobs=tuple(jobs),
                  facts={"manifest": plan.manifest.source, "prices": plan.prices.label})


# -- pictures --------------------------------------------------------------------------------------


class _Pictures:
    """Draws pictures as data: URIs, each distinct one once; failures become notes."""

    def __init__(self, enabled: bool, ffmpeg: str | None = None) -> None:
        self.enabled = enabled
        self.ffmpeg = ffmpeg
        self._done: dict[tuple[str, int, int, str], tuple[str | None, str | None]] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="prep-report-") if enabled else None

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def _memo(self, key: tuple[str, int, int, str],
              draw: Callable[[Path], Path]) -> tuple[str | None, str | None]:
        if key not in self._done:
            assert self._tmp is not None
            png = Path(self._tmp.name) / f"{len(self._done)}.png"
            try:
                self._done[key] = (_data_uri(draw(png)), None)
            except (PrepError, OSError, ValueError) as err:
                self._done[key] = (None, getattr(err, "message", None) or str(err))
        return self._done[key]

    def sheet(self, clip: ReportClip) -> tuple[str | None, str | None]:
        """(data URI, None), or (None, why there is no picture)."""
        if not self.enabled:
            return None, None
        from prep.ui.pictures import contact_sheet

        if clip.prepared and Path(clip.prepared).is_file():
            prepared = Path(clip.prepared)
            return self._memo((clip.prepared, 0, 0, "sheet"), lambda png: contact_sheet(
                prepared, png, count=SHEET_COUNT, columns=SHEET_COUNT,
                thumb_width=SHEET_THUMB_WIDTH, title=f"{prepared.name} (prepared)",
                ffmpeg=self.ffmpeg))
        source = Path(clip.source)
        if not source.is_file():
            return None, f"{clip.source}: no such file"
        return self._memo((clip.source, clip.start_ms, clip.end_ms, "sheet"), lambda png: contact_sheet(
            source, png, count=SHEET_COUNT, columns=SHEET_COUNT, thumb_width=SHEET_THUMB_WIDTH,
            start_ms=clip.start_ms, end_ms=clip.end_ms, title=source.name, ffmpeg=self.ffmpeg))

    def frame(self, video: str) -> tuple[str | None, str | None]:
        """A frame from the middle of `video`, as a data URI."""
        if not self.enabled or not Path(video).is_file():
            return None, None

        def draw(png: Path) -> Path:
            from PIL import Image

            from prep.media.frames import grab_frames
            from prep.media.probe import probe

            info = probe(video)
            middle = (info.video_duration_ms or info.duration_ms) // 2
            thumbs = grab_frames(video, [middle], width=RESULT_THUMB_WIDTH, info=info,
                                 ffmpeg=self.ffmpeg)
            if not thumbs:
                raise ValueError(f"{video}: no frame could be read")
            Image.fromarray(thumbs[0].rgb).save(png, format="PNG", optimize=True)
            return png

        return self._memo((video, 0, 0, "frame"), draw)


def _data_uri(png: Path) -> str:
    """The picture as a PNG data: URI, in 256 colours: a third of the bytes, and thumbnails
    this small show no difference."""
    import io

    from PIL import Image

    with Image.open(png) as image:
        buffer = io.BytesIO()
        image.convert("RGB").quantize(colors=256).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# -- HTML ------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;
color:#212529;background:#f8f9fa;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0}
.facts,.muted{color:#6c757d}.facts span{margin-right:18px}
table.sum{border-collapse:collapse;margin:16px 0;background:#fff}
table.sum td,table.sum th{border:1px solid #dee2e6;padding:4px 10px;text-align:left}
td.num,th.num{text-align:right}
section.job{background:#fff;border:1px solid #dee2e6;border-radius:6px;padding:14px 16px;margin:14px 0}
.head{display:flex;gap:12px;align-items:baseline;flex-wrap:wrap}
.state{color:#fff;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:10px 0}
dt{color:#6c757d}dd{margin:0;overflow-wrap:anywhere}
.clip{margin:10px 0}.clip code{overflow-wrap:anywhere}
img{max-width:100%;height:auto;border-radius:4px;display:block;margin-top:4px}
.check ul{margin:2px 0 0;padding-left:20px}
.warn{color:#d9480f}.err{color:#c92a2a}.note{color:#6c757d;font-style:italic}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _credits(units: int | None) -> str:
    return "–" if units is None else billing.credits_text(units)


def _reserved(units: int | None) -> str:
    return "–" if units is None else billing.credits_text(units)


def _render(report: Report, pictures: _Pictures, now: str, missing_note: str | None) -> str:
    jobs = report.jobs
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.state] = counts.get(job.state, 0) + 1
    estimate = sum(j.estimate_units or 0 for j in jobs)
    any_reserved = any(j.credits_reserved_units is not None for j in jobs)
    reserved = sum(j.credits_reserved_units or 0 for j in jobs) if any_reserved else None
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(report.title)}</h1>",
        '<p class="facts">' + "".join(f"<span>{_e(k)}: {_e(v)}</span>" for k, v in report.facts.items())
        + f"<span>written {_e(now)}</span></p>",
    ]
    if missing_note:
        parts.append(f'<p class="note">{_e(missing_note)}</p>')
    parts.append('<table class="sum"><tr><th>job</th><th>state</th><th class="num">clips</th>'
                 '<th class="num">estimate</th><th class="num">reserved</th><th>result / error</th></tr>')
    for job in jobs:
        outcome = job.result_path or job.error or ""
        parts.append(f'<tr><td><a href="#job-{_e(_anchor(job.name))}">{_e(job.name)}</a></td>'
                     f"<td>{_e(job.state)}</td><td class=\"num\">{len(job.clips)}</td>"
                     f'<td class="num">{_e(_credits(job.estimate_units))}</td>'
                     f'<td class="num">{_e(_reserved(job.credits_reserved_units))}</td>'
                     f'<td>{_e(outcome)}</td></tr>')
    parts.append(f'<tr><th>total ({len(jobs)} jobs)</th><th>'
                 + _e(", ".join(f"{n} {s}" for s, n in counts.items()))
                 + f'</th><th></th><th class="num">{_e(_credits(estimate))}</th>'
                 f'<th class="num">{_e(_reserved(reserved))}</th><th></th></tr></table>')
    for job in jobs:
        parts.append(_job_html(job, pictures))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _anchor(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def _job_html(job: ReportJob, pictures: _Pictures) -> str:
    colour = _STATE_COLOURS.get(job.state, "#868e96")
    out = [f'<section class="job" id="job-{_e(_anchor(job.name))}"><div class="head">'
           f"<h2>{_e(job.name)}</h2>"
           f'<span class="state" style="background:{colour}">{_e(job.state)}</span>'
           f'<span class="muted">manifest line {job.line}</span></div><dl>']
    out.extend(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _job_facts(job) if v)
    if job.error:
        out.append(f'<dt>error</dt><dd class="err">{_e(job.error)}</dd>')
    out.append("</dl>")
    out.extend(_clip_html(number, clip, pictures) for number, clip in enumerate(job.clips, start=1))
    if job.result_path:
        uri, why = pictures.frame(job.result_path)
        if uri:
            out.append(f'<div class="clip">result <code>{_e(job.result_path)}</code>'
                       f'<img src="{uri}" alt="a frame of the result of {_e(job.name)}"></div>')
        elif why:
            out.append(f'<div class="note">no picture of the result: {_e(why)}</div>')
    out.append("</section>")
    return "".join(out)


def _job_facts(job: ReportJob) -> list[tuple[str, str]]:
    """The job's rows of facts: prompt, output, cost, task and result (empty ones are left out)."""
    settings = [f"{job.duration_s} s" if job.duration_s else "", job.quality, job.aspect_ratio]
    cost = f"estimate {_credits(job.estimate_units)} credits"
    if job.measured_units is not None and job.measured_units != job.estimate_units:
        cost += f" (as prepared: {_credits(job.measured_units)})"
    cost += f" · reserved by EvoLink: {_reserved(job.credits_reserved_units)}"
    return [("prompt", job.prompt), ("output", " · ".join(s for s in settings if s)),
            ("cost", cost), ("task", job.task_id or ""), ("result", job.result_path or "")]


def _clip_html(number: int, clip: ReportClip, pictures: _Pictures) -> str:
    """One clip of a job: its spec, the pick's warnings, the reference check and its sheet."""
    label = f"clip {number}: <code>{_e(clip.spec)}</code>"
    if clip.picked:
        label += ' <span class="muted">(window picked)</span>'
    out = [f'<div class="clip">{label}']
    if clip.picked and clip.pick_usable is False:
        for warning in clip.pick_warnings or ("the billed head seldom shows a face while someone "
                                              "speaks",):
            out.append(f'<div class="warn">pick: {_e(warning)}</div>')
    if clip.verdict is not None:
        out.append(_check_html(clip.verdict, clip.findings))
    uri, why = pictures.sheet(clip)
    if uri:
        out.append(f'<img src="{uri}" alt="contact sheet of {_e(clip.spec)}">')
    elif why:
        out.append(f'<div class="note">no picture: {_e(why)}</div>')
    out.append("</div>")
    return "".join(out)


def _check_html(verdict: str, findings: Sequence[str]) -> str:
    colour = _VERDICT_COLOURS.get(verdict, "#868e96")
    html = (f'<div class="check">reference check: <span class="state" '
            f'style="background:{colour}">{_e(verdict)}</span>')
    if findings:
        html += "<ul>" + "".join(f'<li class="{"err" if f.startswith("fail") else "warn"}">{_e(f)}</li>'
                                 for f in findings) + "</ul>"
    else:
        html += ' <span class="muted">every check passed</span>'
    return html + "</div>"


def write_report(report: Report, path: Path | str, *, pictures: bool = True,
                 ffmpeg: str | None = None) -> list[str]:
    """Write `report` as self-contained HTML to `path`, atomically; returns warnings for people.
    The pictures' frames are decoded with the configured `ffmpeg` (`Settings.ffmpeg`).

    MediaError (exit 3) when the file cannot be written.
    """
    target = Path(path)
    warnings: list[str] = []
    missing_note = None
    if pictures:
        try:
            from prep.ui.pictures import require_extras

            require_extras(target)
        except MediaError as err:
            pictures = False
            missing_note = f"no pictures: they need Pillow and numpy ({err.hint})"
            warnings.append(f"{target}: written without pictures; {err.hint} to have them")
    drawer = _Pictures(pictures, ffmpeg)
    try:
        now = datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        text = _render(report, drawer, now, missing_note)
    finally:
        drawer.close()
    try:
        write_text_atomic(target, text)
    except OSError as err:
        raise MediaError(target, f"cannot be written ({err.strerror or err})",
                         hint="choose a folder you can write to") from err
    return warnings
