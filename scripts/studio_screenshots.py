#!/usr/bin/env python3
"""The README's pictures of `prep studio`: docs/studio-*.png, taken by Debian's Chromium.

    python scripts/studio_screenshots.py [DOCS_DIR]

The footage is the demo's sample clips plus the test suite's interview (a face that talks, with
cuts), so the timeline has shots, faces and speech to show; jobs go to an in-process sandbox.
Needs the test extra (Playwright, scikit-image) and `chromium` (apt-get install chromium).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from prep.sandbox import SandboxConfig  # noqa: E402
from prep.sandbox import run_in_thread as run_sandbox  # noqa: E402
from prep.settings import load_settings  # noqa: E402
from prep.ui.studio import Studio, run_in_thread  # noqa: E402


def main(docs: Path) -> None:
    import mediagen
    import pickmedia
    import samples

    work = Path(tempfile.mkdtemp(prefix="prep-studio-shots-"))
    footage = work / "footage"
    samples.main(str(footage))
    shutil.copy(pickmedia.interview(), footage / "astronaut-talk.mp4")
    shutil.copy(mediagen.clip("studio-blip", seconds=1.5, size="320x180", rate="25"),
                footage / "blip.mp4")
    sandbox = run_sandbox(SandboxConfig(speed=40))
    settings = load_settings({"api_key": sandbox.key, "base_url": sandbox.url,
                              "files_url": sandbox.files_url, "cache_dir": str(work / "cache")})
    studio = run_in_thread(Studio([footage], work / "out", settings, sandbox=True))
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(studio.url)
            expect(page.get_by_test_id("clip")).to_have_count(5)
            page.get_by_test_id("clip").filter(has_text="astronaut-talk.mp4").click()
            expect(page.locator("#analysis-note")).not_to_contain_text("analysing", timeout=60_000)
            page.get_by_role("button", name="Pick for me").click()
            expect(page.locator("#analysis-note")).to_contain_text("picked")
            page.get_by_role("button", name="Check this clip").click()
            expect(page.locator("#check-summary")).to_contain_text("Verdict", timeout=60_000)
            page.get_by_test_id("prompt").fill("The astronaut smiles, turns to the camera and says hello")
            expect(page.get_by_test_id("cost")).to_contain_text("credits")
            expect(page.get_by_test_id("generate")).to_be_enabled()
            page.screenshot(path=str(docs / "studio-clip.png"))

            page.get_by_test_id("clip").filter(has_text="phone.mov").click()
            page.get_by_role("button", name="Add to job").click()
            expect(page.locator("#job-clips li")).to_have_count(2)
            page.get_by_test_id("duration").select_option("8")
            page.get_by_test_id("generate").click()
            page.get_by_test_id("confirm-generate").click()
            expect(page.get_by_test_id("job-status")).to_contain_text("completed", timeout=120_000)
            page.screenshot(path=str(docs / "studio-job.png"), full_page=True)

            page.set_viewport_size({"width": 800, "height": 1000})
            page.reload()
            expect(page.get_by_test_id("job-status")).to_contain_text("completed")
            page.screenshot(path=str(docs / "studio-narrow.png"))
            browser.close()
    finally:
        studio.stop()
        sandbox.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots in {docs}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs")
