"""The studio's server side of the models (issue 23): each model's output durations in the state,
the one compare route (the CLI's `estimate --compare --json`, with the user's prices), and a bill
on a model whose clip range differs from wan2.6's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_studio import client, clip_id, footage, job_body, settings_for  # noqa: F401  (fixtures)

from prep.core import rules
from prep.sandbox import Sandbox
from prep.settings import price_table
from prep.ui.cli import cli
from prep.ui.studio import RunningStudio, Studio, run_in_thread

pytestmark = pytest.mark.media
WAN30 = rules.WAN30.id


@pytest.fixture()
def running(sandbox: Sandbox, footage: Path, tmp_path: Path) -> Iterator[RunningStudio]:  # noqa: F811
    settings = replace(settings_for(sandbox, tmp_path),
                       prices=price_table({"wan30_price_per_second": "3"}, {}, "test"))
    studio = run_in_thread(Studio([footage], tmp_path / "out", settings))
    try:
        yield studio
    finally:
        studio.stop()


def test_the_state_has_each_models_durations_from_its_table(running: RunningStudio) -> None:
    with client(running) as http:
        model_rules = http.get("/api/state").json()["rules"]["model_rules"]
    assert set(model_rules) == {m.id for m in rules.MODEL_SPECS}
    assert model_rules[rules.MODEL] == {
        "min_output_s": 2, "max_output_s": 10, "max_output_with_videos_s": None,
        "default_output_s": 5, "smart_duration": False, "smart_hold_s": None,
        "qualities": ["720p", "1080p"], "min_clip_ms": 2000, "max_clip_ms": 30000, "max_clips": 3,
        "billed_head_ms": {"1": 5000, "2": 2500, "3": 1650}}
    # wan3.0 bills every second of every clip: no head.
    assert model_rules["wan3.0-reference-video"]["billed_head_ms"] == {str(n): None for n in range(1, 6)}
    assert model_rules["wan2.7-reference-video"]["max_output_with_videos_s"] == 10
    assert (model_rules[WAN30]["max_output_s"], model_rules[WAN30]["smart_duration"]) == (30, True)


def test_compare_is_the_cli_compare_with_the_users_prices(running: RunningStudio, footage: Path) -> None:  # noqa: F811
    with client(running) as http:
        take, blip = clip_id(http, "take.mp4"), clip_id(http, "blip.mp4")
        body = {"clips": [{"id": take, "start_ms": 1000, "end_ms": 5000}, {"id": blip}],
                "model": "3.0", "duration": 5}
        data = http.post("/api/compare", json=body).json()
        refused = http.post("/api/compare", json={**body, "duration": 40})
    cli_rows = json.loads(CliRunner().invoke(cli, [
        "estimate", f"{footage / 'take.mp4'}@1.0-5.0", str(footage / "blip.mp4"), "--compare",
        "--wan30-price-per-second", "3", "--json", "-q"]).stdout)["models"]
    assert [(r["model"], r["credits_units"]) for r in data["models"]] == \
        [(r["model"], r["credits_units"]) for r in cli_rows]
    row30 = next(r for r in data["models"] if r["model"] == WAN30)
    assert row30["credits_units"] == 630_000  # (4 + 1.5 + 5) x 2 x 3 credits
    assert row30["credits_text"] == "63 credits"
    assert data["chosen_model"] == WAN30
    assert not next(r for r in data["models"] if r["model"] == rules.MODEL)["accepted"]
    # A duration the chosen model does not take is refused as /api/estimate refuses it.
    assert refused.status_code == 400 and "duration" in refused.json()["error"]


def test_the_bill_windows_clips_to_the_chosen_models_range(running: RunningStudio) -> None:
    with client(running) as http:
        blip = clip_id(http, "blip.mp4")
        on26 = http.post("/api/estimate", json={"clips": [{"id": blip}]}).json()
        on30 = http.post("/api/estimate", json={"clips": [{"id": blip}], "model": "3.0"}).json()
    assert on26["bill"] is None and on26["problems"]
    # 1.5 s is within wan3.0's 1-15 s: (1.5 + 5) x 2 x 3 = 39 credits by the user's price.
    assert on30["bill"]["credits_units"] == 390_000, on30
