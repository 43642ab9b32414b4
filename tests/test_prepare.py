"""prepare end to end on generated clips: every awkward case comes out compliant and verified."""

from __future__ import annotations

import filecmp
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from media_cases import CASES, case
from mediagen import ffmpeg_exe, make

from prep.core import rules
from prep.core.clipinfo import ClipInfo
from prep.core.window import choose_window
from prep.errors import MediaError, PrepError
from prep.media.mp4 import read_mp4
from prep.media.prepare import PrepareOptions, PrepResult, prepare, prepare_each
from prep.media.probe import probe
from prep.ui.cli import cli

pytestmark = pytest.mark.media
EVERY_CASE = [name for name in CASES if name != "short"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PrepResult]:
    """Every case through one `prepare` run (one output folder, one ffmpeg at a time)."""
    out = tmp_path_factory.mktemp("prepared")
    options = PrepareOptions(use_cache=False, ffmpeg="")
    results = prepare([str(case(name)) for name in EVERY_CASE], out, options)
    return dict(zip(EVERY_CASE, results, strict=True))


def _check_compliant(result: PrepResult) -> ClipInfo:
    """Probe the output again, as the server would, and check every rule on every track."""
    assert result.output is not None and result.output.is_file()
    out = probe(result.output)
    raw = read_mp4(result.output)
    assert out.container == "mp4" and out.video_codec == "h264"
    assert out.size_bytes < rules.MAX_FILE_BYTES
    durations = list(out.durations_ms) + [t.duration_ms for t in raw.tracks]
    assert min(durations) > rules.MIN_CLIP_MS and max(durations) < rules.MAX_CLIP_MS
    assert out.rotation == 0 and out.pixel_aspect == 1
    assert out.chroma_subsampling == "4:2:0" and out.bit_depth == 8
    assert raw.moov_first and out.faststart
    if result.action != "copy":
        assert not raw.has_edit_list
    assert not [p for p in result.output.parent.iterdir() if p.name.endswith(".part.mp4")]
    return out


@pytest.mark.parametrize("name", EVERY_CASE)
def test_every_case_comes_out_compliant(prepared: dict[str, PrepResult], name: str) -> None:
    result = prepared[name]
    out = _check_compliant(result)
    if result.action == "transcode":
        assert not out.vfr and not out.interlaced
        assert out.width % 2 == 0 and out.height % 2 == 0
        assert max(out.width, out.height) <= 1920 and min(out.width, out.height) <= 1080
        # the output lasts what was planned, within a frame
        assert abs(out.video_duration_ms - result.plan.duration_ms) <= 1000 / float(out.fps)
        if result.source.has_audio:
            channels = _channels_for(result.source.audio_channels)
            assert (out.audio_codec, out.audio_channels, out.audio_rate) == ("aac", channels, 48_000)
        else:
            assert not out.has_audio
    if result.plan.audio is not None:  # re-encoded audio, beside copied or re-encoded video
        channels = _channels_for(result.source.audio_channels)
        assert (out.audio_codec, out.audio_channels, out.audio_rate) == ("aac", channels, 48_000)


def _channels_for(source_channels: int | None) -> int:
    """The channels of prep's re-encoded audio: a mono source's stays mono, others are stereo."""
    return 1 if source_channels == 1 else 2


def test_actions(prepared: dict[str, PrepResult]) -> None:
    actions = {name: (r.action, r.plan.video_action, r.plan.audio_action)
               for name, r in prepared.items()}
    assert actions["compliant"] == actions["aac_mono44"] == ("copy", "copy", "copy")
    assert actions["silent"] == ("copy", "copy", None)
    # Rewrapped, their AAC's delay and padding would run past the video: the audio is re-encoded.
    assert actions["quicktime"] == actions["noisy"] == ("remux", "copy", "transcode")
    assert "audio runs past the video" in prepared["quicktime"].plan.reasons
    audio_only = {"pcm_mov", "opus_mkv", "surround", "ntsc_bframes"}
    assert {actions[n] for n in audio_only} == {("remux", "copy", "transcode")}
    transcoded = set(EVERY_CASE) - {"compliant", "aac_mono44", "silent", "quicktime", "noisy",
                                    *audio_only}
    assert {actions[n][0] for n in transcoded} == {"transcode"}


