"""What the operator knows of the cluster: kopf's in-memory indexes, minus tombstones.

kopf fills one index per kind (apps, Pods, Services, EndpointSlices,
PodDisruptionBudgets), each a mapping from an app's key to the trimmed copies of its
objects; the wiring (handlers.py) hands them over at start-up. kopf re-lists after a watch
expires (410 Gone) but never drops what was deleted while the watch was down: its indexes
keep those objects for ever. A sweep compares the indexes with an authoritative
metadata-only LIST and records what the LIST lacks as a tombstone (by UID), hidden from
every snapshot until kopf lets go of it too.

The cache owns the tombstones; kopf owns the indexes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..domain.labels import APP_LABEL, GROUP, PLURAL, VERSION

__all__ = ["AppKey", "Cache", "Observed"]

logger = logging.getLogger(__name__)
AppKey = tuple[str, str]  # (namespace, name)
Index = Mapping[AppKey, Iterable[Mapping[str, Any]]]

# index -> (API version, plural, label selector) of the authoritative LISTs.
LISTS = {
    "apps_index": (f"{GROUP}/{VERSION}", PLURAL, None),
    "pods_index": ("v1", "pods", APP_LABEL),
    "services_index": ("v1", "services", APP_LABEL),
    "slices_index": ("discovery.k8s.io/v1", "endpointslices", APP_LABEL),
    "budgets_index": ("policy/v1", "poddisruptionbudgets", APP_LABEL),
}


class Lister(Protocol):
    def list_uids(
        self, version: str, plural: str, namespace: str, label_selector: str | None
    ) -> set[str] | None: ...


@dataclass(frozen=True)
class Observed:
    """What the cache holds for one app at one moment: its object (None if gone) and its
    children, each a trimmed copy as the index handlers keep it."""

    app: Mapping[str, Any] | None
    pods: tuple[Mapping[str, Any], ...] = ()
    services: tuple[Mapping[str, Any], ...] = ()
    slices: tuple[Mapping[str, Any], ...] = ()
    budgets: tuple[Mapping[str, Any], ...] = ()


def _uid(value: Mapping[str, Any]) -> str | None:
    uid = (value.get("metadata") or {}).get("uid")
    return str(uid) if uid else None


# (namespace, name) -> the hashes of one object's data (one entry: names are unique).
ConfigIndex = Mapping[tuple[str, str], Iterable[str]]


class Cache:
    def __init__(
        self, indexes: Mapping[str, Index], configs: Mapping[str, ConfigIndex] | None = None
    ) -> None:
        """``indexes``: kopf's indexes by name (the keys of LISTS). ``configs``: by kind
        ("ConfigMap", "Secret"), the hashes of the data of every object of that kind the
        operator watches (a kind not watched is absent)."""
        self.indexes = indexes
        self.configs = configs or {}
        self.tombstones: set[str] = set()  # UIDs a LIST showed deleted

    def config_hash(self, namespace: str, kind: str, name: str) -> str | None:
        """The hash of a ConfigMap's or Secret's data; None if absent or not watched."""
        found = self.configs.get(kind, {}).get((namespace, name))
        return next(iter(found), None) if found is not None else None

    def app_keys(self) -> list[AppKey]:
        return list(self.indexes["apps_index"])

    def observe(self, key: AppKey) -> Observed:
        """A snapshot of one app and its children, tombstones left out."""

        def values(index_name: str) -> tuple[Mapping[str, Any], ...]:
            index = self.indexes[index_name]
            found = tuple(index[key]) if key in index else ()
            return tuple(v for v in found if _uid(v) not in self.tombstones)

        apps = values("apps_index")
        return Observed(
            app=apps[0] if apps else None,
            pods=values("pods_index"),
            services=values("services_index"),
            slices=values("slices_index"),
            budgets=values("budgets_index"),
        )

    async def sweep(self, client: Lister, enqueue: Callable[[AppKey], None]) -> int:
        """Find what the indexes hold but the API no longer has; tombstone it; enqueue its
        app. Returns how many were found.

        Right at any moment: whatever the indexes held before the LIST existed before it,
        so if the LIST (a consistent read) lacks it, it has been deleted since.
        """
        found = 0
        held_anywhere: set[str] = set()
        for index_name, (version, plural, selector) in LISTS.items():
            held = self._held(index_name)
            held_anywhere |= set(held)
            for namespace in sorted({key[0] for key in held.values()}):
                listed = await asyncio.to_thread(
                    client.list_uids, version, plural, namespace, selector
                )
                if listed is None:
                    continue  # unknown this time; the next sweep looks again
                for uid, key in held.items():
                    if key[0] == namespace and uid not in listed and uid not in self.tombstones:
                        self.tombstones.add(uid)
                        found += 1
                        logger.warning(
                            "Dropped %s %s of %s/%s from the cache: deleted, and not (yet) "
                            "through the watch (it was down, or lags)",
                            plural,
                            uid,
                            *key,
                        )
                        enqueue(key)
        self.tombstones &= held_anywhere  # kopf let go of them too
        return found

    def _held(self, index_name: str) -> dict[str, AppKey]:
        index = self.indexes[index_name]
        held: dict[str, AppKey] = {}
        for key in list(index):
            for value in list(index[key]) if key in index else ():
                if uid := _uid(value):
                    held[uid] = key
        return held
