"""An app deleted and created again under the same name, before a reconcile saw the gap,
starts afresh: it does not inherit its predecessor's expectations (which would hold its
creates for up to 30 s) or anything else remembered of it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from exposedapp.reconcile import AppKey, Observed, Reconciler
from exposedapp.runtime.client import Answer

KEY: AppKey = ("shop", "web")


def app(uid: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "shop", "uid": uid, "generation": 1},
        "spec": {
            "replicas": 2,
            "containers": [
                {"name": "web", "image": "i", "ports": [{"name": "http", "containerPort": 80}]}
            ],
        },
    }


class Recording:
    def __init__(self) -> None:
        self.created: list[str] = []

    def get(self, kind: str, namespace: str, name: str) -> Answer:
        return Answer(404, "NotFound", "", {})

    def create_revision(self, body: Mapping[str, Any]) -> Answer:
        return Answer(201, "", "", dict(body))

    def list_revisions(self, namespace: str, app: str) -> Answer:

        return Answer(200, "", "", {"items": []})

    def create_pod(self, body: Mapping[str, Any]) -> Answer:
        self.created.append(body["metadata"]["ownerReferences"][0]["uid"])
        return Answer(201, "", "", body)

    def apply_service(self, body: Mapping[str, Any]) -> Answer:
        return Answer(
            200, "", "", {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}
        )

    def patch_status(self, app: Any, patch: Mapping[str, Any]) -> Answer:
        return Answer(200, "", "", {})

    def post_event(
        self, app: Any, kind: str, reason: str, message: str, name: str | None = None
    ) -> Answer:
        return Answer(201, "", "", {})


def test_a_successor_under_the_same_name_creates_its_pods_at_once() -> None:
    client = Recording()
    current = {"app": app("uid-1")}

    async def scenario() -> None:
        # The watch never shows the Pods: the first app's creates stay "expected".
        reconciler = Reconciler(client, lambda key: Observed(app=current["app"]), wake=None)
        await reconciler(KEY)
        current["app"] = app("uid-2")  # deleted and created again, unseen in between
        await reconciler(KEY)
        await asyncio.gather(*reconciler._event_tasks)

    asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    assert client.created == ["uid-1", "uid-1", "uid-2", "uid-2"]
