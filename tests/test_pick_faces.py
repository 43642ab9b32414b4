"""The face detector's score floor, on pictures it was not tuned on (no ffmpeg needed)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from prep.pick.analyze import ANALYSIS_HEIGHT, FaceDetector


def _frame(gray: np.ndarray, side: int = 240) -> np.ndarray:
    """`gray` enlarged to `side` px, on a flat 16:9 analysis frame, as a talking head would be."""
    import cv2

    frame = np.full((ANALYSIS_HEIGHT, ANALYSIS_HEIGHT * 16 // 9), 120, np.uint8)
    big = cv2.resize(gray, (side, side), interpolation=cv2.INTER_CUBIC)
    top, left = (ANALYSIS_HEIGHT - side) // 2, (frame.shape[1] - side) // 2
    frame[top:top + side, left:left + side] = big
    return frame


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.mark.media  # 200 detections: seconds of CPU, out of the inner loop
def test_faces_in_the_wild_are_found(detector: FaceDetector) -> None:
    # scikit-image's Labeled Faces in the Wild subset: 100 face crops, then 100 non-face crops.
    crops = (data.lfw_subset() * 255).astype(np.uint8)
    found = sum(bool(detector.detect(_frame(crop))) for crop in crops[:100])
    false = sum(bool(detector.detect(_frame(crop))) for crop in crops[100:])
    # The Haar cascade found 80-85 and no false face; the SSD finds 98, and a face in two of the
    # 25 px non-face crops blown up tenfold (both blurred, face-like blobs).
    assert found >= 95
    assert false <= 2


# Not "camera" (the cameraman's face, three-quarter, is found), nor "chelsea" and "text" (the SSD
# takes the cat's face, and a blob in the text picture, for faces at 0.83 and 0.67: known false
# finds, counted by scripts/bench_faces.py and named in the README).
@pytest.mark.parametrize("name", ["coffee", "rocket", "immunohistochemistry", "brick", "page",
                                  "grass", "gravel", "moon"])
def test_no_false_faces_in_pictures_without_people(detector: FaceDetector, name: str) -> None:
    import cv2

    image = getattr(data, name)()
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    frame = cv2.resize(gray, (round(width * ANALYSIS_HEIGHT / height), ANALYSIS_HEIGHT),
                       interpolation=cv2.INTER_AREA)
    assert detector.detect(frame) == ()


def test_face_boxes_are_fractions_of_the_frame(detector: FaceDetector) -> None:
    faces = detector.detect(_frame((data.lfw_subset()[0] * 255).astype(np.uint8)))
    assert len(faces) == 1
    face = faces[0]
    assert 0 < face.x < 1 and 0 < face.y < 1 and 0.3 < face.height < 1
    assert face.score >= 0.6
