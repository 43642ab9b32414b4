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
from dataclasses import Field, field, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prep.core import rules
from prep.core.models import model_spec
from prep.core.modelspec import ModelSpec
from prep.core.record import record
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
    "check_negative_prompt",
    "check_options",
    "check_prompt",
    "check_prompt_extend",
    "check_seed",
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


def _spec(model: str | ModelSpec) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else model_spec(model)


def _who(spec: ModelSpec) -> str:
    # wan2.6's messages always said "the API"; the newer models are named.
    return "the API" if spec.legacy else spec.id


def check_prompt(prompt: str, model: str | ModelSpec = rules.DEFAULT_MODEL) -> str:
    """The prompt as sent; UsageError when it is empty or longer than the model allows."""
    if not prompt.strip():
        raise UsageError("the prompt is empty", hint='describe the video with --prompt "..."')
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate: no JSON body can carry it
        raise UsageError(f"the prompt holds a character that is not text (U+{ord(prompt[err.start]):04X} "
                         f"at position {err.start + 1})",
                         hint="retype the prompt, or save the prompt file as UTF-8") from err
    spec = _spec(model)
    if len(prompt) > spec.prompt_chars:
        raise UsageError(
            f"the prompt is {len(prompt)} characters; {_who(spec)} takes at most {spec.prompt_chars}",
            hint=f"shorten it by {_plural(len(prompt) - spec.prompt_chars, 'character')}",
        )
    return prompt


def check_clip_count(count: int, model: str | ModelSpec = rules.DEFAULT_MODEL) -> None:
    """UsageError unless a job has as many reference clips as the model takes (wan2.6: 1 to 3).

    A prep job always has at least one clip, even where the model could do with images alone."""
    spec = _spec(model)
    low, high = max(1, spec.videos.count.low), spec.videos.count.high
    if not low <= count <= high:
        on = "" if spec.legacy else f" on {spec.id}"
        raise UsageError(
            f"a job takes {low} to {high} reference clips{on}, not {count}",
            hint="split the clips over several jobs (prep batch)" if count > high
            else "give at least one clip",
        )


def check_duration(value: object, *, option: str = "--duration",
                   model: str | ModelSpec = rules.DEFAULT_MODEL) -> int:
    """The output duration in whole seconds (-1: the model chooses, where it can); UsageError
    unless it is an int the model allows."""
    spec = _spec(model)
    span = spec.durations_s
    ok = (not isinstance(value, bool) and isinstance(value, int)
          and (value in span or (value == -1 and spec.smart_duration)))
    if not ok:
        smart = "; -1 lets the model choose" if spec.smart_duration else ""
        raise UsageError(f"{option} {value!r} is not allowed; {_who(spec)} makes {span.low} "
                         f"to {span.high} whole seconds{smart}",
                         hint=f"the default is {spec.default_duration_s}")
    return value  # type: ignore[return-value]


def _model_choice(value: object, allowed: Sequence[str], option: str, spec: ModelSpec) -> str:
    if not isinstance(value, str) or value not in allowed:
        on = "" if spec.legacy else f" on {spec.id}"
        raise UsageError(f"{option} {value!r} is not allowed{on}; use one of {', '.join(allowed)}")
    return value


def check_quality(value: object, *, option: str = "--quality",
                  model: str | ModelSpec = rules.DEFAULT_MODEL) -> str:
    """The quality as sent; UsageError unless the model offers it."""
    spec = _spec(model)
    return _model_choice(value, spec.qualities, option, spec)


def _not_taken(spec: ModelSpec, option: str) -> UsageError:
    takers = [m.id for m in rules.MODEL_SPECS if m.takes(_FIELD_OF_OPTION.get(option, ""))]
    return UsageError(f"{option} is not taken by {spec.id}",
                      hint=f"drop {option}" + (f", or choose --model {' / '.join(takers)}"
                                               if takers else ""))


