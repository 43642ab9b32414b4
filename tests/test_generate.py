"""`prep generate`, `prep upload` and `prep task` over real HTTP against the in-process sandbox:
the happy path and every fault of issue 7, with no key leaked and nothing sent twice."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import mediagen
import pytest
from click.testing import CliRunner

from prep.api.client import Client, RetryPolicy
from prep.core.request import RequestOptions
from prep.errors import AuthError, MediaError, OutcomeUnknownError, QuotaError, UsageError
from prep.jobs.generate import GenerateOptions, generate
from prep.jobs.policy import Pacing
from prep.sandbox import NO_ACCESS_KEY, NO_CREDITS_KEY, Sandbox
from prep.settings import Settings, load_settings
from prep.ui import endings
from prep.ui.cli import cli
from prep.ui.commands.schema import load_schema

# Every job here checks its clip as a reference on the way; the check's analysis is made once
# (tests/analyses.py), what the jobs do with it is what is tested.
pytestmark = [pytest.mark.media, pytest.mark.usefixtures("reuse_analyses")]

PROMPT = "A person looks at the camera and waves"


@pytest.fixture(scope="module")
def clip() -> Path:
    return mediagen.clip("gen-ref", seconds=3, size="320x180", rate="25")


@pytest.fixture()
def sb(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The sandbox, checked after every test: the key never went to a file or result URL."""
    yield sandbox
    assert sandbox.state()["auth_header_requests"] == 0


def settings_for(sb: Sandbox, tmp_path: Path, key: str | None = None) -> Settings:
    return load_settings({"api_key": key or sb.key, "base_url": sb.url, "files_url": sb.files_url,
                          "cache_dir": str(tmp_path / "cache")})


def fast_client(settings: Settings) -> Client:
    """A real-HTTP client whose backoff does not really sleep (retries are what is tested)."""
    return Client.from_settings(settings, sleep=lambda s: None, retry=RetryPolicy(attempts=4))


def run_generate(sb: Sandbox, tmp_path: Path, clips: list[Path], key: str | None = None,
                 out: str = "out", check: bool = True, **options: Any) -> Any:
    settings = settings_for(sb, tmp_path, key)
    asked = {k: options.pop(k) for k in list(options) if k in RequestOptions.__dataclass_fields__}
    opts = GenerateOptions(request=RequestOptions(**{"prompt": PROMPT, **asked}),
                           out_dir=tmp_path / out, **options)
    with fast_client(settings) as client:
        return generate([str(c) for c in clips], opts, settings, client=client, raise_on_failure=check)


def cli_env(sb: Sandbox, tmp_path: Path, key: str | None = "default") -> dict[str, str]:
    env = {"EVOLINK_BASE_URL": sb.url, "EVOLINK_FILES_URL": sb.files_url,
           "PREP_CACHE_DIR": str(tmp_path / "cache")}
    if key is not None:
        env["EVOLINK_API_KEY"] = sb.key if key == "default" else key
    return env


def invoke(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env=env)


def completed_uploads(sb: Sandbox) -> list[Any]:
    return list(sb.state()["uploads"])


# -- the happy path ----------------------------------------------------------------------------

def test_generate_end_to_end_through_the_cli(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke(cli_env(sb, tmp_path), "generate", str(clip), "--prompt", PROMPT, "-o",
                    str(out), "--yes", "--json", "--aspect-ratio", "auto")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    [path] = data["files"]
    saved = Path(path)
    assert saved.parent == out and saved.name == f"{data['job']}.mp4"
    assert saved.read_bytes()[4:8] == b"ftyp" and not list(out.glob("*.part"))
    assert data["status"] == "completed" and data["aspect_ratio"] == "16:9"
    assert data["credits_reserved"] == data["credits_estimated"] and not data["credits_differ"]
    assert set(data["stage_s"]) >= {"validate", "estimate", "prepare", "upload", "submit", "wait",
                                    "download"}
    state = sb.state()
    assert len(state["tasks"]) == 1 and len(state["uploads"]) == 1
    # The same command again is the same job: it resumes (done already) and pays nothing more.
    again = invoke(cli_env(sb, tmp_path), "generate", str(clip), "--prompt", PROMPT, "-o",
                   str(out), "--yes", "--json", "--aspect-ratio", "auto")
    assert again.exit_code == 0, again.stderr
    resumed = json.loads(again.stdout)
    assert resumed["resumed"] and resumed["task_id"] == data["task_id"] and resumed["files"] == [path]
    assert len(sb.state()["uploads"]) == 1 and len(sb.state()["tasks"]) == 1
    # Another job (another folder) reuses the upload (cached by content) and makes its own task.
    other = invoke(cli_env(sb, tmp_path), "generate", str(clip), "-p", PROMPT, "-o",
                   str(tmp_path / "other"), "-y", "--json")
    assert other.exit_code == 0, other.stderr
    assert len(sb.state()["uploads"]) == 1 and len(sb.state()["tasks"]) == 2


def test_no_wait_prints_the_task_id_and_task_follows_it(sb: Sandbox, clip: Path,
                                                        tmp_path: Path) -> None:
    env = cli_env(sb, tmp_path)
    result = invoke(env, "generate", str(clip), "-p", PROMPT, "-o", str(tmp_path / "o"), "-y",
                    "--no-wait")
    assert result.exit_code == 0, result.stderr
    task_id = result.stdout.strip()
    assert task_id == sb.state()["tasks"][0]["id"]
    followed = invoke(env, "task", task_id, "--wait", "-o", str(tmp_path / "dl"), "--json")
    assert followed.exit_code == 0, followed.stderr
    data = json.loads(followed.stdout)
    assert data["status"] == "completed" and Path(data["files"][0]).is_file()


def test_upload_command(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    env = cli_env(sb, tmp_path)
    for mode in ("base64", "stream"):
        result = invoke(env, "upload", str(clip), "--upload-mode", mode, "--json", "--no-cache")
        assert result.exit_code == 0, result.stderr
        [row] = json.loads(result.stdout)
        assert row["path"] == str(clip) and row["file_url"].startswith("http")
        assert row["expires_at"] and row["cached"] is False
    cached = invoke(env, "upload", str(clip), "--json")
    assert json.loads(cached.stdout)[0]["cached"] is False  # --no-cache runs did not store
    again = invoke(env, "upload", str(clip), "--json")
    assert json.loads(again.stdout)[0]["cached"] is True
    assert len(completed_uploads(sb)) == 3


def test_dry_run_sends_nothing_and_needs_no_key(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    result = invoke(cli_env(sb, tmp_path, key=None), "generate", str(clip), "-p", PROMPT, "-o",
                    str(tmp_path / "out"), "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["stopped"] == "dry-run" and Path(data["prepared"][0]).is_file()
    assert sb.state()["requests"] == []


def test_confirmation_is_required_without_a_terminal(sb: Sandbox, clip: Path,
                                                     tmp_path: Path) -> None:
    result = invoke(cli_env(sb, tmp_path), "generate", str(clip), "-p", PROMPT, "-o",
                    str(tmp_path / "out"))
    assert result.exit_code == 2 and "--yes" in result.stderr
    # Only the balance was read (it comes before the confirmation); nothing was uploaded or sent.
    assert [r["endpoint"] for r in sb.state()["requests"]] == ["credits"]


def test_max_cost_refuses_before_anything_is_sent(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    result = invoke(cli_env(sb, tmp_path), "generate", str(clip), "-p", PROMPT, "-o",
                    str(tmp_path / "out"), "-y", "--max-cost", "10")
    assert result.exit_code == 2 and "--max-cost 10" in result.stderr
    assert sb.state()["requests"] == []


def validate(name: str, data: Any) -> None:
    jsonschema.Draft202012Validator(load_schema(name)).validate(data)


def test_declining_the_cost_exits_2_and_answers_in_json(sb: Sandbox, clip: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: a "no" at the prompt exited 0, and the README says 2 (no confirmation).
    monkeypatch.setattr(endings, "can_ask", lambda: True)
    result = CliRunner().invoke(cli, ["generate", str(clip), "-p", PROMPT, "-o",
                                      str(tmp_path / "out"), "--json"],
                                env=cli_env(sb, tmp_path), input="n\n")
    assert result.exit_code == 2, result.stderr
    assert "credits? [y/N]" in result.stderr and "not confirmed" in result.stderr
    data = json.loads(result.stdout)  # one document, saying the same
    validate("generate", data)
    assert data["exit_code"] == 2 and "not confirmed" in data["error"] and data["task_id"] is None
    assert [r["endpoint"] for r in sb.state()["requests"]] == ["credits"]


@pytest.mark.parametrize(("args", "key", "code", "message"), [
    (["-p", PROMPT, "--duration", "11"], "default", 2, "--duration 11"),  # prep's own check
    (["-p", PROMPT, "--quality", "4k"], "default", 2, "'4k' is not one of"),  # click's
    (["--duration", "5"], "default", 2, "--prompt is required"),
    (["-p", PROMPT, "--no-audio"], "default", 2, "--no-audio is only for"),
    (["-p", PROMPT, "missing.mp4"], "default", 3, "missing.mp4"),
    (["-p", PROMPT], None, 4, "no EvoLink API key"),
])
def test_generate_json_answers_every_exit(sb: Sandbox, clip: Path, tmp_path: Path,
                                          args: list[str], key: str | None, code: int,
                                          message: str) -> None:
    # Before: `--json` printed nothing on stdout for these exits although the README says it
    # always answers.
    result = invoke(cli_env(sb, tmp_path, key=key), "generate", str(clip), *args, "-o",
                    str(tmp_path / "out"), "-y", "--json")
    assert result.exit_code == code, result.stderr
    data = json.loads(result.stdout)
    validate("generate", data)
    assert data["exit_code"] == code and message in data["error"]
    assert sb.state()["requests"] == []


# -- bad input: refused locally, nothing sent ---------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["-p", "x" * 1501], "1501 characters"),
    (["-p", PROMPT, "--duration", "11"], "--duration 11"),
    (["-p", PROMPT, "--callback-url", "https://127.0.0.1/hook"], "internal"),
    (["-p", PROMPT, "--callback-url", "http://example.com/hook"], "https"),
])
def test_local_validation_exits_2_before_any_request(sb: Sandbox, clip: Path, tmp_path: Path,
                                                     args: list[str], message: str) -> None:
    result = invoke(cli_env(sb, tmp_path), "generate", str(clip), *args, "-o",
                    str(tmp_path / "out"), "-y")
    assert result.exit_code == 2 and message in result.stderr
    assert sb.state()["requests"] == []


def test_four_clips_exit_2(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    result = invoke(cli_env(sb, tmp_path), "generate", *[str(clip)] * 4, "-p", PROMPT, "-o",
                    str(tmp_path / "out"), "-y")
    assert result.exit_code == 2 and "not 4" in result.stderr
    assert sb.state()["requests"] == []


def test_no_key_exits_4_before_any_request(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    result = invoke(cli_env(sb, tmp_path, key=None), "generate", str(clip), "-p", PROMPT, "-o",
                    str(tmp_path / "out"), "-y")
    assert result.exit_code == 4 and "EVOLINK_API_KEY" in result.stderr
    assert sb.state()["requests"] == []


def test_unwritable_output_folder_exits_3_before_any_upload(sb: Sandbox, clip: Path,
                                                            tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(MediaError, match="cannot be written") as info:
        generate([str(clip)], GenerateOptions(request=RequestOptions(prompt=PROMPT), out_dir=blocker / "out"),
                 settings_for(sb, tmp_path))
    assert info.value.exit_code == 3
    assert sb.state()["requests"] == []


# -- the server says no --------------------------------------------------------------------------

def test_wrong_key_exits_4(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    result = invoke(cli_env(sb, tmp_path, key="sk-wrong-key"), "generate", str(clip), "-p",
                    PROMPT, "-o", str(tmp_path / "out"), "-y")
    assert result.exit_code == 4, result.stderr
    assert "401" in result.stderr and "sk-wrong-key" not in result.stderr + result.stdout


def test_no_credits_exits_5(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    with pytest.raises(QuotaError) as info:
        run_generate(sb, tmp_path, [clip], key=NO_CREDITS_KEY)
    assert info.value.exit_code == 5 and info.value.hint
    assert sb.state()["tasks"] == []


def test_no_model_access_exits_4(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    with pytest.raises(AuthError) as info:
        run_generate(sb, tmp_path, [clip], key=NO_ACCESS_KEY)
    assert info.value.status == 403 and "wan2.6-reference-video" in info.value.hint


# -- faults ----------------------------------------------------------------------------------------

def test_rate_limit_then_success(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    sb.fail_next("rate_limit", endpoint="generate", retry_after_s=1)
    sb.fail_next("rate_limit", endpoint="upload", retry_after_s=1)
    result = run_generate(sb, tmp_path, [clip])
    assert result.task.succeeded and len(sb.state()["tasks"]) == 1


def test_server_errors_on_reads_are_retried(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    sb.fail_next("server_error", endpoint="task", times=2)
    sb.fail_next("server_error", endpoint="upload")
    result = run_generate(sb, tmp_path, [clip])
    assert result.task.succeeded and len(result.files) == 1


def test_server_error_on_create_is_not_resent(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    sb.fail_next("server_error", endpoint="generate")
    with pytest.raises(OutcomeUnknownError) as info:
        run_generate(sb, tmp_path, [clip])
    assert info.value.exit_code == 6 and "--resubmit" in info.value.hint
    assert sb.state()["tasks"] == []
    assert len([r for r in sb.state()["requests"] if r.get("endpoint") == "generate"]) <= 1


def test_connection_dropped_mid_upload_is_retried_once(sb: Sandbox, clip: Path,
                                                       tmp_path: Path) -> None:
    sb.fail_next("drop_mid_request", endpoint="upload")
    result = run_generate(sb, tmp_path, [clip])
    assert result.task.succeeded
    assert len(completed_uploads(sb)) == 1


def test_dropped_after_create_is_an_unknown_outcome_never_resent(sb: Sandbox, clip: Path,
                                                                 tmp_path: Path) -> None:
    sb.fail_next("drop_after_create", endpoint="generate")
    env = cli_env(sb, tmp_path)
    args = ["generate", str(clip), "-p", PROMPT, "-o", str(tmp_path / "out"), "-y"]
    result = invoke(env, *args)
    assert result.exit_code == 6, result.stderr
    assert "outcome unknown" in result.stderr and "may exist" in result.stderr
    assert len(sb.state()["tasks"]) == 1
    # Running the same job again is refused: it might pay twice.
    again = invoke(env, *args)
    assert again.exit_code == 6 and "--resubmit" in again.stderr
    assert len(sb.state()["tasks"]) == 1
    # Only the user's explicit --resubmit sends it again (under the same Idempotency-Key).
    forced = invoke(env, *args, "--resubmit")
    assert forced.exit_code == 0, forced.stderr
    assert len(sb.state()["tasks"]) == 2
    # The unknown outcome lived in the job's journal only: one record, in the output folder.
    assert not (tmp_path / "cache" / "outcomes").exists()


def test_dropped_after_create_with_idempotency_honoured(sb: Sandbox, clip: Path,
                                                        tmp_path: Path) -> None:
    sb.configure(honour_idempotency=True)
    sb.fail_next("drop_after_create", endpoint="generate")
    with pytest.raises(OutcomeUnknownError):
        run_generate(sb, tmp_path, [clip])
    result = run_generate(sb, tmp_path, [clip], resubmit=True)
    assert result.replayed and result.task.succeeded and len(sb.state()["tasks"]) == 1


def test_failed_task_exits_7(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    sb.fail_next("fail_task", endpoint="generate")
    result = invoke(cli_env(sb, tmp_path), "generate", str(clip), "-p", PROMPT, "-o",
                    str(tmp_path / "out"), "-y")
    assert result.exit_code == 7, result.stderr
    assert "failed" in result.stderr and not list((tmp_path / "out").glob("*.mp4*"))


def test_expired_upload_is_uploaded_afresh(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    run_generate(sb, tmp_path, [clip])
    sb.advance_clock(73 * 3600)
    result = run_generate(sb, tmp_path, [clip], out="second")
    assert result.task.succeeded
    assert len(completed_uploads(sb)) == 2


def test_refused_cached_url_is_uploaded_afresh(sb: Sandbox, clip: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run_generate(sb, tmp_path, [clip])
    sb.advance_clock(73 * 3600)
    # The cached URL looks alive to prep, so the generation endpoint is what refuses it.
    monkeypatch.setattr(Client, "url_alive", lambda self, url: True)
    result = run_generate(sb, tmp_path, [clip], out="second")
    assert result.task.succeeded
    generates = [r["status"] for r in sb.state()["requests"] if r.get("endpoint") == "generate"]
    assert generates == [200, 400, 200]
    assert len(sb.state()["tasks"]) == 2 and len(completed_uploads(sb)) == 2


def test_expired_result_link(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    result = run_generate(sb, tmp_path, [clip], wait=False)
    task_id = result.task.id
    env = cli_env(sb, tmp_path)
    assert invoke(env, "task", task_id, "--wait").exit_code == 0
    sb.advance_clock(25 * 3600)
    late = invoke(env, "task", task_id, "-o", str(tmp_path / "late"))
    assert late.exit_code == 6 and "expired" in late.stderr
    assert not list((tmp_path / "late").glob("*"))


def test_download_cut_halfway_is_resumed(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    sb.fail_next("drop_mid_response", endpoint="download")
    result = run_generate(sb, tmp_path, [clip])
    [path] = result.files
    assert path.read_bytes()[4:8] == b"ftyp" and not list(path.parent.glob("*.part"))
    downloads = [r for r in sb.state()["requests"] if r.get("endpoint") == "download"]
    assert len(downloads) >= 2


def test_no_clips_is_a_usage_error(sb: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not 0"):
        run_generate(sb, tmp_path, [])
    assert sb.state()["requests"] == []


def test_verbose_traces_never_show_the_key(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    sb.fail_next("server_error", endpoint="upload")
    result = invoke(cli_env(sb, tmp_path), "upload", str(clip), "--verbose", "--json")
    assert result.exit_code == 0, result.stderr
    assert "retrying" in result.stderr and sb.key not in result.stderr + result.stdout


# -- one engine: the same command resumes its job and never pays twice -------------------------

# The engine's back-off in milliseconds instead of seconds (what is tested is the outcome).
QUICK = Pacing(defer_base_ms=1, retry_base_ms=1, max_deferrals=2)


def _generates(sb: Sandbox) -> int:
    return len([r for r in sb.state()["requests"] if r.get("endpoint") == "generate"])


def test_task_queries_failing_then_rerun_follows_the_same_task(sb: Sandbox, clip: Path,
                                                               tmp_path: Path) -> None:
    sb.fail_next("server_error", endpoint="task", times=50)
    first = run_generate(sb, tmp_path, [clip], pacing=QUICK, check=False)
    assert first.exit_code == 6
    data = first.as_dict()  # what --json prints, even when the job did not finish
    assert data["task_id"] and data["exit_code"] == 6 and data["error"]
    sb.clear_faults()
    again = run_generate(sb, tmp_path, [clip], pacing=QUICK)
    assert again.exit_code == 0, again.as_dict()
    assert again.task_id == first.task_id
    assert len(sb.state()["tasks"]) == 1 and _generates(sb) == 1


def test_download_failing_then_rerun_downloads_without_a_new_task(sb: Sandbox, clip: Path,
                                                                 tmp_path: Path) -> None:
    sb.fail_next("server_error", endpoint="download", times=200)
    first = run_generate(sb, tmp_path, [clip], pacing=QUICK, check=False)
    assert first.exit_code == 6 and first.as_dict()["files"] == []
    sb.clear_faults()
    again = run_generate(sb, tmp_path, [clip], pacing=QUICK)
    assert again.exit_code == 0, again.as_dict()
    assert again.files[0].is_file()
    assert len(sb.state()["tasks"]) == 1 and _generates(sb) == 1


def test_deadline_then_rerun_follows_the_same_task(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    sb.configure(speed=0.001)  # the task barely moves
    env = cli_env(sb, tmp_path)
    args = ["generate", str(clip), "-p", PROMPT, "-o", str(tmp_path / "out"), "-y", "--json"]
    first = invoke(env, *args, "--deadline", "1")
    assert first.exit_code == 6, first.stderr
    data = json.loads(first.stdout)
    assert data["stopped"] == "deadline" and data["task_id"] and "again" in data["hint"]
    sb.configure(speed=200)
    again = invoke(env, *args)
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["task_id"] == data["task_id"]
    assert len(sb.state()["tasks"]) == 1 and _generates(sb) == 1


def test_unknown_outcome_is_still_refused_with_no_cache(sb: Sandbox, clip: Path,
                                                        tmp_path: Path) -> None:
    sb.fail_next("drop_after_create", endpoint="generate")
    env = cli_env(sb, tmp_path)
    args = ["generate", str(clip), "-p", PROMPT, "-o", str(tmp_path / "out"), "-y"]
    assert invoke(env, *args).exit_code == 6
    again = invoke(env, *args, "--no-cache")  # re-prepares and would re-upload: same job all the same
    assert again.exit_code == 6 and "--resubmit" in again.stderr
    assert _generates(sb) == 1 and len(sb.state()["uploads"]) == 1


def test_failed_task_prints_json_and_exits_7(sb: Sandbox, clip: Path, tmp_path: Path) -> None:
    sb.fail_next("fail_task", endpoint="generate")
    result = invoke(cli_env(sb, tmp_path), "generate", str(clip), "-p", PROMPT, "-o",
                    str(tmp_path / "out"), "-y", "--json")
    assert result.exit_code == 7, result.stderr
    data = json.loads(result.stdout)
    assert data["state"] == "failed" and data["exit_code"] == 7 and data["status"] == "failed"


def test_clip_is_probed_once(sb: Sandbox, clip: Path, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    import prep.media.probe as probe_module

    calls: list[Path] = []
    real = probe_module.probe

    def counting(path: Any) -> Any:
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(probe_module, "probe", counting)
    run_generate(sb, tmp_path, [clip], dry_run=True)
    assert calls.count(Path(str(clip))) == 1


def test_a_job_makes_one_client_and_opens_its_journal_once(
        sb: Sandbox, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The balance check, the engine (its downloads too) and the read-back share one client
    and one open journal, for a new job and for the same job resumed."""
    from prep.jobs.journal import Journal

    made: list[Client] = []
    opened: list[Path] = []
    real_init, real_open = Client.__init__, Journal.open.__func__  # type: ignore[attr-defined]

    def counting_init(self: Client, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        real_init(self, *args, **kwargs)

    def counting_open(cls: type[Journal], folder: Path, **kwargs: Any) -> Journal:
        opened.append(Path(folder))
        return real_open(cls, folder, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(Client, "__init__", counting_init)
    monkeypatch.setattr(Journal, "open", classmethod(counting_open))
    settings = settings_for(sb, tmp_path)
    options = GenerateOptions(request=RequestOptions(prompt=PROMPT), out_dir=tmp_path / "out")
    for run in ("new", "resumed"):
        made.clear()
        opened.clear()
        result = generate([str(clip)], options, settings)
        assert result.exit_code == 0 and result.resumed == (run == "resumed"), run
        assert len(made) == 1 and opened == [options.out_dir], run
    assert len(sb.state()["tasks"]) == 1


def test_upload_warns_of_a_clip_the_api_would_refuse(sb: Sandbox, tmp_path: Path) -> None:
    """A 45 s clip was uploaded without a word; a job with it is refused."""
    long = mediagen.clip("gen-long45", seconds=45, size="160x90", rate="10")
    result = invoke(cli_env(sb, tmp_path), "upload", str(long), "--json", "--no-cache")
    assert result.exit_code == 0, result.stderr
    assert "45" in result.stderr and "prep prepare" in result.stderr
    assert json.loads(result.stdout)[0]["file_url"]


@pytest.mark.timeout(60)
def test_upload_of_a_fifo_is_refused_at_once(sb: Sandbox, tmp_path: Path) -> None:
    """It hung: opening a FIFO waits for a writer."""
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    result = invoke(cli_env(sb, tmp_path), "upload", str(fifo))
    assert result.exit_code == 3
    assert "not a regular file" in result.stderr
