"""Footage with known answers for `prep pick`: shots, faces and speech at known times.

The pictures come from scikit-image (its public-domain NASA astronaut portrait, and a rocket on its
launch pad as a shot with no face). The speech is espeak-ng's, committed as two small Opus files in
`fixtures/pick/` so CI needs no speech synthesiser; `python tests/pickmedia.py --speech` makes them
again. Music is a lavfi chord, noise is lavfi pink noise, and every shot change is a hard cut.

`interview()` is the main test clip; `INTERVIEW` describes what is in it, second by second.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:  # run as a script (python tests/pickmedia.py), or by the benchmark
    sys.path.insert(0, str(HERE))

import testmarks  # noqa: E402
from mediagen import CACHE, cached, ffmpeg_exe, make  # noqa: E402

SPEECH_DIR = ROOT / "fixtures" / "pick"
# What espeak-ng says in each committed file, and how long each one is (s, as synthesised).
SPEECH_TEXT = {
    "speech_a": "Hello, and welcome back to the workshop. Today we look at reference clips.",
    "speech_b": ("I am standing in front of the camera and talking, so the model can learn my face "
                 "and my voice. Every second counts."),
}
SPEECH_S = {"speech_a": 5.6, "speech_b": 8.2}

# A chord (A minor: A3, C4, E4) with a slow pulse, loud like music under a video.
MUSIC = ("0.16*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*2*t))+0.12*sin(2*PI*261.63*t)"
         "+0.10*sin(2*PI*329.63*t)+0.05*sin(2*PI*440*t)")


@dataclass(frozen=True)
class Shot:
    """One shot of a generated clip: what it shows and what it sounds like."""

    seconds: float
    picture: str  # "portrait", "stranger", "landscape" or "pattern"
    sound: str  # "music", "noise", "silence" or a speech name
    speech_at: float = 0.0  # where the speech starts inside the shot (s)


@dataclass(frozen=True)
class Footage:
    """A clip recipe and its known answers (times in seconds from the clip's start)."""

    shots: tuple[Shot, ...]

    @property
    def cuts(self) -> list[float]:
        """Start of every shot but the first."""
        out, t = [], 0.0
        for shot in self.shots[:-1]:
            t += shot.seconds
            out.append(round(t, 3))
        return out

    @property
    def duration(self) -> float:
        return sum(s.seconds for s in self.shots)

    def shot_span(self, index: int) -> tuple[float, float]:
        start = sum(s.seconds for s in self.shots[:index])
        return start, start + self.shots[index].seconds

    def speech_span(self, index: int) -> tuple[float, float]:
        start, end = self.shot_span(index)
        shot = self.shots[index]
        begin = start + shot.speech_at
        return begin, min(end, begin + SPEECH_S[shot.sound])


# 26 s: pattern + music | face, noise | rocket, speech | face + speech (the answer) | pattern + music
INTERVIEW = Footage((
    Shot(4, "pattern", "music"),
    Shot(4, "portrait", "noise"),
    Shot(4, "landscape", "speech_a"),
    Shot(11, "portrait", "speech_b", speech_at=1.0),
    Shot(3, "pattern", "music"),
))
INTERVIEW_ANSWER = 3  # index of the shot `prep pick` must choose

# Someone else, talking first: rocket + speech | the stranger talking (the answer) | astronaut + noise
STRANGER = Footage((
    Shot(5, "landscape", "speech_a"),
    Shot(9, "stranger", "speech_b", speech_at=0.5),
    Shot(4, "portrait", "noise"),
))
STRANGER_ANSWER = 1

NO_FACE = Footage((Shot(3, "pattern", "music"), Shot(7, "landscape", "speech_b", speech_at=0.5)))
NO_SPEECH = Footage((Shot(3, "pattern", "noise"), Shot(6, "portrait", "music")))


def speech(name: str) -> Path:
    """A committed speech recording (Opus, 16 kHz mono)."""
    path = SPEECH_DIR / f"{name}.opus"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run python tests/pickmedia.py --speech")
    return path


def make_speech() -> list[Path]:
    """Synthesise the speech fixtures again with espeak-ng (a Debian package)."""
    espeak = shutil.which("espeak-ng")
    if not espeak:
        raise SystemExit("espeak-ng is not installed (apt-get install -y espeak-ng)")
    SPEECH_DIR.mkdir(parents=True, exist_ok=True)
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in SPEECH_TEXT.items():
            wav = Path(tmp) / f"{name}.wav"
            subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
            out = SPEECH_DIR / f"{name}.opus"
            subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-i", str(wav), "-ac", "1",
                            "-ar", "16000", "-c:a", "libopus", "-b:a", "24k", str(out)], check=True)
            made.append(out)
    return made


STRANGER_INDEX = 3  # which of scikit-image's Labeled Faces in the Wild crops is the stranger


def _stranger() -> object:
    """A face the detector was never tuned on: an LFW crop, enlarged onto a grey-brown backdrop."""
    import numpy as np
    from PIL import Image
    from skimage import data

    face = (data.lfw_subset()[STRANGER_INDEX] * 255).astype(np.uint8)
    big = np.asarray(Image.fromarray(face).resize((240, 240), Image.BICUBIC))
    y, x = np.mgrid[0:512, 0:512]
    backdrop = (90 + 60 * x / 512 + 20 * np.sin(y / 40)).astype(np.uint8)
    backdrop[40:280, 136:376] = big
    tint = np.array([1.0, 0.92, 0.8])
    return (backdrop[:, :, None] * tint).clip(0, 255).astype(np.uint8)


