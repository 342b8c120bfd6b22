"""The ExposedApp CustomResourceDefinition, as data: the one source of truth for the API.

The model (model.py) validates and defaults a spec by walking SPEC_SCHEMA, so bounds,
enums, patterns and defaults cannot drift between the apiserver and the operator.
crds/exposedapp.dev_exposedapps.yaml is generated from crd():

    exposedapp crd > crds/exposedapp.dev_exposedapps.yaml   (what `make crd` runs)

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
    "DNS1123_SUBDOMAIN",
    "ENV_FROM_SOURCES",
    "ENV_NAME",
    "ENV_SOURCES",
    "GROUP",
    "IANA_SVC_NAME",
    "KIND",
    "LABEL_VALUE",
    "LIFECYCLE_HANDLERS",
    "MAX_NAME_LENGTH",
    "NO_SPACE",
    "PERCENT",
    "PLURAL",
    "PROBES",
    "PROBE_HANDLERS",
    "PROJECTION_SOURCES",
    "QUANTITY",
    "REASON",
    "RESERVED_KEY_PREFIXES",
    "RFC3339",
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
DNS1123_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
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
LIFECYCLE_HANDLERS = ("exec", "httpGet", "sleep")
ENV_FROM_SOURCES = ("configMapRef", "secretRef")
PROBES = ("readinessProbe", "livenessProbe", "startupProbe")

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


def _described(schema: Schema, description: str) -> Schema:
    """A copy of a shared schema with the description of one place it is used in.

    Only the description differs: every bound, pattern, default and rule is the shared one.
    """
    return {"description": description, **{k: v for k, v in schema.items() if k != "description"}}


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


_RESERVED_KEYS_NOTE = (
    "At most 64; keys must not start with "
    + ", ".join(RESERVED_KEY_PREFIXES[:-1])
    + f" or {RESERVED_KEY_PREFIXES[-1]}"
)


def _labels(description: str) -> Schema:
    return _map(
        _str(63, pattern=LABEL_VALUE),
        64,
        rules=[_reserved_keys_rule("labels")],
        description=f"{description} {_RESERVED_KEYS_NOTE}.",
    )


def _annotations(description: str) -> Schema:
    return _map(
        _str(65536),
        64,
        rules=[_reserved_keys_rule("annotations")],
        description=f"{description} {_RESERVED_KEYS_NOTE}.",
    )


_PORT_NUMBER = _int(1, 65535)
_NAMED_OR_NUMBERED_PORT = _int_or_str(
    1,
    65535,
    15,
    IANA_SVC_NAME,
    description="Port to probe on the Pod's IP: a number from 1 to 65535, or the name of a "
    "port declared in this container's ports.",
)
_MODE = _int(0, 0o777)
_QUANTITY = _int_or_str(0, INT64_MAX, 64, QUANTITY)
_RELATIVE_PATH_RULES = [
    _rule(
        "relative-path",
        "!self.startsWith('/') && !self.matches('(^|/)[.][.](/|$)')",
        "must be a relative path without '..'",
    )
]
_MODE_BITS = "0 to 0777; octal in YAML (0644), decimal in JSON (420)"
_FILE_MODE = _described(
    _MODE, f"Mode bits of this file, {_MODE_BITS}. Unset: the volume's defaultMode."
)
_DEFAULT_MODE = _described(
    _MODE, f"Mode bits of the volume's files, {_MODE_BITS}; Kubernetes defaults it to 0644."
)


def _key_to_path(kind: str) -> Schema:
    """One entry of a configMap or secret volume's items: which key goes to which file."""
    return _obj(
        {
            "key": _str(253, min_length=1, description=f"The key of the {kind} to project."),
            "path": _str(
                253,
                min_length=1,
                rules=_RELATIVE_PATH_RULES,
                description="Path of the file in the volume, relative and without '..', "
                "e.g. conf/app.yaml.",
            ),
            "mode": _FILE_MODE,
        },
        required=["key", "path"],
    )


_OBJECT_FIELD = _obj(
    {
        "apiVersion": _str(
            64, description="API version the fieldPath is written in; Kubernetes defaults it to v1."
        ),
        "fieldPath": _str(
            256,
            min_length=1,
            description="Path of the Pod's field to select, e.g. metadata.name or "
            "metadata.labels['app'].",
        ),
    },
    required=["fieldPath"],
)
_RESOURCE_FIELD = _obj(
    {
        "containerName": _str(
            63,
            description="The container whose resource to select: required in a downwardAPI "
            "volume; in env it defaults to this container.",
        ),
        "resource": _str(
            64,
            min_length=1,
            description="The resource to select, e.g. limits.cpu, limits.memory, "
            "requests.cpu, requests.memory or limits.ephemeral-storage.",
        ),
        "divisor": _described(
            _QUANTITY,
            "The unit the value is given in, a quantity such as 1m (CPU in millicores) or 1Mi "
            "(memory in mebibytes); Kubernetes defaults it to 1.",
        ),
    },
    required=["resource"],
)


def _key_ref(kind: str) -> Schema:
    """A key of a ConfigMap or Secret, for one environment variable."""
    return _obj(
        {
            "name": _str(
                253, min_length=1, description=f"Name of the {kind}, in the app's namespace."
            ),
            "key": _str(
                253, min_length=1, description=f"The key of the {kind} whose value to use."
            ),
            "optional": _bool(
                description=f"true: the container starts even if the {kind} or its key does "
                "not exist (the variable is then not set). Default false."
            ),
        },
        required=["name", "key"],
        description=f"Take the value of a key of a {kind} in the app's namespace.",
    )


