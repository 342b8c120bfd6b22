"""The only kopf-decorated module: thin wiring, and nothing kopf writes to our objects.

- Indexes hold the observed apps, Pods, Services and EndpointSlices in memory; kopf lists
  them all before any handler runs, so the first reconciles see the whole picture.
- Event handlers only enqueue the app's key; they persist nothing (no finalizers, no
  last-handled-configuration annotations, no progress records).
- Server-side label selectors keep Pods, Services and EndpointSlices that are not ours
  out of the operator entirely.
- A keyed work queue runs the reconciles, and a resync re-enqueues every app now and then.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import dataclasses
import gc
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from http.server import ThreadingHTTPServer
from typing import Any

import kopf
import pykube

from .domain.desired import ConfigRef, config_references
from .domain.labels import (
    APP_LABEL,
    FIELD_MANAGER,
    GROUP,
    KIND,
    PLURAL,
    SERVICE_NAME_LABEL,
    VERSION,
)
from .domain.podhealth import trim_pod_status
from .reconcile import Reconciler
from .runtime import metrics
from .runtime.cache import LISTS, AppKey, Cache
from .runtime.client import ApiClient, TokenFile, token_file_of
from .runtime.kopf_adapter import (
    follow_pauses,
    paged_listing_is_safe,
    shed_after_indexing,
    wait_until_indexed,
)
from .runtime.workqueue import Outcome, WorkQueue

logger = logging.getLogger(__name__)

RESYNC_SECONDS = float(os.environ.get("EXPOSEDAPP_RESYNC_SECONDS", "300"))
# Reconciles wait on API round trips, not on the CPU: as many workers as API connections
# keeps them all busy.
WORKERS = int(os.environ.get("EXPOSEDAPP_WORKERS", "32"))
API_THREADS = int(os.environ.get("EXPOSEDAPP_API_THREADS", "32"))
SERVICE_CREATE_THREADS = int(os.environ.get("EXPOSEDAPP_SERVICE_CREATE_THREADS", "8"))
PAUSED_CREATE_RETRY = 5.0  # seconds: a create queued before this replica was paused waits
TRIM_AFTER_RECONCILES = 200  # a burst worth giving memory back after
# kopf lists in pages of this many objects instead of one response per resource: each
# response is small, so a restart over many apps settles lower (docs/performance-notes.md).
KOPF_LIST_PAGE_SIZE = 100
INITIAL_STREAMING = os.environ.get("EXPOSEDAPP_INITIAL_STREAMING", "") == "1"
# Secrets are watched (their data hashed, for rolloutOnConfigChange) only when the
# installation grants it: the Helm value configRollout.secrets, the kustomize component.
WATCH_SECRETS = os.environ.get("EXPOSEDAPP_WATCH_SECRETS", "") == "true"
CHILD_SELECTOR = {APP_LABEL: kopf.PRESENT}


class Runtime:
    """The operator's live parts, created at start-up."""

    queue: WorkQueue[AppKey] | None = None
    service_creates: WorkQueue[AppKey] | None = None  # new Services: slow, so on their own
    reconciler: Reconciler | None = None
    resync: asyncio.Task[None] | None = None
    cache: Cache | None = None  # kopf's indexes, and the tombstones of what they keep
    paused = False  # kopf peering: another replica is active
    metrics_server: ThreadingHTTPServer | None = None
    client: ApiClient | None = None
    relisted: asyncio.Event | None = None
    sweeper: asyncio.Task[None] | None = None
    trimmer: asyncio.Task[None] | None = None
    # Ready: every index has listed once, and every app found there has been queued.
    first_resync: asyncio.Task[None] | None = None
    queued_at_start: int | None = None
    pauses: asyncio.Task[None] | None = None  # follows kopf's peering pauses


runtime = Runtime()


