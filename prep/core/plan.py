"""Planning, pure: a probed clip and the user's wishes become what prep will make of it.

`choose_window` decides which part of a clip is used (the window asked for, or the first 30 s of a
long clip), keeping every output prep cuts or encodes at least one frame inside the API's 2-30 s. A
source that already complies and needs no re-encoding is used whole as it is, even on the edge
(exactly 2.0 s, say): what probe calls compliant, estimate bills and prepare copies. `plan` decides, per
stream, what is copied and what is re-encoded: the whole file copied as it is (`copy`), its streams
rewrapped in mp4 (`remux`, which may re-encode just the audio to AAC while the video is copied),
or the video re-encoded (`transcode`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal

from prep.core import rules
from prep.core.billing import ClipBill
from prep.core.clipinfo import ClipInfo, assess
from prep.core.clipspec import ClipSpec, Window
from prep.core.timecode import format_ms, frame_ms, round_half_up
from prep.errors import MediaError

__all__ = [
    "CUT_REASON",
    "DEFAULT_FPS",
    "DEFAULT_PROFILE",
    "HDR_DEFAULT_PEAK_NITS",
    "HDR_REFERENCE_WHITE_NITS",
    "PROFILES",
    "PROFILE_SETTINGS",
    "Action",
    "AudioEncode",
    "ClipWindow",
    "EncoderSettings",
    "Extend",
    "PlanOptions",
    "PlannedClip",
    "PrepPlan",
    "Profile",
    "SDR_HEADROOM",
    "SmartCut",
    "SourceFacts",
    "VideoEncode",
    "choose_window",
    "edge_margin_ms",
    "output_fps",
    "output_size",
    "plan",
    "tighten",
    "video_budget_kbps",
]

Extend = Literal["loop", "freeze"]
OPEN_WINDOW = Window()
# Used for margins when a clip's frame rate is unknown: one frame at 25 fps.
DEFAULT_FPS = Fraction(25)


# One AAC frame at 48 kHz (1024 samples) is 21.3 ms: the margin never gets smaller than that, so
# the audio also stays inside 2-30 s for a reader that skips the encoder's delay.
MIN_MARGIN_MS = 22


def edge_margin_ms(fps: Fraction | None) -> int:
    """One frame (at least 22 ms), in whole ms rounded up: how far inside 2-30 s outputs stay."""
    rate = fps or DEFAULT_FPS
    return max(MIN_MARGIN_MS, -(-1000 * rate.denominator // rate.numerator))


@dataclass(frozen=True, slots=True, kw_only=True)
class ClipWindow:
    """The part of the source that becomes the output; `extend_to_ms` is set for short clips."""

    start_ms: int
    end_ms: int
    source_duration_ms: int
    extend: Extend | None = None
    extend_to_ms: int | None = None
    trimmed: bool = False
    notes: tuple[str, ...] = ()
    # The whole source, used as it is although it sits within a frame of the API's 2-30 s: it
    # may be copied or remuxed, never cut or re-encoded (that would take the margin).
    as_is: bool = False

    @property
    def duration_ms(self) -> int:
        """Duration of the output as planned."""
        return self.extend_to_ms or (self.end_ms - self.start_ms)


@dataclass(frozen=True, slots=True)
class PlannedClip:
    """A clip spec, what probing found, and the window prep will use."""

    spec: ClipSpec
    info: ClipInfo
    window: ClipWindow

    def bill(self) -> ClipBill:
        """This clip as billing sees it: its planned duration."""
        return ClipBill(label=str(self.spec), duration_ms=self.window.duration_ms, billed_ms=0,
                        source_duration_ms=self.info.duration_ms, start_ms=self.window.start_ms,
                        notes=self.window.notes)


def choose_window(
    info: ClipInfo, window: Window = OPEN_WINDOW, *, label: str | None = None,
    extend: Extend | None = None, as_is: bool = True,
) -> ClipWindow:
    """Which part of `info` prep will use. MediaError when it cannot reach 2 s.

    With no window asked for, a source the API takes as it is (and that prep would not re-encode)
    is used whole, even within a frame of 2 or 30 s; `as_is=False` applies the margin anyway, for
    a plan that finds it must cut or encode after all.
    """
    name = label or str(info.path)
    margin = edge_margin_ms(info.fps)
    longest = info.max_duration_ms
    notes: list[str] = []
    if window.is_open and as_is and _usable_as_is(info):
        shortest = info.min_duration_ms
        if shortest < rules.MIN_CLIP_MS + margin or longest > rules.MAX_CLIP_MS - margin:
            low = shortest < rules.MIN_CLIP_MS + margin
            edge, measured = (rules.MIN_CLIP_MS, shortest) if low else (rules.MAX_CLIP_MS, longest)
            notes.append(
                f"{name} is {format_ms(measured)} s, within a frame of the API's {format_ms(edge)} s "
                "limit: prep uses it whole as it is (a stream copy); to cut or re-encode it, prep "
                f"would need it {'at least' if low else 'at most'} "
                f"{format_ms(edge + margin if low else edge - margin)} s"
            )
            return ClipWindow(start_ms=0, end_ms=info.duration_ms,
                              source_duration_ms=info.duration_ms, notes=tuple(notes), as_is=True)
    if window.is_open:
        start, end = 0, info.duration_ms
        trimmed = False
    else:
        start, end = window.resolve(info.fps, info.duration_ms, name)
        trimmed = True
        past = window.end_past(info.fps, info.duration_ms)
        if past is not None:
            notes.append(f"the window of {name} ends at {format_ms(past)} s, past the clip's "
                         f"end ({format_ms(info.duration_ms)} s): prep stops there")
    max_len = rules.MAX_CLIP_MS - margin
    if end - start > max_len or (window.is_open and longest > rules.MAX_CLIP_MS):
        if window.is_open:
            notes.append(
                f"{name} is {format_ms(longest)} s; prep uses its first {format_ms(max_len)} s "
                f"(choose another part with {name}@START-END, --start/--length, or prep pick)"
            )
        else:
            notes.append(
                f"the window of {name} is {format_ms(end - start)} s; prep keeps its first "
                f"{format_ms(max_len)} s, the API takes at most {rules.MAX_CLIP_MS // 1000} s"
            )
        end = start + max_len
        trimmed = True
    min_len = rules.MIN_CLIP_MS + margin
    available = min(end, info.min_duration_ms) - start
    if available < min_len:
        if extend is None:
            length = format_ms(max(available, 0))
            need = (f"at least {format_ms(rules.MIN_CLIP_MS)} s" if available < rules.MIN_CLIP_MS
                    else f"{format_ms(min_len)} s, to stay a frame inside its "
                         f"{format_ms(rules.MIN_CLIP_MS)} s minimum")
            raise MediaError(
                name,
                f"is {length} s long{' in the chosen window' if trimmed else ''}; the API needs "
                f"{need}",
                hint="choose a longer window, or pass --extend loop or --extend freeze",
            )
        target = rules.MIN_CLIP_MS + 2 * margin
        notes.append(f"{name} is {format_ms(max(available, 0))} s; prep extends it to "
                     f"{format_ms(target)} s ({extend})")
        return ClipWindow(start_ms=start, end_ms=start + max(available, 0),
                          source_duration_ms=info.duration_ms, extend=extend, extend_to_ms=target,
                          trimmed=trimmed, notes=tuple(notes))
    return ClipWindow(start_ms=start, end_ms=end, source_duration_ms=info.duration_ms,
                      trimmed=trimmed, notes=tuple(notes))


def _usable_as_is(info: ClipInfo) -> bool:
    """The API takes the source as it is and prep would not re-encode any of its streams."""
    return (assess(info).compliant and not _why_video_transcodes(info)
            and not _why_audio_transcodes(info))


def frame_aligned_ms(ms: int, fps: Fraction | None) -> int:
    """`ms` moved to the start of the frame that contains it."""
    rate = fps or DEFAULT_FPS
    return frame_ms(int(Fraction(ms) * rate / 1000), rate)


# --- what prep makes of a clip: copy, remux or transcode --------------------------------------

Action = Literal["copy", "remux", "transcode"]
Profile = Literal["fast", "balanced", "quality", "small"]
PROFILES: tuple[Profile, ...] = ("fast", "balanced", "quality", "small")
DEFAULT_PROFILE: Profile = "balanced"


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """x264 settings of a profile: speed preset, constant rate factor (lower is better), and
    x264 options set on top of the preset (`-x264-params`, as name-value pairs in order)."""

    preset: str
    crf: int
    x264_params: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if any(c in text for pair in self.x264_params for text in pair for c in ":="):
            raise ValueError("x264 option names and values cannot hold ':' or '='")


# Chosen by measurement (scripts/bench_prepare.py, README Benchmarks; 2 cores, 1080p30): each step
# up buys VMAF for speed, and "balanced" beats ffmpeg's own default (medium, CRF 23) on VMAF at
# about 2.5x its speed. CRF values differ per preset because presets spend bits differently.
# "small" is for a slow uplink: no more bytes than HandBrake's default (x264 medium, RF 22) at no
# lower VMAF, and faster. The faster preset with medium's subpixel refinement (subme 7: RD on
# every frame type), variance AQ (aq-mode 2) and psycho-visual optimisation off (psy 0: the
# grain psy-rd keeps costs bytes that VMAF does not reward).
PROFILE_SETTINGS: dict[Profile, EncoderSettings] = {
    "fast": EncoderSettings("ultrafast", 22),
    "balanced": EncoderSettings("superfast", 18),
    "quality": EncoderSettings("faster", 16),
    "small": EncoderSettings("faster", 22, (("subme", "7"), ("aq-mode", "2"), ("psy", "0"))),
}
AUDIO_RATE = 48_000
AUDIO_CHANNELS = 2
# Native AAC at 160 kbit/s stereo keeps speech clean; the model takes the voice from it.
AUDIO_KBPS = 160
# Bytes kept free for the mp4 index and muxing overhead, on top of a 3 % safety share.
CONTAINER_RESERVE_BYTES = 256_000
SIZE_SAFETY = Fraction(97, 100)
# x264's VBV buffer, in seconds of the peak rate: the file can exceed maxrate x duration by this.
VBV_BUFFER_S = 2
MIN_VIDEO_KBPS = 120
# The smallest size limit a user may set (--max-size-mb 1): below it no clip keeps a usable quality.
MIN_SIZE_LIMIT_BYTES = 1_000_000
# Ceilings that keep H.264 High within level 4.2 (62.5 Mbit/s peak and buffer), which 1080p
# decoders take; short clips would otherwise get budgets no decoder is built for.
MAX_VIDEO_KBPS = 50_000
MAX_BUFSIZE_KBITS = 62_500
MAX_OUTPUT_FPS = Fraction(60)
_COMMON_RATES = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001),
                 Fraction(30), Fraction(50), Fraction(60000, 1001), Fraction(60))
# AAC with one or two channels is what the API takes, at any sample rate: it is copied.
_PLAIN_AUDIO = ("aac",)
# HDR to SDR (BT.2408): HDR reference white, 203 cd/m2 (75 % HLG signal, 58 % PQ), becomes SDR
# white, so footage graded at SDR levels keeps its picture as it is up to white; above it,
# highlights up to the peak roll off smoothly into the headroom BT.709's limited range keeps
# over white (codes 236-254), whose top is SDR_HEADROOM times white in linear light.
HDR_REFERENCE_WHITE_NITS = 203
HDR_DEFAULT_PEAK_NITS = 1000  # HLG's nominal display peak; HDR10's usual grade without metadata
SDR_HEADROOM = Fraction(1184, 1000)  # BT.709's OETF gives 1.184 (linear) code 254 of 8 bits
# The reason a stream copy was refused because a cut does not land on keyframes.
CUT_REASON = "cut between keyframes"


# `prepare --loudness`: the true-peak ceiling and loudness range given to ffmpeg's loudnorm
# (EBU R128; -1.5 dBTP leaves room for the AAC encoder's overshoot under EBU's -1 dBTP).
LOUDNESS_TRUE_PEAK_DB = -1.5
LOUDNESS_RANGE_LU = 11.0
LOUDNESS_RANGE_LUFS = (-40.0, -5.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Loudness:
    """EBU R128 normalisation of the audio to `target_lufs` (ffmpeg's loudnorm in two passes).

    `measured` holds the first pass's figures of the source (input_i, input_tp, input_lra,
    input_thresh, target_offset); without them loudnorm works in one pass."""

    target_lufs: float
    true_peak_db: float = LOUDNESS_TRUE_PEAK_DB
    range_lu: float = LOUDNESS_RANGE_LU
    measured: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        low, high = LOUDNESS_RANGE_LUFS
        if not low <= self.target_lufs <= high:
            raise ValueError(f"the loudness target must be {low:g} to {high:g} LUFS")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanOptions:
    """What the user asked for one clip (defaults are what `prep prepare` does)."""

    window: Window = OPEN_WINDOW
    label: str | None = None
    extend: Extend | None = None
    profile: Profile = DEFAULT_PROFILE
    max_size_bytes: int = rules.MAX_FILE_BYTES
    reencode: bool = False  # re-encode even a compliant clip (used when a stream copy fails checks)
    loudness_lufs: float | None = None  # normalise the audio to this EBU R128 loudness

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {self.profile!r}")
        if not MIN_SIZE_LIMIT_BYTES <= self.max_size_bytes <= rules.MAX_FILE_BYTES:
            raise ValueError(f"max_size_bytes must be between {MIN_SIZE_LIMIT_BYTES:,} and the "
                             f"API's {rules.MAX_FILE_BYTES:,}")


@dataclass(frozen=True, slots=True)
class SourceFacts:
    """What the planner needs beyond `ClipInfo`, read from the file's sample tables or by ffmpeg.

    `raw_durations_ms` are the track durations with edit lists ignored (`raw_video_ms` and
    `raw_audio_ms` the same per track); `keyframes_ms` the times of the video keyframes (None when
    unknown, which makes trims re-encode); `video_bytes` what a stream copy of the video weighs.
    """

    keyframes_ms: tuple[int, ...] | None = None
    raw_durations_ms: tuple[int, ...] = ()
    edit_list: bool = False
    raw_video_ms: int | None = None  # the video track's raw duration (sum of its samples)
    raw_audio_ms: int | None = None  # the same for the audio track
    video_bytes: int | None = None  # the size of the video stream's samples, when known
    hdr_peak_nits: int | None = None  # a PQ clip's MaxCLL or mastering peak, when it says


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoEncode:
    """How the video is re-encoded (x264, 8-bit 4:2:0 High profile)."""

    width: int
    height: int
    fps: Fraction
    frame_count: int
    scale: bool
    deinterlace: bool
    tonemap: str | None
    vfr_to_cfr: bool
    # The HDR peak (cd/m2) that tone mapping rolls highlights off from (HLG's nominal 1000;
    # a PQ clip's MaxCLL or mastering peak, else 1000).
    hdr_peak_nits: int = HDR_DEFAULT_PEAK_NITS
    preset: str
    crf: int
    maxrate_kbps: int
    bufsize_kbps: int
    x264_params: tuple[tuple[str, str], ...] = ()  # on top of the preset (a profile's)


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioEncode:
    """How the audio is re-encoded: AAC, 48 kHz stereo, cut to an exact number of samples."""

    bitrate_kbps: int
    sample_count: int
    channels: int = AUDIO_CHANNELS
    rate: int = AUDIO_RATE


@dataclass(frozen=True, slots=True, kw_only=True)
class SmartCut:
    """A frame-exact window of compliant H.264 with the least re-encoding: the `head_frames`
    before the first keyframe inside the window and the `tail_frames` from the last one on are
    re-encoded, the `copy_frames` of whole GOPs between are copied. Frame counts at the source's
    rate; `first_key_ms` / `last_key_ms` are those keyframes' times."""

    first_key_ms: int
    last_key_ms: int
    head_frames: int
    copy_frames: int
    tail_frames: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PrepPlan:
    """What prep will do to one clip. `video` / `audio` None with a stream means stream copy.

    A `remux` with `audio` set copies the video and re-encodes only the audio (to AAC).
    """

    action: Action
    source: Path
    start_ms: int
    end_ms: int
    duration_ms: int
    extend: Extend | None = None
    has_audio: bool = True
    video: VideoEncode | None = None
    audio: AudioEncode | None = None
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    profile: Profile = DEFAULT_PROFILE
    max_size_bytes: int = rules.MAX_FILE_BYTES
    source_duration_ms: int = 0
    # A stream copy cut before the end of its source keeps exactly this many video frames.
    copy_frames: int | None = None
    loudness: Loudness | None = None  # audio normalised to a loudness (re-encoded)
    # A transcode whose window could instead be smart-cut (tried first; `video` is the fallback).
    smart_cut: SmartCut | None = None

    @property
    def trimmed(self) -> bool:
        """Whether only part of the source is used."""
        return self.start_ms > 0 or self.end_ms < self.source_duration_ms

    @property
    def video_action(self) -> Literal["copy", "transcode"]:
        """What happens to the video stream: its packets copied, or re-encoded."""
        return "copy" if self.video is None else "transcode"

    @property
    def audio_action(self) -> Literal["copy", "transcode"] | None:
        """What happens to the audio stream (None: the clip has none)."""
        if not self.has_audio:
            return None
        return "copy" if self.audio is None else "transcode"

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view (used by `--dry-run --json` and the cache key)."""
        out: dict[str, object] = {
            "source": str(self.source), "action": self.action,
            "video_action": self.video_action, "audio_action": self.audio_action,
            "start_s": self.start_ms / 1000,
            "end_s": self.end_ms / 1000, "duration_s": self.duration_ms / 1000,
            "extend": self.extend, "profile": self.profile, "max_size_bytes": self.max_size_bytes,
            "video": "copy" if self.video is None else {
                "width": self.video.width, "height": self.video.height,
                "fps": f"{self.video.fps.numerator}/{self.video.fps.denominator}",
                "frames": self.video.frame_count, "deinterlace": self.video.deinterlace,
                "tonemap": self.video.tonemap, "hdr_peak_nits": self.video.hdr_peak_nits,
                "preset": self.video.preset, "crf": self.video.crf,
                "x264_params": dict(self.video.x264_params),
                "maxrate_kbps": self.video.maxrate_kbps, "bufsize_kbps": self.video.bufsize_kbps,
            },
            "audio": None if not self.has_audio else "copy" if self.audio is None else {
                "codec": "aac", "bitrate_kbps": self.audio.bitrate_kbps,
                "rate": self.audio.rate, "channels": self.audio.channels,
                "samples": self.audio.sample_count,
            },
            "copy_frames": self.copy_frames,
            "smart_cut": None if self.smart_cut is None else {
                "first_key_ms": self.smart_cut.first_key_ms,
                "last_key_ms": self.smart_cut.last_key_ms,
                "head_frames": self.smart_cut.head_frames,
                "copy_frames": self.smart_cut.copy_frames,
                "tail_frames": self.smart_cut.tail_frames,
            },
            "loudness_lufs": None if self.loudness is None else self.loudness.target_lufs,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
        }
        return out


def output_size(info: ClipInfo) -> tuple[int, int]:
    """Upright, square-pixel size that fits 1920x1080 (either orientation), both sides even."""
    width, height = info.display_size
    long_side, short_side = max(width, height), min(width, height)
    scale = min(Fraction(1), Fraction(rules.MAX_CLEAN_WIDTH, long_side),
                Fraction(rules.MAX_CLEAN_HEIGHT, short_side))
    return _even(width * scale), _even(height * scale)


def _even(value: Fraction) -> int:
    return max(2, 2 * round_half_up(value / 2))


def output_fps(info: ClipInfo) -> Fraction:
    """The constant frame rate of a re-encode: the source's, snapped to a common rate if VFR."""
    rate = info.fps or Fraction(30)
    if info.vfr:
        rate = min(_COMMON_RATES, key=lambda r: abs(r - rate))
    return min(rate, MAX_OUTPUT_FPS)


