"""The marks that say what a test costs, put on from what it uses and checked while it runs.

The inner loop (`pytest -m "not media and not sandbox and not fuzz"`) is only fast and pure if
every test that generates media or starts a sandbox says so. `mark_by_use` marks most of them from
the fixtures they use; a test that calls a media helper itself must carry `@pytest.mark.media`,
and `require` fails it, naming the fix, when it does not. conftest.py wires these in and keeps
`current` and `collecting` up to date; outside pytest (the benchmarks use the media helpers too)
both stay unset and nothing is checked.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pytest only when a test fails: the benchmarks import this without it
    import pytest

current: pytest.Item | None = None  # the test whose setup, call or teardown is running
collecting = False  # pytest is importing the test modules

SANDBOX_FIXTURES = frozenset({"sandbox", "sandbox_server"})
BROWSER_FIXTURES = frozenset({"browser", "page"})


def require(marker: str, what: str) -> None:
    """Fail the running test unless it is marked `marker`; fail collection outright, since work
    done at import slows every run, the inner loop's too."""
    if collecting:
        raise RuntimeError(f"{what} while the tests are being collected: do it inside a test or a "
                           "fixture, so that only the tests that need it pay for it")
    item = current
    if item is None or item.get_closest_marker(marker) is not None:
        return
    import pytest

    pytest.fail(f"{item.nodeid} {what} but is not marked `{marker}`: add @pytest.mark.{marker} "
                f"(or `pytestmark = pytest.mark.{marker}` for the module), so that the inner loop "
                f"(-m \"not {marker}\") leaves it out", pytrace=False)


def mark_by_use(items: Iterable[pytest.Item]) -> None:
    """`sandbox` for the tests that use the sandbox fixtures, and `media` for every `sandbox` test
    (the sandbox renders each task's result with ffmpeg); `browser` for the tests that use the
    browser fixtures; `fuzz` for the Hypothesis tests; and an `xdist_group` per module for the
    tests that use a module-scoped fixture (see `_module_group`)."""
    import pytest

    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & SANDBOX_FIXTURES or item.get_closest_marker("sandbox"):
            item.add_marker(pytest.mark.sandbox)
            item.add_marker(pytest.mark.media)
        if names & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.fuzz)
        if _uses_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(_module_group(item)))


def _uses_module_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a module-scoped fixture (Chromium, one `prepare` of every case, a Dask
    cluster, a built wheel, ...)."""
    info = getattr(item, "_fixtureinfo", None)
    defs = getattr(info, "name2fixturedefs", {})
    return any(d.scope == "module" for chain in defs.values() for d in chain)


def _module_group(item: pytest.Item) -> str:
    """The group of a module's tests that share its module-scoped fixtures. Under pytest-xdist
    (`--dist loadgroup`, as scripts/test runs it) a group runs on one worker, so each such fixture
    is made once per run, not once per worker that happens to get one of its tests; the module's
    other tests, and every test of the other modules, are still spread over all the workers."""
    return "module:" + item.nodeid.split("::", 1)[0]


def is_prep_sandbox(argv: Sequence[str]) -> bool:
    """`python -m prep sandbox ...` or `prep sandbox ...` (options before the command allowed)."""
    for i, arg in enumerate(argv):
        if Path(arg).name == "prep":
            words = [a for a in argv[i + 1:] if not a.startswith("-")]
            return bool(words) and words[0] == "sandbox"
    return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "subprocess.Popen" and current is not None:
        argv = args[1]
        if isinstance(argv, list | tuple) and is_prep_sandbox([os.fsdecode(a) for a in argv]):
            require("sandbox", "starts a sandbox (`prep sandbox` in a subprocess)")


def check_sandbox_starts() -> None:
    """Make every sandbox that starts check the running test's marks: one in this process (the
    fixtures', the studio's, `prep sandbox` through the CLI runner) when it learns the address it
    listens on, and `prep sandbox` in a subprocess when the process is started."""
    from prep.sandbox.app import SandboxApp

    set_address = SandboxApp.set_address

    def set_address_checked(self: SandboxApp, host: str, port: int) -> None:
        require("sandbox", "starts a sandbox")
        set_address(self, host, port)

    SandboxApp.set_address = set_address_checked  # type: ignore[method-assign]
    sys.addaudithook(_audit)