# The indexes hold every app and child for the operator's lifetime: they keep what the
# reconciler reads and nothing else.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _trim_app(body: kopf.Body | Mapping[str, Any]) -> dict[str, Any]:
    """The app without managedFields and kubectl's copy of the whole last applied spec."""
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    annotations = metadata.get("annotations") or {}
    if LAST_APPLIED in annotations:
        metadata["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return _with_spec_and_status(metadata, body)


def _with_spec_and_status(
    metadata: dict[str, Any], body: kopf.Body | Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "metadata": metadata,
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


def _trim_service(body: kopf.Body | Mapping[str, Any]) -> dict[str, Any]:
    """The Service with only our own field manager's record of the labels, annotations and
    port entries it applied (owned_keys reads it), not every manager's record of every
    field."""
    metadata = dict(body.get("metadata") or {})
    metadata["managedFields"] = [
        {
            "manager": entry.get("manager"),
            "operation": entry.get("operation"),
            "fieldsV1": {
                "f:metadata": (entry.get("fieldsV1") or {}).get("f:metadata") or {},
                "f:spec": {"f:ports": {key: {} for key in _owned_port_keys(entry)}},
            },
        }
        for entry in metadata.get("managedFields") or []
        if entry.get("manager") == FIELD_MANAGER
    ]
    return _with_spec_and_status(metadata, body)


def _owned_port_keys(entry: Mapping[str, Any]) -> list[str]:
    ports = (((entry.get("fieldsV1") or {}).get("f:spec") or {}).get("f:ports")) or {}
    return [key for key in ports if key.startswith("k:")]


def _trim_pod(body: kopf.Body) -> dict[str, Any]:
    metadata = {
        k: v
        for k, v in dict(body.get("metadata") or {}).items()
        if k
        in (
            "name",
            "namespace",
            "uid",
            "labels",
            "annotations",
            "ownerReferences",
            "creationTimestamp",
            "deletionTimestamp",
        )
    }
    spec = body.get("spec") or {}
    return {
        "metadata": metadata,
        "spec": {"nodeName": spec.get("nodeName")},
        "status": trim_pod_status(body.get("status") or {}),
    }


def _app_of(namespace: str | None, labels: Mapping[str, str], body: kopf.Body) -> AppKey:
    """The app a child belongs to: its controller (an ExposedApp), else its app label.

    The label can be edited by hand (then the Service would be filed under another app
    and its own app would never be woken to repair it); the controller reference cannot
    be, short of adopting the object away. An EndpointSlice belongs to its Service, which
    is named after the app.
    """
    metadata = body.get("metadata") or {}
    for reference in metadata.get("ownerReferences") or []:
        if reference.get("controller") and reference.get("kind") == KIND:
            return (namespace or "", str(reference.get("name")))
    service = labels.get(SERVICE_NAME_LABEL)
    return (namespace or "", service or labels[APP_LABEL])


def _index_entry(key: AppKey, value: dict[str, Any], body: kopf.Body) -> dict[AppKey, Any]:
    """The index's entry; the body kopf holds is shed only now, once the value is built."""
    shed_after_indexing(body)
    return {key: value}


@kopf.index(GROUP, VERSION, PLURAL)
async def apps_index(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[AppKey, Any]:
    return _index_entry((namespace or "", name), _trim_app(body), body)


@kopf.index("pods", labels=CHILD_SELECTOR)
async def pods_index(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[AppKey, Any]:
    return _index_entry(_app_of(namespace, labels, body), _trim_pod(body), body)


@kopf.index("services", labels=CHILD_SELECTOR)
async def services_index(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[AppKey, Any]:
    return _index_entry(_app_of(namespace, labels, body), _trim_service(body), body)


@kopf.index("discovery.k8s.io", "v1", "endpointslices", labels=CHILD_SELECTOR)
async def slices_index(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[AppKey, Any]:
    metadata = body.get("metadata", {})
    service = (metadata.get("labels") or {}).get(SERVICE_NAME_LABEL)
    value = {
        # The Service the slice belongs to: status counts only the app's own Service's.
        "metadata": {"uid": metadata.get("uid"), "labels": {SERVICE_NAME_LABEL: service}},
        "endpoints": list(body.get("endpoints") or []),
        "ports": list(body.get("ports") or []),
    }
    return _index_entry(_app_of(namespace, labels, body), value, body)


@kopf.index("policy", "v1", "poddisruptionbudgets", labels=CHILD_SELECTOR)
async def budgets_index(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[AppKey, Any]:
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    value = {"metadata": metadata, "spec": dict(body.get("spec") or {})}  # no status
    return _index_entry(_app_of(namespace, labels, body), value, body)


def _data_hash(body: kopf.Body) -> str:
    """A digest of an object's data (data and binaryData); the data itself is not kept."""
    data = {"data": body.get("data") or {}, "binaryData": body.get("binaryData") or {}}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@kopf.index("configmaps")
async def configmaps_index(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], str]:
    value = _data_hash(body)
    shed_after_indexing(body)
    return {(namespace or "", name): value}


@kopf.on.event("configmaps")
async def configmap_changed(namespace: str | None, name: str, **_: Any) -> None:
    _enqueue_referencing(namespace or "", ("ConfigMap", name))


if WATCH_SECRETS:

    @kopf.index("secrets")
    async def secrets_index(
        namespace: str | None, name: str, body: kopf.Body, **_: Any
    ) -> dict[tuple[str, str], str]:
        value = _data_hash(body)
        shed_after_indexing(body)
        return {(namespace or "", name): value}

    @kopf.on.event("secrets")
    async def secret_changed(namespace: str | None, name: str, **_: Any) -> None:
        _enqueue_referencing(namespace or "", ("Secret", name))


def _enqueue_referencing(namespace: str, ref: ConfigRef) -> None:
    """Queue the apps of the namespace that roll on config changes and reference ``ref``."""
    if runtime.cache is None or runtime.queue is None:
        return
    for key in runtime.cache.app_keys():
        if key[0] != namespace:
            continue
        spec = (runtime.cache.observe(key).app or {}).get("spec") or {}
        if spec.get("rolloutOnConfigChange") and ref in config_references(spec):
            runtime.queue.enqueue(key)


def _paused() -> None:
    # kopf pauses its watches when a peer of higher priority is alive, but not our queue
    # and resync: no reconcile runs while paused.
    runtime.paused = True
    logger.info("Paused: another operator of higher priority is active")


def _resumed() -> None:
    # Events missed while paused are not replayed: every app is looked at again.
    runtime.paused = False
    if runtime.queue is not None and runtime.cache is not None:
        for key in runtime.cache.app_keys():
            runtime.queue.enqueue(key)
    logger.info("Resumed: every app queued again")


async def _create_service_unless_paused(key: AppKey) -> Outcome:
    if runtime.reconciler is None:
        return Outcome()
    if runtime.paused:
        return Outcome(requeue_after=PAUSED_CREATE_RETRY)  # queued by the active replica
    return await runtime.reconciler.create_service(key)


async def _reconcile_unless_paused(key: AppKey) -> Outcome:
    if runtime.paused or runtime.reconciler is None:
        return Outcome()  # another replica is active; resuming re-enqueues everything
    return await runtime.reconciler(key)


def _enqueue(key: AppKey, event_type: str | None = "") -> None:
    if event_type is None and runtime.relisted is not None:
        runtime.relisted.set()  # a (re-)listing: what was deleted meanwhile may linger
    if runtime.queue is not None:
        runtime.queue.enqueue(key)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def app_changed(namespace: str | None, name: str, type: str | None, **_: Any) -> None:
    _enqueue((namespace or "", name), type)


@kopf.on.event("pods", labels=CHILD_SELECTOR)
async def pod_changed(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, type: str | None, **_: Any
) -> None:
    _enqueue(_app_of(namespace, labels, body), type)


@kopf.on.event("services", labels=CHILD_SELECTOR)
async def service_changed(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, type: str | None, **_: Any
) -> None:
    _enqueue(_app_of(namespace, labels, body), type)


@kopf.on.event("discovery.k8s.io", "v1", "endpointslices", labels=CHILD_SELECTOR)
async def slice_changed(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, type: str | None, **_: Any
) -> None:
    _enqueue(_app_of(namespace, labels, body), type)


@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=CHILD_SELECTOR)
async def budget_changed(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, type: str | None, **_: Any
) -> None:
    _enqueue(_app_of(namespace, labels, body), type)


async def _sweep_after_relists(client: ApiClient, queue: WorkQueue[AppKey]) -> None:
    assert runtime.relisted is not None
    while True:
        await runtime.relisted.wait()
        while True:  # a re-listing delivers every object of a resource: wait for its end
            runtime.relisted.clear()
            await asyncio.sleep(2.0)
            if not runtime.relisted.is_set():
                break
        await _sweep_logged(client, queue)


async def _sweep_logged(client: ApiClient, queue: WorkQueue[AppKey]) -> None:
    try:
        assert runtime.cache is not None
        await runtime.cache.sweep(client, queue.enqueue)
    except Exception:  # the next re-list or resync looks again
        logger.exception("Could not look for objects deleted while a watch was down")


def _return_freed_memory() -> None:
    """Give the heap that a burst freed back to the OS.

    A burst (a restart listing every object, hundreds of apps at once) peaks well above
    what the operator then holds, and glibc keeps the freed pages: the process would stay
    at its peak for good. malloc_trim releases them.
    """
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).malloc_trim(0)


async def _trim_after_bursts(queue: WorkQueue[AppKey], every: float = 10.0) -> None:
    trimmed_at = 0
    while True:
        await asyncio.sleep(every)
        if queue.runs - trimmed_at >= TRIM_AFTER_RECONCILES and queue.idle:
            trimmed_at = queue.runs
            await asyncio.to_thread(_return_freed_memory)


async def _resync_forever(queue: WorkQueue[AppKey]) -> None:
    # The safety net of a level-triggered controller: a missed event is healed here.
    while True:
        await asyncio.sleep(RESYNC_SECONDS)
        if runtime.paused:
            continue
        assert runtime.cache is not None
        assert runtime.client is not None
        await _sweep_logged(runtime.client, queue)
        for key in runtime.cache.app_keys():
            queue.enqueue(key)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's credentials: pykube-ng's, with the token read again from its file.

    kopf calls this again when the API answers 401, so a rotated token file (a Pod's
    projected ServiceAccount token, a kubeconfig's ``tokenFile``) is picked up there as
    it is by the operator's own client (runtime.client.TokenFile).
    """
    info = kopf.login_via_pykube(**kwargs)
    token_file = token_file_of(pykube.KubeConfig.from_env())
    if info is None or token_file is None:
        return info
    return dataclasses.replace(info, token=TokenFile(token_file).token())


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
    configure(settings)
    configs = {"ConfigMap": kwargs["configmaps_index"]}
    if WATCH_SECRETS:
        configs["Secret"] = kwargs["secrets_index"]
    runtime.cache = Cache({name: kwargs[name] for name in LISTS}, configs)
    # The API calls run in threads (pykube-ng is synchronous): enough of them that the
    # workers' creates and deletes go out in parallel, as many as there are connections.
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="api")
    )
    runtime.client = ApiClient.from_env(connections=API_THREADS + SERVICE_CREATE_THREADS)
    runtime.queue = WorkQueue(_reconcile_unless_paused, workers=WORKERS)
    # New Services: their own workers and threads, so that they neither hold the
    # reconciles' workers nor wait behind every app's Pod creates.
    runtime.service_creates = WorkQueue(
        _create_service_unless_paused, workers=SERVICE_CREATE_THREADS
    )
    runtime.reconciler = Reconciler(
        runtime.client,
        runtime.cache.observe,
        wake=runtime.queue.enqueue,
        queue_service_create=runtime.service_creates.enqueue,
        service_create_threads=concurrent.futures.ThreadPoolExecutor(
            max_workers=SERVICE_CREATE_THREADS, thread_name_prefix="service-create"
        ),
        config_hash=runtime.cache.config_hash,
    )
    runtime.queue.start()
    runtime.service_creates.start()
    runtime.resync = asyncio.create_task(_resync_forever(runtime.queue), name="resync")
    runtime.relisted = asyncio.Event()
    runtime.sweeper = asyncio.create_task(
        _sweep_after_relists(runtime.client, runtime.queue), name="ghost-sweeper"
    )
    runtime.trimmer = asyncio.create_task(_trim_after_bursts(runtime.queue), name="trimmer")
    reconciler = runtime.reconciler
    metrics.set_condition_source(reconciler.status.condition_counts)
    runtime.first_resync = asyncio.create_task(_first_resync(runtime.queue), name="first-resync")
    if not settings.peering.standalone:
        runtime.pauses = asyncio.create_task(follow_pauses(_paused, _resumed), name="pauses")
    port = int(os.environ.get("EXPOSEDAPP_METRICS_PORT", "0"))
    if port:
        runtime.metrics_server = metrics.serve(port, ready=_readiness)


async def _first_resync(queue: WorkQueue[AppKey]) -> None:
    """Once kopf has indexed everything, queue every app it found: then we are ready."""
    try:
        await wait_until_indexed()
    except Exception:
        logger.exception("Could not learn when kopf had indexed everything; never ready")
        raise
    assert runtime.cache is not None
    apps = runtime.cache.app_keys()
    for key in apps:
        queue.enqueue(key)
    runtime.queued_at_start = len(apps)
    logger.info("Indexed every watched resource; queued %d apps", len(apps))


def _readiness() -> tuple[bool, str]:
    if runtime.queued_at_start is None:
        return False, "starting: listing and indexing"
    return True, f"ok: indexed, {runtime.queued_at_start} apps queued at start"


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    for task in (
        runtime.resync,
        runtime.sweeper,
        runtime.trimmer,
        runtime.first_resync,
        runtime.pauses,
    ):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    for queue in (runtime.queue, runtime.service_creates):
        if queue is not None:
            await queue.stop()
    if runtime.metrics_server is not None:
        runtime.metrics_server.shutdown()


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf settings that keep the operator write-free and its watches narrow."""
    for resource in ("pods", "services", "endpointslices.discovery.k8s.io"):
        settings.watching.label_selectors[resource] = APP_LABEL
    settings.posting.enabled = False  # our own events carry reasons; kopf's would duplicate
    settings.peering.standalone = os.environ.get("EXPOSEDAPP_PEERING", "") == ""
    if not settings.peering.standalone:
        settings.peering.name = os.environ["EXPOSEDAPP_PEERING"]
        settings.peering.priority = int(os.environ.get("EXPOSEDAPP_PEERING_PRIORITY", "0"))
        # Paused until the peers are known: otherwise a standby reconciles what it lists at
        # start-up, and after a takeover acts before its Pod index is listed again.
        settings.peering.mandatory = True
        settings.peering.lifetime = int(os.environ.get("EXPOSEDAPP_PEERING_LIFETIME", "60"))
        runtime.paused = True  # until kopf says this replica is the active one
    # Namespaced (-n): no cluster-scoped permission. Without this kopf retries listing
    # namespaces and CRDs for about a minute (its error backoffs) before it starts watching.
    if not settings.peering.clusterwide:
        settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    if INITIAL_STREAMING:
        # The API's watch-list: the initial state arrives as watch events, no LIST at all.
        settings.watching.initial_streaming = True
    elif paged_listing_is_safe():  # kopf would stop a watcher on an expired page otherwise
        settings.watching.chunk_size = KOPF_LIST_PAGE_SIZE
    settings.networking.request_timeout = 60
