"""The ExposedApp CustomResourceDefinition, as data: the one source of truth for the API.

The model (model.py) validates and defaults a spec by walking SPEC_SCHEMA, so bounds,
enums, patterns and defaults cannot drift between the apiserver and the operator.
crds/exposedapp.dev_exposedapps.yaml is generated from crd():

    python -m exposedapp.crd > crds/exposedapp.dev_exposedapps.yaml

and a unit test fails when the file is stale. The CEL rules (x-kubernetes-validations)
say what a schema alone cannot; each has a Python twin in model.py, so `exposedapp render`
offline and an apiserver without CEL give the same answers.

CEL cost: every string, list and map has a bound, so the apiserver's static cost estimate
stays under its limits; map keys cannot be bounded, so no rule runs a regex over them.
Rules use only CEL available since Kubernetes 1.30 (no two-variable comprehensions, no
lists.flatten, no cel.bind), hence some repetition inside expressions.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

__all__ = [
    "DNS1035_LABEL",
    "DNS1123_LABEL",
    "ENV_NAME",
    "ENV_SOURCES",
    "GROUP",
    "IANA_SVC_NAME",
    "KIND",
    "LABEL_VALUE",
    "MAX_NAME_LENGTH",
    "NO_SPACE",
    "PERCENT",
    "PLURAL",
    "PROBE_HANDLERS",
    "PROJECTION_SOURCES",
    "QUANTITY",
    "REASON",
    "RESERVED_KEY_PREFIXES",
    "ROOT_SCHEMA",
    "SPEC_SCHEMA",
    "STATUS_SCHEMA",
    "VERSION",
    "VOLUME_SOURCES",
    "Schema",
    "crd",
    "crd_yaml",
    "rule_key",
]

Schema = dict[str, Any]

GROUP = "exposedapp.dev"
VERSION = "v1alpha1"
KIND = "ExposedApp"
PLURAL = "exposedapps"

# Pods are named <app>-<hash10>-<suffix5> and must fit in a DNS label (63), which leaves
# 63 - 17 = 46 for the app's name; the Service is named after the app.
MAX_NAME_LENGTH = 63 - len("-") - 10 - len("-") - 5

DNS1123_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1035_LABEL = "^[a-z]([-a-z0-9]*[a-z0-9])?$"
# An IANA service name also needs a letter and no "--"; rules below check those two.
IANA_SVC_NAME = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
LABEL_VALUE = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
QUANTITY = r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$"
PERCENT = "^(100|[1-9]?[0-9])%$"
ENV_NAME = "^[-._a-zA-Z][-._a-zA-Z0-9]*$"
NO_SPACE = r"^\S+$"
REASON = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

# Keys the operator owns on Pods and Services (exposedapp.dev/) or Kubernetes reserves.
RESERVED_KEY_PREFIXES = ("exposedapp.dev/", "kubernetes.io/", "k8s.io/")
VOLUME_SOURCES = (
    "configMap",
    "secret",
    "emptyDir",
    "persistentVolumeClaim",
    "projected",
    "downwardAPI",
)
PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
ENV_SOURCES = ("configMapKeyRef", "secretKeyRef", "fieldRef", "resourceFieldRef")

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


# --- schema builders -----------------------------------------------------------------


def _node(base: Schema, description: str | None, rules: Sequence[Schema]) -> Schema:
    if description:
        base = {"description": description, **base}
    if rules:
        base["x-kubernetes-validations"] = list(rules)
    return base


def _obj(
    properties: Mapping[str, Schema],
    *,
    required: Sequence[str] = (),
    default: Any = None,
    rules: Sequence[Schema] = (),
    description: str | None = None,
) -> Schema:
    node: Schema = {"type": "object"}
    if required:
        node["required"] = list(required)
    if default is not None:
        node["default"] = default
    node["properties"] = dict(properties)
    return _node(node, description, rules)


def _str(
    max_length: int,
    *,
    min_length: int | None = None,
    pattern: str | None = None,
    enum: Sequence[str] | None = None,
    default: str | None = None,
    fmt: str | None = None,
    rules: Sequence[Schema] = (),
    description: str | None = None,
) -> Schema:
    node: Schema = {"type": "string"}
    if fmt:
        node["format"] = fmt
    if enum is not None:
        node["enum"] = list(enum)
    if default is not None:
        node["default"] = default
    if min_length is not None:
        node["minLength"] = min_length
    node["maxLength"] = max_length
    if pattern:
        node["pattern"] = pattern
    return _node(node, description, rules)


def _int(
    minimum: int,
    maximum: int,
    *,
    default: int | None = None,
    fmt: str = "int32",
    description: str | None = None,
) -> Schema:
    node: Schema = {"type": "integer", "format": fmt}
    if default is not None:
        node["default"] = default
    node["minimum"] = minimum
    if maximum < INT64_MAX:  # the apiserver refuses int64's own maximum as a bound
        node["maximum"] = maximum
    return _node(node, description, ())


def _bool(*, default: bool | None = None, description: str | None = None) -> Schema:
    node: Schema = {"type": "boolean"}
    if default is not None:
        node["default"] = default
    return _node(node, description, ())


def _list(
    items: Schema,
    max_items: int,
    *,
    min_items: int | None = None,
    rules: Sequence[Schema] = (),
    description: str | None = None,
) -> Schema:
    node: Schema = {"type": "array"}
    if min_items is not None:
        node["minItems"] = min_items
    node["maxItems"] = max_items
    node["items"] = items
    return _node(node, description, rules)


def _map(
    values: Schema,
    max_properties: int,
    *,
    rules: Sequence[Schema] = (),
    description: str | None = None,
) -> Schema:
    node: Schema = {
        "type": "object",
        "maxProperties": max_properties,
        "additionalProperties": values,
    }
    return _node(node, description, rules)


def _int_or_str(
    minimum: int,
    maximum: int,
    max_length: int,
    pattern: str,
    *,
    default: int | str | None = None,
    description: str | None = None,
) -> Schema:
    # minimum/maximum apply to the integer form only, pattern/maxLength to the string form.
    node: Schema = {"x-kubernetes-int-or-string": True}
    if default is not None:
        node["default"] = default
    node.update(minimum=minimum, maximum=maximum, maxLength=max_length, pattern=pattern)
    return _node(node, description, ())


# The key of every rule, by (rule, message): the model finds each rule's Python twin by
# its key. Keys stay out of the CRD (the apiserver would refuse an unknown field).
_RULE_KEYS: dict[tuple[str, str], str] = {}


def _rule(
    key: str,
    rule: str,
    message: str,
    *,
    message_expression: str | None = None,
    field_path: str | None = None,
) -> Schema:
    if _RULE_KEYS.setdefault((rule, message), key) != key:
        raise ValueError(f"one rule, two keys: {key} and {_RULE_KEYS[rule, message]}")
    out: Schema = {"rule": rule, "message": message}
    if message_expression:
        out["messageExpression"] = message_expression
    if field_path:
        out["fieldPath"] = field_path
    return out


def _one_of(names: Sequence[str]) -> str:
    """CEL: exactly one of the named optional fields of self is set."""
    return "[" + ", ".join(f"has(self.{n})" for n in names) + "].filter(x, x).size() == 1"


# --- spec ----------------------------------------------------------------------------

_NAME_LABEL_RULE = _rule(
    "dns-label",
    f"self.matches('{DNS1123_LABEL}')",
    "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending "
    "with a letter or digit",
    message_expression="'\"' + self + '\" must be a DNS-1123 label: lowercase letters, "
    "digits and \\'-\\', starting and ending with a letter or digit'",
)


def _dns_label(description: str) -> Schema:
    return _str(63, min_length=1, rules=[_NAME_LABEL_RULE], description=description)


def _reserved_keys_rule(what: str) -> Schema:
    reserved = " || ".join(f"k.startsWith('{p}')" for p in RESERVED_KEY_PREFIXES)
    prefixes = ", ".join(RESERVED_KEY_PREFIXES)
    return _rule(
        f"reserved-{what}-keys",
        f"!self.exists(k, {reserved})",
        f"{what} keys must not use the reserved prefixes {prefixes}",
        message_expression=f"'key \"' + self.filter(k, {reserved})[0] + '\" uses a reserved "
        f"prefix ({prefixes}): the operator or Kubernetes owns these {what}'",
    )


def _labels(description: str) -> Schema:
    return _map(
        _str(63, pattern=LABEL_VALUE),
        64,
        rules=[_reserved_keys_rule("labels")],
        description=description,
    )


def _annotations(description: str) -> Schema:
    return _map(
        _str(65536), 64, rules=[_reserved_keys_rule("annotations")], description=description
    )


_PORT_NUMBER = _int(1, 65535)
_NAMED_OR_NUMBERED_PORT = _int_or_str(
    1,
    65535,
    15,
    IANA_SVC_NAME,
    description="A port number, or the name of a port declared in this container's ports.",
)
_MODE = _int(0, 0o777, description="File mode bits, e.g. 0644 (decimal 420).")
_QUANTITY = _int_or_str(0, INT64_MAX, 64, QUANTITY)
_RELATIVE_PATH_RULES = [
    _rule(
        "relative-path",
        "!self.startsWith('/') && !self.matches('(^|/)[.][.](/|$)')",
        "must be a relative path without '..'",
    )
]
_KEY_TO_PATH = _obj(
    {
        "key": _str(253, min_length=1),
        "path": _str(253, min_length=1, rules=_RELATIVE_PATH_RULES),
        "mode": _MODE,
    },
    required=["key", "path"],
)
_OBJECT_FIELD = _obj(
    {"apiVersion": _str(64), "fieldPath": _str(256, min_length=1)}, required=["fieldPath"]
)
_RESOURCE_FIELD = _obj(
    {
        "containerName": _str(63),
        "resource": _str(64, min_length=1),
        "divisor": _QUANTITY,
    },
    required=["resource"],
)


def _key_ref(name_field: str) -> Schema:
    return _obj(
        {name_field: _str(253, min_length=1), "key": _str(253, min_length=1), "optional": _bool()},
        required=[name_field, "key"],
    )


_ENV_VAR = _obj(
    {
        "name": _str(256, min_length=1, pattern=ENV_NAME),
        "value": _str(32768),
        "valueFrom": _obj(
            {
                "configMapKeyRef": _key_ref("name"),
                "secretKeyRef": _key_ref("name"),
                "fieldRef": _OBJECT_FIELD,
                "resourceFieldRef": _RESOURCE_FIELD,
            },
            rules=[
                _rule(
                    "env-source-one-of",
                    _one_of(ENV_SOURCES),
                    "valueFrom must set exactly one of " + ", ".join(ENV_SOURCES),
                )
            ],
        ),
    },
    required=["name"],
    rules=[
        _rule(
            "env-value-or-value-from",
            "!(has(self.value) && has(self.valueFrom))",
            "set value or valueFrom, not both",
        )
    ],
)

_PROBE = _obj(
    {
        "exec": _obj({"command": _list(_str(4096), 64, min_items=1)}, required=["command"]),
        # No `host` on httpGet and tcpSocket: probing another host from the kubelet is
        # what the Pod Security "baseline" profile forbids.
        "httpGet": _obj(
            {
                "path": _str(2048),
                "port": _NAMED_OR_NUMBERED_PORT,
                "scheme": _str(5, enum=["HTTP", "HTTPS"]),
                "httpHeaders": _list(
                    _obj(
                        {"name": _str(256, min_length=1), "value": _str(4096)},
                        required=["name", "value"],
                    ),
                    16,
                ),
            },
            required=["port"],
        ),
        "tcpSocket": _obj({"port": _NAMED_OR_NUMBERED_PORT}, required=["port"]),
        "grpc": _obj({"port": _PORT_NUMBER, "service": _str(256)}, required=["port"]),
        "initialDelaySeconds": _int(0, 3600),
        "periodSeconds": _int(1, 3600),
        "timeoutSeconds": _int(1, 3600),
        "successThreshold": _int(1, 100),
        "failureThreshold": _int(1, 100),
    },
    rules=[
        _rule(
            "probe-handler-one-of",
            _one_of(PROBE_HANDLERS),
            "a probe must set exactly one of " + ", ".join(PROBE_HANDLERS),
        )
    ],
)

_PORT = _obj(
    {
        "name": _str(
            15,
            min_length=1,
            rules=[
                _rule(
                    "port-name-iana",
                    f"self.matches('{IANA_SVC_NAME}') && self.matches('[a-z]') "
                    "&& !self.contains('--')",
                    "must be an IANA service name: at most 15 lowercase letters, digits "
                    "and '-', with at least one letter and no leading, trailing or double '-'",
                    message_expression="'port name \"' + self + '\" is not an IANA service "
                    "name: use at most 15 lowercase letters, digits and \\'-\\', with at "
                    "least one letter and no leading, trailing or double \\'-\\' "
                    "(e.g. http, metrics, grpc-api)'",
                )
            ],
            description="IANA service name of the port, unique across all containers of "
            "the Pod; it names the Service port and can be a probe's port.",
        ),
        "containerPort": _int(
            1, 65535, description="The port the container listens on, in the Pod's port space."
        ),
        "protocol": _str(4, enum=["TCP", "UDP", "SCTP"], default="TCP"),
        "servicePort": _int(
            1,
            65535,
            description="The port clients dial on the Service. Defaults to containerPort "
            "(applied by the operator and shown in status.service.ports).",
        ),
        "nodePort": _int(
            30000,
            32767,
            description="Pin the port opened on every node; only with service.type "
            "NodePort or LoadBalancer. Unset: Kubernetes allocates one and it is kept.",
        ),
        "expose": _bool(
            default=True,
            description="false for a pod-only port: declared on the container, not on the Service.",
        ),
    },
    required=["name", "containerPort"],
    rules=[
        _rule(
            "port-expose-only",
            "self.expose || (!has(self.servicePort) && !has(self.nodePort))",
            "servicePort and nodePort need expose: true (this port is pod-only)",
        )
    ],
)

_VOLUME_MOUNT = _obj(
    {
        "name": _str(63, min_length=1, description="The name of a volume in spec.volumes."),
        "mountPath": _str(
            1024,
            min_length=1,
            rules=[
                _rule("mount-path-absolute", "self.startsWith('/')", "must be an absolute path")
            ],
        ),
        "readOnly": _bool(),
        "subPath": _str(1024, rules=_RELATIVE_PATH_RULES),
    },
    required=["name", "mountPath"],
)


def _probe_port_rule(probe: str, handler: str) -> Schema:
    port = f"self.{probe}.{handler}.port"
    return _rule(
        f"{probe}-{handler}-port-declared",
        f"!has(self.{probe}) || !has(self.{probe}.{handler}) || type({port}) == int "
        f"|| (has(self.ports) && self.ports.exists(p, p.name == {port}))",
        f"{probe}.{handler}.port names no port of this container",
        message_expression=f"'{probe}.{handler}.port names no port of container \"' + "
        "self.name + '\"'",
        field_path=f".{probe}.{handler}.port",
    )


_CONTAINER = _obj(
    {
        "name": _dns_label("Container name, unique in the Pod."),
        "image": _str(1024, min_length=1, pattern=NO_SPACE),
        "command": _list(_str(4096), 64),
        "args": _list(_str(4096), 64),
        "env": _list(_ENV_VAR, 128),
        "resources": _obj(
            {
                "requests": _map(_QUANTITY, 16),
                "limits": _map(_QUANTITY, 16),
            }
        ),
        "readinessProbe": _PROBE,
        "livenessProbe": _PROBE,
        "volumeMounts": _list(_VOLUME_MOUNT, 32),
        "ports": _list(
            _PORT,
            32,
            description="The ports this container listens on. Containers of a Pod share one "
            "port space: names and containerPort/protocol pairs are unique across the Pod.",
        ),
    },
    required=["name", "image"],
    rules=[
        *(
            _probe_port_rule(p, h)
            for p in ("readinessProbe", "livenessProbe")
            for h in ("httpGet", "tcpSocket")
        ),
        _rule(
            "liveness-success-threshold",
            "!has(self.livenessProbe) || !has(self.livenessProbe.successThreshold) "
            "|| self.livenessProbe.successThreshold == 1",
            "livenessProbe.successThreshold must be 1",
            field_path=".livenessProbe.successThreshold",
        ),
        _rule(
            "mount-paths-unique",
            "!has(self.volumeMounts) || self.volumeMounts.all(m, "
            "self.volumeMounts.exists_one(n, n.mountPath == m.mountPath))",
            "each volumeMount needs its own mountPath",
            field_path=".volumeMounts",
        ),
    ],
)


def _pod_count(cond: str) -> str:
    """CEL over the containers list: how many ports q of the whole Pod satisfy cond."""
    return f"self.map(d, has(d.ports) ? d.ports.filter(q, {cond}).size() : 0).sum()"


def _first_name(lists: str) -> str:
    """CEL: the first name of a list of lists of names, where '' means none.

    Messages build their names this way (map to strings, then filter) because the cost
    estimate keeps a string's bound through map() but loses it through filter() on
    objects and string(int); an unbounded string in a message blows the budget.
    """
    return f"{lists}.filter(l, l.size() > 0)[0][0]"


def _first_pod_port_name(cond: str) -> str:
    """CEL over the containers list: the name of the first port p of the Pod with cond."""
    return _first_name(
        f"self.map(c, has(c.ports) ? c.ports.map(p, ({cond}) ? p.name : '')"
        ".filter(n, n != '') : [])"
    )


def _pod_unique(same: str, only: str = "true") -> str:
    """CEL: no two ports p, q of the Pod for which `only` holds are `same`."""
    if only == "true":
        return f"self.all(c, !has(c.ports) || c.ports.all(p, {_pod_count(same)} == 1))"
    count = _pod_count(f"{_as_q(only)} && {same}")
    return f"self.all(c, !has(c.ports) || c.ports.all(p, !{only} || {count} == 1))"


def _pod_duplicate(same: str, only: str = "true") -> str:
    """CEL: the name of the first port p of the Pod that breaks _pod_unique(same, only)."""
    if only == "true":
        return _first_pod_port_name(f"{_pod_count(same)} > 1")
    count = _pod_count(f"{_as_q(only)} && {same}")
    return _first_pod_port_name(f"{only} && {count} > 1")


def _as_q(condition_on_p: str) -> str:
    return condition_on_p.replace("p.", "q.")


def _duplicate_name(items: str = "self") -> str:
    """CEL: the first name used twice in a list of objects with unique names."""
    return f"{items}.map(x, x.name).filter(n, !{items}.exists_one(y, y.name == n))[0]"


_SAME_NAME = "q.name == p.name"
_SAME_CONTAINER_PORT = "q.containerPort == p.containerPort && q.protocol == p.protocol"
_SERVICE_PORT = "(has({0}.servicePort) ? {0}.servicePort : {0}.containerPort)"
_SAME_SERVICE_PORT = (
    f"{_SERVICE_PORT.format('q')} == {_SERVICE_PORT.format('p')} && q.protocol == p.protocol"
)
_SAME_NODE_PORT = "q.nodePort == p.nodePort && q.protocol == p.protocol"
_SHARED_PORT_SPACE = "containers of a Pod share one network namespace"

_CONTAINERS_RULES = [
    _rule(
        "container-names-unique",
        "self.all(c, self.exists_one(d, d.name == c.name))",
        "container names must be unique",
        message_expression=f"'container name \"' + {_duplicate_name()} + '\" is used by "
        "more than one container'",
    ),
    _rule(
        "port-names-unique",
        _pod_unique(_SAME_NAME),
        f"port names must be unique across all containers: {_SHARED_PORT_SPACE}",
        message_expression=f"'port name \"' + {_pod_duplicate(_SAME_NAME)} + '\" is "
        f"declared more than once across the containers: {_SHARED_PORT_SPACE}, so port "
        "names are unique in the Pod'",
    ),
    _rule(
        "container-ports-unique",
        _pod_unique(_SAME_CONTAINER_PORT),
        f"each containerPort/protocol can be declared once in the Pod: {_SHARED_PORT_SPACE}",
        message_expression=f"'port \"' + {_pod_duplicate(_SAME_CONTAINER_PORT)} + '\" has "
        "the containerPort and protocol of another port in the Pod: "
        f"{_SHARED_PORT_SPACE}, so only one container can listen on it'",
    ),
    _rule(
        "service-ports-unique",
        _pod_unique(_SAME_SERVICE_PORT, "p.expose"),
        "each exposed port needs its own Service port (servicePort, or containerPort when "
        "servicePort is unset) per protocol",
        message_expression=f"'exposed port \"' + {_pod_duplicate(_SAME_SERVICE_PORT, 'p.expose')}"
        " + '\" has the Service port and protocol of another exposed port (servicePort "
        "defaults to containerPort): set a distinct servicePort, or expose: false'",
    ),
    _rule(
        "node-ports-unique",
        _pod_unique(_SAME_NODE_PORT, "has(p.nodePort)"),
        "each nodePort/protocol can be used by one port only",
        message_expression="'port \"' + "
        + _pod_duplicate(_SAME_NODE_PORT, "has(p.nodePort)")
        + " + '\" has the nodePort and protocol of another port'",
    ),
    _rule(
        "exposed-port-required",
        "self.exists(c, has(c.ports) && c.ports.exists(p, p.expose))",
        "at least one container port must be exposed: the Service needs a port "
        "(expose defaults to true)",
    ),
]

_SERVICE = _obj(
    {
        "type": _str(
            12,
            enum=["ClusterIP", "NodePort", "LoadBalancer", "Headless"],
            default="ClusterIP",
            description="Headless is a ClusterIP Service with clusterIP None: DNS names the "
            "Pods, no virtual IP. A Service's clusterIP is immutable, so on a change to or "
            "from Headless the operator replaces the Service (and says so in an event).",
        ),
        "annotations": _annotations("Extra annotations for the Service."),
        "labels": _labels("Extra labels for the Service."),
        "sessionAffinity": _str(8, enum=["None", "ClientIP"], default="None"),
        "externalTrafficPolicy": _str(
            7,
            enum=["Cluster", "Local"],
            description="Only with type NodePort or LoadBalancer.",
        ),
        "publishNotReadyAddresses": _bool(default=False),
    },
    default={},
    rules=[
        _rule(
            "external-traffic-policy-needs-type",
            "!has(self.externalTrafficPolicy) || self.type in ['NodePort', 'LoadBalancer']",
            "externalTrafficPolicy needs service.type NodePort or LoadBalancer",
            message_expression="'externalTrafficPolicy needs service.type NodePort or "
            "LoadBalancer, but service.type is ' + self.type",
            field_path=".externalTrafficPolicy",
        ),
    ],
)

_PERCENT_OR_COUNT = _int_or_str(0, 100, 4, PERCENT, default="25%")
_UPDATE_STRATEGY = _obj(
    {
        "type": _str(13, enum=["RollingUpdate", "Recreate"], default="RollingUpdate"),
        "rollingUpdate": _obj(
            {"maxSurge": _PERCENT_OR_COUNT, "maxUnavailable": _PERCENT_OR_COUNT},
            rules=[
                _rule(
                    "rolling-update-not-both-zero",
                    "!((self.maxSurge == 0 || self.maxSurge == '0%') "
                    "&& (self.maxUnavailable == 0 || self.maxUnavailable == '0%'))",
                    "maxSurge and maxUnavailable cannot both be 0: the rollout could not "
                    "make progress",
                )
            ],
            description="Defaults to maxSurge 25%, maxUnavailable 25% (applied by the "
            "operator when absent).",
        ),
    },
    default={},
    rules=[
        _rule(
            "rolling-update-needs-type",
            "self.type == 'RollingUpdate' || !has(self.rollingUpdate)",
            "rollingUpdate is only allowed with type RollingUpdate",
            field_path=".rollingUpdate",
        )
    ],
)


def _source(properties: Mapping[str, Schema], required: Sequence[str] = ()) -> Schema:
    return _obj(properties, required=required)


_ITEMS = _list(_KEY_TO_PATH, 32)
_DOWNWARD_ITEMS = _list(
    _obj(
        {
            "path": _str(253, min_length=1, rules=_RELATIVE_PATH_RULES),
            "fieldRef": _OBJECT_FIELD,
            "resourceFieldRef": _RESOURCE_FIELD,
            "mode": _MODE,
        },
        required=["path"],
        rules=[
            _rule(
                "downward-item-one-of",
                _one_of(["fieldRef", "resourceFieldRef"]),
                "set exactly one of fieldRef, resourceFieldRef",
            )
        ],
    ),
    32,
)
PROJECTION_SOURCES = ("configMap", "secret", "downwardAPI", "serviceAccountToken")

_VOLUME = _obj(
    {
        "name": _dns_label("Volume name, unique in the Pod; volumeMounts refer to it."),
        "configMap": _source(
            {
                "name": _str(253, min_length=1),
                "items": _ITEMS,
                "defaultMode": _MODE,
                "optional": _bool(),
            },
            ["name"],
        ),
        "secret": _source(
            {
                "secretName": _str(253, min_length=1),
                "items": _ITEMS,
                "defaultMode": _MODE,
                "optional": _bool(),
            },
            ["secretName"],
        ),
        "emptyDir": _source({"medium": _str(6, enum=["", "Memory"]), "sizeLimit": _QUANTITY}),
        "persistentVolumeClaim": _source(
            {"claimName": _str(253, min_length=1), "readOnly": _bool()}, ["claimName"]
        ),
        "projected": _source(
            {
                "sources": _list(
                    _obj(
                        {
                            "configMap": _source(
                                {
                                    "name": _str(253, min_length=1),
                                    "items": _ITEMS,
                                    "optional": _bool(),
                                },
                                ["name"],
                            ),
                            "secret": _source(
                                {
                                    "name": _str(253, min_length=1),
                                    "items": _ITEMS,
                                    "optional": _bool(),
                                },
                                ["name"],
                            ),
                            "downwardAPI": _source({"items": _DOWNWARD_ITEMS}),
                            "serviceAccountToken": _source(
                                {
                                    "audience": _str(256),
                                    "expirationSeconds": _int(600, 2**32, fmt="int64"),
                                    "path": _str(253, min_length=1, rules=_RELATIVE_PATH_RULES),
                                },
                                ["path"],
                            ),
                        },
                        rules=[
                            _rule(
                                "projection-one-of",
                                _one_of(PROJECTION_SOURCES),
                                "a projection must set exactly one of "
                                + ", ".join(PROJECTION_SOURCES),
                            )
                        ],
                    ),
                    16,
                    min_items=1,
                ),
                "defaultMode": _MODE,
            },
            ["sources"],
        ),
        "downwardAPI": _source({"items": _DOWNWARD_ITEMS, "defaultMode": _MODE}),
    },
    required=["name"],
    rules=[
        _rule(
            "volume-source-one-of",
            _one_of(VOLUME_SOURCES),
            "a volume must set exactly one of "
            + ", ".join(VOLUME_SOURCES)
            + " (hostPath and other volume types are not supported)",
            message_expression="'volume \"' + self.name + '\" must set exactly one of "
            + ", ".join(VOLUME_SOURCES)
            + " (hostPath and other volume types are not supported)'",
        )
    ],
)

SPEC_SCHEMA: Schema = _obj(
    {
        "replicas": _int(0, 100, default=1, description="Desired number of Pods."),
        "minReadySeconds": _int(
            0,
            3600,
            default=0,
            description="Seconds a Pod must be ready before it counts as available.",
        ),
        "containers": _list(
            _CONTAINER,
            10,
            min_items=1,
            rules=_CONTAINERS_RULES,
            description="The containers of each Pod.",
        ),
        "volumes": _list(
            _VOLUME,
            32,
            rules=[
                _rule(
                    "volume-names-unique",
                    "self.all(v, self.exists_one(w, w.name == v.name))",
                    "volume names must be unique",
                    message_expression=f"'volume name \"' + {_duplicate_name()} + '\" is "
                    "used by more than one volume'",
                )
            ],
            description="Volumes the containers can mount. Only configMap, secret, emptyDir, "
            "persistentVolumeClaim, projected and downwardAPI.",
        ),
        "podLabels": _labels("Extra labels for the Pods."),
        "podAnnotations": _annotations("Extra annotations for the Pods."),
        "service": _SERVICE,
        "updateStrategy": _UPDATE_STRATEGY,
    },
    required=["containers"],
    rules=[
        _rule(
            "node-port-needs-type",
            "self.service.type in ['NodePort', 'LoadBalancer'] || self.containers.all(c, "
            "!has(c.ports) || c.ports.all(p, !has(p.nodePort)))",
            "nodePort needs service.type NodePort or LoadBalancer",
            # Naming the port here would need a nested map over self.containers, whose
            # strings the cost estimate cannot bound at this level.
            message_expression="'a port sets nodePort, which needs service.type NodePort or "
            "LoadBalancer, but service.type is ' + self.service.type",
            field_path=".containers",
        ),
        _rule(
            "volume-mount-declared",
            "self.containers.all(c, !has(c.volumeMounts) || c.volumeMounts.all(m, "
            "has(self.volumes) && self.volumes.exists(v, v.name == m.name)))",
            "every volumeMount must name a volume declared in spec.volumes",
            field_path=".containers",
        ),
    ],
)

# --- status --------------------------------------------------------------------------

_COUNT = _int(0, INT32_MAX)
_CONDITION = _obj(
    {
        "type": _str(316, min_length=1),
        "status": _str(7, enum=["True", "False", "Unknown"]),
        "observedGeneration": _int(0, INT64_MAX, fmt="int64"),
        "lastTransitionTime": _str(64, fmt="date-time"),
        "reason": _str(1024, min_length=1, pattern=REASON),
        "message": _str(32768),
    },
    required=["type", "status", "lastTransitionTime", "reason", "message"],
)
_STATUS_PORT = _obj(
    {
        "name": _str(15, min_length=1),
        "protocol": _str(4, enum=["TCP", "UDP", "SCTP"]),
        "port": _PORT_NUMBER,
        "targetPort": _int_or_str(1, 65535, 15, IANA_SVC_NAME),
        "nodePort": _PORT_NUMBER,
        "containerPort": _PORT_NUMBER,
        "container": _str(63),
        "readyEndpoints": _COUNT,
    },
    required=["name", "protocol", "port"],
)
_LB_INGRESS = _obj(
    {
        "ip": _str(64),
        "hostname": _str(253),
        "ipMode": _str(16),
        "ports": _list(
            _obj(
                {"port": _PORT_NUMBER, "protocol": _str(4), "error": _str(316)},
                required=["port", "protocol"],
            ),
            64,
        ),
    }
)

STATUS_SCHEMA: Schema = _obj(
    {
        "observedGeneration": _int(0, INT64_MAX, fmt="int64"),
        "replicas": _COUNT,
        "readyReplicas": _COUNT,
        "availableReplicas": _COUNT,
        "updatedReplicas": _COUNT,
        "selector": _str(
            1024,
            description="Label selector of the Pods, for the scale "
            "subresource (HorizontalPodAutoscaler).",
        ),
        # Display strings for kubectl's columns: a column can only show one field as is.
        "readyText": _str(32, description="Ready/desired Pods, e.g. 2/3 (READY column)."),
        "portsText": _str(
            1024, description="Service ports, e.g. 80/TCP,9090:30090/TCP (PORTS column)."
        ),
        "imagesText": _str(4096, description="Container images, comma separated (IMAGES column)."),
        "service": _obj(
            {
                "name": _str(63),
                "type": _str(12),
                "clusterIP": _str(64),
                "dnsName": _str(253),
                "loadBalancer": _obj({"ingress": _list(_LB_INGRESS, 16)}),
                "ports": {
                    **_list(_STATUS_PORT, 320),
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                },
            },
            description="The Service and the resolved mapping of each exposed port.",
        ),
        "conditions": {
            **_list(_CONDITION, 16),
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    }
)

# --- the resource --------------------------------------------------------------------

ROOT_SCHEMA: Schema = _obj(
    {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        # Declaring metadata.name lets the rules below name it and bounds its CEL cost.
        "metadata": {"type": "object", "properties": {"name": _str(253)}},
        "spec": SPEC_SCHEMA,
        "status": STATUS_SCHEMA,
    },
    required=["spec"],
    rules=[
        _rule(
            "name-length",
            f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
            f"must be at most {MAX_NAME_LENGTH} characters: Pods are named "
            "<name>-<hash10>-<suffix5> and a Pod name must fit in 63",
            field_path=".metadata.name",
        ),
        _rule(
            "name-dns1035",
            f"self.metadata.name.matches('{DNS1035_LABEL}')",
            "must be a DNS-1035 label (a lowercase letter first, then lowercase letters, "
            "digits and '-', no '.'): the Service is named after the ExposedApp",
            field_path=".metadata.name",
        ),
    ],
    description="ExposedApp runs N replicas of a set of containers and keeps one Service "
    "in front of them, derived from the ports declared on the containers.",
)


def rule_key(rule: Mapping[str, Any]) -> str:
    """The key of one of this module's x-kubernetes-validations rules."""
    return _RULE_KEYS[rule["rule"], rule["message"]]


