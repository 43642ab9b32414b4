"""`prep schema`: every --json output has a JSON Schema (2020-12) in the package, and real outputs,
error rows included, validate against it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import media_cases
import pytest
from click.testing import CliRunner

from prep.sandbox import Sandbox
from prep.ui.cli import cli
from prep.ui.commands.schema import load_schema, schema_names

# The outputs' shapes are tested here; the analyses behind `pick`, `check` and the jobs' checks
# are made once a clip (tests/analyses.py).
pytestmark = pytest.mark.usefixtures("reuse_analyses")

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {"probe", "estimate", "estimate-compare", "prepare", "upload", "generate", "task", "batch",
            "batch-dry-run", "batch-problems", "batch-status", "batch-resolve", "batch-export", "pick",
            "config-show", "config-get", "doctor", "sandbox", "manifest", "check", "account", "tasks"}


def validate(name: str, data: Any) -> None:
    jsonschema.Draft202012Validator(load_schema(name)).validate(data)


def invalid(name: str, data: Any) -> bool:
    return not jsonschema.Draft202012Validator(load_schema(name)).is_valid(data)


def run(*args: str, env: dict[str, str] | None = None, code: int = 0) -> Any:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == code, (result.exit_code, result.stderr)
    return json.loads(result.stdout)


def sandbox_env(sandbox: Sandbox) -> dict[str, str]:
    return {"EVOLINK_BASE_URL": sandbox.url, "EVOLINK_FILES_URL": sandbox.files_url,
            "EVOLINK_API_KEY": sandbox.key}


# -- the schemas themselves ---------------------------------------------------------------------

def test_every_output_has_a_schema() -> None:
    assert set(schema_names()) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_schema_is_valid_2020_12(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] and schema["$id"].endswith(name)
    jsonschema.Draft202012Validator.check_schema(schema)


def test_prep_schema_prints_it_and_lists_them() -> None:
    assert run("schema", "probe") == load_schema("probe")
    listing = CliRunner().invoke(cli, ["schema"])
    assert listing.exit_code == 0
    assert [line.split("\t")[0] for line in listing.stdout.splitlines()] == sorted(EXPECTED)
    unknown = CliRunner().invoke(cli, ["schema", "nope"])
    assert unknown.exit_code == 2 and "no schema named 'nope'" in unknown.stderr


def test_schema_files_are_what_the_generator_makes() -> None:
    import runpy

    main = runpy.run_path(str(ROOT / "scripts" / "schemas.py"))["main"]
    assert main(["--check"]) == 0, "prep/schemas is stale: run python scripts/schemas.py"


def test_schemas_refuse_what_the_contract_forbids() -> None:
    """They are not `true`: a renamed or missing contract field fails."""
    assert invalid("estimate", {"clips": []})
    assert invalid("probe", [{"path": "a.mov", "compliant": True}])
    assert invalid("upload", [{"path": "a.mp4", "url": "x", "expires_at": None, "cached": False}])
    assert invalid("config-show", {"config_file": "c", "api_key": "sk-secret", "base_url": "u",
                                   "files_url": "u", "cache_dir": "c", "ffmpeg": None})


# -- real outputs, no network -------------------------------------------------------------------

def test_estimate_from_seconds() -> None:
    validate("estimate", run("estimate", "--json", "--seconds", "3", "--seconds", "9"))
    validate("estimate", run("estimate", "--json", "--seconds", "3", "--model", "3.0",
                             "--quality", "480p", "--duration", "-1"))
    validate("estimate-compare", run("estimate", "--json", "--compare", "--seconds", "12",
                                     "--seconds", "9"))


def test_config_show_and_get() -> None:
    validate("config-show", run("config", "show", "--json"))
    assert CliRunner().invoke(cli, ["config", "set", "prices.min_charge", "9"]).exit_code == 0
    got = run("config", "get", "prices.min_charge", "--json")
    validate("config-get", got)
    assert got == {"name": "prices.min_charge", "value": 9}
    missing = run("config", "get", "base_url", "--json")
    validate("config-get", missing)


def test_doctor() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--json"])
    validate("doctor", json.loads(result.stdout))


def test_manifest_fixtures() -> None:
    for name in ("jobs.jsonl", "pick.jsonl"):
        for line in (ROOT / "fixtures" / "batch" / name).read_text().splitlines():
            validate("manifest", json.loads(line))
    assert invalid("manifest", {"name": "x", "clips": ["a.mov"] * 6, "prompt": "p"})
    assert invalid("manifest", {"name": "x", "clips": ["a.mov"], "prompt": "p", "colour": 1})
    validate("manifest", {"name": "x", "clips": ["a.mov"], "prompt": "p", "model": "3.0",
                          "duration": -1, "quality": "480p", "seed": 1, "generate_audio": False})
    assert invalid("manifest", {"name": "a/b", "clips": ["a.mov"], "prompt": "p"})
    assert invalid("manifest", {"name": "x", "clips": [{"start": 1}], "prompt": "p"})


def test_batch_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "x", "clips": [], "prompt": ""}\n{"nope": 1}\n')
    data = run("batch", "--json", "--dry-run", str(bad), "-o", str(tmp_path / "out"), code=2)
    validate("batch-problems", data)
    assert any(p["name"] is None for p in data["problems"])


# -- real outputs on media and the sandbox ------------------------------------------------------

@pytest.mark.media
def test_probe_and_its_error_rows(tmp_path: Path) -> None:
    data = run("probe", "--json", str(media_cases.case("compliant")), str(tmp_path / "nope.mov"),
               code=3)
    validate("probe", data)
    assert "error" in data[1] and data[1]["compliant"] is False


@pytest.mark.media
def test_estimate_and_prepare_with_an_error_row(tmp_path: Path) -> None:
    clip, mov = media_cases.case("compliant"), media_cases.case("quicktime")
    validate("estimate", run("estimate", "--json", str(clip), f"{mov}@0.5-"))
    data = run("prepare", "--json", str(mov), str(tmp_path / "nope.mov"), "-o",
               str(tmp_path / "out"), code=3)
    validate("prepare", data)
    assert data[0]["action"] == "remux" and data[1]["error"]


@pytest.mark.media
def test_upload_generate_task(sandbox: Sandbox, tmp_path: Path) -> None:
    env = sandbox_env(sandbox)
    clip = media_cases.case("compliant")
    validate("upload", run("upload", "--json", str(clip), env=env))
    validate("generate", run("generate", "--json", "--dry-run", str(clip), "-p", "hi", "-o",
                             str(tmp_path / "dry"), env=env))
    done = run("generate", "--json", "-y", str(clip), "-p", "A person waves", "-o",
               str(tmp_path / "res"), env=env)
    validate("generate", done)
    validate("task", run("task", "--json", done["task_id"], env=env))


@pytest.mark.media
def test_generate_failure_is_described(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.fail_next("fail_task")
    data = run("generate", "--json", "-y", str(media_cases.case("compliant")), "-p", "hi", "-o",
               str(tmp_path / "res"), env=sandbox_env(sandbox), code=7)
    validate("generate", data)
    assert data["exit_code"] == 7 and data["error"]


@pytest.mark.media
def test_batch_dry_run_run_status_resolve(sandbox: Sandbox, tmp_path: Path) -> None:
    env = sandbox_env(sandbox)
    clip, mov = media_cases.case("compliant"), media_cases.case("quicktime")
    manifest = tmp_path / "jobs.jsonl"
    jobs = [{"name": "a", "clips": [str(clip)], "prompt": "one"},
            {"name": "b", "clips": [str(clip), {"path": str(mov), "start": 0.5}], "prompt": "two"}]
    manifest.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    for job in jobs:
        validate("manifest", job)
    out = str(tmp_path / "out")
    validate("batch-dry-run", run("batch", "--json", "--dry-run", str(manifest), "-o", out, env=env))
    validate("batch", run("batch", "--json", "-y", str(manifest), "-o", out, env=env))
    validate("batch-status", run("batch", "status", "--json", out, env=env))
    resolved = CliRunner().invoke(cli, ["batch", "resolve", "--json", out, "a", "--not-created"],
                                  env=env)
    if resolved.stdout.strip():  # a finished job may be refused (exit 2) with nothing on stdout
        validate("batch-resolve", json.loads(resolved.stdout))


@pytest.mark.media
def test_batch_with_a_failed_job(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.fail_next("fail_task")
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(json.dumps({"name": "a", "clips": [str(media_cases.case("compliant"))],
                                    "prompt": "one"}) + "\n")
    result = CliRunner().invoke(cli, ["batch", "--json", "-y", str(manifest), "-o",
                                      str(tmp_path / "out")], env=sandbox_env(sandbox))
    data = json.loads(result.stdout)
    validate("batch", data)
    assert data["jobs"][0]["state"] == "failed" and data["jobs"][0]["error"]


@pytest.mark.media
# Beside tests/test_pick_media.py's CLI tests (one pytest-xdist worker), which analyse the interview
# with the same arguments: the analysis is made once (tests/analyses.py).
@pytest.mark.xdist_group("module:tests/test_pick_media.py")
def test_pick(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    import pickmedia

    data = run("pick", "--json", str(pickmedia.interview()), "--timeline", str(tmp_path / "t.png"))
    validate("pick", data)


@pytest.mark.media
def test_check_and_the_check_in_jobs(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    import checkmedia

    good, two = str(checkmedia.base()), str(checkmedia.two_faces())
    rows = run("check", "--json", good, two, str(tmp_path / "gone.mp4"), code=3)
    validate("check", rows)
    assert [r["verdict"] for r in rows] == ["good", "poor", None]
    assert invalid("check", [{**rows[0], "verdict": "great"}])
    assert invalid("check", [{**rows[0], "checks": {"speech": rows[0]["checks"]["speech"]}}])
    generated = run("generate", "--json", "--dry-run", good, two, "-p", "hi", "-o",
                    str(tmp_path / "dry"))
    validate("generate", generated)
    assert [c["verdict"] for c in generated["checks"]] == ["good", "poor"]
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(json.dumps({"name": "a", "clips": [good, two], "prompt": "one"}) + "\n")
    planned = run("batch", "--json", "--dry-run", str(manifest))
    validate("batch-dry-run", planned)
    assert [c["check"]["verdict"] for c in planned["jobs"][0]["clips"]] == ["good", "poor"]
