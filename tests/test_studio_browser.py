"""`prep studio` in a real browser: Playwright driving Debian's Chromium against the sandbox.

The browser is found and launched by tests/chromium.py; without it or Playwright, these tests are
skipped and say why. Waiting is Playwright's (`expect` retries until the page shows the text);
nothing is timed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromium
import mediagen
import pytest

from prep.sandbox import RunningSandbox, Sandbox
from prep.settings import load_settings
from prep.ui.studio import RunningStudio, Studio, run_in_thread

pytestmark = pytest.mark.media

sync_api = chromium.sync_api()

PROMPT = "She looks at the camera and waves hello"


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("footage")
    (folder / "take.mp4").symlink_to(mediagen.clip("studio-take", seconds=6, size="320x180", rate="25"))
    (folder / "blip.mp4").symlink_to(mediagen.clip("studio-blip", seconds=1.5, size="320x180", rate="25"))
    return folder


@pytest.fixture()
def studio(sandbox: Sandbox, sandbox_server: RunningSandbox, footage: Path,
           tmp_path: Path) -> Iterator[RunningStudio]:
    settings = load_settings({"api_key": sandbox.key, "base_url": sandbox.url,
                              "files_url": sandbox.files_url, "cache_dir": str(tmp_path / "cache")})
    running = run_in_thread(Studio([footage], tmp_path / "out", settings, sandbox=True))
    try:
        yield running
    finally:
        running.stop()


def open_clip(page: Any, name: str) -> None:
    page.get_by_test_id("clip").filter(has_text=name).click()
    sync_api.expect(page.locator("#clip-title")).to_have_text(name)


def test_from_the_library_to_a_result(page: Any, studio: RunningStudio, sandbox: Sandbox) -> None:
    expect = sync_api.expect
    page.goto(studio.url)
    clips = page.get_by_test_id("clip")
    expect(clips).to_have_count(2)
    # The short clip says why the API refuses it, with its length.
    expect(clips.filter(has_text="blip.mp4")).to_contain_text("API refuses")
    expect(clips.filter(has_text="blip.mp4")).to_contain_text("the API needs at least 2.0 s")
    expect(clips.filter(has_text="take.mp4")).to_contain_text("6.0 s")

    open_clip(page, "take.mp4")
    cost = page.get_by_test_id("cost")
    # The whole 6 s clip: 5 s billed + 5 s of output at 4.76 credits a second.
    expect(cost).to_have_text("47.6 credits")
    expect(page.locator("#clip-spec")).to_have_text("take.mp4")

    page.get_by_test_id("window-start").fill("2")
    page.get_by_test_id("window-start").press("Enter")
    expect(page.get_by_test_id("window-start")).to_have_value("2.0")
    expect(page.locator("#clip-spec")).to_have_text("take.mp4@2.0-6.0")
    expect(cost).to_have_text("42.84 credits")  # 4 s billed + 5 s output

    page.get_by_test_id("duration").select_option("10")
    expect(cost).to_have_text("66.64 credits")  # 4 s + 10 s

    page.get_by_test_id("prompt").fill(PROMPT)
    expect(page.locator("#prompt-count")).to_contain_text(f"{len(PROMPT)} / 1500")
    generate = page.get_by_test_id("generate")
    expect(generate).to_be_enabled()
    generate.click()
    confirm = page.get_by_test_id("confirm-generate")
    expect(confirm).to_have_text("Spend 66.64 credits")
    confirm.click()

    status = page.get_by_test_id("job-status")
    expect(status).to_contain_text("completed", timeout=90_000)
    result = page.get_by_test_id("result")
    expect(result).to_have_attribute("src", f"/api/jobs/{studio.studio.jobs.all()[0].name}/result"
                                            f"?token={studio.studio.token}")
    expect(page.locator("#result-path")).to_contain_text(str(studio.studio.out_dir))
    assert len(sandbox.state()["tasks"]) == 1

    # A reload follows the job it has (its name is in the address) instead of starting another.
    page.reload()
    expect(status).to_contain_text("completed")
    expect(page.get_by_test_id("prompt")).to_have_value(PROMPT)
    expect(result).to_have_attribute("src", f"/api/jobs/{studio.studio.jobs.all()[0].name}/result"
                                            f"?token={studio.studio.token}")
    assert len(sandbox.state()["tasks"]) == 1
    assert page.problems == []


def test_the_window_inputs_work_from_the_keyboard(page: Any, studio: RunningStudio) -> None:
    expect = sync_api.expect
    page.goto(studio.url)
    clips = page.get_by_test_id("clip")
    expect(clips).to_have_count(2)
    clips.filter(has_text="take.mp4").focus()
    page.keyboard.press("Enter")  # a clip opens from the keyboard too
    expect(page.locator("#clip-title")).to_have_text("take.mp4")
    cost = page.get_by_test_id("cost")
    expect(cost).to_have_text("47.6 credits")

    start, end = page.get_by_test_id("window-start"), page.get_by_test_id("window-end")
    start.focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("1.5")
    page.keyboard.press("Tab")  # leaving the input commits it
    expect(end).to_be_focused()
    expect(start).to_have_value("1.52")  # snapped to the frame (25 fps: 40 ms, halves up)
    page.keyboard.press("Control+A")
    page.keyboard.type("0:04")
    page.keyboard.press("Enter")
    expect(end).to_have_value("4.0")
    expect(page.locator("#clip-spec")).to_have_text("take.mp4@1.52-4.0")
    expect(cost).to_have_text("35.6048 credits")  # 2.48 s + 5 s

    page.keyboard.press("ArrowUp")  # one frame later
    expect(end).to_have_value("4.04")
    page.keyboard.press("Shift+ArrowUp")  # one second later
    expect(end).to_have_value("5.04")
    expect(cost).to_have_text("40.5552 credits")  # 3.52 s + 5 s
    page.keyboard.press("Shift+ArrowUp")
    expect(end).to_have_value("6.0")  # not past the clip's end

    page.keyboard.press("Control+A")
    page.keyboard.type("soon")
    page.keyboard.press("Enter")
    expect(page.locator("#window-error")).to_contain_text('"soon" is not a time')
    page.keyboard.press("Escape")
    expect(end).to_have_value("6.0")

    start.focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("5")
    page.keyboard.press("Enter")
    expect(page.locator("#window-error")).to_contain_text("the API needs at least 2.0 s")
    expect(page.locator("#problems")).to_contain_text("in the chosen window")
    expect(cost).to_have_text("—")
    expect(page.get_by_test_id("generate")).to_be_disabled()
    assert page.problems == []


def test_the_timeline_window_is_dragged(page: Any, studio: RunningStudio) -> None:
    expect = sync_api.expect
    page.goto(studio.url)
    open_clip(page, "take.mp4")
    expect(page.get_by_test_id("cost")).to_have_text("47.6 credits")
    # The analysis runs the face detector on every half second of the clip: on a loaded machine
    # that takes longer than an expectation's default 5 s.
    expect(page.locator("#analysis-note")).not_to_contain_text("analysing", timeout=60_000)
    box = page.locator("#timeline").bounding_box()
    y = box["y"] + box["height"] / 2
    # Drag a new window from a sixth of the way in to half way: 1.0 s to 3.0 s of 6 s.
    page.mouse.move(box["x"] + box["width"] / 6, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 3, y, steps=4)
    page.mouse.move(box["x"] + box["width"] / 2, y, steps=4)
    page.mouse.up()
    start = float(page.get_by_test_id("window-start").input_value())
    end = float(page.get_by_test_id("window-end").input_value())
    assert abs(start - 1.0) < 0.1 and abs(end - 3.0) < 0.1
    assert round(start * 1000) % 40 == 0 and round(end * 1000) % 40 == 0  # on frames
    expect(page.locator("#clip-spec")).to_have_text(f"take.mp4@{page.get_by_test_id('window-start').input_value()}-"
                                                    f"{page.get_by_test_id('window-end').input_value()}")
    page.get_by_role("button", name="Pick for me").click()
    expect(page.locator("#analysis-note")).to_contain_text("picked")
    assert page.problems == []


def test_the_page_fits_800_px(page: Any, studio: RunningStudio) -> None:
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(studio.url)
    open_clip(page, "take.mp4")
    sync_api.expect(page.get_by_test_id("cost")).to_have_text("47.6 credits")
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    assert page.get_by_test_id("generate").is_visible()
    assert page.problems == []


def test_without_the_token_the_page_is_refused(page: Any, studio: RunningStudio) -> None:
    answer = page.goto(studio.base + "/")
    assert answer is not None and answer.status == 403
    sync_api.expect(page.locator("body")).to_contain_text("needs the token")
    answer = page.goto(studio.base + "/?token=not-the-token")
    assert answer is not None and answer.status == 403
