"""Spec -> the Pods and the Service the operator wants. Pure: no I/O, inputs never mutated.

Every port is declared once, on its container. From that one declaration come the
containerPort, the Service port, a targetPort that names the container port (so the
Service follows the Pods through renumbering), the nodePort and the selector.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .labels import (
    API_VERSION,
    APP_LABEL,
    CONFIG_HASH_ANNOTATION,
    KIND,
    RESTARTED_AT_ANNOTATION,
    TEMPLATE_ANNOTATION,
    TEMPLATE_HASH_LABEL,
    identity_labels,
    recommended_labels,
)
from .model import Container, DrainPolicy, ExposedAppSpec, Port, to_plain

__all__ = [
    "AppRef",
    "ConfigRef",
    "DesiredState",
    "PortMapping",
    "build_desired",
    "config_digest",
    "config_references",
    "owner_reference",
]


@dataclass(frozen=True)
class AppRef:
    """The identity of one ExposedApp object."""

    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class PortMapping:
    """One exposed port, resolved: what status reports and the Service carries."""

    name: str
    protocol: str
    port: int
    container_port: int
    container: str
    node_port: int | None


@dataclass(frozen=True)
class DesiredState:
    app_name: str
    namespace: str
    replicas: int
    template_hash: str
    template_summary: Mapping[str, Any]
    pod_template: Mapping[str, Any]
    service: Mapping[str, Any] | None
    selector: Mapping[str, str]
    ports: tuple[PortMapping, ...]
    images: tuple[str, ...]
    strategy: str
    max_surge: int | str
    max_unavailable: int | str
    min_ready_seconds: int
    service_type: str
    relaxed_defaults: tuple[str, ...] = ()  # the operator's defaults the spec relaxes
    drain: DrainPolicy = field(default_factory=DrainPolicy)
    paused: bool = False  # no new rollout step (spec.paused)
    progress_deadline_seconds: int = 600
    revision_history_limit: int = 10
    disruption_budget: Mapping[str, Any] | None = None  # a PodDisruptionBudget to apply

    def pod(self, name: str) -> dict[str, Any]:
        """A whole Pod body with its name; a fresh copy each call."""
        body = copy.deepcopy(dict(self.pod_template))
        body["metadata"]["name"] = name
        return body


def owner_reference(app: AppRef) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": app.name,
        "uid": app.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


# What Pod Security "restricted" asks for. The spec may set the Pod's user, groups and
# seccomp profile within it, and opt out of runAsNonRoot explicitly (baseline).
POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
# What no ExposedApp can loosen: the spec may only add NET_BIND_SERVICE back.
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def _container(container: Container) -> dict[str, Any]:
    security = {**copy.deepcopy(CONTAINER_SECURITY_CONTEXT), **to_plain(container.security_context)}
    security["capabilities"] = {
        **security.get("capabilities", {}),
        **copy.deepcopy(CONTAINER_SECURITY_CONTEXT["capabilities"]),
    }
    return {**container.to_k8s(), "securityContext": security}


def _pod_security(spec: ExposedAppSpec) -> dict[str, Any]:
    return {**copy.deepcopy(POD_SECURITY_CONTEXT), **to_plain(spec.security_context)}


def _template_hash(template: Mapping[str, Any]) -> str:
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def _exposed(spec: ExposedAppSpec) -> list[tuple[Container, Port]]:
    return [(c, p) for c in spec.serving_containers for p in c.ports if p.expose]


ConfigRef = tuple[str, str]  # ("ConfigMap" or "Secret", name)


def config_references(spec: Mapping[str, Any]) -> tuple[ConfigRef, ...]:
    """Every ConfigMap and Secret a (plain, camelCase) spec's Pods reference, sorted:
    volumes and projected volumes, env valueFrom and envFrom, of every container."""
    found: set[ConfigRef] = set()
    for volume in spec.get("volumes") or []:
        if "configMap" in volume:
            found.add(("ConfigMap", volume["configMap"].get("name", "")))
        if "secret" in volume:
            found.add(("Secret", volume["secret"].get("secretName", "")))
        for source in (volume.get("projected") or {}).get("sources") or []:
            for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret")):
                if key in source:
                    found.add((kind, source[key].get("name", "")))
    for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                if key in value_from:
                    found.add((kind, value_from[key].get("name", "")))
        for source in container.get("envFrom") or []:
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if key in source:
                    found.add((kind, source[key].get("name", "")))
    return tuple(sorted(r for r in found if r[1]))


def config_digest(refs: Sequence[ConfigRef], data_hash: Callable[[ConfigRef], str | None]) -> str:
    """One digest of the referenced objects' data (``data_hash``: None when absent or not
    readable), for the Pod template: new data, new template."""
    parts = [f"{kind}/{name}={data_hash((kind, name)) or '-'}" for kind, name in refs]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def build_desired(
    app: AppRef, spec: ExposedAppSpec, config_hash: str | None = None
) -> DesiredState:
    """The Pods and the Service ``spec`` implies for ``app``: whole objects, no I/O.

    ``config_hash``: config_digest() of the objects the Pods reference, for an app with
    rolloutOnConfigChange (part of the template hash); None otherwise."""
    template_hash, summary, pod_template = _pod_template(app, spec, config_hash)
    exposed = _exposed(spec)
    ports = tuple(
        PortMapping(p.name, p.protocol, p.service_port, p.container_port, c.name, p.node_port)
        for c, p in exposed
    )
    identity = identity_labels(app.name, app.uid)
    service = _service(app, spec, identity, ports) if ports else None
    return DesiredState(
        app_name=app.name,
        namespace=app.namespace,
        replicas=spec.replicas,
        template_hash=template_hash,
        template_summary=summary,
        pod_template=pod_template,
        service=service,
        selector=identity,
        ports=ports,
        images=tuple(c.image for c in spec.containers),
        relaxed_defaults=spec.relaxed_defaults,
        strategy=spec.update_strategy.type,
        max_surge=spec.update_strategy.max_surge,
        max_unavailable=spec.update_strategy.max_unavailable,
        min_ready_seconds=spec.min_ready_seconds,
        service_type=spec.service.type,
        drain=spec.drain,
        paused=spec.paused,
        progress_deadline_seconds=spec.progress_deadline_seconds,
        revision_history_limit=spec.revision_history_limit,
        disruption_budget=_disruption_budget(app, spec, identity),
    )


def _hashed_annotations(spec: ExposedAppSpec, config_hash: str | None) -> dict[str, str]:
    """The Pod annotations that are part of the template hash: the spec's, and the stamps
    whose change must roll the Pods (a restart, new config data)."""
    annotations = dict(spec.pod_annotations)
    if config_hash is not None and spec.rollout_on_config_change:
        annotations[CONFIG_HASH_ANNOTATION] = config_hash
    if spec.restarted_at is not None:
        annotations[RESTARTED_AT_ANNOTATION] = spec.restarted_at
    return annotations


def _pod_template(
    app: AppRef, spec: ExposedAppSpec, config_hash: str | None
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(template hash, template summary, the Pod body without a name)."""
    user_labels = dict(spec.pod_labels)
    user_annotations = _hashed_annotations(spec, config_hash)
    pod_spec: dict[str, Any] = {
        "containers": [_container(c) for c in spec.containers],
        "securityContext": _pod_security(spec),
        # The app talks to its own ports, not to the Kubernetes API: no token unless asked.
        "automountServiceAccountToken": spec.automount_service_account_token,
        "enableServiceLinks": False,
        "restartPolicy": "Always",
    }
    if spec.init_containers:
        pod_spec["initContainers"] = [_container(c) for c in spec.init_containers]
    # What the spec passes on as written; never what the operator sets itself.
    pod_spec.update({k: v for k, v in to_plain(spec.pod_fields).items() if k not in pod_spec})
    # The hash covers everything a Pod is built from, except the app's identity.
    template_hash = _template_hash(
        {"spec": pod_spec, "labels": user_labels, "annotations": user_annotations}
    )
    summary: dict[str, Any] = {
        "ports": {
            p.name: f"{p.container_port}/{p.protocol}"
            for c in spec.serving_containers
            for p in c.ports
        },
        "images": {c.name: c.image for c in spec.containers},
    }
    if spec.restarted_at is not None:
        summary["restartedAt"] = spec.restarted_at
    if CONFIG_HASH_ANNOTATION in user_annotations:
        summary["config"] = user_annotations[CONFIG_HASH_ANNOTATION]
    pod_template: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "",
            "namespace": app.namespace,
            "labels": {
                **user_labels,
                **recommended_labels(app.name),
                **identity_labels(app.name, app.uid),
                TEMPLATE_HASH_LABEL: template_hash,
            },
            "annotations": {
                **user_annotations,
                TEMPLATE_ANNOTATION: json.dumps(summary, sort_keys=True),
            },
            "ownerReferences": [owner_reference(app)],
        },
        "spec": pod_spec,
    }
    return template_hash, summary, pod_template