def video_budget_kbps(duration_ms: int, max_size_bytes: int, audio_kbps: int) -> int:
    """The highest x264 maxrate (kbit/s) that keeps the file under `max_size_bytes`.

    Audio is budgeted explicitly, and the VBV buffer (VBV_BUFFER_S of the peak rate) is the most
    the video can exceed maxrate x duration by, so the bound holds on any footage.
    """
    duration = Fraction(max(duration_ms, 1), 1000)
    usable_bits = (Fraction(max_size_bytes) * SIZE_SAFETY - CONTAINER_RESERVE_BYTES) * 8
    audio_bits = Fraction(audio_kbps * 1000) * (duration + 1)
    return min(MAX_VIDEO_KBPS, int((usable_bits - audio_bits) / (duration + VBV_BUFFER_S) / 1000))


def _why_video_transcodes(info: ClipInfo) -> list[str]:
    reasons = []
    if info.video_codec != "h264":
        reasons.append(f"{info.video_codec} video")
    if info.bit_depth and info.bit_depth > 8:
        reasons.append(f"{info.bit_depth}-bit video")
    if info.hdr:
        reasons.append(f"HDR ({info.hdr})")
    if info.chroma_subsampling and info.chroma_subsampling != "4:2:0":
        reasons.append(f"{info.chroma_subsampling} chroma")
    if (info.video_profile or "").lower().startswith(("high 10", "high 4:2:2", "high 4:4:4")):
        reasons.append(f"H.264 {info.video_profile} profile")
    if output_size(info) != info.display_size or info.width % 2 or info.height % 2:
        reasons.append(f"{info.width}x{info.height} needs resizing")
    if info.pixel_aspect != 1:
        reasons.append("non-square pixels")
    if info.rotation:
        reasons.append(f"rotation flag ({info.rotation})")
    if info.vfr:
        reasons.append("variable frame rate")
    if info.interlaced:
        reasons.append("interlaced")
    if info.fps and info.fps > MAX_OUTPUT_FPS:
        reasons.append(f"{float(info.fps):g} fps")
    return reasons


