"""Port entries of another field manager: repaired by an update, not left for ever.

Server-side apply cannot remove a list-map entry that another manager added or re-keyed
(a Service port whose number was edited by hand), so the plan chooses an update built
from the observed Service, keeping what is not ours.
"""

from __future__ import annotations

import copy
from typing import Any

from exposedapp.domain.desired import AppRef, build_desired
from exposedapp.domain.model import parse_spec
from exposedapp.domain.plan import foreign_ports, plan, repaired_service
from test_plan import NOW

APP = AppRef("ns", "web", "uid-1")
DESIRED = build_desired(
    APP,
    parse_spec(
        {
            "replicas": 0,
            "containers": [
                {
                    "name": "app",
                    "image": "app:1",
                    "ports": [{"name": "http", "containerPort": 8080, "servicePort": 80}],
                }
            ],
            "service": {"type": "NodePort"},
        }
    ),
)
OURS = {
    "labels": set(DESIRED.service["metadata"]["labels"]),
    "annotations": set(),
    "ports": {"80/TCP"},
}  # type: ignore[index]


def observed(*ports: dict[str, Any], owned_ports: set[str] | None = None) -> dict[str, Any]:
    assert DESIRED.service is not None
    service = copy.deepcopy(dict(DESIRED.service))
    service["metadata"] = {
        **service["metadata"],
        "resourceVersion": "41",
        "uid": "svc-uid",
        "labels": {**service["metadata"]["labels"], "team": "shop"},
        "annotations": {"cloud.example/lb": "theirs"},
        "managedFields": [{"manager": "kubectl-patch"}],
    }
    service["spec"] = {**service["spec"], "clusterIP": "10.96.0.9", "ports": list(ports)}
    return service


def http(port: int, node_port: int = 31000) -> dict[str, Any]:
    return {
        "name": "http",
        "port": port,
        "protocol": "TCP",
        "targetPort": "http",
        "nodePort": node_port,
    }


def test_a_port_number_edited_by_hand_is_repaired_by_an_update() -> None:
    service = observed(http(8081))  # the entry is re-keyed: (8081, TCP), not ours
    owned = {**OURS, "ports": set()}
    assert foreign_ports(DESIRED.service, service, owned["ports"]) == ["http 8081/TCP"]  # type: ignore[arg-type]
    (action,) = plan(DESIRED, [], service, service_owned_keys=owned, now=NOW).actions
    assert action.kind == "replace_service"
    assert action.reason == (
        "repairing Service web: port http port: 8081 -> 80 "
        "(port entries of another manager: http 8081/TCP)"
    )
    assert action.body is not None
    assert action.body["spec"]["ports"] == [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "nodePort": 31000}
    ]
    # What is not ours stays: the cluster IP, others' labels and annotations, the
    # resourceVersion the update is conditional on; managedFields are never sent.
    assert action.body["spec"]["clusterIP"] == "10.96.0.9"
    assert action.body["metadata"]["labels"]["team"] == "shop"
    assert action.body["metadata"]["annotations"] == {"cloud.example/lb": "theirs"}
    assert action.body["metadata"]["resourceVersion"] == "41"
    assert "managedFields" not in action.body["metadata"]


def test_a_port_added_by_hand_is_removed_by_an_update() -> None:
    debug = {"name": "debug", "port": 9999, "protocol": "TCP", "targetPort": 9999}
    service = observed(http(80), debug)
    (action,) = plan(DESIRED, [], service, service_owned_keys=OURS, now=NOW).actions
    assert action.kind == "replace_service"
    assert action.body is not None
    assert [p["name"] for p in action.body["spec"]["ports"]] == ["http"]
    assert action.body["spec"]["ports"][0]["nodePort"] == 31000  # allocated: kept


def test_a_spec_change_of_our_own_port_is_still_a_server_side_apply() -> None:
    service = observed(http(80))
    assert DESIRED.service is not None
    renumbered = copy.deepcopy(DESIRED)
    object.__setattr__(renumbered, "service", copy.deepcopy(dict(DESIRED.service)))
    renumbered.service["spec"]["ports"][0]["port"] = 81  # type: ignore[index]
    (action,) = plan(renumbered, [], service, service_owned_keys=OURS, now=NOW).actions
    assert action.kind == "apply_service"


def test_once_repaired_nothing_is_left_to_do() -> None:
    service = observed(http(8081))
    body = repaired_service(DESIRED.service, service, OURS)  # type: ignore[arg-type]
    # The apiserver's answer to the update: the body, our manager now owning the entry.
    assert plan(DESIRED, [], body, service_owned_keys=OURS, now=NOW).actions == ()


def test_a_service_we_may_not_read_is_never_written() -> None:
    from exposedapp.domain.plan import ServiceConflict
    from exposedapp.runtime.client import Answer
    from exposedapp.runtime.executor import check_service_owner

    class Refusing:
        def get(self, kind: str, namespace: str, name: str) -> Answer:
            return Answer(403, "Forbidden", 'services "web" is forbidden', {})

    found, conflict = check_service_owner(Refusing(), APP, "web")  # type: ignore[arg-type]
    assert found is None
    assert conflict == ServiceConflict("web", "", '403 Forbidden: services "web" is forbidden')
    result = plan(DESIRED, [], None, service_conflict=conflict, now=NOW)
    assert result.actions == ()
    assert result.blocked == (
        'Service web could not be read (403 Forbidden: services "web" is forbidden); '
        "it is not written until its owner is known",
    )


def test_a_repair_keeps_what_others_set_in_our_entries_and_their_references() -> None:
    service = observed({**http(80), "appProtocol": "http"}, {"name": "debug", "port": 9999})
    service["metadata"]["ownerReferences"] = [
        *service["metadata"]["ownerReferences"],
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "audit", "uid": "cm-1"},
    ]
    body = repaired_service(DESIRED.service, service, OURS)  # type: ignore[arg-type]
    assert body["spec"]["ports"] == [{**http(80), "appProtocol": "http"}]
    assert [r["uid"] for r in body["metadata"]["ownerReferences"]] == ["uid-1", "cm-1"]


def test_a_port_entry_our_own_update_wrote_is_ours() -> None:
    from exposedapp.domain.objects import owned_keys

    entry = {
        "manager": "exposedapp-operator",
        "operation": "Update",
        "fieldsV1": {"f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {}}}},
    }
    assert owned_keys({"metadata": {"managedFields": [entry]}})["ports"] == {"80/TCP"}