def check_shot_type(value: object, *, option: str = "--shot-type",
                    model: str | ModelSpec = rules.DEFAULT_MODEL) -> str:
    """The shot type (sent only to the models that take it; the others accept only the default,
    which they are not sent); UsageError unless the model offers it."""
    spec = _spec(model)
    if not spec.shot_types:
        if value != rules.DEFAULT_SHOT_TYPE:
            raise _not_taken(spec, "--shot-type")
        return rules.DEFAULT_SHOT_TYPE
    return _model_choice(value, spec.shot_types, option, spec)


def check_model(value: object, *, option: str = "--model") -> str:
    """The full id of a model id or alias prep knows (`3.0` -> wan3.0-reference-video);
    UsageError (exit 2) listing the known ones otherwise."""
    spec = model_spec(value, option=option)
    if value not in (spec.id, *spec.aliases):
        # The API takes ids exactly as written: no other case, no spaces around.
        raise UsageError(f"{option} {value!r} is not a model id as the API spells it",
                         hint=f"write {spec.id} (or {spec.aliases[0]})")
    return spec.id


def check_generate_audio(model: str | ModelSpec, value: object, *,
                         option: str = "--audio/--no-audio") -> bool | None:
    """`generate_audio` as sent (None: left out, the API's default); UsageError when it is not a
    boolean, or when it is given for a model that has no such switch."""
    if value is None:
        return None
    if not isinstance(value, bool):
        raise UsageError(f"{option} {value!r} is not allowed; use true or false")
    spec = _spec(model)
    if spec.generate_audio_default is None:
        takers = [m.id for m in rules.MODEL_SPECS if m.generate_audio_default is not None]
        raise UsageError(f"{option} is only for {', '.join(takers)}; {spec.id} always makes its "
                         "own audio", hint=f"drop {option}, or choose --model {rules.FLASH_MODEL}")
    return value


def audio_on(model: str | ModelSpec, generate_audio: bool | None) -> bool:
    """Whether the output has audio: always for the models without a switch; else the switch, or
    the model's default when it is left out."""
    spec = _spec(model)
    if spec.generate_audio_default is None:
        return rules.DEFAULT_GENERATE_AUDIO
    return spec.generate_audio_default if generate_audio is None else generate_audio


def check_seed(value: object, *, option: str = "--seed",
               model: str | ModelSpec = rules.DEFAULT_MODEL) -> int | None:
    """The seed as sent (None: left out); UsageError when the model takes none or it is out of
    the model's range."""
    if value is None:
        return None
    spec = _spec(model)
    if spec.seed is None:
        raise _not_taken(spec, option)
    if value not in spec.seed:
        raise UsageError(f"{option} {value!r} is not allowed; {spec.id} takes a whole number from "
                         f"{spec.seed.low} to {spec.seed.high}")
    return value  # type: ignore[return-value]


def check_negative_prompt(value: object, *, option: str = "--negative-prompt",
                          model: str | ModelSpec = rules.DEFAULT_MODEL) -> str | None:
    """The negative prompt as sent (None: left out); UsageError when the model takes none or it
    is too long."""
    if value is None:
        return None
    spec = _spec(model)
    if spec.negative_prompt_chars is None:
        raise _not_taken(spec, option)
    if not isinstance(value, str):
        raise UsageError(f"{option} must be text, not {type(value).__name__}")
    over = len(value) - spec.negative_prompt_chars
    if over > 0:
        raise UsageError(f"{option} is {len(value)} characters; {spec.id} takes at most "
                         f"{spec.negative_prompt_chars}", hint=f"shorten it by {_plural(over, 'character')}")
    return value


def check_prompt_extend(value: object, *, option: str = "--prompt-extend",
                        model: str | ModelSpec = rules.DEFAULT_MODEL) -> bool | None:
    """`prompt_extend` as sent (None: left out); UsageError when the model has no such switch."""
    if value is None:
        return None
    if not isinstance(value, bool):
        raise UsageError(f"{option} {value!r} is not allowed; use true or false")
    spec = _spec(model)
    if spec.prompt_extend_default is None:
        raise _not_taken(spec, option)
    return value


