"""Planning, pure: a probed clip and the user's wishes become what prep will make of it.

Three steps, each a pure function. The window (`prep.core.window.choose_window`) says which part
of the clip is used. The eligibility step (`eligibility`) says what that clip allows: which
streams must be re-encoded and why, and whether a stream copy can keep the window's cut points,
the tracks' lengths and the size limit. `plan` then takes the cheapest action open, one function
each: the whole file as it is (`copy`), its streams rewrapped in mp4 (`remux`), the video copied
while only the audio is re-encoded to AAC (a `remux` with `audio` set), or the video re-encoded
(`transcode`), with a smart cut to try first when only the cut points stood in a copy's way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal

from prep.core import rules
from prep.core.clipinfo import ClipInfo
from prep.core.clipspec import Window
from prep.core.modelspec import Span
from prep.core.streams import audio_reasons, output_fps, output_size, video_reasons
from prep.core.timecode import format_ms, round_half_up
from prep.core.window import (
    DEFAULT_CLIP_MS,
    OPEN_WINDOW,
    ClipWindow,
    Extend,
    choose_window,
    edge_margin_ms,
)
from prep.errors import MediaError

__all__ = [
    "CUT_REASON",
    "DEFAULT_PROFILE",
    "HDR_DEFAULT_PEAK_NITS",
    "HDR_REFERENCE_WHITE_NITS",
    "PROFILES",
    "PROFILE_SETTINGS",
    "Action",
    "AudioEncode",
    "Eligibility",
    "EncoderSettings",
    "Loudness",
    "PlanOptions",
    "PrepPlan",
    "Profile",
    "SDR_HEADROOM",
    "SmartCut",
    "SourceFacts",
    "VideoEncode",
    "eligibility",
    "output_fps",
    "output_size",
    "plan",
    "tighten",
    "video_budget_kbps",
]

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
# Native AAC at 160 kbit/s stereo (96 mono) keeps speech clean; the model takes the voice from it.
AUDIO_KBPS = 160
AUDIO_KBPS_MONO = 96
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
    clip_ms: Span = DEFAULT_CLIP_MS  # the chosen model's clip durations (wan3.0: 1-15 s)
    min_side_px: int = 0  # the chosen model's smallest picture side (wan3.0: 240 px)

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
    peak_fps: Fraction | None = None  # a variable-rate video's peak rate, from its sample tables


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
    """How the audio is re-encoded: AAC, 48 kHz, mono when the source is, else stereo, cut to an
    exact number of samples."""

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
    clip_ms: Span = DEFAULT_CLIP_MS  # the durations the output must keep (the chosen model's)

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


def video_budget_kbps(duration_ms: int, max_size_bytes: int, audio_kbps: int) -> int:
    """The highest x264 maxrate (kbit/s) that keeps the file under `max_size_bytes`.

    Audio is budgeted explicitly, and the VBV buffer (VBV_BUFFER_S of the peak rate) is the most
    the video can exceed maxrate x duration by, so the bound holds on any footage.
    """
    duration = Fraction(max(duration_ms, 1), 1000)
    usable_bits = (Fraction(max_size_bytes) * SIZE_SAFETY - CONTAINER_RESERVE_BYTES) * 8
    audio_bits = Fraction(audio_kbps * 1000) * (duration + 1)
    return min(MAX_VIDEO_KBPS, int((usable_bits - audio_bits) / (duration + VBV_BUFFER_S) / 1000))


# --- the eligibility step: what the clip allows ------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Eligibility:
    """What a clip allows before any action is chosen (see `eligibility`): which streams must be
    re-encoded and why, and whether a stream copy can keep the window, the tracks' lengths and
    the size limit. The properties say which actions are open; `plan` takes the cheapest."""

    video_reasons: tuple[str, ...]  # why the video must be re-encoded (empty: it can be copied)
    audio_reasons: tuple[str, ...]  # why the audio must be re-encoded (a loudness target too)
    cut: bool  # only part of the source is used, or it is extended
    extended: bool  # the window is extended past the source (loop or freeze)
    cut_ok: bool  # a stream copy can start and end where the window does (on keyframes)
    whole_ok: bool  # used whole, every track as stored (edit lists ignored) is inside 2-30 s
    size_ok: bool  # a stream copy of the window fits the size limit
    ready_as_stored: bool  # an mp4 with its index first and no edit list: the file itself will do
    reencode: bool  # a re-encode was asked for (or a stream copy failed its checks)
    transcode_reasons: tuple[str, ...]  # why a transcode, when it comes to one

    @property
    def streams_copy(self) -> bool:
        """Both streams can be copied and the copy fits."""
        return (not self.video_reasons and not self.audio_reasons and self.size_ok
                and not self.reencode)

    @property
    def copy(self) -> bool:
        """The source file can be used byte for byte."""
        return self.streams_copy and not self.cut and self.whole_ok and self.ready_as_stored

    @property
    def remux(self) -> bool:
        """Its streams can be copied into a new mp4 (cut on keyframes, or rewrapped whole)."""
        return self.streams_copy and self.cut_ok and (self.cut or self.whole_ok)

    @property
    def audio_only(self) -> bool:
        """The video can be copied while the audio is re-encoded (the budget is checked after)."""
        return (not self.video_reasons and bool(self.audio_reasons) and self.cut_ok
                and not self.reencode)

    @property
    def smart_cut(self) -> bool:
        """The video is fine but the window starts or ends between keyframes: a smart cut (the
        GOPs inside copied, only the edges re-encoded) may stand in for the transcode."""
        return (not self.video_reasons and self.size_ok and not self.reencode
                and not self.extended and self.cut and not self.cut_ok)


def eligibility(info: ClipInfo, opts: PlanOptions, facts: SourceFacts,
                window: ClipWindow) -> Eligibility:
    """What `info`, cut to `window`, allows under `opts`. Pure: no I/O, no clock."""
    video = video_reasons(info, opts.min_side_px)
    audio = audio_reasons(info)
    if opts.loudness_lufs is not None and info.has_audio:
        audio.append(f"loudness to {opts.loudness_lufs:g} LUFS")
    extended = window.extend is not None
    cut = window.trimmed or extended
    cut_ok = not cut or (not extended and _cut_on_keyframes(info, facts, window))
    whole_ok = not cut and _tracks_inside_limits(info, facts, opts.clip_ms)
    size_ok = _copy_fits(info, opts, window, cut)
    reasons = video + audio
    if not size_ok:
        reasons.append(f"over {opts.max_size_bytes:,} bytes")
    if opts.reencode and not reasons:
        reasons.append("re-encode asked for")
    if cut and not cut_ok:
        reasons.append("extended" if extended else CUT_REASON)
    elif not cut and not whole_ok:
        reasons.append("durations of the tracks differ")
    return Eligibility(
        video_reasons=tuple(video), audio_reasons=tuple(audio), cut=cut, extended=extended,
        cut_ok=cut_ok, whole_ok=whole_ok, size_ok=size_ok, reencode=opts.reencode,
        ready_as_stored=info.container == "mp4" and info.faststart and not facts.edit_list,
        transcode_reasons=tuple(reasons))


def _copy_fits(info: ClipInfo, opts: PlanOptions, window: ClipWindow, cut: bool) -> bool:
    """A stream copy fits the size limit: the whole file, or a cut's share of it (with room)."""
    if not cut:
        return info.size_bytes <= opts.max_size_bytes
    share = Fraction(max(window.end_ms - window.start_ms, 1), max(info.duration_ms, 1))
    return info.size_bytes * share <= opts.max_size_bytes * SIZE_SAFETY


