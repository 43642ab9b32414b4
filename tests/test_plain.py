"""`prep.ui.plain` prints what rich prints to a file, byte for byte, without loading rich.

Each case is printed twice: through rich (a Console on a buffer, as `prep probe > file` gets)
and through the plain path (stdout captured, so not a terminal); the two must be equal.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import mediagen
import pytest
from rich.console import Console

from prep.core.billing import estimate_durations
from prep.core.clipinfo import ClipInfo, assess
from prep.ui import plain, render

LONG = "/home/editor/footage/2026-11-25 shoot/phone/phone-pair-interview-take-2.mov"


def _both(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], width: int,
          show: Callable[[], None]) -> tuple[str, str]:
    """(rich's text, the plain path's text) of the same output at a width."""
    monkeypatch.setenv("COLUMNS", str(width))
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    render.out.cache_clear()  # made again, at this width
    render.err.cache_clear()
    show()
    plain_text = capsys.readouterr().out
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, highlight=False)
    with monkeypatch.context() as m:
        m.setattr(render, "out", lambda: console)
        m.setattr(render, "err", lambda: console)
        m.setattr(plain, "is_plain", lambda to_stderr=False: False)
        show()
    return buf.getvalue(), plain_text


def _info(path: str, **changes: Any) -> ClipInfo:
    info = ClipInfo(path=Path(path), size_bytes=4_700_000, container="mp4",
                    container_format="MPEG-4", duration_ms=5_000, video_duration_ms=5_000,
                    audio_duration_ms=5_000, video_codec="h264", video_profile="High@L4",
                    width=1280, height=720, fps=Fraction(30), audio_codec="aac",
                    audio_channels=2, audio_rate=48_000)
    return replace(info, **changes)


WIDTHS = [12, 20, 33, 40, 57, 80, 100, 133, 200]


@pytest.mark.parametrize("width", WIDTHS)
def test_probe_table_is_rich_s_at_any_width(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str],
                                             width: int) -> None:
    clips = [_info("a.mp4"), _info(LONG, duration_ms=1_200, video_duration_ms=1_150, vfr=True,
                                   bit_depth=10, hdr="HLG", rotation=90, audio_codec=None,
                                   audio_channels=None, audio_rate=None),
             _info("clips/take.mov", container="mov", fps=Fraction(30000, 1001), width=9000)]
    results = [(info, assess(info)) for info in clips]
    assert any(verdict.problems for _, verdict in results)
    rich_text, plain_text = _both(monkeypatch, capsys, width, lambda: render.probe_table(results))
    assert plain_text == rich_text


@pytest.mark.parametrize("width", WIDTHS)
def test_estimate_table_is_rich_s_at_any_width(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str],
                                                width: int) -> None:
    est = estimate_durations([(LONG, 3_000), ("b.mp4", 12_500)], output_s=5, quality="720p")
    rich_text, plain_text = _both(monkeypatch, capsys, width, lambda: render.estimate_table(est))
    assert plain_text == rich_text


def test_text_rich_would_change_goes_through_rich(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Markup brackets, emoji codes and wide characters: printed by rich itself."""
    assert not plain.simple("take [1].mov") and not plain.simple("a:smile:b")
    assert not plain.simple("caf\u00e9.mov") and not plain.simple("tab\there")
    assert plain.simple("take 1 (final).mov")
    for path in ("take [1].mov", "x:thumbs_up:.mov", "\u6f22\u5b57.mov", "back\\slash.mov"):
        results = [(_info(path), assess(_info(path)))]
        for width in (20, 80):
            rich_text, plain_text = _both(monkeypatch, capsys, width,
                                          lambda results=results: render.probe_table(results))
            assert plain_text == rich_text


def test_wrap_is_rich_s_wrap() -> None:
    rng = random.Random(28)
    words = ["a", "bb", "word", "longer-word", "x" * 25, "(about", "$0.70);", ""]
    for _ in range(400):
        text = "".join(rng.choice(words) + " " * rng.choice([0, 1, 1, 1, 2, 3])
                       for _ in range(rng.randint(0, 14)))
        width = rng.randint(1, 40)
        buf = io.StringIO()
        Console(file=buf, width=width, color_system=None, highlight=False).print(
            text, markup=False)
        assert "\n".join(plain.wrap(text, width)) + "\n" == buf.getvalue(), (text, width)


