"""One source of truth: the CRD in crds/ and the typed model agree.

The model validates by walking crd.SPEC_SCHEMA, so bounds, enums, patterns and defaults
agree by construction once the file in crds/ is the one crd.py generates. What is left
to check: the dataclasses name the schema's fields, their Literal types list the schema's
enums, every CEL rule has a Python twin, the defaults the schema cannot express match the
schema's own, and the printer columns and scale paths point at real fields.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from exposedapp.domain import crd, model
from exposedapp.domain.desired import AppRef, build_desired

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "exposedapp.dev_exposedapps.yaml"
SAMPLES = sorted((ROOT / "deploy" / "samples").glob("*.yaml"))


def _schema_at(path: str) -> dict[str, Any]:
    """The schema node at a dotted path of ROOT_SCHEMA; [] steps into list items."""
    node = crd.ROOT_SCHEMA
    for step in path.split("."):
        node = node["properties"][step.removesuffix("[]")]
        if step.endswith("[]"):
            node = node["items"]
    return node


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for key, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{key}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def test_the_crd_file_is_generated_from_crd_py() -> None:
    assert CRD_FILE.read_text() == crd.crd_yaml(), (
        "crds/ is stale: python -m exposedapp.domain.crd > crds/exposedapp.dev_exposedapps.yaml"
    )
    assert yaml.safe_load(CRD_FILE.read_text()) == crd.crd()


def test_the_crd_names_the_api() -> None:
    spec = crd.crd()["spec"]
    assert crd.crd()["metadata"]["name"] == "exposedapps.exposedapp.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "ExposedApp",
        "listKind": "ExposedAppList",
        "plural": "exposedapps",
        "singular": "exposedapp",
        "shortNames": ["xapp"],
        "categories": ["all"],
    }
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)


# Each dataclass, the schema node it is parsed from, and where they differ by design:
# (fields only the model has, properties only the schema has). A schema property that is
# not a field of its dataclass is passed to the Pod as written (``pod_fields``).
SHAPES = {
    "ExposedAppSpec": (
        model.ExposedAppSpec,
        "spec",
        {"podFields"},
        set(_schema_at("spec")["properties"]) - model.INTERPRETED_SPEC_FIELDS,
    ),
    # An init container has every field of a container, and restartPolicy.
    "Container": (
        model.Container,
        "spec.initContainers[]",
        {"podFields"},
        set(_schema_at("spec.initContainers[]")["properties"]) - model.INTERPRETED_CONTAINER_FIELDS,
    ),
    "Port": (model.Port, "spec.containers[].ports[]", set(), set()),
    "ServiceSpec": (model.ServiceSpec, "spec.service", set(), set()),
    # rollingUpdate's two fields are flattened; Recreate has fixed values for them.
    "UpdateStrategy": (
        model.UpdateStrategy,
        "spec.updateStrategy",
        {"maxSurge", "maxUnavailable"},
        {"rollingUpdate"},
    ),
}


@pytest.mark.parametrize(
    ("cls", "path", "model_only", "schema_only"), SHAPES.values(), ids=SHAPES.keys()
)
def test_dataclass_fields_are_the_schema_properties(
    cls: type[Any], path: str, model_only: set[str], schema_only: set[str]
) -> None:
    fields = {_camel(f.name) for f in dataclasses.fields(cls)}
    properties = set(_schema_at(path)["properties"])
    assert (fields - properties, properties - fields) == (model_only, schema_only)
    if cls is model.UpdateStrategy:
        rolling = set(_schema_at(path)["properties"]["rollingUpdate"]["properties"])
        assert rolling == model_only


def test_an_init_container_is_a_container_with_a_restart_policy() -> None:
    containers = set(_schema_at("spec.containers[]")["properties"])
    init_containers = set(_schema_at("spec.initContainers[]")["properties"])
    assert init_containers - containers == {"restartPolicy"}
    assert containers <= init_containers


def _kubernetes_fields(cls: type[Any]) -> set[str]:
    """The camelCase fields of a Kubernetes API type, from the official client's models."""
    return set(cls.attribute_map.values())


