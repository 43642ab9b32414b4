"""The client's model tables and the sandbox's own agree on the shared cases (model_cases.py),
in pure arithmetic and through real sandbox tasks. The two sides share no code."""

from __future__ import annotations

from typing import Any

import mediagen
import pytest
from model_cases import MODEL_BILLS, MODEL_REFUSALS, ModelBill, ModelRefusal
from sandbox_util import client, error_of, tiny_clip, upload, wait_task

from prep.core import models
from prep.sandbox import Sandbox
from prep.sandbox.models import NEW_MODELS, charge_units
from prep.sandbox.validation import Invalid, parse_generation


@pytest.mark.parametrize("case", MODEL_BILLS, ids=lambda c: c.id)
def test_bill_client(case: ModelBill) -> None:
    spec = models.model_spec(case.model)
    assert models.bill(spec, case.videos_ms, output_s=case.output_s, quality=case.quality).units \
        == case.units


@pytest.mark.parametrize("case", MODEL_BILLS, ids=lambda c: c.id)
def test_bill_sandbox(case: ModelBill) -> None:
    assert charge_units(NEW_MODELS[case.model], case.videos_ms, case.output_s, case.quality) \
        == case.units


@pytest.mark.parametrize("case", MODEL_REFUSALS, ids=lambda c: c.id)
def test_refusal_client(case: ModelRefusal) -> None:
    problems = " | ".join(models.reference_problems(models.model_spec(case.model),
                                                    videos_ms=case.videos_ms, output_s=case.output_s))
    assert all(w in problems for w in case.words), problems


@pytest.mark.parametrize("name", sorted(NEW_MODELS))
def test_tables_agree_field_by_field(name: str) -> None:
    """Two copies written apart: every number each side enforces is the same."""
    ours, theirs = models.model_spec(name), NEW_MODELS[name]
    assert ours.videos.duration_ms is not None
    assert (ours.videos.count.high, ours.videos.duration_ms.low, ours.videos.duration_ms.high,
            ours.videos.total_ms, ours.clips_plus_output_max_ms, ours.output_max_with_videos_s) == (
        theirs.max_videos, theirs.video_min_ms, theirs.video_max_ms, theirs.videos_total_max_ms,
        theirs.videos_plus_output_max_ms, theirs.output_with_videos_max_s)
    assert (ours.prompt_chars, ours.prompt_required, ours.negative_prompt_chars) == (
        theirs.prompt_max_chars, theirs.prompt_required, theirs.negative_prompt_max_chars)
    assert (ours.durations_s.low, ours.durations_s.high, ours.default_duration_s, ours.smart_duration) == (
        theirs.output_min_s, theirs.output_max_s, theirs.output_default_s, theirs.smart_duration)
    assert (ours.qualities, ours.default_quality, ours.aspect_ratios, ours.default_aspect_ratio) == (
        theirs.qualities, theirs.quality_default, theirs.aspect_ratios, theirs.aspect_ratio_default)
    assert ours.seed is not None and (ours.seed.low, ours.seed.high) == (theirs.seed_min, theirs.seed_max)
    assert (ours.takes("prompt_extend"), ours.takes("generate_audio"), ours.takes("voice_bindings")) == (
        theirs.prompt_extend, theirs.generate_audio, theirs.voice_bindings)
    assert ours.images is not None and ours.images.count.high == theirs.max_images
    assert (ours.audio.count.high if ours.audio else 0) == theirs.max_audio
    assert ours.bad_request_code == theirs.error_code
    bill = ours.billing
    assert (bill.units_per_second, dict(bill.quality_multipliers), bill.minimum_units, bill.smart_hold_s) == (
        theirs.units_per_second, theirs.quality_factor, theirs.minimum_units, theirs.smart_hold_s)


def _body(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "prompt": "Video 1 waves hello", **fields}


def test_sandbox_parses_each_model_by_its_own_page() -> None:
    url = "https://files.example.com/a.mp4"
    req = parse_generation(_body("wan3.0-reference-video", video_urls=[url], duration=-1,
                                 quality="480p", aspect_ratio="adaptive", seed=0,
                                 generate_audio=False, image_urls=[url.replace("mp4", "png")]))
    assert (req.duration_s, req.quality, req.aspect_ratio, req.seed, req.generate_audio) == (
        -1, "480p", "adaptive", 0, False)
    with pytest.raises(Invalid) as err:
        parse_generation(_body("wan3.0-reference-video", negative_prompt="blur"))
    assert err.value.code == "invalid_parameter"
    with pytest.raises(Invalid, match="with reference videos"):
        parse_generation(_body("wan2.7-reference-video", video_urls=[url], duration=11))
    req = parse_generation(_body("wan2.7-reference-video", video_urls=[url], negative_prompt="blur",
                                 prompt_extend=True,
                                 model_params={"voice_bindings": {"video1": "https://x.example/v.mp3"}}))
    assert req.voice_bindings == (("video1", "https://x.example/v.mp3"),)
    for key, words in (("img1", "invalid"), ("video01", "invalid"), ("video2", "out of range")):
        with pytest.raises(Invalid, match=words):
            parse_generation(_body("wan2.7-reference-video", video_urls=[url],
                                   model_params={"voice_bindings": {key: "https://x.example/v.mp3"}}))
    with pytest.raises(Invalid, match="image_urls is not a parameter"):
        parse_generation(_body("wan2.6-reference-video", video_urls=[url], image_urls=[url]))
    with pytest.raises(Invalid, match="is not supported by this endpoint .the models served") as err:
        parse_generation(_body("seedance-1.5-pro"))  # not "video_urls is required"
    assert err.value.code == "invalid_request"
    # wan3.0 needs no prompt when a reference is given; wan2.7 needs one
    assert parse_generation({"model": "wan3.0-reference-video", "video_urls": [url]}).prompt == ""
    with pytest.raises(Invalid, match="prompt is required"):
        parse_generation({"model": "wan2.7-reference-video", "video_urls": [url]})


