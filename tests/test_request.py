"""Local validation of the generation request: every rule, before anything is sent."""

from __future__ import annotations

import ipaddress
import socket
from fractions import Fraction
from typing import Any

import pytest

from prep.core import rules
from prep.core.request import (
    GenerationRequest,
    RequestOptions,
    check_callback_url,
    check_clip_count,
    check_prompt,
    nearest_aspect_ratio,
    resolve_aspect_ratio,
)
from prep.errors import UsageError

URL = "https://files.test/a.mp4"


def test_prompt_rules() -> None:
    assert check_prompt("x" * rules.MAX_PROMPT_CHARS)
    with pytest.raises(UsageError, match="1501 characters"):
        check_prompt("x" * 1501)
    with pytest.raises(UsageError, match="empty"):
        check_prompt("   ")


@pytest.mark.parametrize("count", [0, 4, 7])
def test_clip_count(count: int) -> None:
    with pytest.raises(UsageError, match=f"a job takes 1 to 3 reference clips, not {count}$") as info:
        check_clip_count(count)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(("aspects", "ratio"), [
    ([Fraction(16, 9)], "16:9"), ([Fraction(9, 16)], "9:16"), ([Fraction(1)], "1:1"),
    ([Fraction(4, 3)], "4:3"), ([Fraction(3, 4)], "3:4"), ([Fraction(1920, 800)], "16:9"),
    ([Fraction(1080, 1350)], "3:4"), ([], "16:9"),
    ([Fraction(5, 4)], "4:3"),
])
def test_auto_aspect_picks_the_nearest_allowed_ratio(aspects: list[Fraction], ratio: str) -> None:
    assert nearest_aspect_ratio(aspects) == ratio
    assert resolve_aspect_ratio("auto", aspects) == ratio


@pytest.mark.parametrize(("aspects", "ratio"), [
    ([Fraction(16, 9), Fraction(9, 16)], "16:9"),    # a tie: the first clip (the main reference)
    ([Fraction(9, 16), Fraction(16, 9)], "9:16"),
    ([Fraction(16, 9), Fraction(9, 16), Fraction(9, 16)], "9:16"),   # the most common wins
    ([Fraction(4, 3), Fraction(16, 9), Fraction(9, 16)], "4:3"),     # three-way tie: the first
    ([Fraction(1920, 1080), Fraction(1280, 720), Fraction(3, 4)], "16:9"),
    ([Fraction(0), Fraction(9, 16)], "9:16"),                         # an unknown aspect has no vote
])
def test_auto_aspect_is_each_clips_nearest_ratio_then_the_most_common(
        aspects: list[Fraction], ratio: str) -> None:
    """Never an average: a portrait and a landscape clip do not make a square video."""
    assert nearest_aspect_ratio(aspects) == ratio
    assert resolve_aspect_ratio("auto", aspects) == ratio


def test_aspect_ratio_values() -> None:
    assert resolve_aspect_ratio(None) == rules.DEFAULT_ASPECT_RATIO
    assert resolve_aspect_ratio("9:16") == "9:16"
    with pytest.raises(UsageError, match="21:9"):
        resolve_aspect_ratio("21:9")


GOOD_CALLBACKS = [
    "https://hooks.example.com/prep", "https://203.0.113.9.nip.io/x", "https://8.8.8.8/cb",
    "https://example.com:8443/a?b=c", "https://user:secret@hooks.example.com/x",
    "https://bücher.example/hook", "https://[2606:4700:4700::1111]/cb", "https://1.1.1.1./x",
    "https://134744072/x",  # 8.8.8.8 as one number: odd, but public
    "https://example.com/" + "a" * (rules.MAX_CALLBACK_URL_CHARS - len("https://example.com/")),
]


@pytest.mark.parametrize("url", GOOD_CALLBACKS)
def test_good_callbacks(url: str) -> None:
    assert check_callback_url(url) == url


