"""The smart cut (issue #18) in Chromium: every frame of the cut decodes in a real browser.

tests/test_smartcut.py proves the cut in ffmpeg. Here Debian's Chromium (tests/chromium.py) gets
the same output from a server on 127.0.0.1 (a secure origin, which WebCodecs needs), twice:
WebCodecs decodes it sample by sample from its own sample table, and a `<video>` plays it to the
end. The source clip goes through the same checks as a control, so a failure is the cut's, not
the browser's. Waiting is Playwright's; nothing is timed.
"""

from __future__ import annotations

import base64
import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import chromium
import pytest
from smartcutmedia import (
    RATE,
    SOURCES,
    WINDOW,
    WINDOW_FRAMES,
    frame_hashes,
    prepare_one,
    source,
)

from prep.media.mp4 import read_mp4, read_samples

pytestmark = pytest.mark.media

chromium.sync_api()

SOURCE_FRAMES = 5 * RATE
# The page every test opens; its icon is inline, as a request for /favicon.ico would be a 404
# and so a console error.
_BLANK = b'<!doctype html><link rel="icon" href="data:,"><title>smart cut</title>'


@dataclass(frozen=True, slots=True)
class _Served:
    """The files on the test's server: `url` + "/" is a blank page, `url` + "/<name>.mp4" a clip."""

    url: str
    paths: dict[str, Path]


