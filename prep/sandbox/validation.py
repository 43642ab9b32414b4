"""The generation request's rules, checked the way EvoLink documents them. Pure except DNS.

`parse_generation` turns a decoded JSON body into a `GenerationRequest`, or raises `Invalid` with a
message that names the field and the rule; it judges everything that can be judged without the
network, including literal internal addresses in `callback_url` in every spelling a resolver
accepts (127.1, 0177.0.0.1, 0x7f.1, 2130706433, [::1]). `check_callback_host` then resolves a
callback host name (with a bounded wait) and refuses names that lead to internal addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import limits

__all__ = [
    "GenerationRequest",
    "Invalid",
    "check_callback_host",
    "find_lone_surrogate",
    "is_internal",
    "parse_generation",
]

_INTERNAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".intranet",
                      ".localdomain")
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# Characters that never belong in a host name (RFC 3986 delimiters, spaces, controls).
_BAD_HOST_CHARS = frozenset(" \t\r\n\x0b\x0c<>\"{}|\\^`%/?#@[]")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Invalid(Exception):
    """A request that breaks a documented rule: 400 `invalid_request` with this message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """A valid request to POST /v1/videos/generations, defaults filled in."""

    model: str
    prompt: str
    video_urls: tuple[str, ...]
    aspect_ratio: str = limits.ASPECT_RATIO_DEFAULT
    quality: str = limits.QUALITY_DEFAULT
    duration_s: int = limits.OUTPUT_DEFAULT_S
    shot_type: str = limits.SHOT_TYPE_DEFAULT
    callback_url: str | None = None
    # Flash only: whether the result has a sound track (and is billed at the full rate).
    generate_audio: bool = limits.GENERATE_AUDIO_DEFAULT
    # The callback's host, lower-cased, and whether it is a loopback host the sandbox was told to
    # allow (allow_local_callbacks). A name still needs check_callback_host.
    callback_host: str | None = None
    callback_local: bool = False


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


def find_lone_surrogate(value: Any, where: str = "") -> str | None:
    """Where in a decoded JSON value a string holds a lone UTF-16 surrogate (JSON allows the
    escape "\\ud800", but it is no character and cannot be written as UTF-8), or None."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= c <= "\udfff" for c in item):
                return path or "the body"
        elif isinstance(item, dict):
            for key, sub in item.items():
                if any("\ud800" <= c <= "\udfff" for c in key):
                    return f"a field name in {path}" if path else "a field name"
                stack.append((sub, f"{path}.{key}" if path else key))
        elif isinstance(item, list):
            stack.extend((sub, f"{path}[{i}]") for i, sub in enumerate(item))
    return None


def _choice(body: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    if name not in body:
        return default
    value = body[name]
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string, not {_type_name(value)}")
    if value not in allowed:
        raise Invalid(f"{name} {value[:100]!r} is not supported; use one of: {', '.join(allowed)}")
    return value


def parse_generation(body: Any, *, allow_local_callbacks: bool = False) -> GenerationRequest:
    """Check every documented rule of the request body that needs neither DNS nor the videos."""
    if not isinstance(body, dict):
        raise Invalid(f"the request body must be a JSON object, not {_type_name(body)}")
    where = find_lone_surrogate(body)
    if where is not None:
        raise Invalid(f"{where} holds a lone UTF-16 surrogate (such as \\ud800), which is not a "
                      "character; send valid Unicode text")
    for name in ("model", "prompt", "video_urls"):
        if name not in body:
            raise Invalid(f"{name} is required")
    model = body["model"]
    if not isinstance(model, str):
        raise Invalid(f"model must be a string, not {_type_name(model)}")
    if model not in limits.MODELS:
        raise Invalid(f"model {model[:100]!r} is not supported by this endpoint; use "
                      f"{' or '.join(repr(m) for m in limits.MODELS)}")
    audio = limits.GENERATE_AUDIO_DEFAULT
    if "generate_audio" in body:
        # The standard model documents no such field and always makes sound: a request that asks
        # it for silence would be billed for audio it believes it turned off, so it is refused.
        if model != limits.FLASH_MODEL:
            raise Invalid(f"generate_audio is a parameter of {limits.FLASH_MODEL!r} only; "
                          f"{model!r} always generates audio")
        audio = body["generate_audio"]
        if not isinstance(audio, bool):
            raise Invalid(f"generate_audio must be true or false, not {_type_name(audio)}")
    prompt = body["prompt"]
    if not isinstance(prompt, str):
        raise Invalid(f"prompt must be a string, not {_type_name(prompt)}")
    if not prompt.strip():
        raise Invalid("prompt must not be empty")
    if len(prompt) > limits.PROMPT_MAX_CHARS:
        raise Invalid(f"prompt is {len(prompt)} characters; the limit is {limits.PROMPT_MAX_CHARS}")
    urls = _video_urls(body["video_urls"])
    aspect = _choice(body, "aspect_ratio", limits.ASPECT_RATIOS, limits.ASPECT_RATIO_DEFAULT)
    quality = _choice(body, "quality", limits.QUALITIES, limits.QUALITY_DEFAULT)
    duration = limits.OUTPUT_DEFAULT_S
    if "duration" in body:
        duration = body["duration"]
        if isinstance(duration, bool) or not isinstance(duration, int):
            raise Invalid(f"duration must be a whole number of seconds, not {_type_name(duration)}"
                          + (f" ({duration})" if isinstance(duration, float) else ""))
        if not limits.OUTPUT_MIN_S <= duration <= limits.OUTPUT_MAX_S:
            shown = str(duration) if abs(duration) < 10**12 else "out of range"
            raise Invalid(f"duration {shown} is out of range; use {limits.OUTPUT_MIN_S} to "
                          f"{limits.OUTPUT_MAX_S} seconds")
    shot_type = limits.SHOT_TYPE_DEFAULT
    if "model_params" in body:
        params = body["model_params"]
        if not isinstance(params, dict):
            raise Invalid(f"model_params must be an object, not {_type_name(params)}")
        shot_type = _choice(params, "shot_type", limits.SHOT_TYPES, limits.SHOT_TYPE_DEFAULT)
    callback = host = None
    local = False
    if "callback_url" in body:
        callback = body["callback_url"]
        if not isinstance(callback, str):
            raise Invalid(f"callback_url must be a string, not {_type_name(callback)}")
        host, local = callback_shape(callback, allow_local=allow_local_callbacks)
    return GenerationRequest(
        model=model, prompt=prompt, video_urls=urls, aspect_ratio=aspect, quality=quality,
        duration_s=duration, shot_type=shot_type, callback_url=callback, generate_audio=audio,
        callback_host=host, callback_local=local,
    )


def _video_urls(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid(f"video_urls must be an array of URLs, not {_type_name(value)}")
    if not limits.URL_COUNT_MIN <= len(value) <= limits.URL_COUNT_MAX:
        raise Invalid(f"video_urls has {len(value)} URLs; give {limits.URL_COUNT_MIN} to "
                      f"{limits.URL_COUNT_MAX} reference videos")
    urls = []
    for i, url in enumerate(value):
        if not isinstance(url, str):
            raise Invalid(f"video_urls[{i}] must be a string URL, not {_type_name(url)}")
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError as err:
            raise Invalid(f"video_urls[{i}] {url[:200]!r} is not a valid URL") from err
        if parts.scheme not in limits.URL_SCHEMES:
            raise Invalid(f"video_urls[{i}] {url[:200]!r} must use http or https")
        if not host:
            raise Invalid(f"video_urls[{i}] {url[:200]!r} has no host")
        urls.append(url)
    return tuple(urls)


def is_internal(address: str) -> bool:
    """Whether an IP address is loopback, private, link-local or otherwise not public."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True  # not an address we can judge: refuse rather than guess
    return _internal(ip)


