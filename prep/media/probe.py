"""Probing: a file on disk becomes a `ClipInfo` (libmediainfo, through `prep.media.mediainfo`).

`probe` does the I/O; `prep.core.clipinfo.assess` judges the result. An mp4 or mov has its
sample tables read too (`prep.media.mp4`), to catch a file cut short; `probe_with_index` hands
them over with the `ClipInfo`, so that prepare plans (and smart-cuts) from them without reading
the index again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from prep.core import rules
from prep.core.clipinfo import ClipInfo
from prep.errors import MediaError
from prep.media import mediainfo
from prep.media.mp4 import Mp4Info, read_mp4

__all__ = ["hdr_peak_nits", "probe", "probe_many", "probe_with_index", "start_timecode"]

_CONTAINERS = {
    "matroska": "mkv", "webm": "webm", "avi": "avi", "mpeg-ps": "mpeg-ps", "mpeg-ts": "mpeg-ts",
    "bdav": "mpeg-ts", "mxf": "mxf", "flash video": "flv", "windows media": "wmv", "ogg": "ogg",
    "dv": "dv", "realmedia": "rm",
}
_VIDEO_CODECS = {
    "avc": "h264", "hevc": "hevc", "prores": "prores", "vp8": "vp8", "vp9": "vp9", "av1": "av1",
    "jpeg": "mjpeg", "mpeg-4 visual": "mpeg4", "dv": "dvvideo", "ffv1": "ffv1", "vc-1": "vc1",
    "dnxhd": "dnxhd", "vc-3": "dnxhd", "theora": "theora", "h.263": "h263", "cineform": "cfhd",
}
_AUDIO_CODECS = {
    "aac": "aac", "pcm": "pcm", "ac-3": "ac3", "e-ac-3": "eac3", "opus": "opus", "vorbis": "vorbis",
    "flac": "flac", "alac": "alac", "dts": "dts", "wma": "wma", "amr": "amr",
}
_NTSC = (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001), Fraction(120000, 1001))
_MEDIAINFO_OPTIONS = {"File_TestContinuousFileNames": "0", "ParseSpeed": "0.5"}


def probe(path: Path | str) -> ClipInfo:
    """Probe one file. Raises MediaError (exit 3) naming the file and what is wrong."""
    return probe_with_index(path)[0]


def probe_with_index(path: Path | str) -> tuple[ClipInfo, Mp4Info | None]:
    """Probe one file, with the sample tables of an mp4 / mov as the probe read them (None for
    another container, or an index too damaged to read, which MediaInfo may still get past).
    MediaError (exit 3) as `probe`."""
    path = Path(path)
    _check_readable(path)
    media = _read(path)
    general = media.general_tracks[0] if media.general_tracks else None
    index = damage = None
    if general is not None and general.format in ("MPEG-4", "QuickTime"):
        index, damage = _check_complete(path)
    info = _clip_info(path, media)
    return (replace(info, index_damage=damage) if damage else info), index


def start_timecode(path: Path | str) -> str | None:
    """The timecode of the clip's first frame (its tmcd track), e.g. `01:00:00;00`; None without one.

    Editors' timelines count source frames from it, so a window read from a timeline subtracts it.
    """
    media = _read(Path(path))
    for track in media.tracks:
        value = getattr(track, "time_code_of_first_frame", None)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def hdr_peak_nits(path: Path | str) -> int | None:
    """The brightest level an HDR10 (PQ) clip was graded to, in cd/m2, from its metadata: the
    content's MaxCLL, else the mastering display's peak. None when it carries neither."""
    try:
        media = _read(Path(path))
    except MediaError:  # metadata is only a hint here
        return None
    for video in media.video_tracks[:1]:
        for text in (video.maxcll, video.masteringdisplay_luminance):
            peak = _nits(text)
            if peak:
                return peak
    return None


def _read(path: Path) -> mediainfo.Media:
    """MediaInfo's fields for a file; MediaError (exit 3) when the library cannot read it."""
    try:
        return mediainfo.read(path, _MEDIAINFO_OPTIONS)
    except mediainfo.MediaInfoUnavailable as err:
        raise MediaError(path, f"could not be read by MediaInfo ({err})") from err


