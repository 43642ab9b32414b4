"""The marks that keep the inner loop fast: put on from what a test uses, and enforced while it runs
(tests/testmarks.py, wired in by conftest.py)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mediagen
import pytest
import testmarks

from prep.sandbox.app import SandboxApp

Failed = pytest.fail.Exception
TESTS = Path(__file__).resolve().parent


def test_marks_come_from_the_fixtures_a_test_uses(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    media\n    sandbox\n")
    items = pytester.getitems("""
        import pytest
        from hypothesis import given, strategies as st

        def test_pure(tmp_path): pass
        def test_sandbox(sandbox): pass
        def test_server(sandbox_server): pass
        def test_page(page): pass
        def test_browser(browser): pass

        @given(st.integers())
        def test_fuzzed(n): pass

        @pytest.mark.sandbox
        def test_sandbox_by_hand(): pass

        @pytest.mark.media
        def test_media_by_hand(): pass
    """)
    testmarks.mark_by_use(items)
    marks = {item.name: sorted({m.name for m in item.iter_markers()}) for item in items}
    assert marks == {
        "test_pure": [], "test_sandbox": ["media", "sandbox"], "test_server": ["media", "sandbox"],
        "test_page": ["browser"], "test_browser": ["browser"], "test_fuzzed": ["fuzz"],
        "test_sandbox_by_hand": ["media", "sandbox"], "test_media_by_hand": ["media"],
    }


def test_an_unmarked_test_that_makes_media_fails_with_the_fix(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mediagen, "CACHE", tmp_path)
    with pytest.raises(Failed, match=r"generates test media \(never\) but is not marked `media`: "
                                     r"add @pytest\.mark\.media"):
        mediagen.make("never", ["-f", "lavfi", "-i", "nullsrc=duration=1"])
    assert list(tmp_path.iterdir()) == []  # stopped before ffmpeg ran


@pytest.mark.media
def test_a_marked_test_may_make_media() -> None:
    testmarks.require("media", "generates test media")


def test_an_unmarked_test_that_starts_a_sandbox_fails() -> None:
    with pytest.raises(Failed, match=r"starts a sandbox but is not marked `sandbox`"):
        SandboxApp.set_address(object(), "127.0.0.1", 1)  # type: ignore[arg-type]


def test_an_unmarked_test_that_runs_prep_sandbox_fails_before_the_process_starts() -> None:
    with pytest.raises(Failed, match=r"`prep sandbox` in a subprocess\) but is not marked `sandbox`"):
        subprocess.Popen([sys.executable, "-m", "prep", "sandbox", "--port", "0"])


@pytest.mark.parametrize(("argv", "starts"), [
    (["python", "-m", "prep", "sandbox", "--port", "0"], True),
    (["/usr/local/bin/prep", "-v", "sandbox"], True),
    (["prep", "probe", "sandbox.mp4"], False),
    (["python", "-m", "prep", "--help"], False),
    (["ffmpeg", "-i", "sandbox"], False),
])
def test_what_counts_as_starting_a_sandbox(argv: list[str], starts: bool) -> None:
    assert testmarks.is_prep_sandbox(argv) is starts


def test_media_made_while_collecting_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testmarks, "collecting", True)
    with pytest.raises(RuntimeError, match="while the tests are being collected"):
        testmarks.require("media", "generates test media (x)")


def test_outside_a_test_nothing_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmarks use the media helpers without pytest."""
    monkeypatch.setattr(testmarks, "current", None)
    testmarks.require("media", "generates test media (x)")


