"""Everything prep shows to people: tables, JSON, messages and progress, via rich.

The only module that formats for humans. With --json, stdout carries only JSON; tables, notes and
progress go to stderr.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING, Any

from prep.core import rules
from prep.core.prices import credits_text
from prep.core.timecode import format_ms
from prep.errors import PrepError
from prep.ui import plain
from prep.ui.plain import Cell

if TYPE_CHECKING:
    from rich.console import Console

    from prep.core.billing import Estimate
    from prep.core.clipinfo import ClipInfo, Verdict

ISSUES_URL = "https://github.com/evolink-prep/prep/issues"


@cache
def out() -> Console:
    """Console on stdout: the terminal's width, or $COLUMNS (else 80) when redirected.

    Tables fit that width without splitting a path (shortened, see `PathCell`) or an id; JSON
    keeps everything whole. rich honours NO_COLOR (no colours) and FORCE_COLOR."""
    from rich.console import Console

    return Console(highlight=False)


@cache
def err() -> Console:
    """Console on stderr, for messages, notes and progress."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def escape(text: str) -> str:
    """`text` as rich markup that prints it as it is (rich's escape; text without a bracket or
    a backslash, which it leaves alone, is returned without loading rich)."""
    if "[" not in text and "\\" not in text:
        return text
    from rich.markup import escape as rich_escape

    return rich_escape(text)


_escape = escape


def json_out(data: Any) -> None:
    """Machine output: one JSON document on stdout."""
    import json  # only for --json: the people's view does without it

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def say(markup: str, text: str, *, to_stderr: bool = False, soft_wrap: bool = False) -> None:
    """One line for people: `markup` through rich, or `text` (the same without markup) written
    as it is when rich would print it plainly anyway (see `prep.ui.plain`), rich unloaded."""
    room = plain.width() if plain.is_plain(to_stderr) and plain.simple(text) else None
    if room is None:
        (err() if to_stderr else out()).print(markup, soft_wrap=soft_wrap, highlight=False)
        return
    _write(to_stderr, [text] if soft_wrap else plain.wrap(text, room))


def _write(to_stderr: bool, lines: list[str]) -> None:
    stream = plain.stream(to_stderr)
    stream.write("".join(line + "\n" for line in lines))
    stream.flush()


def _plain_table(to_stderr: bool, headers: Sequence[str], rows: Sequence[Sequence[Cell]],
                 right: Sequence[bool]) -> bool:
    """Print a borderless table (`print_table`'s layout) without rich when rich would print it
    plainly anyway; False (nothing printed) when rich must."""
    if not plain.is_plain(to_stderr):
        return False
    room = plain.width()
    if room is None or not plain.simple(*headers, *(cell.text for row in rows for cell in row)):
        return False
    lines: list[str] = []
    for text, wraps in plain.table_lines(headers, rows, right, room, PATH_CAP_CELLS):
        lines += plain.wrap(text, room) if wraps else [text]
    _write(to_stderr, lines)
    return True


def error(exc: PrepError, *, verbose: bool = False) -> None:
    """One line on stderr: what is wrong, where, and what to do."""
    line = f"error: {exc.message}"
    detail = getattr(exc, "detail", "")
    hint = exc.hint
    if verbose and "--verbose" in hint:  # it was run with it: say where the output is instead
        hint = "ffmpeg's full output follows" if detail else ""
    if hint:
        line += f" ({hint})"
    err().print(_escape(line), style="red", soft_wrap=True)
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


# -- text that must not be split across lines ---------------------------------------------------

PATH_MIN_CELLS = 16


def shorten_path(text: str, width: int) -> str:
    """`text` in at most `width` cells on one line, keeping the file name (and as many folders
    before it as fit): '/home/me/footage/phone-pair.mov' -> '\u2026/footage/phone-pair.mov'."""
    from rich.cells import cell_len, set_cell_size

    return plain.shorten_path(text, width, cell_len, set_cell_size)


class PathCell:
    """A table cell holding a path: shortened to the column's width, never split across lines."""

    def __init__(self, text: str, style: str = "") -> None:
        self.text, self.style = text, style
        self.cap: int | None = None  # set by print_table when the table is too wide

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.cells import cell_len
        from rich.measure import Measurement

        full = cell_len(self.text)
        widest = full if self.cap is None else min(full, self.cap)
        return Measurement(min(full, PATH_MIN_CELLS), widest)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.text import Text

        yield Text(shorten_path(self.text, options.max_width), style=self.style, no_wrap=True,
                   overflow="ellipsis", end="")


def whole(text: str, style: str = "") -> Any:
    """A table cell (a task id, a URL) that keeps its full width and is never folded."""
    from rich.text import Text

    return Text(text, style=style, no_wrap=True, overflow="ignore")


PATH_CAP_CELLS = 40


