"""Make the demo's sample clips with ffmpeg (lavfi test sources): `python scripts/samples.py DIR`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prep.media.ffmpeg import find_ffmpeg

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
    print(f"sample clips in {out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo-out/samples")
