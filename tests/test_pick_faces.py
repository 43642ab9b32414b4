"""The face detector's score floor, on pictures it was not tuned on (no ffmpeg needed)."""

from __future__ import annotations

import faceset
import numpy as np
import pytest
from skimage import data

from prep.pick.analyze import ANALYSIS_HEIGHT, FaceDetector


def _frame(gray: np.ndarray, width: int = faceset.WIDTH) -> np.ndarray:
    """`gray` enlarged to 240 px on a flat analysis frame (16:9 unless told)."""
    return faceset.on_grey(gray, 240, width)


@pytest.fixture(scope="module")
def detector(one_opencv_thread: None) -> FaceDetector:
    return FaceDetector()


@pytest.mark.media  # 200 detections: seconds of CPU, out of the inner loop
def test_faces_in_the_wild_are_found(detector: FaceDetector) -> None:
    # scikit-image's Labeled Faces in the Wild subset: 100 face crops, then 100 non-face crops.
    crops = (data.lfw_subset() * 255).astype(np.uint8)
    # On square frames: 56 % of a landscape frame's pixels, and the face as large.
    found = sum(bool(detector.detect(_frame(crop, faceset.HEIGHT))) for crop in crops[:100])
    false = sum(bool(detector.detect(_frame(crop, faceset.HEIGHT))) for crop in crops[100:])
    # The Haar cascade found 80-85 and no false face; the SSD finds 98, and a face in one of the
    # 25 px non-face crops blown up tenfold (two on 16:9 frames; blurred, face-like blobs).
    assert found >= 95
    assert false <= 2


# Not "camera" (the cameraman's face, three-quarter, is found), nor "chelsea" (the SSD takes the
# cat's face for a face at 0.83: the known false find, counted by scripts/bench_faces.py and named
# in the README). The text picture's blob (0.67) is under the floor.
@pytest.mark.parametrize("name", ["coffee", "rocket", "immunohistochemistry", "brick", "page",
                                  "grass", "gravel", "moon", "text", "clock"])
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


def test_a_dim_frame_is_brightened_and_a_lit_one_left_alone() -> None:
    from prep.pick.faces import DIM_BRIGHT, DIM_TARGET, brightened

    lit = np.full((90, 160, 3), 180, np.uint8)
    assert brightened(lit) is lit
    dim = np.zeros((90, 160, 3), np.uint8)
    dim[:, :80] = DIM_BRIGHT // 2
    out = brightened(dim)
    assert abs(int(out.max()) - DIM_TARGET) <= 1 and int(out[:, 80:].max()) == 0
    assert int(dim.max()) == DIM_BRIGHT // 2  # the caller's frame is not changed


def test_a_face_in_a_fifth_of_the_light_is_found(detector: FaceDetector) -> None:
    crop = (data.lfw_subset()[0] * 255 * 0.2).astype(np.uint8)
    frame = _frame(crop)
    frame[frame == 120] = 24  # the grey surround dimmed too
    [face] = detector.detect(frame)
    assert face.score >= 0.9


def test_a_thread_gets_its_own_detector_and_hands_it_on_when_it_ends() -> None:
    import threading

    from prep.pick.faces import detector as face_detector

    seen: list[int] = []
    both = threading.Barrier(2)

    def use(wait: bool) -> None:
        seen.append(id(face_detector()))
        if wait:
            both.wait()  # both threads alive at once: two detectors

    together = [threading.Thread(target=use, args=(True,)) for _ in range(2)]
    for thread in together:
        thread.start()
    for thread in together:
        thread.join()
    assert seen[0] != seen[1]
    later = threading.Thread(target=use, args=(False,))
    later.start()
    later.join()
    assert seen[2] in seen[:2]  # loaded once, reused by a later thread