# The request field (ModelSpec.takes' name) behind an option, for "choose --model ..." hints.
_FIELD_OF_OPTION = {"--seed": "seed", "seed": "seed", "--negative-prompt": "negative_prompt",
                    "negative_prompt": "negative_prompt", "--prompt-extend": "prompt_extend",
                    "--no-prompt-extend": "prompt_extend", "prompt_extend": "prompt_extend",
                    "--shot-type": "shot_type"}


def check_aspect_ratio(value: object, *, option: str = "--aspect-ratio",
                       allow_auto: bool = False, model: str | ModelSpec = rules.DEFAULT_MODEL) -> str:
    """An aspect ratio the model allows (or `auto` where the clips will decide); UsageError
    otherwise."""
    spec = _spec(model)
    allowed = (AUTO_ASPECT, *spec.aspect_ratios) if allow_auto else spec.aspect_ratios
    return _model_choice(value, allowed, option, spec)


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
    return check_prompt(value, options.model)


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
    if model_spec(options.model).generate_audio_default is None:
        return None
    return audio_on(options.model, options.generate_audio)


def _shot_type_sent(options: RequestOptions) -> str | None:
    return options.shot_type if model_spec(options.model).shot_types else None


def _extend_flag(value: Any) -> str:
    return "--prompt-extend" if value else "--no-prompt-extend"


