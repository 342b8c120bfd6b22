"""The ExposedApp spec: parsed, validated and defaulted once, then immutable.

parse_spec() walks the CRD's own schema (crd.SPEC_SCHEMA) to check types, bounds, enums
and patterns and to apply the schema's defaults, then runs the Python twin of every CEL
rule of the CRD, found by the rule's key. So `exposedapp render -f` offline, an apiserver
without CEL and the real apiserver refuse the same specs; here the message also names the
exact element (`spec.containers[1].ports[0].name`), which CEL cannot.

Defaults the schema cannot express are applied here, once, and documented on the field:
a port's servicePort defaults to its containerPort, and RollingUpdate without a
rollingUpdate block means maxSurge 25%, maxUnavailable 25%.

Where this model is stricter than the CRD it is because Kubernetes would refuse the Pod
later anyway: label and annotation keys must be qualified names (the CRD cannot run a
regex over map keys within its CEL cost budget).

Unknown fields are refused, as `kubectl apply` does by default (strict field validation);
the apiserver prunes them when a client asks for no validation, so the operator never
sees them.

What the operator reads is typed (names, images, ports, the Service, the update
strategy); every other field the schema declares passes to the Pod as written, kept as
FrozenMap values in the API's camelCase (``pod_fields``); to_plain() gives plain dicts back.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias, TypeVar, cast, runtime_checkable

from exposedapp.domain import crd

__all__ = [
    "INTERPRETED_CONTAINER_FIELDS",
    "INTERPRETED_SPEC_FIELDS",
    "Container",
    "DrainPolicy",
    "ExposedAppSpec",
    "Frozen",
    "FrozenMap",
    "Port",
    "PortProtocol",
    "ServiceSpec",
    "ServiceType",
    "SessionAffinity",
    "SpecError",
    "TrafficPolicy",
    "UpdateStrategy",
    "UpdateStrategyType",
    "check_status",
    "exposed_ports",
    "freeze",
    "parse_spec",
    "to_plain",
    "validate_name",
]


class SpecError(ValueError):
    """A spec the API refuses; `field` is the path of the offending field."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


# --- immutable JSON ------------------------------------------------------------------

_V_co = TypeVar("_V_co", covariant=True)


class FrozenMap(Mapping[str, _V_co]):
    """An immutable, hashable mapping with string keys."""

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[str, _V_co] | Iterable[tuple[str, _V_co]] = ()) -> None:
        self._data: dict[str, _V_co] = dict(items)

    def __getitem__(self, key: str) -> _V_co:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


@runtime_checkable
class _ApiObject(Protocol):
    def to_k8s(self) -> dict[str, Any]: ...


Frozen: TypeAlias = "bool | int | float | str | tuple[Frozen, ...] | FrozenMap[Frozen] | None"


