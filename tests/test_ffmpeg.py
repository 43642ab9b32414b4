"""ffmpeg.py: golden command lines from build_args, the runner (with fake ffmpegs), doctor."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from fractions import Fraction
from pathlib import Path

import pytest
from test_plan import KEYFRAMES, info, opts

from prep.core.plan import plan
from prep.errors import FfmpegError, ToolMissingError
from prep.media.ffmpeg import (
    FfmpegBinary,
    build_args,
    find_ffmpeg,
    inspect_ffmpeg,
    last_meaningful_line,
    run,
    run_together,
    safe_path,
)

MOV = ["-movflags", "+faststart+negative_cts_offsets", "-use_editlist", "0"]
NO_META = ["-map_chapters", "-1", "-map_metadata", "-1"]


def test_remux_argv() -> None:
    args = build_args(plan(info(container="mov"), opts()), "take.mov", "out/take.mp4")
    assert args == ["-i", "take.mov", "-map", "0:v:0", "-map", "0:a:0", "-f", "mp4",
                    "-c:a", "copy", "-c:v", "copy", *NO_META, *MOV, "out/take.mp4"]


def test_keyframe_cut_argv() -> None:
    """Seek 1 ms past the keyframe's rounded time (so it lands on that keyframe, not the one
    before); end the video by frame count (a -t end lets B-frame streams overrun)."""
    args = build_args(plan(info(), opts("take.mp4@2-6"), KEYFRAMES), "take.mp4", "o.mp4")
    assert args == ["-ss", "2.001", "-t", "3.998", "-i", "take.mp4", "-map", "0:v:0", "-map",
                    "0:a:0", "-f", "mp4", "-c:a", "copy", "-c:v", "copy", "-frames:v", "120",
                    *NO_META, *MOV, "o.mp4"]
    to_end = build_args(plan(info(), opts("take.mp4@2-"), KEYFRAMES), "take.mp4", "o.mp4")
    assert to_end[:4] == ["-ss", "2.001", "-i", "take.mp4"] and "-frames:v" not in to_end


AAC = ["-ac", "2", "-ar", "48000", "-b:a", "160k", "-c:a", "aac", "-c:v", "copy"]


def test_video_copy_audio_encode_argv() -> None:
    """H.264 + PCM in mov: the video packets copied, only the audio made AAC, cut to the video."""
    args = build_args(plan(info(container="mov", audio_codec="pcm"), opts(), KEYFRAMES),
                      "take.mov", "out/take.mp4")
    assert args == ["-i", "take.mov", "-filter_complex",
                    "[0:a:0]aresample=48000[s0];[s0]apad[s1];[s1]atrim=end_sample=382976[s2]",
                    "-map", "0:v:0", "-map", "[s2]", "-f", "mp4", *AAC, *NO_META, *MOV,
                    "out/take.mp4"]


def test_keyframe_cut_with_audio_encode_argv() -> None:
    clip = info(audio_codec="ac3", audio_channels=6)
    args = build_args(plan(clip, opts("take.mp4@2-6"), KEYFRAMES), "-take.mp4", "o.mp4")
    assert args == ["-ss", "2.001", "-t", "3.998", "-i", "file:-take.mp4", "-filter_complex",
                    "[0:a:0]aresample=48000[s0];[s0]apad[s1];[s1]atrim=end_sample=190976[s2]",
                    "-map", "0:v:0", "-map", "[s2]", "-f", "mp4", *AAC, "-frames:v", "120",
                    *NO_META, *MOV, "o.mp4"]


def _x264(maxrate: str, frames: int, rate: str = "30/1") -> list[str]:
    return ["-crf", "18", "-fps_mode", "cfr", "-frames:v", str(frames), *NO_META,
            "-maxrate", maxrate, "-movflags", "+faststart+negative_cts_offsets",
            "-pix_fmt", "yuv420p", "-preset", "superfast", "-profile:v", "high", "-r", rate,
            "-use_editlist", "0"]


def test_hdr_transcode_argv_guards_a_dash_name() -> None:
    clip = info(video_codec="hevc", hdr="HLG", bit_depth=10, width=3840, height=2160)
    args = build_args(plan(clip, opts("take.mp4@1.5-7")), "-take.mov", "out/take.mp4")
    graph = ("[0:v:0]zscale=h=1080:min=bt2020nc:npl=203:pin=bt2020:t=linear:tin=arib-std-b67:"
             "w=1920[s0];[s0]format=gbrpf32le[s1];"
             "[s1]colorchannelmixer=bb=0.844595:gg=0.844595:rr=0.844595[s2];"
             "[s2]tonemap=desat=0:param=0.844595:peak=4.1606:tonemap=mobius[s3];"
             "[s3]colorchannelmixer=bb=1.184000:gg=1.184000:rr=1.184000[s4];"
             "[s4]zscale=m=bt709:p=bt709:r=tv:t=bt709[s5];"
             "[s5]setsar=1[s6];[s6]format=yuv420p[s7];[0:a:0]aresample=48000[s8];[s8]apad[s9];"
             "[s9]atrim=end_sample=262976[s10]")
    assert args == [
        "-ss", "1.500", "-i", "file:-take.mov", "-filter_complex", graph, "-map", "[s7]",
        "-map", "[s10]", "-f", "mp4", "-ac", "2", "-ar", "48000", "-b:a", "160k",
        "-bufsize", "62500k", "-c:a", "aac", "-c:v", "libx264", "-color_primaries", "bt709",
        "-color_range", "tv", "-color_trc", "bt709", "-colorspace", "bt709",
        *_x264("50000k", 165), "out/take.mp4",
    ]


def test_interlaced_anamorphic_surround_argv() -> None:
    clip = info(video_codec="mpeg2video", interlaced=True, pixel_aspect=Fraction(64, 45),
                width=720, height=576, fps=Fraction(25), audio_channels=6, audio_codec="mp2")
    args = build_args(plan(clip, opts()), "tape.mpg", "tape.mp4")
    assert args[args.index("-filter_complex") + 1] == (
        "[0:v:0]bwdif=mode=send_frame[s0];[s0]scale=1024:576:flags=bicubic[s1];[s1]setsar=1[s2];"
        "[s2]format=yuv420p[s3];[0:a:0]aresample=48000[s4];[s4]apad[s5];"
        "[s5]atrim=end_sample=382976[s6]")
    assert args[args.index("-frames:v") + 1] == "200"
    assert args[args.index("-ac") + 1] == "2"


def test_extend_argv() -> None:
    short = info(duration_ms=1200, video_duration_ms=1200, audio_duration_ms=1200)
    loop = build_args(plan(short, opts(extend="loop")), "blink.mp4", "b.mp4")
    assert loop[:4] == ["-t", "1.200", "-i", "blink.mp4"]
    assert "loop=loop=-1:size=36" in loop[loop.index("-filter_complex") + 1]
    assert "aloop=loop=-1" in loop[loop.index("-filter_complex") + 1]
    freeze = build_args(plan(info(duration_ms=1200, video_duration_ms=1200, audio_codec=None,
                                  audio_duration_ms=None, vfr=True), opts(extend="freeze")),
                        "blink.mp4", "b.mp4")
    assert freeze[freeze.index("-filter_complex") + 1] == (
        "[0:v:0]setsar=1[s0];[s0]fps=30/1[s1];[s1]format=yuv420p[s2];"
        "[s2]tpad=stop=-1:stop_mode=clone[s3]")
    assert "-c:a" not in freeze


def test_small_profile_argv_sets_its_x264_options() -> None:
    small = build_args(plan(info(video_codec="hevc"), opts(profile="small")), "take.mp4", "o.mp4")
    assert small[small.index("-preset") + 1] == "faster" and small[small.index("-crf") + 1] == "22"
    assert small[small.index("-x264-params") + 1] == "subme=7:aq-mode=2:psy=0"
    balanced = build_args(plan(info(video_codec="hevc"), opts()), "take.mp4", "o.mp4")
    assert "-x264-params" not in balanced


def test_copy_plan_has_no_argv() -> None:
    with pytest.raises(ValueError):
        build_args(plan(info(), opts(), KEYFRAMES), "a.mp4", "b.mp4")


@pytest.mark.parametrize(("name", "safe"), [
    ("take.mov", "take.mov"), ("-i.mov", "file:-i.mov"), ("a:b.mov", "file:a:b.mov"),
    ("/abs/-x.mov", "/abs/-x.mov"),
])
def test_safe_path(name: str, safe: str) -> None:
    assert safe_path(name) == safe


def test_last_meaningful_line() -> None:
    lines = ["Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':", "  Duration: 00:00:03.00",
             "[h264 @ 0x1] Invalid NAL unit size", "Error while decoding stream #0:0",
             "Conversion failed!"]
    assert last_meaningful_line(lines) == "Error while decoding stream #0:0"


# --- the runner, with fake ffmpegs ----------------------------------------------------------

def _fake(tmp_path: Path, body: str) -> FfmpegBinary:
    script = tmp_path / "fake-ffmpeg"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return FfmpegBinary(str(script), "PREP_FFMPEG")


def test_runner_reports_progress_and_passes_its_flags(tmp_path: Path) -> None:
    fake = _fake(tmp_path, f'echo "$@" > {tmp_path}/argv\n'
                 'printf "frame=1\\nout_time_us=500000\\nprogress=continue\\n'
                 'out_time_us=2000000\\nprogress=end\\n"\necho noise >&2\n')
    seen: list[tuple[int, int]] = []
    run(["-i", "x"], total_ms=2000, path="x", binary=fake,
        on_progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (500, 2000) and seen[-1] == (2000, 2000)
    assert (tmp_path / "argv").read_text().split() == [
        "-nostdin", "-hide_banner", "-y", "-progress", "pipe:1", "-nostats", "-i", "x"]


def test_runner_failure_names_the_file_and_keeps_stderr(tmp_path: Path) -> None:
    fake = _fake(tmp_path, 'echo "Input #0, avi" >&2\necho "[mjpeg @ 0x2] bad huffman" >&2\n'
                 'echo "Conversion failed!" >&2\nexit 1\n')
    with pytest.raises(FfmpegError) as caught:
        run([], total_ms=1000, path="clip.avi", binary=fake)
    assert caught.value.exit_code == 3
    assert str(caught.value) == "clip.avi: ffmpeg failed: [mjpeg @ 0x2] bad huffman"
    assert "Conversion failed!" in caught.value.detail


def test_runner_full_disk(tmp_path: Path) -> None:
    fake = _fake(tmp_path, 'echo "av_interleaved_write_frame(): No space left on device" >&2\n'
                 "exit 1\n")
    with pytest.raises(FfmpegError, match="disk is full"):
        run([], total_ms=1000, path="clip.mov", binary=fake)


def test_runner_kills_ffmpeg_on_interrupt(tmp_path: Path) -> None:
    fake = _fake(tmp_path, f"echo $$ > {tmp_path}/pid\n"
                 "while true; do echo out_time_us=1000; sleep 0.05; done\n")

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run([], total_ms=1000, path="x", binary=fake, on_progress=interrupt)
    pid = int((tmp_path / "pid").read_text())
    time.sleep(0.05)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_run_together_runs_all_and_keeps_their_order(tmp_path: Path) -> None:
    fake = _fake(tmp_path, 'for a; do last=$a; done\necho "said $last" >&2\n')
    results = run_together([(["-i", "a"], "a"), (["-i", "b"], "b"), (["-i", "c"], "c")],
                           binary=fake)
    assert [r.stderr for r in results] == ["said a", "said b", "said c"]


def test_run_together_stops_the_others_when_one_fails(tmp_path: Path) -> None:
    """A failed piece raises at once (naming its file) and the slow sibling is killed, not
    waited for."""
    fake = _fake(tmp_path, 'for a; do last=$a; done\n'
                 f'if [ "$last" = slow ]; then echo $$ > {tmp_path}/pid; exec sleep 600; fi\n'
                 'while [ ! -s ' + f"{tmp_path}/pid" + ' ]; do sleep 0.01; done\n'
                 'echo "broken input" >&2\nexit 1\n')
    with pytest.raises(FfmpegError, match="^bad.mp4: ffmpeg failed: broken input"):
        run_together([(["-i", "slow"], "slow.mp4"), (["-i", "bad"], "bad.mp4")], binary=fake)
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_missing_configured_ffmpeg_is_tool_missing(tmp_path: Path) -> None:
    with pytest.raises(ToolMissingError) as caught:
        find_ffmpeg(str(tmp_path / "no-ffmpeg"))
    assert caught.value.exit_code == 6


def test_inspect_real_ffmpeg() -> None:
    report = inspect_ffmpeg(find_ffmpeg(""))
    assert report.features["libx264"] and report.features["aac"] and report.features["zscale"]
    assert report.version != "unknown" and not report.missing


def test_inspect_reports_missing_features(tmp_path: Path) -> None:
    fake = _fake(tmp_path, 'case "$2" in -version) echo "ffmpeg version 1.2.3 Copyright";;\n'
                 '-encoders) echo " A..... aac   AAC";;\n-filters) echo " .. scale V->V x";;\n'
                 "esac\n")
    report = inspect_ffmpeg(fake)
    assert report.version == "1.2.3"
    assert "libx264" in report.missing and "zscale" in report.missing
    assert "aac" not in report.missing


# --- ffmpeg never outlives prep ----------------------------------------------------------------

_SLOW_RUN = """
import sys
from prep.media.ffmpeg import run

