"""Everything prep shows to people: tables, JSON, messages and progress, via rich.

The only module that formats for humans. With --json, stdout carries only JSON; tables, notes and
progress go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING, Any

from .billing import credits_text
from .errors import PrepError
from .timecode import format_ms

if TYPE_CHECKING:
    from rich.console import Console

    from .billing import Estimate
    from .media import ClipInfo, Verdict

ISSUES_URL = "https://github.com/evolink-prep/prep/issues"


@cache
def out() -> Console:
    """Console on stdout."""
    from rich.console import Console

    # Piped output is not squeezed into 80 columns: wide tables stay one row per clip.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


@cache
def err() -> Console:
    """Console on stderr, for messages, notes and progress."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def json_out(data: Any) -> None:
    """Machine output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def error(exc: PrepError, *, verbose: bool = False) -> None:
    """One line on stderr: what is wrong, where, and what to do."""
    line = f"error: {exc.message}"
    if exc.hint:
        line += f" ({exc.hint})"
    err().print(_escape(line), style="red", soft_wrap=True)
    detail = getattr(exc, "detail", "")
    if verbose and detail:
        err().print(_escape(detail), style="dim", soft_wrap=True)


def bug(exc: BaseException) -> None:
    """An unexpected exception: say it is a bug and where to report it."""
    err().print(
        _escape(f"error: internal error ({type(exc).__name__}: {exc}); this is a bug in prep, "
                f"please report it at {ISSUES_URL} (set PREP_DEBUG=1 for the traceback)"),
        style="red", soft_wrap=True,
    )


def warn(message: str) -> None:
    """A warning on stderr."""
    err().print(_escape(f"warning: {message}"), style="yellow", soft_wrap=True)


def note(message: str) -> None:
    """A note on stderr."""
    err().print(_escape(message), style="dim", soft_wrap=True)


def _size(num: int) -> str:
    if num >= 1_000_000:
        return f"{num / 1_000_000:.1f} MB"
    if num >= 1_000:
        return f"{num / 1_000:.0f} kB"
    return f"{num} B"


def _fps(fps: Fraction | None) -> str:
    if fps is None:
        return "?"
    return f"{float(fps):.3f}".rstrip("0").rstrip(".")


def _durations(info: ClipInfo) -> str:
    parts = [format_ms(info.duration_ms)]
    extra = [f"{k}{format_ms(v)}" for k, v in (("v ", info.video_duration_ms),
                                                  ("a ", info.audio_duration_ms))
             if v is not None and abs(v - info.duration_ms) >= 10]
    return " ".join(parts + ([f"({', '.join(extra)})"] if extra else [])) + " s"


def probe_table(results: Sequence[tuple[ClipInfo, Verdict]], *, to_stderr: bool = False) -> None:
    """The people's view of `prep probe`."""
    from rich.table import Table

    console = err() if to_stderr else out()
    table = Table(show_lines=False, pad_edge=False, box=None, header_style="bold")
    for column in ("clip", "duration", "size", "container", "video", "audio", "API"):
        table.add_column(column, overflow="fold")
    for info, verdict in results:
        width, height = info.display_size
        video = [info.video_codec, f"{width}x{height}", f"{_fps(info.fps)} fps"]
        if info.vfr:
            video.append("VFR")
        if info.bit_depth and info.bit_depth != 8:
            video.append(f"{info.bit_depth}-bit")
        if info.chroma_subsampling and info.chroma_subsampling != "4:2:0":
            video.append(info.chroma_subsampling)
        if info.hdr:
            video.append(info.hdr)
        if info.interlaced:
            video.append("interlaced")
        if info.rotation:
            video.append(f"rot {info.rotation}")
        audio = (f"{info.audio_codec} {info.audio_channels or '?'}ch {info.audio_rate or '?'} Hz"
                 if info.has_audio else "none")
        verdict_text = "[green]ok[/]" if verdict.compliant else "[red]refused[/]"
        table.add_row(_escape(str(info.path)), _durations(info), _size(info.size_bytes),
                      info.container, _escape(" ".join(video)), _escape(audio), verdict_text)
    console.print(table)
    for info, verdict in results:
        lines = [f"  [red]x[/] {_escape(p)}" for p in verdict.problems]
        lines += [f"  [yellow]-[/] {_escape(a)}" for a in verdict.advice]
        if lines:
            console.print(f"[bold]{_escape(str(info.path))}[/]")
            for line in lines:
                console.print(line, soft_wrap=True)


