#!/usr/bin/env python3
"""Benchmark: how well each face detector of `prep.pick.faces` finds faces, on the labelled set.

The set (tests/faceset.py, labels in fixtures/faces/truth.json) holds frames at the analysis size
with known faces (frontal, rolled 15 and 30 degrees, three-quarter, small, dim, two people) and
frames with none (pictures, sample clips, test patterns, LFW's non-face crops). For each detector
it prints, side by side: precision (detections that are a labelled face), recall (labelled faces
found), recall on the target's scope (faces at least 5% of the frame height, rolled at most 30
degrees), recall per kind of face, how many face-free frames had a face reported, the highest
score of a false detection, and milliseconds per frame (one thread, as in the analysis; the
machine may be shared, so compare the columns of one run rather than runs).
Targets: recall >= 0.95 in scope, and no face on a face-free frame.

    python scripts/bench_faces.py              # every detector
    python scripts/bench_faces.py --misses     # also list the frames each one got wrong
    python scripts/bench_faces.py --markdown   # the table as the README shows it
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

TARGET_RECALL = 0.95


def main() -> int:
    import cv2
    import faceset

    from prep.pick.faces import DETECTORS, detector

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", action="store_true", help="list the frames got wrong")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--detector", action="append", choices=DETECTORS,
                        help="only these detectors (default: all)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    labelled = faceset.items()
    free = sum(not i.faces for i in labelled)
    print(f"labelled set: {len(labelled) - free} frames with {sum(len(i.faces) for i in labelled)}"
          f" faces, {free} face-free frames")
    names = args.detector or list(DETECTORS)
    scores = {}
    for name in names:
        found = detector(name)
        scores[name] = faceset.score(lambda bgr, d=found: d.detect(bgr, 0.04), labelled)
    categories = sorted({c for s in scores.values() for c in s.by_category})
    rows: list[tuple[str, list[str]]] = [
        ("precision", [f"{s.precision:.3f}" for s in scores.values()]),
        ("recall, all faces", [f"{s.recall:.3f}" for s in scores.values()]),
        ("recall, >= 5% high, roll <= 30 (target >= 0.95)",
         [f"{s.target_recall:.3f}" for s in scores.values()]),
        *((f"recall, {c}", [_share(s.by_category.get(c)) for s in scores.values()])
          for c in categories),
        ("face-free frames with a face (target 0)",
         [f"{s.free_frames_with_faces} of {s.free_frames}" for s in scores.values()]),
        ("highest score of a false face", [f"{s.max_false_score:.2f}" for s in scores.values()]),
        ("ms per frame", [f"{s.ms_per_frame:.1f}" for s in scores.values()]),
    ]
    if args.markdown:
        print("| | " + " | ".join(names) + " |")
        print("| --- |" + " ---: |" * len(names))
        for label, cells in rows:
            print(f"| {label} | " + " | ".join(cells) + " |")
    else:
        width = max(len(label) for label, _ in rows)
        print(" " * width + "".join(f"{n:>14}" for n in names))
        for label, cells in rows:
            print(label.ljust(width) + "".join(f"{c:>14}" for c in cells))
    if args.misses:
        for name, result in scores.items():
            print(f"{name} got wrong: {', '.join(result.misses) or 'nothing'}")
    chosen = scores.get(names[0])
    ok = chosen is not None and chosen.target_recall >= TARGET_RECALL \
        and chosen.free_frames_with_faces == 0
    print(f"{names[0]}: {'meets' if ok else 'misses'} the targets")
    return 0 if ok else 1


def _share(counts: list[int] | None) -> str:
    if not counts or not counts[1]:
        return "-"
    return f"{counts[0] / counts[1]:.2f} ({counts[0]}/{counts[1]})"


if __name__ == "__main__":
    raise SystemExit(main())
