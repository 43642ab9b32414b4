"""One table of create-request bodies that the API must refuse or accept, run against the client
(prep.core.request.GenerationRequest) and the sandbox (prep.sandbox.validation and HTTP), see
test_cases_agree.py.

A case is a change to a valid body; `ok` says whether EvoLink must take it, `field` which field a
refusal is about (the sandbox's message must name it). The verdicts come from
docs/spec/evolink-api.md: a prompt of 1-1500 characters of text, 1-3 http(s) URLs, 2-10 s,
the listed enums, and an https callback URL of at most 2048 characters that is not an internal
address, however the address is spelled. The flash model (section 5) takes the same request plus
a top-level boolean `generate_audio`; the standard model documents no such field and always makes
sound, so a `generate_audio` sent to it is refused (it would bill audio the caller meant to turn
off).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

__all__ = ["REQUEST_CASES", "RequestCase", "base_body", "request_params"]

MODEL = "wan2.6-reference-video"
FLASH = "wan2.6-reference-video-flash"
VIDEO = "https://cdn.example.com/ref-{}.mp4"


def base_body(**change: Any) -> dict[str, Any]:
    """A body the API accepts, with `change` applied (a value of ... removes the field)."""
    body: dict[str, Any] = {"model": MODEL, "prompt": "A person waves hello",
                            "video_urls": [VIDEO.format(1)]}
    for name, value in change.items():
        if value is ...:
            body.pop(name, None)
        else:
            body[name] = value
    return body


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCase:
    id: str
    change: dict[str, Any] = field(default_factory=dict)
    ok: bool
    field: str | None = None

    @property
    def body(self) -> dict[str, Any]:
        return base_body(**self.change)


def _ok(id: str, **change: Any) -> RequestCase:
    return RequestCase(id=id, change=change, ok=True)


def _no(id: str, name: str, **change: Any) -> RequestCase:
    return RequestCase(id=id, change=change, ok=False, field=name)


def _callback(url: str, ok: bool, id: str | None = None) -> RequestCase:
    name = id or f"callback {url[:60]}"
    return RequestCase(id=name, change={"callback_url": url}, ok=ok,
                       field=None if ok else "callback_url")


_LONG_OK = "https://example.com/" + "a" * (2048 - len("https://example.com/"))

REQUEST_CASES: tuple[RequestCase, ...] = (
    _ok("the base body"),
    # prompt
    _no("prompt empty", "prompt", prompt=""),
    _no("prompt only spaces", "prompt", prompt="   \n\t"),
    _ok("prompt 1 char", prompt="x"),
    _ok("prompt 1500 chars", prompt="x" * 1500),
    _no("prompt 1501 chars", "prompt", prompt="x" * 1501),
    _ok("prompt 1500 non-ASCII chars", prompt="\u00e9" * 1500),
    _no("prompt with a lone surrogate", "prompt", prompt="wave \ud800 hello"),
    # video_urls
    _no("0 video urls", "video_urls", video_urls=[]),
    _ok("1 video url", video_urls=[VIDEO.format(1)]),
    _ok("2 video urls", video_urls=[VIDEO.format(1), VIDEO.format(2)]),
    _ok("3 video urls", video_urls=[VIDEO.format(i) for i in range(3)]),
    _no("4 video urls", "video_urls", video_urls=[VIDEO.format(i) for i in range(4)]),
    _ok("http video url", video_urls=["http://cdn.example.com/a.mp4"]),
    _no("ftp video url", "video_urls", video_urls=["ftp://cdn.example.com/a.mp4"]),
    # duration
    _no("duration 1", "duration", duration=1),
    _ok("duration 2", duration=2),
    _ok("duration 10", duration=10),
    _no("duration 11", "duration", duration=11),
    _no("duration 0", "duration", duration=0),
    _no("duration -5", "duration", duration=-5),
    _no("duration 5.5", "duration", duration=5.5),
    # quality
    _ok("quality 720p", quality="720p"),
    _ok("quality 1080p", quality="1080p"),
    _no("quality 4k", "quality", quality="4k"),
    _no("quality 1080P (case)", "quality", quality="1080P"),
    # aspect ratios: all five at both qualities
    *(_ok(f"aspect {r} {q}", aspect_ratio=r, quality=q)
      for r in ("16:9", "9:16", "1:1", "4:3", "3:4") for q in ("720p", "1080p")),
    _no("aspect 21:9", "aspect_ratio", aspect_ratio="21:9"),
    _no("aspect auto is prep's, not the API's", "aspect_ratio", aspect_ratio="auto"),
    # shot types
    _ok("shot single", model_params={"shot_type": "single"}),
    _ok("shot multi", model_params={"shot_type": "multi"}),
    _no("shot triple", "shot_type", model_params={"shot_type": "triple"}),
    # callback_url
    _callback("http://example.com/cb", False),
    _callback("https://example.com/cb", True),
    _callback("https://93.184.215.14/cb", True, "callback public IPv4 literal"),
    _callback("https://127.0.0.1/x", False),
    _callback("https://127.1/x", False),
    _callback("https://0177.0.0.1/x", False),
    _callback("https://0x7f.1/x", False),
    _callback("https://2130706433/x", False),
    _callback("https://10.1/x", False),
    _callback("https://192.168.1.5/x", False),
    _callback("https://172.20.0.1/x", False),
    _callback("https://169.254.169.254/latest", False),
    _callback("https://[::1]/x", False),
    _callback("https://[fe80::1]/x", False),
    _callback("https://[fe80::1/cb", False, "callback malformed IPv6 (no closing bracket)"),
    _callback("https://intranet/cb", False, "callback single-label host"),
    _callback("https://localhost/x", False),
    _callback("https://printer.local/x", False),
    _callback("https://example.com:99999/cb", False, "callback port out of range"),
    _callback(_LONG_OK, True, "callback exactly 2048 chars"),
    _callback(_LONG_OK + "a", False, "callback 2049 chars"),
    # model
    _no("model misspelled", "model", model="wan2.6-reference-videos"),
    _no("model in capitals", "model", model="WAN2.6-REFERENCE-VIDEO-FLASH"),
    _no("model with a trailing space", "model", model=FLASH + " "),
    # the flash model and generate_audio
    _ok("flash", model=FLASH),
    _ok("flash with audio", model=FLASH, generate_audio=True),
    _ok("flash without audio", model=FLASH, generate_audio=False),
    _ok("flash without audio, 3 clips at 1080p, 10 s", model=FLASH, generate_audio=False,
        quality="1080p", duration=10, video_urls=[VIDEO.format(i) for i in range(3)]),
    _no("flash generate_audio as a string", "generate_audio", model=FLASH,
        generate_audio="false"),
    _no("flash generate_audio as 0", "generate_audio", model=FLASH, generate_audio=0),
    _no("flash generate_audio null", "generate_audio", model=FLASH, generate_audio=None),
    _no("standard model with generate_audio false", "generate_audio", generate_audio=False),
    _no("standard model with generate_audio true", "generate_audio", generate_audio=True),
    _no("flash duration 11", "duration", model=FLASH, duration=11),
    _no("flash 4 video urls", "video_urls", model=FLASH,
        video_urls=[VIDEO.format(i) for i in range(4)]),
    _no("flash quality 4k", "quality", model=FLASH, quality="4k"),
)


def request_params() -> list[Any]:
    """The cases as pytest parameters, named by their ids."""
    return [pytest.param(case, id=case.id) for case in REQUEST_CASES]