def print_table(console: Console, table: Any) -> None:
    """Print `table` so that it reads in any width, a log file's 80 columns included.

    It is printed as it is when it fits; else with its paths shortened (to PATH_CAP_CELLS); else,
    rather than squeezing columns until words break, as one block per row: the first cell on a
    line of its own (whole), then `header: value` lines. No cell is ever split across lines."""
    from rich.measure import Measurement

    def width() -> int:
        unbounded = console.options.update(width=1_000_000)
        return Measurement.get(console, unbounded, table).maximum

    if width() <= console.width:
        console.print(table)
        return
    paths = [c for column in table.columns for c in column.cells if isinstance(c, PathCell)]
    for cell in paths:
        cell.cap = PATH_CAP_CELLS
    if paths and width() <= console.width:
        console.print(table)
        return
    for cell in paths:
        cell.cap = None
    from rich.cells import cell_len
    from rich.text import Text

    columns = table.columns
    for row in zip(*(list(column.cells) for column in columns), strict=True):
        for index, (column, cell) in enumerate(zip(columns, row, strict=True)):
            indent = "" if index == 0 else "  "
            header = _cell_text(console, column.header).plain if table.show_header else ""
            prefix = Text(indent)
            if header and index:
                prefix.append(f"{header}: ", style="dim")
            if isinstance(cell, PathCell):  # shortened to the width, never split
                room = console.width - cell_len(prefix.plain)
                value = Text(shorten_path(cell.text, room), style=cell.style)
            else:
                value = _cell_text(console, cell)
            if index and not value.plain.strip():
                continue
            line = prefix + value
            # One word (an id, a URL) stays on one line; prose wraps at its spaces.
            console.print(line, soft_wrap=" " not in value.plain.strip())


def _cell_text(console: Console, cell: Any) -> Any:
    from rich.text import Text

    if isinstance(cell, PathCell):
        return Text(cell.text, style=cell.style)
    if isinstance(cell, Text):
        return cell
    return console.render_str(str(cell)) if cell is not None else Text("")


def config_table(data: dict[str, Any]) -> None:
    """The people's view of `prep config show`: one `key = value  (source)` line each."""
    sources = data.get("sources", {})
    for key, value in data.items():
        if key == "sources":
            continue
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                where = sources.get(f"{key}.{inner}", sources.get(key))
                out().print(f"{key}.{inner} = {_escape(_setting(inner_value))}"
                            + (f"  [dim]({where})[/]" if where else ""), soft_wrap=True)
            continue
        source = f"  [dim]({sources[key]})[/]" if key in sources else ""
        out().print(f"{key} = {_escape(_setting(value))}{source}", soft_wrap=True)


def _setting(value: Any) -> str:
    """A setting's value as `config show` prints it: unset is said in words, not `None`."""
    return "(not set)" if value is None else str(value)


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
    headers = ("clip", "duration", "size", "container", "video", "audio", "API")
    rows = [(str(info.path), _durations(info), _size(info.size_bytes), info.container,
             _video_text(info), _audio_text(info), verdict.compliant) for info, verdict in results]
    plain_rows = [[Cell(path, path=True), *map(Cell, cells), Cell("ok" if ok else "refused")]
                  for path, *cells, ok in rows]
    if not _plain_table(to_stderr, headers, plain_rows, (False,) * len(headers)):
        from rich.table import Table

        table = Table(show_lines=False, pad_edge=False, box=None, header_style="bold")
        table.add_column("clip", no_wrap=True)
        for column in headers[1:]:
            table.add_column(column, overflow="fold")
        for path, durations, size, container, video_text, audio, ok in rows:
            table.add_row(PathCell(path), durations, size, container, _escape(video_text),
                          _escape(audio), "[green]ok[/]" if ok else "[red]refused[/]")
        print_table(err() if to_stderr else out(), table)
    for info, verdict in results:
        _verdict_lines(str(info.path), verdict, to_stderr=to_stderr)


def _video_text(info: ClipInfo) -> str:
    """Codec, size and rate, then what sets the stream apart (VFR, depth, chroma, HDR...)."""
    width, height = info.display_size
    video = [info.video_codec, f"{width}x{height}", f"{_fps(info.fps)} fps"]
    notable = (("VFR", info.vfr),
               (f"{info.bit_depth}-bit", bool(info.bit_depth) and info.bit_depth != 8),
               (info.chroma_subsampling or "", info.chroma_subsampling not in (None, "", "4:2:0")),
               (info.hdr or "", bool(info.hdr)), ("interlaced", info.interlaced),
               (f"rot {info.rotation}", bool(info.rotation)))
    return " ".join(video + [text for text, shown in notable if shown])


def _audio_text(info: ClipInfo) -> str:
    if not info.has_audio:
        return "none"
    return f"{info.audio_codec} {info.audio_channels or '?'}ch {info.audio_rate or '?'} Hz"