def _why_audio_transcodes(info: ClipInfo) -> list[str]:
    if not info.has_audio:
        return []
    if info.audio_codec not in _PLAIN_AUDIO:
        return [f"{info.audio_codec} audio"]
    if (info.audio_channels or 2) > 2:
        return [f"{info.audio_channels}-channel audio"]
    return []


def _on_keyframe(ms: int, keyframes: tuple[int, ...] | None) -> bool:
    return keyframes is not None and any(abs(k - ms) <= 1 for k in keyframes)


def plan(info: ClipInfo, opts: PlanOptions = PlanOptions(),
         facts: SourceFacts = SourceFacts(), *, window: ClipWindow | None = None) -> PrepPlan:
    """The cheapest action that yields a compliant file for `info`. Pure: no I/O, no clock.

    Decided per stream: a video that can be copied is copied even when its audio must be
    re-encoded (a `remux` with `audio` set). Raises MediaError when the clip cannot reach 2 s
    (without `extend`) or cannot fit the size. `window`, when given (chosen earlier, as in a
    `PlannedClip`), is used as it is instead of being chosen again from `opts`.
    """
    if window is None:
        window = choose_window(info, opts.window, label=opts.label, extend=opts.extend)
    raw = facts.raw_durations_ms or info.durations_ms
    if window.as_is and (opts.reencode or info.size_bytes > opts.max_size_bytes
                         or min(raw) < rules.MIN_CLIP_MS or max(raw) > rules.MAX_CLIP_MS):
        # An edge source that must be re-encoded after all (what its sample tables say, a lower
        # size limit, a failed copy): the margin applies, as to every clip prep encodes.
        window = choose_window(info, opts.window, label=opts.label, extend=opts.extend,
                               as_is=False)
    name = opts.label or str(info.path)
    video_reasons = _why_video_transcodes(info)
    audio_reasons = _why_audio_transcodes(info)
    loudness = None
    if opts.loudness_lufs is not None and info.has_audio:
        loudness = Loudness(target_lufs=opts.loudness_lufs)
        audio_reasons.append(f"loudness to {opts.loudness_lufs:g} LUFS")
    duration = window.duration_ms
    start, end = window.start_ms, window.end_ms
    cut = window.trimmed or window.extend is not None
    # A stream copy can only start and end where the source has keyframes: anything else would
    # need an edit list to hide frames, which a server may ignore (and then bill).
    # The frame rate must be known, to count the frames a copy keeps (see `copy_frames`).
    cut_ok = not cut or (window.extend is None and info.fps is not None
                         and _on_keyframe(start, facts.keyframes_ms)
                         and (end >= info.duration_ms or _on_keyframe(end, facts.keyframes_ms)))
    if cut_ok and cut and end < info.duration_ms and info.fps is not None:
        # ffmpeg ends a stream copy's -t by decode time, which lets the next keyframe (and
        # frames decoded before it) through when there are B-frames; a frame count does not.
        base_frames: int | None = round_half_up(Fraction(end - start) * info.fps / 1000)
    else:
        base_frames = None
    whole_ok = (not cut and min(raw) >= rules.MIN_CLIP_MS and max(raw) <= rules.MAX_CLIP_MS
                and info.min_duration_ms >= rules.MIN_CLIP_MS
                and info.max_duration_ms <= rules.MAX_CLIP_MS)
    size_ok = info.size_bytes <= opts.max_size_bytes if not cut else (
        info.size_bytes * Fraction(max(end - start, 1), max(info.duration_ms, 1))
        <= opts.max_size_bytes * SIZE_SAFETY)
    base = PrepPlan(action="copy", source=info.path, start_ms=start, end_ms=end,
                    duration_ms=duration, extend=window.extend, has_audio=info.has_audio,
                    notes=window.notes, profile=opts.profile, max_size_bytes=opts.max_size_bytes,
                    source_duration_ms=info.duration_ms, loudness=loudness)
    if not video_reasons and not audio_reasons and size_ok and not opts.reencode:
        if (not cut and whole_ok and info.container == "mp4" and info.faststart
                and not facts.edit_list):
            return base
        if cut_ok and (cut or whole_ok):
            return replace(base, action="remux", reasons=tuple(_why_remux(info, facts, cut)),
                           copy_frames=base_frames)
    if not video_reasons and audio_reasons and cut_ok and not opts.reencode:
        audio_only = _audio_only(info, opts, facts, window,
                                 replace(base, copy_frames=base_frames))
        if audio_only is not None:
            return replace(audio_only, reasons=tuple(audio_reasons + _why_remux(info, facts, cut)))
    reasons = video_reasons + audio_reasons
    if not size_ok:
        reasons.append(f"over {opts.max_size_bytes:,} bytes")
    if opts.reencode and not reasons:
        reasons.append("re-encode asked for")
    if cut and not cut_ok:
        reasons.append("extended" if window.extend else CUT_REASON)
    elif not cut and not whole_ok:
        reasons.append("durations of the tracks differ")
    audio_kbps = AUDIO_KBPS if info.has_audio else 0
    maxrate = video_budget_kbps(duration, opts.max_size_bytes, audio_kbps)
    if maxrate < MIN_VIDEO_KBPS:
        raise MediaError(name, f"{format_ms(duration)} s cannot fit in {opts.max_size_bytes:,} "
                               "bytes at a usable quality", hint="raise --max-size-mb or cut it shorter")
    fps = output_fps(info)
    width, height = output_size(info)
    # Whole frames, kept a margin (a frame, at least 22 ms) inside 2-30 s at the output rate.
    edge = edge_margin_ms(fps)
    lowest = -(-(rules.MIN_CLIP_MS + edge) * fps // 1000)
    highest = (rules.MAX_CLIP_MS - edge) * fps // 1000
    frames = min(max(round_half_up(Fraction(duration) * fps / 1000), lowest), highest)
    held = _video_frames_in(info, facts, window, fps)
    if window.extend is None and 0 < held < frames:
        # Never more frames than the source's video holds in the window: ffmpeg ends the video
        # there, and audio counted from a longer plan would run past it.
        frames = held
        duration = round_half_up(Fraction(frames * 1000) / fps)
    encoder = PROFILE_SETTINGS[opts.profile]
    video = VideoEncode(
        width=width, height=height, fps=fps, frame_count=frames,
        scale=(width, height) != info.display_size or info.pixel_aspect != 1
        or bool(info.width % 2 or info.height % 2),
        deinterlace=info.interlaced, tonemap=info.hdr,
        hdr_peak_nits=(facts.hdr_peak_nits or HDR_DEFAULT_PEAK_NITS) if info.hdr == "PQ"
        else HDR_DEFAULT_PEAK_NITS,
        vfr_to_cfr=info.vfr or fps != (info.fps or fps),
        preset=encoder.preset, crf=encoder.crf, x264_params=encoder.x264_params,
        maxrate_kbps=maxrate,
        bufsize_kbps=min(maxrate * VBV_BUFFER_S, MAX_BUFSIZE_KBITS),
    )
    # When the video is re-encoded the audio is re-encoded too, even when it is already AAC:
    # a copied AAC track can only be cut at its 1024-sample frames (21.3 ms), its first frame
    # needs the one before it to decode (hiding that takes an edit list, which prep never
    # writes), and its encoder delay is whatever the source's encoder chose; so it could not
    # be made to end exactly with the re-encoded video. Encoding it costs a few percent of the
    # video's time, so copying would win nothing worth those risks.
    audio = _audio_encode(Fraction(frames * 1000) / fps) if info.has_audio else None
    smart = None
    if (not video_reasons and size_ok and not opts.reencode and window.extend is None
            and reasons[len(audio_reasons):] == [CUT_REASON]):
        smart = _smart_cut(info, facts, window, frames)
    return replace(base, action="transcode", video=video, audio=audio, reasons=tuple(reasons),
                   duration_ms=duration, smart_cut=smart)


def _smart_cut(info: ClipInfo, facts: SourceFacts, window: ClipWindow,
               frames: int) -> SmartCut | None:
    """The keyframes that bound the whole GOPs inside the window, when a smart cut can use them:
    a constant, known frame rate and at least one whole GOP. None otherwise."""
    rate = info.fps
    if rate is None or info.vfr or not facts.keyframes_ms:
        return None
    first = round_half_up(Fraction(window.start_ms) * rate / 1000)
    last = first + frames
    # Keyframe times are whole ms rounded down: the nearest frame is the keyframe's.
    keys = sorted({round_half_up(Fraction(ms) * rate / 1000): ms for ms in facts.keyframes_ms
                   }.items())
    inside = [(index, ms) for index, ms in keys if first <= index <= last]
    if len(inside) < 2:
        return None
    (head_key, head_ms), (tail_key, tail_ms) = inside[0], inside[-1]
    return SmartCut(first_key_ms=head_ms, last_key_ms=tail_ms, head_frames=head_key - first,
                    copy_frames=tail_key - head_key, tail_frames=last - tail_key)


def _why_remux(info: ClipInfo, facts: SourceFacts, cut: bool) -> list[str]:
    why = ["cut on keyframes"] if cut else []
    if info.container != "mp4":
        why.append(f"{info.container} container")
    if not info.faststart:
        why.append("index (moov) at the end")
    if facts.edit_list:
        why.append("edit list")
    return why


def _audio_encode(video_ms: Fraction) -> AudioEncode:
    """AAC audio that ends exactly with `video_ms` of video, as stored.

    The AAC encoder puts 1024 samples of delay in front, and prep writes no edit list to hide
    them: so the audio is cut 1024 samples short, and the audio track as stored ends with the
    video (never after it). A reader that skips the delay sees it 21 ms shorter, which the 22 ms
    minimum margin allows for.
    """
    video_samples = int(video_ms * AUDIO_RATE / 1000)  # rounded down: never past the video
    return AudioEncode(bitrate_kbps=AUDIO_KBPS, sample_count=max(1024, video_samples - 1024))


def _video_end_ms(info: ClipInfo, facts: SourceFacts, *, counted: bool = True) -> Fraction:
    """Where the source's video ends: the shortest of its known lengths (MediaInfo's, the
    sample tables', and with `counted` frames over rate), or the container's when none is known."""
    lengths: list[Fraction] = [Fraction(ms) for ms in (info.video_duration_ms, facts.raw_video_ms)
                               if ms]
    if counted and info.frame_count and info.fps and not info.vfr:
        lengths.append(Fraction(info.frame_count * 1000) / info.fps)
    return min(lengths, default=Fraction(info.duration_ms))


def _video_frames_in(info: ClipInfo, facts: SourceFacts, window: ClipWindow,
                     fps: Fraction) -> int:
    """How many frames at `fps` the source's video fills between the window's start and the
    earlier of its end and the video's own end (durations are whole ms: rounded to the nearest)."""
    span = min(Fraction(window.end_ms), _video_end_ms(info, facts, counted=False)) - window.start_ms
    return round_half_up(max(span, Fraction(0)) * fps / 1000)


def _copied_video_ms(info: ClipInfo, facts: SourceFacts, window: ClipWindow) -> Fraction:
    """How long the video of a stream copy of `window` is: whole frames, from the sample tables
    where known. The shortest of the known lengths, so audio cut to it never runs past it."""
    span = min(Fraction(window.end_ms), _video_end_ms(info, facts)) - window.start_ms
    if info.fps and not info.vfr:
        # Cut points are keyframe times in whole ms (rounded down): snap to whole frames.
        span = Fraction(int(round_half_up(span * info.fps / 1000)) * 1000) / info.fps
    return span


def _audio_only(info: ClipInfo, opts: PlanOptions, facts: SourceFacts, window: ClipWindow,
                base: PrepPlan) -> PrepPlan | None:
    """Copy the video and re-encode only the audio, when that keeps every guarantee: the
    video's own length inside 2-30 s by a frame, and the copied video plus the audio's budget
    inside the size limit. None when it does not (then the clip is transcoded)."""
    video_ms = _copied_video_ms(info, facts, window)
    margin = edge_margin_ms(info.fps)
    if not rules.MIN_CLIP_MS + margin <= video_ms <= rules.MAX_CLIP_MS - margin:
        return None
    # A whole-file copy carries every sample, even those an edit list hides from MediaInfo.
    if not window.trimmed and (facts.raw_video_ms or 0) > rules.MAX_CLIP_MS - margin:
        return None
    # The video's bytes: from the sample tables, else its bit rate, else (an upper bound) the
    # whole file; a cut takes its share.
    source_video_ms = info.video_duration_ms or info.duration_ms
    video_bytes = Fraction(facts.video_bytes or (
        info.video_bitrate * source_video_ms // 8000 if info.video_bitrate else info.size_bytes))
    if window.trimmed:
        video_bytes *= min(Fraction(1), video_ms / max(source_video_ms, 1))
    audio_bytes = Fraction(AUDIO_KBPS * 1000, 8) * (video_ms / 1000 + 1)
    if video_bytes + audio_bytes + CONTAINER_RESERVE_BYTES > opts.max_size_bytes * SIZE_SAFETY:
        return None
    # The output lasts as long as its video: audio running past it in the source is cut away.
    return replace(base, action="remux", audio=_audio_encode(video_ms),
                   duration_ms=round_half_up(video_ms))


def tighten(plan_: PrepPlan, measured_bytes: int) -> PrepPlan:
    """A transcode plan with a lower peak rate, after an output came out `measured_bytes` big."""
    if plan_.video is None:
        raise ValueError("only a transcode plan with video encoding can be tightened")
    ratio = Fraction(plan_.max_size_bytes, max(measured_bytes, 1)) * Fraction(9, 10)
    maxrate = min(int(plan_.video.maxrate_kbps * ratio), plan_.video.maxrate_kbps * 9 // 10)
    if maxrate < MIN_VIDEO_KBPS:
        raise MediaError(plan_.source, f"cannot be made smaller than {plan_.max_size_bytes:,} bytes",
                         hint="raise --max-size-mb or cut it shorter")
    video = replace(plan_.video, maxrate_kbps=maxrate,
                    bufsize_kbps=min(maxrate * VBV_BUFFER_S, MAX_BUFSIZE_KBITS),
                    crf=plan_.video.crf + 2)
    return replace(plan_, video=video)
