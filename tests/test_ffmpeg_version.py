"""The ffmpeg version gate: an ffmpeg older than prep's command lines need (5.1, for -fps_mode)
is passed over on PATH, refused when configured, and named by `prep doctor`."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from media_cases import case
from mediagen import CACHE

from prep.errors import ToolMissingError
from prep.media import ffmpeg as ffmpeg_module
from prep.media.ffmpeg import find_ffmpeg, inspect_chosen, too_old, version_of
from prep.ui.cli import cli

OLD_BANNER = ("ffmpeg version 4.2.2-static https://johnvansickle.com/ffmpeg/  Copyright (c) "
              "2000-2019 the FFmpeg developers")


@pytest.fixture(autouse=True)
def fresh_lookup() -> Iterator[None]:
    """Each test finds ffmpeg again (the lookup is cached per process)."""
    ffmpeg_module._find.cache_clear()
    ffmpeg_module.version_of.cache_clear()
    yield
    ffmpeg_module._find.cache_clear()
    ffmpeg_module.version_of.cache_clear()


def _fake_ffmpeg(folder: Path, banner: str) -> Path:
    """An `ffmpeg` that prints `banner` for -version and fails as ffmpeg 4.x does on -fps_mode."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "ffmpeg"
    script.write_text("#!/bin/sh\n"
                      f'for a; do [ "$a" = -version ] && {{ echo "{banner}"; exit 0; }}; done\n'
                      'echo "Unrecognized option \'fps_mode\'." >&2\n'
                      'echo "Error splitting the argument list: Option not found" >&2\nexit 1\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.mark.parametrize(("banner", "number"), [
    (OLD_BANNER, (4, 2)),
    ("ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright (c) 2000-2021", (4, 4)),
    ("ffmpeg version n5.1.2 Copyright (c) 2000-2022", (5, 1)),
    ("ffmpeg version 7.0.2-static https://johnvansickle.com/ffmpeg/", (7, 0)),
    ("ffmpeg version N-112345-g0123abcd Copyright (c) 2000-2024", None),  # a git build
])
def test_version_of(tmp_path: Path, banner: str, number: tuple[int, int] | None) -> None:
    _, found = version_of(str(_fake_ffmpeg(tmp_path, banner)))
    assert found == number
    assert too_old(found) == (number is not None and number < (5, 1))


def test_old_ffmpeg_on_path_is_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_ffmpeg(tmp_path / "bin", OLD_BANNER)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    binary = find_ffmpeg("")
    assert binary.source == "imageio-ffmpeg"
    assert "4.2.2" in binary.note and "5.1" in binary.note and str(tmp_path / "bin") in binary.note


def test_new_ffmpeg_on_path_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_ffmpeg(tmp_path / "bin", "ffmpeg version 6.1.1 Copyright")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    binary = find_ffmpeg("")
    assert (binary.path, binary.source, binary.note) == (str(fake), "PATH", "")


def test_old_configured_ffmpeg_is_refused(tmp_path: Path) -> None:
    fake = _fake_ffmpeg(tmp_path, OLD_BANNER)
    with pytest.raises(ToolMissingError) as caught:
        find_ffmpeg(str(fake))
    assert caught.value.exit_code == 6
    assert "version 4.2.2" in str(caught.value) and "5.1 or newer" in str(caught.value)
    assert str(fake) in str(caught.value) and "PREP_FFMPEG" in caught.value.hint


@pytest.mark.media
def test_prepare_with_old_ffmpeg_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the gate, every encode ran the old ffmpeg and failed at -fps_mode."""
    _fake_ffmpeg(tmp_path / "bin", OLD_BANNER)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    result = CliRunner().invoke(cli, ["prepare", str(case("mjpeg")), "-o", str(tmp_path / "out"),
                                      "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "version 4.2.2" in result.stderr and "bundled with imageio-ffmpeg" in result.stderr


@pytest.mark.media
def test_prepare_with_old_configured_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREP_FFMPEG", str(_fake_ffmpeg(tmp_path / "bin", OLD_BANNER)))
    result = CliRunner().invoke(cli, ["prepare", str(case("mjpeg")), "-o", str(tmp_path / "out"),
                                      "--no-cache"])
    assert result.exit_code == 6, result.output
    assert "version 4.2.2" in result.stderr


def test_doctor_names_an_old_configured_ffmpeg(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREP_FFMPEG", str(_fake_ffmpeg(tmp_path / "bin", OLD_BANNER)))
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 6, result.output
    assert "4.2.2" in result.stdout and "too old" in result.stdout
    assert "5.1 or newer" in result.stderr
    as_json = CliRunner().invoke(cli, ["doctor", "--json"])
    assert as_json.exit_code == 6
    report = json.loads(as_json.stdout)
    assert report["version"] == "4.2.2-static" and report["version_ok"] is False
    assert report["ok"] is False


def test_doctor_tells_of_an_ffmpeg_passed_over(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_ffmpeg(tmp_path / "bin", OLD_BANNER)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"] == "imageio-ffmpeg" and "4.2.2" in report["note"]
    assert "4.2.2" in result.stderr


def test_doctor_fails_without_mediainfo(monkeypatch: pytest.MonkeyPatch) -> None:
    import pymediainfo

    monkeypatch.setattr(pymediainfo.MediaInfo, "can_parse", classmethod(lambda cls: False))
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 6
    assert json.loads(result.stdout)["mediainfo"] == "missing"
    assert "MediaInfo" in result.stderr


# A real ffmpeg 4.2.2 (from the imageio-ffmpeg 0.5.1 wheel): scripts/test fetches it once into the
# test cache (`fetch_old_ffmpeg` in scripts/_bootstrap.sh); PREP_OLD_FFMPEG names another.
OLD_FFMPEG = Path(os.environ.get("PREP_OLD_FFMPEG", CACHE / "old-ffmpeg" / "ffmpeg-4.2.2"))


@pytest.mark.skipif(not OLD_FFMPEG.is_file(),
                    reason=f"no old ffmpeg at {OLD_FFMPEG}: scripts/test fetches it")
@pytest.mark.media
def test_real_old_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, number = version_of(str(OLD_FFMPEG))
    assert number is not None and too_old(number), text
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ffmpeg").symlink_to(OLD_FFMPEG)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert inspect_chosen("").source == "imageio-ffmpeg"
    result = CliRunner().invoke(cli, ["prepare", str(case("mjpeg")), "-o", str(tmp_path / "out"),
                                      "--no-cache"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("PREP_FFMPEG", str(OLD_FFMPEG))
    refused = CliRunner().invoke(cli, ["prepare", str(case("mjpeg")), "-o",
                                       str(tmp_path / "out2"), "--no-cache"])
    assert refused.exit_code == 6 and "4.2.2" in refused.stderr
