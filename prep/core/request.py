"""The generation request, checked locally against every rule of the API before anything is sent.

Pure: no I/O, no clock. Each rule broken is a UsageError (exit 2) whose message names the option and
the allowed values, so a job that cannot be accepted costs neither an upload nor a request.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

from prep.core import rules
from prep.errors import UsageError

__all__ = [
    "GenerationRequest",
    "check_callback_url",
    "check_clip_count",
    "check_options",
    "check_prompt",
    "nearest_aspect_ratio",
    "resolve_aspect_ratio",
]

# Host names that always mean "this machine or its private network", whatever DNS says.
_INTERNAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "metadata")
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".lan", ".home.arpa",
                      ".localdomain")


def check_prompt(prompt: str) -> str:
    """The prompt as sent; UsageError when it is empty or longer than the API allows."""
    if not prompt.strip():
        raise UsageError("the prompt is empty", hint='describe the video with --prompt "..."')
    if len(prompt) > rules.MAX_PROMPT_CHARS:
        raise UsageError(
            f"the prompt is {len(prompt)} characters; the API takes at most {rules.MAX_PROMPT_CHARS}",
            hint=f"shorten it by {_plural(len(prompt) - rules.MAX_PROMPT_CHARS, 'character')}",
        )
    return prompt


def check_clip_count(count: int) -> None:
    """UsageError unless a job has 1 to 3 reference clips."""
    if not rules.MIN_CLIPS <= count <= rules.MAX_CLIPS:
        raise UsageError(
            f"a job takes {rules.MIN_CLIPS} to {rules.MAX_CLIPS} reference clips, not {count}",
            hint="split the clips over several jobs (prep batch)" if count > rules.MAX_CLIPS else "",
        )


def _ratio(text: str) -> Fraction:
    width, height = text.split(":")
    return Fraction(int(width), int(height))


def nearest_aspect_ratio(aspects: Sequence[Fraction]) -> str:
    """The allowed ratio nearest the clips' display aspects (compared on a log scale, so 9:16
    and 16:9 are equally far from 1:1). Several clips are averaged on the same scale."""
    usable = [a for a in aspects if a > 0]
    if not usable:
        return rules.DEFAULT_ASPECT_RATIO
    mean_log = sum(math.log(a) for a in usable) / len(usable)
    return min(rules.ASPECT_RATIOS, key=lambda r: abs(math.log(_ratio(r)) - mean_log))


def resolve_aspect_ratio(value: str | None, aspects: Sequence[Fraction] = ()) -> str:
    """`auto` -> the nearest allowed ratio to the clips; a given ratio is checked; None -> default."""
    if value is None:
        return rules.DEFAULT_ASPECT_RATIO
    if value == "auto":
        return nearest_aspect_ratio(aspects)
    if value not in rules.ASPECT_RATIOS:
        raise UsageError(f"--aspect-ratio {value} is not allowed; use auto or one of "
                         f"{', '.join(rules.ASPECT_RATIOS)}")
    return value


def _internal_ip(host: str) -> bool:
    text = host.strip("[]")
    if text.isdigit():  # 2130706433 is 127.0.0.1 to most resolvers
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(int(text))
        except ipaddress.AddressValueError:
            return True
    else:
        try:
            address = ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_callback_url(url: str) -> str:
    """The callback URL as sent; UsageError unless it is HTTPS, short enough and not internal.

    Only what can be judged without DNS is judged here: literal private, loopback and link-local
    addresses, and names that always mean a local network (localhost, *.local, *.internal).
    """
    if len(url) > rules.MAX_CALLBACK_URL_CHARS:
        raise UsageError(f"--callback-url is {len(url)} characters; the API takes at most "
                         f"{rules.MAX_CALLBACK_URL_CHARS}")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        _ = parts.port
    except ValueError as err:
        raise UsageError(f"--callback-url {url!r} is not a valid URL ({err})") from err
    if parts.scheme.lower() != "https":
        raise UsageError(f"--callback-url must be an https:// URL, not {parts.scheme or 'no'} scheme",
                         hint="EvoLink only calls back over HTTPS")
    if not host:
        raise UsageError(f"--callback-url {url!r} has no host name")
    single_label = "." not in host and ":" not in host  # "intranet", "router": never public
    if host in _INTERNAL_NAMES or host.endswith(_INTERNAL_SUFFIXES) or single_label or _internal_ip(host):
        raise UsageError(f"--callback-url points at an internal address ({host})",
                         hint="EvoLink refuses loopback and private-network callbacks; use a public "
                              "HTTPS address")
    return url


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """One wan2.6-reference-video job, checked when built: `GenerationRequest(...).body()` is
    exactly what is POSTed to /v1/videos/generations."""

    prompt: str
    video_urls: tuple[str, ...]
    duration_s: int = rules.DEFAULT_OUTPUT_S
    quality: str = rules.DEFAULT_QUALITY
    aspect_ratio: str = rules.DEFAULT_ASPECT_RATIO
    shot_type: str = rules.DEFAULT_SHOT_TYPE
    callback_url: str | None = None

    def __post_init__(self) -> None:
        check_prompt(self.prompt)
        check_clip_count(len(self.video_urls))
        for url in self.video_urls:
            if urlsplit(url).scheme not in rules.URL_SCHEMES:
                raise UsageError(f"reference video {url!r} is not an http(s) URL")
        check_options(duration_s=self.duration_s, quality=self.quality,
                      aspect_ratio=self.aspect_ratio, shot_type=self.shot_type,
                      callback_url=self.callback_url)

    def body(self) -> dict[str, Any]:
        """The JSON body of the create request."""
        body: dict[str, Any] = {
            "model": rules.MODEL,
            "prompt": self.prompt,
            "video_urls": list(self.video_urls),
            "aspect_ratio": self.aspect_ratio,
            "quality": self.quality,
            "duration": self.duration_s,
            "model_params": {"shot_type": self.shot_type},
        }
        if self.callback_url:
            body["callback_url"] = self.callback_url
        return body


def check_options(
    *,
    duration_s: int = rules.DEFAULT_OUTPUT_S,
    quality: str = rules.DEFAULT_QUALITY,
    aspect_ratio: str = rules.DEFAULT_ASPECT_RATIO,
    shot_type: str = rules.DEFAULT_SHOT_TYPE,
    callback_url: str | None = None,
) -> None:
    """UsageError for the first request option the API would refuse (aspect ratio already resolved)."""
    if isinstance(duration_s, bool) or not isinstance(duration_s, int) or not (
            rules.MIN_OUTPUT_S <= duration_s <= rules.MAX_OUTPUT_S):
        raise UsageError(f"--duration {duration_s} is not allowed; the output is {rules.MIN_OUTPUT_S} "
                         f"to {rules.MAX_OUTPUT_S} whole seconds")
    if quality not in rules.QUALITIES:
        raise UsageError(f"--quality {quality} is not allowed; use one of {', '.join(rules.QUALITIES)}")
    if aspect_ratio not in rules.ASPECT_RATIOS:
        raise UsageError(f"--aspect-ratio {aspect_ratio} is not allowed; use one of "
                         f"{', '.join(rules.ASPECT_RATIOS)}")
    if shot_type not in rules.SHOT_TYPES:
        raise UsageError(f"--shot-type {shot_type} is not allowed; use one of "
                         f"{', '.join(rules.SHOT_TYPES)}")
    if callback_url is not None:
        check_callback_url(callback_url)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
