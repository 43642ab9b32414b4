"""Output for people survives narrow and redirected terminals: no path or task id is split across
lines, progress only on a terminal, colour off with NO_COLOR."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from prep.ui import plain, render

TASK_ID = "task-unified-1774412345-7f3a9c2e1b"
RESULT = "/home/editor/projects/acme/results/interview-take-2/task-7f3a9c2e-result.mp4"
CLIP = "/home/editor/footage/phone/phone-pair-interview.mov"
URL = "https://files.evolink.ai/uploads/2026/11/25/3b9f0c1d2e.mp4"


@pytest.mark.parametrize(("width", "shown"), [
    (80, CLIP),
    (len(CLIP), CLIP),
    (40, "\u2026/footage/phone/phone-pair-interview.mov"),
    (30, "\u2026/phone-pair-interview.mov"),
    (20, "phone-pair-inte\u2026.mov"),
    (8, "pho\u2026.mov"),
    (1, "p"),
])
def test_shorten_path_keeps_the_file_name(width: int, shown: str) -> None:
    assert render.shorten_path(CLIP, width) == shown
    assert len(render.shorten_path(CLIP, width)) <= width


@pytest.fixture()
def console(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """render's consoles replaced by one that writes to a buffer at a given width."""
    made: dict[str, Any] = {}

    def at(width: int) -> io.StringIO:
        buf = io.StringIO()
        made["c"] = Console(file=buf, width=width, color_system=None, highlight=False)
        monkeypatch.setattr(render, "out", lambda: made["c"])
        monkeypatch.setattr(render, "err", lambda: made["c"])
        monkeypatch.setattr(plain, "is_plain", lambda to_stderr=False: False)  # through rich
        return buf

    yield at


def _rows() -> list[Any]:
    common = dict(progress=None, measured_units=None, clips_uploaded=2, clips_total=2, encoding=None)
    return [
        SimpleNamespace(name="interview-take-2", state="done", credits_reserved_units=476000,
                        estimate_units=476000, result_path=RESULT, error=None, task_id=TASK_ID,
                        **common),
        SimpleNamespace(name="phone-pair", state="failed", credits_reserved_units=None,
                        estimate_units=330820, result_path=None, task_id=TASK_ID[:-2] + "zz",
                        error="the task failed: content policy refused the prompt as written",
                        **common),
    ]


def _check(text: str, width: int, whole: list[str], paths: list[str]) -> None:
    lines = text.splitlines()
    for item in whole:  # ids and URLs: whole on one line, never cut
        assert any(item in line for line in lines), (item, text)
    for path in paths:  # paths: whole, or shortened to a tail that keeps the file name
        name = path.rsplit("/", 1)[-1]
        assert any(path in line or ("\u2026" in line and (name in line or line.endswith(name[-4:])))
                   for line in lines), text
    for line in lines:
        if not any(item in line for item in whole):
            assert len(line) <= width, (line, width)


@pytest.mark.parametrize("width", [40, 60, 80, 100, 200])
def test_batch_status_table_at_any_width(console: Any, width: int) -> None:
    buf = console(width)
    render.batch_status_table(_rows())
    _check(buf.getvalue(), width, [TASK_ID, TASK_ID[:-2] + "zz"], [RESULT])


@pytest.mark.parametrize("width", [50, 80, 160])
def test_upload_table_at_any_width(console: Any, width: int) -> None:
    buf = console(width)
    render.upload_table([{"path": CLIP, "file_url": URL, "expires_at": "2026-11-28T10:00:00Z",
                          "cached": False}])
    _check(buf.getvalue(), width, [URL], [CLIP])


def test_a_table_that_fits_stays_a_table(console: Any) -> None:
    buf = console(200)
    render.batch_status_table(_rows())
    header = buf.getvalue().splitlines()[0].split()
    assert header[:4] == ["job", "state", "clips", "task"]
    assert RESULT in buf.getvalue()


def test_too_wide_becomes_one_block_per_row(console: Any) -> None:
    buf = console(60)
    render.batch_status_table(_rows())
    lines = buf.getvalue().splitlines()
    assert lines[0] == "interview-take-2" and f"  task: {TASK_ID}" in lines
    assert any(line.startswith("  result / error: ") and line.endswith("-result.mp4")
               for line in lines)