def test_plain_only_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    tty = io.StringIO()
    tty.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdout", tty)
    assert not plain.is_plain()
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert plain.is_plain()
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not plain.is_plain()
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    assert plain.is_plain()
    monkeypatch.setenv("COLUMNS", "0")
    assert plain.width() is None


_NEVER = ("rich", "pymediainfo", "platformdirs", "tomllib", "httpx", "sqlite3", "numpy", "xml",
          "importlib.metadata", "prep.jobs.timeline", "prep.jobs.references", "prep.jobs.journal")


@pytest.mark.media
@pytest.mark.parametrize(("command", "also_never", "records_only"), [
    (["probe"], ("json", "prep.core.plan", "prep.core.billing", "prep.ui.commands.prepare"), True),
    (["estimate"], ("json", "prep.core.plan", "prep.ui.commands.probe"), True),
    (["prepare", "-q", "-o", "OUT"], ("hashlib",), False),
])
def test_commands_load_only_what_they_need(tmp_path: Path, command: list[str],
                                           also_never: tuple[str, ...], records_only: bool) -> None:
    """`prep probe`, `estimate` and `prepare` (of a clip it copies) of one clip, redirected,
    import neither rich (output is written plainly) nor pymediainfo (libmediainfo is read
    through ctypes), platformdirs or tomllib (no config file), nor what else they do not use.
    `probe` and `estimate` compile no dataclass methods either: every frozen class they load
    is a `record` (a new `@dataclass` on their path shows up here by name)."""
    # faststart and no B-frames: a clip prepare copies as it is
    clip = mediagen.clip("copyable", seconds=3, extra=["-movflags", "+faststart"])
    code = (
        "import sys, runpy\n"
        "never = set(sys.argv[1].split(','))\n"
        "compiled = []\n"
        "def hook(event, args):\n"
        "    if event == 'compile' and args[1] == '<string>':\n"
        "        frame = sys._getframe(1)\n"
        "        while frame is not None and frame.f_code.co_name != '_process_class':\n"
        "            frame = frame.f_back\n"
        "        if frame is not None:\n"
        "            compiled.append(frame.f_locals['cls'].__qualname__)\n"
        "if sys.argv[2] == 'records':\n"
        "    sys.addaudithook(hook)\n"
        "sys.argv = ['prep', *sys.argv[3:]]\n"
        "try:\n"
        "    runpy.run_module('prep', run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code\n"
        "loaded = sorted(never & set(sys.modules))\n"
        "assert not loaded, loaded\n"
        "assert not compiled, sorted(set(compiled))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREP_CACHE_DIR": str(tmp_path / "c"),
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
    done = subprocess.run([sys.executable, "-c", code, ",".join(_NEVER + also_never),
                           "records" if records_only else "any", *args, str(clip)],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "3.0 s" in done.stdout or "3.0 -> 3.0 s" in done.stdout, done.stdout


@pytest.mark.parametrize("width", WIDTHS)
def test_prepare_table_is_rich_s_at_any_width(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str],
                                               width: int) -> None:
    from types import SimpleNamespace

    source = _info(LONG)
    plan = SimpleNamespace(video=None, audio=SimpleNamespace(rate=48_000), action="rewrap",
                           duration_ms=4_000)
    results = [
        SimpleNamespace(spec=LONG, source=source, output_info=replace(source, size_bytes=900),
                        output=Path("/tmp/ready") / Path(LONG).name, plan=plan, cached=True,
                        smart_cut=False, elapsed_s=0.123),
        SimpleNamespace(spec="b.mp4@0:01-0:05", source=_info("b.mp4"), output_info=None,
                        output=None, plan=replace_plan(plan), cached=False, smart_cut=True,
                        elapsed_s=0.0),
    ]
    rich_text, plain_text = _both(monkeypatch, capsys, width,
                                  lambda: render.prepare_table(results))
    assert plain_text == rich_text


def replace_plan(plan: Any) -> Any:
    """The same plan re-encoding both streams (so that the action has no audio note)."""
    from types import SimpleNamespace

    return SimpleNamespace(**{**vars(plan), "video": object(), "action": "transcode"})