# Every spelling of an internal IPv4 address that a resolver's inet_aton reads: 1-4 parts, each
# decimal, octal (leading 0) or hex (0x).
INTERNAL_V4_SPELLINGS = [
    "127.0.0.1", "127.1", "127.0.1", "0177.0.0.1", "0x7f.1", "0x7f.0.0.1", "0x7F.0.0.1",
    "2130706433", "0x7f000001", "017700000001", "10.1", "012.0.0.1", "0xa.0.0.1", "10.0.0.5",
    "192.168.1", "0300.0250.1.1", "172.16.0.1", "172.31.255.255", "0251.0376.0251.0376",
    "169.254.169.254", "0.0.0.0", "0", "100.64.0.1", "224.0.0.1", "255.255.255.255",
    "127.1.2.3",
]


@pytest.mark.parametrize("host", INTERNAL_V4_SPELLINGS)
def test_every_ipv4_spelling_of_an_internal_address_is_refused(host: str) -> None:
    # The table itself is checked against the system's resolver routine.
    assert not ipaddress.IPv4Address(socket.inet_aton(host)).is_global or \
        ipaddress.IPv4Address(socket.inet_aton(host)).is_multicast
    with pytest.raises(UsageError, match="internal address") as info:
        check_callback_url(f"https://{host}/cb")
    assert info.value.exit_code == 2


def test_one_number_hosts_are_read_as_resolvers_read_them() -> None:
    assert ipaddress.IPv4Address(socket.inet_aton("134744072")) == ipaddress.IPv4Address("8.8.8.8")
    assert check_callback_url("https://134744072/x")


@pytest.mark.parametrize("host", [
    "[::1]", "[::]", "[fd00::1]", "[fe80::1]", "[fe80::1%25eth0]", "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]", "[::ffff:10.0.0.1]", "[::127.0.0.1]", "[64:ff9b::7f00:1]",
    "[2002:7f00:1::1]", "[ff02::1]", "１２７.０.０.１",
])
def test_internal_ipv6_and_disguised_addresses_are_refused(host: str) -> None:
    with pytest.raises(UsageError, match="internal address"):
        check_callback_url(f"https://{host}/cb")


@pytest.mark.parametrize("host", [
    "localhost", "LOCALHOST.", "intranet", "router", "metadata", "printer.local", "db.internal",
    "metadata.google.internal", "nas.lan", "app.localhost", "box.home.arpa", "srv.corp",
    "1.0.0.127.in-addr.arpa",
])
def test_internal_names_are_refused(host: str) -> None:
    with pytest.raises(UsageError, match="internal host"):
        check_callback_url(f"https://{host}/cb")


@pytest.mark.parametrize(("url", "why"), [
    ("http://hooks.example.com/x", "https"), ("ftp://example.com/x", "https"),
    ("hooks.example.com/x", "https"), ("https:///nohost", "no host"), ("https://:443/x", "no host"),
    ("https://example.com/" + "a" * 2048, "2048"),
    ("https://[fe80::1/cb", "not a valid URL"), ("https://[v1.fe]/cb", "not a valid URL"),
    ("https://[127.0.0.1]/cb", "not a valid URL"),
    ("https://exa mple.com/", "not a valid URL"), ("https://exa\tmple.com/", "not a valid URL"),
    ("https://example.com\\@127.0.0.1/", "not a valid URL"), ("https://example.com\n/", "not a valid URL"),
    ("https://example.com:99999/x", "not a valid URL"), ("https://example.com:abc/x", "not a valid URL"),
    ("https://1.2.3.4.5/x", "not a valid URL"), ("https://256.1.1.1/x", "not a valid URL"),
    ("https://127.0.0.256/x", "not a valid URL"), ("https://08.1.1.1/x", "not a valid URL"),
    ("https://127.0.0.1.2/x", "not a valid URL"), ("https://a.1/x", "not a valid URL"),
    ("https://%31%32%37.0.0.1/x", "not a valid URL"), ("https://a..b.com/x", "not a valid URL"),
    ("https://" + "a" * 64 + ".com/x", "not a valid URL"),
])
def test_bad_callbacks(url: str, why: str) -> None:
    with pytest.raises(UsageError, match=why) as info:
        check_callback_url(url)
    assert info.value.exit_code == 2
    assert "\n" not in info.value.message and info.value.hint


