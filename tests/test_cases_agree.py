"""The client and the sandbox must agree, case by case, on the shared tables.

billing_cases.py runs against the client's estimate (prep.core.billing), the sandbox's own
arithmetic (prep.sandbox.pricing) and, for a few cases, a real sandbox task's credits_reserved.
Flash cases reach the client with `model=` and `generate_audio=`; standard cases are called
exactly as before, so they do not depend on them.
request_cases.py runs against the client's GenerationRequest, the sandbox's parse_generation and,
over HTTP, the sandbox's answers. The two sides share no code: a disagreement is a bug in one.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from billing_cases import BILLING_CASES, FLASH, BillingCase, billing_params
from request_cases import REQUEST_CASES, RequestCase, request_params
from sandbox_util import client, error_of, tiny_clip, upload

from prep.core.billing import PriceTable, estimate_durations
from prep.core.request import GenerationRequest, RequestOptions
from prep.errors import UsageError
from prep.sandbox import Sandbox
from prep.sandbox.pricing import FLASH_PRICES, Prices, charge
from prep.sandbox.validation import Invalid, parse_generation

# -- billing ---------------------------------------------------------------------------------------


# The sandbox's tariff fields, as the client's PriceTable names them for the flash model.
_FLASH_FIELDS = {"units_per_second": "flash_units_per_second", "hd_multiplier": "flash_hd_multiplier",
                 "minimum_units": "flash_minimum_units"}


@pytest.mark.parametrize("case", billing_params())
def test_billing_client(case: BillingCase) -> None:
    extra: dict[str, Any] = {}
    prices = dict(case.prices)
    if case.model == FLASH:
        extra = {"model": FLASH, "generate_audio": case.audio}
        prices = {_FLASH_FIELDS.get(k, k): v for k, v in prices.items()}
    est = estimate_durations([(f"clip{i}", ms) for i, ms in enumerate(case.clips_ms)],
                             output_s=case.output_s, quality=case.quality,
                             prices=PriceTable(**prices), **extra)
    assert (est.input_billed_ms, est.total_billed_ms, est.credits_units) == (
        case.input_ms, case.total_ms, case.units)


@pytest.mark.parametrize("case", billing_params())
def test_billing_sandbox(case: BillingCase) -> None:
    tariff = Prices.coerce(case.prices, FLASH_PRICES if case.model == FLASH else None)
    bill = charge(case.clips_ms, case.output_s, case.quality, tariff, audio=case.audio)
    assert (bill.input_ms, bill.total_ms, bill.units) == (case.input_ms, case.total_ms, case.units)


# Cases whose every clip is at least its billed share: a real clip of any length from that share
# up to 30 s bills the same, so generated clips of 3 s and 6 s stand in for them.
_E2E = ("1 clip 29 s is billed 5 s", "spec: 1 clip 6 s + 5 s at 1080p = 79.492 credits",
        "spec: 3 clips + 2 s = 6.95 s = 33.082 credits", "own prices: rate, multiplier and minimum",
        "flash: the same without audio at 1080p",
        "flash: 3 clips + 2 s without audio: minimum binds", "flash: 3 clips + 3 s without audio")


def _wire_prices(prices: dict[str, Any]) -> dict[str, Any]:
    out = dict(prices)
    if "hd_multiplier" in out:
        out["hd_multiplier"] = f"{out['hd_multiplier'].numerator}/{out['hd_multiplier'].denominator}"
    return out


def test_billing_end_to_end(sandbox: Sandbox) -> None:
    cases = [c for c in BILLING_CASES if c.id in _E2E]
    assert len(cases) == len(_E2E)
    six = upload(sandbox, tiny_clip(6, name="sandbox-six"))["file_url"]
    three = upload(sandbox, tiny_clip())["file_url"]
    with client(sandbox) as http:
        for case in cases:
            share = {1: 5_000, 2: 2_500, 3: 1_650}[len(case.clips_ms)]
            assert all(share <= ms <= 30_000 for ms in case.clips_ms), case.id
            sandbox.configure(prices=_wire_prices(case.prices))
            urls = [six if share == 5_000 else three] * len(case.clips_ms)
            body = {"model": case.model, "prompt": "A person waves hello", "video_urls": urls,
                    "duration": case.output_s, "quality": case.quality}
            if case.model == FLASH:
                body["generate_audio"] = case.audio
            answer = http.post("/v1/videos/generations", json=body)
            assert answer.status_code == 200, (case.id, answer.text)
            assert answer.json()["usage"]["credits_reserved"] == case.units / 10_000, case.id
            task = next(t for t in sandbox.state()["tasks"] if t["id"] == answer.json()["id"])
            assert task["credits_units"] == case.units, case.id


# -- requests --------------------------------------------------------------------------------------


def _client_request(body: dict[str, Any]) -> GenerationRequest:
    # model and generate_audio go to the client only when a case is about them, so the standard
    # cases do not depend on how the client spells them.
    extra: dict[str, Any] = {}
    if body["model"] != "wan2.6-reference-video" or "generate_audio" in body:
        extra["model"] = body["model"]
    if "generate_audio" in body:
        extra["generate_audio"] = body["generate_audio"]
    return GenerationRequest(options=RequestOptions(
        prompt=body["prompt"], duration_s=body.get("duration", 5),
        quality=body.get("quality", "720p"), aspect_ratio=body.get("aspect_ratio", "16:9"),
        shot_type=body.get("model_params", {}).get("shot_type", "single"),
        callback_url=body.get("callback_url"), **extra,
    ), video_urls=tuple(body["video_urls"]))


# Cases the client gets wrong today, each with the bug it shows. Strict: once the client is fixed
# the case passes, the xfail fails, and the line here goes.
CLIENT_GAPS: dict[str, str] = {}


def _client_params() -> list[Any]:
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=CLIENT_GAPS[c.id])]
                         if c.id in CLIENT_GAPS else []) for c in REQUEST_CASES]


@pytest.mark.parametrize("case", _client_params())
def test_request_client(case: RequestCase) -> None:
    if "generate_audio" in case.body and case.body["generate_audio"] is None:
        pytest.skip("a JSON null is the sandbox's case: the client's None means the field is left out")
    if case.ok:
        _client_request(case.body)
    else:
        with pytest.raises(UsageError):
            _client_request(case.body)


@pytest.mark.parametrize("case", request_params())
def test_request_sandbox(case: RequestCase) -> None:
    if case.ok:
        parse_generation(case.body)
    else:
        with pytest.raises(Invalid) as refused:
            parse_generation(case.body)
        assert case.field is not None and case.field in str(refused.value)


def _post(http: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    # json.dumps escapes a lone surrogate as "\ud800", as a JSON client would send it.
    return http.post("/v1/videos/generations", content=json.dumps(body).encode(),
                     headers={"content-type": "application/json"})


def test_request_refusals_over_http(sandbox: Sandbox) -> None:
    """Every refused case is a 400 in EvoLink's error shape that names the field (no 500)."""
    ref = upload(sandbox, tiny_clip())["file_url"]
    with client(sandbox) as http:
        for case in REQUEST_CASES:
            if case.ok:
                continue
            body = case.body
            body["video_urls"] = [ref] * len(body["video_urls"]) if body["video_urls"] and all(
                u.startswith("https://cdn.example.com/") for u in body["video_urls"]) else (
                body["video_urls"])
            answer = _post(http, body)
            assert answer.status_code == 400, (case.id, answer.text)
            error = error_of(answer)
            assert error["code"] == "invalid_request", case.id
            assert case.field is not None and case.field in error["message"], (case.id, error)
    assert sandbox.state()["tasks"] == []


def test_request_acceptances_over_http(sandbox: Sandbox) -> None:
    sandbox.configure(hosts={"example.com": "93.184.215.14"})
    ref = upload(sandbox, tiny_clip())["file_url"]
    picked = [c for c in REQUEST_CASES if c.ok and c.id in (
        "the base body", "prompt 1500 non-ASCII chars", "callback exactly 2048 chars",
        "callback public IPv4 literal")]
    picked += [c for c in REQUEST_CASES if c.id in ("flash without audio", "flash with audio")]
    assert len(picked) == 6
    with client(sandbox) as http:
        for case in picked:
            body = case.body
            body["video_urls"] = [ref]
            answer = _post(http, body)
            assert answer.status_code == 200, (case.id, answer.text)