def test_plain_pytest_collects_from_the_tests_folder() -> None:
    """`from tests import mediagen` and `import mediagen` both work without PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "test_batch_plan.py"], cwd=TESTS, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_batch_plan.py::" in done.stdout  # a collection error exits 2, not 0


def test_a_subprocess_runs_this_repositorys_prep(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "import prep; print(prep.__file__)"], cwd=tmp_path,
                          capture_output=True, text=True, check=True, timeout=60)
    assert Path(done.stdout.strip()) == TESTS.parent / "prep" / "__init__.py"


class _Worker:
    """What the xdist scheduler sees of a worker: the test indices it is sent."""

    def __init__(self, name: str) -> None:
        self.gateway = type("Gateway", (), {"id": name})()
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent += indices

    def shutdown(self) -> None:
        self.shutting_down = True


def test_xdist_groups_hold_and_the_costliest_work_goes_first(pytester: pytest.Pytester) -> None:
    """A module's tests that share a module-scoped fixture go to one worker, whatever pytest does
    to node ids (pytest-dev/pytest-xdist#1386), and a media test starts before cheaper work that
    was collected first (tests/xdist_groups.py)."""
    pytest.importorskip("xdist")
    import xdist_groups

    pytester.makeini("[pytest]\nmarkers =\n    media\n")
    items = pytester.getitems("""
        import pytest

        @pytest.fixture(scope="module")
        def shared(): return 1

        def test_pure(): pass
        def test_one(shared): pass
        def test_two(shared): pass

        @pytest.mark.media
        def test_media(): pass
    """)
    testmarks.mark_by_use(items)
    controller = pytester.parseconfig("--tx", "2*popen", "--dist", "loadgroup")
    try:
        # What each worker does after collecting, into the folder the controller handed it.
        worker = type("WorkerConfig", (), {"workerinput": {
            xdist_groups.FOLDER_KEY: str(xdist_groups.folder(controller)), "workerid": "gw0"}})()
        xdist_groups.write_groups(worker, items)  # type: ignore[arg-type]
        scheduler = xdist_groups.make_scheduler(controller, None)
        first, second = _Worker("gw0"), _Worker("gw1")
        for node in (first, second):
            scheduler.add_node(node)
            scheduler.add_node_collection(node, [item.nodeid for item in items])
        scheduler.schedule()
    finally:
        xdist_groups.remove_folder(controller)
    names = [item.name for item in items]
    assert [names[i] for i in first.sent] == ["test_media", "test_pure"]
    assert [names[i] for i in second.sent] == ["test_one", "test_two"]
    assert not xdist_groups.folder(controller).exists()


def test_a_reused_analysis_is_made_once_per_file_and_arguments(tmp_path: Path) -> None:
    """tests/analyses.py: the same unchanged file with the same arguments is analysed once; other
    arguments or a changed file are analysed again; a later caller's progress hears it is done."""
    import analyses

    made: list[tuple[str, int]] = []

    @dataclasses.dataclass(frozen=True)
    class Found:  # what an Analysis has that the reuse touches
        path: Path
        info: Any = None
        duration_ms: int = 3_000

    def analyze(path: Path, *, face_fps: int = 2, progress: Any = None) -> Found:
        made.append((Path(path).name, face_fps))
        return Found(Path(path))

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"one")
    reused = analyses.reusing(analyze)
    heard: list[tuple[int, int]] = []
    first = reused(clip, face_fps=2)
    assert reused(clip, face_fps=2, progress=lambda done, total: heard.append((done, total))) is first
    assert heard == [(3_000, 3_000)] and made == [("clip.mp4", 2)]
    reused(clip, face_fps=4)
    link = tmp_path / "link.mp4"  # a link to the same file: its analysis, under the link's name
    link.symlink_to(clip)
    assert reused(link, face_fps=2).path == link and len(made) == 2
    clip.write_bytes(b"changed")
    reused(clip, face_fps=2)
    assert made == [("clip.mp4", 2), ("clip.mp4", 4), ("clip.mp4", 2)]
    reused(tmp_path / "gone.mp4")  # a missing file goes to the real thing, which says so
    assert made[-1] == ("gone.mp4", 2)


def test_a_missing_medium_asked_for_twice_at_once_is_built_once(tmp_path: Path) -> None:
    """tests/mediagen.py: the second asker waits on the file's lock and takes the first one's
    file (pytest-xdist workers share the media cache). Threads stand in for the processes: each
    opens the lock file itself, so the two locks conflict just as two processes' do."""
    import threading
    import time

    built: list[str] = []
    both_asked = threading.Barrier(2)

    def build(tmp: Path) -> None:
        built.append(threading.current_thread().name)
        time.sleep(0.2)  # long enough for the other asker to reach the lock
        tmp.write_bytes(b"medium")

    out = tmp_path / "clip-0123.mp4"
    found: list[Path] = []

    def ask() -> None:
        both_asked.wait()
        found.append(mediagen.cached(out, build))

    askers = [threading.Thread(target=ask) for _ in range(2)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join()
    assert len(built) == 1 and found == [out, out] and out.read_bytes() == b"medium"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".clip-0123.mp4.lock", "clip-0123.mp4"]