@record(frozen=True, slots=True, kw_only=True)
class RequestOptions:
    """Everything a job asks EvoLink for besides its clips, checked once when built.

    The one place the request's fields are listed: the command line (`request_options` in
    prep.ui.options), the batch manifest, the journal, a job's name, the studio and the create
    body all read them from here. `prompt` may be None where no request is sent (a bill);
    `aspect_ratio` may be `auto` until the clips are probed (`resolved`). Adding a field is one
    line here (with its check); `as_dict`, `from_dict`, `named` and `body` follow.
    """

    prompt: str | None = _field(None, _prompt_check, body=("prompt",), flag="--prompt", named=True)
    duration_s: int = _field(rules.DEFAULT_OUTPUT_S,
                             lambda o, v, n: check_duration(v, option=n, model=o.model),
                             key="duration", body=("duration",), named=True)
    quality: str = _field(rules.DEFAULT_QUALITY,
                          lambda o, v, n: check_quality(v, option=n, model=o.model),
                          body=("quality",), named=True)
    aspect_ratio: str = _field(rules.DEFAULT_ASPECT_RATIO,
                               lambda o, v, n: check_aspect_ratio(v, option=n, allow_auto=True,
                                                                  model=o.model),
                               body=("aspect_ratio",), named=True)
    shot_type: str = _field(rules.DEFAULT_SHOT_TYPE,
                            lambda o, v, n: check_shot_type(v, option=n, model=o.model),
                            body=("model_params", "shot_type"), named=True, sent=_shot_type_sent)
    callback_url: str | None = _field(None, _callback_check, body=("callback_url",), named=True)
    # Ids and aliases are taken (`3.0`); the full id is what the value holds and sends.
    model: str = _field(rules.DEFAULT_MODEL, lambda o, v, n: check_model(v, option=n),
                        body=("model",))
    generate_audio: bool | None = _field(None, lambda o, v, n: check_generate_audio(o.model, v, option=n),
                                         body=("generate_audio",), flag=_audio_flag, sent=_audio_sent)
    seed: int | None = _field(None, lambda o, v, n: check_seed(v, option=n, model=o.model),
                              body=("seed",))
    negative_prompt: str | None = _field(
        None, lambda o, v, n: check_negative_prompt(v, option=n, model=o.model),
        body=("negative_prompt",))
    prompt_extend: bool | None = _field(
        None, lambda o, v, n: check_prompt_extend(v, option=n, model=o.model),
        body=("prompt_extend",), flag=_extend_flag)

    def __post_init__(self) -> None:
        # The model first: every other field is checked against its table.
        model_field = _FIELDS["model"]
        full_id = model_field.metadata["check"](self, self.model, _flag(model_field, self.model))
        object.__setattr__(self, "model", full_id)
        for item in fields(self):
            if item.name != "model":
                value = getattr(self, item.name)
                item.metadata["check"](self, value, _flag(item, value))

    @property
    def spec(self) -> ModelSpec:
        """The chosen model's table."""
        return model_spec(self.model)

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
        # The model first: the other fields are checked against its table.
        for item in sorted(fields(cls), key=lambda f: f.name != "model"):
            value = data.get(_key(item))
            if value is None:
                continue
            try:
                # The fields checked so far (the model above all) are seen as given.
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

    def body(self, video_urls: Sequence[str], *, image_urls: Sequence[str] = (),
             audio_urls: Sequence[str] = (),
             voice_bindings: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        """The JSON body of the create request with these reference videos (see GenerationRequest),
        and the images, standalone audio and bound voices where given (left out when none)."""
        body: dict[str, Any] = {}
        if voice_bindings:
            body["model_params"] = {"voice_bindings": dict(voice_bindings)}
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
                if image_urls:
                    body["image_urls"] = list(image_urls)
                if audio_urls:
                    body["audio_urls"] = list(audio_urls)
        return body


_FIELDS: dict[str, Field[Any]] = {item.name: item for item in fields(RequestOptions)}


def _key(item: Field[Any]) -> str:
    return str(item.metadata["key"] or item.name)


def _flag(item: Field[Any], value: Any) -> str:
    flag = item.metadata["flag"]
    if callable(flag):
        return str(flag(value))
    return str(flag or "--" + _key(item).replace("_", "-"))


def _is_default(item: Field[Any], value: Any) -> bool:
    return bool(value == item.default and type(value) is type(item.default))


@record(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """One wan2.6-reference-video (or -flash) job, checked when built: the request options with a
    prompt and a resolved aspect ratio, and 1-3 reference video URLs. `.body()` is exactly what is
    POSTed to /v1/videos/generations."""

    options: RequestOptions
    video_urls: tuple[str, ...]
    image_urls: tuple[str, ...] = ()
    audio_urls: tuple[str, ...] = ()
    voice_bindings: tuple[tuple[str, str], ...] = ()  # (key such as video1, voice URL)

    def __post_init__(self) -> None:
        check_prompt(self.options.prompt or "", self.options.model)
        check_clip_count(len(self.video_urls), self.options.model)
        urls = [("reference video", u) for u in self.video_urls] + \
            [("reference image", u) for u in self.image_urls] + \
            [("reference audio", u) for u in self.audio_urls] + \
            [("voice", u) for _, u in self.voice_bindings]
        for what, url in urls:
            if urlsplit(url).scheme not in rules.URL_SCHEMES:
                raise UsageError(f"{what} {url!r} is not an http(s) URL")
        check_aspect_ratio(self.options.aspect_ratio, model=self.options.model)
        from prep.core.references import ReferenceSpec, check_references

        refs = [ReferenceSpec(kind="image", path=Path(u)) for u in self.image_urls] + \
            [ReferenceSpec(kind="audio", path=Path(u)) for u in self.audio_urls] + \
            [ReferenceSpec(kind="voice", path=Path(u), binds=k) for k, u in self.voice_bindings]
        check_references(self.options.spec, refs, len(self.video_urls))

    def body(self) -> dict[str, Any]:
        """The JSON body of the create request."""
        return self.options.body(self.video_urls, image_urls=self.image_urls,
                                 audio_urls=self.audio_urls, voice_bindings=self.voice_bindings)


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
    options = RequestOptions(duration_s=duration_s, quality=quality, aspect_ratio=aspect_ratio,
                             shot_type=shot_type, callback_url=callback_url, model=model,
                             generate_audio=generate_audio)
    if not allow_auto_aspect:
        check_aspect_ratio(aspect_ratio, model=options.model)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
