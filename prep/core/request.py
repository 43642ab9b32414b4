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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields, replace
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

from prep.core import rules
from prep.errors import UsageError

__all__ = [
    "AUTO_ASPECT",
    "GenerationRequest",
    "RequestOptions",
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


# --- the request's options, as one value --------------------------------------------------------

# How a field of RequestOptions is checked: (the options, its value, the name that messages give it:
# the option `--duration` or the manifest field `duration`) -> the value as sent; UsageError if not.
Check = Callable[["RequestOptions", Any, str], Any]


def _field(default: Any, check: Check, *, key: str = "", body: tuple[str, ...] = (),
           flag: str | Callable[[Any], str] = "", named: bool = False,
           sent: Callable[[RequestOptions], Any] | None = None) -> Any:
    """One request field: its default and check, and the names it has outside Python.

    key: its name in JSON (the journal, the manifest, `--json`, the studio's page), default the
    attribute's; body: where the create request carries it (nothing: not sent); flag: its command
    line option for messages, default `--key` (or a function of the value given); named: it
    always takes part in a job's name, even at its default (the fields older than the journal);
    sent: the value sent, when it is not the field's own (None leaves it out of the body).
    """
    return field(default=default, metadata={"check": check, "key": key, "body": body, "flag": flag,
                                            "named": named, "sent": sent})


def _prompt_check(options: RequestOptions, value: Any, name: str) -> str | None:
    if value is None:  # a bill needs no prompt; a request does (GenerationRequest checks it)
        return None
    if not isinstance(value, str):
        raise UsageError(f"{name} must be text, not {type(value).__name__}")
    return check_prompt(value)


def _callback_check(options: RequestOptions, value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"{name} must be text, not {type(value).__name__}")
    return check_callback_url(value, option=name)


def _audio_flag(value: Any) -> str:
    return "--audio" if value else "--no-audio"


def _audio_sent(options: RequestOptions) -> bool | None:
    # Sent even when on, for the models that have the switch: the journal then shows what was
    # asked for, whatever the default; the others always make audio and take no such field.
    if options.model not in rules.AUDIO_SWITCH_MODELS:
        return None
    return audio_on(options.model, options.generate_audio)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestOptions:
    """Everything a job asks EvoLink for besides its clips, checked once when built.

    The one place the request's fields are listed: the command line (`request_options` in
    prep.ui.options), the batch manifest, the journal, a job's name, the studio and the create
    body all read them from here. `prompt` may be None where no request is sent (a bill);
    `aspect_ratio` may be `auto` until the clips are probed (`resolved`). Adding a field is one
    line here (with its check); `as_dict`, `from_dict`, `named` and `body` follow.
    """

    prompt: str | None = _field(None, _prompt_check, body=("prompt",), flag="--prompt", named=True)
    duration_s: int = _field(rules.DEFAULT_OUTPUT_S, lambda o, v, n: check_duration(v, option=n),
                             key="duration", body=("duration",), named=True)
    quality: str = _field(rules.DEFAULT_QUALITY, lambda o, v, n: check_quality(v, option=n),
                          body=("quality",), named=True)
    aspect_ratio: str = _field(rules.DEFAULT_ASPECT_RATIO,
                               lambda o, v, n: check_aspect_ratio(v, option=n, allow_auto=True),
                               body=("aspect_ratio",), named=True)
    shot_type: str = _field(rules.DEFAULT_SHOT_TYPE, lambda o, v, n: check_shot_type(v, option=n),
                            body=("model_params", "shot_type"), named=True)
    callback_url: str | None = _field(None, _callback_check, body=("callback_url",), named=True)
    model: str = _field(rules.DEFAULT_MODEL, lambda o, v, n: check_model(v, option=n),
                        body=("model",))
    generate_audio: bool | None = _field(None, lambda o, v, n: check_generate_audio(o.model, v, option=n),
                                         body=("generate_audio",), flag=_audio_flag, sent=_audio_sent)

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            item.metadata["check"](self, value, _flag(item, value))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, problems: list[str] | None = None
                  ) -> RequestOptions | None:
        """The options a JSON object holds (`as_dict`'s keys; absent or null: the default).

        Messages name the JSON key (`duration 12 is not allowed ...`). With `problems`, every
        field's problem is added to it and None returned when there is any (a manifest row lists
        them all); without, the first one is raised.
        """
        values: dict[str, Any] = {}
        found: list[str] = []
        for item in fields(cls):
            value = data.get(_key(item))
            if value is None:
                continue
            try:
                # The fields checked so far (the model, for the audio switch) are seen as given.
                item.metadata["check"](cls(**values), value, _key(item))
            except UsageError as err:
                if problems is None:
                    raise
                found.append(err.message)
                continue
            values[item.name] = value
        if found:
            assert problems is not None
            problems.extend(found)
            return None
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """Every field by its JSON key: what the journal records and `--json` prints."""
        return {_key(item): getattr(self, item.name) for item in fields(self)}

    def named(self) -> dict[str, Any]:
        """What names a job (`prep generate`'s job name, the journal's spec hash): `as_dict`
        without the fields newer than the first journals while they hold their default, so a job
        keeps the name it had before such a field existed."""
        values = {item: getattr(self, item.name) for item in fields(self)}
        return {_key(item): value for item, value in values.items()
                if item.metadata["named"] or not _is_default(item, value)}

    def resolved(self, aspects: Sequence[Fraction] = ()) -> RequestOptions:
        """The same options with `auto` replaced by the ratio chosen from the clips' aspects."""
        if self.aspect_ratio != AUTO_ASPECT:
            return self
        return replace(self, aspect_ratio=nearest_aspect_ratio(aspects))

    def body(self, video_urls: Sequence[str]) -> dict[str, Any]:
        """The JSON body of the create request with these reference videos (see GenerationRequest)."""
        body: dict[str, Any] = {}
        for item in fields(self):
            sent = item.metadata["sent"]
            value = sent(self) if sent is not None else getattr(self, item.name)
            path: tuple[str, ...] = item.metadata["body"]
            if value is None or not path:
                continue
            place = body
            for part in path[:-1]:
                place = place.setdefault(part, {})
            place[path[-1]] = value
            if item.name == "prompt":
                body["video_urls"] = list(video_urls)
        return body


