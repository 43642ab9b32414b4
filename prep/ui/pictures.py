"""Pictures of footage for people: contact sheets, and the timeline behind a `prep pick` choice.

Only drawing happens here: the frames come decoded from `prep.media.frames`.

`contact_sheet(video, png)` lays out thumbnails with their timecodes (for a prepared clip, or any
part of any clip). `pick_timeline(result, png)` draws what `prep pick` saw over a strip of thumbnails:
faces, speech, cuts, the chosen window and its billed head. Both need Pillow and numpy (the `pick`
extra) and write the PNG atomically (a temp file beside it, then a rename).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prep.core.timecode import format_ms
from prep.errors import MediaError, install_hint
from prep.files import write_atomic

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

    from prep.core.clipinfo import ClipInfo
    from prep.pick.choose import PickResult

__all__ = ["contact_sheet", "pick_timeline", "require_extras"]

# Colours (RGB) shared by both pictures.
BACKGROUND = (24, 26, 30)
PANEL = (36, 39, 45)
TEXT = (226, 228, 232)
DIM = (140, 146, 156)
FACE = (72, 187, 120)
SPEECH = (86, 156, 240)
CUT = (236, 82, 82)
WINDOW = (246, 196, 66)
WARN = (246, 170, 66)
# Clips up to this long are sampled in one decode pass; longer ones by seeking to each frame.
ONE_PASS_MAX_MS = 120_000
_PIL_HINT = install_hint("pick")


def require_extras(target: Path | str = "pictures") -> None:
    """MediaError (exit 3) naming `target` when Pillow or numpy is missing, with the install hint."""
    _pil(target)


def _pil(png: Path | str) -> tuple[Any, Any, Any]:
    """Pillow's modules, or a MediaError naming the picture and how to install what it needs."""
    try:
        import numpy  # noqa: F401  (frames arrive as numpy arrays)
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as err:
        raise MediaError(png, "cannot be drawn without the optional packages pillow and numpy",
                         hint=_PIL_HINT) from err
    return Image, ImageDraw, ImageFont


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _save(image: Image.Image, png: Path) -> Path:
    try:
        return write_atomic(png, lambda tmp: image.save(tmp, format="PNG", optimize=True))
    except OSError as err:
        raise MediaError(png, f"cannot be written ({err.strerror or err})",
                         hint="choose a folder you can write to") from err