def test_compliant_clip_is_the_same_bytes(prepared: dict[str, PrepResult]) -> None:
    result = prepared["compliant"]
    assert result.output is not None
    assert filecmp.cmp(result.output, case("compliant"), shallow=False)


def test_specific_fixes(prepared: dict[str, PrepResult]) -> None:
    def out(name: str) -> ClipInfo:
        output = prepared[name].output
        assert output is not None
        return probe(output)

    assert out("phone").display_size == (180, 320)                  # upright portrait
    hdr = out("hdr_hlg")
    assert (hdr.hdr, hdr.color_primaries, hdr.transfer) == (None, "BT.709", "BT.709")
    uhd = out("uhd60")
    assert (uhd.width, uhd.height, uhd.fps) == (1920, 1080, 60)
    assert out("odd").display_size == (322, 182)
    assert out("mpeg2").display_size == (512, 288)                  # 16:9, square pixels
    assert out("surround").audio_channels == 2
    assert not out("silent").has_audio
    long = prepared["long45"]
    assert long.plan.notes and "@START-END" in long.plan.notes[0]
    assert rules.MAX_CLIP_MS - 200 < out("long45").duration_ms < rules.MAX_CLIP_MS


def _video_packets(path: Path) -> list[tuple[str, str]]:
    """(size, md5) of each video packet, read by ffmpeg without decoding (`-c copy`)."""
    done = subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-map",
                           "0:v:0", "-c", "copy", "-f", "framemd5", "-"],
                          capture_output=True, text=True, check=True)
    rows = [line.split(",") for line in done.stdout.splitlines() if not line.startswith("#")]
    return [(row[4].strip(), row[5].strip()) for row in rows]


def _check_audio_beside_copied_video(result: PrepResult, skip_frames: int = 0,
                                     frames: int | None = None) -> None:
    """Video packets byte-identical to the source's; audio AAC 48 kHz (mono from mono, else
    stereo), stored ending with
    the video (never past it), every duration inside 2-30 s."""
    assert result.output is not None
    assert result.plan.video is None and result.plan.audio is not None
    out = _check_compliant(result)
    assert (out.audio_codec, out.audio_rate, out.audio_channels) == (
        "aac", 48_000, _channels_for(result.source.audio_channels))
    source_packets = _video_packets(result.source.path)
    stop = None if frames is None else skip_frames + frames
    assert _video_packets(result.output) == source_packets[skip_frames:stop]
    raw = read_mp4(result.output)
    video, audio = raw.track("vide"), raw.track("soun")
    assert video is not None and audio is not None
    assert video.duration_ms - 2 <= audio.duration_ms <= video.duration_ms
    assert abs(out.duration_ms - result.plan.duration_ms) <= 1


@pytest.mark.parametrize("name", ["pcm_mov", "opus_mkv", "surround"])
def test_compliant_video_with_other_audio_keeps_its_video(prepared: dict[str, PrepResult],
                                                          name: str) -> None:
    result = prepared[name]
    _check_audio_beside_copied_video(result)
    assert f"{result.source.audio_codec} audio" in result.plan.reasons \
        or f"{result.source.audio_channels}-channel audio" in result.plan.reasons


def test_compliant_aac_at_44_1_khz_mono_is_copied(prepared: dict[str, PrepResult]) -> None:
    result = prepared["aac_mono44"]
    assert result.output is not None
    assert filecmp.cmp(result.output, case("aac_mono44"), shallow=False)
    out = _check_compliant(result)
    assert (out.audio_codec, out.audio_rate, out.audio_channels) == ("aac", 44_100, 1)


@pytest.mark.parametrize("name", ["pcm_mov", "opus_mkv"])
def test_keyframe_cut_copies_video_and_reencodes_audio(tmp_out: Path, name: str) -> None:
    (result,) = prepare([f"{case(name)}@1-"], tmp_out, PrepareOptions(use_cache=False))
    assert result.action == "remux" and "cut on keyframes" in result.plan.reasons
    _check_audio_beside_copied_video(result, skip_frames=30)  # keyframe at 1 s, 30 fps
    assert result.output_info is not None
    assert result.output_info.video_duration_ms == 3000