def test_callback_errors_name_the_option_they_were_given_as() -> None:
    with pytest.raises(UsageError, match="^callback_url 'https://127.1/x' is an internal address"):
        check_callback_url("https://127.1/x", option="callback_url")
    with pytest.raises(UsageError, match="^--callback-url "):
        check_callback_url("https://127.1/x")


def _request(video_urls: tuple[str, ...], **fields: Any) -> GenerationRequest:
    """The request of these options and videos (built as the engine builds it)."""
    return GenerationRequest(options=RequestOptions(**fields), video_urls=video_urls)


def test_request_body_is_exactly_what_the_api_takes() -> None:
    request = _request(prompt="wave", video_urls=(URL, URL), duration_s=10,
                                quality="1080p", aspect_ratio="9:16", shot_type="multi",
                                callback_url="https://hooks.example.com/cb")
    assert request.body() == {
        "model": "wan2.6-reference-video", "prompt": "wave", "video_urls": [URL, URL],
        "aspect_ratio": "9:16", "quality": "1080p", "duration": 10,
        "model_params": {"shot_type": "multi"}, "callback_url": "https://hooks.example.com/cb",
    }
    assert "callback_url" not in _request(prompt="w", video_urls=(URL,)).body()


@pytest.mark.parametrize(("fields", "match"), [
    ({"duration_s": 1}, "--duration 1"), ({"duration_s": 11}, "--duration 11"),
    ({"quality": "4k"}, "--quality"), ({"aspect_ratio": "2:1"}, "--aspect-ratio"),
    ({"shot_type": "montage"}, "--shot-type"), ({"video_urls": ("file:///a.mp4",)}, "http"),
    ({"video_urls": (URL,) * 4}, "not 4"), ({"prompt": "p" * 1501}, "1501"),
    ({"callback_url": "https://127.0.0.1/cb"}, "internal"),
])
def test_request_refuses_what_the_api_would(fields: dict[str, object], match: str) -> None:
    values: dict[str, object] = {"prompt": "wave", "video_urls": (URL,), **fields}
    with pytest.raises(UsageError, match=match):
        _request(**values)  # type: ignore[arg-type]


# -- the flash model's request ---------------------------------------------------------------------


def test_flash_body_sends_generate_audio_at_the_top_level() -> None:
    base = {"prompt": "A person waves", "video_urls": ("https://cdn.example.com/a.mp4",)}
    body = _request(**base, model=rules.FLASH_MODEL, generate_audio=False).body()  # type: ignore[arg-type]
    assert body["model"] == rules.FLASH_MODEL and body["generate_audio"] is False
    assert "generate_audio" not in body["model_params"]
    default = _request(**base, model=rules.FLASH_MODEL).body()  # type: ignore[arg-type]
    assert default["generate_audio"] is True  # the API's default, said out loud
    standard = _request(**base).body()  # type: ignore[arg-type]
    assert standard["model"] == rules.MODEL and "generate_audio" not in standard


@pytest.mark.parametrize(("model", "audio", "message"), [
    (rules.MODEL, False, "only for wan2.6-reference-video-flash"),
    (rules.MODEL, True, "only for wan2.6-reference-video-flash"),
    (rules.FLASH_MODEL, "no", "use true or false"),
    ("wan2.6-reference-video-turbo", None, "--model"),
])
def test_flash_request_refusals(model: str, audio: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _request(prompt="A person waves", video_urls=("https://cdn.example.com/a.mp4",),
                 model=model, generate_audio=audio)
