"""Settings, resolved once: command-line options, then the environment, then the config file.

The config file is TOML at `<user config dir>/prep/config.toml` (or `PREP_CONFIG`). Only this module
reads `os.environ`. The API key is never shown: `Settings.__repr__` hides it. Editing the config
file (`prep config set/unset/get`) is `prep.configfile`'s work; this module only reads it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from prep.core import rules
from prep.core.prices import DEFAULT_PRICES, PriceTable, parse_credits
from prep.core.record import record
from prep.errors import UsageError

__all__ = ["Settings", "config_path", "load_settings", "price_table", "read_config",
           "setting_sources"]

ENV_KEYS = {
    "api_key": "EVOLINK_API_KEY",
    "base_url": "EVOLINK_BASE_URL",
    "files_url": "EVOLINK_FILES_URL",
    "ffmpeg": "PREP_FFMPEG",
    "cache_dir": "PREP_CACHE_DIR",
    "scheduler": "PREP_SCHEDULER",
    "connect_timeout_s": "PREP_CONNECT_TIMEOUT",
}

# How long a service that refuses or does not answer connections is tried again before prep
# says so (exit 6). The API client's default is the same figure.
DEFAULT_CONNECT_TIMEOUT_S = 60.0


@record(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything prep needs to know about where it runs and whom it talks to."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str = rules.DEFAULT_BASE_URL
    files_url: str = rules.DEFAULT_FILES_URL
    ffmpeg: str | None = None
    cache_dir: Path
    config_file: Path
    prices: PriceTable = DEFAULT_PRICES
    poll_max_interval_s: float = float(rules.SERVICE_POLL_INTERVAL_S)
    scheduler: str | None = None  # where batch encodes run: local[:N] or a Dask scheduler address
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    model: str | None = None  # the model a job uses when it names none (a full id)
    debug: bool = False

    def __repr__(self) -> str:
        key = "set" if self.api_key else "missing"
        return (f"Settings(api_key=<{key}>, base_url={self.base_url!r}, "
                f"files_url={self.files_url!r}, ffmpeg={self.ffmpeg!r}, cache_dir={self.cache_dir!r})")

    @property
    def is_default_service(self) -> bool:
        """True when prep talks to EvoLink itself rather than a sandbox or proxy."""
        return self.base_url.rstrip("/") == rules.DEFAULT_BASE_URL


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the config file lives (`PREP_CONFIG` overrides the platform's config dir)."""
    env = os.environ if environ is None else environ
    if env.get("PREP_CONFIG"):
        return Path(env["PREP_CONFIG"])
    return _user_dir("config") / "config.toml"


def _default_cache_dir() -> Path:
    return _user_dir("cache")


def _user_dir(kind: str) -> Path:
    """prep's folder of a kind ("config" or "cache") for this user, as platformdirs places it.

    On Linux that is `$XDG_CONFIG_HOME/prep` (or `$XDG_CACHE_HOME`) when the variable holds an
    absolute path, else `~/.config/prep` (`~/.cache/prep`): worked out here when $HOME is an
    absolute path, which spares every command platformdirs' import. Elsewhere (another system,
    Android, no usable $HOME) platformdirs answers."""
    env = os.environ
    home = env.get("HOME", "")
    if sys.platform == "linux" and "ANDROID_DATA" not in env and home.startswith("/"):
        xdg = env.get(f"XDG_{kind.upper()}_HOME", "")
        base = xdg if xdg.startswith("/") else os.path.expanduser(f"~/.{kind}")
        return Path(os.path.join(base, "prep"))
    import platformdirs

    where = platformdirs.user_config_dir if kind == "config" else platformdirs.user_cache_dir
    return Path(where("prep", appauthor=False))


def read_config(path: Path) -> dict[str, Any]:
    """The config file's values (empty when there is none); UsageError when it cannot be read."""
    try:
        with path.open("rb") as fh:
            import tomllib  # only when there is a file to read

            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:  # tomllib.TOMLDecodeError is a ValueError
        raise UsageError(f"{path}: the config file cannot be read ({err})",
                         hint="fix or delete it") from err


