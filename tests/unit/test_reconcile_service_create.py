"""A new Service is created in the background: the app's Pods do not wait for its cluster
IP, the app is woken when it is there, and one event tells the whole creation.

The API client is a scripted stand-in whose Service create blocks until released; the
real apiserver's behaviour is covered by the e2e suite (tests/e2e/test_reconciler.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any, cast

from exposedapp.apply import Answer, ApiClient
from exposedapp.reconcile import AppKey, Observed, Reconciler

KEY: AppKey = ("shop", "web")
APP = {
    "apiVersion": "exposedapp.dev/v1alpha1",
    "kind": "ExposedApp",
    "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web", "generation": 1},
    "spec": {
        "replicas": 2,
        "containers": [
            {"name": "web", "image": "nginx:1.27", "ports": [{"name": "http", "containerPort": 80}]}
        ],
    },
}


class SlowServiceClient:
    """Records writes; the Service create waits for `release`, as a busy apiserver would."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.writes: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.pods: list[Mapping[str, Any]] = []  # what the watch shows next

    def get(self, kind: str, namespace: str, name: str) -> Answer:
        return Answer(404, "NotFound", "not found", {})

    def create_pod(self, body: Mapping[str, Any]) -> Answer:
        self.writes.append(f"create pod {body['metadata']['name']}")
        self.pods.append(body)
        return Answer(201, "Created", "", body)

    def apply_service(self, body: Mapping[str, Any]) -> Answer:
        assert self.release.wait(10), "never released"
        self.writes.append(f"apply service {body['metadata']['name']}")
        created = {**body, "metadata": {**body["metadata"], "resourceVersion": "7"}}
        return Answer(201, "Created", "", created)

    def patch_status(self, app: Any, patch: Mapping[str, Any]) -> Answer:
        self.writes.append("patch status")
        return Answer(200, "OK", "", {})

    def post_event(
        self, app: Any, kind: str, reason: str, message: str, name: str | None = None
    ) -> Answer:
        self.events.append((reason, message))
        return Answer(201, "Created", "", {})


def test_pods_do_not_wait_for_the_service_and_one_event_tells_it_all() -> None:
    client = SlowServiceClient()
    woken: list[AppKey] = []

    async def scenario() -> None:
        def observe(key: AppKey) -> Observed:
            return Observed(app=APP, pods=tuple(client.pods))

        reconciler = Reconciler(cast(ApiClient, client), observe, wake=woken.append)
        await reconciler(KEY)
        # The Pods are created while the Service create is still waiting on the apiserver.
        assert len([w for w in client.writes if w.startswith("create pod")]) == 2
        assert not any(w.startswith("apply service") for w in client.writes)
        assert woken == []
        client.release.set()
        for _ in range(200):  # the create ends in its thread; the done callback wakes
            if woken:
                break
            await asyncio.sleep(0.01)
        assert woken == [KEY]
        await reconciler(KEY)  # the woken reconcile collects the result
        await asyncio.gather(*reconciler._event_tasks)

    asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    assert client.writes.count("apply service web") == 1
    assert len(client.events) == 1
    reason, message = client.events[0]
    assert reason == "Reconciled"
    assert "Created Service web" in message
    assert message.count("web-") >= 2  # both Pods named in the same event
