"""Random sequences of hand edits to an app's Service, by every edit method: each time the
Service is as declared again within a bound, what is not ours survives, and the next
reconcile writes nothing.

Bounded for CI by SERVICE_EDIT_EXAMPLES (default 6 sequences of up to 4 edits);
`make faults` runs more. Derandomized, so every run tries the same sequences.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import OperatorProcess
from exposedapp.domain.desired import AppRef, build_desired
from exposedapp.domain.model import parse_spec
from exposedapp.domain.objects import owned_keys
from exposedapp.domain.plan import foreign_ports, service_differences
from kubetest import ClusterHandle, wait_for
from kubetest.apps import Apps, app_manifest
from kubetest.audit import AuditLog
from test_reconciler import assert_second_reconcile_writes_nothing

EXAMPLES = int(os.environ.get("SERVICE_EDIT_EXAMPLES", "6"))
REPAIR_SECONDS = 10
THEIRS = "edits.example/kept"

Edit = Callable[[ClusterHandle, str, str], None]


def _kubectl_patch(kind: str, patch: Any) -> Edit:
    def run(cluster: ClusterHandle, namespace: str, name: str) -> None:
        cluster.kubectl(
            "patch", "svc", name, "-n", namespace, f"--type={kind}", "-p", json.dumps(patch)
        )

    return run


def _apply_as_another_manager(spec: dict[str, Any]) -> Edit:
    def run(cluster: ClusterHandle, namespace: str, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}
        cluster.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=someone-else",
            "-n",
            namespace,
            "-f",
            "-",
            input=yaml.safe_dump(body),
        )

    return run


def _replace_whole(change: Callable[[dict[str, Any]], None]) -> Edit:
    """What `kubectl edit` does: read, change, write the whole object back (a PUT)."""

    def run(cluster: ClusterHandle, namespace: str, name: str) -> None:
        body = json.loads(cluster.kubectl("get", "svc", name, "-n", namespace, "-o", "json").stdout)
        change(body)
        cluster.kubectl("replace", "-n", namespace, "-f", "-", input=json.dumps(body))

    return run


def _set_type(body: dict[str, Any]) -> None:
    body["spec"]["type"] = "NodePort"


def _drop_second_port(body: dict[str, Any]) -> None:
    body["spec"]["ports"] = body["spec"]["ports"][:1]


EDITS: dict[str, Edit] = {
    "json: renumber a port": _kubectl_patch(
        "json", [{"op": "replace", "path": "/spec/ports/0/port", "value": 8081}]
    ),
    "json: add a port": _kubectl_patch(
        "json",
        [{"op": "add", "path": "/spec/ports/-", "value": {"name": "debug", "port": 9999}}],
    ),
    "json: retarget a port": _kubectl_patch(
        "json", [{"op": "replace", "path": "/spec/ports/1/targetPort", "value": 1234}]
    ),
    "strategic: selector": _kubectl_patch(
        "strategic", {"spec": {"selector": {"exposedapp.dev/app": "oops"}}}
    ),
    "merge: session affinity": _kubectl_patch("merge", {"spec": {"sessionAffinity": "ClientIP"}}),
    "merge: our label and their annotation": _kubectl_patch(
        "merge",
        {"metadata": {"labels": {"exposedapp.dev/app": "x"}, "annotations": {THEIRS: "yes"}}},
    ),
    "apply --force-conflicts: selector": _apply_as_another_manager(
        {"selector": {"exposedapp.dev/app": "stolen"}}
    ),
    "edit: type NodePort": _replace_whole(_set_type),
    "edit: drop a port": _replace_whole(_drop_second_port),
}


def test_any_sequence_of_hand_edits_is_undone(
    apps: Apps, operator: OperatorProcess, audit: AuditLog, cluster: ClusterHandle
) -> None:
    body = app_manifest("edited", replicas=1, port=8080)
    body["spec"]["containers"][0]["ports"].append({"name": "admin", "containerPort": 9090})
    created = apps.create(body)
    apps.wait_ready("edited")
    ref = AppRef(apps.namespace, "edited", created["metadata"]["uid"])
    desired = build_desired(ref, parse_spec(created["spec"]))
    assert desired.service is not None

    def left_to_repair() -> list[str]:
        service = apps.core.api_client.sanitize_for_serialization(
            apps.core.read_namespaced_service("edited", apps.namespace)
        )
        owned = owned_keys(service)
        return service_differences(desired.service, service, owned) + foreign_ports(
            desired.service, service, owned["ports"]
        )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.generate,),
        suppress_health_check=(HealthCheck.too_slow, HealthCheck.function_scoped_fixture),
    )
    @given(st.lists(st.sampled_from(sorted(EDITS)), min_size=1, max_size=4))
    def sequence_is_undone(names: list[str]) -> None:
        for name in names:
            EDITS[name](cluster, apps.namespace, "edited")
            wait_for(
                left_to_repair,
                lambda left: left == [],
                timeout=REPAIR_SECONDS,
                what=f"the Service as declared again after {name!r}",
            )
        annotations = apps.core.read_namespaced_service(
            "edited", apps.namespace
        ).metadata.annotations
        if "merge: our label and their annotation" in names:
            assert (annotations or {}).get(THEIRS) == "yes"  # not ours: kept
        assert_second_reconcile_writes_nothing(apps, "edited", operator, audit, cluster)

    sequence_is_undone()
    assert apps.condition("edited", "Degraded")["status"] == "False"