# Price keys: (config / option name, PriceTable field, kind). Credits are exact decimals; a
# multiplier is any number a Fraction reads ("1.67", "3/2").
PRICE_KEYS: tuple[tuple[str, str, str], ...] = (
    ("price_per_second", "units_per_second", "credits"),
    ("price_1080p_multiplier", "hd_multiplier", "multiplier"),
    ("min_charge", "minimum_units", "credits"),
    ("flash_price_per_second", "flash_units_per_second", "credits"),
    ("flash_1080p_multiplier", "flash_hd_multiplier", "multiplier"),
    ("flash_min_charge", "flash_minimum_units", "credits"),
    ("flash_no_audio_multiplier", "flash_no_audio_multiplier", "multiplier"),
)



def model_price_key(model_id: str) -> str:
    """The config key (and, dashed, the option) of a model's own per-second price:
    `wan3.0-prime-reference-video` -> `wan30_prime_price_per_second`."""
    stem = model_id.removesuffix("-reference-video").replace(".", "").replace("-", "_")
    return f"{stem}_price_per_second"


# Every model beyond wan2.6 and flash (whose prices are the keys above): its per-second price,
# read from the model tables, so a new model's table brings its key. (key, model id)
MODEL_PRICE_KEYS: tuple[tuple[str, str], ...] = tuple(
    (model_price_key(spec.id), spec.id) for spec in rules.MODEL_SPECS if spec.id not in rules.MODELS)
PRICE_OPTIONS = (*(name for name, _field, _kind in PRICE_KEYS), *(k for k, _ in MODEL_PRICE_KEYS))


#: Every key the config file may hold (and `prep config set` knows), with the kind of value it
#: takes. Dotted names live in a table: `prices.price_per_second` is `price_per_second` in
#: `[prices]`.
CONFIG_KEYS: dict[str, str] = {
    "api_key": "secret",
    "base_url": "url",
    "files_url": "url",
    "ffmpeg": "path",
    "cache_dir": "path",
    "poll_max_interval_s": "seconds",
    "connect_timeout_s": "seconds",
    "scheduler": "text",
    "model": "model",
    **{f"prices.{name}": "number" if kind == "multiplier" else kind
       for name, _field, kind in PRICE_KEYS},
    **{f"prices.{name}": "credits" for name, _model in MODEL_PRICE_KEYS},
    "prices.price_source": "text",
    "prices.price_effective": "text",
}
# The keys the config file may hold: at its top level, and in its [prices] table.
_FILE_KEYS = frozenset(name for name in CONFIG_KEYS if "." not in name) | {"prices"}
_PRICE_FILE_KEYS = frozenset(name.split(".", 1)[1] for name in CONFIG_KEYS
                             if name.startswith("prices."))


def _check_keys(config: Mapping[str, Any], path: Path) -> None:
    """UsageError naming a key the file holds that prep does not know (a typo would otherwise
    be ignored: a misspelt price billed at the default)."""
    prices = config.get("prices")
    unknown = [name for name in config if name not in _FILE_KEYS]
    if isinstance(prices, dict):
        unknown += [f"prices.{name}" for name in prices if name not in _PRICE_FILE_KEYS]
    if unknown:
        raise UsageError(f"{path}: unknown config key{'s' * (len(unknown) > 1)} "
                         + ", ".join(repr(name) for name in unknown),
                         hint="the keys prep knows: " + ", ".join(CONFIG_KEYS))


def _multiplier(name: str, text: str) -> Fraction:
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError) as err:
        raise UsageError(f"{name} must be a number, not {text!r}") from err
    if value <= 0:
        raise UsageError(f"{name} must be more than 0, not {text!r}")
    return value


