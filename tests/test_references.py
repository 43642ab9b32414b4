"""Images and sound as references: probed with MediaInfo, judged by the chosen model's table."""

from __future__ import annotations

from pathlib import Path

import mediagen
import pytest

from prep.core import models
from prep.core.references import ReferenceFile, file_problems
from prep.errors import MediaError
from prep.media.references import probe_reference


def _ref(**kw: object) -> ReferenceFile:
    fields: dict[str, object] = dict(path=Path("still.png"), kind="image", format="png",
                                     size_bytes=100_000, width=1024, height=768)
    fields.update(kw)
    return ReferenceFile(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("model", "ref", "words"), [
    ("3.0", _ref(), None),
    ("2.6", _ref(), "takes no image references"),
    ("2.7", _ref(width=200), "240-8000 px a side"),
    ("3.0", _ref(width=8000, height=900), "beyond 1:8 to 8:1"),
    ("3.0", _ref(format="gif"), "is gif"),
    ("3.0", _ref(alpha=True), "transparency"),
    ("3.0", _ref(size_bytes=25_000_000), "at most 20,000,000"),
    ("3.0", _ref(kind="audio", format="mp3", width=None, height=None, duration_ms=16_000), "1.0 to 15.0 s"),
    ("2.7", _ref(kind="voice", format="wav", width=None, height=None, duration_ms=11_000), "1.0 to 10.0 s"),
    ("2.7", _ref(kind="voice", format="wav", width=None, height=None, duration_ms=4_000), None),
    ("3.0", _ref(kind="voice", format="wav", width=None, height=None, duration_ms=4_000), "wan2.7"),
])
def test_file_problems(model: str, ref: ReferenceFile, words: str | None) -> None:
    problems = file_problems(models.model_spec(model), ref)
    assert (problems == []) == (words is None), problems
    if words:
        assert any(words in p for p in problems), problems


@pytest.mark.media
def test_probe_reference_reads_images_and_sound() -> None:
    png = mediagen.make("ref-still", ["-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1"],
                        suffix=".png")
    mp3 = mediagen.make("ref-voice", ["-f", "lavfi", "-i", "sine=frequency=300:duration=3",
                                      "-c:a", "libmp3lame"], suffix=".mp3")
    still = probe_reference(png, "image")
    assert (still.format, still.width, still.height, still.alpha) == ("png", 320, 240, False)
    voice = probe_reference(mp3, "voice")
    assert voice.format == "mp3" and voice.duration_ms is not None and 2_900 <= voice.duration_ms <= 3_100
    with pytest.raises(MediaError, match="not a sound file"):
        probe_reference(png, "voice")
    with pytest.raises(MediaError, match="not an image"):
        probe_reference(mp3, "image")
