"""Recipes of the test clips prepare must handle: one small generated file per awkward case.

Kept tiny (mostly 320x180, 2.5-4 s) so the whole set is made in seconds on 2 cores; cached by
recipe in PREP_TEST_MEDIA (see mediagen.py).
"""

from __future__ import annotations

from pathlib import Path

from mediagen import make

SMALL = "320x180"
TONE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration={s}"]
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def _src(size: str = SMALL, rate: str = "30", seconds: float = 3, tone: bool = True,
         pattern: str = "testsrc2") -> list[str]:
    args = ["-f", "lavfi", "-i", f"{pattern}=size={size}:rate={rate}:duration={seconds}"]
    if tone:
        args += [a.format(s=seconds) for a in TONE]
    return args


CASES: dict[str, tuple[list[str], str]] = {
    # Already compliant: H.264 + AAC in mp4 with the index first -> copied byte for byte.
    "compliant": (_src() + X264 + ["-g", "30", "-c:a", "aac", "-shortest", "-movflags", "+faststart"],
                  ".mp4"),
    # The same streams in QuickTime -> remuxed.
    "quicktime": (_src() + X264 + ["-g", "30", "-c:a", "aac", "-shortest"], ".mov"),
    # A portrait phone clip: landscape pixels plus a rotation flag, in mov.
    "phone": (["-display_rotation", "90", "-i", "{compliant}", "-c", "copy"], ".mov"),
    # Variable frame rate: the second half runs at half the rate.
    "vfr": (_src(seconds=3) + ["-vf", "setpts='if(lt(N,45),N/30,1.5+(N-45)/15)/TB'",
                               "-fps_mode", "vfr"] + X264 + ["-c:a", "aac", "-shortest"], ".mp4"),
    # HEVC 10-bit HLG, as an iPhone records HDR.
    "hdr_hlg": (_src(tone=False) + ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt",
                                    "yuv420p10le", "-x265-params", "log-level=error:colorprim=bt2020:"
                                    "transfer=arib-std-b67:colormatrix=bt2020nc", "-tag:v", "hvc1"],
                ".mov"),
    # 4K at 60 fps: flat content keeps it cheap to make and to scale.
    "uhd60": (["-f", "lavfi", "-i", "color=c=0x406080:size=3840x2160:rate=60:duration=2.2,"
               "drawbox=x=t*400:y=200:w=800:h=800:c=white:t=fill"]
              + [a.format(s=2.2) for a in TONE] + X264 + ["-c:a", "aac", "-shortest"], ".mp4"),
    # 45 s long, tiny: cut to its first 30 s minus a frame.
    "long45": (_src(size="96x54", rate="10", seconds=45) + X264 + ["-c:a", "aac", "-shortest"],
               ".mp4"),
    # 1.2 s: too short unless --extend.
    "short": (_src(seconds=1.2) + X264 + ["-c:a", "aac", "-shortest"], ".mp4"),
    # Odd dimensions.
    "odd": (_src() + ["-vf", "scale=321:181", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
                                    "yuv444p", "-c:a", "aac", "-shortest"], ".mp4"),
    # 4:4:4 chroma (High 4:4:4 profile).
    "yuv444": (_src() + ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p",
                         "-c:a", "aac", "-shortest"], ".mp4"),
    # No audio at all.
    "silent": (_src(tone=False) + X264 + ["-movflags", "+faststart"], ".mp4"),
    # VP9 + Opus in WebM.
    "vp9": (_src() + ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                      "-b:v", "300k", "-c:a", "libopus", "-shortest"], ".webm"),
    # ProRes 422 Proxy with PCM, as an editor exports it.
    "prores": (_src() + ["-c:v", "prores_ks", "-profile:v", "0", "-c:a", "pcm_s16le",
                         "-shortest"], ".mov"),
    # Interlaced, anamorphic (16:9 on 4:3 pixels) MPEG-2 in a program stream with MP2 audio.
    "mpeg2": (_src(size="352x288", rate="25") + ["-c:v", "mpeg2video", "-b:v", "1M", "-flags",
                                                  "+ilme+ildct", "-vf", "setfield=tff", "-aspect", "16:9",
                                                  "-c:a", "mp2", "-shortest"], ".mpg"),
    # Motion JPEG in AVI with PCM.
    "mjpeg": (_src() + ["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p", "-c:a",
                        "pcm_s16le", "-shortest"], ".avi"),
    # 5.1 AAC beside compliant H.264: the video copied, the audio downmixed to stereo AAC.
    "surround": (_src(tone=False) + ["-f", "lavfi", "-i",
                                     "sine=frequency=300:sample_rate=48000:duration=3",
                                     "-filter_complex", "[1:a]pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|"
                                     "c4=c0|c5=c0[a]", "-map", "0:v", "-map", "[a]"] + X264
                 + ["-c:a", "aac", "-shortest"], ".mp4"),
    # Camera-style: compliant H.264 (keyframe every second) with PCM audio in QuickTime ->
    # the video copied, only the audio re-encoded to AAC.
    "pcm_mov": (_src(seconds=4) + X264 + ["-g", "30", "-c:a", "pcm_s16le", "-shortest"], ".mov"),
    # Compliant H.264 with Opus in Matroska (keyframes found by ffmpeg when cut).
    "opus_mkv": (_src(seconds=4) + X264 + ["-g", "30", "-c:a", "libopus", "-shortest"], ".mkv"),
    # Compliant H.264 with mono AAC at 44.1 kHz: what the API takes, so copied as it is.
    "aac_mono44": (_src(tone=False) + ["-f", "lavfi", "-i",
                                       "sine=frequency=440:sample_rate=44100:duration=3"] + X264
                   + ["-g", "30", "-c:a", "aac", "-ac", "1", "-shortest", "-movflags", "+faststart"],
                   ".mp4"),
    # NTSC rate with B-frames and PCM: keyframe times are not whole ms (800.8 ms...), and ffmpeg
    # ends a stream copy's -t by decode time.
    "ntsc_bframes": (_src(rate="30000/1001", seconds=5) + ["-c:v", "libx264", "-preset",
                                                          "veryfast", "-bf", "3", "-g", "24",
                                                          "-pix_fmt", "yuv420p", "-c:a",
                                                          "pcm_s16le", "-shortest"], ".mov"),
    # Noise everywhere: a plain target bitrate overshoots on this, a VBV cap does not.
    "noisy": (["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=3,"
               "noise=alls=60:allf=t+u"] + [a.format(s=3) for a in TONE]
              + ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-pix_fmt", "yuv420p",
                 "-c:a", "aac", "-shortest"], ".mp4"),
}


def case(name: str) -> Path:
    """The generated clip for one case (made once, then cached)."""
    args, suffix = CASES[name]
    # "{other}" stands for another case's file: some clips are made from others (stream copies).
    args = [str(case(a[1:-1])) if a.startswith("{") else a for a in args]
    return make(name, args, suffix=suffix)
