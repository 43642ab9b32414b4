"""Shared fixtures: every test runs with its own config and cache dirs and no EvoLink settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_environ(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    home = tmp_path_factory.mktemp("home")
    for name in ("EVOLINK_API_KEY", "EVOLINK_BASE_URL", "EVOLINK_FILES_URL", "PREP_CACHE_DIR",
                 "PREP_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREP_CONFIG", str(home / "config.toml"))
    monkeypatch.setenv("PREP_CACHE_DIR", str(home / "cache"))
    yield


@pytest.fixture()
def tmp_out(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out

from chromium import browser, page  # noqa: E402,F401  (fixtures for every test file)
from sandbox_fixture import sandbox, sandbox_server  # noqa: E402,F401
