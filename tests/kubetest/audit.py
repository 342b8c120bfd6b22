"""Read the apiserver's audit log: who made which requests between two markers.

A marker is a distinctive request made by the test (a GET of a namespace that does not
exist); once it appears in the log, everything before it has been flushed, so counting
never depends on sleeping.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .waiting import wait_for

__all__ = ["WRITE_VERBS", "AuditLog", "Request"]

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Request:
    user: str
    verb: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int

    def __str__(self) -> str:
        target = self.resource + (f"/{self.subresource}" if self.subresource else "")
        return f"{self.verb} {target} {self.namespace}/{self.name} -> {self.code}"


class AuditLog:
    def __init__(self, path: Path, probe: Callable[[str], object]) -> None:
        self.path = path
        self.probe = probe  # makes a GET of the named namespace

    def _lines(self) -> list[str]:
        return self.path.read_text(errors="replace").splitlines() if self.path.exists() else []

    def mark(self) -> int:
        """Make a marker request; return the log position just after it."""
        marker = f"audit-marker-{secrets.token_hex(4)}"
        self.probe(marker)

        def position() -> int | None:
            for index, line in enumerate(self._lines()):
                if marker in line:
                    return index + 1
            return None

        return (
            wait_for(position, lambda p: p is not None, timeout=30, what=f"audit marker {marker}")
            or 0
        )

    def requests(self, start: int, end: int, user: str | None = None) -> list[Request]:
        found = []
        for line in self._lines()[start:end]:
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            request = Request(
                user=event.get("user", {}).get("username", ""),
                verb=event.get("verb", ""),
                resource=ref.get("resource", ""),
                subresource=ref.get("subresource", ""),
                namespace=ref.get("namespace", ""),
                name=ref.get("name", ""),
                code=(event.get("responseStatus") or {}).get("code", 0),
            )
            if user is None or request.user == user:
                found.append(request)
        return found

    def writes(self, start: int, end: int, user: str) -> list[Request]:
        return [r for r in self.requests(start, end, user) if r.verb in WRITE_VERBS]