@pytest.mark.parametrize(
    ("path", "interpreted", "kubernetes_type"),
    [
        ("spec", model.INTERPRETED_SPEC_FIELDS, k8s.V1PodSpec),
        ("spec.containers[]", model.INTERPRETED_CONTAINER_FIELDS, k8s.V1Container),
        ("spec.initContainers[]", model.INTERPRETED_CONTAINER_FIELDS, k8s.V1Container),
    ],
)
def test_what_passes_to_the_pod_as_written_is_a_kubernetes_field_of_the_same_name(
    path: str, interpreted: frozenset[str], kubernetes_type: type[Any]
) -> None:
    passed_on = set(_schema_at(path)["properties"]) - interpreted
    assert passed_on <= _kubernetes_fields(kubernetes_type)


def test_nothing_passed_on_can_replace_what_the_operator_sets_on_the_pod() -> None:
    spec = model.parse_spec(
        {"containers": [{"name": "a", "image": "i", "ports": [{"name": "h", "containerPort": 1}]}]}
    )
    ours = build_desired(AppRef("ns", "x", "uid"), spec).pod_template["spec"]
    container = ours["containers"][0]
    spec_fields = set(_schema_at("spec")["properties"]) - model.INTERPRETED_SPEC_FIELDS
    container_fields = (
        set(_schema_at("spec.containers[]")["properties"]) - model.INTERPRETED_CONTAINER_FIELDS
    )
    assert not spec_fields & set(ours)
    assert not container_fields & (set(container) - {"name", "image", "ports"})


@pytest.mark.parametrize(
    ("literal", "path"),
    [
        (model.PortProtocol, "spec.containers[].ports[].protocol"),
        (model.ServiceType, "spec.service.type"),
        (model.SessionAffinity, "spec.service.sessionAffinity"),
        (model.TrafficPolicy, "spec.service.externalTrafficPolicy"),
        (model.UpdateStrategyType, "spec.updateStrategy.type"),
    ],
)
def test_literal_types_are_the_schema_enums(literal: Any, path: str) -> None:
    assert list(typing.get_args(literal)) == _schema_at(path)["enum"]


def test_every_cel_rule_has_a_python_twin_and_no_twin_is_idle() -> None:
    keys = [
        crd.rule_key(rule)
        for _, node in _walk(crd.ROOT_SCHEMA)
        for rule in node.get("x-kubernetes-validations", ())
    ]
    assert set(keys) == set(model._TWINS)


def test_schema_defaults_reach_the_model() -> None:
    spec = model.parse_spec(
        {
            "containers": [
                {"name": "a", "image": "i", "ports": [{"name": "http", "containerPort": 8080}]}
            ]
        }
    )
    port = spec.containers[0].ports[0]
    assert spec.replicas == _schema_at("spec.replicas")["default"]
    assert spec.min_ready_seconds == _schema_at("spec.minReadySeconds")["default"]
    assert port.protocol == _schema_at("spec.containers[].ports[].protocol")["default"]
    assert port.expose is _schema_at("spec.containers[].ports[].expose")["default"]
    assert spec.service.type == _schema_at("spec.service.type")["default"]
    assert spec.service.session_affinity == _schema_at("spec.service.sessionAffinity")["default"]
    assert (
        spec.service.publish_not_ready_addresses
        is _schema_at("spec.service.publishNotReadyAddresses")["default"]
    )
    assert spec.update_strategy.type == _schema_at("spec.updateStrategy.type")["default"]


def test_defaults_the_schema_cannot_express_match_its_own() -> None:
    spec = model.parse_spec(
        {
            "containers": [
                {"name": "a", "image": "i", "ports": [{"name": "http", "containerPort": 8080}]}
            ]
        }
    )
    rolling = _schema_at("spec.updateStrategy.rollingUpdate")["properties"]
    # RollingUpdate without a rollingUpdate block: the block's own defaults.
    assert spec.update_strategy.max_surge == rolling["maxSurge"]["default"]
    assert spec.update_strategy.max_unavailable == rolling["maxUnavailable"]["default"]
    # servicePort has no schema default: it is containerPort's value.
    assert "default" not in _schema_at("spec.containers[].ports[].servicePort")
    assert spec.containers[0].ports[0].service_port == 8080