_ENV_VAR = _obj(
    {
        "name": _str(
            256,
            min_length=1,
            pattern=ENV_NAME,
            description="Name of the environment variable: letters, digits, '-', '_' and '.', "
            "not starting with a digit.",
        ),
        "value": _str(
            32768,
            description="The variable's value. $(VAR_NAME) refers to a variable defined "
            "earlier in env and is expanded ($$ escapes it). Set value or valueFrom, not both.",
        ),
        "valueFrom": _obj(
            {
                "configMapKeyRef": _key_ref("ConfigMap"),
                "secretKeyRef": _key_ref("Secret"),
                "fieldRef": _described(
                    _OBJECT_FIELD,
                    "Take the value of a field of the Pod, e.g. metadata.name, "
                    "metadata.namespace, metadata.labels['KEY'], spec.nodeName or status.podIP.",
                ),
                "resourceFieldRef": _described(
                    _RESOURCE_FIELD,
                    "Take the value of a resource limit or request of a container, e.g. "
                    "limits.memory, in the unit of divisor.",
                ),
            },
            rules=[
                _rule(
                    "env-source-one-of",
                    _one_of(ENV_SOURCES),
                    "valueFrom must set exactly one of " + ", ".join(ENV_SOURCES),
                )
            ],
            description="Where the value comes from, instead of value: exactly one of "
            "configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef. See the Kubernetes "
            "EnvVarSource API.",
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
        "exec": _obj(
            {
                "command": _list(
                    _str(4096),
                    64,
                    min_items=1,
                    description="The command and its arguments, run in the container without "
                    "a shell (use [sh, -c, ...] for one), from its root directory.",
                )
            },
            required=["command"],
            description="Run a command in the container: exit status 0 is success.",
        ),
        # No `host` on httpGet and tcpSocket: probing another host from the kubelet is
        # what the Pod Security "baseline" profile forbids.
        "httpGet": _obj(
            {
                "path": _str(2048, description="Path of the HTTP request, e.g. /healthz."),
                "port": _NAMED_OR_NUMBERED_PORT,
                "scheme": _str(
                    5,
                    enum=["HTTP", "HTTPS"],
                    description="HTTP or HTTPS; Kubernetes defaults it to HTTP. With HTTPS "
                    "the kubelet does not verify the server's certificate.",
                ),
                "httpHeaders": _list(
                    _obj(
                        {
                            "name": _str(256, min_length=1, description="Header name, e.g. Host."),
                            "value": _str(4096, description="Header value."),
                        },
                        required=["name", "value"],
                    ),
                    16,
                    description="Headers to add to the request, at most 16.",
                ),
            },
            required=["port"],
            description="Send an HTTP GET request to the Pod's IP: a status code from 200 to "
            "399 is success.",
        ),
        "tcpSocket": _obj(
            {"port": _NAMED_OR_NUMBERED_PORT},
            required=["port"],
            description="Open a TCP connection to the Pod's IP: success if it connects.",
        ),
        "grpc": _obj(
            {
                "port": _described(
                    _PORT_NUMBER, "Port number of the gRPC server, 1 to 65535 (not a name)."
                ),
                "service": _str(
                    256,
                    description="Service name to send in the gRPC HealthCheckRequest; empty: "
                    "the server's overall health.",
                ),
            },
            required=["port"],
            description="Call the gRPC Health Checking Protocol on the Pod's IP: success if "
            "the server answers SERVING.",
        ),
        "initialDelaySeconds": _int(
            0,
            3600,
            description="Seconds after the container has started before the first probe, 0 "
            "to 3600; Kubernetes defaults it to 0.",
        ),
        "periodSeconds": _int(
            1, 3600, description="Seconds between probes, 1 to 3600; Kubernetes defaults it to 10."
        ),
        "timeoutSeconds": _int(
            1,
            3600,
            description="Seconds after which a probe times out and counts as failed, 1 to "
            "3600; Kubernetes defaults it to 1.",
        ),
        "successThreshold": _int(
            1,
            100,
            description="Consecutive successes after a failure for the probe to pass again, "
            "1 to 100; Kubernetes defaults it to 1, and livenessProbe allows only 1.",
        ),
        "failureThreshold": _int(
            1,
            100,
            description="Consecutive failures for the probe to fail, 1 to 100; Kubernetes "
            "defaults it to 3.",
        ),
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
        "protocol": _str(
            4,
            enum=["TCP", "UDP", "SCTP"],
            default="TCP",
            description="TCP (default), UDP or SCTP: the protocol of the container port and "
            "of its Service port.",
        ),
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
            description="false for a pod-only port: declared on the container, not on the "
            "Service. Default true.",
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
            description="Absolute path in the container at which the volume appears, e.g. "
            "/etc/nginx/conf.d; unique within the container.",
        ),
        "readOnly": _bool(description="true: mount the volume read-only. Default false."),
        "subPath": _str(
            1024,
            rules=_RELATIVE_PATH_RULES,
            description="Path inside the volume to mount instead of its root, relative and "
            "without '..'. A subPath mount of a ConfigMap or Secret does not receive updates.",
        ),
    },
    required=["name", "mountPath"],
)


# --- security, lifecycle, scheduling (inserted before _CONTAINER) ----------------------

_ID = "0 to 2147483647"


def _id(what: str) -> Schema:
    return _int(0, INT32_MAX, fmt="int64", description=what)


_ROOT_OPT_OUT = "spec.securityContext.runAsNonRoot: false"

_CONTAINER_SECURITY = _obj(
    {
        "runAsUser": _id(
            f"UID the container's processes run as ({_ID}), overriding the Pod's and the "
            f"image's. 0 (root) needs {_ROOT_OPT_OUT}."
        ),
        "runAsGroup": _id(f"GID the container's processes run as ({_ID}), overriding the Pod's."),
        "readOnlyRootFilesystem": _bool(
            description="true: the container's root filesystem is read-only (write to "
            "mounted volumes, e.g. an emptyDir at /tmp). Default false."
        ),
        "capabilities": _obj(
            {
                "add": _list(
                    _str(16, enum=["NET_BIND_SERVICE"]),
                    1,
                    description="Capabilities to add back after the operator drops ALL: only "
                    "NET_BIND_SERVICE (listen on ports below 1024), the one Pod Security "
                    '"restricted" allows.',
                )
            },
            description="Linux capabilities: every capability is dropped, this adds back.",
        ),
    },
    description="Security settings of the container, merged with what the operator always "
    "sets (allowPrivilegeEscalation false, capabilities drop ALL): Pod Security "
    '"restricted" holds unless the spec opts out of running as non-root.',
)

_POD_SECURITY = _obj(
    {
        "runAsNonRoot": _bool(
            description="Default true: the kubelet refuses to start a container whose user "
            'is root (Pod Security "restricted"). false runs an image as root where the '
            "namespace's Pod Security level allows it (baseline): explicit, told in an event "
            "and shown in `kubectl get xapp -o wide`."
        ),
        "runAsUser": _id(
            f"UID every container runs as ({_ID}) unless a container says otherwise. 0 "
            "(root) needs runAsNonRoot: false."
        ),
        "runAsGroup": _id(
            f"GID every container runs as ({_ID}) unless a container says otherwise."
        ),
        "fsGroup": _id(
            f"GID ({_ID}) that owns the Pod's volumes that support ownership management "
            "(emptyDir, configMap, secret, ...), added to every container's groups."
        ),
        "supplementalGroups": _list(
            _int(0, INT32_MAX, fmt="int64"),
            32,
            description="Extra GIDs added to the first process of every container, at most 32.",
        ),
        "seccompProfile": _obj(
            {
                "type": _str(
                    14,
                    enum=["RuntimeDefault", "Localhost"],
                    description="RuntimeDefault (the operator's default) or Localhost (a "
                    'profile file on the node): the two Pod Security "restricted" allows.',
                ),
                "localhostProfile": _str(
                    1024,
                    min_length=1,
                    description="With type Localhost: the profile's path, relative to the "
                    "kubelet's seccomp directory.",
                ),
            },
            required=["type"],
            rules=[
                _rule(
                    "seccomp-localhost-profile",
                    "self.type == 'Localhost' ? has(self.localhostProfile) "
                    ": !has(self.localhostProfile)",
                    "localhostProfile is required with type Localhost, and only then",
                )
            ],
            description="The seccomp profile of every container; default RuntimeDefault.",
        ),
    },
    rules=[
        _rule(
            "root-needs-opt-out",
            "!has(self.runAsUser) || self.runAsUser != 0 "
            "|| (has(self.runAsNonRoot) && !self.runAsNonRoot)",
            "runAsUser 0 (root) needs runAsNonRoot: false",
            field_path=".runAsUser",
        )
    ],
    description="Security settings of the Pod, merged with the operator's defaults "
    '(runAsNonRoot true, seccompProfile RuntimeDefault): Pod Security "restricted" '
    "unless runAsNonRoot is false.",
)

_LIFECYCLE_HANDLER = _obj(
    {
        "exec": _PROBE["properties"]["exec"],
        "httpGet": _PROBE["properties"]["httpGet"],
        "sleep": _obj(
            {
                "seconds": _int(
                    1, 3600, description="Seconds to sleep, 1 to 3600, within the grace period."
                )
            },
            required=["seconds"],
            description="Sleep before going on: the simplest way to let endpoints and load "
            "balancers stop sending traffic before the container gets SIGTERM.",
        ),
    },
    rules=[
        _rule(
            "lifecycle-handler-one-of",
            _one_of(LIFECYCLE_HANDLERS),
            "a lifecycle handler must set exactly one of " + ", ".join(LIFECYCLE_HANDLERS),
        )
    ],
)