def picture(name: str) -> Path:
    """A still as a PNG in the media cache: scikit-image's astronaut ("portrait"), rocket
    ("landscape"), or a face from its Labeled Faces in the Wild subset ("stranger")."""
    testmarks.require("media", f"generates a test picture ({name})")
    out = CACHE / f"{name}-{STRANGER_INDEX}.png" if name == "stranger" else CACHE / f"{name}.png"

    def build(tmp: Path) -> None:
        from PIL import Image
        from skimage import data

        pixels = {"portrait": data.astronaut, "landscape": data.rocket, "stranger": _stranger}[name]()
        Image.fromarray(pixels).save(tmp)

    return cached(out, build)


def _video(shot: Shot, size: str, rate: int) -> tuple[list[str], str]:
    """Input arguments and a filter chain (applied to that input) for one shot's picture."""
    width, height = (int(v) for v in size.split("x"))
    fit = f"scale={width}:{height},setsar=1,fps={rate},format=yuv420p"
    if shot.picture == "pattern":
        return (["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={shot.seconds}"],
                "format=yuv420p")
    image = picture(shot.picture)
    loop = ["-loop", "1", "-framerate", str(rate), "-t", str(shot.seconds), "-i", str(image)]
    if shot.picture in ("portrait", "stranger"):
        # A 16:9 crop of the 512x512 portrait that drifts slowly, as a hand-held camera would.
        move = "crop=448:252:x='32+24*sin(t*0.7)':y='16+12*sin(t*0.45)'"
    else:
        move = "crop=560:315:x='40+30*sin(t*0.3)':y='56+20*sin(t*0.2)'"
    # Light grain, so the picture is not perfectly still between frames (as real footage).
    return loop, f"{move},{fit},noise=alls=6:allf=t"


def _audio(shot: Shot) -> tuple[list[str], str]:
    seconds = shot.seconds
    if shot.sound == "music":
        return ["-f", "lavfi", "-i", f"aevalsrc='{MUSIC}':s=48000:d={seconds}"], "anull"
    if shot.sound == "noise":
        return ["-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a=0.08:r=48000"], "anull"
    if shot.sound == "silence":
        return ["-f", "lavfi", "-i", f"anullsrc=r=48000:cl=mono:d={seconds}"], "anull"
    delay_ms = int(shot.speech_at * 1000)
    return (["-i", str(speech(shot.sound))],
            f"aresample=48000,adelay={delay_ms}:all=1,apad,atrim=0:{seconds}")


def footage(name: str, recipe: Footage, *, size: str = "320x180", rate: int = 25,
            encode: list[str] | None = None) -> Path:
    """Render `recipe` to an H.264/AAC mp4 (cached by recipe)."""
    args: list[str] = []
    chains: list[str] = []
    labels: list[str] = []
    index = 0
    for number, shot in enumerate(recipe.shots):
        v_args, v_chain = _video(shot, size, rate)
        a_args, a_chain = _audio(shot)
        args += v_args + a_args
        chains.append(f"[{index}:v]{v_chain},setpts=PTS-STARTPTS[v{number}]")
        chains.append(f"[{index + 1}:a]{a_chain},aformat=sample_rates=48000:channel_layouts=mono,"
                      f"asetpts=PTS-STARTPTS[a{number}]")
        labels.append(f"[v{number}][a{number}]")
        index += 2
    graph = ";".join(chains) + ";" + "".join(labels) + f"concat=n={len(recipe.shots)}:v=1:a=1[v][a]"
    args += ["-filter_complex", graph, "-map", "[v]", "-map", "[a]"]
    args += encode or ["-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-g", "50"]
    args += ["-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart"]
    return make(name, args)


def interview() -> Path:
    """The 26 s test interview (320x180, 25 fps) described by INTERVIEW."""
    return footage("pick-interview", INTERVIEW)


def bench_clip(seconds: int = 60, size: str = "1920x1080") -> Path:
    """A long talking clip at camera resolution for the benchmark: shots of 6-14 s, speech in most."""
    shots: list[Shot] = []
    pattern = [Shot(8, "portrait", "speech_b", 0.5), Shot(6, "landscape", "music"),
               Shot(10, "portrait", "speech_a", 2.0), Shot(6, "pattern", "noise")]
    total = 0.0
    while total < seconds:
        shot = pattern[len(shots) % len(pattern)]
        shot = Shot(min(shot.seconds, seconds - total), shot.picture, shot.sound, shot.speech_at)
        shots.append(shot)
        total += shot.seconds
    # Camera-like H.264: High profile with CABAC and B-frames, about 12 Mb/s.
    encode = ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-b:v", "12M",
              "-maxrate", "16M", "-bufsize", "24M", "-g", "60"]
    return footage(f"pick-bench-{seconds}s-{size}", Footage(tuple(shots)), size=size, rate=30,
                   encode=encode)


if __name__ == "__main__":
    if "--speech" in sys.argv[1:]:
        for path in make_speech():
            print(path)
    else:
        print(interview())
