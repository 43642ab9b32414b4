"""The studio's model-aware parts in a real browser: the duration field follows the chosen model's
table (clamping with a visible note), and "Compare models" prices the job on every model through
the server's one JSON route. Same Chromium and sandbox as tests/test_studio_browser.py."""

from __future__ import annotations

import json
import re
from typing import Any

import chromium
import pytest
from test_studio_browser import footage, open_clip, studio  # noqa: F401  (fixtures)

from prep.ui.studio import RunningStudio

# The studio's own tests: a clip's analysis is made once a process and reused by the next
# studio (tests/analyses.py); what the studio does with it is what is tested.
pytestmark = [pytest.mark.media, pytest.mark.usefixtures("reuse_analyses")]

sync_api = chromium.sync_api()
WAN30 = "wan3.0-reference-video"


def _durations(page: Any) -> list[str]:
    return list(page.evaluate("[...document.querySelectorAll('#duration option')].map(o => o.value)"))


def test_the_duration_field_follows_the_model(page: Any, studio: RunningStudio) -> None:  # noqa: F811
    expect = sync_api.expect
    page.goto(studio.url)
    open_clip(page, "take.mp4")
    duration, note = page.get_by_test_id("duration"), page.get_by_test_id("duration-note")
    model = page.locator("#model")
    expect(page.get_by_test_id("cost")).to_have_text("47.6 credits")
    assert _durations(page) == [str(s) for s in range(2, 11)]  # wan2.6: 2-10 s
    model.select_option("wan2.7-reference-video")
    assert _durations(page) == [str(s) for s in range(2, 11)]  # 2-15 s, but 10 with videos
    model.select_option(WAN30)
    assert _durations(page) == ["-1", *(str(s) for s in range(2, 31))]  # 2-30 s, or -1
    expect(duration).to_have_value("5")
    expect(note).to_be_hidden()
    duration.select_option("20")
    # 6 s of clip + 20 s of output at 720p: 26 s x 5.1 = 132.6 credits.
    expect(page.get_by_test_id("cost")).to_have_text("132.6 credits")

    model.select_option("wan2.6-reference-video")  # 20 s is past wan2.6's 10: clamped, and said
    expect(duration).to_have_value("10")
    expect(note).to_be_visible()
    expect(note).to_contain_text("2-10 s of output")
    expect(note).to_contain_text("now 10 s")
    expect(page.get_by_test_id("cost")).to_have_text("71.4 credits")  # (5 + 10) x 4.76

    model.select_option(WAN30)
    duration.select_option("-1")
    expect(note).to_be_hidden()
    model.select_option("wan2.7-reference-video")  # no smart duration: its default instead
    expect(duration).to_have_value("5")
    expect(note).to_contain_text("no smart duration")
    assert page.problems == []


def test_compare_models_prices_the_job_on_every_model(page: Any, studio: RunningStudio) -> None:  # noqa: F811
    expect = sync_api.expect
    refused: list[str] = []
    page.on("response", lambda r: refused.append(r.url) if r.status >= 400 else None)
    page.goto(studio.url)
    open_clip(page, "take.mp4")
    expect(page.get_by_test_id("cost")).to_have_text("47.6 credits")
    open_clip(page, "blip.mp4")  # 1.5 s: under wan2.6's 2 s, within wan3.0's 1-15 s
    page.locator("#add-to-job").click()
    compare = page.get_by_test_id("compare")
    expect(compare).to_have_attribute("aria-expanded", "false")
    compare.click()
    expect(compare).to_have_attribute("aria-expanded", "true")
    rows = page.get_by_test_id("compare-row")
    expect(rows).to_have_count(6)
    wan26 = rows.filter(has_text="wan2.6-reference-video (chosen)")
    expect(wan26).to_contain_text("refuses")
    expect(wan26).to_contain_text("2-30 s per video")
    # wan3.0 bills every second: (6 + 1.5 + 5) x 2.55 x 2 = 63.75 credits.
    expect(rows.filter(has_text=WAN30).filter(has_not_text="prime")).to_contain_text("63.75 credits")
    # The prime row at its table's price: 12.5 x 2.06 x 3.9304 = 101.2078 credits (half-up).
    expect(rows.filter(has_text="prime")).to_contain_text("101.2078 credits")
    expect(page.locator("#compare-status")).to_contain_text("At 720p, 5 s of output")

    # The open comparison follows the job: a longer output is priced again.
    page.locator("#model").select_option(WAN30)
    page.get_by_test_id("duration").select_option("10")
    expect(rows.filter(has_text=f"{WAN30} (chosen)")).to_contain_text("89.25 credits")  # 17.5 x 5.1

    # The only refusal is the timeline analysis of the 1.5 s clip (too short to pick in): neither
    # the bill nor the comparison was refused.
    assert all("/analysis" in url for url in refused), refused
    assert all("400" in problem for problem in page.problems), page.problems
    # A job the route cannot price is a 400 with the reason, as /api/estimate answers.
    answer = page.evaluate(
        "async (token) => (await fetch('/api/compare', {method: 'POST', headers: {'X-Prep-Token': token},"
        " body: JSON.stringify({clips: [], model: '3.0'})})).status", studio.studio.token)
    assert answer == 400


