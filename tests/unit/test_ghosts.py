"""Objects deleted while a watch was down: kopf's indexes keep them after a re-list, so
the sweep compares the indexes with an authoritative LIST and hides what is gone.

The indexes and the LIST answers are scripted here; the e2e fault suite proves the same
against a real apiserver whose watches expire (tests/e2e/test_faults.py, scenario 3a).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exposedapp.runtime.cache import AppKey, Cache


def obj(uid: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid}}


class Listing:
    """list_uids answers per (plural, namespace); None means the LIST failed."""

    def __init__(self, answers: dict[tuple[str, str], set[str] | None]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str, str | None]] = []

    def list_uids(
        self, version: str, plural: str, namespace: str, label_selector: str | None
    ) -> set[str] | None:
        self.asked.append((plural, namespace, label_selector))
        return self.answers[(plural, namespace)]


class Recorder:
    def __init__(self) -> None:
        self.keys: list[AppKey] = []

    def enqueue(self, key: AppKey) -> None:
        self.keys.append(key)


@pytest.fixture
def indexes() -> dict[str, dict[AppKey, list[Any]]]:
    held: dict[str, dict[AppKey, list[Any]]] = {
        "apps_index": {("shop", "web"): [obj("app-web")], ("shop", "gone"): [obj("app-gone")]},
        "pods_index": {("shop", "web"): [obj("pod-1"), obj("pod-2")]},
        "services_index": {("shop", "web"): [obj("svc-web")]},
        "slices_index": {("shop", "web"): [obj("slice-web")]},
        "budgets_index": {("shop", "web"): [obj("pdb-web")]},
    }
    return held


@pytest.fixture
def cache(indexes: dict[str, dict[AppKey, list[Any]]]) -> Cache:
    return Cache(indexes)


def sweep(cache: Cache, listing: Listing, queue: Recorder) -> int:
    return asyncio.run(cache.sweep(listing, queue.enqueue))


EVERYTHING_LISTED: dict[tuple[str, str], set[str] | None] = {
    ("exposedapps", "shop"): {"app-web", "app-gone"},
    ("pods", "shop"): {"pod-1", "pod-2"},
    ("services", "shop"): {"svc-web"},
    ("endpointslices", "shop"): {"slice-web"},
    ("poddisruptionbudgets", "shop"): {"pdb-web"},
}


def test_nothing_is_hidden_when_the_list_agrees_with_the_indexes(cache: Cache) -> None:
    queue = Recorder()
    assert sweep(cache, Listing(EVERYTHING_LISTED), queue) == 0
    assert queue.keys == []
    assert cache.observe(("shop", "web")).pods == (obj("pod-1"), obj("pod-2"))


def test_what_the_list_lacks_is_hidden_from_the_reconciler_and_its_app_requeued(
    cache: Cache,
) -> None:
    listing = Listing(
        EVERYTHING_LISTED | {("exposedapps", "shop"): {"app-web"}, ("pods", "shop"): {"pod-2"}}
    )
    queue = Recorder()
    assert sweep(cache, listing, queue) == 2
    assert sorted(queue.keys) == [("shop", "gone"), ("shop", "web")]
    assert cache.observe(("shop", "web")).pods == (obj("pod-2"),)
    assert cache.observe(("shop", "gone")).app is None
    # Children are listed with our label selector, apps without one.
    assert ("pods", "shop", "exposedapp.dev/app") in listing.asked
    assert ("exposedapps", "shop", None) in listing.asked


def test_a_failed_list_hides_nothing(cache: Cache) -> None:
    queue = Recorder()
    assert sweep(cache, Listing(EVERYTHING_LISTED | {("pods", "shop"): None}), queue) == 0
    assert len(cache.observe(("shop", "web")).pods) == 2


def test_a_ghost_is_forgotten_once_kopf_drops_it_too(
    cache: Cache, indexes: dict[str, dict[AppKey, list[Any]]]
) -> None:
    listing = Listing(EVERYTHING_LISTED | {("pods", "shop"): {"pod-2"}})
    sweep(cache, listing, Recorder())
    assert cache.tombstones == {"pod-1"}
    indexes["pods_index"][("shop", "web")] = [obj("pod-2")]  # the DELETED event arrived
    sweep(cache, listing, Recorder())
    assert cache.tombstones == set()
