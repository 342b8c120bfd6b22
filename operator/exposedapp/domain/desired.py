"""Spec -> the Pods and the Service the operator wants. Pure: no I/O, inputs never mutated.

Every port is declared once, on its container. From that one declaration come the
containerPort, the Service port, a targetPort that names the container port (so the
Service follows the Pods through renumbering), the nodePort and the selector.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .labels import (
    API_VERSION,
    APP_LABEL,
    KIND,
    RESTARTED_AT_ANNOTATION,
    TEMPLATE_ANNOTATION,
    TEMPLATE_HASH_LABEL,
    identity_labels,
    recommended_labels,
)
from .model import Container, DrainPolicy, ExposedAppSpec, Port, to_plain

__all__ = ["AppRef", "DesiredState", "PortMapping", "build_desired", "owner_reference"]


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


def build_desired(app: AppRef, spec: ExposedAppSpec) -> DesiredState:
    """The Pods and the Service ``spec`` implies for ``app``: whole objects, no I/O."""
    template_hash, summary, pod_template = _pod_template(app, spec)
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


def _pod_template(app: AppRef, spec: ExposedAppSpec) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(template hash, template summary, the Pod body without a name)."""
    user_labels = dict(spec.pod_labels)
    user_annotations = dict(spec.pod_annotations)
    if spec.restarted_at is not None:
        # Part of the hash: a new stamp is a new template, rolled out like any other.
        user_annotations[RESTARTED_AT_ANNOTATION] = spec.restarted_at
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