def _verdict_lines(path: str, verdict: Verdict, *, to_stderr: bool) -> None:
    """The clip's problems (x) and advice (-) under its path; nothing when it has neither."""
    lines = [(f"  [red]x[/] {_escape(p)}", f"  x {p}") for p in verdict.problems]
    lines += [(f"  [yellow]-[/] {_escape(a)}", f"  - {a}") for a in verdict.advice]
    if lines:
        say(f"[bold]{_escape(path)}[/]", path, to_stderr=to_stderr, soft_wrap=True)
        for markup, text in lines:
            say(markup, text, to_stderr=to_stderr, soft_wrap=True)


def estimate_table(est: Estimate, *, to_stderr: bool = False) -> None:
    """The people's view of `prep estimate`."""
    held = " (held)" if est.smart_hold_s is not None else ""
    totals = (("input", est.input_billed_ms), (f"output{held}", est.output_billed_ms),
              ("total", est.total_billed_ms))
    headers = ("clip", "planned", "billed")
    rows = [[Cell(clip.label, path=True), Cell(f"{format_ms(clip.duration_ms)} s"),
             Cell(f"{format_ms(clip.billed_ms)} s")] for clip in est.clips]
    rows += [[Cell(name), Cell(""), Cell(f"{format_ms(ms)} s")] for name, ms in totals]
    if not _plain_table(to_stderr, headers, rows, (False, True, True)):
        from rich.table import Table

        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("clip", no_wrap=True)
        table.add_column("planned", justify="right")
        table.add_column("billed", justify="right")
        for clip in est.clips:
            table.add_row(PathCell(clip.label), f"{format_ms(clip.duration_ms)} s",
                          f"{format_ms(clip.billed_ms)} s")
        for name, ms in totals:
            table.add_row(f"[bold]{name}[/]", "", f"[bold]{format_ms(ms)} s[/]")
        print_table(err() if to_stderr else out(), table)
    bill = f"{credits_text(est.credits_units)} credits"
    rest = (f" at {est.quality} (about ${float(est.usd):.2f}); "
            + ", ".join(f"{q}: {credits_text(est.credits_at(q))}"
                        for q in est.as_dict()["credits_by_quality"]))
    say(f"[bold]{bill}[/]{rest}", bill + rest, to_stderr=to_stderr, soft_wrap=True)
    estimate_models(est, to_stderr=to_stderr)
    say(f"[dim]prices: {_escape(est.prices.label)}[/]", f"prices: {est.prices.label}",
        to_stderr=to_stderr)
    notes: Iterable[str] = [n for c in est.clips for n in c.notes] + list(est.notes)
    for line in notes:
        say(f"  - {_escape(line)}", f"  - {line}", to_stderr=to_stderr, soft_wrap=True)


# -- the API client: transfers, tasks, uploads ------------------------------------------------