def _disruption_budget(
    app: AppRef, spec: ExposedAppSpec, selector: Mapping[str, str]
) -> dict[str, Any] | None:
    """The PodDisruptionBudget the spec asks for: it selects what the Service selects, so a
    draining Pod (out of the Service) is out of the budget's count too."""
    if spec.disruption_budget is None:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": app.name,
            "namespace": app.namespace,
            "labels": {**recommended_labels(app.name), APP_LABEL: app.name},
            "ownerReferences": [owner_reference(app)],
        },
        "spec": {**to_plain(spec.disruption_budget), "selector": {"matchLabels": dict(selector)}},
    }


def _service(
    app: AppRef, spec: ExposedAppSpec, selector: Mapping[str, str], ports: tuple[PortMapping, ...]
) -> dict[str, Any]:
    service = spec.service
    headless = service.type == "Headless"
    service_ports = []
    for mapping in ports:
        port: dict[str, Any] = {
            "name": mapping.name,
            "protocol": mapping.protocol,
            "port": mapping.port,
            "targetPort": mapping.name,
        }
        if mapping.node_port is not None:
            port["nodePort"] = mapping.node_port
        service_ports.append(port)
    body_spec: dict[str, Any] = {
        "type": "ClusterIP" if headless else service.type,
        "selector": dict(selector),
        "ports": service_ports,
    }
    if headless:
        body_spec["clusterIP"] = "None"
    body_spec["sessionAffinity"] = service.session_affinity
    # Always sent, with Kubernetes' own defaults, so that a value dropped from the spec is
    # noticed as a difference and put back to the default.
    body_spec["publishNotReadyAddresses"] = service.publish_not_ready_addresses
    if service.type in ("NodePort", "LoadBalancer"):
        body_spec["externalTrafficPolicy"] = service.external_traffic_policy or "Cluster"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": app.name,
            "namespace": app.namespace,
            "labels": {**dict(service.labels), **recommended_labels(app.name), APP_LABEL: app.name},
            "annotations": dict(service.annotations),
            "ownerReferences": [owner_reference(app)],
        },
        "spec": body_spec,
    }
