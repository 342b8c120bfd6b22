"""The status can never freeze: big apps and many refusals still get a status that fits.

Issue 13's inputs 5, 6 and 7, each with the value it must have, each ending with a
reconcile that writes nothing.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from conftest import OperatorProcess
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps, app_manifest
from kubetest.audit import AuditLog
from test_reconciler import assert_second_reconcile_writes_nothing


def _rtp_sip_app() -> dict[str, Any]:
    """66 exposed ports: 64 UDP RTP ports on two containers, SIP on 5060 TCP and UDP."""

    def rtp(first: int, prefix: str) -> list[dict[str, Any]]:
        return [
            {"name": f"{prefix}{i}", "containerPort": first + i, "protocol": "UDP"}
            for i in range(32)
        ]

    body = app_manifest("pbx", replicas=2)
    body["spec"]["containers"] = [
        {"name": "media-a", "image": "rtp:1", "ports": rtp(10000, "rtp-a")},
        {"name": "media-b", "image": "rtp:1", "ports": rtp(10100, "rtp-b")},
        {
            "name": "sip",
            "image": "sip:1",
            "ports": [
                {"name": "sip-tcp", "containerPort": 5060, "protocol": "TCP"},
                {"name": "sip-udp", "containerPort": 5060, "protocol": "UDP"},
            ],
        },
    ]
    body["spec"]["service"] = {"type": "NodePort"}
    return body


def test_66_exposed_ports_are_ready_with_a_shortened_ports_column(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    apps.create(_rtp_sip_app())
    status = apps.wait_ready("pbx", timeout=90)["status"]
    assert len(status["service"]["ports"]) == 66
    assert len(status["portsText"]) <= 1024
    assert status["portsText"].endswith(" more)")
    shown = cluster.kubectl("get", "xapp", "pbx", "-n", apps.namespace, "--no-headers").stdout
    assert shown.split()[1] == "2/2"  # the READY column
    assert_second_reconcile_writes_nothing(apps, "pbx", operator, audit, cluster)


def test_a_quota_refusing_a_scale_up_is_summarised_at_the_current_generation(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    quota = client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name="team-compute"),
        spec=client.V1ResourceQuotaSpec(
            hard={
                "pods": "60",
                "requests.cpu": "200m",
                "requests.memory": "128Mi",
                "limits.cpu": "400m",
                "limits.memory": "256Mi",
            }
        ),
    )
    apps.core.create_namespaced_resource_quota(apps.namespace, quota)
    wait_for(
        lambda: (
            apps.core.read_namespaced_resource_quota("team-compute", apps.namespace).status.hard
        ),
        what="the quota to be counted",
    )
    body = app_manifest("heavy", replicas=2)
    body["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "100m", "memory": "64Mi"},
        "limits": {"cpu": "200m", "memory": "128Mi"},
    }
    apps.create(body)
    apps.wait_ready("heavy", timeout=60)
    generation = apps.patch("heavy", {"spec": {"replicas": 100}})["metadata"]["generation"]

    def degraded() -> dict[str, Any]:
        app = apps.get("heavy")
        condition = next(
            (c for c in app.get("status", {}).get("conditions") or [] if c["type"] == "Degraded"),
            {},
        )
        return {**condition, "at": app.get("status", {}).get("observedGeneration")}

    seen = wait_for(
        degraded,
        lambda c: c.get("reason") == "QuotaExceeded" and c["at"] == generation,
        timeout=90,
        what="Degraded QuotaExceeded at the scaled generation",
    )
    assert seen["status"] == "True"
    assert seen["message"].startswith("98 problems QuotaExceeded, the first: creating Pod heavy-")
    assert "exceeded quota: team-compute" in seen["message"]
    assert len(seen["message"]) <= 4096
    assert apps.condition("heavy", "Ready")["status"] == "False"

    def quota_events() -> list[Any]:
        return [
            e
            for e in apps.core.list_namespaced_event(
                apps.namespace, field_selector="involvedObject.name=heavy,type=Warning"
            ).items
            if e.reason == "QuotaExceeded"
        ]

    # Events are posted in the background: wait for it, then count.
    wait_for(quota_events, what="the QuotaExceeded event")
    events = quota_events()
    assert len(events) == 1  # one event for the kind of problem, not one per Pod
    # Lifted: the app converges, and then a reconcile writes nothing.
    apps.core.delete_namespaced_resource_quota("team-compute", apps.namespace)
    apps.patch("heavy", {"spec": {"replicas": 3}})
    apps.wait_ready("heavy", timeout=90)
    assert_second_reconcile_writes_nothing(apps, "heavy", operator, audit, cluster)


def test_a_pod_refused_for_good_is_told_by_one_event(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    body = app_manifest("overcommitted", replicas=2)
    body["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "2"},
        "limits": {"cpu": "1"},
    }
    apps.create(body)
    wait_for(
        lambda: apps.condition("overcommitted", "Degraded"),
        lambda c: c.get("reason") == "Invalid",
        timeout=60,
        what="Degraded Invalid",
    )
    # A few retries (with backoff) of the refused creates, each refused again.
    wait_for(
        lambda: operator.log().count(f"Reconciled {apps.namespace}/overcommitted"),
        lambda count: count >= 4,
        timeout=90,
        what="a few retries while refused",
    )

    def warnings() -> list[Any]:
        return list(
            apps.core.list_namespaced_event(
                apps.namespace, field_selector="involvedObject.name=overcommitted,type=Warning"
            ).items
        )

    wait_for(warnings, what="the Invalid event (posted in the background)")
    events = warnings()
    assert [e.reason for e in events] == ["Invalid"]
    # Fixed: the app converges, and then a reconcile writes nothing.
    fixed = {**body["spec"]["containers"][0], "resources": {"requests": {"cpu": "1"}}}
    apps.patch("overcommitted", {"spec": {"containers": [fixed]}})
    apps.wait_ready("overcommitted", timeout=90)
    assert apps.condition("overcommitted", "Degraded")["status"] == "False"
    assert_second_reconcile_writes_nothing(apps, "overcommitted", operator, audit, cluster)
