"""`prep account`, `prep tasks`, and --model / --audio on the commands that bill: CliRunner, with
the client's answers given by MockTransport-free stand-ins (no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from prep.api.client import Client, Credits, Task, TaskPage
from prep.core import rules
from prep.errors import ApiError
from prep.ui.cli import cli

FLASH = rules.FLASH_MODEL
KEY = "sk-cli-SECRET-0123456789"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"EVOLINK_API_KEY": KEY,
                                                   "EVOLINK_BASE_URL": "http://127.0.0.1:9"})


@pytest.fixture()
def account(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    answers: dict[str, Any] = {
        "credits": Credits(key_remaining_units=300_000, key_used_units=10_000,
                           account_remaining_units=1_000_000, account_used_units=5),
        "quota": {"user_group": "default", "used_files": 3, "max_files": 100, "remain_files": 97},
    }
    monkeypatch.setattr(Client, "credits", lambda self: answers["credits"])
    monkeypatch.setattr(Client, "files_quota", lambda self: answers["quota"])
    return answers


def test_account_json(account: dict[str, Any]) -> None:
    result = run("account", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["credits"]["spendable"] == 30.0 and data["credits"]["limited_by"] == "key"
    assert data["credits"]["key"]["used_units"] == 10_000
    assert data["files"]["remain_files"] == 97 and data["notes"] == []
    assert KEY not in result.output


def test_account_for_people_and_an_absent_endpoint(account: dict[str, Any]) -> None:
    account["credits"] = None
    result = run("account")
    assert result.exit_code == 0, result.output
    assert "97 left" in result.stdout and "does not report credits" in result.output
    data = json.loads(run("account", "--json").stdout)
    assert data["credits"] is None and len(data["notes"]) == 1


def test_tasks_json_and_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def list_tasks(self: Client, **kwargs: Any) -> TaskPage:
        seen.update(kwargs)
        return TaskPage(tasks=(Task(id="t1", status="completed", model=FLASH, created=1757169743,
                                    credits_reserved_units=90_000),), total=1, page=1, page_size=5)

    monkeypatch.setattr(Client, "list_tasks", list_tasks)
    result = run("tasks", "--status", "completed", "--model", FLASH, "--page-size", "5", "--json")
    assert result.exit_code == 0, result.output
    assert seen == {"status": "completed", "model": FLASH, "page": 1, "page_size": 5}
    data = json.loads(result.stdout)
    assert data["tasks"][0]["credits_reserved"] == 9.0 and data["pages"] == 1
    table = run("tasks")
    assert table.exit_code == 0 and "t1" in table.stdout and "2025-09-06" in table.stdout


def test_tasks_where_the_list_is_not_served(monkeypatch: pytest.MonkeyPatch) -> None:
    def absent(self: Client, **kwargs: Any) -> TaskPage:
        raise ApiError("listing tasks: 127.0.0.1 does not offer a task list", status=404)

    monkeypatch.setattr(Client, "list_tasks", absent)
    result = run("tasks")
    assert result.exit_code == 6 and "does not offer a task list" in result.output
    assert run("tasks", "--status", "nope").exit_code == 2


def test_estimate_with_the_flash_model_shows_the_saving() -> None:
    result = run("estimate", "--seconds", "2", "--duration", "2", "--model", FLASH, "--no-audio",
                 "--json", "-q")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["credits_units"] == 90_000 and data["minimum_applied"] is True
    assert data["model"] == FLASH and data["generate_audio"] is False
    assert {o["model"]: o["credits_units"] for o in data["other_models"]}[rules.MODEL] == 190_400
    people = run("estimate", "--seconds", "6")
    assert "wan2.6-reference-video-flash (no audio): 11.9 credits (saves 35.7)" in people.output


@pytest.mark.parametrize("command", [
    ("estimate", "--seconds", "6"),
    ("generate", "a.mp4", "-p", "Hi", "-o", "out"),
])
@pytest.mark.parametrize("flag", ["--audio", "--no-audio"])
def test_audio_flags_need_the_flash_model(command: tuple[str, ...], flag: str) -> None:
    result = run(*command, flag)
    assert result.exit_code == 2
    assert f"{flag} is only for {FLASH}" in result.output


def test_flash_prices_on_the_command_line() -> None:
    result = run("estimate", "--seconds", "6", "--model", FLASH, "--flash-price-per-second", "1",
                 "--json", "-q")
    assert json.loads(result.stdout)["credits_units"] == 100_000  # 10 s x 1 credit


LONG_ID = "task-unified-1757169743-7cvnl5zw"


def _long_page(self: Client, **kwargs: Any) -> TaskPage:
    return TaskPage(tasks=tuple(
        Task(id=f"{LONG_ID}{n}", status="processing", progress=40, model=FLASH,
             created=1757169743, credits_reserved_units=90_000) for n in range(3)),
        total=3, page=1, page_size=20)


@pytest.mark.parametrize("columns", ["80", "90", "200"])
def test_tasks_never_split_an_id(monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    """At 80 and 90 columns the id column was folded, and ids broke across lines."""
    monkeypatch.setattr(Client, "list_tasks", _long_page)
    result = CliRunner().invoke(cli, ["tasks"], env={
        "EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": "http://127.0.0.1:9", "COLUMNS": columns})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for n in range(3):
        assert any(f"{LONG_ID}{n}" in line for line in lines), result.stdout
        assert any(FLASH in line for line in lines)


def test_account_and_tasks_json_have_schemas(account: dict[str, Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import jsonschema

    from prep.ui.commands.schema import load_schema

    monkeypatch.setattr(Client, "list_tasks", _long_page)
    for name in ("account", "tasks"):
        result = run(name, "--json")
        jsonschema.Draft202012Validator(load_schema(name)).validate(json.loads(result.stdout))
    account["credits"] = None
    jsonschema.Draft202012Validator(load_schema("account")).validate(
        json.loads(run("account", "--json").stdout))