def _seconds_text(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ProgressView:
    """Progress bars on stderr for uploads, the task and downloads; silent when disabled (quiet,
    --json or not a terminal), so library callbacks can always call it."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._bars: dict[str, Any] = {}
        self._started: dict[str, float] = {}

    def __enter__(self) -> ProgressView:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[detail]}"), TimeRemainingColumn(), console=err(),
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The bars stopped while a question is asked: a running display owns stderr and reads
        what is written there as markup (`[y/N]` vanished from the prompt)."""
        if self._progress is None:
            yield
            return
        self._progress.stop()
        try:
            yield
        finally:
            self._progress.start()

    def transfer(self, key: str, label: str, done: int, total: int | None) -> None:
        """Bytes sent or received for `key` (an upload or a download)."""
        if self._progress is None:
            return
        if key not in self._bars:
            self._bars[key] = self._progress.add_task(_escape(label), total=total, detail="")
        detail = f"{_size(done)} / {_size(total)}" if total else _size(done)
        self._progress.update(self._bars[key], completed=done, total=total, detail=detail)

    def work(self, key: str, label: str, done_ms: int, total_ms: int) -> None:
        """Media time worked through for `key` (an analysis or an encode)."""
        if self._progress is None:
            return
        if key not in self._bars:
            self._bars[key] = self._progress.add_task(_escape(label), total=total_ms, detail="")
        detail = f"{format_ms(done_ms)} / {format_ms(total_ms)} s" if total_ms else ""
        self._progress.update(self._bars[key], completed=done_ms, total=total_ms or None,
                              detail=detail)

    def task(self, task_id: str, status: str, progress: int, estimated_s: int | None) -> None:
        """The generation task's state: progress and the time the server expects."""
        import time

        if self._progress is None:
            return
        started = self._started.setdefault(task_id, time.monotonic())
        elapsed = time.monotonic() - started
        label = f"task {task_id}: {status}"
        if estimated_s and status in rules.ACTIVE_STATUSES:
            label += f", about {_seconds_text(max(estimated_s - elapsed, 0))} left"
        key = "task:" + task_id
        if key not in self._bars:
            self._bars[key] = self._progress.add_task(_escape(label), total=100, detail="")
        self._progress.update(self._bars[key], completed=progress, description=_escape(label))


def upload_table(rows: Sequence[dict[str, Any]]) -> None:
    """The people's view of `prep upload`."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("file", no_wrap=True)
    table.add_column("url", no_wrap=True)
    for column in ("expires", ""):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(PathCell(str(row["path"])), whole(str(row["file_url"])),
                      _escape(str(row.get("expires_at") or "?")),
                      "cached" if row.get("cached") else "uploaded")
    print_table(out(), table)


def task_summary(task: dict[str, Any], *, files: Sequence[str] = (),
                 estimate_units: int | None = None, to_stderr: bool = False) -> None:
    """The people's view of a task: status, progress, results, credits (beside prep's estimate)."""
    console = err() if to_stderr else out()
    status = str(task.get("status"))
    colour = {"completed": "green", "failed": "red", "cancelled": "red"}.get(status, "yellow")
    console.print(f"task [bold]{_escape(str(task.get('id')))}[/]: [{colour}]{_escape(status)}[/] "
                  f"({task.get('progress', 0)}%)", soft_wrap=True)
    if task.get("error"):
        console.print(f"  reason: {_escape(str(task['error']))}", soft_wrap=True)
    if task.get("estimated_time_s") and status in rules.ACTIVE_STATUSES:
        console.print(f"  the server expects about {_seconds_text(task['estimated_time_s'])} in all")
    reserved = task.get("credits_reserved_units")
    if reserved is not None:
        line = f"  credits reserved by EvoLink: {credits_text(int(reserved))}"
        if estimate_units is not None:
            line += f" (prep estimated {credits_text(estimate_units)})"
        console.print(line)
    for url in task.get("results") or []:
        console.print(f"  result: {_escape(str(url))}", soft_wrap=True)
    for path in files:
        console.print(f"  saved: [bold]{_escape(path)}[/]", soft_wrap=True)

# --- prepare and doctor -------------------------------------------------------------------------

class PrepareProgress:
    """One progress bar per clip on stderr, fed by `prepare`'s (label, done_ms, total_ms) calls."""

    def __init__(self, *, enabled: bool = True) -> None:
        # Bars only on a terminal: redirected to a log, a bar is a heap of control codes. Rich's
        # progress display is imported only then (a scripted run does without it).
        enabled = enabled and err().is_terminal
        self._enabled = enabled
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()  # prepare reports from a thread per clip
        self._progress: Any = None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[done]}"),
                TimeElapsedColumn(), console=err(), transient=False,
            )

    def __enter__(self) -> PrepareProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tasks:  # started on the first clip only: no stray blank line when none ran
            self._progress.stop()

    def __call__(self, label: str, done_ms: int, total_ms: int) -> None:
        if self._progress is None:
            return
        with self._lock:
            task = self._tasks.get(label)
            if task is None:
                if not self._tasks:
                    self._progress.start()
                task = self._progress.add_task(_escape(label), total=max(total_ms, 1), done="")
                self._tasks[label] = task
        self._progress.update(task, completed=done_ms, total=max(total_ms, 1),
                              done=f"{format_ms(done_ms)}/{format_ms(total_ms)} s")


def prepare_table(results: Sequence[Any], *, to_stderr: bool = False) -> None:
    """The summary of `prep prepare`: what was done to each clip, before -> after."""
    headers = ("source", "action", "output", "size", "duration", "time")
    rows = []
    for result in results:
        info, output = result.source, result.output_info
        action = _action(result) + (" (audio to AAC)" if _audio_only(result.plan) else "") \
            + (" (cached)" if result.cached else "")
        size = (f"{_size(info.size_bytes)} -> {_size(output.size_bytes)}" if output
                else _size(info.size_bytes))
        duration = (f"{format_ms(info.duration_ms)} -> {format_ms(output.duration_ms)} s" if output
                    else f"{format_ms(info.duration_ms)} -> {format_ms(result.plan.duration_ms)} s")
        rows.append([Cell(str(result.spec), path=True), Cell(action),
                     Cell(str(result.output), path=True) if result.output else Cell("(dry run)"),
                     Cell(size), Cell(duration),
                     Cell(f"{result.elapsed_s:.1f} s" if result.output else "")])
    if _plain_table(to_stderr, headers, rows, (False,) * len(headers)):
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in headers:
        table.add_column(column, no_wrap=column in ("source", "output"), overflow="fold")
    for row in rows:
        table.add_row(*(PathCell(cell.text) if cell.path else cell.text for cell in row))
    print_table(err() if to_stderr else out(), table)


