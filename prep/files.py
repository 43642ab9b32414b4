"""Small file helpers: writes a reader never sees half of (temp file, then rename), and hashing."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["file_sha256", "write_atomic", "write_text_atomic"]


def write_atomic(target: Path, write: Callable[[Path], object]) -> Path:
    """Make `target` by `write(tmp)` then a rename; the temp file never stays. OSError propagates."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return target


def write_text_atomic(target: Path, text: str) -> Path:
    """`write_atomic` for UTF-8 text."""
    return write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def file_sha256(path: Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file's content, read in chunks."""
    import hashlib  # OpenSSL's bindings: loaded when a file is hashed, not with every command

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