def estimate_table(est: Estimate, *, to_stderr: bool = False) -> None:
    """The people's view of `prep estimate`."""
    from rich.table import Table

    console = err() if to_stderr else out()
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("clip", overflow="fold")
    table.add_column("planned", justify="right")
    table.add_column("billed", justify="right")
    for clip in est.clips:
        table.add_row(_escape(clip.label), f"{format_ms(clip.duration_ms)} s",
                      f"{format_ms(clip.billed_ms)} s")
    table.add_row("[bold]input[/]", "", f"[bold]{format_ms(est.input_billed_ms)} s[/]")
    table.add_row("[bold]output[/]", "", f"[bold]{format_ms(est.output_billed_ms)} s[/]")
    table.add_row("[bold]total[/]", "", f"[bold]{format_ms(est.total_billed_ms)} s[/]")
    console.print(table)
    console.print(
        f"[bold]{credits_text(est.credits_units)} credits[/] at {est.quality} "
        f"(about ${float(est.usd):.2f}); "
        + ", ".join(f"{q}: {credits_text(est.credits_at(q))}" for q in ("720p", "1080p")),
        soft_wrap=True,
    )
    console.print(f"[dim]prices: {_escape(est.prices.label)}[/]", soft_wrap=True)
    notes: Iterable[str] = [n for c in est.clips for n in c.notes] + list(est.notes)
    for line in notes:
        console.print(f"  - {_escape(line)}", soft_wrap=True)


def pick_result(result: Any, *, quiet: bool = False) -> None:
    """The people's view of `prep pick`: the clip spec alone on stdout, the why on stderr."""
    out().print(_escape(result.clip_spec), soft_wrap=True)
    for warning in result.warnings:
        warn(warning)
    if quiet:
        return
    console = err()
    shot = result.shot
    clips = result.clips_in_job
    console.print(
        f"shot {shot.index + 1} of {len(result.shots)} ({format_ms(shot.start_ms)}-"
        f"{format_ms(shot.end_ms)} s)  ·  window {format_ms(result.length_ms)} s  ·  billed head "
        f"{format_ms(result.head_ms)} s ({clips} clip{'s' * (clips > 1)} in the job)",
        soft_wrap=True, highlight=False,
    )

    def cover(label: str, c: Any) -> str:
        return (f"{label}: face {c.face:.0%}, speech {c.speech:.0%}, "
                f"[bold]both {c.both:.0%}[/]")

    console.print(f"{cover('head', result.head)}  ·  {cover('window', result.window)}  ·  "
                  f"score {result.score:.2f}", soft_wrap=True)
    face_ms = sum(s.end_ms - s.start_ms for s in result.faces)
    speech_ms = sum(s.end_ms - s.start_ms for s in result.speech)
    cuts = len(result.cuts_ms)
    line = (f"found {cuts} cut{'s' * (cuts != 1)}, a face for {format_ms(face_ms)} s, "
            f"speech for {format_ms(speech_ms)} s")
    analysis = result.analysis
    if analysis is not None and analysis.elapsed_s:
        seconds = analysis.duration_ms / 1000
        line += (f"  ·  analysed {seconds:.1f} s in {analysis.elapsed_s:.1f} s "
                 f"({seconds / analysis.elapsed_s:.0f}x real time)")
    console.print(f"[dim]{_escape(line)}[/]", soft_wrap=True)


class _Bar:
    """A transient progress bar on stderr, fed with (done, total) by worker threads."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label, self.enabled = label, enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Bar:
        if self.enabled and err().is_terminal:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      TaskProgressColumn(), console=err(), transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=None)
        return self

    def __call__(self, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def progress_bar(label: str, *, enabled: bool = True) -> _Bar:
    """`with progress_bar("analysing") as bar: work(progress=bar)`; silent when not a terminal."""
    return _Bar(label, enabled)
