"""`prep batch --dry-run`: validate, probe, plan and cost, with the numbers of prep.core.billing."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from prep.core import billing
from prep.errors import UsageError
from prep.jobs import estimate as preflight
from prep.jobs.manifest import ManifestError, load_manifest
from prep.jobs.planning import check_budget, plan_batch
from prep.ui.cli import cli
from tests import mediagen

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.media


@pytest.fixture(scope="module")
def samples() -> dict[str, Path]:
    """Tiny stand-ins for the demo's samples (same names the fixture manifests use)."""
    return {
        "interview.mp4": mediagen.clip("b-interview", seconds=36, size="160x90", rate="10"),
        "phone.mov": mediagen.clip("b-phone", seconds=6, size="90x160", rate="10", suffix=".mov"),
        "hdr.mov": mediagen.clip("b-hdr", seconds=4, size="160x90", rate="10", audio=False,
                                 suffix=".mov"),
        "short.mp4": mediagen.clip("b-short", seconds=1, size="160x90", rate="10"),
    }


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the module's dry runs. Each dry run checks every clip's window as a
    reference (`prep check`'s face and speech analysis: seconds of CPU a run); these tests are about
    planning and prices, so the first dry run grades the windows and the others read its reports,
    through the same dry-run code (the check's own tests: tests/test_check_jobs.py)."""
    return tmp_path_factory.mktemp("checks")


@pytest.fixture()
def folder(tmp_path: Path, samples: dict[str, Path], checks: Path,
           monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PREP_CACHE_DIR", str(checks))
    (tmp_path / "samples").mkdir()
    for name, path in samples.items():
        (tmp_path / "samples" / name).symlink_to(path)
    for name in ("jobs.csv", "jobs.jsonl", "bad.csv", "bad.jsonl"):
        shutil.copy(ROOT / "fixtures" / "batch" / name, tmp_path / name)
    return tmp_path


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", ["jobs.csv", "jobs.jsonl"])
def test_dry_run_json_matches_billing(folder: Path, name: str) -> None:
    code, stdout, _ = _run("batch", str(folder / name), "--dry-run", "--json")
    assert code == 0
    data = json.loads(stdout)
    jobs = {j["name"]: j for j in data["jobs"]}
    assert list(jobs) == ["intro", "phone-pair", "trio"]
    # Each job costs exactly what `prep estimate` (prep.core.billing) says for the same clips.
    intro = preflight.estimate([folder / "samples" / "interview.mp4@0:02-0:12"], output_s=5)
    assert jobs["intro"]["credits_units"] == intro.credits_units == 476_000
    pair = preflight.estimate([folder / "samples" / "phone.mov", folder / "samples" / "interview.mp4@20-25"],
                              output_s=8, quality="1080p")
    assert jobs["phone-pair"]["credits_units"] == pair.credits_units
    assert jobs["phone-pair"]["total_billed_s"] == 13.0
    assert jobs["trio"]["input_billed_s"] == 4.95 and jobs["trio"]["credits"] == 47.362
    assert jobs["trio"]["credits_by_quality"]["1080p"] == 79.0945
    assert jobs["phone-pair"]["aspect_ratio"] == "9:16"  # auto, a tie: the first clip's (portrait)
    assert jobs["trio"]["callback_url"] == "https://example.com/hooks/evolink"
    total = data["total"]
    assert total["credits_units"] == sum(j["credits_units"] for j in data["jobs"])
    assert total["total_billed_s"] == pytest.approx(32.95)
    assert total["credits_by_quality"]["720p"] == pytest.approx(
        sum(j["credits_by_quality"]["720p"] for j in data["jobs"]))
    assert "EvoLink public default prices" in data["price_source"]


def test_dry_run_table(folder: Path) -> None:
    code, stdout, _ = _run("batch", str(folder / "jobs.csv"), "--dry-run")
    assert code == 0
    assert "total (3 jobs)" in stdout and "198.3016" in stdout and "79.0945" in stdout


def test_dry_run_with_own_prices(folder: Path) -> None:
    code, stdout, _ = _run("batch", str(folder / "jobs.csv"), "--dry-run", "--json",
                           "--price-per-second", "1", "--min-charge", "0")
    assert code == 0
    jobs = json.loads(stdout)["jobs"]
    assert jobs[0]["credits"] == 10.0  # 10 billed seconds at 1 credit


def test_max_cost_caps_the_whole_batch(folder: Path) -> None:
    code, _, stderr = _run("batch", str(folder / "jobs.csv"), "--dry-run", "--max-cost", "198.3")
    assert code == 2
    assert "would cost 198.3016 credits, above --max-cost 198.3" in stderr
    code, _, _ = _run("batch", str(folder / "jobs.csv"), "--dry-run", "--max-cost", "198.3016")
    assert code == 0
    code, _, stderr = _run("batch", str(folder / "jobs.csv"), "--dry-run", "--max-cost", "lots")
    assert code == 2 and "must be a number of credits" in stderr


@pytest.mark.parametrize(("name", "lines"), [
    ("bad.csv", [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    ("bad.jsonl", [2, 3, 4, 5, 6, 7, 8, 9, 10]),
])
def test_bad_manifest_lists_every_row(folder: Path, name: str, lines: list[int]) -> None:
    code, stdout, stderr = _run("batch", str(folder / name), "--dry-run", "--json")
    assert code == 3  # a row names a missing clip
    problems = json.loads(stdout)["problems"]
    assert sorted({p["line"] for p in problems}) == lines
    assert any("no such file" in p["message"] and p["exit_code"] == 3 for p in problems)
    assert f"{name}:2" in stderr or f"{name}:3" in stderr
    assert "nothing was run" in stderr


def test_probe_and_window_problems_join_the_row_errors(folder: Path) -> None:
    manifest = folder / "m.jsonl"
    rows = [
        {"name": "ok", "clips": ["samples/phone.mov"], "prompt": "p"},
        {"name": "past-end", "clips": ["samples/phone.mov@20-25"], "prompt": "p"},
        {"name": "too-short", "clips": ["samples/short.mp4"], "prompt": "p"},
        {"name": "not-video", "clips": ["m.jsonl"], "prompt": "p"},
        {"name": "bad-field", "clips": ["samples/phone.mov"], "prompt": "p", "quality": "8k"},
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ManifestError) as info:
        plan_batch(load_manifest(manifest))
    by_line = {p.line: p for p in info.value.problems}
    assert sorted(by_line) == [2, 3, 4, 5]
    assert "starts at 20.0 s but the clip is only" in by_line[2].message and by_line[2].exit_code == 2
    assert "the API needs at least 2.0 s" in by_line[3].message and by_line[3].exit_code == 3
    assert by_line[4].exit_code == 3
    assert "quality '8k'" in by_line[5].message
    assert info.value.exit_code == 3


def test_each_clip_probed_once_through_the_executor(folder: Path) -> None:
    seen: list[Path] = []

    def counting_probe(path: Path) -> object:
        seen.append(path)
        from prep.media.probe import probe

        return probe(path)

    with ThreadPoolExecutor(2) as pool:
        plan = plan_batch(load_manifest(folder / "jobs.csv"), executor=pool,
                          probe_clip=counting_probe)  # type: ignore[arg-type]
    assert sorted(p.name for p in seen) == ["hdr.mov", "interview.mp4", "phone.mov"]
    assert [j.name for j in plan.jobs] == ["intro", "phone-pair", "trio"]
    assert plan.job("trio").estimate.credits_units == billing.price_units(9_950, "720p")
    with pytest.raises(KeyError):
        plan.job("nope")
    check_budget(plan, None)
    check_budget(plan, plan.credits_units)
    with pytest.raises(UsageError):
        check_budget(plan, plan.credits_units - 1)


def test_run_needs_output_folder(folder: Path) -> None:
    code, _, stderr = _run("batch", str(folder / "jobs.csv"))
    assert code == 2 and "-o DIR" in stderr


def test_batch_help() -> None:
    for args in (["batch", "--help"], ["batch", "run", "--help"], ["batch", "status", "--help"]):
        code, stdout, _ = _run(*args)
        assert code == 0 and "Usage:" in stdout


def test_dry_run_says_a_long_clip_is_cut(folder: Path) -> None:
    """A 36 s clip given whole is cut to its first 30 s (less a frame): the dry run says so."""
    (folder / "long.csv").write_text("name,clips,prompt\nlong,samples/interview.mp4,A person waves\n")
    code, stdout, stderr = _run("batch", str(folder / "long.csv"), "--dry-run")
    assert code == 0, stderr
    said = " ".join((stdout + stderr).split())
    assert "note: job long" in said and "first 29.9" in said
    code, stdout, _ = _run("batch", str(folder / "long.csv"), "--dry-run", "--json")
    [clip] = json.loads(stdout)["jobs"][0]["clips"]
    assert any("first 29.9" in note for note in clip["notes"])


def test_profile_reaches_the_engine(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`prep batch --profile small` runs the batch with that profile (the engine prepares with it)."""
    import prep.jobs.engine

    seen: list[object] = []

    def stop_at_run(*args: object, **kwargs: object) -> None:
        seen.append(args[2])
        raise KeyboardInterrupt

    monkeypatch.setattr(prep.jobs.engine, "run_batch", stop_at_run)
    code, _, stderr = _run("batch", str(folder / "jobs.csv"), "-o", str(folder / "out"), "--yes",
                           "--no-check", "--no-check-credits", "--profile", "small", "-q")
    assert code == 130, stderr
    (options,) = seen
    assert isinstance(options, prep.jobs.engine.BatchOptions) and options.profile == "small"
