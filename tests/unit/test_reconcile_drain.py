"""A drain through the reconciler, on injected clocks: patch, wait for the slices, wait the
delay, delete; never a second patch while the watch lags; the delay counted from when the
slices let the Pod go, as this process saw it."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from typing import Any

from exposedapp.domain.desired import AppRef, build_desired
from exposedapp.domain.model import parse_spec
from exposedapp.reconcile import AppKey, Observed, Reconciler
from exposedapp.runtime.client import Answer

KEY: AppKey = ("shop", "web")
REF = AppRef("shop", "web", "uid-app")
START = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
SPEC = {
    "replicas": 1,
    "containers": [{"name": "web", "image": "i", "ports": [{"name": "http", "containerPort": 80}]}],
}
DESIRED = build_desired(REF, parse_spec(SPEC))


def app() -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "shop", "uid": REF.uid, "generation": 1},
        "spec": SPEC,
    }


def pod(slot: int) -> dict[str, Any]:
    body = DESIRED.pod(f"web-{DESIRED.template_hash}-{slot}")
    body["metadata"].update(uid=f"uid-{slot}", creationTimestamp="2026-12-01T11:00:00Z")
    body["spec"]["nodeName"] = "node-1"
    body["status"] = {
        "phase": "Running",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": f"2026-12-01T11:0{slot}:00Z",
            }
        ],
    }
    return body


def slice_listing(*uids: str) -> dict[str, Any]:
    return {
        "metadata": {"uid": "slice-1", "labels": {"kubernetes.io/service-name": "web"}},
        "endpoints": [{"targetRef": {"uid": uid}, "conditions": {"ready": True}} for uid in uids],
        "ports": [{"name": "http", "port": 80}],
    }


class Recording:
    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []
        self.patches: list[Mapping[str, Any]] = []

    def create_revision(self, body: Mapping[str, Any]) -> Answer:
        return Answer(201, "", "", dict(body))

    def list_revisions(self, namespace: str, app: str) -> Answer:

        return Answer(200, "", "", {"items": []})

    def get(self, kind: str, namespace: str, name: str) -> Answer:
        return Answer(404, "NotFound", "", {})

    def patch_pod(self, namespace: str, name: str, patch: Mapping[str, Any]) -> Answer:
        self.writes.append(("drain", name))
        self.patches.append(patch)
        return Answer(200, "", "", {})

    def delete(self, kind: str, namespace: str, name: str, uid: str | None) -> Answer:
        self.writes.append(("delete", name))
        return Answer(200, "", "", {})

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


def drained(body: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The Pod as the watch shows it once the drain patch landed."""
    labels = {k: v for k, v in body["metadata"]["labels"].items() if k != "exposedapp.dev/app-uid"}
    annotations = {**body["metadata"]["annotations"], **patch["metadata"]["annotations"]}
    return {**body, "metadata": {**body["metadata"], "labels": labels, "annotations": annotations}}


def test_a_drain_waits_for_the_slices_then_the_delay_then_deletes() -> None:
    client = Recording()
    now = {"wall": START, "mono": 1000.0}
    keep, leaving = pod(0), pod(1)  # slot 1 became ready last: the one to go
    world: dict[str, Any] = {"pods": [keep, leaving], "slices": [slice_listing("uid-0", "uid-1")]}

    def observe(key: AppKey) -> Observed:
        return Observed(app=app(), pods=tuple(world["pods"]), slices=tuple(world["slices"]))

    def advance(seconds: float) -> None:
        now["wall"] += datetime.timedelta(seconds=seconds)
        now["mono"] += seconds

    async def scenario() -> list[Any]:
        reconciler = Reconciler(
            client,
            observe,
            clock=lambda: now["wall"],
            monotonic=lambda: now["mono"],
            wake=None,
        )
        outcomes = [await reconciler(KEY)]  # 0: drains slot 1
        outcomes.append(await reconciler(KEY))  # 1: the watch has not shown it: deferred
        world["pods"] = [keep, drained(leaving, client.patches[0])]
        advance(1)
        outcomes.append(await reconciler(KEY))  # 2: the slices still list it
        world["slices"] = [slice_listing("uid-0")]
        advance(1)
        outcomes.append(await reconciler(KEY))  # 3: unlisted now: the delay begins
        advance(1.5)
        outcomes.append(await reconciler(KEY))  # 4: 1.5 of 2 s
        advance(0.5)
        outcomes.append(await reconciler(KEY))  # 5: deleted
        await asyncio.gather(*reconciler._event_tasks)
        return outcomes

    outcomes = asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    name = leaving["metadata"]["name"]
    assert client.writes == [("drain", name), ("delete", name)]
    assert [o.requeue_after for o in outcomes[2:5]] == [59.0, 2.0, 0.5]