def _nits(text: object) -> int | None:
    """`1000 cd/m2` or `min: 0.0050 cd/m2, max: 1000 cd/m2` -> 1000 (the largest number)."""
    import re

    values = [float(v) for v in re.findall(r"\d+(?:\.\d+)?", str(text or ""))]
    return round(max(values)) if values else None


def _check_complete(path: Path) -> tuple[Mp4Info | None, str | None]:
    """The file's sample tables, and what is wrong with its index when MediaInfo read past
    damage; MediaError when the index lists samples past the end of the file's data: a copy or
    an export that stopped early, whose index (at the front) still promises the whole clip.

    Reads only the index (moov), never the media. A damaged index that MediaInfo read past is
    returned (what is wrong with it): the clip is probed, and its verdict says the API would
    refuse it; prepare re-encodes such a clip when ffmpeg can read it, which rebuilds the index.
    """
    try:
        info = read_mp4(path)
    except MediaError as err:
        damage = err.problem.removeprefix("damaged mp4 index (").removesuffix(")") \
            if err.problem.startswith("damaged mp4 index") else None
        return None, damage
    data_end_ms = info.data_end_ms
    if data_end_ms is None:
        return info, None
    raise MediaError(
        path, f"truncated: the index lists {_tenths(info.index_ms)} s but the data ends at "
              f"{_tenths(data_end_ms)} s",
        hint="the file was cut short (an interrupted copy, download or export): re-export or "
             "re-copy it from its source")


def _tenths(ms: int) -> str:
    """Seconds to one decimal, rounded down (a truncated file is never made to look longer)."""
    tenths = max(ms, 0) // 100
    return f"{tenths // 10}.{tenths % 10}"


def probe_many(paths: Iterable[Path | str]) -> list[ClipInfo | MediaError]:
    """Probe each file, in order; a bad file yields its MediaError in place, so the others answer.

    Serial on purpose: libmediainfo keeps some options process-wide, so parallel threads corrupt
    each other's output (seen: frame rates coming back as "30.000 FPS").
    """
    out: list[ClipInfo | MediaError] = []
    for path in paths:
        try:
            out.append(probe(path))
        except MediaError as err:
            out.append(err)
    return out


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise MediaError(path, "no such file", hint="check the path and its spelling")
    if path.is_dir():
        raise MediaError(path, "is a folder with no video files in it", hint="pass video files")
    if not os.access(path, os.R_OK):
        raise MediaError(path, "cannot be read (permission denied)", hint=f"chmod +r {path}")
    if path.stat().st_size == 0:
        raise MediaError(path, "is empty (0 bytes)", hint="re-export or re-copy the clip")


def _clip_info(path: Path, media: Any) -> ClipInfo:
    general = media.general_tracks[0] if media.general_tracks else None
    videos, audios = media.video_tracks, media.audio_tracks
    fmt = (general.format or "") if general else ""
    if not videos:
        raise _no_video(path, media, fmt)
    video = videos[0]
    audio = audios[0] if audios else None
    video_ms = _ms(video.duration)
    audio_ms = _ms(audio.duration) if audio else None
    duration_ms, width, height = _length_and_size(
        path, video, (_ms(general.duration) if general else None) or video_ms or audio_ms)
    transfer = video.transfer_characteristics
    scan = (video.scan_type or "").lower()
    return ClipInfo(
        path=path,
        size_bytes=path.stat().st_size,
        container=_container(general),
        container_format=fmt,
        duration_ms=duration_ms,
        video_duration_ms=video_ms,
        audio_duration_ms=audio_ms,
        video_codec=_video_codec(video),
        video_profile=video.format_profile,
        width=width,
        height=height,
        pixel_aspect=_pixel_aspect(video.pixel_aspect_ratio),
        rotation=round(float(video.rotation or 0)) % 360,
        fps=_fps(video),
        vfr=(video.frame_rate_mode or "").upper() == "VFR",
        frame_count=_int(video.frame_count),
        bit_depth=_int(video.bit_depth),
        chroma_subsampling=video.chroma_subsampling,
        color_primaries=video.color_primaries,
        transfer=transfer,
        hdr=_hdr(transfer),
        interlaced=scan in ("interlaced", "mbaff", "paff"),
        **_audio_facts(audio),
        faststart=(general.isstreamable or "Yes") == "Yes" if general else True,
        video_bitrate=_int(video.bit_rate),
        extra_streams=_extra_streams(media),
    )


