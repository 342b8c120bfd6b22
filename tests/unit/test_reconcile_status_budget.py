"""Progress-only status writes share one budget across apps: with many apps rolling at
once, each app's progress is written less often; alone, an app's is written each second.

The client is the scripted stand-in of test_reconcile_service_create (no apiserver).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from test_reconcile_service_create import APP, ScriptedClient

from exposedapp import reconcile
from exposedapp.domain.labels import SERVICE_NAME_LABEL
from exposedapp.reconcile import AppKey, Observed, Reconciler


def _app(name: str) -> dict[str, Any]:
    app = copy.deepcopy(APP)
    app["metadata"].update(name=name, uid=f"uid-{name}")
    return app


def _progress_written(apps: int, with_slices: bool = True) -> tuple[bool, float | None]:
    """Create `apps` apps, then look at the first one again 1.5 s after it was first seen."""
    client = ScriptedClient()
    creates: list[AppKey] = []
    names = [f"app{i}" for i in range(apps)]
    now = [1000.0]  # the reconciler's monotonic clock, seconds

    def observe(key: AppKey) -> Observed:
        pods = tuple(p for p in client.pods if p["metadata"]["name"].startswith(f"{key[1]}-"))
        # The Service's EndpointSlice is there (no endpoint ready yet): progress is news.
        slice_ = {
            "metadata": {"uid": f"slice-{key[1]}", "labels": {SERVICE_NAME_LABEL: key[1]}},
            "endpoints": [],
            "ports": [],
        }
        return Observed(app=_app(key[1]), pods=pods, slices=(slice_,) if with_slices else ())

    async def scenario() -> tuple[bool, float | None]:
        reconciler = Reconciler(
            client,
            observe,
            monotonic=lambda: now[0],
            wake=lambda key: None,
            queue_service_create=creates.append,
        )
        for name in names:
            await reconciler(("shop", name))  # creates its Pods: not Ready, so Progressing
        assert len(reconciler.status.progressing) == apps
        await reconciler.create_service(("shop", names[0]))
        await reconciler(("shop", names[0]))  # collects the Service: acted, so no status yet
        now[0] += 1.5  # past the 1 s per-app minimum
        writes_before = client.writes.count("patch status")
        outcome = await reconciler._reconcile(("shop", names[0]))
        await asyncio.gather(*reconciler._event_tasks)
        return client.writes.count("patch status") > writes_before, outcome[0].requeue_after

    return asyncio.run(asyncio.wait_for(scenario(), timeout=20))


def test_one_app_writes_its_progress_after_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile, "PROGRESS_WRITES_PER_SECOND", 20.0)
    monkeypatch.setattr(reconcile, "STATUS_DEBOUNCE", 1.0)
    written, _ = _progress_written(apps=1)
    assert written


def test_many_apps_progressing_share_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile, "PROGRESS_WRITES_PER_SECOND", 20.0)
    monkeypatch.setattr(reconcile, "STATUS_DEBOUNCE", 1.0)
    written, requeue_after = _progress_written(apps=40)  # 40 apps / 20 a second: every 2 s
    assert not written
    assert requeue_after is not None
    assert requeue_after == pytest.approx(0.5)  # looked at again when its 2 s are up


def test_progress_waits_for_a_new_services_endpoint_slices_within_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reconcile, "PROGRESS_WRITES_PER_SECOND", 20.0)
    monkeypatch.setattr(reconcile, "STATUS_DEBOUNCE", 1.0)
    written, requeue_after = _progress_written(apps=1, with_slices=False)
    assert not written  # the EndpointSlice controller has not made them yet: stale soon
    assert requeue_after == pytest.approx(reconcile.SLICES_GRACE - 1.5)  # then it is written
