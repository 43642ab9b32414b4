"""Probing an image or sound file given as a reference (pymediainfo reads both)."""

from __future__ import annotations

from pathlib import Path

from prep.core.references import ReferenceFile, ReferenceKind
from prep.errors import MediaError

__all__ = ["probe_reference"]

# MediaInfo's format names, as prep and the model tables spell them.
_FORMATS = {"png": "png", "jpeg": "jpeg", "webp": "webp", "bitmap": "bmp", "bmp": "bmp", "gif": "gif",
            "mpeg audio": "mp3", "wave": "wav", "pcm": "wav", "flac": "flac", "aac": "aac",
            "mpeg-4": "m4a", "ogg": "ogg", "opus": "opus", "vorbis": "ogg"}


def probe_reference(path: Path | str, kind: ReferenceKind) -> ReferenceFile:
    """What an image (kind 'image') or sound file ('audio', 'voice') is. MediaError (exit 3)
    naming the file when it cannot be read or is not of that kind."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "no such file", hint="check the path")
    from pymediainfo import MediaInfo  # loads libmediainfo: only when a reference is probed

    try:
        info = MediaInfo.parse(path)
    except (OSError, RuntimeError) as err:
        raise MediaError(path, f"cannot be read ({err})") from err
    general = next((t for t in info.tracks if t.track_type == "General"), None)
    wanted = "Image" if kind == "image" else "Audio"
    track = next((t for t in info.tracks if t.track_type == wanted), None)
    if general is None or track is None or (kind != "image" and any(
            t.track_type == "Video" for t in info.tracks)):
        what = "an image" if kind == "image" else "a sound file"
        raise MediaError(path, f"not {what}",
                         hint="give a PNG, JPEG, BMP or WEBP still" if kind == "image"
                         else "give a WAV or MP3 file (or a clip: prep takes its speech)")
    raw = str(general.format or track.format or "").lower()
    duration = track.duration or general.duration
    return ReferenceFile(
        path=path, kind=kind, format=_FORMATS.get(raw, raw), size_bytes=path.stat().st_size,
        width=int(track.width) if track.width else None,
        height=int(track.height) if track.height else None,
        duration_ms=round(float(duration)) if duration and kind != "image" else None,
        alpha=kind == "image" and "A" in str(track.color_space or ""),
    )
