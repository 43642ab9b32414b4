"""Jobs on the newer models, end to end: probe's verdict per model, the balance pre-flight that
counts a smart-duration hold, and a wan3.0 job through `generate` whose hold the sandbox reserves
exactly as prep estimated it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_encoder import fake_mp4
from mediagen import clip
from test_engine import PROMPT, Env

from prep.api.client import Client, Credits
from prep.core.request import RequestOptions
from prep.errors import QuotaError
from prep.jobs.generate import GenerateOptions, generate
from prep.ui.cli import cli

WAN30 = "wan3.0-reference-video"


# Every test here runs on the engine's test bench: conftest.py's `fast` and `env`.
pytestmark = pytest.mark.usefixtures("fast")


# -- probe: the verdict is the model's ------------------------------------------------------------


def _probe(*args: str) -> Any:
    result = CliRunner().invoke(cli, ["probe", *args, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.media
def test_probe_judges_each_model() -> None:
    short = clip("short12", seconds=1.2, size="320x240", audio=False)
    long = clip("long20", seconds=20, size="320x240", audio=False)
    rows = _probe(str(short), str(long), "--model", "2.6", "--model", "3.0")
    verdicts = {(Path(r["path"]).name, m["model"]): m["compliant"] for r in rows for m in r["models"]}
    assert verdicts == {(short.name, "wan2.6-reference-video"): False, (short.name, WAN30): True,
                        (long.name, "wan2.6-reference-video"): True, (long.name, WAN30): False}
    # The row's own verdict is the first model's.
    assert [(r["model"], r["compliant"]) for r in rows] == [("wan2.6-reference-video", False),
                                                           ("wan2.6-reference-video", True)]
    [row] = _probe(str(long), "--model", "3.0")
    assert not row["compliant"] and "takes at most 15.0 s" in row["problems"][0]
    assert len(_probe(str(short), "--model", "all")[0]["models"]) == 5
    table = CliRunner().invoke(cli, ["probe", str(short), "--model", "3.0"])
    assert table.exit_code == 0 and f"{short.name} on {WAN30}: takes it" in table.stdout
    assert CliRunner().invoke(cli, ["probe", str(short), "--model", "9.9"]).exit_code == 2


# -- the balance counts the hold ------------------------------------------------------------------


class _LowBalance(Client):
    def credits(self) -> Credits | None:
        return Credits(key_remaining_units=1_000_000, account_remaining_units=10**9)


def test_the_balance_preflight_counts_the_smart_duration_hold(env: Env) -> None:
    # (3 s of clip + a 30 s hold) x 2.55 x 2 = 168.3 credits, above the 100 the key has; the
    # same job at 5 s would cost (3 + 5) x 5.1 = 40.8 and pass.
    options = GenerateOptions(request=RequestOptions(prompt=PROMPT, model="3.0", duration_s=-1),
                              out_dir=env.out)
    with _LowBalance.from_settings(env.settings()) as low, pytest.raises(QuotaError) as caught:
        generate([env.clip()], options, env.settings(), client=low)
    assert caught.value.message == (
        "this job needs 168.3 credits (wan3.0-reference-video holds 30 s of output for duration -1 "
        "until the task settles); the key has 100.0 left")
    assert env.uploads() == 0 and not env.encoder.calls


# -- end to end on the sandbox --------------------------------------------------------------------


def test_the_sandbox_reserves_exactly_prep_s_estimate_for_a_wan30_job(env: Env) -> None:
    options = GenerateOptions(
        request=RequestOptions(prompt=PROMPT, model="3.0", duration_s=-1, quality="480p",
                               aspect_ratio="adaptive", seed=42),
        out_dir=env.out, wait=False)
    result = generate([env.clip()], options, env.settings())
    assert result.task_id, result.as_dict()
    assert result.estimate.credits_units == (3 + 30) * 25_500  # hand arithmetic: 480p x 1
    [task] = env.tasks()
    assert task["model"] == WAN30
    assert task["credits_units"] == result.estimate.credits_units


# -- prepare to the chosen model's rules ----------------------------------------------------------


@pytest.mark.media
def test_a_45_s_clip_prepared_for_wan30_is_cut_to_15_s_with_a_note(tmp_path: Path) -> None:
    long = clip("long45", seconds=45, size="320x240")
    result = CliRunner().invoke(cli, ["prepare", str(long), "-o", str(tmp_path / "ready"),
                                      "--model", "3.0", "--json"])
    assert result.exit_code == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert 14.0 <= row["duration_s"] <= 15.0
    assert "is 45.0 s; prep uses its first 14.9" in " ".join(row["notes"])
    [probed] = _probe(row["output"], "--model", "3.0")
    assert probed["compliant"], probed["problems"]
    # The same source for wan2.6 keeps its first 30 s (as before).
    dry = CliRunner().invoke(cli, ["prepare", str(long), "-o", str(tmp_path / "r26"), "--dry-run",
                                   "--json"])
    assert 29.0 <= json.loads(dry.stdout)[0]["duration_s"] <= 30.0


@pytest.mark.media
def test_a_clip_under_wan30_s_smallest_side_is_prepared_up_to_it(tmp_path: Path) -> None:
    small = clip("small-320x180", seconds=3, size="320x180", extra=["-movflags", "+faststart"])
    [before] = _probe(str(small), "--model", "3.0")
    assert not before["compliant"] and "240-4096 px a side" in " ".join(before["problems"])
    result = CliRunner().invoke(cli, ["prepare", str(small), "-o", str(tmp_path / "r30"),
                                      "--model", "3.0", "--json"])
    assert result.exit_code == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert row["action"] == "transcode" and "320x180 needs resizing" in row["reasons"]
    [probed] = _probe(row["output"], "--model", "3.0")
    assert (probed["width"], probed["height"]) == (426, 240)
    assert probed["compliant"], probed["problems"]
    # wan2.6 takes it as it is: copied, not scaled.
    plain = CliRunner().invoke(cli, ["prepare", str(small), "-o", str(tmp_path / "r26"), "--json"])
    assert json.loads(plain.stdout)[0]["action"] == "copy"


@pytest.mark.media
def test_clips_over_wan30_s_total_are_refused_before_any_work(tmp_path: Path) -> None:
    a, b = clip("ten-a", seconds=10, size="320x240"), clip("ten-b", seconds=8, size="320x240")
    out = tmp_path / "ready"
    result = CliRunner().invoke(cli, ["prepare", str(a), str(b), "-o", str(out), "--model", "3.0"])
    assert result.exit_code == 2
    assert "the clips come to 18.0 s as prepared; wan3.0-reference-video takes at most 15.0 s of " \
           "reference video in all: cut 3.0 s" in result.stderr
    assert not out.exists()


def test_a_wan30_job_plans_its_clips_to_15_s(env: Env) -> None:
    fake_mp4(env.tmp / "clips" / "long.mp4", 20_000)
    plan = env.plan(env.job("w", "long.mp4", model="3.0"))
    [job] = plan.jobs
    assert max(c.window.duration_ms for c in job.clips) <= 15_000
    assert job.estimate.model == WAN30 and job.estimate.input_billed_ms <= 15_000
