"""The model: valid specs parse to exact typed values, invalid ones fail with exact messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from apicases import INVALID, Invalid, app, container, port
from exposedapp.domain import crd
from exposedapp.domain.model import (
    _TWINS,
    Container,
    ExposedAppSpec,
    FrozenMap,
    Port,
    ServiceSpec,
    SpecError,
    UpdateStrategy,
    exposed_ports,
    freeze,
    parse_spec,
    to_plain,
    validate_name,
)

MINIMAL = {
    "containers": [
        {"name": "web", "image": "nginx:1.27", "ports": [{"name": "http", "containerPort": 8080}]}
    ]
}


def test_minimal_spec_gets_every_default() -> None:
    assert parse_spec(MINIMAL) == ExposedAppSpec(
        replicas=1,
        containers=(
            Container(
                name="web",
                image="nginx:1.27",
                ports=(Port("http", 8080, "TCP", service_port=8080, node_port=None, expose=True),),
                pod_fields=FrozenMap(),
            ),
        ),
        pod_fields=FrozenMap(),
        pod_labels=FrozenMap(),
        pod_annotations=FrozenMap(),
        service=ServiceSpec(
            type="ClusterIP",
            annotations=FrozenMap(),
            labels=FrozenMap(),
            session_affinity="None",
            external_traffic_policy=None,
            publish_not_ready_addresses=False,
        ),
        update_strategy=UpdateStrategy("RollingUpdate", "25%", "25%"),
        min_ready_seconds=0,
    )


def test_a_whole_object_is_accepted_and_its_name_checked() -> None:
    assert parse_spec(app("web")) == parse_spec(app("web")["spec"])
    with pytest.raises(SpecError, match=r"^metadata\.name: "):
        parse_spec(app("Web"))
    with pytest.raises(SpecError, match=r"^spec: required value$"):
        parse_spec(
            {
                "apiVersion": "exposedapp.dev/v1alpha1",
                "kind": "ExposedApp",
                "metadata": {"name": "web"},
            }
        )


def test_a_full_spec_keeps_every_field() -> None:
    spec = parse_spec(
        {
            "replicas": 0,
            "minReadySeconds": 10,
            "containers": [
                {
                    "name": "app",
                    "image": "shop:1",
                    "command": ["/shop"],
                    "args": ["--port=8080"],
                    "env": [
                        {"name": "MODE", "value": "prod"},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ],
                    "resources": {"requests": {"cpu": "100m", "memory": 64}},
                    "readinessProbe": {
                        "httpGet": {"port": "http", "path": "/ready"},
                        "periodSeconds": 5,
                    },
                    "livenessProbe": {"grpc": {"port": 9000}},
                    "volumeMounts": [
                        {
                            "name": "cfg",
                            "mountPath": "/etc/shop",
                            "readOnly": True,
                            "subPath": "shop",
                        }
                    ],
                    "ports": [
                        {
                            "name": "http",
                            "containerPort": 8080,
                            "servicePort": 80,
                            "nodePort": 30080,
                        },
                        {"name": "dns", "containerPort": 8053, "protocol": "UDP"},
                        {"name": "grpc", "containerPort": 9000, "expose": False},
                    ],
                },
            ],
            "volumes": [{"name": "cfg", "configMap": {"name": "shop", "defaultMode": 0o444}}],
            "podLabels": {"team": "shop", "app.kubernetes.io/part-of": "shop"},
            "podAnnotations": {"Example.com/Note": "anything at all"},
            "service": {
                "type": "NodePort",
                "externalTrafficPolicy": "Local",
                "sessionAffinity": "ClientIP",
                "publishNotReadyAddresses": True,
                "labels": {"tier": "web"},
                "annotations": {"a": "b"},
            },
            "updateStrategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": "10%"}},
        }
    )
    (c,) = spec.containers
    assert c.ports == (
        Port("http", 8080, "TCP", 80, 30080, True),
        Port("dns", 8053, "UDP", 8053, None, True),
        Port("grpc", 9000, "TCP", 9000, None, False),
    )
    assert c.pod_fields == freeze(
        {
            "command": ["/shop"],
            "args": ["--port=8080"],
            "env": [
                {"name": "MODE", "value": "prod"},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "resources": {"requests": {"cpu": "100m", "memory": 64}},
            "readinessProbe": {"httpGet": {"port": "http", "path": "/ready"}, "periodSeconds": 5},
            "livenessProbe": {"grpc": {"port": 9000}},
            "volumeMounts": [
                {"name": "cfg", "mountPath": "/etc/shop", "readOnly": True, "subPath": "shop"}
            ],
        }
    )
    assert spec.pod_fields == freeze(
        {"volumes": [{"name": "cfg", "configMap": {"name": "shop", "defaultMode": 292}}]}
    )
    assert spec.replicas == 0
    assert spec.min_ready_seconds == 10
    assert spec.update_strategy == UpdateStrategy("RollingUpdate", 1, "10%")
    assert spec.service == ServiceSpec(
        "NodePort", FrozenMap({"a": "b"}), FrozenMap({"tier": "web"}), "ClientIP", "Local", True
    )
    assert dict(spec.pod_labels) == {"team": "shop", "app.kubernetes.io/part-of": "shop"}
    assert to_plain(c) == {
        "name": "app",
        "image": "shop:1",
        "command": ["/shop"],
        "args": ["--port=8080"],
        "env": [
            {"name": "MODE", "value": "prod"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "resources": {"requests": {"cpu": "100m", "memory": 64}},
        "readinessProbe": {"httpGet": {"port": "http", "path": "/ready"}, "periodSeconds": 5},
        "livenessProbe": {"grpc": {"port": 9000}},
        "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/shop", "readOnly": True, "subPath": "shop"}
        ],
        "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "dns", "containerPort": 8053, "protocol": "UDP"},
            {"name": "grpc", "containerPort": 9000, "protocol": "TCP"},
        ],
    }
    assert to_plain(spec.pod_fields) == {
        "volumes": [{"name": "cfg", "configMap": {"name": "shop", "defaultMode": 292}}]
    }
    assert exposed_ports(spec) == (("app", c.ports[0]), ("app", c.ports[1]))


def test_empty_lists_and_objects_pass_on_as_absent() -> None:
    spec = parse_spec(
        {
            **MINIMAL,
            "volumes": [],
            "containers": [{**MINIMAL["containers"][0], "env": [], "resources": {}}],
        }
    )
    assert spec == parse_spec(MINIMAL)


def test_recreate_means_no_surge_and_all_unavailable() -> None:
    spec = parse_spec({**MINIMAL, "updateStrategy": {"type": "Recreate"}})
    assert spec.update_strategy == UpdateStrategy("Recreate", 0, "100%")


def test_ports_of_several_containers_are_exposed_in_order() -> None:
    spec = parse_spec(
        app(
            containers=[
                container(ports=[port("http", 8080), port("admin", 8081, expose=False)]),
                container("sidecar", ports=[]),
                container("metrics", ports=[port("metrics", 9090)]),
            ]
        )["spec"]
    )
    assert [(name, p.name) for name, p in exposed_ports(spec)] == [
        ("app", "http"),
        ("metrics", "metrics"),
    ]


def test_the_same_number_on_two_protocols_is_two_ports() -> None:
    spec = parse_spec(
        app(
            containers=[container(ports=[port("dns-tcp", 53), port("dns-udp", 53, protocol="UDP")])]
        )["spec"]
    )
    assert [p.service_port for _, p in exposed_ports(spec)] == [53, 53]


def test_null_means_absent_and_gets_the_default() -> None:
    spec = parse_spec({**MINIMAL, "replicas": None, "service": None})
    assert spec.replicas == 1
    assert spec.service.type == "ClusterIP"


def test_input_is_not_modified() -> None:
    spec = copy.deepcopy(MINIMAL)
    parse_spec(spec)
    assert spec == MINIMAL


def test_the_spec_is_immutable_and_hashable() -> None:
    spec = parse_spec(MINIMAL)
    assert hash(spec) == hash(parse_spec(copy.deepcopy(MINIMAL)))
    with pytest.raises(AttributeError):
        spec.replicas = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.pod_labels["x"] = "y"  # type: ignore[index]


def test_to_plain_copies() -> None:
    frozen = freeze({"a": [1, {"b": 2}]})
    plain = to_plain(frozen)
    assert plain == {"a": [1, {"b": 2}]}
    plain["a"].append(3)
    assert to_plain(frozen) == {"a": [1, {"b": 2}]}


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_manifest_is_refused_with_an_exact_message(case: Invalid) -> None:
    with pytest.raises(SpecError) as error:
        parse_spec(case.manifest)
    assert str(error.value) == case.model
    assert str(error.value) == f"{error.value.field}: {error.value.detail}"


def test_every_rule_of_the_crd_has_an_invalid_case() -> None:
    covered = {c.rule for c in INVALID} | MORE_RULES
    assert set(_TWINS) - covered == set()


def _spec(**fields: Any) -> dict[str, Any]:
    return app(**fields)["spec"]


# Rules and schema checks the shared table leaves out: the model's message, exactly.
MORE = [
    (
        "liveness-tcp-port-undeclared",
        "livenessProbe-tcpSocket-port-declared",
        _spec(containers=[container(livenessProbe={"tcpSocket": {"port": "grpc"}})]),
        'spec.containers[0].livenessProbe.tcpSocket.port: "grpc" names no port of container "app"',
    ),
    (
        "liveness-http-port-undeclared",
        "livenessProbe-httpGet-port-declared",
        _spec(containers=[container(livenessProbe={"httpGet": {"port": "live"}})]),
        'spec.containers[0].livenessProbe.httpGet.port: "live" names no port of container "app"',
    ),
    (
        "readiness-tcp-port-undeclared",
        "readinessProbe-tcpSocket-port-declared",
        _spec(containers=[container(readinessProbe={"tcpSocket": {"port": "db"}})]),
        'spec.containers[0].readinessProbe.tcpSocket.port: "db" names no port of container "app"',
    ),
    (
        "downward-item-two-sources",
        "downward-item-one-of",
        _spec(
            volumes=[
                {
                    "name": "info",
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "name",
                                "fieldRef": {"fieldPath": "metadata.name"},
                                "resourceFieldRef": {"resource": "limits.cpu"},
                            }
                        ]
                    },
                }
            ]
        ),
        "spec.volumes[0].downwardAPI.items[0]: a downwardAPI item must set exactly one of "
        "fieldRef, resourceFieldRef",
    ),
    (
        "projection-no-source",
        "projection-one-of",
        _spec(volumes=[{"name": "p", "projected": {"sources": [{}]}}]),
        "spec.volumes[0].projected.sources[0]: a projection must set exactly one of configMap, "
        "secret, downwardAPI, serviceAccountToken",
    ),
    (
        "volume-no-source",
        "volume-source-one-of",
        _spec(volumes=[{"name": "v"}]),
        'spec.volumes[0]: volume "v" must set exactly one of configMap, secret, emptyDir, '
        "persistentVolumeClaim, projected, downwardAPI (hostPath and other volume types are not "
        "supported)",
    ),
    (
        "port-name-double-dash",
        "port-name-iana",
        _spec(containers=[container(ports=[port("a--b")])]),
        'spec.containers[0].ports[0].name: port name "a--b" is not an IANA service name: use at '
        "most 15 lowercase letters, digits and '-', with at least one letter and no leading, "
        "trailing or double '-' (e.g. http, metrics, grpc-api)",
    ),
    (
        "port-name-leading-dash",
        "port-name-iana",
        _spec(containers=[container(ports=[port("-http")])]),
        'spec.containers[0].ports[0].name: port name "-http" is not an IANA service name: use at '
        "most 15 lowercase letters, digits and '-', with at least one letter and no leading, "
        "trailing or double '-' (e.g. http, metrics, grpc-api)",
    ),
    (
        "service-port-on-pod-only-port",
        "port-expose-only",
        _spec(
            containers=[
                container(ports=[port(), port("admin", 9000, expose=False, servicePort=90)])
            ]
        ),
        "spec.containers[0].ports[1].servicePort: servicePort and nodePort need expose: true "
        "(this port is pod-only)",
    ),
    (
        "volume-name-not-dns-label",
        "dns-label",
        _spec(volumes=[{"name": "my_vol", "emptyDir": {}}]),
        'spec.volumes[0].name: "my_vol" must be a DNS-1123 label: lowercase letters, digits and '
        "'-', starting and ending with a letter or digit",
    ),
    (
        "item-path-absolute",
        "relative-path",
        _spec(
            volumes=[
                {
                    "name": "c",
                    "configMap": {"name": "c", "items": [{"key": "k", "path": "/etc/passwd"}]},
                }
            ]
        ),
        "spec.volumes[0].configMap.items[0].path: must be a relative path without '..', got "
        '"/etc/passwd"',
    ),
    (
        "label-key-not-qualified",
        "reserved-labels-keys",
        _spec(podLabels={"team name": "x"}),
        'spec.podLabels[team name]: key "team name" is not a qualified name: at most 63 letters, '
        "digits, '-', '_' or '.' after an optional DNS-subdomain prefix and '/', starting and "
        "ending with a letter or digit",
    ),
    (
        "label-key-bad-prefix",
        "reserved-labels-keys",
        _spec(podLabels={"Example.com/team": "x"}),
        'spec.podLabels[Example.com/team]: key "Example.com/team" has a prefix that is not a DNS '
        "subdomain",
    ),
    (
        "annotation-key-empty-name",
        "reserved-annotations-keys",
        _spec(podAnnotations={"example.com/": "x"}),
        'spec.podAnnotations[example.com/]: key "example.com/" is not a qualified name: at most '
        "63 letters, digits, '-', '_' or '.' after an optional DNS-subdomain prefix and '/', "
        "starting and ending with a letter or digit",
    ),
    ("wrong-type", "type", _spec(replicas="3"), 'spec.replicas: must be an integer, got "3"'),
    (
        "bool-is-not-an-integer",
        "type",
        _spec(replicas=True),
        "spec.replicas: must be an integer, got true",
    ),
    (
        "float-is-not-an-integer",
        "type",
        _spec(containers=[container(ports=[port(number=80.5)])]),
        "spec.containers[0].ports[0].containerPort: must be an integer, got 80.5",
    ),
    (
        "containers-not-a-list",
        "type",
        _spec(containers={"name": "app"}),
        "spec.containers: must be a list, got an object",
    ),
    (
        "int-or-string-not-a-bool",
        "type",
        _spec(updateStrategy={"rollingUpdate": {"maxSurge": True}}),
        "spec.updateStrategy.rollingUpdate.maxSurge: must be an integer or a string, got true",
    ),
    (
        "max-surge-count-too-big",
        "maximum",
        _spec(updateStrategy={"rollingUpdate": {"maxSurge": 101}}),
        "spec.updateStrategy.rollingUpdate.maxSurge: must be at most 100, got 101",
    ),
    (
        "too-many-containers",
        "maxItems",
        _spec(containers=[container(f"c{i}", ports=[port(f"p{i}", 8000 + i)]) for i in range(11)]),
        "spec.containers: must have at most 10 items, got 11",
    ),
    (
        "too-many-labels",
        "maxProperties",
        _spec(podLabels={f"k{i}": "v" for i in range(65)}),
        "spec.podLabels: must have at most 64 entries, got 65",
    ),
    (
        "empty-image",
        "minLength",
        _spec(containers=[container(image="")]),
        "spec.containers[0].image: must not be empty",
    ),
    (
        "image-with-space",
        "pattern",
        _spec(containers=[container(image="nginx 1.27")]),
        'spec.containers[0].image: must be without whitespace, got "nginx 1.27"',
    ),
    (
        "env-name-invalid",
        "pattern",
        _spec(containers=[container(env=[{"name": "1A", "value": "x"}])]),
        "spec.containers[0].env[0].name: must be an environment variable name: letters, digits, "
        "'-', '_' and '.', not starting with a digit, got \"1A\"",
    ),
    (
        "port-without-name",
        "required",
        _spec(containers=[container(ports=[{"containerPort": 80}])]),
        "spec.containers[0].ports[0].name: required value",
    ),
    (
        "unknown-service-field",
        "unknown field",
        _spec(service={"clusterIP": "10.0.0.1"}),
        "spec.service.clusterIP: unknown field: not part of the ExposedApp API",
    ),
]
MORE_RULES = {rule for _, rule, _, _ in MORE}


@pytest.mark.parametrize(
    ("rule", "spec", "message"), [m[1:] for m in MORE], ids=[m[0] for m in MORE]
)
def test_more_invalid_specs(rule: str, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as error:
        parse_spec(spec)
    assert str(error.value) == message


@pytest.mark.parametrize("name", ["a", "web", "my-app-2", "a" * crd.MAX_NAME_LENGTH])
def test_valid_names(name: str) -> None:
    validate_name(name)


@pytest.mark.parametrize("name", ["", "-a", "a-", "A", "my.app", "1a", "a" * 47])
def test_invalid_names(name: str) -> None:
    with pytest.raises(SpecError) as error:
        validate_name(name)
    assert error.value.field == "metadata.name"


@pytest.mark.parametrize("name", ["http", "h2c", "grpc-api", "a" * 15, "x1", "1x", "a-b-c"])
def test_valid_port_names(name: str) -> None:
    parse_spec(_spec(containers=[container(ports=[port(name)])]))


def test_pod_only_and_exposed_ports_share_the_port_space() -> None:
    # expose: false keeps a port off the Service, not out of the Pod's port space.
    with pytest.raises(SpecError, match=r"containerPort: 8080/TCP is already used"):
        parse_spec(
            _spec(
                containers=[
                    container(ports=[port()]),
                    container("debug", ports=[port("debug", 8080, expose=False)]),
                ]
            )
        )