def test_keyframe_cuts_are_frame_exact_at_ntsc_rates_with_b_frames(tmp_out: Path) -> None:
    """Keyframes at 800.8 ms and 3203.2 ms: the copy holds exactly the 72 frames between them
    (not the GOP before, not the keyframe after), with audio cut to end with them."""
    source = case("ntsc_bframes")
    video = read_mp4(source).track("vide")
    assert video is not None and video.keyframe_ms is not None
    assert video.keyframe_ms[1:5] == (800, 1601, 2402, 3203)
    (result,) = prepare([f"{source}@0.8-3.203"], tmp_out, PrepareOptions(use_cache=False))
    assert result.action == "remux" and result.plan.copy_frames == 72
    _check_audio_beside_copied_video(result, skip_frames=24, frames=72)


@pytest.mark.parametrize("failure", ["media", "oversize"])
def test_failed_audio_only_output_falls_back_to_a_full_transcode(
        tmp_out: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    # `prep.prepare` the attribute is the function; the module is in sys.modules.
    prepare_module = sys.modules["prep.media.prepare"]
    verify = prepare_module._verify

    def refuse_copied_video(path: Path, clip_plan: Any, label: str, **kwargs: Any) -> ClipInfo:
        if clip_plan.video is None:
            if failure == "media":
                raise MediaError(label, "the prepared file is refused by this test")
            raise prepare_module._OverSize(label, 200_000_000, clip_plan.max_size_bytes)
        return verify(path, clip_plan, label, **kwargs)

    monkeypatch.setattr(prepare_module, "_verify", refuse_copied_video)
    (result,) = prepare([str(case("pcm_mov"))], tmp_out, PrepareOptions(use_cache=False))
    assert result.action == "transcode" and result.attempts == 2
    assert result.plan.video is not None
    out = _check_compliant(result)
    assert (out.audio_codec, out.audio_rate, out.audio_channels) == (
        "aac", 48_000, _channels_for(result.source.audio_channels))


def test_estimate_durations_match_outputs(prepared: dict[str, PrepResult]) -> None:
    for name in ("long45", "vfr", "compliant", "uhd60"):
        result = prepared[name]
        planned = choose_window(result.source).duration_ms
        assert result.output_info is not None and result.output_info.video_duration_ms
        fps = result.output_info.fps or 30
        assert abs(result.output_info.video_duration_ms - planned) <= 1000 / float(fps)


def test_output_names_are_unique(prepared: dict[str, PrepResult]) -> None:
    names = [r.output.name for r in prepared.values() if r.output]
    assert len(set(names)) == len(names)
    assert prepared["compliant"].output is not None
    assert prepared["compliant"].output.name == case("compliant").stem + ".mp4"


@pytest.mark.parametrize("mode", ["loop", "freeze"])
def test_short_clip_extended(tmp_out: Path, mode: str) -> None:
    (result,) = prepare([str(case("short"))], tmp_out,
                        PrepareOptions(extend=mode, use_cache=False))  # type: ignore[arg-type]
    out = _check_compliant(result)
    assert out.duration_ms < rules.MIN_CLIP_MS + 120


def test_trim_on_keyframes_is_remuxed_and_between_is_exact(tmp_out: Path) -> None:
    source = case("long45")
    video = read_mp4(source).track("vide")
    assert video is not None and video.keyframe_ms
    key = next(k for k in video.keyframe_ms if 16_000 < 45_000 - k < 29_000)
    on, between = prepare([f"{source}@{key / 1000}-", f"{source}@{key / 1000 + 0.3}-"], tmp_out,
                          PrepareOptions(use_cache=False))
    assert on.action == "remux" and on.output_info is not None
    assert on.output_info.video_duration_ms == 45_000 - key
    assert between.action == "transcode" and between.output_info is not None
    assert abs(between.output_info.video_duration_ms - (45_000 - key - 300)) <= 100
    _check_compliant(on)
    _check_compliant(between)


def test_size_guarantee_on_noisy_footage(tmp_out: Path) -> None:
    limit = 1_000_000
    (result,) = prepare([str(case("noisy"))], tmp_out,
                        PrepareOptions(max_size_bytes=limit, use_cache=False))
    assert result.action == "transcode"
    assert result.output_info is not None and result.output_info.size_bytes <= limit
    _check_compliant(result)


def test_repeat_is_served_from_the_cache(tmp_path: Path) -> None:
    options = PrepareOptions(cache_dir=tmp_path / "cache")
    source = str(case("vp9"))
    (first,) = prepare([source], tmp_path / "a", options)
    (again,) = prepare([source], tmp_path / "b", options)
    assert not first.cached and again.cached
    assert first.output and again.output
    assert filecmp.cmp(first.output, again.output, shallow=False)
    (other,) = prepare([source], tmp_path / "c", PrepareOptions(cache_dir=tmp_path / "cache",
                                                                 profile="fast"))
    assert not other.cached  # another plan is another entry


def test_small_profile_makes_a_smaller_file_than_balanced(tmp_path: Path) -> None:
    sizes = {}
    for profile in ("balanced", "small"):
        (result,) = prepare([str(case("prores"))], tmp_path / profile,
                            PrepareOptions(use_cache=False, profile=profile))
        assert result.action == "transcode" and result.plan.profile == profile
        sizes[profile] = _check_compliant(result).size_bytes
    assert sizes["small"] < sizes["balanced"]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never"
    results = list(prepare_each([str(case("prores"))], out, dry_run=True))
    assert not out.exists()
    assert isinstance(results[0], PrepResult) and results[0].action == "transcode"


# --- bad input ---------------------------------------------------------------------------

@pytest.fixture()
def bad_files(tmp_path: Path) -> dict[str, Path]:
    source = case("quicktime").read_bytes()  # moov at the end: half of it has no index
    truncated = tmp_path / "truncated.mov"
    truncated.write_bytes(source[: len(source) // 2])
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(4096))
    audio_only = make("audio-only", ["-f", "lavfi", "-i", "sine=duration=3", "-c:a", "aac"],
                      suffix=".m4a")
    return {"truncated": truncated, "garbage": garbage, "audio": audio_only}


def test_bad_inputs_are_reported_and_others_still_done(bad_files: dict[str, Path],
                                                       tmp_out: Path) -> None:
    specs = [str(bad_files["truncated"]), str(case("compliant")), str(bad_files["garbage"]),
             str(bad_files["audio"]), str(case("short"))]
    outcomes = list(prepare_each(specs, tmp_out))
    errors = [o for o in outcomes if isinstance(o, PrepError)]
    assert [type(e) for e in errors] == [MediaError] * 4
    assert "truncated" in str(errors[0]) or "damaged" in str(errors[0])
    assert "no video" in str(errors[2]) or "no video" in str(errors[2]).lower()
    assert all(e.exit_code == 3 for e in errors)
    assert [p.name for p in tmp_out.iterdir()] == [case("compliant").stem + ".mp4"]


def test_cli_prepare_json_and_exit_code(tmp_out: Path) -> None:
    result = CliRunner().invoke(cli, ["prepare", str(case("compliant")), str(case("short")),
                                      "-o", str(tmp_out), "--json", "-q"])
    assert result.exit_code == 3
    rows = json.loads(result.stdout)
    assert rows[0]["action"] == "copy" and rows[0]["size_bytes"] > 0
    assert {"source", "output", "action", "duration_s", "size_bytes"} <= rows[0].keys()
    assert rows[1]["error"] and rows[1]["output"] is None
    assert "1.2 s long" in result.stderr


def test_cli_dry_run_and_doctor(tmp_path: Path) -> None:
    runner = CliRunner()
    dry = runner.invoke(cli, ["prepare", str(case("hdr_hlg")), "-o", str(tmp_path / "x"),
                              "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "transcode" in dry.stdout and "tone-mapped from HLG" in dry.stdout
    assert not (tmp_path / "x").exists()
    doctor = runner.invoke(cli, ["doctor", "--json"])
    assert doctor.exit_code == 0
    assert json.loads(doctor.stdout)["features"]["zscale"] is True


def test_unwritable_output_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(cli, ["prepare", str(case("compliant")), "-o",
                                      str(blocker / "out")])
    assert result.exit_code == 3
    assert "cannot be written" in result.stderr


def test_missing_ffmpeg_is_exit_6(tmp_out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREP_FFMPEG", str(tmp_out / "no-such-ffmpeg"))
    result = CliRunner().invoke(cli, ["prepare", str(case("prores")), "-o", str(tmp_out)])
    assert result.exit_code == 6
    assert list(tmp_out.iterdir()) == []


def test_failing_ffmpeg_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text('#!/bin/sh\n[ "$2" = -version ] && exit 0\nfor a; do last=$a; done\n'
                    'echo partial > "$last"\n'
                    'echo "[libx264 @ 0x1] broken encoder" >&2\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PREP_FFMPEG", str(fake))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["prepare", str(case("mjpeg")), str(case("compliant")),
                                      "-o", str(out), "--no-cache"])
    assert result.exit_code == 3
    assert "broken encoder" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [case("compliant").stem + ".mp4"]


def test_interrupt_leaves_no_partial_file(tmp_out: Path) -> None:
    def interrupt(label: str, done: int, total: int) -> None:
        if done < total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare([str(case("long45"))], tmp_out, PrepareOptions(use_cache=False),
                on_progress=interrupt)
    assert list(tmp_out.iterdir()) == []


def test_full_disk_leaves_nothing(tmp_path: Path) -> None:
    """A file size limit (RLIMIT_FSIZE) stands in for a full disk, for Python and ffmpeg alike."""
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PREP_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "prep", "prepare", str(case("compliant")), str(case("mjpeg")),
         "-o", str(out), "-q"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000)),
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("disk is full") == 2
    assert list(out.iterdir()) == []


# --- a cache that cannot lie ---------------------------------------------------------------

def _first_run(tmp_path: Path) -> tuple[str, PrepareOptions, PrepResult, bytes]:
    options = PrepareOptions(cache_dir=tmp_path / "cache")
    source = str(case("vp9"))  # transcoded: its output goes into the cache
    (first,) = prepare([source], tmp_path / "a", options)
    assert first.output is not None and not first.cached
    return source, options, first, first.output.read_bytes()


def test_output_rewritten_in_place_leaves_the_cache_alone(tmp_path: Path) -> None:
    """A tool writing over out/take.mp4 in place (cp, ffmpeg -y) must not change what the next
    prepare of that clip hands out as cached."""
    source, options, first, made = _first_run(tmp_path)
    assert first.output is not None and first.output.stat().st_nlink == 1  # a copy, not a link
    with first.output.open("r+b") as fh:  # same inode, other content: another clip
        fh.write(case("compliant").read_bytes())
        fh.truncate()
    (again,) = prepare([source], tmp_path / "b", options)
    assert again.cached and again.output is not None and not again.notes
    assert again.output.read_bytes() == made


def test_output_truncated_in_place_does_not_break_the_next_prepare(tmp_path: Path) -> None:
    source, options, first, made = _first_run(tmp_path)
    assert first.output is not None
    os.truncate(first.output, 1000)
    (again,) = prepare([source], tmp_path / "b", options)
    assert again.output is not None and again.output.read_bytes() == made


@pytest.mark.parametrize("damage", ["flip", "truncate", "no-record"])
def test_damaged_cache_entry_is_dropped_rebuilt_and_noted(tmp_path: Path, damage: str) -> None:
    source, options, _first, made = _first_run(tmp_path)
    (entry,) = (tmp_path / "cache" / "prepared").glob("*.mp4")
    record = entry.with_suffix(".json")
    assert json.loads(record.read_text())["size_bytes"] == len(made)
    if damage == "flip":
        data = bytearray(entry.read_bytes())
        data[len(data) // 2] ^= 0xFF
        entry.write_bytes(bytes(data))
    elif damage == "truncate":
        os.truncate(entry, len(made) // 3)
    else:
        record.unlink()
    heard: list[str] = []
    (again,) = prepare([source], tmp_path / "b", options, on_note=heard.append)
    assert not again.cached and again.output is not None
    _check_compliant(again)
    assert len(again.notes) == 1 and heard == list(again.notes)
    assert again.notes[0].startswith(f"{source}: the cached output was damaged (")
    assert "made the clip again" in again.notes[0]
    assert again.notes[0] in again.as_dict()["notes"]  # --json: the same list, extended
    (third,) = prepare([source], tmp_path / "c", options)  # rebuilt: a clean hit again
    assert third.cached and not third.notes


# --- clean processes: stale temp files -------------------------------------------------------

def test_stale_part_files_are_removed_and_live_ones_kept(tmp_out: Path) -> None:
    """`.NAME.PID.part.mp4` of a prep that was killed is removed by the next prepare into that
    folder; one whose process still runs is left alone, and so is any other file."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_out / f".take.{gone.pid}.part.mp4"
    live = tmp_out / f".other.{os.getppid()}.part.mp4"
    other = tmp_out / ".notes.part.mp4"
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    prepare([str(case("compliant"))], tmp_out, PrepareOptions(use_cache=False))
    assert not stale.exists()
    assert live.exists() and other.exists()


# --- one pass over each clip -----------------------------------------------------------------

def test_planned_clips_are_neither_probed_nor_windowed_again(
        tmp_out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import prep.core.plan as core_plan
    from prep.core.window import PlannedClip
    from prep.media.clips import parse_clip_spec

    prepare_module = sys.modules["prep.media.prepare"]
    source = case("long45")
    info = probe(source)
    # Windowed upstream (as estimate and generate do) at 10-20 s; the spec itself has no window.
    spec = parse_clip_spec(str(source))
    window = choose_window(info, parse_clip_spec(f"{source}@10-20").window, label=str(spec))
    planned = PlannedClip(spec, info, window)
    probed: list[Path] = []
    real_probe = prepare_module.probe_with_index

    def counting_probe(path: Path | str) -> tuple[ClipInfo, Any]:
        probed.append(Path(path))
        return real_probe(path)  # type: ignore[no-any-return]

    def no_second_window(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the window was chosen again")

    monkeypatch.setattr(prepare_module, "probe_with_index", counting_probe)
    with monkeypatch.context() as patch:
        patch.setattr(core_plan, "choose_window", no_second_window)
        (dry,) = list(prepare_each([planned], tmp_out, dry_run=True))
        (result,) = prepare([planned], tmp_out, PrepareOptions(use_cache=False))
    assert isinstance(dry, PrepResult) and dry.plan == result.plan or result.attempts > 1
    assert (result.plan.start_ms, result.plan.end_ms) == (10_000, 20_000)
    assert result.spec == spec and result.source is info
    assert source not in probed  # only the output was probed, to verify it
    _check_compliant(result)
    prepare([str(case("compliant"))], tmp_out, PrepareOptions(use_cache=False))
    assert case("compliant") in probed  # a spec is still probed


def test_output_beside_its_own_source_is_named_prep(tmp_out: Path) -> None:
    source = tmp_out / "take.mp4"
    source.write_bytes(case("compliant").read_bytes())
    (result,) = prepare([str(source)], tmp_out, PrepareOptions(use_cache=False))
    assert result.output == tmp_out / "take.prep.mp4"
    assert filecmp.cmp(source, result.output, shallow=False)


# --- damaged and truncated sources -----------------------------------------------------------

def test_damaged_index_is_not_an_internal_error(tmp_path: Path) -> None:
    """A keyframe table whose count runs past its box (a struct.error inside the reader, once
    exit 1 "internal error"): MediaInfo still reads the clip, prep plans a re-encode that
    rebuilds the index, and ffmpeg's refusal of the file is a media error (exit 3) naming it."""
    data = case("compliant").read_bytes()
    at = data.index(b"stss") + 8
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(data[:at] + (0xFFFF_FFF0).to_bytes(4, "big") + data[at + 4:])
    result = CliRunner().invoke(cli, ["prepare", str(damaged), "-o", str(tmp_path / "out"),
                                      "--json", "-q"])
    assert result.exit_code == 3, result.output
    (row,) = json.loads(result.stdout)
    assert row["error"].startswith(f"{damaged}: ")
    with pytest.raises(MediaError, match=r"damaged mp4 index \(the stss box lists"):
        read_mp4(damaged)


def test_output_short_of_its_plan_says_why_and_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A source whose media stops early (here: cut short, with probe's check switched off to
    stand for damage it cannot see): the output is refused with the cause and the fix, not
    handed out 2.4 s long, nor refused as 'came out 680 ms long'."""
    whole = make("eight-faststart-prep", ["-f", "lavfi", "-i",
                                          "testsrc2=size=320x180:rate=30:duration=8", "-c:v",
                                          "libx264", "-preset", "ultrafast", "-g", "30",
                                          "-movflags", "+faststart"]).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) * 43 // 100])
    monkeypatch.setattr(sys.modules["prep.media.probe"], "_check_complete", lambda path: (None, None),
                        raising=False)
    outcomes = list(prepare_each([f"{cut}@1-7", f"{cut}@2.7-7"], tmp_path / "out",
                                 PrepareOptions(use_cache=False)))
    for outcome in outcomes:
        assert isinstance(outcome, MediaError), outcome
        assert "less media than its index lists" in str(outcome)
        assert "not the 6.0 s planned" in str(outcome) or "not the 4.3 s planned" in str(outcome)
        assert "re-export or re-copy the source" in outcome.hint
    assert not list((tmp_path / "out").iterdir())


def test_video_shorter_than_its_audio_is_not_taken_for_a_short_source(tmp_out: Path) -> None:
    """Audio running a second past the video is the source as made, not media gone missing."""
    source = make("audio-outlasts-video", ["-f", "lavfi", "-i",
                                           "testsrc2=size=320x180:rate=30:duration=3", "-f",
                                           "lavfi", "-i", "sine=sample_rate=48000:duration=4",
                                           "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
                                           "-c:a", "aac"], suffix=".mov")
    (result,) = prepare([str(source)], tmp_out, PrepareOptions(use_cache=False))
    assert result.action == "remux" and not result.notes
    _check_compliant(result)


# --- several clips at once -------------------------------------------------------------------

def test_two_clips_at_once_come_back_in_order(tmp_out: Path) -> None:
    """Worked on side by side (two threads, each waiting on its ffmpeg), yielded as given; the
    same clip twice gets two names."""
    specs = [str(case("mjpeg")), str(case("compliant")), str(case("mjpeg"))]
    results = prepare(specs, tmp_out, PrepareOptions(use_cache=False, jobs=2))
    assert [r.output.name for r in results if r.output] == [
        case("mjpeg").stem + ".mp4", case("compliant").stem + ".mp4",
        case("mjpeg").stem + "-2.mp4"]
    assert [r.action for r in results] == ["transcode", "copy", "transcode"]


def test_interrupt_of_clips_at_once_stops_every_ffmpeg(tmp_out: Path) -> None:
    """One clip's interrupt reaches the caller; the other clip's ffmpeg is killed, not waited
    for, and neither leaves a file behind."""
    from prep.media import ffmpeg

    def interrupt(label: str, done: int, total: int) -> None:
        if "mjpeg" in label and done < total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare([str(case("mjpeg")), str(case("long45"))], tmp_out,
                PrepareOptions(use_cache=False, jobs=2), on_progress=interrupt)
    assert list(tmp_out.iterdir()) == []
    assert not ffmpeg._LIVE


def test_no_cache_is_kept_without_a_cache_folder(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache folder is the caller's to give (the CLI gives its settings'): prepare reads no
    settings of its own."""
    monkeypatch.setenv("PREP_CACHE_DIR", str(tmp_path / "from-env"))
    (result,) = prepare([str(case("vp9"))], tmp_path / "out", PrepareOptions(ffmpeg=""))
    assert result.action == "transcode" and not result.cached
    assert not (tmp_path / "from-env").exists()


def test_a_vfr_clip_is_made_at_its_peak_rate(tmp_path: Path) -> None:
    """30 fps for 1.5 s, then 15 fps: MediaInfo averages 18.6 fps, and the clip came out at
    23.976, dropping frames where it ran at 30."""
    from fractions import Fraction

    source = make("vfr-peak30", [
        "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30:duration=4",
        "-vf", "setpts='if(lt(N,45),N/30,1.5+(N-45)/15)/TB'", "-fps_mode", "vfr",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"], suffix=".mp4")
    assert probe(source).vfr
    (result,) = prepare([str(source)], tmp_path, PrepareOptions(use_cache=False))
    assert result.plan.video is not None and result.plan.video.fps == Fraction(30)
    assert result.output is not None and probe(result.output).fps == Fraction(30)
