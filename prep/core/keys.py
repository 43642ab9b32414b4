"""Keys for caches and the journal: a short, stable digest of everything a result depends on.

A pick, a check and a prepared clip are each keyed by the file as it is now (path, size,
modification time), the window, and what the model changes about the answer. wan2.6 was the only
model when the first journals and caches were written, so a model adds nothing to a key for
wan2.6: those keys, and the files kept under them, stay valid. (A prepared clip depends on the
model's smallest picture side rather than its name, which wan2.6 does not have either.)
"""

from __future__ import annotations

from collections.abc import Sequence

from prep.core import rules

__all__ = ["digest", "model_part"]


def digest(fields: Sequence[object]) -> str:
    """32 hex characters of the SHA-256 of `fields` as JSON (strings, numbers, None, lists)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(list(fields)).encode()).hexdigest()[:32]


def model_part(model: str) -> tuple[str, ...]:
    """What a key adds for `model`: nothing for wan2.6 (see the module docstring), else its id."""
    return () if model == rules.MODEL else (model,)
