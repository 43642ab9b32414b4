"""How a sandbox is set up: its keys, its speed and the switches that differ from EvoLink."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import limits
from .pricing import DEFAULT_PRICES, FLASH_PRICES, UNITS_PER_CREDIT, Prices

__all__ = [
    "DEMO_CREDITS_UNITS",
    "DEMO_KEY",
    "NO_ACCESS_KEY",
    "NO_CREDITS_KEY",
    "KeyConfig",
    "SandboxConfig",
]

DEMO_KEY = "sk-sandbox-demo"
# Built-in keys that answer 402 and 403, so the errors can be tried with curl.
NO_CREDITS_KEY = "sk-sandbox-no-credits"
NO_ACCESS_KEY = "sk-sandbox-no-access"
# The demo key's account balance: 100,000 credits, far more than any test spends, but a number, so
# GET /v1/credits has something true to report and a client's pre-flight check has a real answer.
DEMO_CREDITS_UNITS = 100_000 * UNITS_PER_CREDIT

# 100 MiB: the larger of the caps EvoLink's own clients put on uploads (the upload pages state none).
# The generation endpoint still refuses references over 100,000,000 bytes.
DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024

# What the switches may be set to. Values outside these ranges are mistakes (1e-308 as a speed
# turns every wait into infinity), refused with a message rather than carried into arithmetic.
SPEED_RANGE = (0.001, 1_000_000.0)
MAX_UPLOAD_BYTES_LIMIT = 16 * 1024**3
MAX_FILES_LIMIT = 10_000_000
TIMEOUT_LIMITS_S = {"callback_timeout_s": 600.0, "resolve_timeout_s": 60.0, "body_idle_s": 3600.0}
TIMEOUT_MIN_S = 0.001
MAX_HOSTS = 1_000


def _whole(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low:,} to {high:,}, not "
                         f"{str(value)[:40]}")


def _seconds(name: str, value: object, low: float, high: float, *, open_low: bool) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
          and (low < value if open_low else low <= value) and value <= high)
    if not ok:
        side = "above" if open_low else "from"
        raise ValueError(f"{name} must be a finite number {side} {low:g} and at most {high:g}, "
                         f"not {str(value)[:40]}")


def check_hosts(hosts: object) -> None:
    """ValueError unless `hosts` maps host names to IP address strings."""
    if not isinstance(hosts, Mapping):
        raise ValueError("hosts maps host names to IP address strings")
    if len(hosts) > MAX_HOSTS:
        raise ValueError(f"hosts holds at most {MAX_HOSTS:,} names")
    for name, address in hosts.items():
        if not isinstance(name, str) or not 0 < len(name) <= 253 or not name.isprintable():
            raise ValueError("hosts: each host name is 1 to 253 printable characters")
        if not isinstance(address, str):
            raise ValueError(f"hosts: the address of {name!r} must be a string")
        try:
            ipaddress.ip_address(address)
        except ValueError as err:
            raise ValueError(f"hosts: {address[:60]!r} (for {name!r}) is not an IP address") from err


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyConfig:
    """One API key the sandbox accepts, with its balance and the models it may use."""

    key: str = field(repr=False)
    # The account's balance in 1/10,000-credit units; None is an unlimited balance (sandbox-only).
    credits_units: int | None = None
    # The key's own spending limit in units (EvoLink lets a key be capped below the account's
    # balance); None: the key has no limit of its own.
    limit_units: int | None = None
    models: tuple[str, ...] = limits.SERVED_MODELS
    user_group: str = "default"
    max_files: int = limits.FILE_QUOTA_DEFAULT

    def __post_init__(self) -> None:
        if not self.key or any(c.isspace() for c in self.key):
            raise ValueError("a key is a non-empty string without spaces")
        for name in ("credits_units", "limit_units"):
            if getattr(self, name) is not None:
                _whole(name, getattr(self, name), 0, 10**18)
        _whole("max_files", self.max_files, 0, MAX_FILES_LIMIT)
        if not all(isinstance(m, str) for m in self.models):
            raise ValueError("models must be model names")
        if self.user_group not in ("default", "vip"):
            raise ValueError("user_group is 'default' or 'vip'")


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxConfig:
    """Everything that shapes a sandbox. The defaults behave like EvoLink as documented."""

    key: str = field(default=DEMO_KEY, repr=False)
    # Simulated seconds per real second for task progress and callback retry delays.
    speed: float = 1.0
    # EvoLink's docs do not promise Idempotency-Key; by default it is ignored, like an API that
    # does not implement it. True replays the first task for a repeated key.
    honour_idempotency: bool = False
    # Sandbox-only: accept http/https callbacks to 127.0.0.1 / localhost and deliver them.
    allow_local_callbacks: bool = False
    # Sandbox-only: accept video_urls on other hosts without probing them (never fetched).
    accept_foreign_urls: bool = False
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_files: int = limits.FILE_QUOTA_DEFAULT
    callback_timeout_s: float = float(limits.CALLBACK_TIMEOUT_S)
    # How long a callback host name may take to resolve before the check gives up on it.
    resolve_timeout_s: float = 1.0
    # A request body that stops arriving for this long is answered 408 instead of waited for.
    body_idle_s: float = 30.0
    # Static host table consulted before DNS when checking callback hosts (tests use it).
    hosts: Mapping[str, str] = field(default_factory=dict)
    extra_keys: tuple[KeyConfig, ...] = ()
    # The tariff: Prices, or anything with units_per_second, hd_multiplier and minimum_units.
    prices: Prices = DEFAULT_PRICES
    # The flash model's tariff (its silent_multiplier prices a task without audio).
    flash_prices: Prices = FLASH_PRICES
    data_dir: Path | None = None
    render_cache_dir: Path | None = None
    ffmpeg: str | None = None

    def __post_init__(self) -> None:
        _seconds("speed", self.speed, *SPEED_RANGE, open_low=False)
        _whole("max_upload_bytes", self.max_upload_bytes, 1, MAX_UPLOAD_BYTES_LIMIT)
        _whole("max_files", self.max_files, 0, MAX_FILES_LIMIT)
        for name, high in TIMEOUT_LIMITS_S.items():
            _seconds(name, getattr(self, name), TIMEOUT_MIN_S, high, open_low=False)
        check_hosts(self.hosts)
        for flag in ("honour_idempotency", "allow_local_callbacks", "accept_foreign_urls"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be true or false")
        object.__setattr__(self, "prices", Prices.coerce(self.prices))
        object.__setattr__(self, "flash_prices", Prices.coerce(self.flash_prices, FLASH_PRICES))

    def prices_for(self, model: str) -> Prices:
        """The tariff of a model."""
        return self.flash_prices if model == limits.FLASH_MODEL else self.prices

    def keys(self) -> dict[str, KeyConfig]:
        """Every accepted key: the main one, the built-in 402/403 keys, then `extra_keys`."""
        out = {
            self.key: KeyConfig(key=self.key, credits_units=DEMO_CREDITS_UNITS,
                                max_files=self.max_files),
            NO_CREDITS_KEY: KeyConfig(key=NO_CREDITS_KEY, credits_units=0, max_files=self.max_files),
            NO_ACCESS_KEY: KeyConfig(key=NO_ACCESS_KEY, models=(), max_files=self.max_files),
        }
        out.update({k.key: k for k in self.extra_keys})
        return out

    def public(self) -> dict[str, object]:
        """The switches, as `/_sandbox/state` shows them (no keys)."""
        return {
            "speed": self.speed,
            "honour_idempotency": self.honour_idempotency,
            "allow_local_callbacks": self.allow_local_callbacks,
            "accept_foreign_urls": self.accept_foreign_urls,
            "max_upload_bytes": self.max_upload_bytes,
            "max_files": self.max_files,
            "callback_timeout_s": self.callback_timeout_s,
            "resolve_timeout_s": self.resolve_timeout_s,
            "body_idle_s": self.body_idle_s,
            "hosts": dict(self.hosts),
            "prices": self.prices.public(),
            "flash_prices": self.flash_prices.public(),
        }
