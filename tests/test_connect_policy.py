"""One connection policy: a service that cannot be reached is tried again for the connect timeout
(60 s by default, `--connect-timeout` / `connect_timeout_s` to wait longer), then reported with its
address and exit 6, by every command alike; a refused key stops a job before any encode."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import mediagen
import pytest
from click.testing import CliRunner
from sandbox_fixture import Sandbox

from prep.api.client import Client, RetryPolicy
from prep.errors import AuthError, ServiceUnreachable
from prep.jobs.budget import check_balance
from prep.settings import load_settings
from prep.ui.cli import cli

API, FILES = "http://api.test", "http://files.test"


def _refusing_client(deadline_s: float | None = None) -> tuple[Client, list[float]]:
    """A client whose every connection is refused; its clock is the sleeps it was asked for."""
    slept: list[float] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.Client(transport=httpx.MockTransport(refuse))
    extra = {} if deadline_s is None else {"connect_deadline_s": deadline_s}
    client = Client("k", base_url=API, files_url=FILES, http=http, sleep=slept.append,
                    clock=lambda: sum(slept), rand=lambda: 0.99, **extra)
    return client, slept


def test_a_refused_service_is_reported_within_the_default_60_s() -> None:
    client, slept = _refusing_client()
    with pytest.raises(ServiceUnreachable) as caught:
        client.get_task("task-1")
    assert sum(slept) <= 60 and len(slept) >= 3
    assert caught.value.exit_code == 6
    assert "http://api.test" in str(caught.value) and "--connect-timeout" in caught.value.hint


def test_a_longer_connect_timeout_waits_longer() -> None:
    client, slept = _refusing_client(300)
    with pytest.raises(ServiceUnreachable):
        client.get_task("task-1")
    assert 60 < sum(slept) <= 300


def test_the_setting_and_the_environment_set_the_client() -> None:
    settings = load_settings({"connect_timeout_s": 120})
    assert Client.from_settings(settings).connect_deadline_s == 120
    assert load_settings(environ={"PREP_CONNECT_TIMEOUT": "7"}).connect_timeout_s == 7
    assert load_settings().connect_timeout_s == 60


def test_the_retry_is_told() -> None:
    told: list[str] = []
    client, _ = _refusing_client(5)
    client.on_retry = told.append
    with pytest.raises(ServiceUnreachable):
        client.get_task("task-1")
    assert told and "http://api.test" in told[0] and "5 s" in told[0]


def test_balance_read_stops_on_a_refused_or_unreachable_service() -> None:
    client, _ = _refusing_client(5)
    with pytest.raises(ServiceUnreachable):
        check_balance([("job", 10_000)], client)
    for status in (401, 403):
        http = httpx.Client(transport=httpx.MockTransport(
            lambda request, s=status: httpx.Response(s, json={"error": {"message": "bad key"}})))
        with pytest.raises(AuthError) as caught:
            check_balance([("job", 10_000)], Client("k", base_url=API, files_url=FILES, http=http,
                                                    retry=RetryPolicy(attempts=1)))
        assert "EVOLINK_API_KEY" in caught.value.hint
        assert "prep config set api_key" in caught.value.hint


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def nothing_there(tmp_path: Path) -> dict[str, str]:
    url = f"http://127.0.0.1:{_closed_port()}"
    return {"EVOLINK_BASE_URL": url, "EVOLINK_FILES_URL": url, "EVOLINK_API_KEY": "sk-test",
            "PREP_CACHE_DIR": str(tmp_path / "cache")}


@pytest.mark.media
@pytest.mark.parametrize("command", ["upload", "generate", "batch"])
def test_every_command_gives_up_alike(command: str, nothing_there: dict[str, str],
                                      tmp_path: Path) -> None:
    clip = mediagen.clip("connect-policy", seconds=3, size="320x180", rate="25")
    args = {"upload": ["upload", str(clip)],
            "generate": ["generate", str(clip), "-p", "a wave", "-o", str(tmp_path / "out"), "-y"],
            "batch": ["batch", str(_manifest(tmp_path, clip)), "-o", str(tmp_path / "out"), "-y"]}
    started = time.monotonic()
    result = CliRunner().invoke(cli, [*args[command], "--connect-timeout", "3"],
                                env=nothing_there)
    elapsed = time.monotonic() - started
    assert result.exit_code == 6, result.output
    assert nothing_there["EVOLINK_BASE_URL"] in result.stderr
    assert elapsed < 30, f"{command} took {elapsed:.0f} s"
    prepared = tmp_path / "out" / "prepared"
    assert not prepared.exists() or not any(prepared.rglob("*.mp4"))  # nothing was encoded


def _manifest(tmp_path: Path, clip: Path) -> Path:
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(f"name,clips,prompt\none,{clip},a wave\n")
    return manifest


def test_wrong_key_stops_before_any_encode(sandbox: Sandbox, tmp_path: Path) -> None:
    """A clip that needs an encode: before, it was transcoded and failed at upload (exit 4)."""
    clip = mediagen.clip("connect-mjpeg", seconds=3, size="320x180", rate="25",
                         vcodec=["-c:v", "mjpeg"], suffix=".avi")
    env = {"EVOLINK_BASE_URL": sandbox.url, "EVOLINK_FILES_URL": sandbox.files_url,
           "EVOLINK_API_KEY": "sk-wrong-key", "PREP_CACHE_DIR": str(tmp_path / "cache")}
    result = CliRunner().invoke(cli, ["generate", str(clip), "-p", "a wave", "-o",
                                      str(tmp_path / "out"), "-y"], env=env)
    assert result.exit_code == 4, result.output
    assert "EVOLINK_API_KEY" in result.stderr and "prep config set api_key" in result.stderr
    assert not list((tmp_path / "out").rglob("*.mp4"))
    assert sandbox.state()["uploads"] == []


def test_generate_json_on_a_missing_clip_is_still_json(tmp_path: Path) -> None:
    """stdout was empty: a script reading --json got nothing to parse."""
    import json

    from prep.ui.commands.schema import load_schema

    result = CliRunner().invoke(cli, ["generate", str(tmp_path / "missing.mp4"), "-p", "a wave",
                                      "--json", "-y", "-o", str(tmp_path / "out")],
                                env={"EVOLINK_API_KEY": "sk-test",
                                     "EVOLINK_BASE_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["exit_code"] == 3 and "missing.mp4" in data["error"]
    import jsonschema

    jsonschema.Draft202012Validator(load_schema("generate")).validate(data)