def crd() -> Schema:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["xapp"],
                "categories": ["all"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": ROOT_SCHEMA},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        _column("Ready", "string", ".status.readyText"),
                        _column("Type", "string", ".spec.service.type"),
                        _column("Cluster-IP", "string", ".status.service.clusterIP"),
                        _column("Ports", "string", ".status.portsText"),
                        _column("Age", "date", ".metadata.creationTimestamp"),
                        _column("Selector", "string", ".status.selector", priority=1),
                        _column("Images", "string", ".status.imagesText", priority=1),
                    ],
                }
            ],
        },
    }


def _column(name: str, kind: str, path: str, *, priority: int = 0) -> Schema:
    column: Schema = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


class _Dumper(yaml.SafeDumper):
    """Plain YAML a person can review: every shared schema node written out in full."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Long CEL and messages read best folded (">"): no quoting, and the same value.
    style = ">" if len(value) > 60 else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


def crd_yaml() -> str:
    """The CRD as the YAML document in crds/."""
    header = (
        "# Generated from operator/exposedapp/crd.py: do not edit.\n"
        "# Regenerate: python -m exposedapp.crd > crds/exposedapp.dev_exposedapps.yaml\n"
    )
    body = yaml.dump(crd(), Dumper=_Dumper, sort_keys=False, width=100)
    return header + body


if __name__ == "__main__":
    sys.stdout.write(crd_yaml())
