"""The model tables against the spec's own worked examples (evolink-api.md sections 1, 5 and 7).

Every expected number here is hand arithmetic from the spec, not prep's output.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prep.core import models, rules
from prep.core.clipinfo import ClipInfo, assess
from prep.errors import UsageError

W26, FLASH, W27, W30, PRIME = (rules.MODEL, rules.FLASH_MODEL, "wan2.7-reference-video",
                               "wan3.0-reference-video", "wan3.0-prime-reference-video")

# (model, clip ms, output s, quality, audio, expected units, why)
BILLS = [
    (W26, [8_000], 5, "720p", True, 476_000, "1 clip >= 5 s + 5 s at 720p = 10 s x 47,600"),
    (W26, [8_000], 5, "1080p", True, 794_920, "10 s x 1.67 x 47,600"),
    (W26, [3_000, 3_000, 3_000], 2, "720p", True, 330_820, "3 x 1.65 + 2 = 6.95 s x 47,600"),
    (FLASH, [2_000], 2, "720p", False, 90_000, "4 s x 11,900 = 47,600 < the 9-credit minimum"),
    (FLASH, [8_000], 5, "720p", True, 238_000, "10 s x 23,800"),
    (W27, [8_000], 5, "720p", True, 544_000, "(min(8, 5) + 5) x 54,400"),
    (W27, [4_000, 6_000], 5, "1080p", True, 908_480, "(min(10, 5) + 5) x 1.67 x 54,400"),
    (W27, [2_000, 8_000], 5, "720p", True, 544_000, "total cap: 5 s of input, not 2 + 2.5"),
    (W30, [8_000], 5, "720p", True, 663_000, "(8 + 5) x 2 x 25,500"),
    (W30, [4_000, 6_000], 5, "1080p", True, 1_530_000, "(4 + 6 + 5) x 4 x 25,500"),
    (W30, [8_000], 5, "720p", False, 663_000, "no audio: same price"),
    (W30, [1_200], 2, "480p", True, 81_600, "3.2 s x 25,500"),
    (PRIME, [8_000], 5, "720p", True, 1_052_561, "26.78 s x 39,304 = 1,052,561.12"),
    (PRIME, [4_000, 6_000], 5, "1080p", True, 2_428_987, "61.8 s x 39,304 = 2,428,987.2"),
    (W30, [8_000], -1, "720p", True, 1_938_000, "smart duration holds (8 + 30) x 2 x 25,500"),
    (PRIME, [8_000], -1, "720p", True, 3_076_717, "(8 + 30) x 2.06 x 39,304 = 3,076,717.12"),
]


@pytest.mark.parametrize(("model", "clips", "output_s", "quality", "audio", "units", "why"), BILLS,
                         ids=[f"{b[0]}-{b[6]}" for b in BILLS])
def test_bill_matches_the_spec(model: str, clips: list[int], output_s: int, quality: str, audio: bool,
                               units: int, why: str) -> None:
    spec = models.model_spec(model)
    assert models.reference_problems(spec, videos_ms=clips, output_s=output_s) == []
    assert models.bill(spec, clips, output_s=output_s, quality=quality, audio=audio).units == units, why


def test_minimum_binds_only_where_the_spec_says() -> None:
    flash = models.bill(models.model_spec("flash"), [2_000], output_s=2, quality="720p", audio=False)
    assert flash.minimum_applied
    for spec in models.MODELS:  # each new model's minimum is 2 s of output at its lowest quality
        if spec.legacy:
            continue
        lowest = spec.qualities[0]
        two_seconds = models.bill(spec, [], output_s=2, quality=lowest) if spec.videos.count.low == 0 \
            else None
        assert two_seconds is not None and not two_seconds.minimum_applied
        assert two_seconds.units == spec.billing.minimum_units


@pytest.mark.parametrize(("alias", "model"), [
    ("2.6", W26), ("flash", FLASH), ("2.7", W27), ("3.0", W30), ("3.0-prime", PRIME),
    (W30, W30), (" WAN3.0 ", W30), ("prime", PRIME)])
def test_aliases(alias: str, model: str) -> None:
    assert models.model_spec(alias).id == model


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as err:
        models.model_spec("seedance-1.5-pro")
    assert err.value.exit_code == 2
    assert all(m.id in str(err.value) for m in models.MODELS)


# (model, clip ms, output s, words that must be in the one problem)
REFUSALS = [
    (W26, [1_200], 5, ["video 1 is 1.2 s", "2-30 s"]),
    (W30, [20_000], 5, ["video 1 is 20 s", "1-15 s"]),
    (W30, [8_000, 8_000], 5, ["total 16 s", "at most 15 s", "cut 1 s"]),
    (W30, [10_000], 21, ["come to 31 s", "at most 30 s", "cut 1 s"]),
    (W27, [8_000], 11, ["at most 10 s of output"]),
    (W26, [3_000] * 4, 5, ["1-3 video references, not 4"]),
    (W26, [3_000], 11, ["2-10 s of output, not 11 s"]),
    (W26, [3_000], -1, ["no smart duration"]),
]


@pytest.mark.parametrize(("model", "clips", "output_s", "words"), REFUSALS)
def test_refusals_name_the_limit(model: str, clips: list[int], output_s: int, words: list[str]) -> None:
    problems = models.reference_problems(models.model_spec(model), videos_ms=clips, output_s=output_s)
    assert len(problems) == 1, problems
    assert all(w in problems[0] for w in words), problems[0]


def test_the_same_clip_on_each_model() -> None:
    # A 1.2 s clip: refused by wan2.6, taken by wan3.0; a 20 s clip: the other way round.
    short, long_ = [1_200], [20_000]
    assert models.reference_problems(models.model_spec("2.6"), videos_ms=short)
    assert not models.reference_problems(models.model_spec("3.0"), videos_ms=short)
    assert not models.reference_problems(models.model_spec("2.6"), videos_ms=long_)
    assert models.reference_problems(models.model_spec("3.0"), videos_ms=long_)


def test_other_kinds_of_reference() -> None:
    w26, w27, w30 = (models.model_spec(m) for m in ("2.6", "2.7", "3.0"))
    assert models.reference_problems(w26, videos_ms=[3_000], images=1) == [
        f"{W26} takes no image references (drop them, or choose a model that does)"]
    assert models.reference_problems(w27, videos_ms=[], images=1) == []
    assert models.reference_problems(w27, videos_ms=[], images=0)  # wan2.7 needs one reference
    assert models.reference_problems(w27, videos_ms=[3_000], voices_ms=[11_000])
    assert models.reference_problems(w30, videos_ms=[], audio_ms=[8_000, 8_000])  # 16 s of audio
    assert models.reference_problems(w30, videos_ms=[], audio_ms=[8_000]) == []


def test_request_fields_each_model_takes() -> None:
    w26, flash, w27, w30 = (models.model_spec(m) for m in ("2.6", "flash", "2.7", "3.0"))
    assert not w26.takes("generate_audio") and flash.takes("generate_audio") and w30.takes("generate_audio")
    assert w27.takes("negative_prompt") and not w30.takes("negative_prompt")
    assert w27.takes("prompt_extend") and not w30.takes("prompt_extend")
    assert w27.takes("voice_bindings") and not w30.takes("voice_bindings")
    assert w26.takes("shot_type") and not w27.takes("shot_type")
    assert "480p" in w30.qualities and "480p" not in w27.qualities
    assert w30.default_aspect_ratio == "adaptive"
    assert w27.seed is not None and w27.seed.low == 1 and w30.seed is not None and w30.seed.low == 0
    assert w27.reference_name("video", 0) == "Video 1" and w30.reference_name("audio", 1) == "Audio 2"


def test_compare_prices_the_same_clips_on_every_model() -> None:
    # One 20 s clip, 5 s of output at 720p, by hand from the spec:
    rows = {(r.model, r.audio): r for r in models.compare([20_000], output_s=5, quality="720p")}
    assert rows[(W26, None)].bill is not None and rows[(W26, None)].bill.units == 476_000
    assert rows[(FLASH, True)].bill is not None and rows[(FLASH, True)].bill.units == 238_000
    assert rows[(FLASH, False)].bill is not None and rows[(FLASH, False)].bill.units == 119_000
    assert rows[(W27, None)].bill is not None and rows[(W27, None)].bill.units == 544_000
    w30 = rows[(W30, True)]
    assert w30.cuts == ("clip 1 cut from 20 s to 15 s",)
    assert w30.bill is not None and w30.bill.units == 1_020_000  # (15 + 5) x 2 x 25,500
    assert rows[(PRIME, True)].bill is not None
    assert rows[(PRIME, True)].bill.units == 1_619_325  # 20 x 2.06 x 39,304 = 1,619,324.8


def test_compare_says_why_a_model_refuses() -> None:
    rows = {r.model: r for r in models.compare([1_200], output_s=5, quality="480p")}
    assert rows[W26].bill is None and any("1.2 s" in p for p in rows[W26].problems)
    assert any("not 480p" in p for p in rows[W26].problems)
    assert rows[W30].bill is not None and rows[W30].bill.units == 158_100  # 6.2 x 25,500
    rows = {r.model: r for r in models.compare([10_000, 10_000], output_s=10, quality="720p")}
    assert rows[W30].bill is None and any("cut 5 s" in p for p in rows[W30].problems)


def _clip(duration_ms: int, width: int = 1280, height: int = 720) -> ClipInfo:
    return ClipInfo(path=Path("take.mp4"), size_bytes=1_000_000, container="mp4",
                    container_format="MPEG-4", duration_ms=duration_ms, video_duration_ms=duration_ms,
                    audio_duration_ms=duration_ms, video_codec="h264", video_profile="High",
                    width=width, height=height, audio_codec="aac")


@pytest.mark.parametrize(("model", "duration_ms", "size", "words"), [
    ("2.6", 1_200, (1280, 720), "the API needs at least 2.0 s"),
    ("3.0", 1_200, (1280, 720), None),
    ("2.6", 20_000, (1280, 720), None),
    ("3.0", 20_000, (1280, 720), "wan3.0-reference-video takes at most 15.0 s"),
    ("2.7", 31_000, (1280, 720), "wan2.7-reference-video takes at most 30.0 s"),
    ("2.7", 5_000, (160, 120), "240-4096 px a side"),
    ("2.6", 5_000, (160, 120), None),  # wan2.6 states no pixel range
    ("3.0", 5_000, (4000, 400), "beyond wan3.0-reference-video's 1:8 to 8:1"),
])
def test_the_probe_verdict_is_per_model(model: str, duration_ms: int, size: tuple[int, int],
                                        words: str | None) -> None:
    verdict = assess(_clip(duration_ms, *size), models.model_spec(model))
    assert verdict.compliant == (words is None), verdict.problems
    if words:
        assert any(words in p for p in verdict.problems), verdict.problems
