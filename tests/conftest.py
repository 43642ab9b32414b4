"""Shared fixtures, and the marks that keep the inner loop fast.

Every test runs with its own config and cache dirs and no EvoLink settings.

Marks (registered in pyproject.toml) say what a test costs, so that the inner loop
`pytest -m "not media and not sandbox and not fuzz"` runs only the pure tests. Most are put on
here, from what a test uses, so a new test is marked right without thinking about it:

- `sandbox`: the test uses the `sandbox` or `sandbox_server` fixture. A test marked `sandbox`
  (here or by hand) is marked `media` too: the sandbox renders each task's result with ffmpeg;
- `browser`: it uses the `browser` or `page` fixture (Chromium);
- `fuzz`: it is a Hypothesis test (`@given`).

A test that calls a media helper itself (tests/mediagen.py and the recipes built on it) carries
`@pytest.mark.media`, and one that starts a sandbox some other way (`prep sandbox` in a subprocess
or through the CLI) carries `@pytest.mark.sandbox`. Forgetting is caught: the media helpers, any
sandbox that starts and any `prep sandbox` subprocess fail an unmarked test and say which mark to
add (tests/testmarks.py).
"""

from __future__ import annotations

import itertools
import os
import shutil
import ssl
import sys
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import analyses
import pytest
import testmarks
import xdist_groups

pytest_plugins = ["pytester"]  # tests/test_marks.py runs small pytest sessions of its own

ROOT = Path(__file__).resolve().parent.parent
# pyproject's `pythonpath` puts this repository's prep first for the tests; `python -m prep` in a
# subprocess gets it first too, rather than another copy installed in the environment.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT))])

# Dask's workers (tests/test_cluster.py) keep a scratch folder in the temporary folder and leave it
# behind; theirs is one that goes at the end of the run. Set before dask is first imported.
_DASK_SCRATCH = Path(tempfile.mkdtemp(prefix="prep-tests-dask-"))
os.environ["DASK_TEMPORARY_DIRECTORY"] = str(_DASK_SCRATCH)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_DASK_SCRATCH, ignore_errors=True)
    xdist_groups.remove_folder(config)


@pytest.hookimpl(trylast=True)  # after the session's fixtures (the sandbox servers) are torn down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Collect what the stopped session servers left for the garbage collector (a keep-alive
    connection's transport and socket) while their ResourceWarnings are passed over: at exit,
    pytest's own last collection would turn one into a failed run after every test passed.
    Leaks inside a test are still errors there (filterwarnings = error)."""
    import gc

    previous = sys.unraisablehook

    def quiet(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, ResourceWarning):
            previous(unraisable)

    sys.unraisablehook = quiet
    try:
        gc.collect()
    finally:
        sys.unraisablehook = previous


testmarks.collecting = True  # until pytest_collection_finish: nothing heavy at import
testmarks.check_sandbox_starts()


def pytest_collection_finish(session: pytest.Session) -> None:
    testmarks.collecting = False


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects anything
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    testmarks.mark_by_use(items)
    xdist_groups.write_groups(config, items)


# pytest-xdist's `--dist loadgroup` with groups that hold and the costliest work first
# (tests/xdist_groups.py). Optional hooks: plain pytest, without xdist, runs as before.
@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    if xdist_groups.enabled(node.config):
        node.workerinput[xdist_groups.FOLDER_KEY] = str(xdist_groups.folder(node.config))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    return xdist_groups.make_scheduler(config, log) if xdist_groups.enabled(config) else None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker more than the cores this process may use. A test waiting on a server,
    a child process or a pause leaves its core to the spare worker: from fresh clones on two
    cores, three workers took 5 min 21 s, two 5 min 53 s and four 5 min 31 s."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) + 1


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    """Let the helpers see which test runs (its setup, call and teardown)."""
    testmarks.current = item
    try:
        return (yield)
    finally:
        testmarks.current = None


def _share_tls_contexts() -> None:
    """One TLS context for all the httpx clients the tests make.

    Every httpx client builds a TLS context and reads the CA bundle into it, about 25 ms of CPU,
    even when it only ever talks plain HTTP to a server on 127.0.0.1, as every client here does.
    The sandbox tests make several each (the sandbox's own reset is one) and the fuzz tests one or
    two per example, which made that the larger part of their time (about a fifth of the whole suite's CPU
    time). Clients with the default verification now share one context per environment; any
    other `verify` is built as asked. Nothing changes for prep outside the tests.
    """
    from httpx._transports import default

    build = getattr(default, "create_ssl_context", None)
    if build is None:  # an httpx that builds its contexts elsewhere: nothing to share
        return
    shared: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is not True or cert is not None:
            return build(verify=verify, cert=cert, trust_env=trust_env)
        key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in shared:
            shared[key] = build(verify=verify, cert=cert, trust_env=trust_env)
        return shared[key]

    default.create_ssl_context = create_ssl_context


_share_tls_contexts()


_HOMES = itertools.count()


@pytest.fixture(scope="session")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of every test's own home. One folder of its own per test is a plain mkdir;
    `tmp_path_factory.mktemp` per test read the whole base folder each time (quadratic)."""
    return tmp_path_factory.mktemp("homes")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, homes: Path) -> Iterator[None]:
    home = homes / str(next(_HOMES))
    home.mkdir()
    for name in ("EVOLINK_API_KEY", "EVOLINK_BASE_URL", "EVOLINK_FILES_URL", "PREP_CACHE_DIR",
                 "PREP_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREP_CONFIG", str(home / "config.toml"))
    monkeypatch.setenv("PREP_CACHE_DIR", str(home / "cache"))
    yield


@pytest.fixture(scope="session")
def one_opencv_thread() -> None:
    """OpenCV on one thread in this test process, as prep's own analysis runs its detectors: the
    pytest-xdist workers already keep every core busy, and OpenCV's waiting threads spin on the
    CPU the other workers need (a detection cost 15 % more CPU on two threads, measured alone)."""
    import cv2

    cv2.setNumThreads(1)


@pytest.fixture()
def reuse_analyses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opt-in: a clip analysed before in this process with the same arguments is not decoded
    again (tests/analyses.py), for tests about what is done with an analysis, not about making one."""
    from prep.pick import analyze as analyze_module

    monkeypatch.setattr(analyze_module, "analyze", analyses.reusing(analyze_module.analyze))


@pytest.fixture()
def tmp_out(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out

from chromium import browser, page  # noqa: E402,F401  (fixtures for every test file)
from engine_bench import env, fast  # noqa: E402,F401
from sandbox_fixture import sandbox, sandbox_server  # noqa: E402,F401
