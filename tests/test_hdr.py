"""HDR to SDR keeps the picture (issue #18): round trips from an SDR master through HLG and PQ
come back at the master's brightness, and highlights above SDR white are compressed, not clipped.

The HDR files are made the way BT.2408 maps SDR into HDR: SDR white to HDR reference white
(203 cd/m2: 75 % of the HLG signal, 58 % of PQ), with ffmpeg's zscale."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from mediagen import ffmpeg_exe, make

from prep.media.prepare import PrepareOptions, PrepResult, prepare

pytestmark = pytest.mark.media

_SIZE, _RATE, _SECONDS = "320x180", 10, 2.5
_TRANSFER = {"hlg": "arib-std-b67", "pq": "smpte2084"}
# HDR10 metadata as a grading monitor writes it: a 1000 cd/m2 mastering display, MaxCLL 1000.
_HDR10 = ("master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)"
          "L(10000000,50):max-cll=1000,400")


def _master() -> Path:
    """Natural-looking SDR footage (texture, motion, moderate colour), BT.709, lossless."""
    graph = (f"mandelbrot=size={_SIZE}:rate={_RATE}:end_scale=0.5:maxiter=96[m];"
             f"testsrc2=size={_SIZE}:rate={_RATE}[t];[m][t]blend=all_mode=overlay:"
             f"all_opacity=0.5,hue=s=0.5,trim=duration={_SECONDS},setparams=color_primaries="
             "bt709:color_trc=bt709:colorspace=bt709:range=tv")
    return make("hdr-master", ["-f", "lavfi", "-i", graph, "-c:v", "libx264", "-preset",
                               "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p"], suffix=".mkv")


def _hdr(kind: str, source: Path, graph: str = "") -> Path:
    transfer = _TRANSFER[kind]
    params = f"log-level=error:colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc"
    if kind == "pq":
        params += ":" + _HDR10
    convert = graph or (f"zscale=tin=709:min=709:pin=709:rin=tv:t={transfer}:p=2020:m=2020_ncl:"
                        "r=tv:npl=203,format=yuv420p10le")
    return make(f"hdr-{kind}", ["-i", str(source), "-vf", convert, "-c:v", "libx265", "-preset",
                                "ultrafast", "-crf", "4", "-x265-params", params, "-tag:v",
                                "hvc1"], suffix=".mov")


def _prepared(source: Path, out: Path) -> PrepResult:
    (result,) = prepare([str(source)], out, PrepareOptions(use_cache=False, ffmpeg="",
                                                             profile="quality"))
    assert result.plan.video is not None and result.plan.video.tonemap
    assert result.output is not None
    return result


def _luma_and_ssim(distorted: Path, reference: Path) -> tuple[float, float, float]:
    """Mean luma of each (8-bit code values) and SSIM (all planes), frames aligned by index."""
    align = "settb=expr=1/30,setpts=N"
    done = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(distorted), "-i", str(reference),
         "-lavfi", f"[0:v]{align},format=yuv420p,signalstats,metadata=print:"
                   f"key=lavfi.signalstats.YAVG[a];[1:v]{align},format=yuv420p,signalstats,"
                   "metadata=print:key=lavfi.signalstats.YAVG[b];[a][b]ssim",
         "-f", "null", "-"], capture_output=True, text=True, check=True)
    ssim = float(re.findall(r"SSIM Y:.*All:([\d.]+)", done.stderr)[-1])
    means: dict[str, list[float]] = {}
    for parsed, value in re.findall(r"\[(Parsed_metadata_\d+) [^\]]*\][^\n]*YAVG=([\d.]+)",
                                    done.stderr):
        means.setdefault(parsed, []).append(float(value))
    first, second = (sum(v) / len(v) for v in means.values())
    return first, second, ssim


@pytest.mark.parametrize("kind", ["hlg", "pq"])
def test_round_trip_keeps_the_masters_brightness(tmp_out: Path, kind: str) -> None:
    master = _master()
    result = _prepared(_hdr(kind, master), tmp_out)
    assert result.output is not None
    out_luma, master_luma, ssim = _luma_and_ssim(result.output, master)
    assert abs(out_luma - master_luma) / master_luma <= 0.02, (out_luma, master_luma)
    assert ssim >= 0.97
    if kind == "pq":  # read from the HDR10 metadata, not assumed
        assert result.plan.video is not None and result.plan.video.hdr_peak_nits == 1000


def _strip_means(path: Path, fractions: list[tuple[float, float]], width: int) -> list[float]:
    """Mean luma of vertical strips of `path` (each a fraction of its width)."""
    means = []
    for low, high in fractions:
        x, w = round(low * width), round((high - low) * width)
        done = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-vf",
             f"crop={w}:ih:{x}:0,format=yuv420p,signalstats,metadata=print:"
             "key=lavfi.signalstats.YAVG", "-frames:v", "1", "-f", "null", "-"],
            capture_output=True, text=True, check=True)
        means.append(float(re.findall(r"YAVG=([\d.]+)", done.stderr)[-1]))
    return means


def test_highlights_above_sdr_white_are_compressed_not_clipped(tmp_out: Path) -> None:
    """A grey ramp over the whole HLG signal: past SDR white (75 % signal) prep's output keeps
    rising in BT.709's headroom over white (to code 254, the top of its limited range), where a
    plain conversion to BT.709 clips it flat (at 255); below white it is the plain
    conversion's."""
    ramp = make("hlg-ramp-src", ["-f", "lavfi", "-i",
                                 f"nullsrc=size=320x64:rate={_RATE}:duration={_SECONDS},"
                                 "format=yuv420p10le,geq=lum='64+876*X/W':cb=512:cr=512",
                                 "-c:v", "ffv1"], suffix=".mkv")
    source = _hdr("hlg", ramp, graph="null")
    result = _prepared(source, tmp_out)
    assert result.output is not None
    strips = [(0.79, 0.83), (0.86, 0.90), (0.93, 0.97)]
    ours = _strip_means(result.output, strips + [(0.97, 1.0)], 320)
    assert ours[0] > 235.5 and ours[0] + 1 < ours[1] < ours[2] - 1 < ours[3] <= 254.5, ours
    plain = make("hlg-ramp-plain", ["-i", str(source), "-vf", "zscale=t=709:p=709:m=709:r=tv:"
                                    "npl=203,format=yuv420p", "-c:v", "libx264", "-qp", "0"])
    flat = _strip_means(plain, strips, 320)
    assert max(flat) - min(flat) < 1  # the plain conversion clips them all to white
    # Up to SDR white the picture is the plain conversion's (within a code value).
    below = [(0.3, 0.5), (0.6, 0.7), (0.72, 0.75)]
    for mine, theirs in zip(_strip_means(result.output, below, 320),
                            _strip_means(plain, below, 320), strict=True):
        assert abs(mine - theirs) < 1, (mine, theirs)