def _key(item: Field[Any]) -> str:
    return str(item.metadata["key"] or item.name)


def _flag(item: Field[Any], value: Any) -> str:
    flag = item.metadata["flag"]
    if callable(flag):
        return str(flag(value))
    return str(flag or "--" + _key(item).replace("_", "-"))


def _is_default(item: Field[Any], value: Any) -> bool:
    return bool(value == item.default and type(value) is type(item.default))


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """One wan2.6-reference-video (or -flash) job, checked when built: the request options with a
    prompt and a resolved aspect ratio, and 1-3 reference video URLs. `.body()` is exactly what is
    POSTed to /v1/videos/generations."""

    options: RequestOptions
    video_urls: tuple[str, ...]

    def __post_init__(self) -> None:
        check_prompt(self.options.prompt or "")
        check_clip_count(len(self.video_urls))
        for url in self.video_urls:
            if urlsplit(url).scheme not in rules.URL_SCHEMES:
                raise UsageError(f"reference video {url!r} is not an http(s) URL")
        check_aspect_ratio(self.options.aspect_ratio)

    def body(self) -> dict[str, Any]:
        """The JSON body of the create request."""
        return self.options.body(self.video_urls)


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
    """UsageError for the first request option the API would refuse (RequestOptions' checks).

    The aspect ratio must be resolved already unless `allow_auto_aspect` (a job whose clips are not
    probed yet may still say `auto`).
    """
    RequestOptions(duration_s=duration_s, quality=quality, aspect_ratio=aspect_ratio,
                   shot_type=shot_type, callback_url=callback_url, model=model,
                   generate_audio=generate_audio)
    if not allow_auto_aspect:
        check_aspect_ratio(aspect_ratio)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
