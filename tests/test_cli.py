"""The command line: tables, JSON, and every exit code, through click's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import mediagen
import pytest
from click.testing import CliRunner

from prep.core.plan import PROFILE_SETTINGS, PROFILES, Profile
from prep.errors import ExitCode
from prep.ui.cli import cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _commands(group: click.Group) -> list[list[str]]:
    return [[name] for name in group.list_commands(click.Context(group))]


@pytest.mark.parametrize("command", _commands(cli))
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    code, out, _ = run(*command, "--help")
    assert code == 0
    assert "Usage: " in out
    assert "prep " + command[0] in out or "Example" in out


def test_help_is_fast_because_nothing_heavy_is_imported() -> None:
    code = (
        "import sys, prep.ui.cli\n"
        "heavy = {'rich', 'httpx', 'pymediainfo', 'ffmpeg', 'platformdirs', 'sqlite3', 'numpy',\n"
        "         'PIL', 'cv2', 'starlette', 'uvicorn'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_the_cli_imports_no_command_module() -> None:
    """The group is lazy: a command's module loads when that command runs, not before."""
    code = (
        "import sys, prep.ui.cli\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('prep.ui.commands.'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_lists_every_command_with_its_own_short_help() -> None:
    """The table the group's help reads says what each command's docstring says."""
    from prep.ui.cli import COMMANDS

    ctx = click.Context(cli)
    assert sorted(COMMANDS) == cli.list_commands(ctx)
    for name, short in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(limit=300) == short
    code, out, _ = run("--help")
    assert code == 0
    listed = out.split("Commands:", 1)[1].split()
    assert all(name in listed for name in COMMANDS)


def test_shell_completion_offers_the_commands_without_importing_them() -> None:
    code = (
        "import sys, click\n"
        "from prep.ui.cli import cli\n"
        "items = cli.shell_complete(click.Context(cli), 'ta')\n"
        "assert [i.value for i in items] == ['task', 'tasks'], items\n"
        "assert items[0].help.startswith('Status of a generation task')\n"
        "assert not [m for m in sys.modules if m.startswith('prep.ui.commands.')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    env = {**__import__("os").environ, "_PREP_COMPLETE": "bash_complete", "COMP_WORDS": "prep pro",
           "COMP_CWORD": "1"}
    done = subprocess.run([sys.executable, "-c", "from prep.ui.cli import main; main()"],
                          env=env, capture_output=True, text=True, check=False)
    assert "probe" in done.stdout


def test_python_dash_m_prep() -> None:
    out = subprocess.run([sys.executable, "-m", "prep", "--version"], check=True,
                         capture_output=True, text=True).stdout
    assert "prep" in out


@pytest.mark.parametrize(("args", "frozen"), [(["schema"], True), (["--help"], False),
                                             (["probe", "--help"], True), (["nope"], False)])
def test_the_collector_is_paused_only_while_the_command_line_loads(args: list[str],
                                                                    frozen: bool) -> None:
    """`python -m prep` pauses the cyclic garbage collector until the command's module is in
    (no collection runs while the command line loads), freezes what loading made and collects
    as usual while the command runs; a run that ends before any command module loads leaves
    it as it was."""
    code = (
        "import gc, sys, runpy\n"
        "early = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'start' and early.append(\n"
        "    'prep.ui.cli' in sys.modules\n"
        "    and not any(m.startswith('prep.ui.commands.') for m in sys.modules)))\n"
        "sys.argv = ['prep', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('prep', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert gc.isenabled()\n"
        "print(gc.get_freeze_count() > 0, not any(early))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # Without a command, the collector is back on when the run ends (and may then collect).
    assert done.stdout.splitlines()[-1] in ({f"{frozen} True"} if frozen else {"False True",
                                                                                 "False False"})


def test_main_leaves_the_collector_as_it_found_it(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """In a process that goes on (a test, a host program), a run without a command turns the
    collector back on and freezes nothing."""
    import gc

    from prep.ui.cli import main

    monkeypatch.setattr(sys, "argv", ["prep", "--version"])
    assert gc.isenabled()
    with pytest.raises(SystemExit):
        main()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert "prep" in capsys.readouterr().out


@pytest.mark.media
def test_probe_table_and_json(tmp_path: Path) -> None:
    clip = mediagen.clip("plain", seconds=3, rate="30000/1001")
    code, out, _ = run("probe", str(clip))
    assert code == 0 and "h264" in out and "ok" in out
    code, out, _ = run("probe", str(clip), "--json")
    assert code == 0
    (row,) = json.loads(out)
    for key in ("path", "duration_s", "size_bytes", "container", "video_codec", "width", "height",
                "fps", "has_audio", "compliant", "problems", "advice"):
        assert key in row
    assert row["compliant"] is True and row["width"] == 640


@pytest.mark.media
def test_probe_reports_good_clips_and_exits_3_for_bad_ones(tmp_path: Path) -> None:
    clip = mediagen.clip("plain", seconds=3, rate="30000/1001")
    missing = tmp_path / "gone.mov"
    code, out, err = run("probe", str(missing), str(clip), "--json")
    assert code == 3
    rows = json.loads(out)
    assert rows[0]["error"] == "no such file" and rows[1]["compliant"] is True
    assert err.strip().splitlines() == [f"error: {missing}: no such file (check the path and its spelling)"]


def test_empty_folder_is_a_media_error(tmp_path: Path) -> None:
    code, _, err = run("probe", str(tmp_path))
    assert code == 3 and "no video files" in err


@pytest.mark.media
def test_estimate_table_and_json() -> None:
    clip = mediagen.clip("long", seconds=31, size="160x90")
    code, out, _ = run("estimate", str(clip))
    assert code == 0 and "47.6 credits" in out and "would not change the bill" in out
    code, out, err = run("estimate", f"{clip}@0:02-0:20", "--quality", "1080p", "--json")
    data = json.loads(out)
    assert code == 0 and data["credits"] == 79.492 and data["total_billed_s"] == 10.0
    assert data["clips"][0]["duration_s"] == 18.0 and "79.492" in err


@pytest.mark.media
def test_estimate_long_clip_is_billed_as_prepared() -> None:
    clip = mediagen.clip("long", seconds=31, size="160x90")
    code, out, _ = run("estimate", str(clip), "--json")
    data = json.loads(out)
    assert data["clips"][0]["duration_s"] < 30.0
    assert any("first" in n for n in data["clips"][0]["notes"])


def test_estimate_from_seconds() -> None:
    code, out, _ = run("estimate", "--seconds", "2", "--seconds", "10", "--seconds", "30",
                       "--duration", "2", "--json")
    assert code == 0 and json.loads(out)["credits"] == 33.082


def test_price_overrides_from_options_and_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run("estimate", "--seconds", "5", "--price-per-second", "1", "--json")
    data = json.loads(out)
    assert data["credits"] == 10.0 and "command-line" in data["price_source"]
    config = tmp_path / "config.toml"
    config.write_text('[prices]\nprice_per_second = 2\nprice_source = "my contract"\n'
                      'price_effective = "2026-11-01"\n')
    monkeypatch.setenv("PREP_CONFIG", str(config))
    code, out, _ = run("estimate", "--seconds", "5", "--json")
    data = json.loads(out)
    assert data["credits"] == 20.0 and data["price_source"] == "my contract, effective 2026-11-01"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["estimate", "--seconds", "3", "--duration", "11"], "2 to 10 whole seconds"),
        (["estimate", "--seconds", "3", "--quality", "4k"], "'4k' is not one of"),
        (["estimate", "--seconds", "3"] * 1 + ["--seconds", "3"] * 3, "1 to 3 reference clips"),
        (["estimate", "a.mov@5-2"], "must come before END"),
        (["estimate", "a.mov@1:75-"], "below 60"),
        (["estimate", "a.mov@x-2"], "not understood"),
        (["estimate", "--seconds", "1.5"], "at least 2.0 s"),
        (["estimate", "--seconds", "abc"], "not understood"),
        (["estimate"], "give 1 to 3 clips"),
        (["estimate", "a.mov", "b.mov", "--start", "3"], "exactly one clip"),
        (["estimate", "--seconds", "3", "--price-per-second", "x"], "number of credits"),
        (["probe"], "Missing argument"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    code, _, err = run(*args)
    assert code == 2, err
    assert message in err


def test_missing_clip_in_estimate_exits_3(tmp_path: Path) -> None:
    code, _, err = run("estimate", str(tmp_path / "nope.mov"))
    assert code == 3 and "no such file" in err


@pytest.mark.media
def test_short_clip_needs_extend() -> None:
    short = mediagen.clip("short", seconds=1.2, size="160x90")
    code, _, err = run("estimate", str(short))
    assert code == 3 and "--extend" in err
    code, out, _ = run("estimate", str(short), "--extend", "loop", "--json")
    assert code == 0 and json.loads(out)["clips"][0]["duration_s"] > 2.0


def test_unexpected_errors_exit_1_with_a_report_link(monkeypatch: pytest.MonkeyPatch) -> None:
    import prep.core.billing

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr(prep.core.billing, "estimate_durations", boom)
    code, _, err = run("estimate", "--seconds", "3")
    assert code == 1 and "this is a bug" in err and "kaput" in err


def _profile_choices(command: click.Command) -> tuple[str, ...]:
    (option,) = [p for p in command.params if p.name == "profile"]
    assert isinstance(option.type, click.Choice)
    return tuple(option.type.choices)


def test_every_command_that_encodes_offers_every_profile() -> None:
    """prepare, generate and batch take --profile from the one list of profiles."""
    ctx = click.Context(cli)
    batch = cli.get_command(ctx, "batch")
    assert isinstance(batch, click.Group)
    for command in (cli.get_command(ctx, "prepare"), cli.get_command(ctx, "generate"),
                    batch.commands["run"]):
        assert command is not None
        assert _profile_choices(command) == PROFILES


@pytest.mark.media
@pytest.mark.parametrize("profile", PROFILES)
def test_prepare_profile_shows_in_dry_run_json(tmp_path: Path, profile: Profile) -> None:
    clip = mediagen.clip("profile", seconds=3, size="160x90", audio=False, vcodec=["-c:v", "mpeg4"])
    code, out, err = run("prepare", str(clip), "-o", str(tmp_path / "x"), "--profile", profile,
                         "--dry-run", "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["action"] == "transcode" and row["profile"] == profile
    assert f"x264 {PROFILE_SETTINGS[profile].preset} CRF" in err
    assert not (tmp_path / "x").exists()


def test_a_reader_that_goes_away_is_not_a_bug() -> None:
    """`prep estimate ... | head -1`: the pipe closes while prep still writes. prep stops quietly
    with 141 (128 + SIGPIPE, as a shell tool ended by it), not an internal error, and Python's
    last flush of stdout does not complain either."""
    proc = subprocess.Popen([sys.executable, "-m", "prep", "estimate", "--seconds", "3", "--seconds", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == ExitCode.BROKEN_PIPE == 141
    assert err == ""
