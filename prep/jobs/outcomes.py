"""A record of create requests whose outcome is unknown, so that no job is ever paid for twice.

When a create request was sent and no answer came back (a timeout after the body left, a connection
dropped before the answer, a 5xx), the task may exist and may be billed. prep never re-sends such a
request blindly: it writes what it sent here, one small JSON file per request under
`<cache dir>/outcomes/`, and refuses to send the same body again until the record is resolved
(`prep task` / the dashboard shows whether the task exists; batch reconciles its journal from here).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prep.files import write_text_atomic

__all__ = ["UnknownOutcome", "body_fingerprint", "find", "pending", "record", "resolve"]


def body_fingerprint(body: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a request body: the same job has the same fingerprint."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownOutcome:
    """One create request that was sent with no definite answer."""

    idempotency_key: str
    url: str
    body: dict[str, Any] = field(repr=False)
    reason: str
    sent_at: str
    fingerprint: str
    path: Path

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape stored on disk (and shown by --json)."""
        return {"idempotency_key": self.idempotency_key, "url": self.url, "body": self.body,
                "reason": self.reason, "sent_at": self.sent_at, "fingerprint": self.fingerprint}


def record(
    directory: Path, *, idempotency_key: str, url: str, body: Mapping[str, Any], reason: str,
    now: datetime | None = None,
) -> Path:
    """Write a record atomically and return its path (named after the idempotency key)."""
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    data = {"idempotency_key": idempotency_key, "url": url, "body": dict(body), "reason": reason,
            "sent_at": stamp, "fingerprint": body_fingerprint(body)}
    return write_text_atomic(directory / f"{idempotency_key}.json",
                             json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def pending(directory: Path) -> list[UnknownOutcome]:
    """Every unresolved record, oldest first. Unreadable files are skipped, not fatal."""
    found: list[UnknownOutcome] = []
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            found.append(UnknownOutcome(
                idempotency_key=str(data["idempotency_key"]), url=str(data["url"]),
                body=dict(data["body"]), reason=str(data["reason"]), sent_at=str(data["sent_at"]),
                fingerprint=str(data.get("fingerprint") or body_fingerprint(data["body"])), path=path,
            ))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    found.sort(key=lambda o: o.sent_at)
    return found


def find(directory: Path, body: Mapping[str, Any]) -> UnknownOutcome | None:
    """The unresolved record of this exact request body, if there is one."""
    fingerprint = body_fingerprint(body)
    return next((o for o in pending(directory) if o.fingerprint == fingerprint), None)


def resolve(directory: Path, idempotency_key: str) -> bool:
    """Forget a record once its outcome is known; True when there was one."""
    try:
        (directory / f"{idempotency_key}.json").unlink()
    except FileNotFoundError:
        return False
    return True
