"""One decode-and-detect pass per clip for the tests that only use what an analysis found.

`prep.pick.analyze.analyze` decodes a clip, runs the face detector on its frames and the voice
detector on its sound: seconds of CPU for the 26 s interview of tests/pickmedia.py, about one for
a 3 s clip. Many tests run it only on the way to what they are about (a job's reference check
before the bill, the JSON `prep pick` prints, a timeline picture), on the same few clips, each
test with a fresh cache folder, so each paid for it again. `reusing(analyze)` is `analyze`
remembering its answers for this process: the same clip (the same file, through any link to it,
at the same size and modification time) with the same arguments is analysed once, and a later
call gets that analysis under its own name (its progress callback told once that the whole range
is done). What is done with the analysis (picking, grading, writing the reports) still runs for
every test. The studio's own tests take it too (a new studio in each test, on the same clips).

The tests of the analysis itself (tests/test_pick_media.py's `picked`, the checks of
tests/test_check_media.py, tests/test_check_faces.py) and any test that changes how prep
analyses (a monkeypatched detector, threshold or ffmpeg) must not use it; conftest.py's
`reuse_analyses` fixture is opt-in.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Not part of the key: the progress callback, and the probe of the same unchanged file.
_NOT_KEYS = frozenset({"progress", "info"})
_MEMO: dict[tuple[Any, ...], Any] = {}


def _key(path: Path | str, kwargs: dict[str, Any]) -> tuple[Any, ...]:
    # The file itself: a test's link to a cached clip finds what another test's link made.
    real = Path(path).resolve(strict=True)
    stat = real.stat()
    asked = tuple(sorted((name, repr(value)) for name, value in kwargs.items()
                         if name not in _NOT_KEYS))
    return (str(real), stat.st_size, stat.st_mtime_ns, asked)


def reusing(analyze: Callable[..., Any]) -> Callable[..., Any]:
    """`analyze`, answering a repeated call from the first one's analysis."""

    @functools.wraps(analyze)
    def remembered(path: Path | str, **kwargs: Any) -> Any:
        try:
            key = _key(path, kwargs)
        except OSError:  # a missing file: the real thing says so
            return analyze(path, **kwargs)
        found = _MEMO.get(key)
        if found is None:
            found = analyze(path, **kwargs)
            _MEMO[key] = found
        elif kwargs.get("progress") is not None:
            kwargs["progress"](found.duration_ms, found.duration_ms)
        # As this call would have made it: under the name it was asked by, with the probe given.
        info = kwargs.get("info") or found.info
        if Path(path) != found.path or info is not found.info:
            return dataclasses.replace(found, path=Path(path), info=info)
        return found

    return remembered
