"""`prep studio` in a real browser: Playwright driving Debian's Chromium against the sandbox.

The browser is found and launched by tests/chromium.py; without it or Playwright, these tests are
skipped and say why. Waiting is Playwright's (`expect` retries until the page shows the text);
nothing is timed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromium
import mediagen
import pytest

from prep.sandbox import RunningSandbox, Sandbox
from prep.settings import load_settings
from prep.ui.studio import RunningStudio, Studio, TimelineEvent, run_in_thread

# The studio's own tests: a clip's analysis is made once a process and reused by the next
# studio (tests/analyses.py); what the studio does with it is what is tested.
pytestmark = [pytest.mark.media, pytest.mark.usefixtures("reuse_analyses")]

sync_api = chromium.sync_api()

PROMPT = "She looks at the camera and waves hello"


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("footage")
    # Copies: the studio lists and serves only files inside its folders, not links out of them.
    shutil.copyfile(mediagen.clip("studio-take", seconds=6, size="320x180", rate="25"),
                    folder / "take.mp4")
    shutil.copyfile(mediagen.clip("studio-blip", seconds=1.5, size="320x180", rate="25"),
                    folder / "blip.mp4")
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
    expect(page.locator("#window-error")).to_contain_text("wan2.6-reference-video needs at least 2.0 s")
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


# -- the timeline for long footage, its fixes, and a timeline file's events --------------------------


@pytest.fixture(scope="module")
def long_footage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("long-footage")
    # Copies, not links: the studio serves only files that resolve inside its folders.
    shutil.copy(mediagen.clip("studio-take", seconds=6, size="320x180", rate="25"), folder / "take.mp4")
    shutil.copy(mediagen.clip("studio-long", seconds=40, size="160x90", rate="25", audio=False),
                folder / "long.mp4")
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video at all" * 40)
    return folder


def _studio(sandbox: Sandbox, folder: Path, tmp_path: Path,
            events: list[TimelineEvent]) -> RunningStudio:
    settings = load_settings({"api_key": sandbox.key, "base_url": sandbox.url,
                              "files_url": sandbox.files_url, "cache_dir": str(tmp_path / "cache")})
    return run_in_thread(Studio([folder], tmp_path / "out", settings, sandbox=True, events=events))


@pytest.fixture()
def long_studio(sandbox: Sandbox, sandbox_server: RunningSandbox, long_footage: Path,
                tmp_path: Path) -> Iterator[RunningStudio]:
    running = _studio(sandbox, long_footage, tmp_path, [])
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture()
def events_studio(sandbox: Sandbox, sandbox_server: RunningSandbox, long_footage: Path,
                  tmp_path: Path) -> Iterator[RunningStudio]:
    """As a timeline file with two events on take.mp4 opens it (`prep studio selects.edl`)."""
    take = long_footage.resolve() / "take.mp4"
    running = _studio(sandbox, long_footage, tmp_path, [
        TimelineEvent(number=1, name="take", path=take, start_ms=1000, end_ms=3500),
        TimelineEvent(number=4, name="take", path=take, start_ms=3520, end_ms=5600)])
    try:
        yield running
    finally:
        running.stop()


def _until(page: Any, condition: str, timeout_s: float = 10) -> None:
    """Wait for a JavaScript condition (the page's CSP forbids wait_for_function's eval)."""
    for _ in range(int(timeout_s * 20)):
        if page.evaluate(condition):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"still false after {timeout_s} s: {condition}")


def _window(page: Any) -> tuple[str, str]:
    return (page.get_by_test_id("window-start").input_value(),
            page.get_by_test_id("window-end").input_value())


def test_zoom_and_the_ruler_down_to_frames(page: Any, long_studio: RunningStudio) -> None:
    expect = sync_api.expect
    page.goto(long_studio.url)
    open_clip(page, "long.mp4")
    expect(page.locator("#zoom-label")).to_have_text("whole clip")
    expect(page.locator("#ruler")).to_have_attribute("data-unit", "seconds")
    timeline = page.locator("#timeline").bounding_box()
    sliver = page.locator("#window").bounding_box()
    assert sliver["width"] < timeline["width"] / 3  # the first 10 s of 40 s
    page.get_by_role("button", name="Zoom to window").click()
    expect(page.locator("#zoom-label")).to_contain_text("showing")
    wide = page.locator("#window").bounding_box()
    assert wide["width"] > timeline["width"] * 0.8
    page.locator("#zoom-fit").click()
    expect(page.locator("#zoom-label")).to_have_text("whole clip")
    # The wheel zooms in around the pointer, far enough to show every frame. (The events are
    # sent from the page: Playwright's mouse.wheel delivers only some of a fast series.)
    x, y = timeline["x"] + timeline["width"] / 4, timeline["y"] + timeline["height"] / 2
    for _ in range(12):
        page.evaluate(f"""document.getElementById('timeline').dispatchEvent(new WheelEvent('wheel',
            {{deltaY: -300, clientX: {x}, clientY: {y}, bubbles: true, cancelable: true}}))""")
    expect(page.locator("#ruler")).to_have_attribute("data-unit", "frames")
    frames = page.locator("#ruler .tick.frame").count()
    assert 10 <= frames <= 30
    label = page.locator("#zoom-label").text_content()
    start, end = (float(x) for x in label.removeprefix("showing ").removesuffix(" s").split("–"))
    assert 7 < start < 13 and end - start < 1.2  # around the pointer, at 10 s
    page.keyboard.press("0")
    expect(page.locator("#zoom-label")).to_have_text("whole clip")
    page.keyboard.press("+")
    expect(page.locator("#zoom-label")).to_have_text("showing 10.0–30.0 s")
    page.keyboard.press("-")
    expect(page.locator("#zoom-label")).to_have_text("whole clip")
    # A drag on a zoomed timeline counts in the zoomed time.
    page.get_by_role("button", name="Zoom to window").click()
    assert page.problems == []


def test_the_whole_window_moves_by_keyboard(page: Any, long_studio: RunningStudio) -> None:
    expect = sync_api.expect
    page.goto(long_studio.url)
    open_clip(page, "long.mp4")
    expect(page.get_by_test_id("cost")).not_to_have_text("—")
    page.locator("#window").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("window-start")).to_have_value("0.04")
    assert _window(page) == ("0.04", "10.04")
    page.keyboard.press("Shift+ArrowRight")
    assert _window(page) == ("1.04", "11.04")
    page.keyboard.press("PageDown")
    assert _window(page) == ("11.04", "21.04")
    page.keyboard.press("End")
    assert _window(page) == ("30.0", "40.0")
    page.keyboard.press("Shift+ArrowRight")
    assert _window(page) == ("30.0", "40.0")  # not past the clip's end
    page.locator("#clip-title").click()
    page.keyboard.press(",")
    assert _window(page) == ("29.96", "39.96")
    page.keyboard.press("<")
    assert _window(page) == ("28.96", "38.96")
    expect(page.locator("#clip-spec")).to_have_text("long.mp4@28.96-38.96")
    assert page.problems == []


def test_loop_playback_and_seeking_to_in_and_out(page: Any, long_studio: RunningStudio) -> None:
    expect = sync_api.expect
    page.goto(long_studio.url)
    open_clip(page, "take.mp4")
    start = page.get_by_test_id("window-start")
    start.fill("2")
    start.press("Enter")
    end = page.get_by_test_id("window-end")
    end.fill("3")
    end.press("Enter")
    expect(page.locator("#clip-spec")).to_have_text("take.mp4@2.0-3.0")
    _until(page, "document.getElementById('player').readyState >= 1")
    page.get_by_role("button", name="Go to end").click()
    _until(page, "Math.abs(document.getElementById('player').currentTime - 3) < 0.001")
    page.keyboard.press("[")
    _until(page, "Math.abs(document.getElementById('player').currentTime - 2) < 0.001")
    h264 = "video/mp4; codecs=\"avc1.64001e\""
    if not page.evaluate(f"document.getElementById('player').canPlayType('{h264}')"):
        pytest.skip("this Chromium cannot play H.264, so the loop cannot be watched")
    loop = page.get_by_role("button", name="Loop window")
    loop.click()
    expect(loop).to_have_attribute("aria-pressed", "true")
    # It plays 2.0 to 3.0 s and goes back to 2.0: twice in a row, never far past the end.
    _until(page, "S.loops >= 2", timeout_s=20)
    seen = page.evaluate("""() => new Promise((done) => {
        const times = []; const player = document.getElementById('player');
        const tick = () => { times.push(player.currentTime);
          if (times.length < 40) requestAnimationFrame(tick); else done(times); };
        tick(); })""")
    assert all(1.95 <= t <= 3.1 for t in seen), seen
    page.keyboard.press("l")
    expect(loop).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("document.getElementById('player').paused")
    assert page.problems == []


def test_an_unreadable_clip_leaves_nothing_of_the_last_one(page: Any, long_studio: RunningStudio) -> None:
    expect = sync_api.expect
    page.goto(long_studio.url)
    open_clip(page, "take.mp4")
    # Enabled once the analysis is in: like the drag test's, it can take longer than 5 s on a loaded
    # machine (or beside another pytest-xdist worker on two cores).
    expect(page.get_by_role("button", name="Pick for me")).to_be_enabled(timeout=60_000)
    open_clip(page, "broken.mp4")
    expect(page.locator("#clip-verdict")).to_have_text("unreadable")
    expect(page.locator("#player")).to_be_hidden()
    assert page.evaluate("document.getElementById('player').getAttribute('src')") is None
    expect(page.locator("#player-note")).to_contain_text("cannot be read")
    for name in ("Pick for me", "Check this clip", "Start here", "End here", "Loop window"):
        expect(page.get_by_role("button", name=name)).to_be_disabled()
    expect(page.get_by_role("button", name="Add to job")).to_be_disabled()
    open_clip(page, "take.mp4")
    expect(page.locator("#player")).to_be_visible()
    expect(page.get_by_role("button", name="Start here")).to_be_enabled()


def test_the_header_judges_the_window_not_the_file(page: Any, long_studio: RunningStudio) -> None:
    expect = sync_api.expect
    page.goto(long_studio.url)
    library_item = page.get_by_test_id("clip").filter(has_text="long.mp4")
    expect(library_item).to_contain_text("API refuses")  # the 40 s file as it is
    open_clip(page, "long.mp4")
    expect(page.locator("#clip-verdict")).to_have_text("API accepts this window")  # its 10 s window
    end = page.get_by_test_id("window-end")
    end.fill("35")
    end.press("Enter")
    expect(page.locator("#clip-verdict")).to_have_text("API refuses this window")


def test_progress_never_goes_back_and_a_lost_service_is_not_a_failure(
        page: Any, long_studio: RunningStudio) -> None:
    page.goto(long_studio.url)
    open_clip(page, "take.mp4")
    values = page.evaluate("""() => {
        resetProgress('two clips'); const bar = document.getElementById('job-bar'); const seen = [];
        onEvent({type: 'stage', stage: 'prepare'});
        for (const [label, done] of [['a', 50], ['a', 100], ['b', 0], ['b', 40], ['b', 100]]) {
          onEvent({type: 'progress', stage: 'prepare', label, done, total: 100}); seen.push(bar.value);
        }
        return seen; }""")
    assert values == sorted(values) and values[-1] == 100
    page.evaluate("""finished({ok: false, state: 'running',
        error: 'job take is running: EvoLink could not be reached (connection refused)',
        hint: 'run the same command again to pick it up'})""")
    status = page.get_by_test_id("job-status").text_content()
    assert "failed" not in status and "is running" not in status
    assert status.startswith("stopped following the job while it was running: EvoLink could not")


def test_the_bill_stays_in_view_at_800_px(page: Any, long_studio: RunningStudio) -> None:
    page.set_viewport_size({"width": 800, "height": 700})
    page.goto(long_studio.url)
    open_clip(page, "take.mp4")
    sync_api.expect(page.locator("#dock-cost")).to_have_text("47.6 credits")
    page.locator("#timeline").scroll_into_view_if_needed()
    dock = page.locator("#bill-dock").bounding_box()
    assert dock is not None and dock["y"] >= 0 and dock["y"] + dock["height"] <= 700
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    page.set_viewport_size({"width": 1280, "height": 900})
    sync_api.expect(page.locator("#bill-dock")).to_be_hidden()  # the job panel is beside the clip


def test_a_timeline_files_events_are_windows_on_their_clips(page: Any,
                                                              events_studio: RunningStudio) -> None:
    expect = sync_api.expect
    page.goto(events_studio.url)
    expect(page.locator("#clip-title")).to_have_text("take.mp4")  # the first event's clip opens
    assert _window(page) == ("1.0", "3.52")
    expect(page.get_by_test_id("clip").filter(has_text="take.mp4")).to_contain_text(
        "timeline events 001, 004")
    events = page.locator("#track-events .event")
    expect(events).to_have_count(2)
    events.nth(1).click()
    assert _window(page) == ("3.52", "5.6")
    expect(page.locator("#clip-spec")).to_have_text("take.mp4@3.52-5.6")
    assert page.problems == []


def test_axe_finds_nothing(page: Any, long_studio: RunningStudio) -> None:
    source = chromium.axe_source()
    page.goto(long_studio.url)
    open_clip(page, "take.mp4")
    sync_api.expect(page.get_by_test_id("cost")).to_have_text("47.6 credits")
    page.evaluate(source)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    found = [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3],
              [n.get("failureSummary", "")[:160] for n in v["nodes"]][:2]) for v in result["violations"]]
    assert found == [], json.dumps(found, indent=1)
