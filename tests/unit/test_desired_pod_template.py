"""What real workloads need in the Pod template: each field from spec to Pod, exactly.

Security: the operator's "restricted" defaults merged with what the spec may set, and the
one explicit opt-out (runAsNonRoot: false). Identity, scheduling, lifecycle and the rest
pass to the Pod as written. Init containers and native sidecars, whose ports are part of
the Pod's one port space and exposed on the Service like any other.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from exposedapp.domain.desired import AppRef, build_desired
from exposedapp.domain.model import parse_spec

APP = AppRef("shop", "web", "uid-1")
APP_CONTAINER: dict[str, Any] = {
    "name": "app",
    "image": "shop:1",
    "ports": [{"name": "http", "containerPort": 8080}],
}
DROP_ALL = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
RESTRICTED = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def pod_spec(**spec: Any) -> dict[str, Any]:
    body = {"containers": [copy.deepcopy(APP_CONTAINER)], **spec}
    return dict(build_desired(APP, parse_spec(body)).pod_template["spec"])


def test_the_pod_security_the_spec_sets_is_merged_into_restricted() -> None:
    spec = pod_spec(
        securityContext={
            "runAsUser": 1000,
            "runAsGroup": 3000,
            "fsGroup": 2000,
            "supplementalGroups": [4000],
            "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/app.json"},
        }
    )
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 3000,
        "fsGroup": 2000,
        "supplementalGroups": [4000],
        "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/app.json"},
    }


def test_a_container_may_set_its_user_read_only_root_and_add_net_bind_service_only() -> None:
    container = {
        **APP_CONTAINER,
        "securityContext": {
            "runAsUser": 101,
            "runAsGroup": 101,
            "readOnlyRootFilesystem": True,
            "capabilities": {"add": ["NET_BIND_SERVICE"]},
        },
    }
    (built,) = pod_spec(containers=[container])["containers"]
    assert built["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "runAsUser": 101,
        "runAsGroup": 101,
        "readOnlyRootFilesystem": True,
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
    }


def test_root_is_an_explicit_opt_out_and_is_told_as_a_relaxed_default() -> None:
    spec = parse_spec(
        {
            "containers": [APP_CONTAINER],
            "securityContext": {"runAsNonRoot": False, "runAsUser": 0},
        }
    )
    desired = build_desired(APP, spec)
    assert desired.pod_template["spec"]["securityContext"] == {
        "runAsNonRoot": False,
        "runAsUser": 0,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    # Everything else stays as restricted asks: no capability comes back with root.
    assert desired.pod_template["spec"]["containers"][0]["securityContext"] == DROP_ALL
    assert desired.relaxed_defaults == ("runAsNonRoot=false",)


def test_the_service_account_token_is_mounted_only_when_asked() -> None:
    assert pod_spec()["automountServiceAccountToken"] is False
    assert pod_spec(serviceAccountName="shop-bot")["automountServiceAccountToken"] is False
    asked = parse_spec(
        {
            "containers": [APP_CONTAINER],
            "serviceAccountName": "shop-bot",
            "automountServiceAccountToken": True,
        }
    )
    desired = build_desired(APP, asked)
    assert desired.pod_template["spec"]["serviceAccountName"] == "shop-bot"
    assert desired.pod_template["spec"]["automountServiceAccountToken"] is True
    assert desired.relaxed_defaults == ("automountServiceAccountToken=true",)
    assert build_desired(APP, parse_spec({"containers": [APP_CONTAINER]})).relaxed_defaults == ()


POD_FIELDS: dict[str, Any] = {
    "imagePullSecrets": [{"name": "registry"}],
    "nodeSelector": {"disktype": "ssd"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "shop", "effect": "NoSchedule"}
    ],
    "affinity": {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "web"}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    },
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "web"}},
        }
    ],
    "priorityClassName": "shop-critical",
    "terminationGracePeriodSeconds": 45,
}


@pytest.mark.parametrize("field", POD_FIELDS)
def test_scheduling_and_identity_fields_pass_to_the_pod_as_written(field: str) -> None:
    assert pod_spec(**{field: POD_FIELDS[field]})[field] == POD_FIELDS[field]


CONTAINER_FIELDS: dict[str, Any] = {
    "imagePullPolicy": "Always",
    "startupProbe": {"httpGet": {"port": "http", "path": "/started"}, "failureThreshold": 30},
    "lifecycle": {
        "postStart": {"exec": {"command": ["/bin/warm-up"]}},
        "preStop": {"sleep": {"seconds": 5}},
    },
    "envFrom": [{"configMapRef": {"name": "shop"}}, {"prefix": "DB_", "secretRef": {"name": "db"}}],
    "workingDir": "/srv",
    "terminationMessagePolicy": "FallbackToLogsOnError",
}


@pytest.mark.parametrize("field", CONTAINER_FIELDS)
def test_lifecycle_and_container_fields_pass_to_the_container_as_written(field: str) -> None:
    container = {**APP_CONTAINER, field: CONTAINER_FIELDS[field]}
    (built,) = pod_spec(containers=[container])["containers"]
    assert built[field] == CONTAINER_FIELDS[field]


@pytest.mark.parametrize(
    ("field", "value"),
    [*POD_FIELDS.items(), ("securityContext", {"runAsUser": 1000}), ("serviceAccountName", "bot")],
)
def test_each_pod_field_is_part_of_the_template_hash(field: str, value: Any) -> None:
    plain = build_desired(APP, parse_spec({"containers": [APP_CONTAINER]}))
    changed = build_desired(APP, parse_spec({"containers": [APP_CONTAINER], field: value}))
    assert changed.template_hash != plain.template_hash


@pytest.mark.parametrize("field", CONTAINER_FIELDS)
def test_each_container_field_is_part_of_the_template_hash(field: str) -> None:
    plain = build_desired(APP, parse_spec({"containers": [APP_CONTAINER]}))
    container = {**APP_CONTAINER, field: CONTAINER_FIELDS[field]}
    assert build_desired(APP, parse_spec({"containers": [container]})).template_hash != (
        plain.template_hash
    )


SIDECAR = {
    "name": "proxy",
    "image": "envoy:1",
    "restartPolicy": "Always",
    "ports": [{"name": "proxy", "containerPort": 15001, "servicePort": 443}],
}
MIGRATE = {"name": "migrate", "image": "shop:1", "command": ["/shop", "migrate"]}


def test_init_containers_run_in_order_and_sidecars_serve_on_the_service() -> None:
    desired = build_desired(
        APP, parse_spec({"containers": [APP_CONTAINER], "initContainers": [MIGRATE, SIDECAR]})
    )
    assert desired.pod_template["spec"]["initContainers"] == [
        {
            "name": "migrate",
            "image": "shop:1",
            "command": ["/shop", "migrate"],
            "securityContext": DROP_ALL,
        },
        {
            "name": "proxy",
            "image": "envoy:1",
            "restartPolicy": "Always",
            "ports": [{"name": "proxy", "containerPort": 15001, "protocol": "TCP"}],
            "securityContext": DROP_ALL,
        },
    ]
    assert desired.service is not None
    assert desired.service["spec"]["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 8080, "targetPort": "http"},
        {"name": "proxy", "protocol": "TCP", "port": 443, "targetPort": "proxy"},
    ]
    assert [(p.name, p.container) for p in desired.ports] == [("http", "app"), ("proxy", "proxy")]


def test_a_sidecar_alone_can_carry_the_service() -> None:
    app_without_ports = {"name": "app", "image": "shop:1"}
    desired = build_desired(
        APP, parse_spec({"containers": [app_without_ports], "initContainers": [SIDECAR]})
    )
    assert desired.service is not None
    assert [p["name"] for p in desired.service["spec"]["ports"]] == ["proxy"]


def test_without_new_fields_the_pod_is_what_it_was() -> None:
    assert pod_spec() == {
        "containers": [
            {
                "name": "app",
                "image": "shop:1",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "securityContext": DROP_ALL,
            }
        ],
        "securityContext": RESTRICTED,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Always",
    }


def test_status_shows_the_relaxed_defaults_for_kubectl_get_wide() -> None:
    import datetime

    from exposedapp.domain.status import summarise

    relaxed = build_desired(
        APP,
        parse_spec(
            {
                "containers": [APP_CONTAINER],
                "securityContext": {"runAsNonRoot": False},
                "automountServiceAccountToken": True,
            }
        ),
    )
    plain = build_desired(APP, parse_spec({"containers": [APP_CONTAINER]}))
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)

    def status(desired: Any) -> dict[str, Any]:
        return summarise(
            generation=1, desired=desired, pods=[], service=None, slices=[], problems=[], now=now
        )

    assert status(relaxed)["relaxedDefaults"] == (
        "automountServiceAccountToken=true,runAsNonRoot=false"
    )
    assert "relaxedDefaults" not in status(plain)