said = False

def progress(done_ms: int, total_ms: int) -> None:
    global said
    if not said:
        said = True
        print("running", flush=True)

run(sys.argv[1:], total_ms=600_000, path="slow", on_progress=progress)
"""
# Read at its own pace (-re): slow by the clock, cheap in CPU.
_SLOW_ARGS = ["-re", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30", "-t", "600",
              "-c:v", "libx264", "-preset", "ultrafast", "-f", "null", "-"]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _gone(pid: int) -> bool:
    """No such process, or a zombie waiting for a reaper (it runs no more)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_ffmpeg_dies_with_a_killed_prep() -> None:
    """kill -9 of the process running ffmpeg takes ffmpeg with it (parent-death signal), and
    ffmpeg runs in a process group of its own."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent),
                                                         os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, "-c", _SLOW_RUN, *_SLOW_ARGS],
                              stdout=subprocess.PIPE, text=True, env=env)
    children: list[int] = []
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "running"
        children = _children(parent.pid)
        assert children, "no ffmpeg under the runner"
        assert all(os.getpgid(child) == child for child in children)  # its own group
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 60  # generous: only a bound on waiting, not a timing
        while not all(_gone(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_gone(c) for c in children), "ffmpeg outlived the killed runner"
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        for child in children:
            with contextlib.suppress(OSError):
                os.kill(child, 9)


def test_find_ffmpeg_reads_no_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The configured ffmpeg comes from the caller's settings: PREP_FFMPEG alone changes nothing
    below the ui."""
    monkeypatch.setenv("PREP_FFMPEG", str(tmp_path / "no-ffmpeg"))
    assert find_ffmpeg().source in ("PATH", "imageio-ffmpeg")
