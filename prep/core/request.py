"""The generation request, checked locally against every rule of the API before anything is sent.

Pure: no I/O, no clock. This module holds the ONLY copy of each request rule (prompt, clip count,
duration, quality, aspect ratio, shot type, callback URL): the CLI, generate, estimate and the
batch manifest all call these functions. Each rule broken is a UsageError (exit 2) whose message
names the option (or, with `option=`, the manifest field) and the allowed values, so a job that
cannot be accepted costs neither an upload nor a request.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

from prep.core import rules
from prep.errors import UsageError

__all__ = [
    "AUTO_ASPECT",
    "GenerationRequest",
    "audio_on",
    "check_aspect_ratio",
    "check_callback_url",
    "check_clip_count",
    "check_duration",
    "check_generate_audio",
    "check_model",
    "check_options",
    "check_prompt",
    "check_quality",
    "check_shot_type",
    "nearest_aspect_ratio",
    "resolve_aspect_ratio",
]

# `--aspect-ratio auto` (and `aspect_ratio: auto` in a manifest): chosen from the clips once probed.
AUTO_ASPECT = "auto"

# Host names that always mean "this machine or its private network", whatever DNS says. Any name
# without a dot ("intranet", "router", "metadata") is refused too: it only resolves on a local
# network's search domain.
_INTERNAL_NAMES = ("localhost", "localhost.localdomain")
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".lan", ".home", ".corp",
                      ".private", ".localdomain", ".arpa")
# A label a resolver reads as a number: decimal, 0x hex, or octal when it starts with 0.
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_HOST_CHARS = re.compile(r"[a-z0-9_.-]+")
_MAX_HOST_CHARS = 253
_MAX_LABEL_CHARS = 63
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHOWN_CHARS = 80


def check_prompt(prompt: str) -> str:
    """The prompt as sent; UsageError when it is empty or longer than the API allows."""
    if not prompt.strip():
        raise UsageError("the prompt is empty", hint='describe the video with --prompt "..."')
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate: no JSON body can carry it
        raise UsageError(f"the prompt holds a character that is not text (U+{ord(prompt[err.start]):04X} "
                         f"at position {err.start + 1})",
                         hint="retype the prompt, or save the prompt file as UTF-8") from err
    if len(prompt) > rules.MAX_PROMPT_CHARS:
        raise UsageError(
            f"the prompt is {len(prompt)} characters; the API takes at most {rules.MAX_PROMPT_CHARS}",
            hint=f"shorten it by {_plural(len(prompt) - rules.MAX_PROMPT_CHARS, 'character')}",
        )
    return prompt


def check_clip_count(count: int) -> None:
    """UsageError unless a job has as many reference clips as the API takes (1 to 3)."""
    if not rules.MIN_CLIPS <= count <= rules.MAX_CLIPS:
        raise UsageError(
            f"a job takes {rules.MIN_CLIPS} to {rules.MAX_CLIPS} reference clips, not {count}",
            hint="split the clips over several jobs (prep batch)" if count > rules.MAX_CLIPS
            else "give at least one clip",
        )


def check_duration(value: object, *, option: str = "--duration") -> int:
    """The output duration in whole seconds; UsageError unless it is an int the API allows."""
    if isinstance(value, bool) or not isinstance(value, int) or not (
            rules.MIN_OUTPUT_S <= value <= rules.MAX_OUTPUT_S):
        raise UsageError(f"{option} {value!r} is not allowed; the output is {rules.MIN_OUTPUT_S} "
                         f"to {rules.MAX_OUTPUT_S} whole seconds",
                         hint=f"the default is {rules.DEFAULT_OUTPUT_S}")
    return value


def _choice(value: object, allowed: Sequence[str], option: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise UsageError(f"{option} {value!r} is not allowed; use one of {', '.join(allowed)}")
    return value


def check_quality(value: object, *, option: str = "--quality") -> str:
    """The quality as sent; UsageError unless the API offers it."""
    return _choice(value, rules.QUALITIES, option)


def check_shot_type(value: object, *, option: str = "--shot-type") -> str:
    """The shot type as sent; UsageError unless the API offers it."""
    return _choice(value, rules.SHOT_TYPES, option)


def check_model(value: object, *, option: str = "--model") -> str:
    """The model as sent; UsageError unless it is one prep knows (the standard or the flash one)."""
    return _choice(value, rules.MODELS, option)


def check_generate_audio(model: str, value: object, *, option: str = "--audio/--no-audio") -> bool | None:
    """`generate_audio` as sent (None: left out, the API's default); UsageError when it is not a
    boolean, or when it is given for a model that has no such switch."""
    if value is None:
        return None
    if not isinstance(value, bool):
        raise UsageError(f"{option} {value!r} is not allowed; use true or false")
    if model not in rules.AUDIO_SWITCH_MODELS:
        raise UsageError(f"{option} is only for {', '.join(rules.AUDIO_SWITCH_MODELS)}; {model} "
                         "always makes its own audio",
                         hint=f"drop {option}, or choose --model {rules.FLASH_MODEL}")
    return value


def audio_on(model: str, generate_audio: bool | None) -> bool:
    """Whether the output has audio: always for the standard model; the flash one's default is on."""
    if model not in rules.AUDIO_SWITCH_MODELS or generate_audio is None:
        return rules.DEFAULT_GENERATE_AUDIO
    return generate_audio


def check_aspect_ratio(value: object, *, option: str = "--aspect-ratio",
                       allow_auto: bool = False) -> str:
    """An allowed aspect ratio (or `auto` where the clips will decide); UsageError otherwise."""
    allowed = (AUTO_ASPECT, *rules.ASPECT_RATIOS) if allow_auto else rules.ASPECT_RATIOS
    return _choice(value, allowed, option)


def _ratio(text: str) -> Fraction:
    width, height = text.split(":")
    return Fraction(int(width), int(height))


def _nearest_allowed(aspect: Fraction) -> str:
    # On a log scale 9:16 and 16:9 are equally far from 1:1.
    return min(rules.ASPECT_RATIOS, key=lambda r: abs(math.log(_ratio(r)) - math.log(aspect)))


def nearest_aspect_ratio(aspects: Sequence[Fraction]) -> str:
    """The allowed ratio for clips of these display aspects, main reference first.

    Each clip votes for the allowed ratio nearest its own (no averaging: a portrait clip and a
    landscape clip are not a square one); the ratio with most votes wins, and on a tie the first
    clip's. Unknown aspects (0) do not vote; with none, the API's default.
    """
    votes = [_nearest_allowed(a) for a in aspects if a > 0]
    if not votes:
        return rules.DEFAULT_ASPECT_RATIO
    counts = Counter(votes)
    return max(counts, key=lambda r: (counts[r], -votes.index(r)))


def resolve_aspect_ratio(value: str | None, aspects: Sequence[Fraction] = ()) -> str:
    """`auto` -> the ratio chosen from the clips; a given ratio is checked; None -> default."""
    if value is None:
        return rules.DEFAULT_ASPECT_RATIO
    if check_aspect_ratio(value, allow_auto=True) == AUTO_ASPECT:
        return nearest_aspect_ratio(aspects)
    return value


# --- the callback URL --------------------------------------------------------------------------


def _shown(url: str) -> str:
    return repr(url if len(url) <= _SHOWN_CHARS else url[:_SHOWN_CHARS] + "...")


def _number(label: str) -> int:
    if label.startswith("0x"):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)  # ValueError for 08, 09: no resolver takes those
    return int(label)


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a resolver (inet_aton) reads in `host`, or None when `host` is a name.

    1 to 4 numbers: a.b.c.d, a.b.c (c fills 16 bits), a.b (b fills 24) or a (all 32 bits); each
    decimal, 0x hex or 0-led octal. A host whose last label is a number but that is no such
    address is malformed (ValueError): WHATWG URL parsers refuse it, resolvers disagree about it.
    """
    labels = host.split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    if len(labels) > 4 or not all(_NUMERIC_LABEL.fullmatch(label) for label in labels):
        raise ValueError("a numeric host must be an IPv4 address of 1 to 4 numbers")
    *head, last = [_number(label) for label in labels]
    if any(n > 255 for n in head) or last >= 1 << (8 * (4 - len(head))):
        raise ValueError("a number in the address is out of range")
    value = last
    for index, number in enumerate(head):
        value |= number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    value = int(address)
    if value >> 32 == 0 or address in _NAT64:  # ::a.b.c.d (deprecated) or 64:ff9b::a.b.c.d
        return ipaddress.IPv4Address(value & 0xFFFF_FFFF)
    return None


def _internal_address(address: Address) -> bool:
    if not address.is_global or address.is_multicast:
        return True
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        return inner is not None and _internal_address(inner)
    return False


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _host(netloc: str, hostname: str) -> tuple[str, Address | None]:
    """(the host as a resolver sees it, its address if it is one). ValueError when malformed."""
    if "[" in netloc:  # a bracketed host must be an IPv6 literal
        return hostname, ipaddress.IPv6Address(hostname)
    if not hostname.isascii():
        # IDNA folds full-width digits and dots (１２７．０．０．１) to ASCII, as resolvers do.
        hostname = hostname.encode("idna").decode("ascii").lower()
    host = hostname[:-1] if hostname.endswith(".") else hostname
    labels = host.split(".")
    if (not _HOST_CHARS.fullmatch(host) or len(host) > _MAX_HOST_CHARS
            or any(not 0 < len(label) <= _MAX_LABEL_CHARS for label in labels)):
        raise ValueError(f"{host!r} is not a valid host name")
    return host, _inet_aton(host)


def check_callback_url(url: str, *, option: str = "--callback-url") -> str:
    """The callback URL as sent; UsageError unless EvoLink would call it.

    HTTPS only, at most rules.MAX_CALLBACK_URL_CHARS characters, and public: no internal names
    (localhost, names without a dot, *.local, *.internal, ...) and no loopback, private,
    link-local, reserved or multicast address in any spelling a resolver accepts (127.1,
    0177.0.0.1, 0x7f000001, 2130706433, [::ffff:127.0.0.1], full-width digits...). Only what can
    be judged without DNS is judged.
    """
    hint = "EvoLink calls back only public https:// addresses, such as https://hooks.example.com/evolink"
    if len(url) > rules.MAX_CALLBACK_URL_CHARS:
        raise UsageError(f"{option} is {len(url)} characters; the API takes at most "
                         f"{rules.MAX_CALLBACK_URL_CHARS}", hint="shorten the URL")
    # URL parsers drop or read these differently (a tab vanishes, a backslash may end the host):
    # a URL that means one host here and another at EvoLink is refused outright.
    odd = next((c for c in url if ord(c) <= 0x20 or ord(c) == 0x7F or c == "\\"), None)
    if odd is not None:
        raise UsageError(f"{option} {_shown(url)} is not a valid URL (it contains {odd!r})",
                         hint="percent-encode spaces and special characters")
    try:
        parts = urlsplit(url)
        scheme, hostname, netloc = parts.scheme.lower(), parts.hostname or "", parts.netloc
        _ = parts.port  # ValueError for a port that is not a number from 0 to 65535
    except ValueError as err:
        raise UsageError(f"{option} {_shown(url)} is not a valid URL ({err})", hint=hint) from err
    if scheme != "https":
        raise UsageError(f"{option} must be an https:// URL, not {scheme or 'one without a'} scheme "
                         f"({_shown(url)})", hint=hint)
    if not hostname:
        raise UsageError(f"{option} {_shown(url)} has no host name", hint=hint)
    try:
        host, address = _host(netloc, hostname)
    except (ValueError, UnicodeError) as err:
        raise UsageError(f"{option} {_shown(url)} is not a valid URL ({err})", hint=hint) from err
    if address is not None:
        if _internal_address(address):
            raise UsageError(f"{option} {_shown(url)} is an internal address ({address})", hint=hint)
    elif "." not in host or host in _INTERNAL_NAMES or host.endswith(_INTERNAL_SUFFIXES):
        raise UsageError(f"{option} {_shown(url)} names an internal host ({host})", hint=hint)
    return url


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """One wan2.6-reference-video (or -flash) job, checked when built: `GenerationRequest(...).body()`
    is exactly what is POSTed to /v1/videos/generations."""

    prompt: str
    video_urls: tuple[str, ...]
    duration_s: int = rules.DEFAULT_OUTPUT_S
    quality: str = rules.DEFAULT_QUALITY
    aspect_ratio: str = rules.DEFAULT_ASPECT_RATIO
    shot_type: str = rules.DEFAULT_SHOT_TYPE
    callback_url: str | None = None
    model: str = rules.DEFAULT_MODEL
    generate_audio: bool | None = None  # flash only; None leaves it out (the API's default: on)

    def __post_init__(self) -> None:
        check_prompt(self.prompt)
        check_clip_count(len(self.video_urls))
        for url in self.video_urls:
            if urlsplit(url).scheme not in rules.URL_SCHEMES:
                raise UsageError(f"reference video {url!r} is not an http(s) URL")
        check_options(duration_s=self.duration_s, quality=self.quality,
                      aspect_ratio=self.aspect_ratio, shot_type=self.shot_type,
                      callback_url=self.callback_url, model=self.model,
                      generate_audio=self.generate_audio)

    def body(self) -> dict[str, Any]:
        """The JSON body of the create request."""
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": self.prompt,
            "video_urls": list(self.video_urls),
            "aspect_ratio": self.aspect_ratio,
            "quality": self.quality,
            "duration": self.duration_s,
            "model_params": {"shot_type": self.shot_type},
        }
        if self.model in rules.AUDIO_SWITCH_MODELS:
            # Sent even when on: the journal then shows what was asked for, whatever the default.
            body["generate_audio"] = audio_on(self.model, self.generate_audio)
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
    allow_auto_aspect: bool = False,
    model: str = rules.DEFAULT_MODEL,
    generate_audio: bool | None = None,
) -> None:
    """UsageError for the first request option the API would refuse.

    The aspect ratio must be resolved already unless `allow_auto_aspect` (a job whose clips are not
    probed yet may still say `auto`).
    """
    check_model(model)
    check_generate_audio(model, generate_audio)
    check_duration(duration_s)
    check_quality(quality)
    check_aspect_ratio(aspect_ratio, allow_auto=allow_auto_aspect)
    check_shot_type(shot_type)
    if callback_url is not None:
        check_callback_url(callback_url)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
