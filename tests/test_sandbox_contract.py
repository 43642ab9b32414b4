"""The sandbox's contract with the people and tests that run it: it cleans up on SIGTERM, refuses
absurd settings and undecodable text with a 400 (never a 500), and its OpenAPI document describes
exactly the routes it serves, with the limits its validation enforces."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from request_cases import REQUEST_CASES
from sandbox_util import client, error_of, tiny_clip, upload

from prep.sandbox import RunningSandbox, Sandbox, SandboxConfig, limits
from prep.sandbox.config import SPEED_RANGE
from prep.sandbox.openapi import flash_request_schema, generation_request_schema, openapi_document
from prep.sandbox.validation import Invalid, parse_generation

# -- SIGTERM ---------------------------------------------------------------------------------------


@pytest.mark.sandbox
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_removes_the_storage_folder(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOLINK_")}
    env["TMPDIR"] = str(temp)
    proc = subprocess.Popen(
        [sys.executable, "-m", "prep", "sandbox", "--port", "0", "--json", "--speed", "50"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        sandbox = Sandbox(info["base_url"], key=info["api_key"])
        upload(sandbox, tiny_clip())
        storage = Path(sandbox.state()["storage"]["data_dir"])
        assert storage.is_relative_to(temp) and any((storage / "files").iterdir())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert not storage.exists()
        assert list(temp.iterdir()) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


# -- settings --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "needle"), [
    (b'{"speed": 1e-308}', "speed must be a finite number"),
    (b'{"speed": 1e999}', "speed must be a finite number"),
    (b'{"speed": 0}', "speed"),
    (b'{"speed": -3}', "speed"),
    (b'{"speed": 1e300}', "speed"),
    (b'{"speed": "10"}', "speed must be a number"),
    (b'{"speed": true}', "speed must be a number"),
    (b'{"max_upload_bytes": 0}', "max_upload_bytes"),
    (b'{"max_upload_bytes": 100000000000000000000000000000}', "max_upload_bytes"),
    (b'{"max_files": -1}', "max_files"),
    (b'{"callback_timeout_s": 1e-320}', "callback_timeout_s"),
    (b'{"resolve_timeout_s": 1e9}', "resolve_timeout_s"),
    (b'{"body_idle_s": 0}', "body_idle_s"),
    (b'{"hosts": {"a.example": "not an address"}}', "not an IP address"),
    (b'{"hosts": {"a.example": 5}}', "must be a string"),
    (b'{"hosts": []}', "hosts must be an object"),
    (b'{"prices": {"units_per_second": 0}}', "units_per_second"),
    (b'{"prices": {"units_per_second": 1.5}}', "units_per_second"),
    (b'{"prices": {"hd_multiplier": "1e999"}}', "hd_multiplier"),
    (b'{"prices": {"hd_multiplier": "nan"}}', "hd_multiplier"),
    (b'{"prices": {"hd_multiplier": "1/0"}}', "hd_multiplier"),
    (b'{"prices": {"minimum_units": -1}}', "minimum_units"),
    (b'{"prices": {"cheap": true}}', "unknown price fields"),
    (b'{"colour": "red"}', "unknown setting"),
    (b'{"honour_idempotency": 1}', "honour_idempotency must be true or false"),
    (b'[1]', "a JSON object"),
])
def test_absurd_settings_are_400(sandbox: Sandbox, raw: bytes, needle: str) -> None:
    before = sandbox.state()["config"]
    answer = httpx.post(f"{sandbox.url}/_sandbox/config", content=raw, trust_env=False,
                        headers={"content-type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert needle in error_of(answer)["message"]
    assert sandbox.state()["config"] == before


def test_sensible_settings_still_apply(sandbox: Sandbox) -> None:
    changed = sandbox.configure(speed=0.5, prices={"units_per_second": 23_800,
                                                   "hd_multiplier": 1.5, "minimum_units": 0})
    assert changed["speed"] == 0.5
    assert changed["prices"] == {"units_per_second": 23_800, "hd_multiplier": "3/2",
                                 "minimum_units": 0}


@pytest.mark.parametrize("credits", [1e308, -1, "5"])
def test_absurd_key_balances_are_400(sandbox: Sandbox, credits: object) -> None:
    answer = httpx.post(f"{sandbox.url}/_sandbox/keys", trust_env=False,
                        json={"key": "sk-rich", "credits": credits})
    assert answer.status_code == 400, answer.text
    assert "credits" in error_of(answer)["message"]


def test_config_objects_refuse_absurd_values_too() -> None:
    with pytest.raises(ValueError, match="speed"):
        SandboxConfig(speed=1e-308)
    with pytest.raises(ValueError, match="speed"):
        SandboxConfig(speed=float("nan"))
    assert SandboxConfig(speed=SPEED_RANGE[1]).speed == SPEED_RANGE[1]


def test_prices_may_be_given_as_any_price_table() -> None:
    from prep.core.billing import PriceTable  # the client's table, read by attribute only

    config = SandboxConfig(prices=PriceTable(units_per_second=10_000, minimum_units=1))
    assert config.prices.public() == {"units_per_second": 10_000, "hd_multiplier": "167/100",
                                      "minimum_units": 1}


# -- text that is not text -------------------------------------------------------------------------

def _post_raw(http: httpx.Client, path: str, body: Any) -> httpx.Response:
    return http.post(path, content=json.dumps(body).encode(),  # "\ud800" escaped, as JSON allows
                     headers={"content-type": "application/json"})


@pytest.mark.parametrize(("change", "field"), [
    ({"prompt": "\ud800"}, "prompt"),
    ({"prompt": "hello \udfff world"}, "prompt"),
    ({"video_urls": ["https://cdn.example.com/\ud83d.mp4"]}, "video_urls[0]"),
    ({"model_params": {"shot_type": "\ud800"}}, "model_params.shot_type"),
    ({"callback_url": "https://example.com/\ud800"}, "callback_url"),
    ({"extra": {"note": ["\ud800"]}}, "extra.note[0]"),
    ({"\ud800": 1}, "a field name"),
])
def test_lone_surrogates_are_400_naming_the_field(sandbox: Sandbox, change: dict[str, Any],
                                                  field: str) -> None:
    body = {"model": limits.MODEL, "prompt": "A person waves", "video_urls": [
        "https://cdn.example.com/a.mp4"], **change}
    with client(sandbox) as http:
        answer = _post_raw(http, "/v1/videos/generations", body)
    assert answer.status_code == 400, answer.text
    message = error_of(answer)["message"]
    assert message.startswith(field) and "surrogate" in message
    assert httpx.get(f"{sandbox.url}/_sandbox/state", trust_env=False).status_code == 200


@pytest.mark.parametrize("field", ["file_name", "upload_path"])
def test_lone_surrogates_in_upload_fields_are_400(sandbox: Sandbox, field: str) -> None:
    import base64

    data = base64.b64encode(tiny_clip().read_bytes()).decode()
    with client(sandbox) as http:
        answer = _post_raw(http, "/api/v1/files/upload/base64",
                           {"base64_data": data, field: "clip\ud800.mp4"})
    assert answer.status_code == 400, answer.text
    assert error_of(answer)["message"].startswith(field)
    assert sandbox.state()["uploads"] == []


_ANY_CHAR = st.characters(categories=["Cs", "Cc", "Zs", "Ll", "Lu", "Nd", "Po", "Sm", "So", "Lo"])
_TEXT = st.text(_ANY_CHAR, max_size=20)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8)
_FIELDS = st.sampled_from(["model", "prompt", "video_urls", "aspect_ratio", "quality", "duration",
                           "model_params", "extra"])
_FUZZ = settings(max_examples=150, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_FUZZ
@given(changes=st.dictionaries(_FIELDS, _VALUES | _TEXT, max_size=3),
       key=st.sampled_from(["body", "upload"]))
def test_fuzz_any_text_anywhere_is_never_a_500(sandbox_server: RunningSandbox,
                                               changes: dict[str, Any], key: str) -> None:
    # Foreign video URLs: a body that passes every rule is refused at the download step, so the
    # fuzz never renders a video. Callback URLs are fuzzed below, without DNS.
    body: dict[str, Any] = {"model": limits.MODEL, "prompt": "A person waves",
                            "video_urls": ["https://cdn.example.com/a.mp4"], **changes}
    with client(sandbox_server) as http:
        if key == "body":
            answer = _post_raw(http, "/v1/videos/generations", body)
        else:
            answer = _post_raw(http, "/api/v1/files/upload/base64", {
                "base64_data": "AAAA", **{k: v for k, v in changes.items() if k != "extra"},
                "file_name": changes.get("prompt", "a.mp4"), "upload_path": changes.get("quality", "x")})
    assert answer.status_code in (400, 413), answer.text
    error_of(answer)


@_FUZZ
@given(tail=_TEXT, scheme=st.sampled_from(["https://", "http://", "", "https://[", "https://0x"]))
def test_fuzz_callback_urls_are_judged_without_crashing(scheme: str, tail: str) -> None:
    body = {"model": limits.MODEL, "prompt": "x", "video_urls": ["https://a.example/a.mp4"],
            "callback_url": scheme + tail}
    try:
        parse_generation(body)
    except Invalid as err:
        assert str(err)


@_FUZZ
@given(changes=st.dictionaries(st.sampled_from(["speed", "max_files", "max_upload_bytes",
                                                "callback_timeout_s", "hosts", "prices",
                                                "body_idle_s", "resolve_timeout_s"]),
                               _VALUES, max_size=2))
def test_fuzz_settings_are_never_a_500(sandbox_server: RunningSandbox,
                                       changes: dict[str, Any]) -> None:
    try:
        with httpx.Client(base_url=sandbox_server.url, trust_env=False) as http:
            answer = _post_raw(http, "/_sandbox/config", changes)
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 400:
            error_of(answer)
    finally:
        sandbox_server.reset()


# -- the OpenAPI document --------------------------------------------------------------------------

def test_openapi_lists_every_route_the_app_serves(sandbox_server: RunningSandbox) -> None:
    doc = openapi_document("http://127.0.0.1:1")
    served: dict[str, set[str]] = {}
    for route in sandbox_server.app.asgi.routes:
        served[route.path] = {m.lower() for m in route.methods or ()}  # type: ignore[attr-defined]
    documented = {path: set(ops) for path, ops in doc["paths"].items()}
    assert set(documented) == set(served)
    for path, methods in served.items():
        # Starlette answers HEAD wherever it answers GET; the document lists HEAD where it matters.
        assert documented[path] - {"head"} == methods - {"head"}, path
        assert documented[path] <= methods, path
    pairs = sum(len(m - {"head"}) for m in served.values())
    assert pairs == sum(len(m - {"head"}) for m in documented.values()) >= 20


def test_openapi_states_the_limits_the_validation_enforces() -> None:
    doc = openapi_document("http://127.0.0.1:1")
    request = doc["components"]["schemas"]["Wan26ReferenceVideoRequest"]
    props = request["properties"]
    assert props["prompt"]["minLength"] == 1
    assert props["prompt"]["maxLength"] == limits.PROMPT_MAX_CHARS
    assert re.search(props["prompt"]["pattern"], " x ") and not re.search(
        props["prompt"]["pattern"], " \t\n")
    urls = props["video_urls"]
    assert (urls["minItems"], urls["maxItems"]) == (limits.URL_COUNT_MIN, limits.URL_COUNT_MAX)
    assert (props["duration"]["minimum"], props["duration"]["maximum"]) == (
        limits.OUTPUT_MIN_S, limits.OUTPUT_MAX_S)
    assert props["callback_url"]["maxLength"] == limits.CALLBACK_URL_MAX_CHARS
    task_param = doc["paths"]["/v1/tasks/{task_id}"]["get"]["parameters"][0]["schema"]
    pattern = re.compile(task_param["pattern"])
    for task_id, ok in (("task-unified-1757169743-7cvnl5zw", True), ("x", False),
                        ("task-unified-1757169743-7CVNL5ZW", False),
                        ("task-unified-1757169743-7cvnl5zw0", False)):
        assert bool(pattern.search(task_id)) is ok is bool(limits.TASK_ID_RE.fullmatch(task_id))
    flash = doc["components"]["schemas"]["Wan26ReferenceVideoFlashRequest"]["properties"]
    assert flash["model"]["enum"] == [limits.FLASH_MODEL]
    assert flash["generate_audio"] == {**flash["generate_audio"], "type": "boolean",
                                       "default": True}
    assert set(flash) - set(props) == {"generate_audio"}
    assert request["not"] == {"required": ["generate_audio"]}
    body = doc["paths"]["/v1/videos/generations"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert set(body["discriminator"]["mapping"]) == set(limits.MODELS)
    batch = doc["paths"]["/v1/tasks/batch"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["task_ids"]
    assert (batch["minItems"], batch["maxItems"]) == (1, limits.TASK_BATCH_MAX)
    for path, size in (("/v1/tasks", "page_size"), ("/api/v1/files/list", "pageSize")):
        params = {p["name"]: p["schema"] for p in doc["paths"][path]["get"]["parameters"]}
        assert params[size]["maximum"] == limits.PAGE_SIZE_MAX, path
    error = doc["components"]["schemas"]["VideoGenerationResponse"]["properties"]["error"]
    assert error["required"] == ["code", "message", "type"]
    assert error["properties"]["code"]["enum"] == list(limits.TASK_ERRORS)
    speed = doc["paths"]["/_sandbox/config"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["speed"]
    assert (speed["minimum"], speed["maximum"]) == SPEED_RANGE


# What a JSON Schema cannot say: which hosts are internal, which text is not Unicode, which ports
# exist. The validation refuses these; the document says so in prose.
_BEYOND_SCHEMA = {c.id for c in REQUEST_CASES if not c.ok and c.field == "callback_url"
                  and "2049" not in c.id and not c.change["callback_url"].startswith("http:")}
_BEYOND_SCHEMA.add("prompt with a lone surrogate")


_TYPES: dict[str, Any] = {"object": dict, "array": list, "string": str, "boolean": bool,
                          "null": type(None), "number": (int, float), "integer": int}


def _schema_errors(schema: dict[str, Any], value: Any, where: str = "$") -> list[str]:
    """The JSON Schema keywords the document uses, checked (jsonschema is not a dependency)."""
    kinds = schema.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else kinds
        is_bool = isinstance(value, bool)
        if not any(isinstance(value, _TYPES[n]) and (n == "boolean" or not is_bool) for n in names):
            return [f"{where}: not {kinds}"]
    out = []
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: not one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1e9):
            out.append(f"{where}: length {len(value)}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{where}: does not match {schema['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool) and not (
            schema.get("minimum", -1e300) <= value <= schema.get("maximum", 1e300)):
        out.append(f"{where}: {value} out of range")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", 1e9):
            out.append(f"{where}: {len(value)} items")
        for i, item in enumerate(value):
            out += _schema_errors(schema.get("items", {}), item, f"{where}[{i}]")
    if "not" in schema and not _schema_errors(schema["not"], value, where):
        out.append(f"{where}: matches what it must not ({schema['not']})")
    if isinstance(value, dict):
        out += [f"{where}.{n}: required" for n in schema.get("required", ()) if n not in value]
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                out += _schema_errors(sub, value[name], f"{where}.{name}")
    return out


@pytest.mark.parametrize("case", REQUEST_CASES, ids=[c.id for c in REQUEST_CASES])
def test_openapi_schema_is_as_strict_as_the_validation(case: Any) -> None:
    # The document picks the schema by model (its discriminator); anything else fails both.
    flash = case.body.get("model") == limits.FLASH_MODEL
    errors = _schema_errors(flash_request_schema() if flash else generation_request_schema(),
                            case.body)
    if case.ok or case.id in _BEYOND_SCHEMA:
        assert errors == []
    else:
        assert errors, f"the schema accepts what the sandbox refuses: {case.id}"