def plan_details(results: Sequence[Any], *, to_stderr: bool = False) -> None:
    """Why each clip gets its action, and the warnings of its window (for --dry-run and notes)."""
    console = err() if to_stderr else out()
    for result in results:
        plan = result.plan
        if plan.reasons:
            console.print(f"  {_escape(str(result.spec))}: {_action(result)} because "
                          f"{_escape(', '.join(plan.reasons))}", soft_wrap=True, style="dim")
        if _audio_only(plan) and result.output is None:
            a = plan.audio
            console.print(f"    -> video copied as it is; audio re-encoded to AAC {a.rate // 1000} kHz "
                          f"{'stereo' if a.channels == 2 else f'{a.channels} channels'} at "
                          f"{a.bitrate_kbps} kbit/s, cut to end with the video",
                          soft_wrap=True, style="dim")
        if plan.video is not None and result.output is None:
            v = plan.video
            params = "".join(f" {k}={value}" for k, value in v.x264_params)
            console.print(f"    -> {v.width}x{v.height} {_fps(v.fps)} fps, x264 {v.preset} CRF "
                          f"{v.crf}{params}, peak {v.maxrate_kbps} kbit/s"
                          + (f", tone-mapped from {v.tonemap}" if v.tonemap else "")
                          + (", deinterlaced" if v.deinterlace else ""),
                          soft_wrap=True, style="dim")
        if plan.smart_cut is not None and result.output is None:
            cut = plan.smart_cut
            console.print(f"    -> smart cut: {cut.copy_frames} frames copied, {cut.head_frames} + "
                          f"{cut.tail_frames} re-encoded at the edges (the whole window is "
                          "re-encoded if it cannot be proven)", soft_wrap=True, style="dim")


def _action(result: Any) -> str:
    """What was (or will be) done to a clip, as the table and the details name it."""
    return "smart cut" if result.smart_cut else str(result.plan.action)


def _audio_only(plan: Any) -> bool:
    """A plan that copies the video and re-encodes only the audio."""
    return plan.video is None and plan.audio is not None


def doctor_report(report: Any, extra: dict[str, str]) -> None:
    """The people's view of `prep doctor`."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("ffmpeg", PathCell(str(report.path)))
    table.add_row("found via", report.source)
    version = _escape(report.version)
    table.add_row("version", f"[red]{version} (too old: 5.1 or newer needed)[/]"
                  if report.too_old else version)
    for name, ok in report.features.items():
        table.add_row(name, "[green]yes[/]" if ok else "[red]missing[/]")
    for key, value in extra.items():
        table.add_row(_escape(key), _escape(value))
    print_table(out(), table)


def manifest_problems(source: str, problems: Iterable[Any]) -> None:
    """Every bad row of a manifest, one line each, on stderr."""
    for problem in problems:
        err().print(_escape(f"error: {problem.text(source)}"), style="red", soft_wrap=True)


def batch_cost_table(plan: Any, *, to_stderr: bool = False) -> None:
    """The people's view of `prep batch --dry-run`: billed seconds and credits per job and in total."""
    from rich.table import Table

    console = err() if to_stderr else out()
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column, justify in (("job", "left"), ("clips", "right"), ("input", "right"),
                            ("output", "right"), ("billed", "right"), ("quality", "left"),
                            ("credits", "right"), ("at 720p", "right"), ("at 1080p", "right")):
        table.add_column(column, justify=justify, overflow="fold",  # type: ignore[arg-type]
                         no_wrap=column == "job")
    for job in plan.jobs:
        est = job.estimate
        table.add_row(
            PathCell(job.name), str(len(job.clips)), f"{format_ms(est.input_billed_ms)} s",
            f"{format_ms(est.output_billed_ms)} s", f"{format_ms(est.total_billed_ms)} s",
            est.quality, credits_text(est.credits_units), credits_text(est.credits_at("720p")),
            credits_text(est.credits_at("1080p")),
        )
    table.add_row(
        f"[bold]total ({len(plan.jobs)} jobs)[/]", "", f"[bold]{format_ms(plan.input_billed_ms)} s[/]",
        f"[bold]{format_ms(plan.output_billed_ms)} s[/]", f"[bold]{format_ms(plan.total_billed_ms)} s[/]",
        "", f"[bold]{credits_text(plan.credits_units)}[/]", credits_text(plan.credits_at("720p")),
        credits_text(plan.credits_at("1080p")),
    )
    print_table(console, table)
    for job in plan.jobs:
        for note in job.notes:
            console.print(f"[yellow]note[/]: job {_escape(job.name)}: {_escape(note)}", soft_wrap=True)
    console.print(
        f"[bold]{credits_text(plan.credits_units)} credits[/] for {len(plan.jobs)} jobs "
        f"(about ${plan.credits_units / plan.prices.units_per_usd:.2f}); failed tasks are not billed",
        soft_wrap=True,
    )
    console.print(f"[dim]prices: {_escape(plan.prices.label)}[/]", soft_wrap=False)


_STATE_STYLES = {"done": "green", "failed": "red", "unknown": "magenta", "running": "cyan",
                 "submitting": "yellow", "completed": "cyan"}


