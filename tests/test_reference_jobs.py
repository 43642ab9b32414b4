"""Images, standalone audio and voices in jobs, end to end on the sandbox: given as files or made
from footage, judged before anything is encoded or uploaded, uploaded and journaled like clips,
sent as the model's OpenAPI document spells them, and never uploaded or paid twice on a re-run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mediagen
import pytest
from click.testing import CliRunner
from test_engine import PROMPT, Env, _interrupt_at
from test_schema import invalid, validate

from prep.core import models
from prep.core.references import ReferenceSpec, check_references
from prep.core.request import GenerationRequest, RequestOptions
from prep.errors import Interrupted, UsageError
from prep.jobs.generate import GenerateOptions, generate
from prep.jobs.recover import fingerprint
from prep.ui.cli import cli

WAN27 = "wan2.7-reference-video"
WAN30 = "wan3.0-reference-video"


# Every test here runs on the engine's test bench: conftest.py's `fast` and `env`.
pytestmark = pytest.mark.usefixtures("fast")


def _still(name: str = "still", size: str = "320x240", fmt: str = "rgb24") -> Path:
    return mediagen.make(f"ref-{name}", ["-f", "lavfi", "-i", f"testsrc2=size={size}",
                                         "-frames:v", "1", "-pix_fmt", fmt], suffix=".png")


def _sound(name: str = "sound", seconds: float = 3) -> Path:
    return mediagen.make(f"ref-{name}", ["-f", "lavfi", "-i",
                                         f"sine=frequency=300:duration={seconds}",
                                         "-c:a", "libmp3lame"], suffix=".mp3")


def _sent(env: Env) -> dict[str, Any]:
    [task] = env.tasks()
    return task


def _cli(env: Env, *args: str) -> Any:
    argv = ["generate", *args, "-o", str(env.out), "-y", "--json", "--api-key", env.sb.key,
            "--base-url", env.sb.url, "--files-url", env.sb.files_url, "--no-check"]
    return CliRunner().invoke(cli, argv, env={"PREP_CACHE_DIR": str(env.tmp / "cache")})


# -- pure: the body and the checks -----------------------------------------------------------------


def test_the_body_carries_images_audio_and_voice_bindings_as_the_openapi_documents_say() -> None:
    video, image, sound = "https://x.example/v.mp4", "https://x.example/i.png", "https://x.example/a.mp3"
    body = GenerationRequest(options=RequestOptions(prompt="p", model="3.0"), video_urls=(video,),
                             image_urls=(image,), audio_urls=(sound,)).body()
    assert (body["video_urls"], body["image_urls"], body["audio_urls"]) == ([video], [image], [sound])
    assert "model_params" not in body
    body = GenerationRequest(options=RequestOptions(prompt="p", model="2.7"), video_urls=(video,),
                             voice_bindings=(("video1", sound),)).body()
    assert body["model_params"] == {"voice_bindings": {"video1": sound}} and "audio_urls" not in body
    # Without references the body is what it always was (the fingerprint of old jobs holds).
    plain = GenerationRequest(options=RequestOptions(prompt="p"), video_urls=(video,)).body()
    assert set(plain) == {"prompt", "video_urls", "duration", "quality", "aspect_ratio", "model",
                          "model_params"}


def test_the_fingerprint_names_references_by_content_not_url() -> None:
    body = {"prompt": "p", "video_urls": ["https://a/1"], "image_urls": ["https://a/2"],
            "model_params": {"voice_bindings": {"video1": "https://a/3"}}}
    moved = {**body, "image_urls": ["https://b/2"],
             "model_params": {"voice_bindings": {"video1": "https://b/3"}}}
    assert fingerprint(body, ["c", "i", "v"]) == fingerprint(moved, ["c", "i", "v"])
    assert fingerprint(body, ["c", "i", "v"]) != fingerprint(body, ["c", "other", "v"])
    rebound = {**body, "model_params": {"voice_bindings": {"image1": "https://a/3"}}}
    assert fingerprint(body, ["c", "i", "v"]) != fingerprint(rebound, ["c", "i", "v"])


@pytest.mark.parametrize(("model", "refs", "videos", "words"), [
    ("2.6", [ReferenceSpec(kind="image", path=Path("s.png"))], 1,
     "--image is not taken by wan2.6-reference-video"),
    ("3.0", [ReferenceSpec(kind="voice", path=Path("v.wav"), binds="video1")], 1,
     "--voice is not taken by wan3.0-reference-video"),
    ("2.7", [ReferenceSpec(kind="audio", path=Path("a.mp3"))], 1,
     "--audio-ref is not taken by wan2.7-reference-video"),
    ("2.7", [ReferenceSpec(kind="image", path=Path(f"{i}.png")) for i in range(3)], 3,
     "3 clips and 3 images; wan2.7-reference-video takes 1-5 of them together"),
    ("2.7", [ReferenceSpec(kind="voice", path=Path("v.wav"), binds="video2")], 1,
     "the voice binds to video2, but the job has 1 video"),
    ("2.7", [ReferenceSpec(kind="voice", path=Path("v.wav"), binds="video01")], 1,
     "the voice binds to 'video01', not a reference"),
    ("2.7", [ReferenceSpec(kind="voice", path=Path(f"{i}.wav"), binds="video1") for i in range(2)], 2,
     "two voices bind to video1"),
    ("3.0", [ReferenceSpec(kind="audio", path=Path(f"{i}.mp3")) for i in range(6)], 1,
     "6 --audio-ref references; wan3.0-reference-video takes at most 5"),
])
def test_reference_sets_the_model_refuses(model: str, refs: list[ReferenceSpec], videos: int,
                                          words: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_references(models.model_spec(model), refs, videos)
    assert words in caught.value.message


def test_a_manifest_names_the_column() -> None:
    with pytest.raises(UsageError, match="^image is not taken by wan2.6"):
        check_references(models.model_spec("2.6"), [ReferenceSpec(kind="image", path=Path("s.png"))],
                         1, manifest=True)


# -- end to end on the sandbox ---------------------------------------------------------------------


@pytest.mark.media
@pytest.mark.sandbox
def test_a_wan30_job_with_an_image_and_an_audio_reference(env: Env) -> None:
    still, sound = _still(), _sound()
    result = _cli(env, str(env.clip()), "-p", "Video 1 talks to Image 1 over Audio 1", "--model", "3.0",
                  "--image", str(still), "--audio-ref", str(sound))
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    validate("generate", answer)
    assert [(r["kind"], r["format"]) for r in answer["references"]] == [("image", "png"),
                                                                         ("audio", "mp3")]
    body = answer["request"]
    assert len(body["image_urls"]) == 1 and len(body["audio_urls"]) == 1
    assert body["image_urls"][0] == answer["references"][0]["file_url"]
    task = _sent(env)
    assert task["model"] == WAN30 and env.uploads() == 3
    # References are not billed on wan3.0: the bill is the clip's and the output's.
    assert answer["credits_estimated_units"] == task["credits_units"]

    again = _cli(env, str(env.clip()), "-p", "Video 1 talks to Image 1 over Audio 1", "--model",
                 "3.0", "--image", str(still), "--audio-ref", str(sound))
    assert again.exit_code == 0, again.stderr
    assert env.uploads() == 3 and len(env.tasks()) == 1  # nothing uploaded or paid twice


@pytest.mark.media
@pytest.mark.sandbox
def test_a_killed_run_resumes_without_a_second_upload_or_task(env: Env) -> None:
    still = _still()
    options = GenerateOptions(request=RequestOptions(prompt=PROMPT, model="3.0"), out_dir=env.out,
                              references=(ReferenceSpec(kind="image", path=still),), check=False)
    from prep.jobs import engine

    real = engine.RunHooks

    def stopping(**kw: Any) -> engine.RunHooks:
        hooks = real(**kw)
        hooks.on_state = _interrupt_at("running").on_state
        return hooks

    engine.RunHooks = stopping  # type: ignore[misc]
    try:
        with pytest.raises(Interrupted):
            generate([env.clip()], options, env.settings())
    finally:
        engine.RunHooks = real  # type: ignore[misc]
    assert env.uploads() == 2 and len(env.tasks()) == 1
    result = generate([env.clip()], options, env.settings())
    assert result.resumed and result.exit_code == 0
    assert env.uploads() == 2 and len(env.tasks()) == 1
    assert result.request is not None and len(result.request["image_urls"]) == 1
    # Another image is another job (its name and its request's fingerprint are the content's).
    other = GenerateOptions(request=RequestOptions(prompt=PROMPT, model="3.0"), out_dir=env.out,
                            references=(ReferenceSpec(kind="image", path=_still("other", "400x300")),),
                            check=False)
    changed = generate([env.clip()], other, env.settings())
    assert changed.job != result.job and len(env.tasks()) == 2


@pytest.mark.media
@pytest.mark.sandbox
def test_a_wan27_job_with_a_voice_made_from_footage(env: Env) -> None:
    pytest.importorskip("cv2")
    from pickmedia import interview

    footage = interview()
    result = _cli(env, str(env.clip()), "-p", "Video 1 speaks", "--model", "2.7",
                  "--voice-from", str(footage), "--duration", "5")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    [voice] = answer["references"]
    made = Path(voice["path"])
    assert voice["kind"] == "voice" and voice["binds"] == "video1" and voice["format"] == "wav"
    assert made.parent == env.out / "references" and 1.0 <= voice["duration_s"] <= 10.0
    assert answer["request"]["model_params"]["voice_bindings"] == {"video1": voice["file_url"]}
    assert _sent(env)["model"] == WAN27
    stamp = made.stat().st_mtime_ns
    again = _cli(env, str(env.clip()), "-p", "Video 1 speaks", "--model", "2.7",
                 "--voice", str(footage), "--duration", "5")  # a clip given as --voice: the same
    assert again.exit_code == 0, again.stderr
    assert made.stat().st_mtime_ns == stamp and len(env.tasks()) == 1 and env.uploads() == 2


@pytest.mark.media
@pytest.mark.sandbox
@pytest.mark.parametrize(("args", "words"), [
    (["--model", "2.6", "--image", "STILL"], "--image is not taken by wan2.6-reference-video"),
    (["--model", "2.7", "--voice", "LONG"], "takes 1.0 to 10.0 s voices"),
    (["--model", "3.0", "--image", "ALPHA"], "has transparency"),
    (["--model", "3.0", "--image", "TINY"], "is 100x100; wan3.0-reference-video takes 240-8000 px"),
])
def test_refusals_exit_2_with_nothing_uploaded_or_left_behind(env: Env, args: list[str],
                                                              words: str) -> None:
    files = {"STILL": _still(), "LONG": _sound("long", 12), "ALPHA": _still("alpha", fmt="rgba"),
             "TINY": _still("tiny", "100x100")}
    result = _cli(env, str(env.clip()), "-p", "x", *[str(files.get(a, a)) for a in args])
    assert result.exit_code == 2, result.stderr
    assert words in json.loads(result.stdout)["error"]
    assert env.uploads() == 0 and env.tasks() == [] and not env.encoder.calls
    assert not env.out.exists() or not any(env.out.iterdir())


def test_a_refused_reference_is_said_before_any_clip_is_checked(env: Env) -> None:
    from fake_encoder import fake_info, mp4_duration_ms

    from prep.jobs.planning import plan_job

    job = env.job("one", model="3.0",
                  references=(ReferenceSpec(kind="image", path=_still("tiny", "100x100")),))
    infos = {c.path: fake_info(c.path, mp4_duration_ms(c.path)) for c in job.clips}

    def checker(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the reference check decoded a clip of a job the model refuses")

    with pytest.raises(UsageError, match="is 100x100"):
        plan_job(job, infos, checker=checker)


# -- the batch manifest ----------------------------------------------------------------------------


def test_manifest_columns_are_read_and_validated(tmp_path: Path) -> None:
    from prep.jobs.manifest import parse_manifest

    text = ("name,clips,prompt,model,image,audio,voice\n"
            "a,a.mp4,p,3.0,s1.png;s2.png,v.mp3,\n"
            "b,a.mp4;b.mp4,p,2.7,,,one.wav@video2;two.wav@video1\n"
            "c,a.mp4;b.mp4,p,2.7,,,one.wav@video2;two.wav\n"
            "d,a.mp4,p,2.6,s1.png,,\n"
            "e,a.mp4,p,2.7,,,one.wav@video3\n")
    manifest = parse_manifest(text, fmt="csv", base_dir=tmp_path)
    a, b = manifest.jobs
    assert [(r.kind, r.path.name) for r in a.references] == [("image", "s1.png"), ("image", "s2.png"),
                                                             ("audio", "v.mp3")]
    assert [(r.path, r.binds) for r in b.references] == [(tmp_path / "one.wav", "video2"),
                                                         (tmp_path / "two.wav", "video1")]
    assert [p.line for p in manifest.problems] == [4, 5, 6]
    messages = [p.message for p in manifest.problems]
    assert "two voices bind to video2" in messages[0]  # the second voice's default is video2
    assert messages[1].startswith("image is not taken by wan2.6-reference-video")
    assert "binds to video3, but the job has 1 video" in messages[2]
    jsonl = ('{"name": "v", "clips": ["a.mp4", "b.mp4"], "prompt": "p", "model": "2.7", '
             '"voice": [{"path": "x.wav", "for": "video2"}, "y.wav@video1"]}\n'
             '{"name": "w", "clips": ["a.mp4"], "prompt": "p", "model": "2.7", '
             '"voice": [{"path": "x.wav", "to": "video1"}]}\n')
    parsed = parse_manifest(jsonl, fmt="jsonl", base_dir=tmp_path)
    [job] = parsed.jobs
    assert [(r.path.name, r.binds) for r in job.references] == [("x.wav", "video2"), ("y.wav", "video1")]
    assert "unknown key 'to'" in parsed.problems[0].message


@pytest.mark.media
def test_batch_dry_run_lists_the_references_and_refuses_a_bad_one(tmp_path: Path) -> None:
    take = mediagen.clip("ref-take", seconds=3, size="320x240")
    still, tiny = _still(), _still("tiny", "100x100")
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(json.dumps({"name": "one", "clips": [str(take)], "prompt": "Image 1 waves",
                                    "model": "3.0", "image": [str(still)]}) + "\n")
    result = CliRunner().invoke(cli, ["batch", str(manifest), "--dry-run", "--json", "--no-check"])
    assert result.exit_code == 0, result.stderr
    validate("batch-dry-run", json.loads(result.stdout))
    [job] = json.loads(result.stdout)["jobs"]
    assert [(r["kind"], r["format"], r["width"]) for r in job["references"]] == [("image", "png", 320)]
    row = json.loads(manifest.read_text())
    validate("manifest", {**row, "voice": ["v.wav@video1", {"path": "w.wav", "for": "image1"}]})
    assert invalid("manifest", {**row, "voice": [{"path": "w.wav", "for": "video01"}]})
    manifest.write_text(json.dumps({"name": "one", "clips": [str(take)], "prompt": "Image 1 waves",
                                    "model": "3.0", "image": [str(tiny)]}) + "\n")
    result = CliRunner().invoke(cli, ["batch", str(manifest), "--dry-run", "--json", "--no-check"])
    assert result.exit_code == 2
    [problem] = json.loads(result.stdout)["problems"]
    assert "is 100x100; wan3.0-reference-video takes 240-8000 px a side (resize it)" in problem["message"]


@pytest.mark.media
@pytest.mark.sandbox
def test_a_batch_uploads_an_image_two_jobs_share_once(env: Env) -> None:
    still = (ReferenceSpec(kind="image", path=_still()),)
    plan = env.plan(env.job("one", model="3.0", references=still),
                    env.job("two", model="3.0", prompt=PROMPT + "!", references=still))
    result = env.run(plan)
    assert result.exit_code == 0, result.as_dict()
    assert env.uploads() == 2 and len(env.tasks()) == 2  # one clip, one image
    assert {t["request"]["image_urls"][0] for t in env.tasks()} == {
        t["request"]["image_urls"][0] for t in env.tasks()[:1]}


@pytest.mark.sandbox
def test_a_missing_reference_file_exits_3_naming_it(env: Env) -> None:
    result = _cli(env, str(env.clip()), "-p", "x", "--model", "3.0", "--image",
                  str(env.tmp / "nowhere.png"))
    assert result.exit_code == 3, result.stderr
    assert "nowhere.png" in json.loads(result.stdout)["error"]
    assert env.uploads() == 0 and (not env.out.exists() or not any(env.out.iterdir()))


# -- the bill ----------------------------------------------------------------------------------------


@pytest.mark.media
def test_estimate_judges_the_references_and_bills_none(tmp_path: Path) -> None:
    take = mediagen.clip("ref-take", seconds=3, size="320x240")
    plain = CliRunner().invoke(cli, ["estimate", str(take), "--model", "3.0", "--json"])
    given = CliRunner().invoke(cli, ["estimate", str(take), "--model", "3.0", "--json",
                                     "--image", str(_still()), "--audio-ref", str(_sound()),
                                     "--image-from", str(take)])
    assert given.exit_code == 0, given.stderr
    data = json.loads(given.stdout)
    validate("estimate", data)
    # (3 s of clip + 5 s of output) x 2.55 x 2 = 40.8 credits, with or without references.
    assert data["credits_units"] == json.loads(plain.stdout)["credits_units"] == 408_000
    assert [(r["kind"], r["billed"], r["made_from_footage"]) for r in data["references"]] == [
        ("image", False, False), ("image", False, True), ("audio", False, False)]
    refused = CliRunner().invoke(cli, ["estimate", str(take), "--model", "2.7", "--audio-ref",
                                       str(_sound())])
    assert refused.exit_code == 2 and "--audio-ref is not taken by wan2.7-reference-video" in refused.stderr
    tiny = CliRunner().invoke(cli, ["estimate", str(take), "--model", "3.0", "--image",
                                    str(_still("tiny", "100x100"))])
    assert tiny.exit_code == 2 and "is 100x100" in tiny.stderr
    # A voice may speak for a still that a job would make from footage: the estimate judges the
    # whole set, then the files alone.
    bound = CliRunner().invoke(cli, ["estimate", str(take), "--model", "2.7", "--json",
                                     "--image-from", str(take), "--voice", str(_sound()),
                                     "--voice-for", "image1"])
    assert bound.exit_code == 0, bound.stderr
    assert [(r["kind"], r["made_from_footage"]) for r in json.loads(bound.stdout)["references"]] == [
        ("image", True), ("voice", False)]
