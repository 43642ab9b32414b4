"""The user's own per-second price for every model (config keys and flags, issue 23): read by
estimate, --compare and generate's balance pre-flight; the defaults in --help from the table."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner
from fake_encoder import fast_engine
from test_engine import PROMPT, Env
from test_model_jobs import _LowBalance

from prep.core import rules
from prep.core.billing import DEFAULT_PRICES
from prep.core.billing import estimate_durations as estimate
from prep.core.request import RequestOptions
from prep.errors import QuotaError, UsageError
from prep.jobs.generate import GenerateOptions, generate
from prep.sandbox import Sandbox
from prep.settings import CONFIG_KEYS, MODEL_PRICE_KEYS, load_settings, model_price_key, price_table
from prep.ui.cli import cli

WAN30 = rules.WAN30.id


def _cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result.stdout


def test_every_model_beyond_wan26_has_a_price_key_from_its_table() -> None:
    assert dict(MODEL_PRICE_KEYS) == {"wan27_price_per_second": "wan2.7-reference-video",
                                      "wan30_price_per_second": WAN30,
                                      "wan30_prime_price_per_second": "wan3.0-prime-reference-video"}
    assert model_price_key("wan9.1-pro-reference-video") == "wan91_pro_price_per_second"
    for name, _model in MODEL_PRICE_KEYS:
        assert CONFIG_KEYS[f"prices.{name}"] == "credits"


def test_a_price_of_the_table_is_used_by_the_estimate() -> None:
    prices = price_table({"wan30_price_per_second": "3"}, {}, "config.toml")
    assert prices.rate(WAN30).units_per_second == 30_000
    assert prices.rate("wan2.7-reference-video") == DEFAULT_PRICES.rate("wan2.7-reference-video")
    # One 8 s clip + 5 s at 720p on wan3.0: (8 + 5) x 2 x 3 = 78 credits (table price: 66.3).
    assert estimate([("a", 8_000)], output_s=5, quality="720p", model=WAN30).credits_units == 663_000
    assert estimate([("a", 8_000)], output_s=5, quality="720p", model=WAN30,
                    prices=prices).credits_units == 780_000
    assert "your own prices" in prices.label


@pytest.mark.parametrize("bad", ["0", "-1", "abc"])
def test_a_bad_price_is_a_usage_error_naming_the_key(bad: str) -> None:
    with pytest.raises(UsageError, match="wan30_price_per_second"):
        price_table({"wan30_price_per_second": bad}, {}, "config.toml")


def test_flags_override_and_help_shows_the_table_defaults() -> None:
    data = json.loads(_cli("estimate", "--seconds", "8", "--model", "3.0",
                           "--wan30-price-per-second", "3", "--json", "-q"))
    assert data["credits_units"] == 780_000
    helped = _cli("estimate", "--help")
    assert "--wan30-prime-price-per-second" in helped and "(default 3.9304)" in " ".join(helped.split())


def test_compare_prices_every_model_with_the_users_prices() -> None:
    rows = json.loads(_cli("estimate", "--seconds", "8", "--compare", "--wan27-price-per-second", "1",
                           "--wan30-price-per-second", "3", "--json", "-q"))["models"]
    units = {(r["model"], r["generate_audio"]): r["credits_units"] for r in rows}
    assert units[(WAN30, True)] == 780_000
    assert units[("wan2.7-reference-video", None)] == 108_800  # (5 + 5) x 1 = 10 credits: the minimum
    assert units[("wan3.0-prime-reference-video", True)] == 1_052_561  # its table's price


def test_config_set_show_and_use(monkeypatch: pytest.MonkeyPatch) -> None:
    _cli("config", "set", "prices.wan30_prime_price_per_second", "4")
    assert _cli("config", "get", "prices.wan30_prime_price_per_second").strip() == "4"
    shown = json.loads(_cli("config", "show", "--json"))
    assert shown["prices"]["wan30_prime_price_per_second"] == 4.0
    assert shown["prices"]["wan30_price_per_second"] == 2.55
    assert shown["sources"]["prices.wan30_prime_price_per_second"] == "file"
    assert load_settings().prices.rate("wan3.0-prime-reference-video").units_per_second == 40_000
    _cli("config", "set", "prices.wan30_price_per_second", "nope", code=2)


def test_generate_preflight_uses_the_users_price(sandbox: Sandbox, tmp_path: object,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    env = Env(sb=sandbox, tmp=tmp_path, encoder=fast_engine(monkeypatch))  # type: ignore[arg-type]
    settings = replace(env.settings(), prices=price_table({"wan30_price_per_second": "5"}, {}, "x"))
    options = GenerateOptions(request=RequestOptions(prompt=PROMPT, model="3.0", duration_s=-1),
                              out_dir=env.out)
    # (3 s of clip + the 30 s hold) x 2 x 5 = 330 credits, by the user's price.
    with _LowBalance.from_settings(settings) as low, pytest.raises(QuotaError) as caught:
        generate([env.clip()], options, settings, client=low)
    assert caught.value.message.startswith("this job needs 330.0 credits")
