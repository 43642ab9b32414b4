"""The generation request's rules, checked the way EvoLink documents them. Pure except DNS.

`parse_generation` turns a decoded JSON body into a `GenerationRequest` or raises `Invalid` with a
message that names the field and the rule. `check_callback_host` resolves a callback host (with a
bounded wait) and refuses internal addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from prep.core import rules

__all__ = ["GenerationRequest", "Invalid", "check_callback_host", "is_internal", "parse_generation"]

_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".intranet")
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class Invalid(Exception):
    """A request that breaks a documented rule: 400 `invalid_request` with this message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """A valid request to POST /v1/videos/generations, defaults filled in."""

    model: str
    prompt: str
    video_urls: tuple[str, ...]
    aspect_ratio: str = rules.DEFAULT_ASPECT_RATIO
    quality: str = rules.DEFAULT_QUALITY
    duration_s: int = rules.DEFAULT_OUTPUT_S
    shot_type: str = rules.DEFAULT_SHOT_TYPE
    callback_url: str | None = None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _choice(body: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    if name not in body:
        return default
    value = body[name]
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string, not {_type_name(value)}")
    if value not in allowed:
        raise Invalid(f"{name} {value!r} is not supported; use one of: {', '.join(allowed)}")
    return value


def parse_generation(body: Any) -> GenerationRequest:
    """Check every documented rule of the request body (except probing the videos)."""
    if not isinstance(body, dict):
        raise Invalid(f"the request body must be a JSON object, not {_type_name(body)}")
    for name in ("model", "prompt", "video_urls"):
        if name not in body:
            raise Invalid(f"{name} is required")
    model = body["model"]
    if not isinstance(model, str):
        raise Invalid(f"model must be a string, not {_type_name(model)}")
    if model != rules.MODEL:
        raise Invalid(f"model {model!r} is not supported by this endpoint; use {rules.MODEL!r}")
    prompt = body["prompt"]
    if not isinstance(prompt, str):
        raise Invalid(f"prompt must be a string, not {_type_name(prompt)}")
    if not prompt.strip():
        raise Invalid("prompt must not be empty")
    if len(prompt) > rules.MAX_PROMPT_CHARS:
        raise Invalid(f"prompt is {len(prompt)} characters; the limit is {rules.MAX_PROMPT_CHARS}")
    urls = _video_urls(body["video_urls"])
    aspect = _choice(body, "aspect_ratio", rules.ASPECT_RATIOS, rules.DEFAULT_ASPECT_RATIO)
    quality = _choice(body, "quality", rules.QUALITIES, rules.DEFAULT_QUALITY)
    duration = rules.DEFAULT_OUTPUT_S
    if "duration" in body:
        duration = body["duration"]
        if isinstance(duration, bool) or not isinstance(duration, int):
            raise Invalid(f"duration must be a whole number of seconds, not {_type_name(duration)}"
                          + (f" ({duration})" if isinstance(duration, float) else ""))
        if not rules.MIN_OUTPUT_S <= duration <= rules.MAX_OUTPUT_S:
            raise Invalid(f"duration {duration} is out of range; use {rules.MIN_OUTPUT_S} to "
                          f"{rules.MAX_OUTPUT_S} seconds")
    shot_type = rules.DEFAULT_SHOT_TYPE
    if "model_params" in body:
        params = body["model_params"]
        if not isinstance(params, dict):
            raise Invalid(f"model_params must be an object, not {_type_name(params)}")
        shot_type = _choice(params, "shot_type", rules.SHOT_TYPES, rules.DEFAULT_SHOT_TYPE)
    callback = None
    if "callback_url" in body:
        callback = body["callback_url"]
        if not isinstance(callback, str):
            raise Invalid(f"callback_url must be a string, not {_type_name(callback)}")
    return GenerationRequest(
        model=model, prompt=prompt, video_urls=urls, aspect_ratio=aspect, quality=quality,
        duration_s=duration, shot_type=shot_type, callback_url=callback,
    )


def _video_urls(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid(f"video_urls must be an array of URLs, not {_type_name(value)}")
    if not rules.MIN_CLIPS <= len(value) <= rules.MAX_CLIPS:
        raise Invalid(f"video_urls has {len(value)} URLs; give {rules.MIN_CLIPS} to "
                      f"{rules.MAX_CLIPS} reference videos")
    urls = []
    for i, url in enumerate(value):
        if not isinstance(url, str):
            raise Invalid(f"video_urls[{i}] must be a string URL, not {_type_name(url)}")
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError as err:
            raise Invalid(f"video_urls[{i}] {url[:200]!r} is not a valid URL") from err
        if parts.scheme not in rules.URL_SCHEMES:
            raise Invalid(f"video_urls[{i}] {url[:200]!r} must use http or https")
        if not host:
            raise Invalid(f"video_urls[{i}] {url[:200]!r} has no host")
        urls.append(url)
    return tuple(urls)


def is_internal(address: str) -> bool:
    """Whether an IP address is loopback, private, link-local or otherwise not public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True  # not an address we can judge: refuse rather than guess
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def callback_shape(url: str, *, allow_local: bool) -> tuple[str, bool]:
    """Check the callback URL's form. Returns (host, is_loopback_allowed). Raises Invalid."""
    if len(url) > rules.MAX_CALLBACK_URL_CHARS:
        raise Invalid(f"callback_url is {len(url)} characters; the limit is "
                      f"{rules.MAX_CALLBACK_URL_CHARS}")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port
    except ValueError as err:
        raise Invalid("callback_url is not a valid URL") from err
    if not host:
        raise Invalid("callback_url must be an absolute https:// URL with a host")
    local_ok = allow_local and host in _LOOPBACK_NAMES
    if parts.scheme != "https" and not (local_ok and parts.scheme == "http"):
        raise Invalid("callback_url must use https")
    if local_ok:
        return host, True
    if host == "localhost" or host.endswith(_INTERNAL_SUFFIXES) or "." not in host and ":" not in host:
        raise Invalid(f"callback_url host {host!r} is an internal address; callbacks must go to a "
                      "public host")
    return host, False


async def check_callback_host(
    host: str, *, hosts: Mapping[str, str], timeout_s: float
) -> str | None:
    """Refuse a host that is or resolves to an internal address (Invalid).

    Returns a note when the host could not be resolved in time: the check cannot prove it
    internal, so the URL is accepted (EvoLink would resolve it again when it delivers).
    """
    if host in hosts:
        addresses = [hosts[host]]
    else:
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            loop = asyncio.get_running_loop()
            try:
                infos = await asyncio.wait_for(
                    loop.getaddrinfo(host, 443, type=socket.SOCK_STREAM), timeout_s
                )
            except (TimeoutError, OSError, UnicodeError):
                return f"callback host {host} could not be resolved; it was not checked further"
            addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if is_internal(address):
            raise Invalid(f"callback_url host {host!r} resolves to an internal address "
                          f"({address}); callbacks must go to a public host")
    return None