def freeze(value: Any) -> Frozen:
    """An immutable copy of a JSON-like value: dicts become FrozenMaps, lists tuples."""
    if isinstance(value, Mapping):
        return FrozenMap((str(k), freeze(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return cast(Frozen, value)


def to_plain(value: Any) -> Any:
    """A plain, mutable JSON copy of a model value, ready to put in a Kubernetes object.

    FrozenMaps become dicts, tuples lists, and model objects (EnvVar, VolumeMount, Volume,
    Port, Container) their camelCase API dicts.
    """
    if isinstance(value, FrozenMap):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, _ApiObject):
        return value.to_k8s()
    return value


# --- the spec ------------------------------------------------------------------------

PortProtocol = Literal["TCP", "UDP", "SCTP"]
ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer", "Headless"]
SessionAffinity = Literal["None", "ClientIP"]
TrafficPolicy = Literal["Cluster", "Local"]
UpdateStrategyType = Literal["RollingUpdate", "Recreate"]


@dataclass(frozen=True)
class Port:
    name: str
    container_port: int
    protocol: PortProtocol
    service_port: int  # defaulted to container_port
    node_port: int | None  # None: Kubernetes allocates one (NodePort, LoadBalancer)
    expose: bool

    def to_k8s(self) -> dict[str, Any]:
        """The Pod's containerPort entry (no hostPort: not part of the API)."""
        return {"name": self.name, "containerPort": self.container_port, "protocol": self.protocol}


EMPTY: FrozenMap[Frozen] = FrozenMap()  # immutable: safe to share as a default


@dataclass(frozen=True)
class Container:
    """One container. What the operator reads is typed (name, image, ports); every other
    field the API declares for a container goes to the Pod's container as written
    (``pod_fields``, camelCase, validated and defaulted by the schema walk): declaring a
    field in crd.py is the whole change for a field the operator only passes on."""

    name: str
    image: str
    ports: tuple[Port, ...]
    pod_fields: FrozenMap[Frozen]  # e.g. {"env": (...), "readinessProbe": {...}}
    # The spec's securityContext of the container, merged with the operator's own.
    security_context: FrozenMap[Frozen] = EMPTY
    restart_policy: str | None = None  # "Always": an init container that is a sidecar

    @property
    def sidecar(self) -> bool:
        return self.restart_policy == "Always"

    def to_k8s(self) -> dict[str, Any]:
        """The Pod's container, without what the operator adds (e.g. securityContext)."""
        out: dict[str, Any] = {"name": self.name, "image": self.image}
        out.update(to_plain(self.pod_fields))
        if self.restart_policy is not None:
            out["restartPolicy"] = self.restart_policy
        if self.ports:
            out["ports"] = [p.to_k8s() for p in self.ports]
        return out


@dataclass(frozen=True)
class ServiceSpec:
    type: ServiceType
    annotations: FrozenMap[str]
    labels: FrozenMap[str]
    session_affinity: SessionAffinity
    external_traffic_policy: TrafficPolicy | None  # None: Kubernetes' default (Cluster)
    publish_not_ready_addresses: bool


@dataclass(frozen=True)
class UpdateStrategy:
    """How outdated Pods are replaced; counts or percentages such as "25%".

    RollingUpdate defaults to 25%/25%. Recreate is expressed in the same terms, as what it
    means: no surge, and every old Pod may go at once (0 and "100%").
    """

    type: UpdateStrategyType
    max_surge: int | str
    max_unavailable: int | str


@dataclass(frozen=True)
class DrainPolicy:
    """How a Pod leaves the Service before its deletion (spec.drain); seconds."""

    enabled: bool = True
    delay_seconds: int = 2
    timeout_seconds: int = 60


@dataclass(frozen=True)
class ExposedAppSpec:
    """A whole spec. As for containers, the spec's fields the operator does not read go
    to the Pod's spec as written (``pod_fields``: volumes, ...)."""

    replicas: int
    containers: tuple[Container, ...]
    pod_fields: FrozenMap[Frozen]
    pod_labels: FrozenMap[str]
    pod_annotations: FrozenMap[str]
    service: ServiceSpec
    update_strategy: UpdateStrategy
    min_ready_seconds: int
    init_containers: tuple[Container, ...] = ()  # init containers and sidecars, in order
    # The spec's Pod securityContext, merged with the operator's defaults.
    security_context: FrozenMap[Frozen] = EMPTY
    automount_service_account_token: bool = False
    drain: DrainPolicy = dataclasses.field(default_factory=DrainPolicy)
    restarted_at: str | None = None  # a new value restarts every Pod (a template change)
    paused: bool = False
    progress_deadline_seconds: int = 600
    revision_history_limit: int = 10
    # {"minAvailable": n} or {"maxUnavailable": n} (a count or "N%"); None: no budget.
    disruption_budget: FrozenMap[Frozen] | None = None
    rollout_on_config_change: bool = False

    @property
    def serving_containers(self) -> tuple[Container, ...]:
        """The containers whose ports the Pod serves: the app's, then its sidecars."""
        return self.containers + tuple(c for c in self.init_containers if c.sidecar)

    @property
    def runs_as_root(self) -> bool:
        """The spec opted out of runAsNonRoot (Pod Security "baseline", not "restricted")."""
        return self.security_context.get("runAsNonRoot") is False

    @property
    def relaxed_defaults(self) -> tuple[str, ...]:
        """The operator's defaults this spec relaxes, as "field=value", sorted."""
        relaxed = []
        if self.automount_service_account_token:
            relaxed.append("automountServiceAccountToken=true")
        if self.runs_as_root:
            relaxed.append("runAsNonRoot=false")
        return tuple(relaxed)


def exposed_ports(spec: ExposedAppSpec) -> tuple[tuple[str, Port], ...]:
    """(container name, port) of every exposed port, in declaration order: the app's
    containers, then its sidecars."""
    return tuple((c.name, p) for c in spec.serving_containers for p in c.ports if p.expose)


# --- parsing -------------------------------------------------------------------------

_DEFAULT_ROLLING_UPDATE = UpdateStrategy("RollingUpdate", max_surge="25%", max_unavailable="25%")
_RECREATE = UpdateStrategy("Recreate", max_surge=0, max_unavailable="100%")


def parse_spec(body_or_spec: Mapping[str, Any]) -> ExposedAppSpec:
    """Validate and default an ExposedApp's spec (or a whole ExposedApp object).

    Raises SpecError naming the first offending field. The input is not modified.
    """
    if _is_object(body_or_spec):
        name = (body_or_spec.get("metadata") or {}).get("name")
        if name is not None:
            validate_name(name)
        raw = body_or_spec.get("spec")
        if raw is None:
            raise SpecError("spec", "required value")
    else:
        raw = body_or_spec
    spec = _conform(raw, crd.SPEC_SCHEMA, "spec")
    return _build(spec)


def validate_name(name: str) -> None:
    """Refuse an ExposedApp name the derived Service and Pod names could not carry."""
    if len(name) > crd.MAX_NAME_LENGTH:
        raise SpecError(
            "metadata.name",
            f"{_show(name)} must be at most {crd.MAX_NAME_LENGTH} characters: Pods are named "
            "<name>-<hash10>-<suffix5> and a Pod name must fit in 63",
        )
    if not re.search(crd.DNS1035_LABEL, name):
        raise SpecError(
            "metadata.name",
            f"{_show(name)} must be a DNS-1035 label (a lowercase letter first, then "
            "lowercase letters, digits and '-', no '.'): the Service is named after the "
            "ExposedApp",
        )


def _is_object(value: Mapping[str, Any]) -> bool:
    return any(k in value for k in ("apiVersion", "kind", "metadata", "spec"))


# The fields the operator reads; every other declared field goes to the Pod as written.
INTERPRETED_SPEC_FIELDS = frozenset(
    {
        "replicas",
        "containers",
        "podLabels",
        "podAnnotations",
        "service",
        "updateStrategy",
        "minReadySeconds",
        "initContainers",
        "securityContext",
        "automountServiceAccountToken",
        "drain",
        "restartedAt",
        "paused",
        "progressDeadlineSeconds",
        "revisionHistoryLimit",
        "disruptionBudget",
        "rolloutOnConfigChange",
    }
)
INTERPRETED_CONTAINER_FIELDS = frozenset(
    {"name", "image", "ports", "securityContext", "restartPolicy"}
)


def _pod_fields(value: Mapping[str, Any], interpreted: frozenset[str]) -> FrozenMap[Frozen]:
    """The fields of ``value`` passed on as written. An empty list or object is left out:
    to Kubernetes it is the same as absent, and leaving it out keeps the template hash
    the same either way."""
    return FrozenMap(
        (key, freeze(item))
        for key, item in value.items()
        if key not in interpreted and item not in ([], {})
    )


def _build(spec: Mapping[str, Any]) -> ExposedAppSpec:
    service = spec["service"]
    return ExposedAppSpec(
        replicas=spec["replicas"],
        containers=tuple(_container(c) for c in spec["containers"]),
        pod_fields=_pod_fields(spec, INTERPRETED_SPEC_FIELDS),
        pod_labels=FrozenMap(spec.get("podLabels", {})),
        pod_annotations=FrozenMap(spec.get("podAnnotations", {})),
        service=ServiceSpec(
            type=service["type"],
            annotations=FrozenMap(service.get("annotations", {})),
            labels=FrozenMap(service.get("labels", {})),
            session_affinity=service["sessionAffinity"],
            external_traffic_policy=service.get("externalTrafficPolicy"),
            publish_not_ready_addresses=service["publishNotReadyAddresses"],
        ),
        update_strategy=_update_strategy(spec["updateStrategy"]),
        init_containers=tuple(_container(c) for c in spec.get("initContainers", ())),
        security_context=_frozen(spec.get("securityContext", {})),
        automount_service_account_token=spec.get("automountServiceAccountToken", False),
        min_ready_seconds=spec["minReadySeconds"],
        drain=DrainPolicy(
            enabled=spec["drain"]["enabled"],
            delay_seconds=spec["drain"]["delaySeconds"],
            timeout_seconds=spec["drain"]["timeoutSeconds"],
        ),
        restarted_at=spec.get("restartedAt"),
        paused=spec["paused"],
        progress_deadline_seconds=spec["progressDeadlineSeconds"],
        revision_history_limit=spec["revisionHistoryLimit"],
        disruption_budget=_frozen(spec["disruptionBudget"]) if "disruptionBudget" in spec else None,
        rollout_on_config_change=spec["rolloutOnConfigChange"],
    )


def _update_strategy(strategy: Mapping[str, Any]) -> UpdateStrategy:
    if strategy["type"] == "Recreate":
        return _RECREATE
    rolling = strategy.get("rollingUpdate")
    if rolling is None:
        return _DEFAULT_ROLLING_UPDATE
    return UpdateStrategy("RollingUpdate", rolling["maxSurge"], rolling["maxUnavailable"])


def _container(c: Mapping[str, Any]) -> Container:
    return Container(
        name=c["name"],
        image=c["image"],
        ports=tuple(
            Port(
                name=p["name"],
                container_port=p["containerPort"],
                protocol=p["protocol"],
                service_port=_service_port(p),
                node_port=p.get("nodePort"),
                expose=p["expose"],
            )
            for p in c.get("ports", ())
        ),
        pod_fields=_pod_fields(_without_default_mount_fields(c), INTERPRETED_CONTAINER_FIELDS),
        security_context=_frozen(c.get("securityContext", {})),
        restart_policy=c.get("restartPolicy"),
    )


def _frozen(value: Mapping[str, Any]) -> FrozenMap[Frozen]:
    return cast(FrozenMap[Frozen], freeze(value))


def _without_default_mount_fields(container: Mapping[str, Any]) -> Mapping[str, Any]:
    """The container with readOnly: false and subPath: "" left out of its volumeMounts: to
    Kubernetes they are the same as absent, and leaving them out keeps the template hash
    (and so the Pods) the same whichever way the spec says it."""
    mounts = container.get("volumeMounts")
    if not mounts:
        return container
    trimmed = [
        {
            k: v
            for k, v in m.items()
            if not ((k == "readOnly" and v is False) or (k == "subPath" and v == ""))
        }
        for m in mounts
    ]
    return {**container, "volumeMounts": trimmed}


def _service_port(port: Mapping[str, Any]) -> int:
    return cast(int, port.get("servicePort", port["containerPort"]))


# --- the schema walk -----------------------------------------------------------------


def check_status(status: Mapping[str, Any]) -> None:
    """Raise SpecError naming the field if ``status`` does not fit the CRD's status schema.

    The same walk as the spec's: what the apiserver would refuse is refused here first.
    """
    _conform(status, crd.STATUS_SCHEMA, "status")


_KINDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "object": ("an object", lambda v: isinstance(v, Mapping)),
    "array": ("a list", lambda v: isinstance(v, list | tuple)),
    "string": ("a string", lambda v: isinstance(v, str)),
    "integer": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "boolean": ("true or false", lambda v: isinstance(v, bool)),
}

# What each of the CRD's patterns means, for people.
_PATTERNS = {
    crd.LABEL_VALUE: "a label value: at most 63 letters, digits, '-', '_' or '.', starting "
    "and ending with a letter or digit",
    crd.QUANTITY: "a quantity such as 250m, 128Mi or 2",
    crd.PERCENT: "a percentage from 0% to 100%",
    crd.ENV_NAME: "an environment variable name: letters, digits, '-', '_' and '.', not "
    "starting with a digit",
    crd.NO_SPACE: "without whitespace",
    crd.DNS1123_SUBDOMAIN: "a DNS subdomain: lowercase letters, digits, '-' and '.', "
    "starting and ending with a letter or digit",
    crd.IANA_SVC_NAME: "a port name: lowercase letters, digits and '-'",
    crd.REASON: "a CamelCase reason",
    crd.RFC3339: "an RFC 3339 time such as 2026-12-01T12:00:00Z",
}


def _conform(value: Any, schema: crd.Schema, path: str) -> Any:
    """A defaulted copy of value, checked against one node of the CRD's schema."""
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _KINDS["integer"][1](value)):
            raise SpecError(path, f"must be an integer or a string, got {_show(value)}")
    else:
        kind, check = _KINDS[schema["type"]]
        if not check(value):
            raise SpecError(path, f"must be {kind}, got {_show(value)}")
    if isinstance(value, Mapping):
        value = _conform_object(value, schema, path)
    elif isinstance(value, list | tuple):
        _check_size(len(value), schema, path, kind="Items")
        value = [_conform(v, schema["items"], f"{path}[{i}]") for i, v in enumerate(value)]
    elif isinstance(value, str):
        _check_string(value, schema, path)
    elif isinstance(value, int) and not isinstance(value, bool):
        _check_number(value, schema, path)
    for rule in schema.get("x-kubernetes-validations", ()):
        _TWINS[crd.rule_key(rule)](value, path)
    return value


