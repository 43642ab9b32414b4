"""The config file, edited in place: `prep config set`, `unset` and `get`.

Edits keep the file's comments, order and layout (tomlkit), check each value for its key
(`CONFIG_KEYS`), refuse to write a file that `prep.settings` could not load back, and write it
atomically with mode 0600 (it may hold the API key). Reading settings is `prep.settings`' work.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prep.core.billing import parse_credits
from prep.errors import UsageError
from prep.settings import CONFIG_KEYS, config_path, price_table, read_config

__all__ = ["CONFIG_KEYS", "get_config", "set_config", "unset_config", "write_config"]


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
    if kind == "model":
        from prep.core.models import model_spec

        return model_spec(text, option=name).id
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
    price_table(prices, {}, str(target))  # raises UsageError for a price that would not load
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
    value: Any = read_config(path or config_path())
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