def test_axe_finds_nothing_with_the_comparison_open(page: Any, studio: RunningStudio) -> None:  # noqa: F811
    source = chromium.axe_source()
    page.goto(studio.url)
    open_clip(page, "take.mp4")
    sync_api.expect(page.get_by_test_id("cost")).to_have_text("47.6 credits")
    page.locator("#model").select_option(WAN30)
    page.get_by_test_id("duration").select_option("20")
    page.locator("#model").select_option("wan2.6-reference-video")
    sync_api.expect(page.get_by_test_id("duration-note")).to_be_visible()
    page.get_by_test_id("compare").click()
    sync_api.expect(page.get_by_test_id("compare-row")).to_have_count(6)
    page.evaluate(source)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    found = [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    assert found == [], json.dumps(found, indent=1)


def test_the_window_and_the_library_are_judged_by_the_chosen_model(
        page: Any, studio: RunningStudio) -> None:  # noqa: F811
    expect = sync_api.expect
    page.goto(studio.url)
    blip = page.get_by_test_id("clip").filter(has_text="blip.mp4")
    expect(blip).to_contain_text("API refuses")  # 1.5 s: under wan2.6's 2 s
    open_clip(page, "blip.mp4")
    verdict = page.locator("#clip-verdict")
    expect(verdict).to_have_text("API refuses this window")
    expect(page.locator("#window-error")).to_contain_text("wan2.6-reference-video needs at least 2")
    page.locator("#model").select_option(WAN30)  # wan3.0 takes 1-15 s a clip
    expect(verdict).to_have_text("API accepts this window")
    # The file as it is: long enough for wan3.0, but 180 px is under its 240 px a side.
    expect(blip).not_to_contain_text("needs at least 2")
    expect(blip).to_contain_text("wan3.0-reference-video takes 240-4096 px a side")
    # wan3.0 bills every second of the window: the billed head is the whole of it.
    whole = re.compile(r"^([\d.]+) s long · first \1 s billed$")
    expect(page.locator("#window-length")).to_have_text(whole)
    expect(page.locator("#job-empty")).to_contain_text(f"{WAN30} takes 1 to 5")
    open_clip(page, "take.mp4")
    expect(page.locator("#window-length")).to_have_text(whole)
    page.locator("#model").select_option("wan2.6-reference-video")
    expect(page.locator("#window-length")).not_to_have_text(whole)  # wan2.6 bills a capped head
    expect(blip).to_contain_text("the API needs at least 2")


def test_a_check_by_another_model_says_whose_rules_graded_it(
        page: Any, studio: RunningStudio) -> None:  # noqa: F811
    expect = sync_api.expect
    page.goto(studio.url)
    open_clip(page, "take.mp4")
    page.locator("#run-check").click()  # graded by the chosen model: wan2.6
    summary = page.locator("#check-summary")
    expect(summary).to_have_text(re.compile(r"^Verdict: poor"))
    take = page.get_by_test_id("clip").filter(has_text="take.mp4")
    expect(take).to_contain_text("check: poor")
    page.locator("#model").select_option(WAN30)
    expect(summary).to_contain_text(
        f"Verdict by wan2.6-reference-video's rules (Check again for {WAN30}): poor")
    expect(take).to_contain_text("check (wan2.6-reference-video): poor")
    page.locator("#run-check").click()
    expect(summary).to_have_text(re.compile(r"^Verdict: poor"))
    expect(take).to_contain_text("check: poor")
    assert page.problems == []
