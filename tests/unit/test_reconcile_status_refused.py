"""A status the apiserver refuses for good: a minimal truthful status, one event, then quiet.

The API client is a scripted stand-in that refuses (422) any status patch carrying
portsText, as an apiserver with a stricter schema would; the apiserver's real refusal is
covered by the e2e suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from exposedapp.reconcile import AppKey, Observed, Reconciler
from exposedapp.runtime.client import Answer

KEY: AppKey = ("shop", "web")


class RefusingStatusClient:
    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self.patches: list[Mapping[str, Any]] = []
        self.events: list[tuple[str, str]] = []

    def get(self, kind: str, namespace: str, name: str) -> Answer:
        return Answer(404, "NotFound", "not found", {})

    def create_revision(self, body: Mapping[str, Any]) -> Answer:
        return Answer(201, "", "", dict(body))

    def list_revisions(self, namespace: str, app: str) -> Answer:

        return Answer(200, "", "", {"items": []})

    def create_pod(self, body: Mapping[str, Any]) -> Answer:
        return Answer(201, "Created", "", body)

    def apply_service(self, body: Mapping[str, Any]) -> Answer:
        return Answer(
            200, "OK", "", {**body, "metadata": {**body["metadata"], "resourceVersion": "3"}}
        )

    def patch_status(self, app: Any, patch: Mapping[str, Any]) -> Answer:
        self.patches.append(patch)
        if "portsText" in patch.get("status", patch):
            return Answer(
                422, "Invalid", "status.portsText: Too long: may not be longer than 8", {}
            )
        body = patch.get("status", patch)
        self.status = {k: v for k, v in {**self.status, **body}.items() if v is not None}
        return Answer(200, "OK", "", {})

    def post_event(
        self, app: Any, kind: str, reason: str, message: str, name: str | None = None
    ) -> Answer:
        self.events.append((reason, message))
        return Answer(201, "Created", "", {})


def app(status: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web", "generation": 3},
        "spec": {
            "replicas": 0,
            "containers": [
                {"name": "web", "image": "i", "ports": [{"name": "http", "containerPort": 80}]}
            ],
        },
        "status": dict(status),
    }


def test_a_refused_status_becomes_a_minimal_one_once() -> None:
    client = RefusingStatusClient()

    async def scenario() -> None:
        reconciler = Reconciler(client, lambda key: Observed(app=app(client.status)), wake=None)
        for _ in range(3):  # the second and third reconciles find nothing to write
            await reconciler(KEY)
        await asyncio.gather(*reconciler._event_tasks)

    asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    refused = [p for p in client.patches if "portsText" in p.get("status", p)]
    assert len(refused) == 1  # the full status is asked for once, not for ever
    degraded = next(c for c in client.status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "StatusInvalid")
    assert degraded["message"] == (
        "the status could not be written: status.portsText: Too long: may not be longer than 8"
    )
    assert client.status["observedGeneration"] == 3
    assert [reason for reason, _ in client.events].count("StatusInvalid") == 1
    assert len(client.patches) == 2  # the refused one and the minimal one; then nothing