def _inside_limits(shortest_ms: int, longest_ms: int, clip_ms: Span) -> bool:
    return shortest_ms >= clip_ms.low and longest_ms <= clip_ms.high


def _tracks_inside_limits(info: ClipInfo, facts: SourceFacts, clip_ms: Span) -> bool:
    """Every track inside 2-30 s, as stored (edit lists ignored) and as MediaInfo reads it."""
    raw = facts.raw_durations_ms or info.durations_ms
    return (_inside_limits(min(raw), max(raw), clip_ms)
            and _inside_limits(info.min_duration_ms, info.max_duration_ms, clip_ms))


def _cut_on_keyframes(info: ClipInfo, facts: SourceFacts, window: ClipWindow) -> bool:
    """A stream copy can only start and end where the source has keyframes: anything else would
    need an edit list to hide frames, which a server may ignore (and then bill). The frame rate
    must be known, to count the frames a copy keeps (see `PrepPlan.copy_frames`)."""
    return (info.fps is not None and _on_keyframe(window.start_ms, facts.keyframes_ms)
            and (window.end_ms >= info.duration_ms
                 or _on_keyframe(window.end_ms, facts.keyframes_ms)))


def _on_keyframe(ms: int, keyframes: tuple[int, ...] | None) -> bool:
    return keyframes is not None and any(abs(k - ms) <= 1 for k in keyframes)