def batch_status_table(rows: Sequence[Any], *, to_stderr: bool = False) -> None:
    """The people's view of `prep batch status` and of a batch's summary."""
    from rich.table import Table

    console = err() if to_stderr else out()
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column, justify in (("job", "left"), ("state", "left"), ("clips", "right"), ("task", "left"),
                            ("estimate", "right"), ("reserved", "right"), ("result / error", "left")):
        table.add_column(column, justify=justify, overflow="fold",  # type: ignore[arg-type]
                         no_wrap=column in ("job", "task"))
    for row in rows:
        style = _STATE_STYLES.get(row.state, "")
        state = f"[{style}]{row.state}[/]" if style else row.state
        if row.state == "running" and row.progress is not None:
            state += f" {row.progress}%"
        elif row.encoding is not None and row.encoding[1] > 0:
            state += f" (encoding {100 * row.encoding[0] // row.encoding[1]}%)"
        reserved = ("" if row.credits_reserved_units is None
                    else credits_text(row.credits_reserved_units))
        estimate = "" if row.estimate_units is None else credits_text(row.estimate_units)
        if row.measured_units is not None and row.measured_units != row.estimate_units:
            estimate += f" ({credits_text(row.measured_units)} as prepared)"
        detail: Any = PathCell(str(row.result_path)) if row.result_path else _escape(row.error or "")
        table.add_row(PathCell(row.name), state, f"{row.clips_uploaded}/{row.clips_total}",
                      whole(row.task_id or ""), estimate, reserved, detail)
    print_table(console, table)