def _internal(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def _number(part: str) -> int | None:
    """One part of an IPv4 address as inet_aton reads it: 0x hex, 0 octal, else decimal."""
    try:
        if part[:2].lower() == "0x":
            return int(part[2:] or "0", 16) if all(c in "0123456789abcdefABCDEF" for c in part[2:]) \
                else None
        if len(part) > 1 and part[0] == "0":
            return int(part, 8) if all(c in "01234567" for c in part) else None
        return int(part) if part.isascii() and part.isdigit() else None
    except ValueError:
        return None


def numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address a host written as numbers means (127.1, 0x7f.0.0.1, 2130706433...), None for
    a name. Invalid when it looks like an address but is not one (999.1.1.1, 1.2.3.4.5)."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts = parts[:-1]
    if not parts or _number(parts[-1]) is None:
        return None  # the last label is not a number: a host name (URL standard, "ends in a number")
    numbers = [_number(p) for p in parts]
    if len(parts) > 4 or any(n is None for n in numbers):
        raise Invalid(f"callback_url host {host[:100]!r} is not a valid IPv4 address")
    values = [n for n in numbers if n is not None]
    *head, last = values
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(values)):
        raise Invalid(f"callback_url host {host[:100]!r} is not a valid IPv4 address")
    address = last
    for i, n in enumerate(head):
        address += n << (8 * (3 - i))
    return ipaddress.IPv4Address(address)


def callback_shape(url: str, *, allow_local: bool) -> tuple[str, bool]:
    """Check the callback URL's form and any literal address. Returns (host, is an allowed
    loopback host). Raises Invalid."""
    if len(url) > limits.CALLBACK_URL_MAX_CHARS:
        raise Invalid(f"callback_url is {len(url)} characters; the limit is "
                      f"{limits.CALLBACK_URL_MAX_CHARS}")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise Invalid("callback_url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port
    except ValueError as err:
        raise Invalid(f"callback_url is not a valid URL ({str(err)[:80]})") from err
    if not host:
        raise Invalid("callback_url must be an absolute https:// URL with a host")
    local_ok = allow_local and host in _LOOPBACK_NAMES
    if parts.scheme != "https" and not (local_ok and parts.scheme == "http"):
        raise Invalid("callback_url must use https")
    if local_ok:
        return host, True
    internal = f"callback_url host {host[:100]!r} is an internal address; callbacks must go to a " \
               "public host"
    if ":" in host:  # an IPv6 literal (urlsplit took it from inside [...])
        try:
            literal: IPAddress = ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError as err:
            raise Invalid(f"callback_url host {host[:100]!r} is not a valid IPv6 address") from err
        if _internal(literal):
            raise Invalid(internal)
        return host, False
    if any(c in _BAD_HOST_CHARS for c in host):
        raise Invalid(f"callback_url host {host[:100]!r} is not a valid host name")
    name = host.rstrip(".")
    v4 = numeric_ipv4(name)
    if v4 is not None:
        if _internal(v4):
            raise Invalid(internal)
        return str(v4), False
    if not name or name in _INTERNAL_NAMES or name.endswith(_INTERNAL_SUFFIXES) or "." not in name:
        raise Invalid(internal)
    return name, False


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
            except (TimeoutError, OSError, UnicodeError, ValueError):
                return f"callback host {host} could not be resolved; it was not checked further"
            addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if is_internal(address):
            raise Invalid(f"callback_url host {host!r} resolves to an internal address "
                          f"({address}); callbacks must go to a public host")
    return None
