"""Settings, resolved once: command-line options, then the environment, then the config file.

The config file is TOML at `<user config dir>/prep/config.toml` (or `PREP_CONFIG`). Only this module
reads `os.environ`. The API key is never shown: `Settings.__repr__` hides it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from prep.core import rules
from prep.core.billing import DEFAULT_PRICES, PriceTable, parse_credits
from prep.errors import UsageError

__all__ = ["CONFIG_KEYS", "Settings", "config_path", "get_config", "load_settings", "set_config",
           "setting_sources", "unset_config", "write_config"]

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


@dataclass(frozen=True, slots=True, kw_only=True)
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
    from platformdirs import user_config_dir

    return Path(user_config_dir("prep", appauthor=False)) / "config.toml"


def _default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("prep", appauthor=False))


def _read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as err:
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
PRICE_OPTIONS = tuple(name for name, _field, _kind in PRICE_KEYS)


def _multiplier(name: str, text: str) -> Fraction:
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError) as err:
        raise UsageError(f"{name} must be a number, not {text!r}") from err
    if value <= 0:
        raise UsageError(f"{name} must be more than 0, not {text!r}")
    return value


def _prices(table: Mapping[str, Any], overrides: Mapping[str, str | None], where: str) -> PriceTable:
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


def load_settings(
    options: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve settings: options (non-None values) > environment > config file > defaults."""
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    env = os.environ if environ is None else environ
    path = config_path(env)
    config = _read_config(path)

    def resolve(name: str) -> Any:
        if name in opts:
            return opts[name]
        env_name = ENV_KEYS.get(name)
        if env_name and env.get(env_name):
            return env[env_name]
        return config.get(name)

    price_table = config.get("prices", {})
    if not isinstance(price_table, dict):
        raise UsageError(f"{path}: [prices] must be a table")
    _check_keys(config, path)
    prices = _prices(price_table, {k: opts.get(k) for k in PRICE_OPTIONS}, str(path))
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
        debug=bool(env.get("PREP_DEBUG")),
    )


def setting_sources(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Where each setting in effect comes from: `env:NAME`, `file` or `default` (for `config show`;
    command-line options are per command and not seen here)."""
    env = os.environ if environ is None else environ
    config = _read_config(config_path(env))
    sources = {}
    for name in ("api_key", "base_url", "files_url", "ffmpeg", "cache_dir", "poll_max_interval_s",
                 "scheduler", "connect_timeout_s"):
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


# -- the config file, edited in place ----------------------------------------------------------

#: Every key `prep config set` knows, with the kind of value it takes. Dotted names live in a
#: table: `prices.price_per_second` is `price_per_second` in `[prices]`.
CONFIG_KEYS: dict[str, str] = {
    "api_key": "secret",
    "base_url": "url",
    "files_url": "url",
    "ffmpeg": "path",
    "cache_dir": "path",
    "poll_max_interval_s": "seconds",
    "connect_timeout_s": "seconds",
    "scheduler": "text",
    **{f"prices.{name}": "number" if kind == "multiplier" else kind
       for name, _field, kind in PRICE_KEYS},
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


def _config_document(path: Path) -> Any:
    """The config file as a tomlkit document (comments, order and layout kept); empty if absent."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return tomlkit.document()
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: the config file cannot be read ({err})",
                         hint="fix or delete it") from err
    try:
        return tomlkit.parse(text)
    except TOMLKitError as err:
        raise UsageError(f"{path}: the config file is not valid TOML ({err})",
                         hint="fix or delete it; prep will not rewrite a file it cannot read") from err


def _split_key(name: str) -> tuple[str, ...]:
    if name not in CONFIG_KEYS:
        raise UsageError(f"unknown config key {name!r}",
                         hint="one of " + ", ".join(CONFIG_KEYS))
    return tuple(name.split("."))