def test_paths_are_shortened_before_rows_are_split(console: Any) -> None:
    buf = console(150)
    render.batch_status_table(_rows())
    text = buf.getvalue()
    assert text.splitlines()[0].split()[:2] == ["job", "state"]  # still a table
    assert RESULT not in text and "\u2026/" in text and TASK_ID in text


def test_probe_heading_and_estimate_rows_keep_paths_whole(console: Any) -> None:
    buf = console(40)
    from prep.core.billing import estimate_durations

    render.estimate_table(estimate_durations([(CLIP, 3_000)], output_s=5, quality="720p"))
    # The table shortens the path; a note names it whole on a line of its own width (never cut).
    _check(buf.getvalue(), 80, [CLIP], [CLIP])


def test_prepare_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(render, "err", lambda: Console(file=buf, width=80))
    with render.PrepareProgress(enabled=True) as progress:
        progress("clip.mov", 500, 1000)
        progress("clip.mov", 1000, 1000)
    assert buf.getvalue() == ""

    tty = io.StringIO()
    monkeypatch.setattr(render, "err", lambda: Console(file=tty, width=80, force_terminal=True))
    with render.PrepareProgress(enabled=True) as progress:
        progress("clip.mov", 1000, 1000)
    assert "clip.mov" in tty.getvalue()


def test_config_table(console: Any) -> None:
    buf = console(80)
    render.config_table({"base_url": "http://x", "prices": {"min_charge": 9.0},
                         "sources": {"base_url": "file", "prices": "default"}})
    assert buf.getvalue().splitlines() == ["base_url = http://x  (file)",
                                           "prices.min_charge = 9.0  (default)"]


def test_a_question_asked_under_progress_bars_keeps_its_brackets(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> None:
    # A running rich display owns stderr and reads what is written there as markup: the cost
    # prompt lost its `[y/N]`. The bars are paused while a question is asked.
    import click

    from prep.ui import endings

    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws as on a terminal
    # The stderr console is made once per process: one made here, as on a terminal, would keep
    # its colours for every later test; it is made afresh now and dropped again at the end.
    render.err.cache_clear()
    request.addfinalizer(render.err.cache_clear)
    monkeypatch.setattr(endings, "can_ask", lambda: True)
    def ask(prompt: str) -> str:  # as input() does when stdout is not the terminal itself
        sys.stdout.write(prompt)
        sys.stdout.flush()
        return "y"

    monkeypatch.setattr(click.termui, "visible_prompt_func", ask)
    with render.ProgressView(True) as view, view.paused():
        endings.confirm_cost("Submit this job for 9 credits?", yes=False)
    assert "credits? [y/N]" in capsys.readouterr().err


def test_batch_summary_says_how_to_follow_a_job_still_running(console: Any) -> None:
    from prep.jobs.engine import BatchResult
    from prep.jobs.status import JobStatus

    def job(name: str, state: str, task_id: str | None) -> JobStatus:
        return JobStatus(name=name, line=1, state=state, clips_total=1, clips_prepared=1,
                         clips_uploaded=1, task_id=task_id, task_status=None, progress=40,
                         estimate_units=1, measured_units=1, credits_reserved_units=1,
                         result_path=None, result_sha256=None, result_bytes=None, error=None,
                         error_exit=None, submissions=1, idempotency_key=None)

    buf = console(400)
    render.batch_summary(BatchResult(jobs=(job("one", "done", "t-1"), job("two", "running", TASK_ID))))
    text = buf.getvalue()
    assert "1 job(s) not finished" in text and f"two ({TASK_ID})" in text
    assert "run the same command again" in text and "prep task ID --wait" in text
    buf = console(400)
    render.batch_summary(BatchResult(jobs=(job("one", "done", "t-1"),)))
    assert "not finished" not in buf.getvalue()


def test_with_verbose_an_error_does_not_ask_for_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    from prep.errors import FfmpegError

    failure = FfmpegError("clip.avi", "ffmpeg failed: bad huffman",
                          hint="run with --verbose for ffmpeg's full output",
                          detail="[mjpeg @ 0x2] bad huffman")
    for verbose, says in ((False, "run with --verbose"), (True, "ffmpeg's full output follows")):
        buf = io.StringIO()
        monkeypatch.setattr(render, "err", lambda buf=buf: Console(file=buf, width=200))
        render.error(failure, verbose=verbose)
        assert says in buf.getvalue()
        assert ("--verbose" in buf.getvalue()) is not verbose
