"""Install hints follow how prep was installed: pipx's commands under pipx, pip's otherwise."""

from __future__ import annotations

import pytest

from prep.errors import install_hint

PIPX = "/home/ana/.local/share/pipx/venvs/evolink-prep"
PIPX_OLD = "/home/ana/.local/pipx/venvs/evolink-prep"
VENV = "/home/ana/work/.venv"


@pytest.mark.parametrize(("prefix", "extra", "package", "hint"), [
    (PIPX, "pick", None, "pipx install --force 'evolink-prep[pick]'"),
    (PIPX_OLD, "cluster", None, "pipx install --force 'evolink-prep[cluster]'"),
    (PIPX, None, "opencv-python-headless<5", "pipx inject evolink-prep 'opencv-python-headless<5'"),
    (VENV, "pick", None, "pip install 'evolink-prep[pick]'"),
    (VENV, None, "imageio-ffmpeg>=0.6", "pip install 'imageio-ffmpeg>=0.6'"),
    ("/usr", None, "numpy", "pip install numpy"),
])
def test_install_hint(prefix: str, extra: str | None, package: str | None, hint: str) -> None:
    assert install_hint(extra, package=package, prefix=prefix) == hint



def test_the_hints_in_use_come_from_it() -> None:
    """Every hint that says how to install something is made by install_hint (it said `pip
    install` under pipx, which installs beside prep rather than into it)."""
    from prep.pick import analyze
    from prep.ui import pictures

    assert analyze.INSTALL_HINT == install_hint("pick") == pictures._PIL_HINT