def _number(text: str, name: str, *, credits: bool = False) -> int | float | str:
    """A number as TOML would hold it: an int for '9', a float for '4.76'; text that a float
    would round (more digits than a double keeps) stays a string, read back exactly."""
    from decimal import Decimal, InvalidOperation

    if credits:
        parse_credits(text, name)  # UsageError for a negative, non-numeric or too fine amount
    try:
        value = Decimal(text.strip())
    except InvalidOperation as err:
        raise UsageError(f"{name} must be a number, not {text!r}") from err
    if not value.is_finite() or value <= 0 and not credits:
        raise UsageError(f"{name} must be a number more than 0, not {text!r}")
    if value == value.to_integral_value() and "e" not in text.lower():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else str(value)


def _config_value(name: str, text: str) -> Any:
    """`text` (as typed on the command line) checked and typed for the key `name`."""
    from urllib.parse import urlsplit

    kind = CONFIG_KEYS[name]
    if kind in ("credits", "number", "seconds"):
        return _number(text, name, credits=kind == "credits")
    if not text.strip():
        raise UsageError(f"{name}: an empty value")
    if kind == "secret" and any(c.isspace() for c in text):
        raise UsageError(f"{name}: a key has no spaces or line breaks")
    if kind == "url":
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc or any(
                c.isspace() for c in text):
            raise UsageError(f"{name} must be an http(s) URL, not {text!r}")
        return text.rstrip("/")
    if kind == "path" and ("\n" in text or "\r" in text or "\0" in text):
        raise UsageError(f"{name}: a path with a line break or NUL byte")
    return text


def _write_document(doc: Any, target: Path) -> None:
    """Write `doc` atomically with mode 0600 (the file may hold the key), after checking that
    prep can read what it is about to write."""
    import tomlkit

    text = tomlkit.dumps(doc)
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:  # pragma: no cover - tomlkit writes valid TOML
        raise UsageError(f"{target}: refusing to write a config prep could not read ({err})") from err
    prices = parsed.get("prices", {})
    if not isinstance(prices, dict):
        raise UsageError(f"{target}: [prices] must be a table")
    _prices(prices, {}, str(target))  # raises UsageError for a price that would not load
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)


def set_config(name: str, value: str, path: Path | None = None) -> Path:
    """Set one key (`base_url`, `prices.min_charge`, ...) in the config file, keeping its comments,
    order and the types of the other values; returns the file's path."""
    import tomlkit

    parts = _split_key(name)
    typed = _config_value(name, value)
    target = path or config_path()
    doc = _config_document(target)
    table = doc
    for part in parts[:-1]:
        if part not in table:
            table[part] = tomlkit.table()
        table = table[part]
        if not isinstance(table, dict):
            raise UsageError(f"{target}: {part} must be a table", hint="fix or delete it")
    table[parts[-1]] = typed
    _write_document(doc, target)
    return target


def unset_config(name: str, path: Path | None = None) -> bool:
    """Remove one key from the config file (and its table once empty); False if it was not set."""
    parts = _split_key(name)
    target = path or config_path()
    doc = _config_document(target)
    tables = [doc]
    for part in parts[:-1]:
        inner = tables[-1].get(part)
        if not isinstance(inner, dict):
            return False
        tables.append(inner)
    if parts[-1] not in tables[-1]:
        return False
    del tables[-1][parts[-1]]
    for depth in range(len(parts) - 1, 0, -1):  # drop tables left empty, innermost first
        if not tables[depth]:
            del tables[depth - 1][parts[depth - 1]]
    _write_document(doc, target)
    return True


def get_config(name: str, path: Path | None = None) -> Any:
    """The value stored for one key in the config file (None when it is not there)."""
    parts = _split_key(name)
    value: Any = _read_config(path or config_path())
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def write_config(values: Mapping[str, str], path: Path | None = None) -> Path:
    """Set several keys at once (see `set_config`); the file is written atomically, mode 0600."""
    target = path or config_path()
    for name, value in values.items():
        set_config(name, value, target)
    return target