def _conform_object(value: Mapping[str, Any], schema: crd.Schema, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    values = schema.get("additionalProperties")
    if values is not None:
        _check_size(len(value), schema, path, kind="Properties")
        for key, item in value.items():
            out[key] = _conform(item, values, f"{path}[{key}]")
        return out
    properties = schema["properties"]
    for key in value:
        if key not in properties:
            raise SpecError(_child(path, key), "unknown field: not part of the ExposedApp API")
    for key, sub in properties.items():
        # Like the apiserver: null is absent, and an absent field gets its default.
        item = value.get(key)
        if item is None and "default" in sub:
            item = copy.deepcopy(sub["default"])
        if item is not None:
            out[key] = _conform(item, sub, _child(path, key))
    for key in schema.get("required", ()):
        if key not in out:
            raise SpecError(_child(path, key), "required value")
    return out


def _check_size(n: int, schema: crd.Schema, path: str, *, kind: str) -> None:
    """minItems/maxItems (kind "Items") or minProperties/maxProperties ("Properties")."""
    noun = "item" if kind == "Items" else "entry"
    if n < schema.get(f"min{kind}", 0):
        raise SpecError(path, f"must have at least {_count(schema[f'min{kind}'], noun)}, got {n}")
    if n > schema[f"max{kind}"]:
        raise SpecError(path, f"must have at most {_count(schema[f'max{kind}'], noun)}, got {n}")


def _check_string(value: str, schema: crd.Schema, path: str) -> None:
    if "enum" in schema and value not in schema["enum"]:
        raise SpecError(path, f"must be one of {_or(schema['enum'])}, got {_show(value)}")
    if len(value) < schema.get("minLength", 0):
        raise SpecError(path, "must not be empty")
    if len(value) > schema["maxLength"]:
        raise SpecError(path, f"must be at most {schema['maxLength']} characters, got {len(value)}")
    pattern = schema.get("pattern")
    if pattern and not re.search(pattern, value):
        raise SpecError(path, f"must be {_PATTERNS[pattern]}, got {_show(value)}")


def _check_number(value: int, schema: crd.Schema, path: str) -> None:
    if value < schema["minimum"]:
        raise SpecError(path, f"must be at least {schema['minimum']}, got {value}")
    if "maximum" in schema and value > schema["maximum"]:
        raise SpecError(path, f"must be at most {schema['maximum']}, got {value}")


# --- the CEL rules' twins ------------------------------------------------------------
# One function per rule key of crd.py; each gets the value the rule's `self` is bound to
# and its path. Messages follow the CEL ones, with the exact element named.

Twin = Callable[[Any, str], None]
_SHARED = "(ports share the Pod's network namespace)"


def _dns_label(value: str, path: str) -> None:
    if not re.search(crd.DNS1123_LABEL, value):
        raise SpecError(
            path,
            f"{_show(value)} must be a DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
        )


def _reserved_keys(what: str) -> Twin:
    def check(value: Mapping[str, str], path: str) -> None:
        # Kubernetes checks annotation keys case-insensitively, label keys as they are.
        fold = str.lower if what == "annotations" else str
        for key in value:
            if key.startswith(crd.RESERVED_KEY_PREFIXES):
                raise SpecError(
                    f"{path}[{key}]",
                    f"key {_show(key)} uses a reserved prefix "
                    f"({', '.join(crd.RESERVED_KEY_PREFIXES)}): the operator or Kubernetes "
                    f"owns these {what}",
                )
            problem = _qualified_name_problem(fold(key))
            if problem:
                raise SpecError(f"{path}[{key}]", f"key {_show(key)} {problem}")

    return check


def _qualified_name_problem(key: str) -> str | None:
    """Why key is not a Kubernetes qualified name (label or annotation key), or None."""
    prefix, _, name = key.rpartition("/")
    if prefix and (
        len(prefix) > 253
        or not all(re.search(crd.DNS1123_LABEL, part) for part in prefix.split("."))
    ):
        return "has a prefix that is not a DNS subdomain"
    if not 0 < len(name) <= 63 or not re.search(crd.LABEL_VALUE, name):
        return (
            "is not a qualified name: at most 63 letters, digits, '-', '_' or '.' after "
            "an optional DNS-subdomain prefix and '/', starting and ending with a letter or "
            "digit"
        )
    return None


def _relative_path(value: str, path: str) -> None:
    if value.startswith("/") or re.search("(^|/)[.][.](/|$)", value):
        raise SpecError(path, f"must be a relative path without '..', got {_show(value)}")


def _absolute_path(value: str, path: str) -> None:
    if not value.startswith("/"):
        raise SpecError(path, f"must be an absolute path, got {_show(value)}")


def _one_of(names: tuple[str, ...], what: str, extra: str = "") -> Twin:
    def check(value: Mapping[str, Any], path: str) -> None:
        if sum(n in value for n in names) != 1:
            raise SpecError(path, f"{what} must set exactly one of {', '.join(names)}{extra}")

    return check


def _volume_source(value: Mapping[str, Any], path: str) -> None:
    _one_of(
        crd.VOLUME_SOURCES,
        f"volume {_show(value['name'])}",
        " (hostPath and other volume types are not supported)",
    )(value, path)


def _env_value(value: Mapping[str, Any], path: str) -> None:
    if "value" in value and "valueFrom" in value:
        raise SpecError(path, "set value or valueFrom, not both")


def _port_name(value: str, path: str) -> None:
    if not (
        re.search(crd.IANA_SVC_NAME, value) and re.search("[a-z]", value) and "--" not in value
    ):
        raise SpecError(
            path,
            f"port name {_show(value)} is not an IANA service name: use at most 15 lowercase "
            "letters, digits and '-', with at least one letter and no leading, trailing or "
            "double '-' (e.g. http, metrics, grpc-api)",
        )


def _port_expose(value: Mapping[str, Any], path: str) -> None:
    for key in ("servicePort", "nodePort"):
        if not value["expose"] and key in value:
            raise SpecError(
                f"{path}.{key}",
                "servicePort and nodePort need expose: true (this port is pod-only)",
            )


def _probe_port(probe: str, handler: str) -> Twin:
    def check(container: Mapping[str, Any], path: str) -> None:
        port = container.get(probe, {}).get(handler, {}).get("port")
        if isinstance(port, str) and all(p["name"] != port for p in container.get("ports", ())):
            raise SpecError(
                f"{path}.{probe}.{handler}.port",
                f"{_show(port)} names no port of container {_show(container['name'])}",
            )

    return check


def _liveness_threshold(container: Mapping[str, Any], path: str) -> None:
    threshold = container.get("livenessProbe", {}).get("successThreshold", 1)
    if threshold != 1:
        raise SpecError(
            f"{path}.livenessProbe.successThreshold",
            f"must be 1 for a liveness probe, got {threshold}",
        )


def _unique(items: list[Mapping[str, Any]], field: str, what: str, path: str) -> None:
    seen: dict[Any, int] = {}
    for i, item in enumerate(items):
        first = seen.setdefault(item[field], i)
        if first != i:
            raise SpecError(
                f"{path}[{i}].{field}",
                f"{what} {_show(item[field])} is already used by {path}[{first}]",
            )


def _mount_paths(container: Mapping[str, Any], path: str) -> None:
    _unique(container.get("volumeMounts", []), "mountPath", "mountPath", f"{path}.volumeMounts")


def _pod_ports(
    containers: list[Mapping[str, Any]], path: str
) -> Iterator[tuple[str, Mapping[str, Any], str]]:
    """(container name, port, port path) of every port of one list of containers."""
    for i, c in enumerate(containers):
        for j, p in enumerate(c.get("ports", ())):
            yield c["name"], p, f"{path}[{i}].ports[{j}]"


def _all_pod_ports(
    spec: Mapping[str, Any], path: str
) -> Iterator[tuple[str, Mapping[str, Any], str]]:
    """(container name, port, port path) of every port of the Pod: containers, sidecars."""
    yield from _pod_ports(spec["containers"], f"{path}.containers")
    yield from _pod_ports(spec.get("initContainers", []), f"{path}.initContainers")


def _all_containers(spec: Mapping[str, Any], path: str) -> Iterator[tuple[Mapping[str, Any], str]]:
    """(container, its path) of every container and init container."""
    for field in ("containers", "initContainers"):
        for i, c in enumerate(spec.get(field, ())):
            yield c, f"{path}.{field}[{i}]"


@dataclass(frozen=True)
class _PortRule:
    """What makes two ports of the Pod's one port space clash, and how to say so."""

    key: Callable[[Mapping[str, Any]], Any]
    field: str
    describe: Callable[[Mapping[str, Any]], str]
    why: str
    only: Callable[[Mapping[str, Any]], bool] = lambda p: True

    def clash(
        self, port: Mapping[str, Any], port_path: str, owner: str, first: Mapping[str, Any]
    ) -> SpecError:
        by = f"container {_show(owner)}"
        if self.field != "name":
            by = f"port {_show(first['name'])} of {by}"
        return SpecError(
            f"{port_path}.{self.field}", f"{self.describe(port)} is already used by {by} {self.why}"
        )


def _pod_unique(rule: _PortRule) -> Twin:
    """No two ports of one list of containers clash."""

    def check(containers: list[Mapping[str, Any]], path: str) -> None:
        seen: dict[Any, tuple[str, Mapping[str, Any]]] = {}
        for container, port, port_path in _pod_ports(containers, path):
            if not rule.only(port):
                continue
            owner, first = seen.setdefault(rule.key(port), (container, port))
            if first is not port:
                raise rule.clash(port, port_path, owner, first)

    return check


def _sidecar_apart(rule: _PortRule) -> Twin:
    """No sidecar port clashes with a port of the app's containers."""

    def check(spec: Mapping[str, Any], path: str) -> None:
        taken = {
            rule.key(p): (c, p)
            for c, p, _ in _pod_ports(spec["containers"], f"{path}.containers")
            if rule.only(p)
        }
        sidecars = spec.get("initContainers", [])
        for _, port, port_path in _pod_ports(sidecars, f"{path}.initContainers"):
            if rule.only(port) and rule.key(port) in taken:
                raise rule.clash(port, port_path, *taken[rule.key(port)])

    return check


def _container_names(containers: list[Mapping[str, Any]], path: str) -> None:
    _unique(containers, "name", "container name", path)


def _exposed_port_required(spec: Mapping[str, Any], path: str) -> None:
    if not any(p["expose"] for _, p, _ in _all_pod_ports(spec, path)):
        raise SpecError(
            f"{path}.containers",
            "at least one container port must be exposed: the Service needs a port (expose "
            "defaults to true)",
        )


def _external_traffic_policy(service: Mapping[str, Any], path: str) -> None:
    if "externalTrafficPolicy" in service and service["type"] not in _NODE_PORT_TYPES:
        raise SpecError(
            f"{path}.externalTrafficPolicy",
            "externalTrafficPolicy needs service.type NodePort or LoadBalancer, but "
            f"service.type is {service['type']}",
        )


def _progress_deadline(spec: Mapping[str, Any], path: str) -> None:
    if spec["progressDeadlineSeconds"] <= spec["minReadySeconds"]:
        raise SpecError(
            f"{path}.progressDeadlineSeconds",
            f"must be greater than minReadySeconds ({spec['minReadySeconds']}), got "
            f"{spec['progressDeadlineSeconds']}: a Pod could never become available in time",
        )


def _rolling_update_zero(value: Mapping[str, Any], path: str) -> None:
    if all(value[k] in (0, "0%") for k in ("maxSurge", "maxUnavailable")):
        raise SpecError(
            path,
            "maxSurge and maxUnavailable cannot both be 0: the rollout could not make progress",
        )


def _rolling_update_type(value: Mapping[str, Any], path: str) -> None:
    if value["type"] != "RollingUpdate" and "rollingUpdate" in value:
        raise SpecError(
            f"{path}.rollingUpdate", "rollingUpdate is only allowed with type RollingUpdate"
        )


def _volume_names(volumes: list[Mapping[str, Any]], path: str) -> None:
    _unique(volumes, "name", "volume name", path)


_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


def _node_port_type(spec: Mapping[str, Any], path: str) -> None:
    kind = spec["service"]["type"]
    if kind in _NODE_PORT_TYPES:
        return
    for _, port, port_path in _all_pod_ports(spec, path):
        if "nodePort" in port:
            raise SpecError(
                f"{port_path}.nodePort",
                f"nodePort needs service.type NodePort or LoadBalancer, but service.type is {kind}",
            )


def _volume_mounts_declared(spec: Mapping[str, Any], path: str) -> None:
    declared = {v["name"] for v in spec.get("volumes", ())}
    for c, container_path in _all_containers(spec, path):
        for j, m in enumerate(c.get("volumeMounts", ())):
            if m["name"] not in declared:
                raise SpecError(
                    f"{container_path}.volumeMounts[{j}].name",
                    f"volume {_show(m['name'])} is not declared in spec.volumes",
                )


def _seccomp_localhost(profile: Mapping[str, Any], path: str) -> None:
    if (profile["type"] == "Localhost") != ("localhostProfile" in profile):
        raise SpecError(
            f"{path}.localhostProfile",
            "localhostProfile is required with type Localhost, and only then",
        )


def _opted_out_of_non_root(security: Mapping[str, Any]) -> bool:
    return security.get("runAsNonRoot") is False


def _root_needs_opt_out(security: Mapping[str, Any], path: str) -> None:
    if security.get("runAsUser") == 0 and not _opted_out_of_non_root(security):
        raise SpecError(
            f"{path}.runAsUser",
            "runAsUser 0 (root) needs runAsNonRoot: false: without it the kubelet refuses "
            "to start the container",
        )


def _container_root_needs_opt_out(spec: Mapping[str, Any], path: str) -> None:
    if _opted_out_of_non_root(spec.get("securityContext", {})):
        return
    for c, container_path in _all_containers(spec, path):
        if c.get("securityContext", {}).get("runAsUser") == 0:
            raise SpecError(
                f"{container_path}.securityContext.runAsUser",
                "runAsUser 0 (root) needs spec.securityContext.runAsNonRoot: false",
            )


def _lifecycle_port(hook: str) -> Twin:
    def check(container: Mapping[str, Any], path: str) -> None:
        port = container.get("lifecycle", {}).get(hook, {}).get("httpGet", {}).get("port")
        if isinstance(port, str) and all(p["name"] != port for p in container.get("ports", ())):
            raise SpecError(
                f"{path}.lifecycle.{hook}.httpGet.port",
                f"{_show(port)} names no port of container {_show(container['name'])}",
            )

    return check


def _startup_threshold(container: Mapping[str, Any], path: str) -> None:
    threshold = container.get("startupProbe", {}).get("successThreshold", 1)
    if threshold != 1:
        raise SpecError(
            f"{path}.startupProbe.successThreshold",
            f"must be 1 for a startup probe, got {threshold}",
        )


def _init_ports_need_sidecar(container: Mapping[str, Any], path: str) -> None:
    if "restartPolicy" not in container and container.get("ports"):
        raise SpecError(
            f"{path}.ports",
            f"init container {_show(container['name'])} declares ports, which only a sidecar "
            "(restartPolicy: Always) can: an init container ends before the app starts",
        )


def _init_probes_need_sidecar(container: Mapping[str, Any], path: str) -> None:
    if "restartPolicy" in container:
        return
    for field in ("readinessProbe", "livenessProbe", "startupProbe", "lifecycle"):
        if field in container:
            raise SpecError(
                f"{path}.{field}",
                f"{field} needs a sidecar (restartPolicy: Always): init container "
                f"{_show(container['name'])} runs to completion",
            )


def _toleration_exists_no_value(toleration: Mapping[str, Any], path: str) -> None:
    if toleration.get("operator") == "Exists" and toleration.get("value"):
        raise SpecError(f"{path}.value", "a toleration with operator Exists takes no value")


def _toleration_empty_key(toleration: Mapping[str, Any], path: str) -> None:
    if not toleration.get("key") and toleration.get("operator") != "Exists":
        raise SpecError(f"{path}.operator", "a toleration without a key needs operator Exists")


def _toleration_seconds(toleration: Mapping[str, Any], path: str) -> None:
    if "tolerationSeconds" in toleration and toleration.get("effect") != "NoExecute":
        raise SpecError(f"{path}.tolerationSeconds", "tolerationSeconds needs effect NoExecute")


def _min_domains(constraint: Mapping[str, Any], path: str) -> None:
    if "minDomains" in constraint and constraint["whenUnsatisfiable"] != "DoNotSchedule":
        raise SpecError(f"{path}.minDomains", "minDomains needs whenUnsatisfiable DoNotSchedule")


def _requirement_values(requirement: Mapping[str, Any], path: str) -> None:
    """A label or node selector requirement's values, as its operator wants them."""
    operator, values = requirement["operator"], requirement.get("values", [])
    if operator in ("In", "NotIn"):
        ok, needs = bool(values), "needs at least one value"
    elif operator in ("Gt", "Lt"):
        ok = len(values) == 1 and re.fullmatch("-?[0-9]+", values[0]) is not None
        needs = "needs exactly one integer value"
    else:
        ok, needs = not values, "takes no values"
    if not ok:
        raise SpecError(f"{path}.values", f"operator {operator} {needs}")


def _init_names_apart(spec: Mapping[str, Any], path: str) -> None:
    names = {c["name"] for c in spec["containers"]}
    for i, c in enumerate(spec.get("initContainers", ())):
        if c["name"] in names:
            raise SpecError(
                f"{path}.initContainers[{i}].name",
                f"container name {_show(c['name'])} is already used by a container",
            )


def _endpoint(number: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda p: f"{p[number] if number in p else p['containerPort']}/{p['protocol']}"


# The Pod's one port space: within a list of containers, and sidecars against containers.
_PORT_SPACE = {
    "port-names": _PortRule(
        lambda p: p["name"], "name", lambda p: f"port name {_show(p['name'])}", _SHARED
    ),
    "container-ports": _PortRule(
        lambda p: (p["containerPort"], p["protocol"]),
        "containerPort",
        _endpoint("containerPort"),
        _SHARED,
    ),
    "service-ports": _PortRule(
        lambda p: (_service_port(p), p["protocol"]),
        "servicePort",
        lambda p: f"Service port {_endpoint('servicePort')(p)}",
        "(servicePort defaults to containerPort): set a distinct servicePort, or expose: false",
        only=lambda p: bool(p["expose"]),
    ),
    "node-ports": _PortRule(
        lambda p: (p["nodePort"], p["protocol"]),
        "nodePort",
        lambda p: f"nodePort {_endpoint('nodePort')(p)}",
        "(each nodePort/protocol opens one port on every node)",
        only=lambda p: "nodePort" in p,
    ),
}

_TWINS: dict[str, Twin] = {
    "dns-label": _dns_label,
    "reserved-labels-keys": _reserved_keys("labels"),
    "reserved-annotations-keys": _reserved_keys("annotations"),
    "relative-path": _relative_path,
    "mount-path-absolute": _absolute_path,
    "env-source-one-of": _one_of(crd.ENV_SOURCES, "valueFrom"),
    "env-value-or-value-from": _env_value,
    "probe-handler-one-of": _one_of(crd.PROBE_HANDLERS, "a probe"),
    "downward-item-one-of": _one_of(("fieldRef", "resourceFieldRef"), "a downwardAPI item"),
    "projection-one-of": _one_of(crd.PROJECTION_SOURCES, "a projection"),
    "volume-source-one-of": _volume_source,
    "port-name-iana": _port_name,
    "port-expose-only": _port_expose,
    **{
        f"{probe}-{handler}-port-declared": _probe_port(probe, handler)
        for probe in crd.PROBES
        for handler in ("httpGet", "tcpSocket")
    },
    **{
        f"lifecycle-{hook}-port-declared": _lifecycle_port(hook)
        for hook in ("postStart", "preStop")
    },
    "startup-success-threshold": _startup_threshold,
    "lifecycle-handler-one-of": _one_of(crd.LIFECYCLE_HANDLERS, "a lifecycle handler"),
    "env-from-one-of": _one_of(crd.ENV_FROM_SOURCES, "an envFrom entry"),
    "seccomp-localhost-profile": _seccomp_localhost,
    "root-needs-opt-out": _root_needs_opt_out,
    "container-root-needs-opt-out": _container_root_needs_opt_out,
    "init-container-ports-need-sidecar": _init_ports_need_sidecar,
    "init-container-probes-need-sidecar": _init_probes_need_sidecar,
    "init-container-names-apart": _init_names_apart,
    "toleration-exists-no-value": _toleration_exists_no_value,
    "toleration-empty-key-exists": _toleration_empty_key,
    "toleration-seconds-no-execute": _toleration_seconds,
    "min-domains-needs-do-not-schedule": _min_domains,
    "label-requirement-values": _requirement_values,
    "node-requirement-values": _requirement_values,
    "liveness-success-threshold": _liveness_threshold,
    "mount-paths-unique": _mount_paths,
    "container-names-unique": _container_names,
    **{f"{name}-unique": _pod_unique(rule) for name, rule in _PORT_SPACE.items()},
    **{f"sidecar-{name}-apart": _sidecar_apart(rule) for name, rule in _PORT_SPACE.items()},
    "exposed-port-required": _exposed_port_required,
    "external-traffic-policy-needs-type": _external_traffic_policy,
    "progress-deadline-above-min-ready": _progress_deadline,
    "disruption-budget-one-of": _one_of(("minAvailable", "maxUnavailable"), "disruptionBudget"),
    "rolling-update-not-both-zero": _rolling_update_zero,
    "rolling-update-needs-type": _rolling_update_type,
    "volume-names-unique": _volume_names,
    "node-port-needs-type": _node_port_type,
    "volume-mount-declared": _volume_mounts_declared,
    "name-length": lambda body, path: validate_name(body["metadata"]["name"]),
    "name-dns1035": lambda body, path: validate_name(body["metadata"]["name"]),
}


# --- small helpers -------------------------------------------------------------------


def _child(path: str, key: str) -> str:
    return f"{path}.{key}"


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return json.dumps(value)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {_PLURALS[noun]}"


_PLURALS = {"item": "items", "entry": "entries"}


def _or(options: Iterable[str]) -> str:
    return ", ".join(json.dumps(o) for o in options)
