"""`prepare --loudness`: the plan, the loudnorm argv (pure) and a two-pass run on a quiet clip."""

from __future__ import annotations

import json
from pathlib import Path

import checkmedia
import pytest
from click.testing import CliRunner

from prep.core.plan import Loudness
from prep.media.ffmpeg import loudness_scan_args, parse_loudnorm
from prep.pick.check import check_clip
from prep.ui.cli import cli

FIRST_PASS = """[Parsed_loudnorm_0 @ 0x1] 
{
\t"input_i" : "-37.87",
\t"input_tp" : "-18.90",
\t"input_lra" : "1.10",
\t"input_thresh" : "-48.20",
\t"output_i" : "-16.50",
\t"normalization_type" : "dynamic",
\t"target_offset" : "0.50"
}
"""


def test_scan_args_measure_the_window() -> None:
    args = loudness_scan_args("take.mp4", Loudness(target_lufs=-16), start_ms=1_500,
                              duration_ms=4_000)
    assert args == ["-ss", "1.500", "-t", "4.000", "-i", "take.mp4", "-filter_complex",
                    "[0:a:0]loudnorm=I=-16:LRA=11:TP=-1.5:print_format=json[s0]", "-map", "[s0]",
                    "-f", "null", "-"]


def test_parse_loudnorm_keeps_numbers() -> None:
    figures = parse_loudnorm("noise\n" + FIRST_PASS)
    assert figures["input_i"] == -37.87 and figures["target_offset"] == 0.5
    assert "normalization_type" not in figures
    assert parse_loudnorm("no summary") == {}


def test_loudness_target_is_checked() -> None:
    with pytest.raises(ValueError):
        Loudness(target_lufs=-60)


@pytest.mark.media
def test_prepare_loudness_normalises_a_quiet_voice_and_copies_the_video(tmp_path: Path) -> None:
    quiet = checkmedia.quiet()
    assert check_clip(quiet).check("loudness").status == "fail"
    result = CliRunner().invoke(cli, ["prepare", str(quiet), "-o", str(tmp_path), "--loudness",
                                      "-16", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]
    assert row["video_action"] == "copy" and row["audio_action"] == "transcode"
    assert any("measured on the output" in note for note in row["notes"])
    after = check_clip(Path(row["output"]))
    assert after.check("loudness").status == "pass"
    assert after.check("loudness").value == pytest.approx(-16, abs=1.5)
    assert after.check("clipping").value is not None and after.check("clipping").value <= -1.0