def contact_sheet(
    video: Path | str,
    png: Path | str,
    *,
    count: int = 12,
    columns: int = 4,
    thumb_width: int = 240,
    start_ms: int | None = None,
    end_ms: int | None = None,
    title: str | None = None,
    info: ClipInfo | None = None,
    ffmpeg: str | None = None,
) -> Path:
    """Write a contact sheet of `video` to `png`: `count` thumbnails with timecodes, evenly spaced
    over the clip (or `start_ms`-`end_ms`), under a header that says what the clip is. The frames
    come from `prep.media.frames.grab_frames`, with the configured `ffmpeg`."""
    Image, ImageDraw, _ = _pil(png)
    from prep.media.frames import grab_frames, thumb_size
    from prep.media.probe import probe

    if count < 1 or columns < 1:
        raise ValueError("count and columns must be at least 1")
    path = Path(video)
    info = info or probe(path)
    clip_ms = info.video_duration_ms or info.duration_ms
    begin = max(0, start_ms or 0)
    end = min(clip_ms, end_ms if end_ms is not None else clip_ms)
    if end <= begin:
        raise ValueError(f"nothing to draw between {begin} and {end} ms")
    span = end - begin
    times = [begin + span * k // count for k in range(count)]
    thumbs = grab_frames(path, times, width=thumb_width, info=info, ffmpeg=ffmpeg)
    tw, th = thumb_size(info, thumb_width)
    gap, label_h, pad, header_h = 8, 22, 16, 54
    rows = math.ceil(len(thumbs) / columns) if thumbs else 1
    width = pad * 2 + columns * tw + (columns - 1) * gap
    height = header_h + pad + rows * (th + label_h) + (rows - 1) * gap + pad
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    big, small = _font(18), _font(13)
    dw, dh = info.display_size
    fps = f"{float(info.fps):.3f}".rstrip("0").rstrip(".") + " fps" if info.fps else ""
    facts = [f"{format_ms(clip_ms)} s", f"{dw}x{dh}", fps, info.video_codec,
             f"{info.size_bytes / 1e6:.1f} MB"]
    draw.text((pad, 10), title or path.name, fill=TEXT, font=big)
    shown = f"  ·  showing {format_ms(begin)}-{format_ms(end)} s" if (begin, end) != (0, clip_ms) else ""
    draw.text((pad, 32), "  ·  ".join(f for f in facts if f) + shown, fill=DIM, font=small)
    for i, thumb in enumerate(thumbs):
        row, col = divmod(i, columns)
        x = pad + col * (tw + gap)
        y = header_h + pad + row * (th + label_h + gap)
        sheet.paste(Image.fromarray(thumb.rgb), (x, y))
        draw.text((x, y + th + 4), format_ms(thumb.time_ms, precise=True), fill=TEXT, font=small)
    if not thumbs:
        draw.text((pad, header_h + pad), "no frames could be read", fill=WARN, font=small)
    return _save(sheet, Path(png))


def _tick_step_ms(span_ms: int, width_px: int) -> int:
    """A round tick spacing that leaves about 90 px between labels."""
    wanted = span_ms * 90 / max(1, width_px)
    for tenths in (5, 10, 20, 50, 100, 150, 300, 600, 1_200, 3_000, 6_000, 9_000, 18_000, 36_000):
        if tenths * 100 >= wanted:  # steps of 0.5 s to an hour, in tenths of a second
            return tenths * 100
    return 72_000 * 100


def _clock(ms: int) -> str:
    minutes, rest = divmod(ms // 1000, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


def pick_timeline(result: PickResult, png: Path | str, *, width: int = 1200) -> Path:
    """Write a picture of `result`: thumbnails, faces, speech, cuts, the window and its billed head."""
    Image, ImageDraw, _ = _pil(png)
    analysis = result.analysis
    if analysis is None:
        raise ValueError("the result carries no analysis to draw (use pick_window)")
    begin, end = analysis.start_ms, analysis.end_ms
    span = max(1, end - begin)
    left, right, pad = 92, 24, 16
    plot_w = width - left - right
    title_h = 76 + 18 * len(result.warnings)
    strip_h = 68
    track_h, track_gap = 20, 8
    strip_y = title_h
    face_y = strip_y + strip_h + 14
    speech_y = face_y + track_h + track_gap
    shots_y = speech_y + track_h + track_gap
    axis_y = shots_y + track_h + 6
    legend_y = axis_y + 30
    height = legend_y + 30

    def x_of(ms: int) -> float:
        return left + (ms - begin) * plot_w / span

    image = Image.new("RGBA", (width, height), BACKGROUND + (255,))
    draw = ImageDraw.Draw(image)
    big, font, small = _font(17), _font(13), _font(12)

    # Title: the answer, then the scores, then what is missing.
    draw.text((pad, 10), result.clip_spec, fill=TEXT, font=big)
    summary = (f"window {format_ms(result.length_ms)} s in shot {result.shot.index + 1} of "
               f"{len(result.shots)}"
               f"  ·  billed head {format_ms(result.head_ms)} s ({result.clips_in_job} clip"
               f"{'s' * (result.clips_in_job > 1)} in the job)  ·  head: face {result.head.face:.0%}, "
               f"speech {result.head.speech:.0%}, both {result.head.both:.0%}  ·  score {result.score:.2f}")
    draw.text((pad, 34), summary, fill=DIM, font=font)
    for i, warning in enumerate(result.warnings):
        draw.text((pad, 56 + 18 * i), f"warning: {warning}", fill=WARN, font=font)

    # Thumbnail strip: each slot shows the analysed frame nearest its middle.
    draw.rectangle((left, strip_y, left + plot_w, strip_y + strip_h), fill=PANEL)
    thumbs = list(analysis.thumbnails)
    if thumbs:
        aspect = thumbs[0].rgb.shape[1] / thumbs[0].rgb.shape[0]
        slot_w = max(24, round(strip_h * aspect))
        slots = max(1, round(plot_w / slot_w))
        slot_w_exact = plot_w / slots
        for k in range(slots):
            mid = begin + int((k + 0.5) * span / slots)
            thumb = min(thumbs, key=lambda t: abs(t.time_ms - mid))
            tile = Image.fromarray(thumb.rgb).resize((math.ceil(slot_w_exact), strip_h), Image.BILINEAR)
            image.paste(tile, (round(left + k * slot_w_exact), strip_y))

    # Tracks.
    for label, y in (("faces", face_y), ("speech", speech_y), ("shots", shots_y)):
        draw.text((pad, y + 3), label, fill=DIM, font=font)
        draw.rectangle((left, y, left + plot_w, y + track_h), fill=PANEL)
    for spans, y, colour in ((result.faces, face_y, FACE), (result.speech, speech_y, SPEECH)):
        for s in spans:
            x0 = x_of(s.start_ms)
            draw.rectangle((x0, y + 2, max(x0 + 1, x_of(s.end_ms)), y + track_h - 2), fill=colour)
    _draw_speech_curve(draw, analysis.speech, begin, x_of, speech_y, track_h)
    bounds = [begin, *result.cuts_ms, end]
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        text = str(i + 1)
        if x_of(b) - x_of(a) > 18:
            draw.text(((x_of(a) + x_of(b)) / 2 - 3, shots_y + 3), text, fill=DIM, font=small)

    # The window and its billed head, over strip and tracks.
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    over = ImageDraw.Draw(overlay)
    wx0, wx1 = x_of(result.start_ms), x_of(result.end_ms)
    hx1 = x_of(result.start_ms + result.head_ms)
    top, bottom = strip_y - 4, shots_y + track_h + 2
    over.rectangle((wx0, top, wx1, bottom), fill=WINDOW + (40,))
    over.rectangle((wx0, top, hx1, bottom), fill=WINDOW + (70,))
    image.alpha_composite(overlay)
    draw = ImageDraw.Draw(image)
    draw.rectangle((wx0, top, wx1, bottom), outline=WINDOW, width=2)
    draw.line((hx1, top, hx1, bottom), fill=WINDOW, width=1)
    draw.text((wx0 + 3, top - 16), f"billed {format_ms(result.head_ms)} s", fill=WINDOW, font=small)

    # Cuts across everything.
    for cut in result.cuts_ms:
        x = x_of(cut)
        draw.line((x, strip_y - 2, x, shots_y + track_h), fill=CUT, width=2)

    # Time axis.
    draw.line((left, axis_y, left + plot_w, axis_y), fill=DIM)
    step = _tick_step_ms(span, plot_w)
    tick = -(-begin // step) * step
    while tick <= end:
        x = x_of(tick)
        draw.line((x, axis_y, x, axis_y + 5), fill=DIM)
        label = _clock(tick) if step >= 1000 else format_ms(tick)
        draw.text((x - 3 * len(label), axis_y + 8), label, fill=DIM, font=small)
        tick += step

    # Legend.
    x = left
    for colour, text in ((FACE, "face on screen"), (SPEECH, "speech"), (CUT, "cut"),
                         (WINDOW, "chosen window (bright: billed head)")):
        draw.rectangle((x, legend_y + 3, x + 12, legend_y + 15), fill=colour)
        draw.text((x + 18, legend_y + 1), text, fill=TEXT, font=font)
        x += 30 + round(draw.textlength(text, font=font))
    return _save(image.convert("RGB"), Path(png))


def _draw_speech_curve(draw: ImageDraw.ImageDraw, probabilities: Sequence[float], begin: int,
                       x_of: Any, y: int, h: int) -> None:
    """Silero's speech probability as a thin line inside the speech track."""
    from prep.pick.analyze import SPEECH_CHUNK_MS

    if not probabilities:
        return
    points = [(x_of(begin + i * SPEECH_CHUNK_MS), y + h - 2 - p * (h - 4))
              for i, p in enumerate(probabilities)]
    # One point per pixel column is enough.
    thinned: list[tuple[float, float]] = []
    for px, py in points:
        if thinned and int(px) == int(thinned[-1][0]):
            thinned[-1] = (thinned[-1][0], min(thinned[-1][1], py))
        else:
            thinned.append((px, py))
    if len(thinned) > 1:
        draw.line(thinned, fill=(200, 220, 255), width=1)