# --- the actions: copy, remux, audio only, transcode (with a smart cut) ------------------------


def plan(info: ClipInfo, opts: PlanOptions = PlanOptions(),
         facts: SourceFacts = SourceFacts(), *, window: ClipWindow | None = None) -> PrepPlan:
    """The cheapest action that yields a compliant file for `info`. Pure: no I/O, no clock.

    Decided per stream: a video that can be copied is copied even when its audio must be
    re-encoded (a `remux` with `audio` set). Raises MediaError when the clip cannot reach 2 s
    (without `extend`) or cannot fit the size. `window`, when given (chosen earlier, as in a
    `PlannedClip`), is used as it is instead of being chosen again from `opts`.
    """
    window = _window(info, opts, facts, window)
    allowed = eligibility(info, opts, facts, window)
    base = PrepPlan(action="copy", source=info.path, start_ms=window.start_ms,
                    end_ms=window.end_ms, duration_ms=window.duration_ms, extend=window.extend,
                    has_audio=info.has_audio, notes=window.notes, profile=opts.profile,
                    max_size_bytes=opts.max_size_bytes, source_duration_ms=info.duration_ms,
                    clip_ms=opts.clip_ms,
                    loudness=Loudness(target_lufs=opts.loudness_lufs)
                    if opts.loudness_lufs is not None and info.has_audio else None)
    if allowed.copy:
        return base
    if allowed.remux:
        return _remux(info, opts, facts, window, allowed, base)
    copied_video = _audio_only(info, opts, facts, window, allowed, base)
    if copied_video is not None:
        return copied_video
    return _transcode(info, opts, facts, window, allowed, base)


def _window(info: ClipInfo, opts: PlanOptions, facts: SourceFacts,
            window: ClipWindow | None) -> ClipWindow:
    """The window given, or the one `opts` asks for; with the margin after all when an edge
    source (used as it is) must be re-encoded: what its sample tables say, a lower size limit,
    a failed copy. The margin applies to every clip prep encodes."""
    if window is None:
        window = choose_window(info, opts.window, label=opts.label, extend=opts.extend,
                               clip_ms=opts.clip_ms)
    raw = facts.raw_durations_ms or info.durations_ms
    if window.as_is and (opts.reencode or info.size_bytes > opts.max_size_bytes
                         or not _inside_limits(min(raw), max(raw), opts.clip_ms)):
        window = choose_window(info, opts.window, label=opts.label, extend=opts.extend,
                               as_is=False, clip_ms=opts.clip_ms)
    return window


def _copy_frames(info: ClipInfo, window: ClipWindow, allowed: Eligibility) -> int | None:
    """How many frames a stream copy cut before the source's end keeps. ffmpeg ends a stream
    copy's -t by decode time, which lets the next keyframe (and frames decoded before it)
    through when there are B-frames; a frame count does not."""
    if allowed.cut_ok and allowed.cut and window.end_ms < info.duration_ms and info.fps is not None:
        return round_half_up(Fraction(window.end_ms - window.start_ms) * info.fps / 1000)
    return None


