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
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import limits
from .models import NEW_MODELS, ModelRules

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
    """A request that breaks a documented rule: 400 with this message and the model's code
    (`invalid_request`, or `invalid_parameter` on wan3.0 and prime)."""

    def __init__(self, message: str, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.code = code


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
    # The newer models' references and fields (empty or None on wan2.6).
    image_urls: tuple[str, ...] = ()
    audio_urls: tuple[str, ...] = ()
    voice_bindings: tuple[tuple[str, str], ...] = ()  # (video1 / image2, voice URL)
    seed: int | None = None
    negative_prompt: str | None = None
    prompt_extend: bool | None = None


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
    if "model" not in body:
        raise Invalid("model is required")
    model = body["model"]
    if not isinstance(model, str):
        raise Invalid(f"model must be a string, not {_type_name(model)}")
    if model in NEW_MODELS:
        return _parse_newer(body, NEW_MODELS[model], allow_local_callbacks)
    if model not in limits.MODELS:
        raise Invalid(f"model {model[:100]!r} is not supported by this endpoint (the models "
                      f"served are {', '.join(repr(m) for m in limits.SERVED_MODELS)})")
    for name in ("prompt", "video_urls"):
        if name not in body:
            raise Invalid(f"{name} is required")
    foreign = [name for name in _NEWER_FIELDS if name in body]
    if foreign:
        raise Invalid(f"{foreign[0]} is not a parameter of {model!r}; it takes reference videos only")
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
    return _urls(value, "video_urls", "invalid_request")


def _urls(value: list[Any], name: str, code: str) -> tuple[str, ...]:
    urls = []
    for i, url in enumerate(value):
        if not isinstance(url, str):
            raise Invalid(f"{name}[{i}] must be a string URL, not {_type_name(url)}", code)
        _check_url(url, f"{name}[{i}]", code)
        urls.append(url)
    return tuple(urls)


def _check_url(url: str, label: str, code: str) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as err:
        raise Invalid(f"{label} {url[:200]!r} is not a valid URL", code) from err
    if parts.scheme not in limits.URL_SCHEMES:
        raise Invalid(f"{label} {url[:200]!r} must use http or https", code)
    if not host:
        raise Invalid(f"{label} {url[:200]!r} has no host", code)


# Fields of the newer models that wan2.6 does not take: sent to it, they are refused rather than
# ignored, so that a client never believes an image or a seed was used when it was not.
_NEWER_FIELDS = ("image_urls", "audio_urls", "image_start", "image_end", "negative_prompt", "seed",
                 "prompt_extend")
_VOICE_KEY = re.compile(r"(video|image)([1-9][0-9]*)")


def _parse_newer(body: dict[str, Any], rules: ModelRules, allow_local: bool) -> GenerationRequest:
    """wan2.7, wan3.0 and prime: the fields each page documents, with its own limits."""
    fields = _NewerFields(body, rules)
    for name in ("image_start", "image_end"):
        if name in body and rules.max_audio:  # wan3.0: first/last frames exclude references
            raise fields.bad(f"{name} is not accepted by {rules.name}; use image_urls as references")
    videos = fields.urls("video_urls", rules.max_videos)
    images = fields.urls("image_urls", rules.max_images)
    audio = fields.urls("audio_urls", rules.max_audio if rules.max_audio else 5)
    if rules.max_references is not None and not (
            rules.min_references <= len(videos) + len(images) <= rules.max_references):
        raise fields.bad(f"image_urls and video_urls together must hold {rules.min_references} to "
                         f"{rules.max_references} references, not {len(videos) + len(images)}")
    duration = fields.duration(videos)
    negative = fields.switch("negative_prompt", rules.negative_prompt_max_chars is not None, str)
    host, local = fields.callback(allow_local)
    return GenerationRequest(
        model=rules.name, prompt=fields.prompt(bool(videos or images or audio)), video_urls=videos,
        aspect_ratio=fields.choice("aspect_ratio", rules.aspect_ratios, rules.aspect_ratio_default),
        quality=fields.choice("quality", rules.qualities, rules.quality_default),
        duration_s=duration, shot_type=limits.SHOT_TYPE_DEFAULT, callback_url=body.get("callback_url"),
        generate_audio=fields.switch("generate_audio", rules.generate_audio, bool) is not False,
        callback_host=host, callback_local=local, image_urls=images, audio_urls=audio,
        voice_bindings=fields.model_params(len(videos), len(images)), seed=fields.seed(),
        negative_prompt=None if negative is None else str(negative)[:rules.negative_prompt_max_chars or 0],
        prompt_extend=fields.switch("prompt_extend", rules.prompt_extend, bool),
    )


class _NewerFields:
    """The checks of one newer-model request body, each raising Invalid with the model's code."""

    def __init__(self, body: dict[str, Any], rules: ModelRules) -> None:
        self.body, self.rules = body, rules

    def bad(self, message: str) -> Invalid:
        return Invalid(message, self.rules.error_code)

    def urls(self, name: str, most: int) -> tuple[str, ...]:
        if name not in self.body:
            return ()
        value = self.body[name]
        if not isinstance(value, list):
            raise self.bad(f"{name} must be an array of URLs, not {_type_name(value)}")
        if len(value) > most:
            raise self.bad(f"{name} has {len(value)} URLs; {self.rules.name} takes at most {most}")
        return _urls(value, name, self.rules.error_code)

    def prompt(self, has_references: bool) -> str:
        rules, prompt = self.rules, self.body.get("prompt", "")
        if not isinstance(prompt, str):
            raise self.bad(f"prompt must be a string, not {_type_name(prompt)}")
        if rules.prompt_required and not prompt.strip():
            raise self.bad("prompt is required" if "prompt" not in self.body
                           else "prompt must not be empty")
        if not rules.prompt_required and not prompt.strip() and not has_references:
            raise self.bad("give a prompt or at least one reference")
        return prompt[:rules.prompt_max_chars]  # longer text is cut silently, as the pages say

    def duration(self, videos: tuple[str, ...]) -> int:
        rules, duration = self.rules, self.body.get("duration", self.rules.output_default_s)
        if isinstance(duration, bool) or not isinstance(duration, int):
            raise self.bad(f"duration must be a whole number of seconds, not {_type_name(duration)}")
        smart = rules.smart_duration and duration == -1
        if not smart and not rules.output_min_s <= duration <= rules.output_max_s:
            shown = str(duration) if abs(duration) < 10**12 else "out of range"
            raise self.bad(f"duration {shown} is out of range; use {rules.output_min_s} to "
                           f"{rules.output_max_s} seconds" + (" or -1" if rules.smart_duration else ""))
        if videos and rules.output_with_videos_max_s is not None \
                and duration > rules.output_with_videos_max_s:
            raise self.bad(f"duration {duration} is out of range with reference videos; use "
                           f"{rules.output_min_s} to {rules.output_with_videos_max_s} seconds")
        return duration

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        return _coded_choice(self.body, name, allowed, default, self.rules.error_code)

    def switch(self, name: str, taken: bool, kind: type) -> Any:
        """An optional field of one type (None when absent): refused where the model has none."""
        if name not in self.body:
            return None
        if not taken:
            raise self.bad(f"{name} is not a parameter of {self.rules.name}")
        value = self.body[name]
        if not isinstance(value, kind):
            wanted = "true or false" if kind is bool else "a string"
            raise self.bad(f"{name} must be {wanted}, not {_type_name(value)}")
        return value

    def seed(self) -> int | None:
        rules, seed = self.rules, self.body.get("seed")
        if "seed" in self.body and (isinstance(seed, bool) or not isinstance(seed, int)
                                    or not rules.seed_min <= seed <= rules.seed_max):
            raise self.bad(f"seed must be a whole number from {rules.seed_min} to {rules.seed_max}")
        return seed

    def model_params(self, videos: int, images: int) -> tuple[tuple[str, str], ...]:
        if "model_params" not in self.body:
            return ()
        params = self.body["model_params"]
        if not isinstance(params, dict):
            raise self.bad(f"model_params must be an object, not {_type_name(params)}")
        if "file_url" in params and "link_url" in params:
            raise self.bad("model_params.file_url and model_params.link_url are mutually exclusive")
        if "voice_bindings" not in params:
            return ()
        if not self.rules.voice_bindings:
            raise self.bad(f"model_params.voice_bindings is not supported by {self.rules.name}")
        return _voice_bindings(params["voice_bindings"], videos, images, self.rules.error_code)

    def callback(self, allow_local: bool) -> tuple[str | None, bool]:
        if "callback_url" not in self.body:
            return None, False
        callback = self.body["callback_url"]
        if not isinstance(callback, str):
            raise self.bad(f"callback_url must be a string, not {_type_name(callback)}")
        try:
            return callback_shape(callback, allow_local=allow_local)
        except Invalid as err:
            raise self.bad(str(err)) from err


def _coded_choice(body: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str,
                  code: str) -> str:
    try:
        return _choice(body, name, allowed, default)
    except Invalid as err:
        raise Invalid(str(err), code) from err


def _voice_bindings(value: Any, videos: int, images: int, code: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise Invalid(f"voice_bindings must be an object, not {_type_name(value)}", code)
    if len(value) > 5:
        raise Invalid(f"voice_bindings has {len(value)} bindings; at most 5", code)
    seen: set[str] = set()
    out = []
    for key, url in value.items():
        match = _VOICE_KEY.fullmatch(key)
        if match is None:
            raise Invalid(f'voice_bindings key "{key[:40]}" invalid; use video1.. or image1..', code)
        kind, number = match.group(1), int(match.group(2))
        if number > (videos if kind == "video" else images):
            raise Invalid(f"voice_bindings.{key} out of range", code)
        if not isinstance(url, str) or not url:
            raise Invalid(f"voice_bindings.{key} must be a voice URL", code)
        if url in seen:
            raise Invalid(f"voice_bindings.{key}: the same voice is bound twice", code)
        _check_url(url, f"voice_bindings.{key}", code)
        seen.add(url)
        out.append((key, url))
    return tuple(out)


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