def price_table(table: Mapping[str, Any], overrides: Mapping[str, str | None],
                where: str) -> PriceTable:
    """The prices of a `[prices]` table with the command line's `overrides`; UsageError naming
    `where` for a price that does not read."""

    def pick(name: str) -> str | None:
        value = overrides.get(name)
        if value is None and name in table:
            value = str(table[name])
        return value

    changes: dict[str, Any] = {}
    for name, field_name, kind in PRICE_KEYS:
        text = pick(name)
        if text is None:
            continue
        if kind == "multiplier":
            changes[field_name] = _multiplier(name, text)
        else:
            units = parse_credits(text, name)
            if field_name.endswith("units_per_second") and units == 0:
                raise UsageError(f"{name} must be more than 0 credits, not {text!r}")
            changes[field_name] = units
    own = []
    for name, model in MODEL_PRICE_KEYS:
        text = pick(name)
        if text is None:
            continue
        units = parse_credits(text, name)
        if units == 0:
            raise UsageError(f"{name} must be more than 0 credits, not {text!r}")
        own.append((model, units))
    if own:
        changes["model_units_per_second"] = tuple(own)
    if not changes:
        return DEFAULT_PRICES
    source = str(table.get("price_source") or f"your own prices ({where})")
    if any(overrides.get(k) is not None for k in PRICE_OPTIONS):
        source = "your own prices (command-line options)"
    return replace(DEFAULT_PRICES, **changes, source=source,
                   effective=str(table.get("price_effective") or "as configured"))


def _seconds(name: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError) as err:
        raise UsageError(f"{name} must be a number of seconds, not {value!r}") from err
    if not seconds > 0 or seconds == float("inf"):
        raise UsageError(f"{name} must be more than 0 seconds, not {value!r}")
    return seconds
def _model(value: Any, path: Path) -> str | None:
    """The config's `model` as a full id (an alias is taken); UsageError naming the file."""
    if value in (None, ""):
        return None
    from prep.core.models import model_spec

    try:
        return model_spec(value, option="model").id
    except UsageError as err:
        raise UsageError(f"{path}: {err.message}", hint="prep config set model 2.6") from err


def load_settings(
    options: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve settings: options (non-None values) > environment > config file > defaults."""
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    env = os.environ if environ is None else environ
    path = config_path(env)
    config = read_config(path)

    def resolve(name: str) -> Any:
        if name in opts:
            return opts[name]
        env_name = ENV_KEYS.get(name)
        if env_name and env.get(env_name):
            return env[env_name]
        return config.get(name)

    table = config.get("prices", {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [prices] must be a table")
    _check_keys(config, path)
    prices = price_table(table, {k: opts.get(k) for k in PRICE_OPTIONS}, str(path))
    cache_dir = resolve("cache_dir")
    poll = resolve("poll_max_interval_s")
    connect = resolve("connect_timeout_s")
    return Settings(
        api_key=resolve("api_key") or None,
        base_url=str(resolve("base_url") or rules.DEFAULT_BASE_URL).rstrip("/"),
        files_url=str(resolve("files_url") or rules.DEFAULT_FILES_URL).rstrip("/"),
        ffmpeg=resolve("ffmpeg") or None,
        cache_dir=Path(cache_dir).expanduser() if cache_dir else _default_cache_dir(),
        config_file=path,
        prices=prices,
        poll_max_interval_s=float(poll) if poll else float(rules.SERVICE_POLL_INTERVAL_S),
        scheduler=str(resolve("scheduler") or "").strip() or None,
        connect_timeout_s=_seconds("connect_timeout_s", connect) if connect
        else DEFAULT_CONNECT_TIMEOUT_S,
        model=_model(config.get("model"), path),
        debug=bool(env.get("PREP_DEBUG")),
    )


def setting_sources(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Where each setting in effect comes from: `env:NAME`, `file` or `default` (for `config show`;
    command-line options are per command and not seen here)."""
    env = os.environ if environ is None else environ
    config = read_config(config_path(env))
    sources = {}
    for name in ("api_key", "base_url", "files_url", "ffmpeg", "cache_dir", "poll_max_interval_s",
                 "scheduler", "connect_timeout_s", "model"):
        env_name = ENV_KEYS.get(name)
        if env_name and env.get(env_name):
            sources[name] = f"env:{env_name}"
        elif config.get(name) not in (None, ""):
            sources[name] = "file"
        else:
            sources[name] = "default"
    prices = config.get("prices")
    sources["prices"] = "file" if isinstance(prices, dict) and prices else "default"
    for name in (*PRICE_OPTIONS, "price_source"):
        sources[f"prices.{name}"] = ("file" if isinstance(prices, dict) and name in prices
                                     else "default")
    return sources
