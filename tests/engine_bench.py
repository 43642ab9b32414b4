"""The engine's test bench, for every module of engine tests (offered to all by conftest.py).

`fast` puts the fake encoder in place of ffmpeg and makes client retries and sandbox polls not
wait; `env` is one test's sandbox, folder and helpers (`test_engine.Env`). A module whose every
test runs on the bench says `pytestmark = pytest.mark.usefixtures("fast")`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fake_encoder import FakeEncoder, fast_engine

from prep.sandbox import Sandbox

if TYPE_CHECKING:
    from test_engine import Env

__all__ = ["env", "fast"]


@pytest.fixture()
def fast(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEncoder]:
    """The fake encoder in place of ffmpeg; client retries and sandbox polls that do not wait."""
    yield fast_engine(monkeypatch)


@pytest.fixture()
def env(sandbox: Sandbox, tmp_path: Path, fast: FakeEncoder) -> Env:
    """One test's sandbox, folder and helpers."""
    from test_engine import Env

    return Env(sb=sandbox, tmp=tmp_path, encoder=fast)