class BatchProgress:
    """A running batch on stderr: one overall bar and each job's state (live on a terminal,
    one line per change otherwise; nothing with `enabled=False`)."""

    def __init__(self, names: Sequence[str], *, enabled: bool = True) -> None:
        self.names = list(names)
        self.enabled = enabled
        self.states: dict[str, tuple[str, str]] = {n: ("waiting", "") for n in self.names}
        self.live_mode = enabled and err().is_terminal
        self._live: Any = None
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> BatchProgress:
        if self.live_mode:
            from rich.live import Live
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]jobs"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=err())
            self._task = self._progress.add_task("jobs", total=len(self.names))
            self._live = Live(self, console=err(), refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        table = Table(box=None, pad_edge=False, show_header=False)
        table.add_column("job", overflow="ellipsis", max_width=40)
        table.add_column("state")
        table.add_column("detail", overflow="ellipsis", max_width=70)
        for name in self.names:
            state, detail = self.states[name]
            style = _STATE_STYLES.get(state, "")
            table.add_row(_escape(name), f"[{style}]{state}[/]" if style else state, _escape(detail))
        return Group(self._progress, table) if self._progress is not None else table

    def state(self, job: str, state: str, detail: str = "") -> None:
        """A job moved on."""
        if self.states.get(job) == (state, detail):
            return
        previous = self.states.get(job, ("", ""))[0]
        self.states[job] = (state, detail)
        if self.enabled and not self.live_mode and state != previous:
            note(f"{job}: {state}" + (f" ({detail})" if detail else ""))

    def progress(self, finished: int, total: int) -> None:
        """Jobs finished (done, failed or unknown) out of all."""
        if self._progress is not None:
            self._progress.update(self._task, completed=finished, total=total)


def batch_summary(result: Any, *, to_stderr: bool = False) -> None:
    """Each job's outcome, cost (estimate and EvoLink's credits_reserved) and result or error."""
    console = err() if to_stderr else out()
    batch_status_table(result.jobs, to_stderr=to_stderr)
    counts = result.as_dict()["counts"]
    parts = [f"{n} {o}" for o, n in counts.items() if n]
    reserved = sum(j.credits_reserved_units or 0 for j in result.jobs)
    pauses = f"; {result.rate_limit_pauses} rate-limit pauses" if result.rate_limit_pauses else ""
    console.print(f"[bold]{', '.join(parts)}[/] in {result.elapsed_s:.1f} s; EvoLink reserved "
                  f"{credits_text(reserved)} credits{pauses}", soft_wrap=True)
    if result.halted:
        console.print(f"[red]stopped submitting: {_escape(result.halted)}[/]", soft_wrap=True)
    running = [j for j in result.jobs if j.state in ("running", "submitting", "completed")]
    if running:
        tasks = ", ".join(f"{j.name} ({j.task_id})" if j.task_id else j.name for j in running)
        console.print(
            f"[cyan]{len(running)} job(s) not finished when prep stopped following them: "
            f"{_escape(tasks)}. Their tasks go on at EvoLink: run the same command again to "
            "follow them and download the results (`prep task ID --wait` shows one)[/]",
            soft_wrap=True)
    unknown = [j.name for j in result.jobs if j.state == "unknown"]
    if unknown:
        console.print(
            f"[magenta]{len(unknown)} job(s) may have been created without prep hearing back: "
            f"{_escape(', '.join(unknown))}. prep will not send them again by itself: find the task "
            "in your EvoLink dashboard and run `prep batch resolve DIR JOB --task-id ID`, or "
            "`--not-created` if there is none[/]", soft_wrap=True)


# -- prep pick ---------------------------------------------------------------------------------

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
    billed = ("billed whole" if result.every_second_billed
              else f"billed head {format_ms(result.head_ms)} s")
    console.print(
        f"shot {shot.index + 1} of {len(result.shots)} ({format_ms(shot.start_ms)}-"
        f"{format_ms(shot.end_ms)} s)  ·  window {format_ms(result.length_ms)} s  ·  {billed} "
        f"({clips} clip{'s' * (clips > 1)} in the job, {_escape(result.model)})",
        soft_wrap=True, highlight=False,
    )
    for line in result.notes:
        note(line)

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


def picked_window(picked: Any, *, quiet: bool = False) -> None:
    """One picked window (`prep generate --pick`), on stderr; warnings even when quiet."""
    if not picked.usable:
        for warning in picked.warnings or ("the billed head seldom shows a face while someone speaks",):
            warn(f"{picked.path.name}: {warning}")
    if quiet:
        return
    remembered = "" if picked.origin == "analysis" else f" [dim](remembered: {picked.origin})[/]"
    err().print(f"picked [bold]{_escape(picked.clip_spec)}[/]  ·  billed head: face and speech "
                f"together {picked.head_both:.0%}{remembered}", soft_wrap=True, highlight=False)


def batch_picks(plan: Any, *, to_stderr: bool = False, quiet: bool = False) -> None:
    """The windows picked for `pick` jobs of a batch plan, with warnings for unusable ones."""
    console = err() if to_stderr else out()
    for job in plan.jobs:
        for index in range(len(job.clips)):
            picked = job.pick_of(index)
            if picked is None:
                continue
            if not picked.usable:
                for warning in picked.warnings or ("the billed head seldom shows a face while "
                                                   "someone speaks",):
                    warn(f"job {job.name!r}: {picked.path.name}: {warning}")
            if not quiet:
                console.print(f"{_escape(job.name)}: picked [bold]{_escape(picked.clip_spec)}[/]  ·  "
                              f"face and speech {picked.head_both:.0%} of the billed head",
                              soft_wrap=True, highlight=False)


# -- models, the account and the task list ---------------------------------------------------------

def estimate_models(est: Estimate, *, to_stderr: bool = False) -> None:
    """Which model the bill is for, and what the same job costs with the other one."""
    switch = est.as_dict()["generate_audio"] is not None
    model = est.model + (f" ({'with' if est.audio else 'no'} audio)" if switch else "")
    say(f"model: {_escape(model)}", f"model: {model}", to_stderr=to_stderr, soft_wrap=True)
    for alt in est.alternatives:
        difference = alt.credits_units - est.credits_units
        if difference < 0:
            word = f"saves {credits_text(-difference)}"
        elif difference > 0:
            word = f"{credits_text(difference)} more"
        else:
            word = "the same"
        line = f"{credits_text(alt.credits_units)} credits ({word})"
        say(f"  {_escape(alt.label)}: {line}", f"  {alt.label}: {line}", to_stderr=to_stderr,
            soft_wrap=True)


def compare_table(data: dict[str, Any], *, to_stderr: bool = False) -> None:
    """The people's view of `prep estimate --compare`: one row per model (and audio setting)."""
    from rich.table import Table

    console = err() if to_stderr else out()
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name, justify in (("model", "left"), ("audio", "left"), ("credits", "right"),
                          ("billed in", "right"), ("billed out", "right")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in data["models"]:
        audio = {None: "", True: "with", False: "no"}[row["generate_audio"]]
        if row["credits_units"] is None:
            table.add_row(_escape(row["model"]), audio, "[red]refused[/]", "", "")
            continue
        cheapest = data["cheapest"] or {}
        best = " *" if (row["model"], row["generate_audio"]) == (
            cheapest.get("model"), cheapest.get("generate_audio")) else ""
        table.add_row(_escape(row["model"]), audio, credits_text(row["credits_units"]) + best,
                      f"{row['billed_input_s']:g} s", f"{row['billed_output_s']:g} s")
    print_table(console, table)
    console.print(f"at {data['quality']}, {data['output_s']} s of output; * the cheapest",
                  soft_wrap=True, highlight=False)
    for row in data["models"]:
        if row["generate_audio"] is False:
            continue  # the same cuts and problems as the row with audio
        for line in [*row["cuts"], *row["problems"]]:
            console.print(f"  - {_escape(row['model'])}: {_escape(line)}", soft_wrap=True,
                          highlight=False)


def _credits_or_dash(units: int | None) -> str:
    return "-" if units is None else credits_text(units)


def account_view(credits: Any, quota: dict[str, Any] | None, *, notes: Sequence[str] = ()) -> None:
    """The people's view of `prep account`: the balance and the file quota."""
    console = out()
    if credits is not None:
        key = ("unlimited (within the account)" if credits.key_unlimited
               else f"{_credits_or_dash(credits.key_remaining_units)} left")
        console.print(f"[bold]credits[/]: {_credits_or_dash(credits.spendable_units)} spendable "
                      f"with this key", highlight=False)
        console.print(f"  key: {key}, {_credits_or_dash(credits.key_used_units)} used",
                      highlight=False)
        console.print(f"  account: {_credits_or_dash(credits.account_remaining_units)} left, "
                      f"{_credits_or_dash(credits.account_used_units)} used", highlight=False)
    if quota is not None:
        console.print(f"[bold]files[/]: {quota.get('used_files', '?')} of "
                      f"{quota.get('max_files', '?')} stored, {quota.get('remain_files', '?')} "
                      f"left (group {quota.get('user_group', '?')})", highlight=False)
    for line in notes:
        note(line)


def tasks_table(page: Any) -> None:
    """The people's view of `prep tasks`: one row a task, newest first."""
    import datetime as _dt

    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("task", "status", "model", "created", "credits"):
        table.add_column(column, justify="right" if column == "credits" else "left",
                         no_wrap=column in ("task", "model", "created"), overflow="fold")
    for task in page.tasks:
        created = (_dt.datetime.fromtimestamp(task.created, _dt.UTC).strftime("%Y-%m-%d %H:%M")
                   if task.created else "-")
        status = task.status + (f" {task.progress}%" if task.status == "processing" else "")
        table.add_row(whole(task.id), status, whole(task.model or "-"), whole(created),
                      _credits_or_dash(task.credits_reserved_units))
    console = out()
    print_table(console, table)  # one block per task when the columns do not fit
    pages = f" of {page.pages}" if page.pages else ""
    total = f", {page.total} tasks" if page.total is not None else ""
    console.print(f"[dim]page {page.page}{pages}{total}[/]", highlight=False)


# -- prep check --------------------------------------------------------------------------------

_STATUS_STYLE = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]"}
_VERDICT_STYLE = {"good": "[bold green]good[/]", "fair": "[bold yellow]fair[/]",
                  "poor": "[bold red]poor[/]"}


def check_report(report: Any, *, quiet: bool = False, verbose: bool = False,
                 to_stderr: bool = False) -> None:
    """One clip's `prep check`: the verdict, then what did not pass (fails first), each with
    what to do. Passed checks are listed only with --verbose; --quiet keeps the verdict line."""
    console = err() if to_stderr else out()
    reasons = report.reasons
    summary = (f"{len(reasons)} finding{'s' * (len(reasons) != 1)}" if reasons
               else "every check passed")
    console.print(f"{_VERDICT_STYLE[report.verdict]}  {_escape(report.spec)}  [dim]"
                  f"({format_ms(report.duration_ms)} s; {summary})[/]", soft_wrap=True)
    if quiet:
        return
    shown = report.checks if verbose else reasons
    for check in sorted(shown, key=lambda c: ("fail", "warn", "pass").index(c.status)):
        console.print(f"  {_STATUS_STYLE[check.status]}  {check.name:<12}  "
                      f"{_escape(check.message)}", soft_wrap=True, highlight=False)
    if verbose and report.analysis is not None and report.elapsed_s:
        seconds = report.duration_ms / 1000
        console.print(f"  [dim]checked {seconds:.1f} s in {report.elapsed_s:.1f} s "
                      f"({seconds / report.elapsed_s:.0f}x real time)[/]", soft_wrap=True)
    if verbose and report.cached:
        console.print("  [dim]from the check cache (checked before, the clip unchanged since; "
                      "--no-cache checks afresh)[/]", soft_wrap=True)


def check_summary(reports: Sequence[Any], *, required: str | None,
                  to_stderr: bool = False) -> None:
    """A line counting the verdicts of several clips, and which fall below `required`."""
    console = err() if to_stderr else out()
    counts = {v: sum(r.verdict == v for r in reports) for v in ("good", "fair", "poor")}
    line = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    console.print(f"{len(reports)} clips: {line}" + (f"  [dim](required: {required})[/]"
                                                     if required else ""), soft_wrap=True)


# -- the check in a job (`prep generate`, `prep batch`) --------------------------------------------

def job_check(report: Any, *, quiet: bool = False, job: str | None = None) -> None:
    """One clip's reference check before the bill, on stderr: the verdict and what did not pass.
    Quiet keeps only clips that are not good, as one line each."""
    if quiet and report.verdict == "good":
        return
    if job is not None:
        err().print(f"[dim]job {_escape(job)}:[/]", soft_wrap=True, highlight=False)
    check_report(report, quiet=quiet, to_stderr=True)


def batch_checks(plan: Any, *, to_stderr: bool = True) -> None:
    """A line counting the verdicts of a batch plan's checked clips (nothing when none were)."""
    # A clip (and window) used by several jobs was checked once: it is counted once.
    unique = {(str(r.path), r.start_ms, r.end_ms): r for job in plan.jobs for r in job.checks
              if r is not None}
    reports = list(unique.values())
    if not reports:
        return
    counts = {v: sum(r.verdict == v for r in reports) for v in ("good", "fair", "poor")}
    console = err() if to_stderr else out()
    console.print(f"reference check: {len(reports)} clip{'s' * (len(reports) != 1)}: "
                  + ", ".join(f"{n} {v}" for v, n in counts.items() if n), soft_wrap=True,
                  highlight=False)