def _create(sandbox: Sandbox, body: dict[str, Any]) -> Any:
    with client(sandbox) as http:
        return http.post("/v1/videos/generations", json=body)


@pytest.mark.media
@pytest.mark.parametrize(("model", "duration", "quality"), [
    ("wan3.0-reference-video", 5, "720p"), ("wan3.0-reference-video", -1, "1080p"),
    ("wan3.0-prime-reference-video", 4, "480p"), ("wan2.7-reference-video", 5, "1080p")])
def test_sandbox_reserves_exactly_prep_estimate(sandbox: Sandbox, model: str, duration: int,
                                                quality: str) -> None:
    from prep.media.probe import probe

    clip = tiny_clip(3)
    url = upload(sandbox, clip)["file_url"]
    answer = _create(sandbox, _body(model, video_urls=[url], duration=duration, quality=quality))
    assert answer.status_code == 200, answer.text
    spec = models.model_spec(model)
    estimate = models.bill(spec, [probe(clip).duration_ms], output_s=duration, quality=quality)
    assert answer.json()["usage"]["credits_reserved"] == estimate.hold_units / 10_000
    done = wait_task(sandbox, answer.json()["id"])
    assert done["status"] == "completed"
    if duration == -1:  # held at 30 s, charged for the seconds made
        made = done["task_info"]["video_duration"]
        assert 2 <= made <= 27


@pytest.mark.media
def test_sandbox_refuses_the_cross_field_caps(sandbox: Sandbox) -> None:
    ten = upload(sandbox, tiny_clip(10, name="sandbox-ten"))["file_url"]
    eight = upload(sandbox, tiny_clip(8, name="sandbox-eight"))["file_url"]
    over = _create(sandbox, _body("wan3.0-reference-video", video_urls=[ten], duration=21))
    assert over.status_code == 400 and error_of(over)["code"] == "invalid_parameter"
    assert "more than 30 s" in error_of(over)["message"]
    total = _create(sandbox, _body("wan3.0-reference-video", video_urls=[eight, eight]))
    assert total.status_code == 400 and "at most 15 s" in error_of(total)["message"]
    long_ = upload(sandbox, tiny_clip(16, name="sandbox-sixteen"))["file_url"]
    one = _create(sandbox, _body("wan3.0-reference-video", video_urls=[long_]))
    assert one.status_code == 400 and "1 to 15 seconds" in error_of(one)["message"]
    ok = _create(sandbox, _body("wan2.6-reference-video", video_urls=[long_]))
    assert ok.status_code == 200, ok.text  # the same 16 s clip is fine for wan2.6


@pytest.mark.media
def test_sandbox_takes_images_and_audio(sandbox: Sandbox) -> None:
    png = mediagen.make("still", ["-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1"],
                        suffix=".png")
    mp3 = mediagen.make("voice", ["-f", "lavfi", "-i", "sine=frequency=300:duration=3",
                                  "-c:a", "libmp3lame"], suffix=".mp3")
    m4a = mediagen.make("music", ["-f", "lavfi", "-i", "sine=frequency=300:duration=3",
                                  "-c:a", "aac"], suffix=".m4a")
    image = upload(sandbox, png)
    sound = upload(sandbox, mp3)
    assert (image["mime_type"], sound["mime_type"], upload(sandbox, m4a)["mime_type"]) == (
        "image/png", "audio/mpeg", "audio/mp4")
    clip = upload(sandbox, tiny_clip(3))["file_url"]
    answer = _create(sandbox, _body("wan3.0-reference-video", video_urls=[clip],
                                    image_urls=[image["file_url"]], audio_urls=[sound["file_url"]]))
    assert answer.status_code == 200, answer.text
    voiced = _create(sandbox, _body("wan2.7-reference-video", video_urls=[clip],
                                    model_params={"voice_bindings": {"video1": sound["file_url"]}}))
    assert voiced.status_code == 200, voiced.text
    wrong = _create(sandbox, _body("wan3.0-reference-video", image_urls=[sound["file_url"]]))
    assert wrong.status_code == 400 and "not an image" in error_of(wrong)["message"]


@pytest.mark.media
def test_sandbox_uploads_from_a_url(sandbox: Sandbox) -> None:
    first = upload(sandbox, tiny_clip(3))
    with client(sandbox) as http:
        copied = http.post("/api/v1/files/upload/url", json={"file_url": first["file_url"],
                                                             "file_name": "copy.mp4"})
        assert copied.status_code == 200, copied.text
        assert copied.json()["data"]["file_size"] == first["file_size"]
        far = http.post("/api/v1/files/upload/url", json={"file_url": "https://example.com/a.mp4"})
        assert far.status_code == 400 and "127.0.0.1" in far.json()["msg"]
