"""How a sandbox is set up: its keys, its speed and the switches that differ from EvoLink."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prep.core import rules
from prep.core.billing import DEFAULT_PRICES, PriceTable

__all__ = [
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

# 100 MiB: the larger of the caps EvoLink's own clients put on uploads (the upload pages state none).
# The generation endpoint still refuses references over 100,000,000 bytes.
DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyConfig:
    """One API key the sandbox accepts, with its balance and the models it may use."""

    key: str = field(repr=False)
    # Balance in 1/10,000-credit units; None is an unlimited balance.
    credits_units: int | None = None
    models: tuple[str, ...] = (rules.MODEL,)
    user_group: str = "default"
    max_files: int = rules.DEFAULT_FILE_QUOTA

    def __post_init__(self) -> None:
        if not self.key or any(c.isspace() for c in self.key):
            raise ValueError("a key is a non-empty string without spaces")
        if self.credits_units is not None and self.credits_units < 0:
            raise ValueError("credits_units must be 0 or more")
        if self.max_files < 0:
            raise ValueError("max_files must be 0 or more")
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
    max_files: int = rules.DEFAULT_FILE_QUOTA
    callback_timeout_s: float = float(rules.CALLBACK_TIMEOUT_S)
    # How long a callback host name may take to resolve before the check gives up on it.
    resolve_timeout_s: float = 1.0
    # A request body that stops arriving for this long is answered 408 instead of waited for.
    body_idle_s: float = 30.0
    # Static host table consulted before DNS when checking callback hosts (tests use it).
    hosts: Mapping[str, str] = field(default_factory=dict)
    extra_keys: tuple[KeyConfig, ...] = ()
    prices: PriceTable = DEFAULT_PRICES
    data_dir: Path | None = None
    render_cache_dir: Path | None = None
    ffmpeg: str | None = None

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError("speed must be above 0")
        if self.max_upload_bytes <= 0:
            raise ValueError("max_upload_bytes must be above 0")
        if self.callback_timeout_s <= 0 or self.resolve_timeout_s <= 0 or self.body_idle_s <= 0:
            raise ValueError("timeouts must be above 0")

    def keys(self) -> dict[str, KeyConfig]:
        """Every accepted key: the main one, the built-in 402/403 keys, then `extra_keys`."""
        out = {
            self.key: KeyConfig(key=self.key, max_files=self.max_files),
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
        }