_LIFECYCLE = _obj(
    {
        "postStart": _described(
            _LIFECYCLE_HANDLER,
            "Run right after the container is created; the container is not Running until "
            "it ends, and is killed if it fails.",
        ),
        "preStop": _described(
            _LIFECYCLE_HANDLER,
            "Run before the container is stopped (before SIGTERM), within "
            "terminationGracePeriodSeconds: e.g. sleep while endpoints drain.",
        ),
    },
    description="Hooks the kubelet runs at the container's start and before its stop. "
    "Copied to the Pod's container `lifecycle`.",
)


def _env_from_ref(kind: str) -> Schema:
    return _obj(
        {
            "name": _str(253, min_length=1, description=f"Name of the {kind}."),
            "optional": _bool(description="true: start even if it does not exist."),
        },
        required=["name"],
        description=f"Every key of a {kind} in the app's namespace, as a variable.",
    )


_ENV_FROM = _obj(
    {
        "prefix": _str(
            253,
            pattern=ENV_NAME,
            description="Prepended to every variable name taken from the source.",
        ),
        "configMapRef": _env_from_ref("ConfigMap"),
        "secretRef": _env_from_ref("Secret"),
    },
    rules=[
        _rule(
            "env-from-one-of",
            _one_of(ENV_FROM_SOURCES),
            "envFrom entries must set exactly one of " + ", ".join(ENV_FROM_SOURCES),
        )
    ],
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


def _lifecycle_port_rule(hook: str) -> Schema:
    port = f"self.lifecycle.{hook}.httpGet.port"
    return _rule(
        f"lifecycle-{hook}-port-declared",
        f"!has(self.lifecycle) || !has(self.lifecycle.{hook}) "
        f"|| !has(self.lifecycle.{hook}.httpGet) || type({port}) == int "
        f"|| (has(self.ports) && self.ports.exists(p, p.name == {port}))",
        f"lifecycle.{hook}.httpGet.port names no port of this container",
        message_expression=f"'lifecycle.{hook}.httpGet.port names no port of container \"' + "
        "self.name + '\"'",
        field_path=f".lifecycle.{hook}.httpGet.port",
    )


def _container(init: bool) -> Schema:
    """A container of spec.containers, or (``init``) of spec.initContainers."""
    properties = dict(_CONTAINER_FIELDS)
    rules = list(_CONTAINER_RULES)
    if init:
        properties["ports"] = _list(
            _PORT,
            8,
            description="The ports a sidecar (restartPolicy: Always) listens on, at most 8: "
            "part of the Pod's one port space, exposed on the Service like any other.",
        )
        properties["restartPolicy"] = _str(
            6,
            enum=["Always"],
            description="Always: a sidecar, started before the app's containers and kept "
            "running beside them (Kubernetes' native sidecars). Unset: an init container "
            "that must finish before the next one starts.",
        )
        rules += [
            _rule(
                "init-container-ports-need-sidecar",
                "has(self.restartPolicy) || !has(self.ports)",
                "only a sidecar (restartPolicy: Always) can declare ports: an init container "
                "ends before the app starts",
                field_path=".ports",
            ),
            _rule(
                "init-container-probes-need-sidecar",
                "has(self.restartPolicy) || (!has(self.readinessProbe) && "
                "!has(self.livenessProbe) && !has(self.startupProbe) && !has(self.lifecycle))",
                "probes and lifecycle hooks need a sidecar (restartPolicy: Always): an init "
                "container runs to completion",
            ),
        ]
    what = "Init container or sidecar" if init else "Container"
    return _obj(
        properties,
        required=["name", "image"],
        rules=rules,
        description=f"{what} of the Pod; copied to the Pod with the operator's security "
        "settings merged in.",
    )


_CONTAINER_FIELDS: dict[str, Schema] = _obj(
    {
        "name": _dns_label("Container name, unique in the Pod."),
        "image": _str(
            1024,
            min_length=1,
            pattern=NO_SPACE,
            description="Container image reference, e.g. nginxinc/nginx-unprivileged:1.27. "
            "Copied to the Pod's container `image`; a change rolls out new Pods.",
        ),
        "command": _list(
            _str(4096),
            64,
            description="Entrypoint, run without a shell; replaces the image's ENTRYPOINT. "
            "$(VAR_NAME) expands the container's env. Copied to the Pod's container `command`.",
        ),
        "args": _list(
            _str(4096),
            64,
            description="Arguments to the entrypoint; replace the image's CMD. $(VAR_NAME) "
            "expands the container's env. Copied to the Pod's container `args`.",
        ),
        "env": _list(
            _ENV_VAR,
            128,
            description="Environment variables of the container, at most 128. Copied to the "
            "Pod's container `env`; see the Kubernetes EnvVar API.",
        ),
        "resources": _obj(
            {
                "requests": _map(
                    _QUANTITY,
                    16,
                    description="What the scheduler reserves for the container on a node, by "
                    "resource name (cpu, memory, ephemeral-storage), as quantities such as 250m "
                    "or 128Mi.",
                ),
                "limits": _map(
                    _QUANTITY,
                    16,
                    description="Upper bounds of what the container may use, by resource name, "
                    "e.g. cpu: 500m, memory: 256Mi. Over its memory limit a container is "
                    "killed; a request left unset defaults to the limit.",
                ),
            },
            description="Compute resources of the container. Copied to the Pod's container "
            "`resources`; see the Kubernetes ResourceRequirements API.",
        ),
        "readinessProbe": _described(
            _PROBE,
            "Whether the container is ready to serve: a Pod gets Service traffic only while "
            "all its containers are ready. Copied to the Pod's container `readinessProbe`; "
            "see the Kubernetes Probe API.",
        ),
        "livenessProbe": _described(
            _PROBE,
            "Whether the container is alive: the kubelet restarts it after failureThreshold "
            "consecutive failures. Copied to the Pod's container `livenessProbe`; see the "
            "Kubernetes Probe API.",
        ),
        "startupProbe": _described(
            _PROBE,
            "Whether the container has started: readiness and liveness probes wait until it "
            "succeeds, and the container is restarted if it fails failureThreshold times. "
            "Copied to the Pod's container `startupProbe`.",
        ),
        "lifecycle": _LIFECYCLE,
        "securityContext": _CONTAINER_SECURITY,
        "imagePullPolicy": _str(
            12,
            enum=["Always", "IfNotPresent", "Never"],
            description="When the kubelet pulls the image: Always, IfNotPresent or Never; "
            "Kubernetes defaults it to Always for :latest or no tag, else IfNotPresent.",
        ),
        "envFrom": _list(
            _ENV_FROM,
            16,
            description="ConfigMaps and Secrets whose every key becomes a variable, at most "
            "16; env wins over envFrom for the same name. Copied to the container `envFrom`.",
        ),
        "workingDir": _str(
            4096,
            description="The container's working directory; the image's WORKDIR if unset.",
        ),
        "terminationMessagePolicy": _str(
            24,
            enum=["File", "FallbackToLogsOnError"],
            description="File (Kubernetes' default: /dev/termination-log) or "
            "FallbackToLogsOnError (the log's tail when that file is empty and it failed): "
            "what status shows of why a container ended.",
        ),
        "volumeMounts": _list(
            _VOLUME_MOUNT,
            32,
            description="Volumes of spec.volumes to mount in the container, each at its own "
            "mountPath. Copied to the Pod's container `volumeMounts`.",
        ),
        "ports": _list(
            _PORT,
            32,
            description="The ports this container listens on. Containers of a Pod share one "
            "port space: names and containerPort/protocol pairs are unique across the Pod.",
        ),
    },
)["properties"]

_CONTAINER_RULES = [
    *(_probe_port_rule(p, h) for p in PROBES for h in ("httpGet", "tcpSocket")),
    *(_lifecycle_port_rule(hook) for hook in ("postStart", "preStop")),
    _rule(
        "liveness-success-threshold",
        "!has(self.livenessProbe) || !has(self.livenessProbe.successThreshold) "
        "|| self.livenessProbe.successThreshold == 1",
        "livenessProbe.successThreshold must be 1",
        field_path=".livenessProbe.successThreshold",
    ),
    _rule(
        "startup-success-threshold",
        "!has(self.startupProbe) || !has(self.startupProbe.successThreshold) "
        "|| self.startupProbe.successThreshold == 1",
        "startupProbe.successThreshold must be 1",
        field_path=".startupProbe.successThreshold",
    ),
    _rule(
        "mount-paths-unique",
        "!has(self.volumeMounts) || self.volumeMounts.all(m, "
        "self.volumeMounts.exists_one(n, n.mountPath == m.mountPath))",
        "each volumeMount needs its own mountPath",
        field_path=".volumeMounts",
    ),
]
_CONTAINER = _container(init=False)
_INIT_CONTAINER = _container(init=True)


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
]

