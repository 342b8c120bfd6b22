"""A new Service is created by a step of its own queue: the app's Pods do not wait for its
cluster IP, the app is woken when it is there, and one event tells the whole creation.

The API client is a scripted stand-in; the queues are lists the test runs by hand. The
real apiserver's behaviour is covered by the e2e suite (tests/e2e/test_reconciler.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from exposedapp.reconcile import AppKey, Observed, Reconciler
from exposedapp.runtime.client import Answer

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


class ScriptedClient:
    """Records writes; what the watch shows next is ``pods``."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.reads: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.pods: list[Mapping[str, Any]] = []  # what the watch shows next

    def get(self, kind: str, namespace: str, name: str) -> Answer:
        self.reads.append(f"get {kind} {name}")
        return Answer(404, "NotFound", "not found", {})

    def create_revision(self, body: Mapping[str, Any]) -> Answer:
        return Answer(201, "", "", dict(body))

    def list_revisions(self, namespace: str, app: str) -> Answer:

        return Answer(200, "", "", {"items": []})

    def create_pod(self, body: Mapping[str, Any]) -> Answer:
        self.writes.append(f"create pod {body['metadata']['name']}")
        self.pods.append(body)
        return Answer(201, "Created", "", body)

    def apply_service(self, body: Mapping[str, Any]) -> Answer:
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
    client = ScriptedClient()
    woken: list[AppKey] = []
    creates: list[AppKey] = []

    async def scenario() -> None:
        def observe(key: AppKey) -> Observed:
            return Observed(app=APP, pods=tuple(client.pods))

        reconciler = Reconciler(
            client,
            observe,
            wake=woken.append,
            queue_service_create=creates.append,
        )
        await reconciler(KEY)
        # The Pods are created; the Service create waits in its own queue.
        assert len([w for w in client.writes if w.startswith("create pod")]) == 2
        assert not any(w.startswith("apply service") for w in client.writes)
        assert creates == [KEY]
        await reconciler(KEY)  # the create is still queued: not queued again, not done here
        assert creates == [KEY]
        assert woken == []
        await reconciler.create_service(creates.pop())
        assert woken == [KEY]
        await reconciler(KEY)  # the woken reconcile tells what the create did
        await asyncio.gather(*reconciler._event_tasks)

    asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    assert client.writes.count("apply service web") == 1
    # Whose Service holds the name was asked once: by the reconcile that queued the create.
    assert client.reads == ["get services web"]
    assert len(client.events) == 1
    reason, message = client.events[0]
    assert reason == "Reconciled"
    assert "Created Service web" in message
    assert message.count("web-") >= 2  # both Pods named in the same event


def test_without_a_queue_for_creates_the_service_is_created_in_line() -> None:
    client = ScriptedClient()

    async def scenario() -> None:
        reconciler = Reconciler(client, lambda key: Observed(app=APP, pods=tuple(client.pods)))
        await reconciler(KEY)
        await asyncio.gather(*reconciler._event_tasks)

    asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    assert client.writes.count("apply service web") == 1


def test_a_create_queued_for_an_app_since_deleted_does_nothing() -> None:
    client = ScriptedClient()
    creates: list[AppKey] = []
    current: dict[str, Any] = {"app": APP}

    async def scenario() -> None:
        reconciler = Reconciler(
            client,
            lambda key: Observed(app=current["app"], pods=tuple(client.pods)),
            wake=lambda key: None,
            queue_service_create=creates.append,
        )
        await reconciler(KEY)
        current["app"] = None
        await reconciler.create_service(creates.pop())

    asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    assert not any(w.startswith("apply service") for w in client.writes)