def _remux(info: ClipInfo, opts: PlanOptions, facts: SourceFacts, window: ClipWindow,
           allowed: Eligibility, base: PrepPlan) -> PrepPlan:
    """Both streams copied into a new mp4; the audio re-encoded to end with the video when a
    whole-file copy would carry it past the video's end."""
    if not allowed.cut and info.has_audio and (facts.raw_audio_ms or 0) > (
            facts.raw_video_ms or facts.raw_audio_ms or 0) + 1:
        # Rewrapped without an edit list, copied audio keeps its encoder delay and padding past
        # the video's end: re-encode it to end with the video instead.
        trimmed = _audio_only(info, opts, facts, window, allowed, base, audio_past_video=True)
        if trimmed is not None:
            return replace(trimmed, reasons=(AUDIO_PAST_VIDEO, *_why_remux(info, facts, allowed.cut)))
    return replace(base, action="remux", reasons=tuple(_why_remux(info, facts, allowed.cut)),
                   copy_frames=_copy_frames(info, window, allowed))


def _transcode(info: ClipInfo, opts: PlanOptions, facts: SourceFacts, window: ClipWindow,
               allowed: Eligibility, base: PrepPlan) -> PrepPlan:
    """The video re-encoded (and with it the audio), within the size limit; with a smart cut to
    try first when only the cut points stood in a copy's way."""
    name = opts.label or str(info.path)
    duration = window.duration_ms
    audio_kbps = _audio_kbps(info.audio_channels) if info.has_audio else 0
    maxrate = video_budget_kbps(duration, opts.max_size_bytes, audio_kbps)
    if maxrate < MIN_VIDEO_KBPS:
        raise MediaError(name, f"{format_ms(duration)} s cannot fit in {opts.max_size_bytes:,} "
                               "bytes at a usable quality", hint="raise --max-size-mb or cut it shorter")
    fps = output_fps(info, facts.peak_fps)
    frames, duration = _frames(info, facts, window, fps, opts.clip_ms)
    video = _video_encode(info, opts, facts, fps, frames, maxrate)
    # When the video is re-encoded the audio is re-encoded too, even when it is already AAC:
    # a copied AAC track can only be cut at its 1024-sample frames (21.3 ms), its first frame
    # needs the one before it to decode (hiding that takes an edit list, which prep never
    # writes), and its encoder delay is whatever the source's encoder chose; so it could not
    # be made to end exactly with the re-encoded video. Encoding it costs a few percent of the
    # video's time, so copying would win nothing worth those risks.
    audio = _audio_encode(Fraction(frames * 1000) / fps, info.audio_channels) if info.has_audio else None
    smart = _smart_cut(info, facts, window, frames) if allowed.smart_cut else None
    return replace(base, action="transcode", video=video, audio=audio,
                   reasons=allowed.transcode_reasons, duration_ms=duration, smart_cut=smart)