_SERVICE = _obj(
    {
        "type": _str(
            12,
            enum=["ClusterIP", "NodePort", "LoadBalancer", "Headless"],
            default="ClusterIP",
            description="ClusterIP (default), NodePort, LoadBalancer, or Headless: a ClusterIP "
            "Service with clusterIP None, whose DNS name resolves to the Pods' IPs. A Service's "
            "clusterIP is immutable, so on a change to or from Headless the operator replaces "
            "the Service (and says so in an event).",
        ),
        "annotations": _annotations(
            "Extra annotations for the Service, e.g. a cloud provider's load balancer settings."
        ),
        "labels": _labels("Extra labels for the Service."),
        "sessionAffinity": _str(
            8,
            enum=["None", "ClientIP"],
            default="None",
            description="None (default) balances each connection over the Pods; ClientIP "
            "sends a client's connections to the same Pod. Copied to the Service's "
            "`sessionAffinity`.",
        ),
        "externalTrafficPolicy": _str(
            7,
            enum=["Cluster", "Local"],
            description="Cluster (Kubernetes' default) spreads external traffic over all Pods; "
            "Local sends it only to Pods on the receiving node and keeps the client's source "
            "IP. Only with type NodePort or LoadBalancer.",
        ),
        "publishNotReadyAddresses": _bool(
            default=False,
            description="true: the Service's endpoints and DNS records include Pods that are "
            "not ready, e.g. for peer discovery through a Headless Service. Default false.",
        ),
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
    description="The Service in front of the Pods, named after the ExposedApp, with one "
    "port per exposed container port. Defaults to a ClusterIP Service.",
)

_PERCENT_OR_COUNT = _int_or_str(0, 100, 4, PERCENT, default="25%")
_DISRUPTION_BUDGET = _obj(
    {
        "minAvailable": _int_or_str(
            0,
            100,
            4,
            PERCENT,
            description="Pods that must stay available during voluntary disruptions "
            "(evictions, `kubectl drain`): a count or a percentage of replicas.",
        ),
        "maxUnavailable": _int_or_str(
            0,
            100,
            4,
            PERCENT,
            description="Pods that may be unavailable during voluntary disruptions: a count "
            "or a percentage of replicas.",
        ),
    },
    rules=[
        _rule(
            "disruption-budget-one-of",
            "has(self.minAvailable) != has(self.maxUnavailable)",
            "set exactly one of minAvailable and maxUnavailable",
        )
    ],
    description="A PodDisruptionBudget (policy/v1) the operator creates and keeps for the "
    "app's Pods, so that evictions and `kubectl drain` leave enough of them serving. "
    "Absent: none (an existing one of ours is deleted).",
)
_DRAIN = _obj(
    {
        "enabled": _bool(
            default=True,
            description="true (default): every Pod the operator deletes (scale-down, rolling "
            "update, Recreate) first leaves the Service, and is deleted only once no "
            "EndpointSlice of the Service lists it and delaySeconds have passed. false: "
            "Pods are deleted at once, as a Deployment deletes them.",
        ),
        "delaySeconds": _int(
            0,
            300,
            default=2,
            description="Seconds to wait, 0 to 300, after the EndpointSlices stopped listing "
            "a draining Pod, before it is deleted: time for kube-proxy on every node and for "
            "load balancers and proxies outside the cluster to stop sending it new "
            "connections. Default 2.",
        ),
        "timeoutSeconds": _int(
            1,
            3600,
            default=60,
            description="The longest a drain may take, 1 to 3600 seconds from its start: a "
            "Pod the EndpointSlices still list then is deleted anyway, with the reason in "
            "an event. Default 60.",
        ),
    },
    default={},
    description="How Pods leave the Service before the operator deletes them, so that no "
    "request is sent to a Pod that is shutting down. Draining Pods are counted in "
    "status.drainingReplicas.",
)


# RFC 3339 as Kubernetes writes times (kubectl's restartedAt annotation included).
RFC3339 = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)


