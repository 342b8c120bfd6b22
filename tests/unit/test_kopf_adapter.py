"""kopf's toggle sets, as the operator runs them: the same answers, without the herd.

Start-up over many objects holds every object's worker on one toggle set until all are
indexed; kopf woke every waiter on every toggle dropped. With the fix a waiter is woken
when the set's state changes, and only then.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import errors, fetching, watching

from exposedapp.domain.labels import APP_LABEL
from exposedapp.handlers import _trim_pod, apps_index, pods_index, services_index, slices_index
from exposedapp.runtime import kopf_adapter
from exposedapp.runtime.kopf_adapter import apply_kopf_fixes, shed_after_indexing


class CountingSet(aiotoggles.ToggleSet):
    """Counts how often its state is computed: once per waiter woken, at least."""

    checks = 0

    def is_on(self) -> bool:
        CountingSet.checks += 1
        return super().is_on()


def _index_like_kopf(objects: int) -> tuple[int, int]:
    """One toggle per object, one waiter per object, toggles dropped one by one (as kopf's
    workers do once each object is indexed). Returns (waiters released, state checks)."""

    async def scenario() -> tuple[int, int]:
        indexed = CountingSet(all)
        toggles = [await indexed.make_toggle(name=f"object {i}") for i in range(objects)]
        released = 0

        async def worker() -> None:
            nonlocal released
            await indexed.wait_for(True)
            released += 1

        workers = [asyncio.create_task(worker()) for _ in range(objects)]
        await asyncio.sleep(0)  # every worker waiting
        CountingSet.checks = 0
        for toggle in toggles[:-1]:
            await indexed.drop_toggle(toggle)
            await asyncio.sleep(0)
        assert released == 0, "released before every object was indexed"
        await indexed.drop_toggle(toggles[-1])
        await asyncio.wait_for(asyncio.gather(*workers), timeout=10)
        return released, CountingSet.checks

    return asyncio.run(scenario())


def test_the_fix_applies_to_the_pinned_kopf() -> None:
    assert apply_kopf_fixes()


def test_waiters_are_released_once_all_are_indexed_and_woken_once() -> None:
    apply_kopf_fixes()
    released, checks = _index_like_kopf(1000)
    assert released == 1000
    # Two checks per drop (before and after) and one per waiter woken: linear. kopf's own
    # notify-all on every drop re-checked every waiter each time: 1000 x 1000.
    assert checks <= 2 * 1000 + 1000 + 10


def test_any_set_still_follows_turned_toggles() -> None:
    apply_kopf_fixes()

    async def scenario() -> None:
        paused = aiotoggles.ToggleSet(any)
        first = await paused.make_toggle(name="peer a")
        second = await paused.make_toggle(name="peer b")
        waiting = asyncio.create_task(paused.wait_for(True))
        await asyncio.sleep(0)
        assert not waiting.done()
        await second.turn_to(True)
        await asyncio.wait_for(waiting, timeout=5)
        resumed = asyncio.create_task(paused.wait_for(False))
        await paused.drop_toggle(second)  # the set turns off: its waiters are woken
        await asyncio.wait_for(resumed, timeout=5)
        assert paused.is_off()
        assert first.is_off()

    asyncio.run(scenario())


def _pod_identity() -> dict[str, Any]:
    """What of a Pod kopf's bookkeeping and our event handlers read."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-1",
            "namespace": "shop",
            "uid": "p1",
            "resourceVersion": "7",
            "labels": {APP_LABEL: "web"},
            "ownerReferences": [{"uid": "a1", "controller": True}],
        },
    }