class _Files(BaseHTTPRequestHandler):
    """GET of a few known files, answering a single byte range with 206 as the studio's
    FileResponse does (a player asks for ranges; http.server's own handler ignores them)."""

    files: dict[str, Path] = {}

    def do_GET(self) -> None:
        if self.path == "/":
            body, kind = _BLANK, "text/html"
        elif self.path in self.files:
            body, kind = self.files[self.path].read_bytes(), "video/mp4"
        else:
            self.send_error(404)
            return
        start, end = 0, len(body)
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if wanted and int(wanted[1]) < len(body):
            start, end = int(wanted[1]), min(int(wanted[2] or len(body) - 1) + 1, len(body))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a player that has enough
            self.wfile.write(body[start:end])

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: no line per request on stderr


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Served]:
    """The smart cuts of tests/test_smartcut.py and their sources, on a server on 127.0.0.1: an
    x264 source (the edges carry its SPS and a CAVLC PPS of their own: one SPS and two PPS in the
    avcC), an OpenH264 one and an x264 one stripped of its settings (the edges carry their own
    beside the source's: two SPS and two PPS, the unmarked one's with B-frames in the source's
    and none in the edges')."""
    paths: dict[str, Path] = {}
    for encoder, video in SOURCES.items():
        original = source(encoder, video)
        result = prepare_one(tmp_path_factory.mktemp("out"), f"{original}{WINDOW}")
        assert result.as_dict()["video_action"] == "smart-cut"  # not a fallback transcode
        assert result.output is not None
        paths[f"cut-{encoder}"], paths[f"source-{encoder}"] = result.output, original
    handler = type("Files", (_Files,), {"files": {f"/{name}.mp4": path for name, path in paths.items()}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield _Served(f"http://127.0.0.1:{server.server_address[1]}", paths)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


CLIPS = pytest.mark.parametrize(("name", "frames"), [
    (f"{kind}-{encoder}", WINDOW_FRAMES if kind == "cut" else SOURCE_FRAMES)
    for encoder in SOURCES for kind in ("cut", "source")])

# Fetches the mp4 and decodes the samples it is given ([offset, size, µs, key], in decode order)
# with hardware acceleration off, so every frame comes out as I420 and is hashed as ffmpeg's
# framehash hashes a yuv420p picture: its planes packed, Y then U then V.
_DECODE = """async ({url, codec, description, samples}) => {
  const file = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const config = {codec, description: Uint8Array.from(atob(description), c => c.charCodeAt(0)),
                  hardwareAcceleration: "prefer-software"};
  if (!(await VideoDecoder.isConfigSupported(config)).supported) return {supported: false};
  const report = {supported: true, error: null, timestamps: [], formats: [], sizes: []};
  const hashes = [];
  const hash = async frame => {
    try {
      const planes = new Uint8Array(frame.allocationSize());
      await frame.copyTo(planes);
      return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", planes)),
                        b => b.toString(16).padStart(2, "0")).join("");
    } finally {
      frame.close();
    }
  };
  const decoder = new VideoDecoder({
    output: frame => {
      report.timestamps.push(frame.timestamp);
      report.formats.push(frame.format);
      report.sizes.push(`${frame.displayWidth}x${frame.displayHeight}`);
      hashes.push(hash(frame));
    },
    error: e => { report.error = `${e.name}: ${e.message}`; },
  });
  decoder.configure(config);
  for (const [offset, size, timestamp, key] of samples) {
    if (decoder.state === "closed") break;  // an error closed it; report.error says which
    decoder.decode(new EncodedVideoChunk({type: key ? "key" : "delta", timestamp,
                                          data: file.subarray(offset, offset + size)}));
  }
  try {
    await decoder.flush();
  } catch (e) {
    report.error = report.error || `${e.name}: ${e.message}`;
  }
  report.hashes = await Promise.all(hashes);
  return report;
}"""


def _microseconds(units: int, timescale: int) -> int:
    return units * 1_000_000 // timescale


@CLIPS
def test_webcodecs_decodes_every_sample(page: Any, served: _Served, name: str, frames: int) -> None:
    path = served.paths[name]
    samples = read_samples(path)
    video = read_mp4(path).track("vide")
    assert samples is not None and video is not None and video.avc_config is not None
    avcc = video.avc_config
    assert len(samples) == frames and avcc[0] == 1
    scale = samples.timescale
    page.goto(served.url + "/")
    report = page.evaluate(_DECODE, {
        "url": f"/{name}.mp4",
        "codec": f"avc1.{avcc[1:4].hex()}",  # profile, constraint flags, level
        "description": base64.b64encode(avcc).decode(),
        "samples": [[offset, size, _microseconds(shown, scale), samples.sync is None or i in samples.sync]
                    for i, (offset, size, shown) in enumerate(zip(samples.offsets, samples.sizes,
                                                                  samples.presentation_times, strict=True))]})
    if not report["supported"]:
        pytest.skip(f"this Chromium's WebCodecs cannot decode avc1.{avcc[1:4].hex()} (no H.264 decoder)")
    assert report["error"] is None
    # One frame out for every sample in, in presentation order, evenly timed from the first.
    first, step = min(samples.presentation_times), scale // RATE
    assert report["timestamps"] == [_microseconds(first + i * step, scale) for i in range(frames)]
    assert set(report["formats"]) == {"I420"} and set(report["sizes"]) == {"320x180"}
    # And each picture is bit for bit the one ffmpeg decodes (tests/test_smartcut.py checks those).
    # Without this, damage could pass: both decoders will turn a slice of garbage into pictures
    # without reporting an error (tried: flipping 8 bytes inside a sample).
    assert report["hashes"] == [h for _, h in frame_hashes(path)]
    assert page.problems == []


# Loads the clip muted, waits for the page to present its first frame while paused, then plays it
# at `rate`, keeping a report in `window.report`: whether it ended or failed, the media time of
# that first frame and of each frame the page presented while playing (requestVideoFrameCallback).
# Waiting for the first frame before playing keeps it from being skipped on a busy machine.
_PLAY = """async ({url, rate}) => {
  const video = document.createElement("video");
  video.muted = true;
  video.preload = "auto";
  document.body.append(video);
  const report = window.report = {ended: false, error: null, first: null, presented: []};
  video.addEventListener("ended", () => { report.ended = true; });
  video.addEventListener("error", () => { report.error = `${video.error.code}: ${video.error.message}`; });
  const first = new Promise((resolve) => {
    video.requestVideoFrameCallback((now, meta) => resolve(meta.mediaTime));
  });
  video.src = url;
  report.first = await first;
  const onFrame = (now, meta) => {
    report.presented.push(meta.mediaTime);
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  video.playbackRate = rate;
  await video.play();
}"""

_PLAYED = """() => {
  const video = document.querySelector("video"), quality = video.getVideoPlaybackQuality();
  return {...window.report, error: window.report.error ?? video.error?.message ?? null,
          duration: video.duration, current: video.currentTime,
          size: `${video.videoWidth}x${video.videoHeight}`, decoded: quality.totalVideoFrames,
          dropped: quality.droppedVideoFrames, corrupted: quality.corruptedVideoFrames};
}"""


@CLIPS
def test_video_element_plays_to_the_end(page: Any, served: _Served, name: str, frames: int) -> None:
    page.goto(served.url + "/")
    # At twice the speed: the frames shown skip some, but every frame is still decoded.
    page.evaluate(_PLAY, {"url": f"/{name}.mp4", "rate": 2})
    page.wait_for_function("() => window.report.ended || window.report.error !== null")
    report = page.evaluate(_PLAYED)
    assert report["error"] is None and report["ended"]
    assert abs(report["duration"] - frames / RATE) <= 1 / RATE
    assert report["current"] == report["duration"] and report["size"] == "320x180"
    # Chromium's totalVideoFrames counts the frames its decoder put out, shown or dropped. It
    # counts no corrupted frames (Blink's WebMediaPlayer answers 0), so that is for the record:
    # the <video> checks see a failed decode or a wrong length, not damaged pictures (WebCodecs,
    # above, does).
    assert report["decoded"] == frames and report["corrupted"] == 0
    # The frames shown were the clip's own, the first one first, then in order: mediaTime
    # (rounded to the µs) is a frame's presentation time. Which ones were shown while playing
    # depends on the machine's load.
    assert report["first"] == 0
    shown = [round(seconds * RATE) for seconds in report["presented"]]
    assert all(abs(seconds - index / RATE) < 1e-5 for seconds, index in zip(report["presented"], shown,
                                                                           strict=True))
    assert shown and shown == sorted(set(shown)) and shown[-1] < frames
    assert page.problems == []