def test_every_bound_is_there_for_the_cel_cost_estimate() -> None:
    for path, node in _walk(crd.ROOT_SCHEMA):
        if path in {".apiVersion", ".kind"}:
            continue  # type and kind: the apiserver's own, never read by a rule
        kind = node.get("type")
        if node.get("x-kubernetes-int-or-string"):
            assert {"minimum", "maximum", "maxLength"} <= node.keys(), path
        elif kind == "string":
            assert "maxLength" in node or "enum" in node, path
        elif kind == "integer" and path.startswith(".status"):
            assert "minimum" in node, path  # no rule reads status; int64 needs no maximum
        elif kind == "integer":
            assert {"minimum", "maximum"} <= node.keys(), path
        elif kind == "array":
            assert "maxItems" in node, path
        elif kind == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path


def test_no_field_of_spec_keeps_unknown_fields() -> None:
    assert all(
        "x-kubernetes-preserve-unknown-fields" not in node for _, node in _walk(crd.SPEC_SCHEMA)
    )


def test_model_patterns_all_have_a_meaning_for_people() -> None:
    patterns = {node["pattern"] for _, node in _walk(crd.SPEC_SCHEMA) if "pattern" in node}
    assert patterns <= set(model._PATTERNS)
    for pattern in patterns:
        re.compile(pattern)


def test_printer_columns_and_scale_paths_name_real_fields() -> None:
    (version,) = crd.crd()["spec"]["versions"]
    columns = [
        (c["name"], c["jsonPath"], c.get("priority", 0))
        for c in version["additionalPrinterColumns"]
    ]
    assert columns == [
        ("Ready", ".status.readyText", 0),
        ("Type", ".spec.service.type", 0),
        ("Cluster-IP", ".status.service.clusterIP", 0),
        ("Ports", ".status.portsText", 0),
        ("Age", ".metadata.creationTimestamp", 0),
        ("Selector", ".status.selector", 1),
        ("Images", ".status.imagesText", 1),
        ("Relaxed", ".status.relaxedDefaults", 1),
        ("Draining", ".status.drainingReplicas", 1),
    ]
    scale = version["subresources"]["scale"]
    paths = [c[1] for c in columns if not c[1].startswith(".metadata")]
    for path in [
        *paths,
        scale["specReplicasPath"],
        scale["statusReplicasPath"],
        scale["labelSelectorPath"],
    ]:
        assert _schema_at(path.removeprefix(".")), path
    assert _schema_at("spec.replicas")["type"] == "integer"
    assert version["subresources"]["status"] == {}


def test_status_conditions_have_the_metav1_shape() -> None:
    conditions = _schema_at("status.conditions")
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    assert item["required"] == ["type", "status", "lastTransitionTime", "reason", "message"]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_each_sample_parses(sample: Path) -> None:
    documents = list(yaml.safe_load_all(sample.read_text()))
    apps = [d for d in documents if d["kind"] == "ExposedApp"]
    assert len(apps) == 1
    assert apps[0]["apiVersion"] == "exposedapp.dev/v1alpha1"
    model.parse_spec(apps[0])
    # Anything else a sample carries is what the app mounts (a ConfigMap), nothing more.
    assert {d["kind"] for d in documents if d is not apps[0]} <= {"ConfigMap"}


def test_the_samples_are_the_five_promised() -> None:
    assert [p.name for p in SAMPLES] == [
        "headless.yaml",
        "loadbalancer.yaml",
        "minimal.yaml",
        "multi-container.yaml",
        "nodeport.yaml",
    ]


def test_the_generated_crd_is_plain_yaml_without_anchors_or_aliases() -> None:
    events = list(yaml.parse(CRD_FILE.read_text()))
    assert not [e for e in events if getattr(e, "anchor", None)]
    assert not [e for e in events if isinstance(e, yaml.AliasEvent)]
