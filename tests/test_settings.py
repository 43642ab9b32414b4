"""Where the settings live: prep's own answer for Linux folders equals platformdirs'."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(("home", "xdg"), [
    ("/home/editor", None), ("/home/editor/", None), ("/home/editor", ""),
    ("/home/editor", "/srv/xdg"), ("/home/editor", "relative/xdg"), ("/", None),
])
def test_user_dirs_are_where_platformdirs_puts_them(monkeypatch: pytest.MonkeyPatch, home: str,
                                                    xdg: str | None) -> None:
    """prep works the Linux folders out itself (sparing platformdirs' import): the same ones."""
    import platformdirs

    from prep import settings

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("HOME", home)
    monkeypatch.delenv("ANDROID_DATA", raising=False)
    for kind in ("CONFIG", "CACHE"):
        if xdg is None:
            monkeypatch.delenv(f"XDG_{kind}_HOME", raising=False)
        else:
            monkeypatch.setenv(f"XDG_{kind}_HOME", xdg)
    assert settings._user_dir("config") == Path(platformdirs.user_config_dir("prep",
                                                                             appauthor=False))
    assert settings._user_dir("cache") == Path(platformdirs.user_cache_dir("prep", appauthor=False))
