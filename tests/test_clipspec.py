"""Clip specs: pure parsing in core (existence asked of the caller), the disk at the media edge."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from prep.core import clipspec
from prep.errors import UsageError
from prep.media import clips
from prep.ui.cli import cli


def parse(text: str, *existing: str) -> clipspec.ClipSpec:
    """Parse `text` as if exactly the paths in `existing` were on disk."""
    return clipspec.parse_clip_spec(text, exists=lambda path: path in existing)


def test_core_parsing_asks_the_caller_whether_a_path_exists() -> None:
    assert parse("take.mov@1-2", "take.mov@1-2").window.is_open  # exists as written: a path
    spec = parse("take.mov@1-2")  # not on disk: a window
    assert spec.path == Path("take.mov") and not spec.window.is_open
    assert parse("me@home.mov").path == Path("me@home.mov")  # no window syntax, nothing there


@pytest.mark.parametrize(("text", "match"), [
    ("clip.mp4@abc", "timecode 'abc' is not understood"),
    ("clip.mp4@1:7x", "timecode '1:7x' is not understood"),
    ("clip.mp4@5", "'5' is one time, not a window"),
])
def test_existing_clip_with_a_bad_window_is_a_timecode_error(text: str, match: str) -> None:
    with pytest.raises(UsageError, match=match) as info:
        parse(text, "clip.mp4")
    assert info.value.exit_code == 2
    assert "clip.mp4@" in info.value.hint


def test_missing_clip_with_at_sign_is_still_a_file_name() -> None:
    assert parse("clip.mp4@abc").path == Path("clip.mp4@abc")


def test_edge_parser_reads_the_disk(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    with pytest.raises(UsageError, match="'abc' is not understood"):
        clips.parse_clip_spec(f"{clip}@abc")
    odd = tmp_path / "clip.mp4@abc"
    odd.write_bytes(b"x")
    assert clips.parse_clip_spec(str(odd)).path == odd  # an existing path as written still wins
    assert clips.parse_clip_spec(f"{clip}@1-3").window.resolve(None, 5_000, "c") == (1_000, 3_000)


def test_cli_bad_window_on_an_existing_clip_exits_2(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    result = CliRunner().invoke(cli, ["estimate", f"{clip}@abc"])
    assert result.exit_code == 2, result.output
    assert "abc" in result.stderr and "no such file" not in result.stderr


def test_folder_expansion_lives_at_the_edge(tmp_path: Path) -> None:
    for name in ("b.mov", "a.mp4", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    specs = clips.expand_paths([clips.parse_clip_spec(str(tmp_path))])
    assert [s.path.name for s in specs] == ["a.mp4", "b.mov"]
    assert not hasattr(clipspec, "expand_paths")
