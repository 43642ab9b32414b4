"""`prep config`: the key is written 0600 and never shown."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from prep.ui.cli import cli

SECRET = "sk-live-DO-NOT-SHOW-0123456789"


def test_config_set_api_key_from_stdin_is_0600_and_hidden() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["config", "set", "api_key"], input=SECRET + "\n")
    assert result.exit_code == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    path = Path(os.environ["PREP_CONFIG"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and SECRET in path.read_text()
    shown = runner.invoke(cli, ["config", "show", "--json"])
    data = json.loads(shown.stdout)
    assert data["api_key"] == "set" and SECRET not in shown.stdout


def test_config_set_plain_values() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["config", "set", "base_url", "http://127.0.0.1:9"]).exit_code == 0
    assert json.loads(runner.invoke(cli, ["config", "show", "--json"]).stdout)["base_url"] == \
        "http://127.0.0.1:9"
    assert runner.invoke(cli, ["config", "set", "base_url"]).exit_code == 2
    assert runner.invoke(cli, ["config", "set", "password", "x"]).exit_code == 2


def test_api_key_option_warns_and_never_echoes() -> None:
    result = CliRunner().invoke(cli, ["task", "../not-an-id", "--api-key", SECRET])
    assert "visible to other users" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert result.exit_code == 2  # refused before any request


# -- editing in place (tomlkit) ------------------------------------------------------------------

HAND_WRITTEN = '''# prep settings, kept by hand
base_url = "https://api.evolink.ai"   # the real service
"files_url" = "https://files-api.evolink.ai"

[prices]
# our contract
price_per_second = 4.76          # credits per billed second at 720p
min_charge = 9
'''


def _config() -> Path:
    return Path(os.environ["PREP_CONFIG"])


def _cli(*args: str, code: int = 0, input: str | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return result.stdout + result.stderr


def test_set_keeps_comments_order_and_types() -> None:
    import tomllib

    _config().write_text(HAND_WRITTEN)
    _cli("config", "set", "base_url", "http://127.0.0.1:8765")
    _cli("config", "set", "prices.price_1080p_multiplier", "1.5")
    text = _config().read_text()
    for kept in ("# prep settings, kept by hand", "# our contract", "# credits per billed second",
                 "price_per_second = 4.76", "min_charge = 9", '"files_url" = '):
        assert kept in text, kept
    assert 'base_url = "http://127.0.0.1:8765"   # the real service' in text
    data = tomllib.loads(text)
    assert data["prices"] == {"price_per_second": 4.76, "min_charge": 9,
                              "price_1080p_multiplier": 1.5}
    assert list(data) == ["base_url", "files_url", "prices"]
    assert text.index("price_per_second") < text.index("price_1080p_multiplier")


def test_dotted_keys_make_and_drop_their_table() -> None:
    import tomllib

    _cli("config", "set", "prices.price_per_second", "4.2")
    _cli("config", "set", "prices.price_source", "my contract")
    assert tomllib.loads(_config().read_text())["prices"] == {"price_per_second": 4.2,
                                                              "price_source": "my contract"}
    shown = json.loads(CliRunner().invoke(cli, ["config", "show", "--json"]).stdout)
    assert shown["prices"]["price_per_second"] == 4.2 and shown["sources"]["prices"] == "file"
    assert "my contract" in shown["prices"]["price_source"]
    _cli("config", "unset", "prices.price_per_second")
    _cli("config", "unset", "prices.price_source")
    assert "prices" not in tomllib.loads(_config().read_text())


def test_values_with_quotes_newlines_and_backslashes_round_trip() -> None:
    import tomllib

    tricky = 'C:\\ffmpeg\\bin "quoted" \' and\ta tab'
    _cli("config", "set", "prices.price_source", 'line one\nline "two"')
    _cli("config", "set", "ffmpeg", tricky)
    data = tomllib.loads(_config().read_text())
    assert data["prices"]["price_source"] == 'line one\nline "two"'
    assert data["ffmpeg"] == tricky
    assert _cli("config", "get", "ffmpeg").rstrip("\n").endswith(tricky)
    # every other command still reads the file
    assert json.loads(CliRunner().invoke(cli, ["config", "show", "--json"]).stdout)["ffmpeg"] == tricky


@pytest.mark.parametrize(("name", "value", "message"), [
    ("base_url", "not a url", "http(s) URL"),
    ("base_url", "http://a\nb", "http(s) URL"),
    ("prices.min_charge", "-1", "0 or more"),
    ("prices.price_per_second", "lots", "number"),
    ("prices.price_1080p_multiplier", "0", "more than 0"),
    ("poll_max_interval_s", "soon", "number"),
    ("api_key", "sk two words", "no spaces"),
    ("ffmpeg", "/bin/ff\nmpeg", "line break"),
])
def test_bad_values_are_refused_and_the_file_is_untouched(name: str, value: str,
                                                          message: str) -> None:
    _config().write_text(HAND_WRITTEN)
    out = _cli("config", "set", "--", name, value, code=2)
    assert message in out
    assert _config().read_text() == HAND_WRITTEN


def test_get_unset_path() -> None:
    assert _cli("config", "path").strip() == str(_config())
    _cli("config", "get", "base_url")
    _cli("config", "set", "base_url", "http://127.0.0.1:9/")
    assert _cli("config", "get", "base_url").splitlines()[0] == "http://127.0.0.1:9"
    assert "removed" in _cli("config", "unset", "base_url")
    assert "was not set" in _cli("config", "unset", "base_url")
    _cli("config", "get", "base_url")
    _cli("config", "get", "no_such_key", code=2)


def test_get_never_prints_the_key() -> None:
    _cli("config", "set", "api_key", input=SECRET + "\n")
    out = _cli("config", "get", "api_key")
    assert SECRET not in out and out.strip() == "set"


def test_a_broken_file_is_reported_not_rewritten() -> None:
    _config().write_text("base_url = = nope\n# keep me\n")
    out = _cli("config", "set", "base_url", "http://127.0.0.1:9", code=2)
    assert "not valid TOML" in out and str(_config()) in out
    assert _config().read_text() == "base_url = = nope\n# keep me\n"


def test_a_quoted_key_stays_valid_toml() -> None:
    """The old writer wrote `"weird key"` bare, after which every command failed."""
    import tomllib

    _config().write_text('"weird key" = "x"\n"a.b" = 1\n')
    _cli("config", "set", "cache_dir", "/tmp/prep cache")
    data = tomllib.loads(_config().read_text())
    assert data == {"weird key": "x", "a.b": 1, "cache_dir": "/tmp/prep cache"}
    assert stat.S_IMODE(_config().stat().st_mode) == 0o600


# -- contract slips (issue 25) -----------------------------------------------------------------

@pytest.mark.parametrize(("name", "value"), [
    ("prices.flash_price_per_second", "2.5"), ("prices.flash_1080p_multiplier", "1.5"),
    ("prices.flash_min_charge", "8"), ("prices.flash_no_audio_multiplier", "0.5")])
def test_flash_price_keys_can_be_set(name: str, value: str) -> None:
    _cli("config", "set", name, value)
    assert _cli("config", "get", name).strip() == value
    shown = json.loads(CliRunner().invoke(cli, ["config", "show", "--json"]).stdout)
    key = name.split(".", 1)[1]
    assert shown["prices"][key] == float(value)
    assert shown["sources"][name] == "file"


def test_unknown_keys_are_an_error_naming_the_known_ones() -> None:
    _config().write_text('[prices]\nprice_per_secnd = 1\n')  # a typo would bill at the default
    out = _cli("estimate", "--seconds", "5", code=2)
    assert "price_per_secnd" in out and "prices.price_per_second" in out
    _config().write_text('base_ulr = "http://127.0.0.1:9"\n')
    assert "base_ulr" in _cli("config", "show", code=2)


def test_config_show_says_unset_and_where_each_price_comes_from() -> None:
    _config().write_text('[prices]\nmin_charge = 8\n')
    out = CliRunner().invoke(cli, ["config", "show"]).stdout
    assert "None" not in out and "ffmpeg = (not set)" in out
    lines = {line.split(" = ")[0]: line for line in out.splitlines() if " = " in line}
    assert "(file)" in lines["prices.min_charge"]
    assert "(default)" in lines["prices.price_per_second"]
    assert "(default)" in lines["prices.flash_min_charge"]


def test_config_get_of_an_unset_key_is_not_an_error() -> None:
    """It exited 1, which prep's exit codes reserve for a bug."""
    result = CliRunner().invoke(cli, ["config", "get", "base_url"])
    assert result.exit_code == 0 and result.stdout == ""
    assert "not set" in result.stderr
    as_json = CliRunner().invoke(cli, ["config", "get", "base_url", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["value"] is None
