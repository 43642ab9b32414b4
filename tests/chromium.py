"""Debian's Chromium driven by Playwright, for the tests that need a real browser.

The browser is the system's (`chromium` from apt, which scripts/test installs when it can), or the
one PREP_CHROMIUM names; Playwright's own browser downloads are not used. A test module calls
`sync_api()` at import, which skips the module and says why when either is missing; its fixtures
`browser` (one Chromium per module) and `page` are offered to every test by conftest.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXPECT_TIMEOUT_MS = 30_000


def find_chromium() -> str | None:
    """PREP_CHROMIUM, else `chromium` or `chromium-browser` on PATH."""
    given = os.environ.get("PREP_CHROMIUM")
    if given:
        return given
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def sync_api() -> ModuleType:
    """Playwright's sync API; skips the calling test module when Playwright or Chromium is missing."""
    api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed "
                                                            "(pip install playwright)")
    if find_chromium() is None:
        pytest.skip("no Chromium here: install Debian's with `apt-get install chromium` (scripts/test "
                    "does when apt can), or point PREP_CHROMIUM at one", allow_module_level=True)
    return api


def axe_source() -> str:
    """axe-core's script (installed from npm into .cache/npm by scripts/test, or PREP_AXE); skips
    the calling test when it is missing. The page loads nothing from elsewhere: a test injects it."""
    given = os.environ.get("PREP_AXE")
    path = Path(given) if given else (Path(__file__).resolve().parent.parent / ".cache" / "npm"
                                      / "node_modules" / "axe-core" / "axe.min.js")
    if not path.is_file():
        pytest.skip(f"no axe-core at {path}: `npm install --prefix .cache/npm axe-core@4` "
                    "(scripts/test does), or point PREP_AXE at axe.min.js")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module, with `--no-sandbox` (it will not start as root otherwise, as in
    a CI container)."""
    api = sync_api()
    # Playwright's `expect` waits 5 s by default: a studio answering from a shared, loaded 2-core
    # machine (analysis, probing and ffmpeg of other tests beside it) can take longer. Waiting
    # longer changes no assertion; a passing condition still returns at once.
    api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A page at 1280 px that collects every console error and uncaught exception in `problems`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    try:
        yield page
    finally:
        context.close()