_UPDATE_STRATEGY = _obj(
    {
        "type": _str(
            13,
            enum=["RollingUpdate", "Recreate"],
            default="RollingUpdate",
            description="RollingUpdate (default) replaces Pods a few at a time within maxSurge "
            "and maxUnavailable; Recreate deletes every old Pod before it creates new ones.",
        ),
        "rollingUpdate": _obj(
            {
                "maxSurge": _described(
                    _PERCENT_OR_COUNT,
                    "How many Pods may exist above replicas during a rollout: a count (0 to "
                    "100) or a percentage of replicas, rounded up. Default 25%.",
                ),
                "maxUnavailable": _described(
                    _PERCENT_OR_COUNT,
                    "How many of the replicas may be unavailable during a rollout: a count (0 "
                    "to 100) or a percentage of replicas, rounded down. Default 25%.",
                ),
            },
            rules=[
                _rule(
                    "rolling-update-not-both-zero",
                    "!((self.maxSurge == 0 || self.maxSurge == '0%') "
                    "&& (self.maxUnavailable == 0 || self.maxUnavailable == '0%'))",
                    "maxSurge and maxUnavailable cannot both be 0: the rollout could not "
                    "make progress",
                )
            ],
            description="How far a rolling update may go above and below replicas. Defaults to "
            "maxSurge 25%, maxUnavailable 25% (applied by the operator when absent).",
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
    description="How Pods are replaced when the Pod template changes (containers, volumes, "
    "podLabels or podAnnotations), like a Deployment's strategy. Defaults to RollingUpdate.",
)


def _source(
    properties: Mapping[str, Schema], required: Sequence[str] = (), *, description: str
) -> Schema:
    return _obj(properties, required=required, description=description)


def _items(kind: str) -> Schema:
    return _list(
        _key_to_path(kind),
        32,
        description=f"The keys to project and the file each goes to, at most 32. Unset: every "
        f"key of the {kind}, each in a file named after it.",
    )


def _optional(kind: str) -> Schema:
    return _bool(
        description=f"true: the Pod starts even if the {kind} or a key listed in items does "
        "not exist. Default false."
    )


_DOWNWARD_ITEMS = _list(
    _obj(
        {
            "path": _str(
                253,
                min_length=1,
                rules=_RELATIVE_PATH_RULES,
                description="Path of the file in the volume, relative and without '..', e.g. "
                "labels.",
            ),
            "fieldRef": _described(
                _OBJECT_FIELD,
                "Write a field of the Pod: metadata.name, metadata.namespace, metadata.uid, "
                "metadata.labels or metadata.annotations (whole, or one key as "
                "metadata.labels['KEY']).",
            ),
            "resourceFieldRef": _described(
                _RESOURCE_FIELD,
                "Write a resource limit or request of a container (containerName is "
                "required here), in the unit of divisor.",
            ),
            "mode": _FILE_MODE,
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
    description="The files, at most 32: each is a path and exactly one of fieldRef, "
    "resourceFieldRef.",
)
PROJECTION_SOURCES = ("configMap", "secret", "downwardAPI", "serviceAccountToken")

_PROJECTION = _obj(
    {
        "configMap": _source(
            {
                "name": _str(253, min_length=1, description="Name of the ConfigMap."),
                "items": _items("ConfigMap"),
                "optional": _optional("ConfigMap"),
            },
            ["name"],
            description="Keys of a ConfigMap in the app's namespace, as files.",
        ),
        "secret": _source(
            {
                "name": _str(253, min_length=1, description="Name of the Secret."),
                "items": _items("Secret"),
                "optional": _optional("Secret"),
            },
            ["name"],
            description="Keys of a Secret in the app's namespace, as files.",
        ),
        "downwardAPI": _source(
            {"items": _DOWNWARD_ITEMS},
            description="Fields of the Pod and resources of its containers, as files.",
        ),
        "serviceAccountToken": _source(
            {
                "audience": _str(
                    256,
                    description="Intended audience of the token; Kubernetes defaults it to "
                    "the API server's own audience.",
                ),
                "expirationSeconds": _int(
                    600,
                    2**32,
                    fmt="int64",
                    description="Requested lifetime of the token in seconds, at least 600 (10 "
                    "minutes); Kubernetes defaults it to 3600.",
                ),
                "path": _str(
                    253,
                    min_length=1,
                    rules=_RELATIVE_PATH_RULES,
                    description="Path of the token's file in the volume, relative and "
                    "without '..'.",
                ),
            },
            ["path"],
            description="A token of the Pod's service account, written to path and renewed "
            "by the kubelet before it expires; the operator mounts no token otherwise.",
        ),
    },
    rules=[
        _rule(
            "projection-one-of",
            _one_of(PROJECTION_SOURCES),
            "a projection must set exactly one of " + ", ".join(PROJECTION_SOURCES),
        )
    ],
)

_VOLUME = _obj(
    {
        "name": _dns_label("Volume name, unique in the Pod; volumeMounts refer to it."),
        "configMap": _source(
            {
                "name": _str(253, min_length=1, description="Name of the ConfigMap."),
                "items": _items("ConfigMap"),
                "defaultMode": _DEFAULT_MODE,
                "optional": _optional("ConfigMap"),
            },
            ["name"],
            description="The keys of a ConfigMap in the app's namespace, as files; the kubelet "
            "updates them when the ConfigMap changes. See the Kubernetes ConfigMapVolumeSource "
            "API.",
        ),
        "secret": _source(
            {
                "secretName": _str(253, min_length=1, description="Name of the Secret."),
                "items": _items("Secret"),
                "defaultMode": _DEFAULT_MODE,
                "optional": _optional("Secret"),
            },
            ["secretName"],
            description="The keys of a Secret in the app's namespace, as files; the kubelet "
            "updates them when the Secret changes. See the Kubernetes SecretVolumeSource API.",
        ),
        "emptyDir": _source(
            {
                "medium": _str(
                    6,
                    enum=["", "Memory"],
                    description="An empty string (default): on the node's disk; Memory: a "
                    "tmpfs (RAM), counted against the containers' memory limits.",
                ),
                "sizeLimit": _described(
                    _QUANTITY,
                    "Upper bound of the directory's size, a quantity such as 1Gi; the kubelet "
                    "evicts a Pod whose directory grows beyond it. Unset: no bound of its own.",
                ),
            },
            description="An empty directory, created with the Pod and deleted with it, shared "
            "by its containers.",
        ),
        "persistentVolumeClaim": _source(
            {
                "claimName": _str(
                    253,
                    min_length=1,
                    description="Name of the PersistentVolumeClaim, in the app's namespace.",
                ),
                "readOnly": _bool(
                    description="true: every mount of the volume is read-only. Default false."
                ),
            },
            ["claimName"],
            description="The PersistentVolume bound to a PersistentVolumeClaim. Every replica "
            "mounts the same claim, so with several replicas its access mode must allow that "
            "(e.g. ReadWriteMany).",
        ),
        "projected": _source(
            {
                "sources": _list(
                    _PROJECTION,
                    16,
                    min_items=1,
                    description="What to put in the directory, 1 to 16 sources: each sets "
                    "exactly one of configMap, secret, downwardAPI, serviceAccountToken.",
                ),
                "defaultMode": _DEFAULT_MODE,
            },
            ["sources"],
            description="Several sources in one directory: keys of ConfigMaps and Secrets, "
            "fields of the Pod, service account tokens. See the Kubernetes "
            "ProjectedVolumeSource API.",
        ),
        "downwardAPI": _source(
            {"items": _DOWNWARD_ITEMS, "defaultMode": _DEFAULT_MODE},
            description="Fields of the Pod (name, namespace, labels, annotations) and resources "
            "of its containers, as files. See the Kubernetes DownwardAPIVolumeSource API.",
        ),
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

_LABEL_SELECTOR_REQUIREMENT = _obj(
    {
        "key": _str(316, min_length=1, description="The label key."),
        "operator": _str(
            12,
            enum=["In", "NotIn", "Exists", "DoesNotExist"],
            description="In, NotIn (values list the label's values), Exists, DoesNotExist.",
        ),
        "values": _list(_str(63), 64, description="The values, for In and NotIn."),
    },
    required=["key", "operator"],
    rules=[
        _rule(
            "label-requirement-values",
            "self.operator in ['In', 'NotIn'] ? has(self.values) && self.values.size() > 0 "
            ": !has(self.values) || self.values.size() == 0",
            "In and NotIn need values; Exists and DoesNotExist take none",
            field_path=".values",
        )
    ],
)
_LABEL_SELECTOR = _obj(
    {
        "matchLabels": _map(
            _str(63), 32, description="Labels a Pod must carry, with these values."
        ),
        "matchExpressions": _list(
            _LABEL_SELECTOR_REQUIREMENT, 16, description="Requirements, all of which must hold."
        ),
    },
    description="Selects Pods by their labels; the ExposedApp's Pods carry "
    "app.kubernetes.io/instance: <app name>.",
)
_NODE_SELECTOR_REQUIREMENT = _obj(
    {
        "key": _str(316, min_length=1, description="The node label (or field) key."),
        "operator": _str(
            12,
            enum=["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"],
            description="In, NotIn, Exists, DoesNotExist, Gt or Lt (one integer value).",
        ),
        "values": _list(_str(63), 64, description="The values the operator compares with."),
    },
    required=["key", "operator"],
    rules=[
        _rule(
            "node-requirement-values",
            "self.operator in ['In', 'NotIn'] ? has(self.values) && self.values.size() > 0 "
            ": self.operator in ['Gt', 'Lt'] ? has(self.values) && self.values.size() == 1 "
            "&& self.values[0].matches('^-?[0-9]+$') "
            ": !has(self.values) || self.values.size() == 0",
            "In and NotIn need values, Gt and Lt one integer, Exists and DoesNotExist none",
            field_path=".values",
        )
    ],
)
_NODE_SELECTOR_TERM = _obj(
    {
        "matchExpressions": _list(
            _NODE_SELECTOR_REQUIREMENT, 16, description="Requirements on the node's labels."
        ),
        "matchFields": _list(
            _NODE_SELECTOR_REQUIREMENT, 16, description="Requirements on the node's fields."
        ),
    },
    description="Requirements that all hold for a node to match.",
)
_POD_AFFINITY_TERM = _obj(
    {
        "labelSelector": _LABEL_SELECTOR,
        "namespaces": _list(
            _str(63), 16, description="Namespaces to look in; default the app's namespace."
        ),
        "namespaceSelector": _described(_LABEL_SELECTOR, "Namespaces to look in, by their labels."),
        "topologyKey": _str(
            316,
            min_length=1,
            description="The node label that defines a domain, e.g. kubernetes.io/hostname "
            "or topology.kubernetes.io/zone.",
        ),
        "matchLabelKeys": _list(
            _str(316), 16, description="Pod label keys whose values narrow the selector."
        ),
        "mismatchLabelKeys": _list(
            _str(316), 16, description="Pod label keys whose values must differ."
        ),
    },
    required=["topologyKey"],
    description="Pods (by labels, in namespaces) whose domain (topologyKey) counts.",
)


def _pod_affinity(what: str) -> Schema:
    return _obj(
        {
            "requiredDuringSchedulingIgnoredDuringExecution": _list(
                _POD_AFFINITY_TERM, 8, description=f"Terms that must hold: {what}."
            ),
            "preferredDuringSchedulingIgnoredDuringExecution": _list(
                _obj(
                    {
                        "weight": _int(1, 100, description="1 to 100: how much it matters."),
                        "podAffinityTerm": _POD_AFFINITY_TERM,
                    },
                    required=["weight", "podAffinityTerm"],
                ),
                8,
                description=f"Terms the scheduler prefers: {what}.",
            ),
        },
        description=f"Schedule each Pod {what}.",
    )


_AFFINITY = _obj(
    {
        "nodeAffinity": _obj(
            {
                "requiredDuringSchedulingIgnoredDuringExecution": _obj(
                    {
                        "nodeSelectorTerms": _list(
                            _NODE_SELECTOR_TERM,
                            8,
                            min_items=1,
                            description="A node matches if any of these terms matches.",
                        )
                    },
                    required=["nodeSelectorTerms"],
                    description="Nodes the Pods can only run on.",
                ),
                "preferredDuringSchedulingIgnoredDuringExecution": _list(
                    _obj(
                        {
                            "weight": _int(1, 100, description="1 to 100: how much it matters."),
                            "preference": _NODE_SELECTOR_TERM,
                        },
                        required=["weight", "preference"],
                    ),
                    8,
                    description="Nodes the scheduler prefers, by weight.",
                ),
            },
            description="Which nodes the Pods run on, by the nodes' labels.",
        ),
        "podAffinity": _pod_affinity("near the selected Pods"),
        "podAntiAffinity": _pod_affinity("away from the selected Pods"),
    },
    description="Scheduling rules; copied to the Pod's `affinity` (the Kubernetes Affinity API).",
)

_TOLERATION = _obj(
    {
        "key": _str(316, description="The taint key; empty with operator Exists: every taint."),
        "operator": _str(
            6, enum=["Exists", "Equal"], description="Equal (Kubernetes' default) or Exists."
        ),
        "value": _str(63, description="The taint value, with operator Equal."),
        "effect": _str(
            16,
            enum=["NoSchedule", "PreferNoSchedule", "NoExecute"],
            description="The taint effect to tolerate; empty: every effect.",
        ),
        "tolerationSeconds": _int(
            0,
            INT32_MAX,
            fmt="int64",
            description="With effect NoExecute: how long the Pod stays on a node once tainted.",
        ),
    },
    rules=[
        _rule(
            "toleration-exists-no-value",
            "!has(self.operator) || self.operator != 'Exists' || !has(self.value) "
            "|| self.value == ''",
            "a toleration with operator Exists takes no value",
            field_path=".value",
        ),
        _rule(
            "toleration-empty-key-exists",
            "(has(self.key) && self.key != '') "
            "|| (has(self.operator) && self.operator == 'Exists')",
            "a toleration without a key needs operator Exists",
            field_path=".operator",
        ),
        _rule(
            "toleration-seconds-no-execute",
            "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
            "tolerationSeconds needs effect NoExecute",
            field_path=".tolerationSeconds",
        ),
    ],
)

_TOPOLOGY_SPREAD = _obj(
    {
        "maxSkew": _int(1, 1000, description="How uneven the Pods may be between domains, 1+."),
        "topologyKey": _str(
            316,
            min_length=1,
            description="The node label that defines a domain, e.g. topology.kubernetes.io/zone.",
        ),
        "whenUnsatisfiable": _str(
            14,
            enum=["DoNotSchedule", "ScheduleAnyway"],
            description="DoNotSchedule (a hard rule) or ScheduleAnyway (a preference).",
        ),
        "labelSelector": _described(
            _LABEL_SELECTOR,
            "The Pods counted; to count this app's, match app.kubernetes.io/instance: <name>.",
        ),
        "minDomains": _int(
            1, 1000, description="With DoNotSchedule: the domains to count at least."
        ),
        "nodeAffinityPolicy": _str(
            6, enum=["Honor", "Ignore"], description="Whether node affinity limits domains."
        ),
        "nodeTaintsPolicy": _str(
            6, enum=["Honor", "Ignore"], description="Whether node taints limit domains."
        ),
        "matchLabelKeys": _list(
            _str(316),
            16,
            description="Pod label keys whose values narrow the counted Pods, e.g. "
            "pod-template-hash for one rollout step.",
        ),
    },
    required=["maxSkew", "topologyKey", "whenUnsatisfiable"],
    rules=[
        _rule(
            "min-domains-needs-do-not-schedule",
            "!has(self.minDomains) || self.whenUnsatisfiable == 'DoNotSchedule'",
            "minDomains needs whenUnsatisfiable DoNotSchedule",
            field_path=".minDomains",
        )
    ],
)


def _all_containers(condition: str) -> str:
    """CEL at spec level: ``condition`` (over c) holds for every container and init
    container."""
    return (
        f"self.containers.all(c, {condition}) && "
        f"(!has(self.initContainers) || self.initContainers.all(c, {condition}))"
    )


def _sidecar_ports_apart(same: str, only: str = "true") -> str:
    """CEL at spec level: no sidecar port p and container port q for which ``only`` holds
    of both are ``same``."""
    return (
        "!has(self.initContainers) || self.initContainers.all(i, !has(i.ports) || "
        f"i.ports.all(p, !({only}) || self.containers.all(c, !has(c.ports) || "
        f"c.ports.all(q, !({_as_q(only)}) || !({same})))))"
    )


_SPEC_RULES = [
    _rule(
        "progress-deadline-above-min-ready",
        "self.progressDeadlineSeconds > self.minReadySeconds",
        "progressDeadlineSeconds must be greater than minReadySeconds",
        field_path=".progressDeadlineSeconds",
    ),
    _rule(
        "node-port-needs-type",
        "self.service.type in ['NodePort', 'LoadBalancer'] || "
        + _all_containers("!has(c.ports) || c.ports.all(p, !has(p.nodePort))"),
        "nodePort needs service.type NodePort or LoadBalancer",
        # Naming the port here would need a nested map over self.containers, whose
        # strings the cost estimate cannot bound at this level.
        message_expression="'a port sets nodePort, which needs service.type NodePort or "
        "LoadBalancer, but service.type is ' + self.service.type",
        field_path=".containers",
    ),
    _rule(
        "volume-mount-declared",
        _all_containers(
            "!has(c.volumeMounts) || c.volumeMounts.all(m, "
            "has(self.volumes) && self.volumes.exists(v, v.name == m.name))"
        ),
        "every volumeMount must name a volume declared in spec.volumes",
        field_path=".containers",
    ),
    _rule(
        "exposed-port-required",
        "self.containers.exists(c, has(c.ports) && c.ports.exists(p, p.expose)) || "
        "(has(self.initContainers) && self.initContainers.exists(c, has(c.ports) "
        "&& c.ports.exists(p, p.expose)))",
        "at least one container port must be exposed: the Service needs a port "
        "(expose defaults to true)",
        field_path=".containers",
    ),
    _rule(
        "container-root-needs-opt-out",
        "(has(self.securityContext) && has(self.securityContext.runAsNonRoot) "
        "&& !self.securityContext.runAsNonRoot) || "
        + _all_containers(
            "!has(c.securityContext) || !has(c.securityContext.runAsUser) "
            "|| c.securityContext.runAsUser != 0"
        ),
        f"a container's runAsUser 0 (root) needs {_ROOT_OPT_OUT}",
        field_path=".containers",
    ),
    _rule(
        "init-container-names-apart",
        "!has(self.initContainers) || self.initContainers.all(i, "
        "!self.containers.exists(c, c.name == i.name))",
        "init container names must differ from container names",
        field_path=".initContainers",
    ),
    _rule(
        "sidecar-port-names-apart",
        _sidecar_ports_apart("q.name == p.name"),
        f"a sidecar's port names must differ from the containers': {_SHARED_PORT_SPACE}",
        field_path=".initContainers",
    ),
    _rule(
        "sidecar-container-ports-apart",
        _sidecar_ports_apart(_SAME_CONTAINER_PORT),
        "a sidecar's containerPort/protocol must differ from the containers': "
        f"{_SHARED_PORT_SPACE}",
        field_path=".initContainers",
    ),
    _rule(
        "sidecar-service-ports-apart",
        _sidecar_ports_apart(_SAME_SERVICE_PORT, "p.expose"),
        "an exposed sidecar port needs its own Service port (servicePort, or containerPort "
        "when servicePort is unset) per protocol",
        field_path=".initContainers",
    ),
    _rule(
        "sidecar-node-ports-apart",
        _sidecar_ports_apart(_SAME_NODE_PORT, "has(p.nodePort)"),
        "each nodePort/protocol can be used by one port only",
        field_path=".initContainers",
    ),
]


SPEC_SCHEMA: Schema = _obj(
    {
        "replicas": _int(
            0,
            100,
            default=1,
            description="Desired number of Pods, 0 to 100; default 1. `kubectl scale` sets it "
            "through the scale subresource.",
        ),
        "minReadySeconds": _int(
            0,
            3600,
            default=0,
            description="Seconds a Pod must be ready before it counts as available, 0 to 3600; "
            "default 0. A rolling update waits for available Pods.",
        ),
        "containers": _list(
            _CONTAINER,
            10,
            min_items=1,
            rules=_CONTAINERS_RULES,
            description="The containers of each Pod, 1 to 10. They share the Pod's network "
            "namespace: declare each port on the container that listens on it.",
        ),
        "initContainers": _list(
            _INIT_CONTAINER,
            8,
            rules=list(_CONTAINERS_RULES),
            description="Init containers, run in order to completion before the app's "
            "containers start, and sidecars (restartPolicy: Always), started first and kept "
            "running; at most 8. A sidecar's ports are part of the Pod's port space.",
        ),
        "securityContext": _POD_SECURITY,
        "serviceAccountName": _str(
            253,
            pattern=DNS1123_SUBDOMAIN,
            description="The ServiceAccount the Pods run as; Kubernetes defaults it to "
            "default. Its token is mounted only with automountServiceAccountToken: true.",
        ),
        "automountServiceAccountToken": _bool(
            description="true: mount the ServiceAccount's API token in every container. "
            "Default false (the app talks to its own ports, not to the Kubernetes API)."
        ),
        "imagePullSecrets": _list(
            _obj(
                {"name": _str(253, min_length=1, description="Name of the Secret.")},
                required=["name"],
            ),
            16,
            description="Secrets (kubernetes.io/dockerconfigjson) with the credentials of "
            "private registries, at most 16.",
        ),
        "nodeSelector": _map(
            _str(63, pattern=LABEL_VALUE),
            32,
            description="Node labels a node must carry, with these values, to run the Pods.",
        ),
        "tolerations": _list(
            _TOLERATION,
            32,
            description="Taints the Pods tolerate, at most 32; copied to the Pod's `tolerations`.",
        ),
        "affinity": _AFFINITY,
        "topologySpreadConstraints": _list(
            _TOPOLOGY_SPREAD,
            8,
            description="How the Pods spread across domains (nodes, zones), at most 8. "
            "Unset: the scheduler's default spreading applies (Pods selected by a Service "
            "spread softly across nodes and zones).",
        ),
        "priorityClassName": _str(
            253,
            pattern=DNS1123_SUBDOMAIN,
            description="The PriorityClass of the Pods: their scheduling priority and preemption.",
        ),
        "terminationGracePeriodSeconds": _int(
            0,
            86400,
            fmt="int64",
            description="Seconds between SIGTERM (after preStop) and SIGKILL, 0 to 86400; "
            "Kubernetes defaults it to 30.",
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
            description="Volumes the containers can mount, at most 32; copied to the Pod's "
            "`volumes`. Only configMap, secret, emptyDir, persistentVolumeClaim, projected and "
            "downwardAPI.",
        ),
        "podLabels": _labels("Extra labels for the Pods; a change rolls out new Pods."),
        "podAnnotations": _annotations(
            "Extra annotations for the Pods; a change rolls out new Pods."
        ),
        "service": _SERVICE,
        "updateStrategy": _UPDATE_STRATEGY,
        "drain": _DRAIN,
        "disruptionBudget": _DISRUPTION_BUDGET,
        "restartedAt": _str(
            64,
            pattern=RFC3339,
            description="A time (RFC 3339) stamped to restart every Pod: a new value rolls "
            "all Pods through updateStrategy, as `kubectl rollout restart` does for a "
            "Deployment (`kubectl xapp rollout restart` sets it to now).",
        ),
        "revisionHistoryLimit": _int(
            0,
            100,
            default=10,
            description="How many revisions of templates no Pod runs any more are kept "
            "(ControllerRevisions, for `kubectl xapp rollout history` and undo), 0 to 100; "
            "default 10, as for Deployments.",
        ),
        "rolloutOnConfigChange": _bool(
            default=False,
            description="true: a change to the data of a ConfigMap the Pods reference "
            "(volumes, projected volumes, env valueFrom, envFrom) rolls the Pods, as a "
            "template change does; Secrets likewise when the installation lets the operator "
            "read Secrets (README: config-change rollouts). Default false.",
        ),
        "paused": _bool(
            default=False,
            description="true: start no new rollout step. A paused app still replaces lost "
            "Pods (with the current template), scales, repairs drift and keeps the Service "
            "in sync; a template change waits until it is resumed. Default false.",
        ),
        "progressDeadlineSeconds": _int(
            1,
            86400,
            default=600,
            description="Seconds a rollout may go without progress (a Pod updated, "
            "available or removed) before Progressing turns False with reason "
            "ProgressDeadlineExceeded (and Stalled True); the operator keeps trying. "
            "Greater than minReadySeconds; default 600, as for Deployments.",
        ),
    },
    required=["containers"],
    rules=_SPEC_RULES,
    description="The desired state: the Pods' containers and volumes, how many replicas, the "
    "Service in front of them and how updates roll out.",
)

# --- status --------------------------------------------------------------------------

_COUNT = _int(0, INT32_MAX)
_CONDITION = _obj(
    {
        "type": _str(
            316,
            min_length=1,
            description="Ready: the current spec is fully serving. Progressing: the operator "
            "is moving Pods toward the spec. Degraded: something blocks it and a person must act.",
        ),
        "status": _str(7, enum=["True", "False", "Unknown"], description="True, False or Unknown."),
        "observedGeneration": _int(
            0,
            INT64_MAX,
            fmt="int64",
            description="The metadata.generation of the ExposedApp this condition was "
            "computed from.",
        ),
        "lastTransitionTime": _str(
            64,
            fmt="date-time",
            description="When the condition's status last changed, an RFC 3339 date-time.",
        ),
        "reason": _str(
            1024,
            min_length=1,
            pattern=REASON,
            description="Why the condition has its status, in CamelCase, e.g. Serving, "
            "RollingUpdate, QuotaExceeded or AsExpected.",
        ),
        "message": _str(
            32768,
            description="Details for people: what is happening or what blocks it, naming the "
            "object or port concerned.",
        ),
    },
    required=["type", "status", "lastTransitionTime", "reason", "message"],
)
_STATUS_PORT = _obj(
    {
        "name": _str(
            15, min_length=1, description="The port's name, as declared in the container's ports."
        ),
        "protocol": _str(4, enum=["TCP", "UDP", "SCTP"], description="TCP, UDP or SCTP."),
        "port": _described(
            _PORT_NUMBER,
            "The port clients dial on the Service's IP and DNS name: servicePort, or "
            "containerPort when servicePort is unset.",
        ),
        "targetPort": _int_or_str(
            1,
            65535,
            15,
            IANA_SVC_NAME,
            description="Where the Service sends traffic: the port's name, which each Pod "
            "resolves to its own containerPort.",
        ),
        "nodePort": _described(
            _PORT_NUMBER,
            "The port opened on every node, declared or allocated by Kubernetes; only with "
            "service type NodePort or LoadBalancer.",
        ),
        "containerPort": _described(
            _PORT_NUMBER, "The port the container listens on, on the Pod's IP."
        ),
        "container": _str(63, description="Name of the container that declares the port."),
        "readyEndpoints": _described(
            _COUNT,
            "Ready endpoints of this port, counted over the Service's EndpointSlices; when "
            "serving it equals spec.replicas.",
        ),
    },
    required=["name", "protocol", "port"],
)
_LB_INGRESS = _obj(
    {
        "ip": _str(64, description="IP address of the load balancer."),
        "hostname": _str(253, description="DNS name of the load balancer, where it has one."),
        "ipMode": _str(
            16,
            description="How traffic to ip reaches the Pods: VIP (to the node, addressed to "
            "the load balancer's IP) or Proxy (to the node's or Pod's own IP).",
        ),
        "ports": _list(
            _obj(
                {
                    "port": _described(_PORT_NUMBER, "The Service port's number."),
                    "protocol": _str(4, description="TCP, UDP or SCTP."),
                    "error": _str(
                        316,
                        description="What went wrong setting up this port, as a CamelCase "
                        "reason; unset when it works.",
                    ),
                },
                required=["port", "protocol"],
            ),
            64,
            description="The state of each of the Service's ports on this load balancer.",
        ),
    }
)

STATUS_SCHEMA: Schema = _obj(
    {
        "observedGeneration": _int(
            0,
            INT64_MAX,
            fmt="int64",
            description="The metadata.generation the status was computed from: when it is "
            "less than metadata.generation, the status does not show the latest spec yet.",
        ),
        "replicas": _described(
            _COUNT,
            "Pods of the app, of any Pod template, that are neither terminating, draining nor "
            "finished.",
        ),
        "readyReplicas": _described(_COUNT, "Pods whose Ready condition is True."),
        "lastProgressTime": _str(
            32,
            description="While Progressing is True: when the rollout last made progress (a "
            "Pod updated, available or removed), RFC 3339; spec.progressDeadlineSeconds "
            "counts from it.",
        ),
        "drainingReplicas": _described(
            _COUNT,
            "Pods leaving the Service before their deletion (spec.drain): not counted in "
            "replicas. Absent: none.",
        ),
        "availableReplicas": _described(
            _COUNT, "Pods that have been ready for at least spec.minReadySeconds."
        ),
        "updatedReplicas": _described(
            _COUNT, "Pods created from the current Pod template (the latest spec)."
        ),
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
        "relaxedDefaults": _str(
            256,
            description="The operator's defaults the spec relaxes, comma separated "
            "(RELAXED column of -o wide): runAsNonRoot=false (runs as root: Pod Security "
            "baseline, not restricted), automountServiceAccountToken=true. Absent: none.",
        ),
        "service": _obj(
            {
                "name": _str(63, description="Name of the Service: the ExposedApp's name."),
                "type": _str(
                    12,
                    description="The spec's service.type: ClusterIP, NodePort, LoadBalancer "
                    "or Headless.",
                ),
                "clusterIP": _str(
                    64,
                    description="The Service's cluster IP, as Kubernetes assigned it; None "
                    "for Headless. Unset until the Service exists.",
                ),
                "dnsName": _str(
                    253,
                    description="The Service's DNS name in the cluster, "
                    "<name>.<namespace>.svc.cluster.local.",
                ),
                "loadBalancer": _obj(
                    {
                        "ingress": _list(
                            _LB_INGRESS,
                            16,
                            description="The load balancer's addresses (at most 16 are "
                            "kept); clients use ip or hostname.",
                        )
                    },
                    description="For type LoadBalancer: the Service's status.loadBalancer, "
                    "once the cloud provider has set one up.",
                ),
                "ports": {
                    **_list(
                        _STATUS_PORT,
                        320,
                        description="One entry per exposed port, by name: how clients reach "
                        "it and how many ready endpoints serve it.",
                    ),
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                },
            },
            description="The Service and the resolved mapping of each exposed port.",
        ),
        "conditions": {
            **_list(
                _CONDITION,
                16,
                description="Ready, Progressing and Degraded, in the metav1.Condition shape; "
                "`kubectl wait --for=condition=Ready` waits for Ready.",
            ),
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    },
    description="The observed state, written by the operator: the Pods, the Service and its "
    "ports, and the Ready, Progressing and Degraded conditions.",
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
                        _column("Relaxed", "string", ".status.relaxedDefaults", priority=1),
                        _column("Draining", "integer", ".status.drainingReplicas", priority=1),
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
        "# Generated from operator/exposedapp/domain/crd.py: do not edit.\n"
        "# Regenerate: make crd (exposedapp crd > crds/exposedapp.dev_exposedapps.yaml)\n"
    )
    body = yaml.dump(crd(), Dumper=_Dumper, sort_keys=False, width=100)
    return header + body


if __name__ == "__main__":
    sys.stdout.write(crd_yaml())
