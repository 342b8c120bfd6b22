"""What landed is told once, whatever error comes in between (a queued Service create
collected by a reconcile that then fails; creates that landed in a partly applied plan)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

from test_reconcile_service_create import APP, KEY, ScriptedClient

from exposedapp.reconcile import AppKey, Observed, Reconciler
from exposedapp.runtime.client import Answer


class FlakyPods(ScriptedClient):
    """Pod creates answer 500 while ``failing``."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    def create_revision(self, body: Mapping[str, Any]) -> Answer:
        return Answer(201, "", "", dict(body))

    def list_revisions(self, namespace: str, app: str) -> Answer:

        return Answer(200, "", "", {"items": []})

    def create_pod(self, body: Mapping[str, Any]) -> Answer:
        if self.failing:
            return Answer(500, "InternalError", "etcd is away", {})
        return super().create_pod(body)


def test_a_collected_service_create_is_told_even_if_that_reconcile_fails() -> None:
    client = FlakyPods()
    app = copy.deepcopy(APP)
    woken: list[AppKey] = []
    creates: list[AppKey] = []

    async def scenario() -> None:
        reconciler = Reconciler(
            client,
            lambda key: Observed(app=app, pods=tuple(client.pods)),
            wake=woken.append,
            queue_service_create=creates.append,
        )
        await reconciler(KEY)  # 2 Pods created, the Service create waits in its queue
        await reconciler.create_service(creates.pop())
        assert woken == [KEY]
        app["spec"]["replicas"] = 3
        client.failing = True
        failed = False
        try:
            await reconciler(KEY)  # collects the Service create, then a Pod create fails
        except Exception:
            failed = True
        assert failed
        client.failing = False
        await reconciler(KEY)
        await asyncio.gather(*reconciler._event_tasks)

    asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    told = [message for _, message in client.events if "Created Service web" in message]
    assert len(told) == 1
