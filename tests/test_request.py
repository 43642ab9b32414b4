"""Local validation of the generation request: every rule, before anything is sent."""

from __future__ import annotations

from fractions import Fraction

import pytest

from prep.core import rules
from prep.core.request import (
    GenerationRequest,
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
    with pytest.raises(UsageError, match=f"not {count}") as info:
        check_clip_count(count)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(("aspects", "ratio"), [
    ([Fraction(16, 9)], "16:9"), ([Fraction(9, 16)], "9:16"), ([Fraction(1)], "1:1"),
    ([Fraction(4, 3)], "4:3"), ([Fraction(3, 4)], "3:4"), ([Fraction(1920, 800)], "16:9"),
    ([Fraction(1080, 1350)], "3:4"), ([Fraction(16, 9), Fraction(9, 16)], "1:1"), ([], "16:9"),
    ([Fraction(5, 4)], "4:3"),
])
def test_auto_aspect_picks_the_nearest_allowed_ratio(aspects: list[Fraction], ratio: str) -> None:
    assert nearest_aspect_ratio(aspects) == ratio
    assert resolve_aspect_ratio("auto", aspects) == ratio


def test_aspect_ratio_values() -> None:
    assert resolve_aspect_ratio(None) == rules.DEFAULT_ASPECT_RATIO
    assert resolve_aspect_ratio("9:16") == "9:16"
    with pytest.raises(UsageError, match="21:9"):
        resolve_aspect_ratio("21:9")


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/prep", "https://203.0.113.9.nip.io/x", "https://8.8.8.8/cb",
    "https://example.com:8443/a?b=c",
])
def test_good_callbacks(url: str) -> None:
    assert check_callback_url(url) == url


@pytest.mark.parametrize(("url", "why"), [
    ("http://hooks.example.com/x", "https"), ("ftp://example.com/x", "https"),
    ("https://localhost/x", "internal"), ("https://LOCALHOST./x", "internal"),
    ("https://127.0.0.1/x", "internal"), ("https://127.1.2.3:8443/x", "internal"),
    ("https://10.0.0.5/x", "internal"), ("https://172.16.0.1/x", "internal"),
    ("https://172.31.255.255/x", "internal"), ("https://192.168.1.1/x", "internal"),
    ("https://169.254.169.254/latest", "internal"), ("https://[::1]/x", "internal"),
    ("https://[fd00::1]/x", "internal"), ("https://[::ffff:10.0.0.1]/x", "internal"),
    ("https://0.0.0.0/x", "internal"), ("https://2130706433/x", "internal"),
    ("https://printer.local/x", "internal"), ("https://db.internal/x", "internal"),
    ("https://intranet/x", "internal"), ("https:///nohost", "no host"),
    ("https://example.com/" + "a" * 2048, "2048"),
])
def test_bad_callbacks(url: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        check_callback_url(url)


def test_request_body_is_exactly_what_the_api_takes() -> None:
    request = GenerationRequest(prompt="wave", video_urls=(URL, URL), duration_s=10,
                                quality="1080p", aspect_ratio="9:16", shot_type="multi",
                                callback_url="https://hooks.example.com/cb")
    assert request.body() == {
        "model": "wan2.6-reference-video", "prompt": "wave", "video_urls": [URL, URL],
        "aspect_ratio": "9:16", "quality": "1080p", "duration": 10,
        "model_params": {"shot_type": "multi"}, "callback_url": "https://hooks.example.com/cb",
    }
    assert "callback_url" not in GenerationRequest(prompt="w", video_urls=(URL,)).body()


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
        GenerationRequest(**values)  # type: ignore[arg-type]
