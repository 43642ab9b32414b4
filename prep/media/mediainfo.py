"""libmediainfo read through its C interface, one field at a time.

pymediainfo asks the library for its whole report as XML (every field of every track, in
several spellings) and builds Python objects from it; importing it also reads package metadata.
Probing needs about thirty fields, so this module opens the file with the same library and the
same options and asks for each field by name (`MediaInfo_Get`): no report is written, no XML is
parsed, and nothing but `ctypes` is imported. The library itself is the one pymediainfo's wheel
carries (found beside its package without importing it), else the system's.

A `Track` answers the attribute names pymediainfo uses (`track.format`, `track.channel_s`), so
code reads the same either way: a field the library left empty, or one not asked for, is None.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["Media", "MediaInfoUnavailable", "Track", "read"]

# The kinds MediaInfo numbers its streams by (its stream_t enum), in the order its report lists them.
_KINDS = ("General", "Video", "Audio", "Text", "Other", "Image", "Menu")
# The fields asked for, as pymediainfo's attribute name -> MediaInfo's parameter name.
_FIELDS: dict[str, dict[str, str]] = {
    "General": {
        "format": "Format", "codec_id": "CodecID", "format_profile": "Format_Profile",
        "isstreamable": "IsStreamable", "duration": "Duration",
        "time_code_of_first_frame": "TimeCode_FirstFrame",
    },
    "Video": {
        "format": "Format", "format_version": "Format_Version", "format_profile": "Format_Profile",
        "duration": "Duration", "width": "Width", "height": "Height",
        "pixel_aspect_ratio": "PixelAspectRatio", "rotation": "Rotation",
        "framerate_num": "FrameRate_Num", "framerate_den": "FrameRate_Den",
        "frame_rate": "FrameRate", "frame_rate_mode": "FrameRate_Mode",
        "frame_count": "FrameCount", "bit_depth": "BitDepth",
        "chroma_subsampling": "ChromaSubsampling", "color_primaries": "colour_primaries",
        "transfer_characteristics": "transfer_characteristics", "scan_type": "ScanType",
        "bit_rate": "BitRate", "maxcll": "MaxCLL",
        "masteringdisplay_luminance": "MasteringDisplay_Luminance",
        "time_code_of_first_frame": "TimeCode_FirstFrame",
    },
    "Audio": {
        "format": "Format", "format_profile": "Format_Profile", "duration": "Duration",
        "channel_s": "Channel(s)", "sampling_rate": "SamplingRate",
        "time_code_of_first_frame": "TimeCode_FirstFrame",
    },
}
# Text, Other, Image and Menu tracks: only whether they are there and their timecode.
_OTHER_FIELDS = {"time_code_of_first_frame": "TimeCode_FirstFrame"}
# What pymediainfo sets before each parse, so that the library reads a file the same way.
_DEFAULTS = {"CharSet": "UTF-8", "Complete": "1", "ParseSpeed": "0.5", "LegacyStreamDisplay": "",
             "Cover_Data": ""}
_LIBRARIES = {"win32": ("MediaInfo.dll",), "darwin": ("libmediainfo.0.dylib", "libmediainfo.dylib")}
_ALL = ctypes.c_size_t(-1).value  # "every stream of this kind" for MediaInfo_Count_Get
# The library keeps options process-wide: two parses at once corrupt each other's output, so every
# parse in the process takes this lock (pymediainfo's parses in other modules take their own).
_LOCK = threading.Lock()
_library: Any = None


class MediaInfoUnavailable(Exception):  # noqa: N818 - named for what the caller reports
    """The library could not be loaded, or could not open the file."""


class Track:
    """One stream's fields, under pymediainfo's attribute names; None for any other name."""

    def __init__(self, track_type: str, fields: dict[str, str]) -> None:
        self.track_type = track_type
        self._fields = fields

    def __getattr__(self, name: str) -> str | None:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._fields.get(name)

    def __repr__(self) -> str:
        return f"<Track {self.track_type} {self._fields}>"


class Media:
    """The tracks of one file, in the order MediaInfo lists them (General first)."""

    def __init__(self, tracks: list[Track]) -> None:
        self.tracks = tracks

    def _of(self, kind: str) -> list[Track]:
        return [t for t in self.tracks if t.track_type == kind]

    @property
    def general_tracks(self) -> list[Track]:
        return self._of("General")

    @property
    def video_tracks(self) -> list[Track]:
        return self._of("Video")

    @property
    def audio_tracks(self) -> list[Track]:
        return self._of("Audio")

    @property
    def image_tracks(self) -> list[Track]:
        return self._of("Image")


def read(path: Path | str, options: dict[str, str]) -> Media:
    """Parse a file with libmediainfo (`options` as MediaInfo_Option takes them) and return the
    fields prep reads. MediaInfoUnavailable when the library is missing or cannot open it."""
    lib = _load()
    with _LOCK:
        handle = lib.MediaInfo_New()
        try:
            for name, value in {**_DEFAULTS, **options}.items():
                lib.MediaInfo_Option(handle, name, value)
            if not lib.MediaInfo_Open(handle, os.fspath(path)):
                raise MediaInfoUnavailable(f"An error occured while opening {path} with "
                                           "libmediainfo")
            tracks = []
            for number, kind in enumerate(_KINDS):
                fields = _FIELDS.get(kind, _OTHER_FIELDS)
                for index in range(lib.MediaInfo_Count_Get(handle, number, _ALL)):
                    values = {attr: lib.MediaInfo_Get(handle, number, index, param, 1, 0)
                              for attr, param in fields.items()}
                    tracks.append(Track(kind, {k: v for k, v in values.items() if v}))
            lib.MediaInfo_Option(handle, "Reset", "")
            lib.MediaInfo_Close(handle)
        finally:
            lib.MediaInfo_Delete(handle)
    return Media(tracks)


def _load() -> Any:
    """The library, loaded once: pymediainfo's copy when its package is on the path, else the
    system's (as pymediainfo itself looks)."""
    global _library
    if _library is not None:
        return _library
    names = _LIBRARIES.get(sys.platform, ("libmediainfo.so.0",))
    paths: tuple[str, ...] = names
    for entry in sys.path:
        found = [os.path.join(entry or ".", "pymediainfo", n) for n in names]
        found = [f for f in found if os.path.isfile(f)]
        if found:
            paths = (found[0],)
            break
    loader = getattr(ctypes, "WinDLL", ctypes.CDLL) if sys.platform == "win32" else ctypes.CDLL
    errors = []
    for candidate in paths:
        try:
            lib = loader(candidate)
        except OSError as err:
            errors.append(str(err))
            continue
        _prototypes(lib)
        _library = lib
        return lib
    raise MediaInfoUnavailable(f"Failed to load library from {', '.join(paths)} - "
                               f"{', '.join(errors)}")


def _prototypes(lib: Any) -> None:
    void_p, size_t, wchar_p, c_int = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_wchar_p, ctypes.c_int
    for name, argtypes, restype in (
            ("MediaInfo_New", [], void_p),
            ("MediaInfo_Option", [void_p, wchar_p, wchar_p], wchar_p),
            ("MediaInfo_Open", [void_p, wchar_p], size_t),
            ("MediaInfo_Count_Get", [void_p, c_int, size_t], size_t),
            ("MediaInfo_Get", [void_p, c_int, size_t, wchar_p, c_int, c_int], wchar_p),
            ("MediaInfo_Close", [void_p], None),
            ("MediaInfo_Delete", [void_p], None)):
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype
