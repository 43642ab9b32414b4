"""Clip specs against the disk: the edge of `prep.core.clipspec`, whose parsing stays pure.

`parse_clip_spec(text)` asks the file system whether a path exists (a spec that exists as written is
a path even with an `@`); `expand_paths` turns a folder into the video files inside it.
"""

from __future__ import annotations

import os

from prep.core import clipspec
from prep.core.clipspec import VIDEO_EXTENSIONS, ClipSpec, Window

__all__ = ["expand_paths", "parse_clip_spec"]


def parse_clip_spec(text: str) -> ClipSpec:
    """`PATH` or `PATH@START-END`, with existence read from the disk. UsageError for a bad window."""
    # lexists: a dangling symlink named as written is still that name, not a window.
    return clipspec.parse_clip_spec(text, exists=os.path.lexists)


def expand_paths(specs: list[ClipSpec]) -> list[ClipSpec]:
    """A folder stands for the video files directly inside it, sorted by name."""
    out: list[ClipSpec] = []
    for spec in specs:
        if spec.path.is_dir() and spec.window.is_open:
            videos = sorted(
                p for p in spec.path.iterdir()
                if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
            )
            if not videos:
                # Kept as-is: probing reports "no video files in this folder" for it.
                out.append(spec)
            out.extend(ClipSpec(p, Window(), str(p)) for p in videos)
        else:
            out.append(spec)
    return out
