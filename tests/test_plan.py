"""The planner, pure: ClipInfo + options -> PrepPlan. No media, no ffmpeg."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from prep.core import clipspec, rules
from prep.core.billing import estimate_durations
from prep.core.clipinfo import ClipInfo, assess
from prep.core.plan import (
    AUDIO_KBPS,
    AUDIO_KBPS_MONO,
    CUT_REASON,
    DEFAULT_PROFILE,
    PROFILE_SETTINGS,
    PROFILES,
    EncoderSettings,
    PlanOptions,
    Profile,
    SourceFacts,
    eligibility,
    output_fps,
    output_size,
    plan,
    tighten,
    video_budget_kbps,
)
from prep.core.window import PlannedClip, choose_window, edge_margin_ms
from prep.errors import MediaError

KEYFRAMES = SourceFacts(keyframes_ms=(0, 1000, 2000, 3000, 4000, 5000, 6000, 7000),
                        raw_durations_ms=(8000, 8021))


def info(**changes: Any) -> ClipInfo:
    """A compliant 8 s 1080p30 H.264/AAC mp4 with its index first, changed as asked."""
    base = ClipInfo(path=Path("take.mp4"), size_bytes=8_000_000, container="mp4",
                    container_format="MPEG-4", duration_ms=8000, video_duration_ms=8000,
                    audio_duration_ms=8000, video_codec="h264", video_profile="High@L4",
                    width=1920, height=1080, fps=Fraction(30), frame_count=240,
                    audio_codec="aac", audio_channels=2, audio_rate=48000)
    return dataclasses.replace(base, **changes)


def parse_clip_spec(text: str) -> clipspec.ClipSpec:
    """A clip spec parsed with no file on disk (planning needs none)."""
    return clipspec.parse_clip_spec(text, exists=lambda _: False)


def opts(spec: str = "take.mp4", **kw: Any) -> PlanOptions:
    clip = parse_clip_spec(spec)
    return PlanOptions(window=clip.window, label=spec, **kw)


def test_compliant_mp4_is_copied() -> None:
    result = plan(info(), opts(), KEYFRAMES)
    assert result.action == "copy"
    assert result.video is None and result.audio is None and result.reasons == ()


@pytest.mark.parametrize(("model", "size", "action", "made"), [
    ("wan2.6-reference-video", (320, 180), "copy", None),  # wan2.6 has no smallest side
    ("wan3.0-reference-video", (320, 180), "transcode", (426, 240)),  # scaled up to 240 px
    ("wan2.7-reference-video", (180, 320), "transcode", (240, 426)),  # portrait: its width
    ("wan3.0-reference-video", (640, 360), "copy", None),
])
def test_a_picture_under_the_model_s_smallest_side_is_scaled_up_to_it(
        model: str, size: tuple[int, int], action: str, made: tuple[int, int] | None) -> None:
    from prep.core.models import model_spec

    spec = model_spec(model)
    width, height = size
    result = plan(info(width=width, height=height), opts(min_side_px=spec.min_side_px), KEYFRAMES)
    assert result.action == action, result.reasons
    if made is not None:
        assert result.video is not None and (result.video.width, result.video.height) == made
        assert f"{width}x{height} needs resizing" in result.reasons
        assert min(made) >= spec.min_side_px and all(side % 2 == 0 for side in made)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"container": "mov"}, "mov container"),
    ({"container": "m4v"}, "m4v container"),
    ({"container": "mkv"}, "mkv container"),
    ({"faststart": False}, "index (moov) at the end"),
])
def test_compliant_streams_elsewhere_are_remuxed(changes: dict[str, Any], reason: str) -> None:
    result = plan(info(**changes), opts(), KEYFRAMES)
    assert result.action == "remux"
    assert reason in result.reasons


def test_video_edit_list_means_remux_not_copy() -> None:
    facts = dataclasses.replace(KEYFRAMES, edit_list=True)
    assert plan(info(), opts(), facts).action == "remux"


@pytest.mark.parametrize(("changes", "reason"), [
    ({"video_codec": "hevc"}, "hevc video"),
    ({"video_codec": "prores", "bit_depth": 10, "chroma_subsampling": "4:2:2"}, "prores video"),
    ({"video_codec": "vp9", "container": "webm"}, "vp9 video"),
    ({"video_codec": "av1"}, "av1 video"),
    ({"video_codec": "mpeg2video", "interlaced": True}, "interlaced"),
    ({"video_codec": "mjpeg"}, "mjpeg video"),
    ({"bit_depth": 10, "video_profile": "High 10@L5"}, "10-bit video"),
    ({"hdr": "PQ", "bit_depth": 10}, "HDR (PQ)"),
    ({"chroma_subsampling": "4:4:4"}, "4:4:4 chroma"),
    ({"width": 3840, "height": 2160}, "3840x2160 needs resizing"),
    ({"width": 1279, "height": 719}, "1279x719 needs resizing"),
    ({"rotation": 90}, "rotation flag (90)"),
    ({"pixel_aspect": Fraction(4, 3), "width": 1440}, "non-square pixels"),
    ({"vfr": True}, "variable frame rate"),
    ({"interlaced": True}, "interlaced"),
    ({"video_codec": "hevc", "audio_codec": "pcm"}, "pcm audio"),
    ({"size_bytes": 150_000_000}, "over 100,000,000 bytes"),
])
def test_everything_else_is_transcoded(changes: dict[str, Any], reason: str) -> None:
    result = plan(info(**changes), opts(), KEYFRAMES)
    assert result.action == "transcode"
    assert reason in result.reasons
    assert result.video is not None and result.video.preset == "superfast"


def test_transcode_targets() -> None:
    result = plan(info(width=3840, height=2160, fps=Fraction(60), hdr="HLG", bit_depth=10,
                       video_codec="hevc"), opts(), KEYFRAMES)
    video = result.video
    assert video is not None and result.audio is not None
    assert (video.width, video.height) == (1920, 1080)
    assert video.tonemap == "HLG" and video.fps == 60 and video.frame_count == 480
    assert result.audio.rate == 48_000 and result.audio.channels == 2
    assert result.audio.bitrate_kbps == AUDIO_KBPS


def test_a_mono_source_is_re_encoded_to_mono_at_the_mono_rate() -> None:
    result = plan(info(audio_channels=1, hdr="HLG", bit_depth=10, video_codec="hevc"), opts(),
                  KEYFRAMES)
    assert result.action == "transcode" and result.audio is not None
    assert (result.audio.channels, result.audio.bitrate_kbps) == (1, AUDIO_KBPS_MONO)
    stereo = plan(info(audio_channels=2, hdr="HLG", bit_depth=10, video_codec="hevc"), opts(),
                  KEYFRAMES)
    assert stereo.audio is not None and stereo.audio.channels == 2
    # the budget counts the audio the plan makes: mono leaves the video more of it
    assert result.video is not None and stereo.video is not None
    assert result.video.maxrate_kbps >= stereo.video.maxrate_kbps


def test_no_audio_stays_no_audio() -> None:
    result = plan(info(audio_codec=None, audio_channels=None, audio_duration_ms=None,
                       video_codec="hevc"), opts(), KEYFRAMES)
    assert result.audio is None and not result.has_audio


@pytest.mark.parametrize(("size", "rotation", "par", "expected"), [
    ((1920, 1080), 0, Fraction(1), (1920, 1080)),
    ((3840, 2160), 0, Fraction(1), (1920, 1080)),
    ((3840, 2160), 90, Fraction(1), (1080, 1920)),     # portrait phone: upright, long side 1920
    ((4096, 2160), 0, Fraction(1), (1920, 1012)),      # DCI 4K: fits the width, aspect kept
    ((321, 181), 0, Fraction(1), (322, 182)),
    ((720, 576), 0, Fraction(64, 45), (1024, 576)),    # PAL 16:9 anamorphic -> square pixels
    ((1440, 1080), 0, Fraction(4, 3), (1920, 1080)),   # HDV
])
def test_output_size(size: tuple[int, int], rotation: int, par: Fraction,
                     expected: tuple[int, int]) -> None:
    clip = info(width=size[0], height=size[1], rotation=rotation, pixel_aspect=par)
    width, height = output_size(clip)
    assert (width, height) == expected
    assert width % 2 == 0 and height % 2 == 0


def test_vfr_snaps_to_a_common_rate() -> None:
    assert output_fps(info(vfr=True, fps=Fraction(29_87, 100))) == Fraction(30000, 1001)
    assert output_fps(info(fps=Fraction(120))) == 60


def test_cut_on_keyframes_is_a_remux() -> None:
    result = plan(info(), opts("take.mp4@2-6"), KEYFRAMES)
    assert result.action == "remux"
    assert (result.start_ms, result.end_ms) == (2000, 6000)


@pytest.mark.parametrize("spec", ["take.mp4@2.5-6", "take.mp4@2-5.5"])
def test_cut_between_keyframes_is_reencoded(spec: str) -> None:
    result = plan(info(), opts(spec), KEYFRAMES)
    assert result.action == "transcode"
    assert "cut between keyframes" in result.reasons


def test_unknown_keyframes_reencode_a_cut() -> None:
    assert plan(info(), opts("take.mp4@2-6"), SourceFacts()).action == "transcode"


def test_long_clip_without_window_takes_first_30_s_with_a_warning() -> None:
    clip = info(duration_ms=45_000, video_duration_ms=45_000, audio_duration_ms=45_000)
    result = plan(clip, opts(), KEYFRAMES)
    margin = edge_margin_ms(clip.fps)
    assert result.action == "transcode"
    assert result.duration_ms == rules.MAX_CLIP_MS - margin
    assert result.notes and "take.mp4@START-END" in result.notes[0]


def test_raw_track_longer_than_30_s_is_not_copied() -> None:
    clip = info(duration_ms=29_990, video_duration_ms=29_990, audio_duration_ms=29_990)
    facts = SourceFacts(keyframes_ms=(0,), raw_durations_ms=(29_990, 30_040))
    assert plan(clip, opts(), facts).action == "transcode"


def test_short_clip_is_an_error_unless_extended() -> None:
    clip = info(duration_ms=1200, video_duration_ms=1200, audio_duration_ms=1200)
    with pytest.raises(MediaError, match="1.2 s long"):
        plan(clip, opts(), KEYFRAMES)
    for mode in ("loop", "freeze"):
        result = plan(clip, opts(extend=mode), KEYFRAMES)
        assert result.action == "transcode" and result.extend == mode
        assert rules.MIN_CLIP_MS < result.duration_ms < rules.MIN_CLIP_MS + 100


def test_exactly_two_seconds_explains_the_margin() -> None:
    with pytest.raises(MediaError, match="a frame inside"):
        plan(info(), opts("take.mp4@2-4"), KEYFRAMES)


@pytest.mark.parametrize("fps", [Fraction(24000, 1001), Fraction(30), Fraction(60), Fraction(120)])
def test_durations_stay_inside_limits_at_any_rate(fps: Fraction) -> None:
    clip = info(duration_ms=40_000, video_duration_ms=40_000, audio_duration_ms=40_000, fps=fps)
    result = plan(clip, opts(), KEYFRAMES)
    assert result.video is not None and result.audio is not None
    video_ms = Fraction(result.video.frame_count * 1000) / result.video.fps
    raw_audio_ms = Fraction((result.audio.sample_count + 1024) * 1000, 48_000)
    frame_ms = Fraction(1000) / result.video.fps
    assert raw_audio_ms == video_ms  # the stored audio track ends with the video
    assert video_ms <= rules.MAX_CLIP_MS - frame_ms
    # a reader that skips the encoder delay still sees more than 2 s at the short end
    short = plan(info(duration_ms=1000, video_duration_ms=1000, audio_duration_ms=1000, fps=fps),
                 opts(extend="freeze"), KEYFRAMES)
    assert short.audio is not None and short.video is not None
    assert short.audio.sample_count * 1000 / 48_000 > rules.MIN_CLIP_MS
    assert Fraction(short.video.frame_count * 1000) / short.video.fps >= rules.MIN_CLIP_MS + frame_ms
    # the estimate's duration matches the output within a frame
    assert abs(video_ms - result.duration_ms) <= Fraction(1000) / result.video.fps


def test_window_duration_matches_estimate() -> None:
    clip = info(duration_ms=45_000, video_duration_ms=45_000, audio_duration_ms=45_000)
    spec = parse_clip_spec("take.mp4@3.3-12.1")
    assert plan(clip, opts("take.mp4@3.3-12.1")).duration_ms == \
        choose_window(clip, spec.window).duration_ms == 8_800


@pytest.mark.parametrize(("spec", "note"), [
    ("take.mp4@30-50", "ends at 50.0 s, past the clip's end (45.0 s): prep stops there"),
    ("take.mp4@40-", None),  # open-ended: to the end, as asked
    ("take.mp4@40-45", None),  # exactly to the end
])
def test_a_window_past_the_clip_says_where_it_stops(spec: str, note: str | None) -> None:
    clip = info(duration_ms=45_000, video_duration_ms=45_000, audio_duration_ms=45_000)
    window = choose_window(clip, parse_clip_spec(spec).window, label=spec)
    assert window.end_ms == 45_000
    found = [n for n in window.notes if "past the clip's end" in n]
    assert found == ([f"the window of {spec} {note}"] if note else [])


def test_budget_keeps_the_worst_case_under_the_limit() -> None:
    # 30 s of 40 Mbit/s footage is 150 MB: the peak rate must hold the file under 100 MB.
    duration_ms = 29_966
    for limit in (rules.MAX_FILE_BYTES, 5_000_000, 1_000_000):
        maxrate = video_budget_kbps(duration_ms, limit, AUDIO_KBPS)
        worst_bits = maxrate * 1000 * (duration_ms / 1000 + 2) + AUDIO_KBPS * 1000 * 31
        assert worst_bits / 8 < limit
    assert video_budget_kbps(duration_ms, rules.MAX_FILE_BYTES, AUDIO_KBPS) > 20_000


def test_oversize_source_gets_a_budget() -> None:
    clip = info(duration_ms=30_000, video_duration_ms=30_000, audio_duration_ms=30_000,
                size_bytes=150_000_000, video_bitrate=40_000_000)
    result = plan(clip, opts(), KEYFRAMES)
    assert result.action == "transcode" and result.video is not None
    assert result.video.maxrate_kbps < 26_000
    assert result.video.bufsize_kbps == 2 * result.video.maxrate_kbps


def test_max_size_option_and_tighten() -> None:
    result = plan(info(video_codec="hevc"), opts(max_size_bytes=2_000_000), KEYFRAMES)
    assert result.video is not None
    smaller = tighten(result, 2_400_000)
    assert smaller.video is not None
    assert smaller.video.maxrate_kbps < result.video.maxrate_kbps * 0.8
    assert smaller.video.crf > result.video.crf


def test_impossible_size_is_an_error() -> None:
    clip = info(duration_ms=29_000, video_duration_ms=29_000, audio_duration_ms=29_000,
                video_codec="hevc")
    with pytest.raises(MediaError, match="cannot fit"):
        plan(clip, opts(max_size_bytes=1_000_000), KEYFRAMES)


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles(profile: Profile) -> None:
    result = plan(info(video_codec="hevc"), opts(profile=profile), KEYFRAMES)
    assert result.video is not None and result.profile == profile
    encoder = PROFILE_SETTINGS[profile]
    video = result.video
    assert (video.preset, video.crf, video.x264_params) == (encoder.preset, encoder.crf,
                                                            encoder.x264_params)
    assert result.as_dict()["video"]["x264_params"] == dict(encoder.x264_params)  # type: ignore[index]


def test_every_profile_has_settings_and_balanced_is_the_default() -> None:
    assert set(PROFILE_SETTINGS) == set(PROFILES) and DEFAULT_PROFILE == "balanced"
    assert PlanOptions().profile == DEFAULT_PROFILE


def test_small_profile_turns_off_what_costs_bytes() -> None:
    """small: psycho-visual optimisation off and variance AQ on, whose bits VMAF does not see."""
    params = dict(PROFILE_SETTINGS["small"].x264_params)
    assert params["psy"] == "0" and params["aq-mode"] == "2"


def test_x264_params_cannot_break_the_option_string() -> None:
    with pytest.raises(ValueError):
        EncoderSettings("faster", 22, (("deblock", "-1:-1"),))


def test_bad_options_are_value_errors() -> None:
    with pytest.raises(ValueError):
        PlanOptions(profile="turbo")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PlanOptions(max_size_bytes=200_000_000)


def test_plan_as_dict_is_json_ready() -> None:
    import json

    json.dumps(plan(info(hdr="PQ", video_codec="hevc"), opts(), KEYFRAMES).as_dict())
    assert plan(info(), opts(), KEYFRAMES).as_dict()["video"] == "copy"


# --- per stream: the video copied, only the audio re-encoded --------------------------------

@pytest.mark.parametrize(("changes", "reason"), [
    ({"audio_codec": "pcm", "container": "mov"}, "pcm audio"),
    ({"audio_codec": "pcm", "audio_channels": 1, "audio_rate": 44_100}, "pcm audio"),
    ({"audio_codec": "aac", "audio_channels": 6}, "6-channel audio"),
    ({"audio_codec": "ac3", "audio_channels": 6}, "ac3 audio"),
    ({"audio_codec": "eac3"}, "eac3 audio"),
    ({"audio_codec": "opus", "container": "mkv"}, "opus audio"),
    ({"audio_codec": "mp3", "audio_rate": 44_100}, "mp3 audio"),
    ({"audio_codec": "mp2"}, "mp2 audio"),
    ({"audio_codec": "flac", "container": "mkv"}, "flac audio"),
])
def test_compliant_video_with_other_audio_copies_the_video(changes: dict[str, Any],
                                                            reason: str) -> None:
    result = plan(info(**changes), opts(), KEYFRAMES)
    assert result.action == "remux" and reason in result.reasons
    assert result.video is None and result.audio is not None
    assert (result.video_action, result.audio_action) == ("copy", "transcode")
    mono = info(**changes).audio_channels == 1  # a mono source stays mono, any other is stereo
    assert (result.audio.rate, result.audio.channels) == (48_000, 1 if mono else 2)
    # the same speech-clean AAC as a transcode
    assert result.audio.bitrate_kbps == (AUDIO_KBPS_MONO if mono else AUDIO_KBPS)
    # stored (with the encoder's 1024 samples of delay) the audio ends exactly with the video
    assert result.audio.sample_count + 1024 == 8 * 48_000
    if info(**changes).container != "mp4":
        assert f"{info(**changes).container} container" in result.reasons


@pytest.mark.parametrize("changes", [
    {"audio_channels": 1, "audio_rate": 44_100},
    {"audio_channels": 1, "audio_rate": 48_000},
    {"audio_channels": 2, "audio_rate": 44_100},
    {"audio_channels": 2, "audio_rate": 32_000},
])
def test_compliant_aac_is_kept_as_it_is(changes: dict[str, Any]) -> None:
    """AAC in mono, or at 44.1 kHz, is what the API takes: it is copied, never re-encoded."""
    assert plan(info(**changes), opts(), KEYFRAMES).action == "copy"
    remuxed = plan(info(container="mov", **changes), opts(), KEYFRAMES)
    assert remuxed.action == "remux" and remuxed.audio is None
    assert (remuxed.video_action, remuxed.audio_action) == ("copy", "copy")


def test_audio_is_cut_to_the_copied_video_not_the_container() -> None:
    # PCM that runs 40 ms past the video: the audio is cut to the video's 239 frames.
    clip = info(audio_codec="pcm", video_duration_ms=7967, audio_duration_ms=8007,
                duration_ms=8007, frame_count=239)
    facts = dataclasses.replace(KEYFRAMES, raw_video_ms=7966, raw_durations_ms=(7966, 8007))
    result = plan(clip, opts(), facts)
    assert result.action == "remux" and result.audio is not None
    video_samples = Fraction(239 * 48_000, 30)
    assert result.audio.sample_count + 1024 <= video_samples
    assert video_samples - (result.audio.sample_count + 1024) < 48  # within a millisecond


def test_keyframe_cut_copies_the_video_and_cuts_the_audio_to_it() -> None:
    result = plan(info(audio_codec="pcm"), opts("take.mp4@2-6"), KEYFRAMES)
    assert result.action == "remux" and result.audio is not None
    assert "cut on keyframes" in result.reasons and "pcm audio" in result.reasons
    assert result.audio.sample_count + 1024 == 4 * 48_000
    to_end = plan(info(audio_codec="pcm"), opts("take.mp4@3-"), KEYFRAMES)
    assert to_end.audio is not None and to_end.audio.sample_count + 1024 == 5 * 48_000


def test_cut_between_keyframes_with_other_audio_transcodes_both() -> None:
    result = plan(info(audio_codec="pcm"), opts("take.mp4@2.5-6"), KEYFRAMES)
    assert result.action == "transcode" and result.video is not None
    assert {"pcm audio", "cut between keyframes"} <= set(result.reasons)
    assert plan(info(audio_codec="pcm"), opts("take.mp4@2-6"), SourceFacts()).action == "transcode"


def test_extended_clip_with_other_audio_transcodes() -> None:
    clip = info(audio_codec="pcm", duration_ms=1200, video_duration_ms=1200, audio_duration_ms=1200)
    assert plan(clip, opts(extend="freeze"), KEYFRAMES).action == "transcode"


@pytest.mark.parametrize(("changes", "facts", "action"), [
    # the file is big because of its PCM, but the video alone (from stsz) fits: copy the video
    ({"size_bytes": 120_000_000}, {"video_bytes": 60_000_000}, "remux"),
    # the copied video plus the audio's budget would not fit: re-encode everything
    ({"size_bytes": 99_000_000}, {"video_bytes": 96_900_000}, "transcode"),
    # no sample tables: the video's bit rate says how big it is
    ({"size_bytes": 120_000_000, "video_bitrate": 40_000_000, "container": "mkv"},
     {"raw_durations_ms": (), "video_bytes": None}, "remux"),
    ({"size_bytes": 120_000_000, "video_bitrate": 97_000_000, "container": "mkv"},
     {"raw_durations_ms": (), "video_bytes": None}, "transcode"),
    # nothing known: the whole file is the bound
    ({"size_bytes": 120_000_000, "container": "mkv"},
     {"raw_durations_ms": (), "video_bytes": None}, "transcode"),
])
def test_copied_video_must_fit_with_the_audio_budget(changes: dict[str, Any],
                                                      facts: dict[str, Any], action: str) -> None:
    result = plan(info(audio_codec="pcm", **changes), opts(),
                  dataclasses.replace(KEYFRAMES, **facts))
    assert result.action == action
    if action == "transcode":
        assert result.video is not None and "pcm audio" in result.reasons


def test_max_size_option_counts_for_the_copied_video() -> None:
    facts = dataclasses.replace(KEYFRAMES, video_bytes=6_000_000)
    assert plan(info(audio_codec="pcm"), opts(), facts).action == "remux"
    assert plan(info(audio_codec="pcm"), opts(max_size_bytes=5_000_000), facts).action == "transcode"


def test_raw_video_past_30_s_is_not_copied() -> None:
    clip = info(audio_codec="pcm", duration_ms=29_900, video_duration_ms=29_900,
                audio_duration_ms=29_900, frame_count=897)
    facts = SourceFacts(keyframes_ms=(0,), raw_durations_ms=(30_100, 29_900), raw_video_ms=30_100)
    assert plan(clip, opts(), facts).action == "transcode"


def test_reencode_and_video_problems_still_transcode_everything() -> None:
    pcm = info(audio_codec="pcm")
    assert plan(pcm, opts(reencode=True), KEYFRAMES).action == "transcode"
    assert plan(info(audio_codec="pcm", vfr=True), opts(), KEYFRAMES).action == "transcode"
    assert plan(info(audio_codec="pcm", rotation=90), opts(), KEYFRAMES).action == "transcode"


def test_mirror_case_reencodes_compliant_aac_beside_a_reencoded_video() -> None:
    """Video re-encoded, audio already AAC 48 kHz stereo: the audio is still re-encoded, because
    a copied AAC track cannot be cut sample-exactly to the new video (see plan.plan)."""
    result = plan(info(video_codec="hevc"), opts("take.mp4@1.5-6.5"), KEYFRAMES)
    assert result.action == "transcode" and result.audio is not None
    assert (result.video_action, result.audio_action) == ("transcode", "transcode")


def test_plan_json_says_what_happens_to_each_stream() -> None:
    pcm = plan(info(audio_codec="pcm"), opts(), KEYFRAMES).as_dict()
    assert (pcm["action"], pcm["video_action"], pcm["audio_action"]) == ("remux", "copy", "transcode")
    assert pcm["video"] == "copy" and isinstance(pcm["audio"], dict)
    silent = plan(info(audio_codec=None, audio_duration_ms=None), opts(), KEYFRAMES).as_dict()
    assert (silent["action"], silent["audio_action"]) == ("copy", None)


def test_copy_cuts_count_their_frames() -> None:
    assert plan(info(), opts("take.mp4@2-6"), KEYFRAMES).copy_frames == 120
    assert plan(info(audio_codec="pcm"), opts("take.mp4@2-6"), KEYFRAMES).copy_frames == 120
    assert plan(info(), opts("take.mp4@2-"), KEYFRAMES).copy_frames is None  # to the end
    assert plan(info(), opts(), KEYFRAMES).copy_frames is None
    # without a frame rate the frames of a cut cannot be counted: re-encode
    assert plan(info(fps=None), opts("take.mp4@2-6"), KEYFRAMES).action == "transcode"


# -- the 2-30 s edges: a compliant source is used as it is ------------------------------------------

def _lasting(ms: int, **changes: Any) -> ClipInfo:
    return info(duration_ms=ms, video_duration_ms=ms, audio_duration_ms=ms,
                frame_count=ms * 30 // 1000, **changes)


def test_exactly_two_seconds_compliant_is_billed_and_copied_whole() -> None:
    """probe calls a 2.0 s clip compliant; estimate must bill it and prepare copy it, uncut."""
    clip = _lasting(2_000)
    assert assess(clip).compliant
    window = choose_window(clip, label="take.mp4")
    assert (window.start_ms, window.end_ms, window.duration_ms) == (0, 2_000, 2_000)
    assert window.as_is and not window.trimmed and window.extend is None
    assert any("within a frame of the API's 2.0 s limit" in n for n in window.notes)
    bill = PlannedClip(clipspec.ClipSpec(Path("take.mp4")), clip, window).bill()
    assert estimate_durations([bill]).input_billed_ms == 2_000
    result = plan(clip, opts(), SourceFacts(keyframes_ms=(0,), raw_durations_ms=(2_000, 2_000)))
    assert result.action == "copy"
    assert (result.start_ms, result.end_ms, result.duration_ms) == (0, 2_000, 2_000)
    assert result.video is None and result.audio is None and result.copy_frames is None
    assert result.notes == window.notes


def test_two_second_mov_is_remuxed_without_reencoding() -> None:
    result = plan(_lasting(2_000, container="mov"), opts(), SourceFacts(keyframes_ms=(0,)))
    assert result.action == "remux" and result.video is None and result.audio is None
    assert result.duration_ms == 2_000 and "cut on keyframes" not in result.reasons


def test_thirty_seconds_compliant_is_not_trimmed() -> None:
    clip = _lasting(30_000)
    window = choose_window(clip)
    assert window.as_is and window.duration_ms == 30_000
    assert plan(clip, opts(), SourceFacts(keyframes_ms=(0,))).action == "copy"


@pytest.mark.parametrize("changes", [{"video_codec": "hevc"}, {"audio_codec": "pcm"},
                                     {"rotation": 90}])
def test_two_seconds_that_must_be_reencoded_takes_the_margin(changes: dict[str, Any]) -> None:
    clip = _lasting(2_000, **changes)
    with pytest.raises(MediaError, match="a frame inside"):
        choose_window(clip)
    with pytest.raises(MediaError, match="a frame inside"):
        plan(clip, opts(), KEYFRAMES)
    assert plan(clip, opts(extend="freeze"), KEYFRAMES).action == "transcode"


def test_edge_source_found_short_in_its_sample_tables_takes_the_margin() -> None:
    clip = _lasting(2_000)
    assert choose_window(clip).as_is  # what probing says
    short_raw = SourceFacts(keyframes_ms=(0,), raw_durations_ms=(1_990, 2_000))
    with pytest.raises(MediaError, match="a frame inside"):
        plan(clip, opts(), short_raw)
    with pytest.raises(MediaError, match="a frame inside"):
        plan(clip, opts(reencode=True), KEYFRAMES)


def test_a_window_is_a_cut_and_keeps_the_margin() -> None:
    with pytest.raises(MediaError, match="a frame inside"):
        choose_window(_lasting(2_000), parse_clip_spec("take.mp4@0-2").window)
    assert not choose_window(_lasting(8_000)).as_is  # away from the edges: nothing to say
    assert choose_window(_lasting(8_000)).notes == ()


@pytest.mark.parametrize("changes", [
    {"video_codec": "hevc"}, {"hdr": "HLG", "video_codec": "hevc", "bit_depth": 10},
])
def test_transcode_counts_only_the_frames_the_source_video_holds(changes: dict[str, Any]) -> None:
    """Audio 1 s longer than the video: the window runs to the container's end, but the plan's
    frames stop where the video does, and the audio (counted from them) ends with it."""
    clip = info(duration_ms=5000, video_duration_ms=4000, audio_duration_ms=5000, frame_count=120,
                **changes)
    result = plan(clip, opts("take.mp4@0.5-"), SourceFacts(raw_durations_ms=(4000, 5000),
                                                            raw_video_ms=4000))
    assert result.video is not None and result.audio is not None
    assert result.video.frame_count == 105  # 3.5 s at 30 fps
    assert result.duration_ms == 3500
    assert result.audio.sample_count == 3500 * 48 - 1024


SPARSE = SourceFacts(keyframes_ms=(0, 4000), raw_durations_ms=(8000, 8021))


@pytest.mark.parametrize(("spec", "facts", "frames"), [
    ("take.mp4@1.3-6.5", KEYFRAMES, (21, 120, 15)),  # keyframes every second: 2.0-6.0 copied
    ("take.mp4@2-6.5", KEYFRAMES, (0, 120, 15)),     # starts on a keyframe: only the tail
    ("take.mp4@1.3-3.9", SPARSE, None),              # no whole GOP inside
])
def test_a_window_between_keyframes_offers_a_smart_cut(
        spec: str, facts: SourceFacts, frames: tuple[int, int, int] | None) -> None:
    result = plan(info(), opts(spec), facts)
    assert result.action == "transcode" and result.video is not None  # the fallback
    cut = result.smart_cut
    if frames is None:
        assert cut is None
        return
    assert cut is not None
    assert (cut.head_frames, cut.copy_frames, cut.tail_frames) == frames
    assert sum(frames) == result.video.frame_count


def test_no_smart_cut_when_the_video_must_be_re_encoded_anyway() -> None:
    assert plan(info(video_codec="hevc"), opts("take.mp4@1.3-6.5"), KEYFRAMES).smart_cut is None
    assert plan(info(), opts("take.mp4@1.3-6.5", reencode=True), KEYFRAMES).smart_cut is None


# -- the eligibility step, by table: what a clip allows before any action is chosen ---------------

EDIT_LIST = dataclasses.replace(KEYFRAMES, edit_list=True)
NO_KEYFRAMES = dataclasses.replace(KEYFRAMES, keyframes_ms=None)
OPEN = ("copy", "remux", "audio_only", "smart_cut")


@pytest.mark.parametrize(("changes", "spec", "options", "facts", "open_", "reasons"), [
    ({}, "take.mp4", {}, KEYFRAMES, {"copy", "remux"}, ()),
    ({"faststart": False}, "take.mp4", {}, KEYFRAMES, {"remux"}, ()),
    ({"container": "mov"}, "take.mp4", {}, KEYFRAMES, {"remux"}, ()),
    ({}, "take.mp4", {}, EDIT_LIST, {"remux"}, ()),
    ({}, "take.mp4@1-5", {}, KEYFRAMES, {"remux"}, ()),  # cut on keyframes
    ({}, "take.mp4@1.5-5", {}, KEYFRAMES, {"smart_cut"}, (CUT_REASON,)),
    ({}, "take.mp4@1-5", {}, NO_KEYFRAMES, {"smart_cut"}, (CUT_REASON,)),
    ({"fps": None}, "take.mp4@1-5", {}, KEYFRAMES, {"smart_cut"}, (CUT_REASON,)),
    ({"audio_codec": "pcm_s16le"}, "take.mp4", {}, KEYFRAMES, {"audio_only"},
     ("pcm_s16le audio",)),
    ({"audio_channels": 6}, "take.mp4@1-5", {}, KEYFRAMES, {"audio_only"},
     ("6-channel audio",)),
    ({"audio_codec": "opus"}, "take.mp4@1.5-5", {}, KEYFRAMES, {"smart_cut"},
     ("opus audio", CUT_REASON)),
    ({}, "take.mp4", {"loudness_lufs": -16.0}, KEYFRAMES, {"audio_only"},
     ("loudness to -16 LUFS",)),
    ({"audio_codec": None, "audio_channels": None, "audio_rate": None}, "take.mp4",
     {"loudness_lufs": -16.0},
     KEYFRAMES, {"copy", "remux"}, ()),
    ({"video_codec": "hevc"}, "take.mp4", {}, KEYFRAMES, set(), ("hevc video",)),
    ({"video_codec": "hevc"}, "take.mp4@1.5-5", {}, KEYFRAMES, set(),
     ("hevc video", CUT_REASON)),
    ({"bit_depth": 10, "hdr": "PQ"}, "take.mp4", {}, KEYFRAMES, set(),
     ("10-bit video", "HDR (PQ)")),
    ({}, "take.mp4", {"reencode": True}, KEYFRAMES, set(), ("re-encode asked for",)),
    ({"audio_codec": "mp3"}, "take.mp4", {"reencode": True}, KEYFRAMES, set(), ("mp3 audio",)),
    ({"size_bytes": 2_000_000}, "take.mp4", {"max_size_bytes": 1_000_000}, KEYFRAMES, set(),
     ("over 1,000,000 bytes",)),
    ({}, "take.mp4", {}, dataclasses.replace(KEYFRAMES, raw_durations_ms=(8000, 31_000)),
     set(), ("durations of the tracks differ",)),
])
def test_eligibility(changes: dict[str, Any], spec: str, options: dict[str, Any],
                     facts: SourceFacts, open_: set[str], reasons: tuple[str, ...]) -> None:
    clip = info(**changes)
    options = opts(spec, **options)
    window = choose_window(clip, options.window, label=spec, as_is=False)
    allowed = eligibility(clip, options, facts, window)
    assert {name for name in OPEN if getattr(allowed, name)} == open_
    assert allowed.transcode_reasons == reasons


def test_eligibility_of_an_extended_clip() -> None:
    clip = info(duration_ms=1500, video_duration_ms=1500, audio_duration_ms=1500, frame_count=45)
    options = opts(extend="loop")
    allowed = eligibility(clip, options, KEYFRAMES, choose_window(clip, extend="loop"))
    assert allowed.extended and allowed.cut and not allowed.cut_ok
    assert {name for name in OPEN if getattr(allowed, name)} == set()
    assert allowed.transcode_reasons == ("extended",)


@pytest.mark.parametrize("spec", ["take.mp4", "take.mp4@1-5", "take.mp4@1.5-5"])
@pytest.mark.parametrize("changes", [{}, {"audio_codec": "pcm_s16le"}, {"video_codec": "hevc"},
                                     {"faststart": False}])
def test_plan_takes_the_cheapest_action_eligibility_allows(changes: dict[str, Any],
                                                           spec: str) -> None:
    clip = info(**changes)
    options = opts(spec)
    result = plan(clip, options, KEYFRAMES)
    window = choose_window(clip, options.window, label=spec)
    allowed = eligibility(clip, options, KEYFRAMES, window)
    expected = ("copy" if allowed.copy else "remux" if allowed.remux or allowed.audio_only
                else "transcode")
    assert result.action == expected
    assert (result.smart_cut is not None) <= allowed.smart_cut