def _frames(info: ClipInfo, facts: SourceFacts, window: ClipWindow,
            fps: Fraction, clip_ms: Span = DEFAULT_CLIP_MS) -> tuple[int, int]:
    """How many frames a transcode makes at `fps`, and the duration (ms) that leaves."""
    duration = window.duration_ms
    # Whole frames, kept a margin (a frame, at least 22 ms) inside 2-30 s at the output rate.
    edge = edge_margin_ms(fps)
    lowest = -(-(clip_ms.low + edge) * fps // 1000)
    highest = (clip_ms.high - edge) * fps // 1000
    frames = min(max(round_half_up(Fraction(duration) * fps / 1000), lowest), highest)
    held = _video_frames_in(info, facts, window, fps)
    if window.extend is None and 0 < held < frames:
        # Never more frames than the source's video holds in the window: ffmpeg ends the video
        # there, and audio counted from a longer plan would run past it.
        return held, round_half_up(Fraction(held * 1000) / fps)
    return frames, duration


def _video_encode(info: ClipInfo, opts: PlanOptions, facts: SourceFacts, fps: Fraction,
                  frames: int, maxrate: int) -> VideoEncode:
    """The x264 settings of a transcode: size, rate, filters, the profile and the peak rate."""
    width, height = output_size(info, opts.min_side_px)
    encoder = PROFILE_SETTINGS[opts.profile]
    return VideoEncode(
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


AUDIO_PAST_VIDEO = "audio runs past the video"


def _why_remux(info: ClipInfo, facts: SourceFacts, cut: bool) -> list[str]:
    why = ["cut on keyframes"] if cut else []
    if info.container != "mp4":
        why.append(f"{info.container} container")
    if not info.faststart:
        why.append("index (moov) at the end")
    if facts.edit_list:
        why.append("edit list")
    return why


def _audio_channels(source_channels: int | None) -> int:
    """The re-encoded audio's channels: a mono source stays mono (upmixing it would double the
    encode and the bytes for the same sound); anything else becomes stereo."""
    return 1 if source_channels == 1 else AUDIO_CHANNELS


def _audio_kbps(source_channels: int | None) -> int:
    return AUDIO_KBPS_MONO if _audio_channels(source_channels) == 1 else AUDIO_KBPS


def _audio_encode(video_ms: Fraction, source_channels: int | None) -> AudioEncode:
    """AAC audio that ends exactly with `video_ms` of video, as stored, from a source with
    `source_channels` channels.

    The AAC encoder puts 1024 samples of delay in front, and prep writes no edit list to hide
    them: so the audio is cut 1024 samples short, and the audio track as stored ends with the
    video (never after it). A reader that skips the delay sees it 21 ms shorter, which the 22 ms
    minimum margin allows for.
    """
    video_samples = int(video_ms * AUDIO_RATE / 1000)  # rounded down: never past the video
    return AudioEncode(bitrate_kbps=_audio_kbps(source_channels),
                       sample_count=max(1024, video_samples - 1024),
                       channels=_audio_channels(source_channels))


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
                allowed: Eligibility, base: PrepPlan, *,
                audio_past_video: bool = False) -> PrepPlan | None:
    """Copy the video and re-encode only the audio, when that keeps every guarantee: the
    video's own length inside 2-30 s by a frame, and the copied video plus the audio's budget
    inside the size limit. None when it does not (then the clip is transcoded)."""
    if not (allowed.audio_only or audio_past_video):
        return None
    video_ms = _copied_video_ms(info, facts, window)
    margin = edge_margin_ms(info.fps)
    if not opts.clip_ms.low + margin <= video_ms <= opts.clip_ms.high - margin:
        return None
    # A whole-file copy carries every sample, even those an edit list hides from MediaInfo.
    if not window.trimmed and (facts.raw_video_ms or 0) > opts.clip_ms.high - margin:
        return None
    # The video's bytes: from the sample tables, else its bit rate, else (an upper bound) the
    # whole file; a cut takes its share.
    source_video_ms = info.video_duration_ms or info.duration_ms
    video_bytes = Fraction(facts.video_bytes or (
        info.video_bitrate * source_video_ms // 8000 if info.video_bitrate else info.size_bytes))
    if window.trimmed:
        video_bytes *= min(Fraction(1), video_ms / max(source_video_ms, 1))
    audio_bytes = Fraction(_audio_kbps(info.audio_channels) * 1000, 8) * (video_ms / 1000 + 1)
    if video_bytes + audio_bytes + CONTAINER_RESERVE_BYTES > opts.max_size_bytes * SIZE_SAFETY:
        return None
    # The output lasts as long as its video: audio running past it in the source is cut away.
    return replace(base, action="remux", audio=_audio_encode(video_ms, info.audio_channels),
                   duration_ms=round_half_up(video_ms), copy_frames=_copy_frames(info, window, allowed),
                   reasons=allowed.audio_reasons + tuple(_why_remux(info, facts, allowed.cut)))


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