def _listed_pod() -> dict[str, Any]:
    pod = _pod_identity()
    pod["metadata"] |= {"annotations": {"note": "x"}, "managedFields": [{"manager": "kwok"}]}
    return pod | {
        "spec": {"nodeName": "n1", "containers": [{"name": "web"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_an_indexed_pod_leaves_kopf_its_identity_and_labels_only() -> None:
    raw = _listed_pod()
    body = kopf.Body(raw)
    indexed = asyncio.run(pods_index(namespace="shop", labels=body.metadata.labels, body=body))
    # The index keeps what the reconciler reads, built before the body was shed...
    assert indexed == {("shop", "web"): _trim_pod(kopf.Body(_listed_pod()))}
    assert indexed[("shop", "web")]["spec"] == {"nodeName": "n1"}
    assert indexed[("shop", "web")]["metadata"]["labels"] == {APP_LABEL: "web"}
    # ...and kopf holds only what its bookkeeping and our event handlers read.
    assert raw == _pod_identity()
    assert body.metadata.name == "web-1"
    assert body.metadata.uid == "p1"


def test_every_index_sheds_its_body_after_taking_its_value() -> None:
    app = {"metadata": {"name": "web", "namespace": "shop", "uid": "a1"}, "spec": {"replicas": 2}}
    service = {
        "metadata": {"name": "web", "namespace": "shop", "labels": {APP_LABEL: "web"}},
        "spec": {"ports": [{"port": 80}]},
    }
    endpoints = [{"addresses": ["10.0.0.5"], "conditions": {"ready": True}}]
    slice_ = {
        "metadata": {"name": "web-x", "namespace": "shop", "labels": {APP_LABEL: "web"}},
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080}],
    }
    labels = {APP_LABEL: "web"}
    values = asyncio.run(_index_all(app, service, slice_, labels))
    assert values[0][("shop", "web")]["spec"] == {"replicas": 2}
    assert values[1][("shop", "web")]["spec"] == {"ports": [{"port": 80}]}
    assert values[2][("shop", "web")]["endpoints"] == endpoints
    assert values[2][("shop", "web")]["ports"] == [{"name": "http", "port": 8080}]
    for raw in (app, service, slice_):
        assert set(raw) == {"metadata"}


async def _index_all(
    app: dict[str, Any], service: dict[str, Any], slice_: dict[str, Any], labels: dict[str, str]
) -> list[dict[Any, Any]]:
    return [
        await apps_index(namespace="shop", name="web", body=kopf.Body(app)),
        await services_index(namespace="shop", labels=labels, body=kopf.Body(service)),
        await slices_index(namespace="shop", labels=labels, body=kopf.Body(slice_)),
    ]


def test_a_view_that_is_not_kopfs_raw_body_is_left_whole() -> None:
    raw = _listed_pod()
    spec = kopf.Spec(kopf.Body(raw))  # a view over a part of the body, not the body
    shed_after_indexing(spec)
    assert raw == _listed_pod()


class PagedListing:
    """kopf's fetch_objs as the apiserver serves it: pages, and a continue token that has
    expired (410 Gone) by the second page; one whole response when not paged."""

    def __init__(self, error_status: int = 410) -> None:
        self.error_status = error_status
        self.calls: list[int | None] = []

    async def __call__(
        self, *, settings: kopf.OperatorSettings, **_: Any
    ) -> AsyncIterator[tuple[list[str], str]]:
        self.calls.append(settings.watching.chunk_size)
        if settings.watching.chunk_size is None:
            yield ["a", "b", "c"], "rv-20"
            return
        yield ["a", "b"], "rv-10"
        raise errors.APIClientError(
            {"code": self.error_status}, status=self.error_status, headers={}
        )


def _list(listing: PagedListing, chunk_size: int | None) -> list[tuple[list[str], str]]:
    settings = kopf.OperatorSettings()
    settings.watching.chunk_size = chunk_size

    async def scenario() -> list[tuple[list[str], str]]:
        return [c async for c in fetching.fetch_objs(settings=settings, resource=None)]

    return asyncio.run(scenario())


def test_an_expired_page_lists_the_resource_again_in_one_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listing = PagedListing()
    monkeypatch.setattr(kopf_adapter, "_paged_fetch_objs", listing)
    monkeypatch.setattr(fetching, "fetch_objs", fetching.fetch_objs)  # restored after
    assert apply_kopf_fixes()
    # The first page as it came, then everything from one newer, unexpiring response: the
    # resourceVersion the watch then starts from is the whole list's.
    assert _list(listing, 100) == [(["a", "b"], "rv-10"), (["a", "b", "c"], "rv-20")]
    assert listing.calls == [100, None]


def test_other_listing_errors_are_kopfs_to_handle(monkeypatch: pytest.MonkeyPatch) -> None:
    listing = PagedListing(error_status=403)
    monkeypatch.setattr(kopf_adapter, "_paged_fetch_objs", listing)
    monkeypatch.setattr(fetching, "fetch_objs", fetching.fetch_objs)
    assert apply_kopf_fixes()
    with pytest.raises(errors.APIClientError):
        _list(listing, 100)
    assert listing.calls == [100]


def test_nothing_but_the_event_handlers_runs_on_a_shed_body() -> None:
    """Shedding is safe while the indexed resources have no other kopf handlers: a
    daemon, a timer or an on.create/update handler added later would see a shed body
    (and the event handlers read only the namespace, the labels and the event's type)."""
    registry = kopf.get_default_registry()
    assert len(list(registry._indexing.get_all_handlers())) == 6
    assert len(list(registry._watching.get_all_handlers())) == 6
    assert list(registry._changing.get_all_handlers()) == []
    assert list(registry._spawning.get_all_handlers()) == []


def test_kopf_lists_in_pages_only_with_the_fallback_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from exposedapp.handlers import KOPF_LIST_PAGE_SIZE, configure

    monkeypatch.delenv("EXPOSEDAPP_PEERING", raising=False)
    monkeypatch.setattr(fetching, "fetch_objs", kopf_adapter._paged_fetch_objs)  # kopf's own
    unfixed = kopf.OperatorSettings()
    configure(unfixed)
    assert unfixed.watching.chunk_size is None
    assert apply_kopf_fixes()
    fixed = kopf.OperatorSettings()
    configure(fixed)
    assert fixed.watching.chunk_size == KOPF_LIST_PAGE_SIZE


def test_kopf_still_marks_its_operator_indexed_set_as_readiness_relies_on() -> None:
    import inspect

    from kopf._cogs.aiokits import aiotoggles
    from kopf._core.reactor import orchestration

    source = inspect.getsource(orchestration)
    assert f'operator_indexed.make_toggle(name="{kopf_adapter._INDEXED_BLOCKER}")' in source
    assert hasattr(aiotoggles.ToggleSet, "wait_for")


def test_kopf_still_marks_its_operator_paused_set_as_peering_pauses_rely_on() -> None:
    import inspect

    from kopf._core.reactor import orchestration

    source = inspect.getsource(orchestration)
    assert f"operator_paused.make_toggle(name='{kopf_adapter._PAUSED_FIRST}')" in source


def test_pauses_and_resumes_follow_kopfs_paused_set(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from kopf._cogs.aiokits import aiotoggles

    apply_kopf_fixes()
    monkeypatch.setattr(kopf_adapter, "_sets", {})
    seen: list[str] = []

    async def scenario() -> None:
        paused = aiotoggles.ToggleSet(any)
        missing = await paused.make_toggle(True, name=kopf_adapter._PAUSED_FIRST)
        follower = asyncio.create_task(
            kopf_adapter.follow_pauses(lambda: seen.append("pause"), lambda: seen.append("resume"))
        )
        for wanted, then in ((["pause"], False), (["pause", "resume"], True)):
            while seen != wanted:
                await asyncio.sleep(0.01)
            await missing.turn_to(then)
        while len(seen) < 3:
            await asyncio.sleep(0.01)
        follower.cancel()

    asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    assert seen == ["pause", "resume", "pause"]


def test_after_the_tests_above_kopf_is_as_shipped() -> None:
    """The tests above apply the fixes; the unit tests' fixture (conftest.py) puts kopf
    back after each, so this one (run after them, in file order) sees kopf's own code."""
    patched = [
        aiotoggles.ToggleSet.make_toggle,
        aiotoggles.ToggleSet.drop_toggle,
        aiotoggles.ToggleSet.drop_toggles,
        fetching.fetch_objs,
        watching.continuous_watch,
        watching.watch_objs,
    ]
    assert all(f.__module__.startswith("kopf.") for f in patched), patched