def _no_video(path: Path, media: Any, fmt: str) -> MediaError:
    """What a file without a video stream is instead: a picture, audio, a broken mp4, other."""
    if media.image_tracks:
        return MediaError(path, f"is an image ({fmt or 'picture'}), not a video",
                          hint="pass a video clip")
    if media.audio_tracks:
        return MediaError(path, "has audio but no video stream", hint="pass a video clip")
    if fmt in ("MPEG-4", "QuickTime"):
        return MediaError(path, "is truncated or damaged: its index (moov atom) is missing",
                          hint="copy or re-export the clip again")
    return MediaError(path, "is not a video file (no video stream found)",
                      hint="pass an mp4, mov, mkv or another video file")


def _length_and_size(path: Path, video: Any, duration_ms: int | None) -> tuple[int, int, int]:
    """The clip's duration and the video's width and height; MediaError when the stream has no
    duration or size, or a size no stream holds (a damaged header)."""
    width, height = _int(video.width), _int(video.height)
    if not duration_ms or not width or not height:
        raise MediaError(path, "is damaged: its video stream has no duration or size",
                         hint="copy or re-export the clip again")
    if max(width, height) > rules.MAX_SOURCE_SIDE_PX:
        raise MediaError(path, f"is damaged: its header claims {width}x{height}, more than any "
                               f"video stream holds (at most {rules.MAX_SOURCE_SIDE_PX} a side)",
                         hint="re-export the clip; prep will not guess its real picture size")
    return duration_ms, width, height


def _hdr(transfer: str | None) -> str | None:
    """PQ or HLG from the transfer characteristics; None for SDR."""
    for kind in ("PQ", "HLG"):
        if transfer and kind in transfer:
            return kind
    return None


def _audio_facts(audio: Any) -> dict[str, Any]:
    """The first audio stream's codec, channels and rate (all None without audio)."""
    if audio is None:
        return {"audio_codec": None, "audio_channels": None, "audio_rate": None}
    return {"audio_codec": _audio_codec(audio), "audio_channels": _int(audio.channel_s),
            "audio_rate": _int(audio.sampling_rate)}


def _extra_streams(media: Any) -> tuple[str, ...]:
    """Streams beyond the first video and audio: data, text, menus, and further video or audio."""
    videos, audios = len(media.video_tracks), len(media.audio_tracks)
    return (tuple(t.track_type for t in media.tracks[1:] if t.track_type not in ("Video", "Audio"))
            + ("Video",) * (videos - 1) + ("Audio",) * max(0, audios - 1))


def _container(general: Any) -> str:
    fmt = (general.format or "").lower()
    if fmt in ("mpeg-4", "quicktime"):
        brand = (general.codec_id or "").strip().lower()
        profile = (general.format_profile or "").lower()
        if brand == "qt" or profile == "quicktime" or fmt == "quicktime":
            return "mov"
        if brand.startswith("m4v"):
            return "m4v"
        return "mp4"
    return _CONTAINERS.get(fmt, fmt or "unknown")


def _video_codec(video: Any) -> str:
    fmt = (video.format or "").lower()
    if fmt == "mpeg video":
        return "mpeg1video" if "1" in (video.format_version or "") else "mpeg2video"
    return _VIDEO_CODECS.get(fmt, fmt or "unknown")


def _audio_codec(audio: Any) -> str:
    fmt = (audio.format or "").lower()
    if fmt == "mpeg audio":
        return "mp3" if "3" in (audio.format_profile or "") else "mp2"
    return _AUDIO_CODECS.get(fmt, fmt or "unknown")


def _fps(video: Any) -> Fraction | None:
    num, den = _int(video.framerate_num), _int(video.framerate_den)
    if num and den:
        return Fraction(num, den)
    if not video.frame_rate:
        return None
    try:
        approx = Fraction(str(video.frame_rate).split()[0])
    except ValueError:
        return None
    for rate in _NTSC:
        if abs(approx - rate) < Fraction(1, 500):
            return rate
    return approx.limit_denominator(1001)


def _pixel_aspect(text: Any) -> Fraction:
    if not text:
        return Fraction(1)
    value = Fraction(str(text)).limit_denominator(100)
    return Fraction(1) if abs(value - 1) < Fraction(1, 200) else value


def _ms(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return round(float(value))
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(float(str(value).split("/")[0].split(" ")[0]))
    except ValueError:
        return None
