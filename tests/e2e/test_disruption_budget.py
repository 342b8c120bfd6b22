"""spec.disruptionBudget against the real control plane: the operator keeps an owned
PodDisruptionBudget, the disruption controller counts the app's Pods with it, and the
Eviction API (what `kubectl drain` calls) respects it."""

from __future__ import annotations

import secrets
from typing import Any

from kubernetes import client

from conftest import OperatorProcess
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps, app_manifest
from kubetest.audit import AuditLog
from test_reconciler import assert_second_reconcile_writes_nothing


def _evict(core: client.CoreV1Api, namespace: str, pod: str) -> int:
    """The Eviction API's answer: 201 evicted, 429 refused by a disruption budget."""
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=namespace))
    try:
        core.create_namespaced_pod_eviction(pod, namespace, body)
    except client.ApiException as error:
        return int(error.status)
    return 201


def _synced(budget: Any) -> bool:
    conditions = (budget.status.conditions if budget.status else None) or []
    return any(c.type == "DisruptionAllowed" and c.reason != "SyncFailed" for c in conditions)


def _poked(api: client.ApiClient, namespace: str, name: str) -> Any:
    """The budget, after touching an annotation of the test's own: the disruption
    controller syncs a budget only on events, and a sync that failed because it did not
    know the kind yet (see below) is not retried by itself."""
    poke = {"metadata": {"annotations": {"test.example/poke": secrets.token_hex(4)}}}
    client.PolicyV1Api(api).patch_namespaced_pod_disruption_budget(name, namespace, poke)
    return _budget(api, namespace, name)


def _budget(api: client.ApiClient, namespace: str, name: str) -> Any:
    return client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(name, namespace)


def test_the_budget_is_kept_and_evictions_respect_it(
    apps: Apps,
    operator: OperatorProcess,
    api: client.ApiClient,
    core: client.CoreV1Api,
    audit: AuditLog,
    cluster: ClusterHandle,
) -> None:
    apps.create(app_manifest("guarded", replicas=2, disruptionBudget={"minAvailable": 2}))
    apps.wait_ready("guarded")
    # The disruption controller finds the Pods' controller through its scale subresource;
    # it learns a kind installed after it started at its next discovery refresh (30 s),
    # then retries with backoff: "no matches for kind ExposedApp" (SyncFailed) until then.
    budget = wait_for(
        lambda: _poked(api, apps.namespace, "guarded"),
        lambda b: _synced(b) and b.status.current_healthy == 2,
        timeout=240,
        interval=2,
        what="the disruption controller counting 2 healthy Pods",
    )
    uid = apps.get("guarded")["metadata"]["uid"]
    assert budget.spec.selector.match_labels == {
        "exposedapp.dev/app": "guarded",
        "exposedapp.dev/app-uid": uid,
    }
    owner = budget.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("ExposedApp", "guarded", True)
    assert budget.status.disruptions_allowed == 0
    victim = apps.live_pods("guarded")[0].metadata.name
    assert _evict(core, apps.namespace, victim) == 429  # would leave fewer than 2

    # Loosened in the spec: the operator updates the budget, and one eviction goes through.
    apps.patch(
        "guarded", {"spec": {"disruptionBudget": {"minAvailable": None, "maxUnavailable": 1}}}
    )
    wait_for(
        lambda: _poked(api, apps.namespace, "guarded"),
        lambda b: (
            b.spec.max_unavailable == 1
            and b.spec.min_available is None
            and b.status.disruptions_allowed == 1
        ),
        timeout=120,
        interval=2,
        what="the budget updated to maxUnavailable 1",
    )
    assert _evict(core, apps.namespace, victim) == 201
    # The operator replaces the evicted Pod; the budget counts the replacement once ready.
    apps.wait_ready("guarded")
    wait_for(
        lambda: _budget(api, apps.namespace, "guarded").status.current_healthy,
        lambda healthy: healthy == 2,
        what="2 healthy Pods again",
    )

    assert_second_reconcile_writes_nothing(apps, "guarded", operator, audit, cluster)

    # Dropped from the spec: the operator deletes its budget.
    apps.patch("guarded", {"spec": {"disruptionBudget": None}})
    policy = client.PolicyV1Api(api)
    wait_for(
        lambda: policy.list_namespaced_pod_disruption_budget(apps.namespace).items,
        lambda budgets: budgets == [],
        what="the budget deleted",
    )
