"""Invalid ExposedApps: one table for both test tiers.

tests/unit checks that the model refuses each with the exact message; tests/e2e checks
that the real apiserver (the CRD's schema and CEL rules, with kubectl's default strict
field validation) refuses the same manifest with an error that names the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["INVALID", "Invalid", "app", "container", "port"]


@dataclass(frozen=True)
class Invalid:
    id: str
    rule: str  # the CRD rule key (crd.rule_key) or schema keyword that refuses it
    manifest: dict[str, Any]
    model: str  # the model's message, exactly
    apiserver: tuple[str, ...]  # substrings of kubectl's error, the field path first


def port(name: str = "http", number: int = 8080, **fields: Any) -> dict[str, Any]:
    return {"name": name, "containerPort": number, **fields}


def container(
    name: str = "app",
    image: str = "nginx:1.27",
    ports: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    return {"name": name, "image": image, "ports": [port()] if ports is None else ports, **fields}


def app(
    name: str = "bad", containers: list[dict[str, Any]] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "exposedapp.dev/v1alpha1",
        "kind": "ExposedApp",
        "metadata": {"name": name},
        "spec": {"containers": [container()] if containers is None else containers, **spec},
    }


_SHARED = "(ports share the Pod's network namespace)"
_P0 = "spec.containers[0].ports[0]"
_SIDECAR = container("metrics", "exporter:1", [port("metrics", 9090)])

INVALID: tuple[Invalid, ...] = (
    # --- the classic port mistakes ---
    Invalid(
        "port-name-twice-across-containers",
        "port-names-unique",
        app(containers=[container(), container("metrics", "exporter:1", [port("http", 9090)])]),
        f'spec.containers[1].ports[0].name: port name "http" is already used by container '
        f'"app" {_SHARED}',
        ("spec.containers:", 'port name "http" is declared more than once'),
    ),
    Invalid(
        "port-name-twice-in-one-container",
        "port-names-unique",
        app(containers=[container(ports=[port(), port("http", 8081)])]),
        f'spec.containers[0].ports[1].name: port name "http" is already used by container '
        f'"app" {_SHARED}',
        ("spec.containers:", 'port name "http" is declared more than once'),
    ),
    Invalid(
        "container-port-twice-across-containers",
        "container-ports-unique",
        app(containers=[container(), container("metrics", "exporter:1", [port("metrics", 8080)])]),
        f'spec.containers[1].ports[0].containerPort: 8080/TCP is already used by port "http" '
        f'of container "app" {_SHARED}',
        ("spec.containers:", 'port "http" has the containerPort and protocol of another port'),
    ),
    Invalid(
        "service-port-twice",
        "service-ports-unique",
        app(
            containers=[
                container(ports=[port(servicePort=80), port("admin", 9000, servicePort=80)])
            ]
        ),
        "spec.containers[0].ports[1].servicePort: Service port 80/TCP is already used by port "
        '"http" of container "app" (servicePort defaults to containerPort): set a distinct '
        "servicePort, or expose: false",
        (
            "spec.containers:",
            'exposed port "http" has the Service port and protocol of another exposed port',
        ),
    ),
    Invalid(
        "service-port-equals-other-container-port",
        "service-ports-unique",
        app(containers=[container(ports=[port(servicePort=9090)]), _SIDECAR]),
        "spec.containers[1].ports[0].servicePort: Service port 9090/TCP is already used by port "
        '"http" of container "app" (servicePort defaults to containerPort): set a distinct '
        "servicePort, or expose: false",
        (
            "spec.containers:",
            'exposed port "http" has the Service port and protocol of another exposed port',
        ),
    ),
    Invalid(
        "node-port-twice",
        "node-ports-unique",
        app(
            containers=[
                container(ports=[port(nodePort=30080), port("admin", 9000, nodePort=30080)])
            ],
            service={"type": "NodePort"},
        ),
        "spec.containers[0].ports[1].nodePort: nodePort 30080/TCP is already used by port "
        '"http" of container "app" (each nodePort/protocol opens one port on every node)',
        ("spec.containers:", 'port "http" has the nodePort and protocol of another port'),
    ),
    Invalid(
        "port-zero",
        "minimum",
        app(containers=[container(ports=[port(number=0)])]),
        f"{_P0}.containerPort: must be at least 1, got 0",
        (f"{_P0}.containerPort", "greater than or equal to 1"),
    ),
    Invalid(
        "port-70000",
        "maximum",
        app(containers=[container(ports=[port(number=70000)])]),
        f"{_P0}.containerPort: must be at most 65535, got 70000",
        (f"{_P0}.containerPort", "less than or equal to 65535"),
    ),
    Invalid(
        "service-port-70000",
        "maximum",
        app(containers=[container(ports=[port(servicePort=70000)])]),
        f"{_P0}.servicePort: must be at most 65535, got 70000",
        (f"{_P0}.servicePort", "less than or equal to 65535"),
    ),
    Invalid(
        "protocol-lowercase",
        "enum",
        app(containers=[container(ports=[port(protocol="tcp")])]),
        f'{_P0}.protocol: must be one of "TCP", "UDP", "SCTP", got "tcp"',
        (f"{_P0}.protocol", 'Unsupported value: "tcp"'),
    ),
    Invalid(
        "node-port-with-cluster-ip",
        "node-port-needs-type",
        app(containers=[container(ports=[port(nodePort=30080)])]),
        f"{_P0}.nodePort: nodePort needs service.type NodePort or LoadBalancer, but "
        "service.type is ClusterIP",
        ("spec.containers:", "a port sets nodePort", "service.type is ClusterIP"),
    ),
    Invalid(
        "node-port-with-headless",
        "node-port-needs-type",
        app(containers=[container(ports=[port(nodePort=30080)])], service={"type": "Headless"}),
        f"{_P0}.nodePort: nodePort needs service.type NodePort or LoadBalancer, but "
        "service.type is Headless",
        ("spec.containers:", "a port sets nodePort", "service.type is Headless"),
    ),
    Invalid(
        "node-port-80",
        "minimum",
        app(containers=[container(ports=[port(nodePort=80)])], service={"type": "NodePort"}),
        f"{_P0}.nodePort: must be at least 30000, got 80",
        (f"{_P0}.nodePort", "greater than or equal to 30000"),
    ),
    Invalid(
        "node-port-on-pod-only-port",
        "port-expose-only",
        app(
            containers=[
                container(ports=[port(), port("admin", 9000, expose=False, nodePort=30090)])
            ],
            service={"type": "NodePort"},
        ),
        "spec.containers[0].ports[1].nodePort: servicePort and nodePort need expose: true "
        "(this port is pod-only)",
        ("spec.containers[0].ports[1]", "servicePort and nodePort need expose: true"),
    ),
    Invalid(
        "port-name-not-iana",
        "port-name-iana",
        app(containers=[container(ports=[port("HTTP_1")])]),
        f'{_P0}.name: port name "HTTP_1" is not an IANA service name: use at most 15 '
        "lowercase letters, digits and '-', with at least one letter and no leading, trailing "
        "or double '-' (e.g. http, metrics, grpc-api)",
        (f"{_P0}.name", 'port name "HTTP_1" is not an IANA service name'),
    ),
    Invalid(
        "port-name-digits-only",
        "port-name-iana",
        app(containers=[container(ports=[port("8080")])]),
        f'{_P0}.name: port name "8080" is not an IANA service name: use at most 15 '
        "lowercase letters, digits and '-', with at least one letter and no leading, trailing "
        "or double '-' (e.g. http, metrics, grpc-api)",
        (f"{_P0}.name", 'port name "8080" is not an IANA service name'),
    ),
    Invalid(
        "port-name-too-long",
        "maxLength",
        app(containers=[container(ports=[port("http-and-grpc-api")])]),
        f"{_P0}.name: must be at most 15 characters, got 17",
        (f"{_P0}.name", "may not be more than 15"),
    ),
    Invalid(
        "no-exposed-port",
        "exposed-port-required",
        app(containers=[container(ports=[port(expose=False)])]),
        "spec.containers: at least one container port must be exposed: the Service needs a "
        "port (expose defaults to true)",
        ("spec.containers:", "at least one container port must be exposed"),
    ),
    Invalid(
        "probe-names-undeclared-port",
        "readinessProbe-httpGet-port-declared",
        app(containers=[container(readinessProbe={"httpGet": {"port": "web", "path": "/"}})]),
        'spec.containers[0].readinessProbe.httpGet.port: "web" names no port of container "app"',
        ("spec.containers[0].readinessProbe.httpGet.port", 'names no port of container "app"'),
    ),
    Invalid(
        "host-port",
        "unknown field",
        app(containers=[container(ports=[port(hostPort=80)])]),
        f"{_P0}.hostPort: unknown field: not part of the ExposedApp API",
        ('unknown field "spec.containers[0].ports[0].hostPort"',),
    ),
    # --- the rest of the spec ---
    Invalid(
        "missing-image",
        "required",
        app(containers=[{"name": "app", "ports": [port()]}]),
        "spec.containers[0].image: required value",
        ("spec.containers[0].image", "Required value"),
    ),
    Invalid(
        "no-containers",
        "minItems",
        app(containers=[]),
        "spec.containers: must have at least 1 item, got 0",
        ("spec.containers", "should have at least 1 items"),
    ),
    Invalid(
        "replicas-300",
        "maximum",
        app(replicas=300),
        "spec.replicas: must be at most 100, got 300",
        ("spec.replicas", "less than or equal to 100"),
    ),
    Invalid(
        "replicas-negative",
        "minimum",
        app(replicas=-1),
        "spec.replicas: must be at least 0, got -1",
        ("spec.replicas", "greater than or equal to 0"),
    ),
    Invalid(
        "container-names-twice",
        "container-names-unique",
        app(containers=[container(), container(ports=[port("metrics", 9090)])]),
        'spec.containers[1].name: container name "app" is already used by spec.containers[0]',
        ("spec.containers:", 'container name "app" is used by more than one container'),
    ),
    Invalid(
        "container-name-not-dns-label",
        "dns-label",
        app(containers=[container("App")]),
        'spec.containers[0].name: "App" must be a DNS-1123 label: lowercase letters, digits '
        "and '-', starting and ending with a letter or digit",
        ("spec.containers[0].name", '"App" must be a DNS-1123 label'),
    ),
    Invalid(
        "reserved-label",
        "reserved-labels-keys",
        app(podLabels={"exposedapp.dev/x": "v"}),
        'spec.podLabels[exposedapp.dev/x]: key "exposedapp.dev/x" uses a reserved prefix '
        "(exposedapp.dev/, kubernetes.io/, k8s.io/): the operator or Kubernetes owns these labels",
        ("spec.podLabels", 'key "exposedapp.dev/x" uses a reserved prefix'),
    ),
    Invalid(
        "reserved-annotation",
        "reserved-annotations-keys",
        app(podAnnotations={"kubernetes.io/x": "v"}),
        'spec.podAnnotations[kubernetes.io/x]: key "kubernetes.io/x" uses a reserved prefix '
        "(exposedapp.dev/, kubernetes.io/, k8s.io/): the operator or Kubernetes owns these "
        "annotations",
        ("spec.podAnnotations", 'key "kubernetes.io/x" uses a reserved prefix'),
    ),
    Invalid(
        "reserved-service-label",
        "reserved-labels-keys",
        app(service={"labels": {"k8s.io/x": "v"}}),
        'spec.service.labels[k8s.io/x]: key "k8s.io/x" uses a reserved prefix '
        "(exposedapp.dev/, kubernetes.io/, k8s.io/): the operator or Kubernetes owns these labels",
        ("spec.service.labels", 'key "k8s.io/x" uses a reserved prefix'),
    ),
    Invalid(
        "label-value-invalid",
        "pattern",
        app(podLabels={"team": "a b"}),
        "spec.podLabels[team]: must be a label value: at most 63 letters, digits, '-', '_' or "
        "'.', starting and ending with a letter or digit, got \"a b\"",
        ("spec.podLabels.team", "should match"),
    ),
    Invalid(
        "external-traffic-policy-with-cluster-ip",
        "external-traffic-policy-needs-type",
        app(service={"externalTrafficPolicy": "Local"}),
        "spec.service.externalTrafficPolicy: externalTrafficPolicy needs service.type NodePort "
        "or LoadBalancer, but service.type is ClusterIP",
        ("spec.service.externalTrafficPolicy", "needs service.type NodePort or LoadBalancer"),
    ),
    Invalid(
        "service-type-unknown",
        "enum",
        app(service={"type": "ExternalName"}),
        'spec.service.type: must be one of "ClusterIP", "NodePort", "LoadBalancer", "Headless", '
        'got "ExternalName"',
        ("spec.service.type", 'Unsupported value: "ExternalName"'),
    ),
    Invalid(
        "volume-mount-undeclared",
        "volume-mount-declared",
        app(containers=[container(volumeMounts=[{"name": "data", "mountPath": "/data"}])]),
        'spec.containers[0].volumeMounts[0].name: volume "data" is not declared in spec.volumes',
        ("spec.containers:", "every volumeMount must name a volume declared in spec.volumes"),
    ),
    Invalid(
        "mount-path-twice",
        "mount-paths-unique",
        app(
            containers=[
                container(
                    volumeMounts=[
                        {"name": "a", "mountPath": "/data"},
                        {"name": "b", "mountPath": "/data"},
                    ]
                )
            ],
            volumes=[{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}],
        ),
        'spec.containers[0].volumeMounts[1].mountPath: mountPath "/data" is already used by '
        "spec.containers[0].volumeMounts[0]",
        ("spec.containers[0].volumeMounts", "each volumeMount needs its own mountPath"),
    ),
    Invalid(
        "mount-path-relative",
        "mount-path-absolute",
        app(
            containers=[container(volumeMounts=[{"name": "a", "mountPath": "data"}])],
            volumes=[{"name": "a", "emptyDir": {}}],
        ),
        'spec.containers[0].volumeMounts[0].mountPath: must be an absolute path, got "data"',
        ("spec.containers[0].volumeMounts[0].mountPath", "must be an absolute path"),
    ),
    Invalid(
        "sub-path-escapes",
        "relative-path",
        app(
            containers=[
                container(volumeMounts=[{"name": "a", "mountPath": "/a", "subPath": "../etc"}])
            ],
            volumes=[{"name": "a", "emptyDir": {}}],
        ),
        "spec.containers[0].volumeMounts[0].subPath: must be a relative path without '..', "
        'got "../etc"',
        ("spec.containers[0].volumeMounts[0].subPath", "must be a relative path without '..'"),
    ),
    Invalid(
        "host-path-volume",
        "unknown field",
        app(volumes=[{"name": "root", "hostPath": {"path": "/"}}]),
        "spec.volumes[0].hostPath: unknown field: not part of the ExposedApp API",
        ('unknown field "spec.volumes[0].hostPath"',),
    ),
    Invalid(
        "volume-two-sources",
        "volume-source-one-of",
        app(volumes=[{"name": "v", "emptyDir": {}, "secret": {"secretName": "s"}}]),
        'spec.volumes[0]: volume "v" must set exactly one of configMap, secret, emptyDir, '
        "persistentVolumeClaim, projected, downwardAPI (hostPath and other volume types are "
        "not supported)",
        ("spec.volumes[0]", 'volume "v" must set exactly one of'),
    ),
    Invalid(
        "volume-names-twice",
        "volume-names-unique",
        app(volumes=[{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]),
        'spec.volumes[1].name: volume name "v" is already used by spec.volumes[0]',
        ("spec.volumes:", 'volume name "v" is used by more than one volume'),
    ),
    Invalid(
        "env-value-and-value-from",
        "env-value-or-value-from",
        app(
            containers=[
                container(
                    env=[
                        {
                            "name": "A",
                            "value": "1",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                        }
                    ]
                )
            ]
        ),
        "spec.containers[0].env[0]: set value or valueFrom, not both",
        ("spec.containers[0].env[0]", "set value or valueFrom, not both"),
    ),
    Invalid(
        "env-value-from-two-sources",
        "env-source-one-of",
        app(
            containers=[
                container(
                    env=[
                        {
                            "name": "A",
                            "valueFrom": {
                                "fieldRef": {"fieldPath": "metadata.name"},
                                "secretKeyRef": {"name": "s", "key": "k"},
                            },
                        }
                    ]
                )
            ]
        ),
        "spec.containers[0].env[0].valueFrom: valueFrom must set exactly one of "
        "configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef",
        ("spec.containers[0].env[0].valueFrom", "valueFrom must set exactly one of"),
    ),
    Invalid(
        "probe-two-handlers",
        "probe-handler-one-of",
        app(
            containers=[
                container(
                    livenessProbe={"tcpSocket": {"port": 8080}, "exec": {"command": ["true"]}}
                )
            ]
        ),
        "spec.containers[0].livenessProbe: a probe must set exactly one of exec, httpGet, "
        "tcpSocket, grpc",
        ("spec.containers[0].livenessProbe", "a probe must set exactly one of"),
    ),
    Invalid(
        "liveness-success-threshold",
        "liveness-success-threshold",
        app(
            containers=[
                container(livenessProbe={"tcpSocket": {"port": "http"}, "successThreshold": 2})
            ]
        ),
        "spec.containers[0].livenessProbe.successThreshold: must be 1 for a liveness probe, got 2",
        ("spec.containers[0].livenessProbe.successThreshold", "must be 1"),
    ),
    Invalid(
        "resource-quantity-invalid",
        "pattern",
        app(containers=[container(resources={"requests": {"cpu": "lots"}})]),
        "spec.containers[0].resources.requests[cpu]: must be a quantity such as 250m, 128Mi "
        'or 2, got "lots"',
        ("spec.containers[0].resources.requests.cpu", "should match"),
    ),
    Invalid(
        "rolling-update-with-recreate",
        "rolling-update-needs-type",
        app(updateStrategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
        "spec.updateStrategy.rollingUpdate: rollingUpdate is only allowed with type RollingUpdate",
        ("spec.updateStrategy.rollingUpdate", "only allowed with type RollingUpdate"),
    ),
    Invalid(
        "rolling-update-stuck",
        "rolling-update-not-both-zero",
        app(updateStrategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
        "spec.updateStrategy.rollingUpdate: maxSurge and maxUnavailable cannot both be 0: the "
        "rollout could not make progress",
        ("spec.updateStrategy.rollingUpdate", "cannot both be 0"),
    ),
    Invalid(
        "max-surge-percent-invalid",
        "pattern",
        app(updateStrategy={"rollingUpdate": {"maxSurge": "150%"}}),
        "spec.updateStrategy.rollingUpdate.maxSurge: must be a percentage from 0% to 100%, "
        'got "150%"',
        ("spec.updateStrategy.rollingUpdate.maxSurge", "should match"),
    ),
    Invalid(
        "name-too-long",
        "name-length",
        app(name="a" * 47),
        f'metadata.name: "{"a" * 47}" must be at most 46 characters: Pods are named '
        "<name>-<hash10>-<suffix5> and a Pod name must fit in 63",
        ("metadata.name", "must be at most 46 characters"),
    ),
    Invalid(
        "name-with-dot",
        "name-dns1035",
        app(name="my.app"),
        'metadata.name: "my.app" must be a DNS-1035 label (a lowercase letter first, then '
        "lowercase letters, digits and '-', no '.'): the Service is named after the ExposedApp",
        ("metadata.name", "must be a DNS-1035 label"),
    ),
    Invalid(
        "name-starts-with-digit",
        "name-dns1035",
        app(name="1app"),
        'metadata.name: "1app" must be a DNS-1035 label (a lowercase letter first, then '
        "lowercase letters, digits and '-', no '.'): the Service is named after the ExposedApp",
        ("metadata.name", "must be a DNS-1035 label"),
    ),
    # --- what is NOT in the API (kubectl's default strict field validation names it) ---
    Invalid(
        "host-network",
        "unknown field",
        app(hostNetwork=True),
        "spec.hostNetwork: unknown field: not part of the ExposedApp API",
        ('unknown field "spec.hostNetwork"',),
    ),
    Invalid(
        "privileged",
        "unknown field",
        app(containers=[container(securityContext={"privileged": True})]),
        "spec.containers[0].securityContext.privileged: unknown field: not part of the "
        "ExposedApp API",
        ('unknown field "spec.containers[0].securityContext.privileged"',),
    ),
    Invalid(
        "probe-host",
        "unknown field",
        app(containers=[container(readinessProbe={"httpGet": {"port": 80, "host": "10.0.0.1"}})]),
        "spec.containers[0].readinessProbe.httpGet.host: unknown field: not part of the "
        "ExposedApp API",
        ('unknown field "spec.containers[0].readinessProbe.httpGet.host"',),
    ),
    # --- the Pod template: security, identity, scheduling, lifecycle, more containers ---
    Invalid(
        "capability-not-allowed",
        "enum",
        app(containers=[container(securityContext={"capabilities": {"add": ["NET_ADMIN"]}})]),
        "spec.containers[0].securityContext.capabilities.add[0]: must be one of "
        '"NET_BIND_SERVICE", got "NET_ADMIN"',
        (
            "spec.containers[0].securityContext.capabilities.add[0]",
            'Unsupported value: "NET_ADMIN"',
        ),
    ),
    Invalid(
        "root-without-opt-out",
        "root-needs-opt-out",
        app(securityContext={"runAsUser": 0}),
        "spec.securityContext.runAsUser: runAsUser 0 (root) needs runAsNonRoot: false: "
        "without it the kubelet refuses to start the container",
        ("spec.securityContext.runAsUser", "runAsUser 0 (root) needs runAsNonRoot: false"),
    ),
    Invalid(
        "container-root-without-opt-out",
        "container-root-needs-opt-out",
        app(containers=[container(securityContext={"runAsUser": 0})]),
        "spec.containers[0].securityContext.runAsUser: runAsUser 0 (root) needs "
        "spec.securityContext.runAsNonRoot: false",
        ("spec.containers:", "runAsUser 0 (root) needs spec.securityContext.runAsNonRoot"),
    ),
    Invalid(
        "seccomp-unconfined",
        "enum",
        app(securityContext={"seccompProfile": {"type": "Unconfined"}}),
        'spec.securityContext.seccompProfile.type: must be one of "RuntimeDefault", '
        '"Localhost", got "Unconfined"',
        ("spec.securityContext.seccompProfile.type", 'Unsupported value: "Unconfined"'),
    ),
    Invalid(
        "seccomp-localhost-without-profile",
        "seccomp-localhost-profile",
        app(securityContext={"seccompProfile": {"type": "Localhost"}}),
        "spec.securityContext.seccompProfile.localhostProfile: localhostProfile is required "
        "with type Localhost, and only then",
        ("spec.securityContext.seccompProfile", "localhostProfile is required with type Localhost"),
    ),
    Invalid(
        "run-as-user-negative",
        "minimum",
        app(securityContext={"runAsUser": -1}),
        "spec.securityContext.runAsUser: must be at least 0, got -1",
        ("spec.securityContext.runAsUser", "greater than or equal to 0"),
    ),
    Invalid(
        "service-account-name-invalid",
        "pattern",
        app(serviceAccountName="Deploy_Bot"),
        "spec.serviceAccountName: must be a DNS subdomain: lowercase letters, digits, '-' and "
        "'.', starting and ending with a letter or digit, got \"Deploy_Bot\"",
        ("spec.serviceAccountName", "should match"),
    ),
    Invalid(
        "image-pull-policy-unknown",
        "enum",
        app(containers=[container(imagePullPolicy="Sometimes")]),
        'spec.containers[0].imagePullPolicy: must be one of "Always", "IfNotPresent", "Never", '
        'got "Sometimes"',
        ("spec.containers[0].imagePullPolicy", 'Unsupported value: "Sometimes"'),
    ),
    Invalid(
        "image-pull-secret-without-name",
        "required",
        app(imagePullSecrets=[{}]),
        "spec.imagePullSecrets[0].name: required value",
        ("spec.imagePullSecrets[0].name", "Required value"),
    ),
    Invalid(
        "node-selector-value-invalid",
        "pattern",
        app(nodeSelector={"disk": "fast ssd"}),
        "spec.nodeSelector[disk]: must be a label value: at most 63 letters, digits, '-', '_' "
        "or '.', starting and ending with a letter or digit, got \"fast ssd\"",
        ("spec.nodeSelector.disk", "should match"),
    ),
    Invalid(
        "toleration-exists-with-value",
        "toleration-exists-no-value",
        app(tolerations=[{"key": "gpu", "operator": "Exists", "value": "yes"}]),
        "spec.tolerations[0].value: a toleration with operator Exists takes no value",
        ("spec.tolerations[0].value", "a toleration with operator Exists takes no value"),
    ),
    Invalid(
        "toleration-without-key",
        "toleration-empty-key-exists",
        app(tolerations=[{"operator": "Equal", "value": "yes"}]),
        "spec.tolerations[0].operator: a toleration without a key needs operator Exists",
        ("spec.tolerations[0].operator", "a toleration without a key needs operator Exists"),
    ),
    Invalid(
        "toleration-seconds-without-no-execute",
        "toleration-seconds-no-execute",
        app(tolerations=[{"key": "gpu", "effect": "NoSchedule", "tolerationSeconds": 60}]),
        "spec.tolerations[0].tolerationSeconds: tolerationSeconds needs effect NoExecute",
        ("spec.tolerations[0].tolerationSeconds", "tolerationSeconds needs effect NoExecute"),
    ),
    Invalid(
        "affinity-operator-unknown",
        "enum",
        app(
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "Near"}]}
                        ]
                    }
                }
            }
        ),
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
        'nodeSelectorTerms[0].matchExpressions[0].operator: must be one of "In", "NotIn", '
        '"Exists", "DoesNotExist", "Gt", "Lt", got "Near"',
        (
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
            "nodeSelectorTerms[0].matchExpressions[0].operator",
            'Unsupported value: "Near"',
        ),
    ),
    Invalid(
        "spread-min-domains-with-schedule-anyway",
        "min-domains-needs-do-not-schedule",
        app(
            topologySpreadConstraints=[
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "minDomains": 2,
                }
            ]
        ),
        "spec.topologySpreadConstraints[0].minDomains: minDomains needs whenUnsatisfiable "
        "DoNotSchedule",
        (
            "spec.topologySpreadConstraints[0].minDomains",
            "minDomains needs whenUnsatisfiable DoNotSchedule",
        ),
    ),
    Invalid(
        "priority-class-name-invalid",
        "pattern",
        app(priorityClassName="High Priority"),
        "spec.priorityClassName: must be a DNS subdomain: lowercase letters, digits, '-' and "
        "'.', starting and ending with a letter or digit, got \"High Priority\"",
        ("spec.priorityClassName", "should match"),
    ),
    Invalid(
        "grace-period-too-long",
        "maximum",
        app(terminationGracePeriodSeconds=100000),
        "spec.terminationGracePeriodSeconds: must be at most 86400, got 100000",
        ("spec.terminationGracePeriodSeconds", "less than or equal to 86400"),
    ),
    Invalid(
        "startup-probe-names-undeclared-port",
        "startupProbe-tcpSocket-port-declared",
        app(containers=[container(startupProbe={"tcpSocket": {"port": "web"}})]),
        'spec.containers[0].startupProbe.tcpSocket.port: "web" names no port of container "app"',
        ("spec.containers[0].startupProbe.tcpSocket.port", 'names no port of container "app"'),
    ),
    Invalid(
        "startup-probe-http-names-undeclared-port",
        "startupProbe-httpGet-port-declared",
        app(containers=[container(startupProbe={"httpGet": {"port": "web", "path": "/"}})]),
        'spec.containers[0].startupProbe.httpGet.port: "web" names no port of container "app"',
        ("spec.containers[0].startupProbe.httpGet.port", 'names no port of container "app"'),
    ),
    Invalid(
        "startup-probe-success-threshold",
        "startup-success-threshold",
        app(
            containers=[
                container(startupProbe={"tcpSocket": {"port": 8080}, "successThreshold": 2})
            ]
        ),
        "spec.containers[0].startupProbe.successThreshold: must be 1 for a startup probe, got 2",
        (
            "spec.containers[0].startupProbe.successThreshold",
            "startupProbe.successThreshold must be 1",
        ),
    ),
    Invalid(
        "pre-stop-two-handlers",
        "lifecycle-handler-one-of",
        app(
            containers=[
                container(
                    lifecycle={"preStop": {"sleep": {"seconds": 5}, "exec": {"command": ["true"]}}}
                )
            ]
        ),
        "spec.containers[0].lifecycle.preStop: a lifecycle handler must set exactly one of "
        "exec, httpGet, sleep",
        (
            "spec.containers[0].lifecycle.preStop",
            "a lifecycle handler must set exactly one of exec, httpGet, sleep",
        ),
    ),
    Invalid(
        "post-start-names-undeclared-port",
        "lifecycle-postStart-port-declared",
        app(containers=[container(lifecycle={"postStart": {"httpGet": {"port": "admin"}}})]),
        'spec.containers[0].lifecycle.postStart.httpGet.port: "admin" names no port of '
        'container "app"',
        ("spec.containers[0].lifecycle.postStart.httpGet.port", 'names no port of container "app"'),
    ),
    Invalid(
        "pre-stop-names-undeclared-port",
        "lifecycle-preStop-port-declared",
        app(containers=[container(lifecycle={"preStop": {"httpGet": {"port": "admin"}}})]),
        'spec.containers[0].lifecycle.preStop.httpGet.port: "admin" names no port of '
        'container "app"',
        ("spec.containers[0].lifecycle.preStop.httpGet.port", 'names no port of container "app"'),
    ),
    Invalid(
        "env-from-two-sources",
        "env-from-one-of",
        app(
            containers=[
                container(envFrom=[{"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}])
            ]
        ),
        "spec.containers[0].envFrom[0]: an envFrom entry must set exactly one of configMapRef, "
        "secretRef",
        ("spec.containers[0].envFrom[0]", "envFrom entries must set exactly one of"),
    ),
    Invalid(
        "termination-message-policy-unknown",
        "enum",
        app(containers=[container(terminationMessagePolicy="Logs")]),
        'spec.containers[0].terminationMessagePolicy: must be one of "File", '
        '"FallbackToLogsOnError", got "Logs"',
        ("spec.containers[0].terminationMessagePolicy", 'Unsupported value: "Logs"'),
    ),
    Invalid(
        "init-container-with-ports",
        "init-container-ports-need-sidecar",
        app(initContainers=[container("migrate", "shop:1", [port("db", 5432)])]),
        'spec.initContainers[0].ports: init container "migrate" declares ports, which only a '
        "sidecar (restartPolicy: Always) can: an init container ends before the app starts",
        ("spec.initContainers[0].ports", "only a sidecar (restartPolicy: Always) can declare"),
    ),
    Invalid(
        "init-container-with-probe",
        "init-container-probes-need-sidecar",
        app(
            initContainers=[
                container("migrate", "shop:1", [], readinessProbe={"exec": {"command": ["true"]}})
            ]
        ),
        "spec.initContainers[0].readinessProbe: readinessProbe needs a sidecar (restartPolicy: "
        'Always): init container "migrate" runs to completion',
        ("spec.initContainers[0]", "probes and lifecycle hooks need a sidecar"),
    ),
    Invalid(
        "init-container-restart-policy-unknown",
        "enum",
        app(initContainers=[container("log", "shipper:1", [], restartPolicy="OnFailure")]),
        'spec.initContainers[0].restartPolicy: must be one of "Always", got "OnFailure"',
        ("spec.initContainers[0].restartPolicy", 'Unsupported value: "OnFailure"'),
    ),
    Invalid(
        "init-container-name-of-a-container",
        "init-container-names-apart",
        app(initContainers=[container("app", "shop:1", [])]),
        'spec.initContainers[0].name: container name "app" is already used by a container',
        ("spec.initContainers", "init container names must differ from container names"),
    ),
    Invalid(
        "init-container-names-twice",
        "container-names-unique",
        app(initContainers=[container("a", "x:1", []), container("a", "x:1", [])]),
        'spec.initContainers[1].name: container name "a" is already used by spec.initContainers[0]',
        ("spec.initContainers:", 'container name "a" is used by more than one container'),
    ),
    Invalid(
        "sidecar-port-name-of-a-container",
        "sidecar-port-names-apart",
        app(
            initContainers=[
                container("proxy", "envoy:1", [port("http", 15001)], restartPolicy="Always")
            ]
        ),
        'spec.initContainers[0].ports[0].name: port name "http" is already used by container '
        f'"app" {_SHARED}',
        ("spec.initContainers:", "a sidecar's port names must differ from the containers'"),
    ),
    Invalid(
        "sidecar-container-port-of-a-container",
        "sidecar-container-ports-apart",
        app(
            initContainers=[
                container("proxy", "envoy:1", [port("proxy", 8080)], restartPolicy="Always")
            ]
        ),
        'spec.initContainers[0].ports[0].containerPort: 8080/TCP is already used by port "http" '
        f'of container "app" {_SHARED}',
        ("spec.initContainers:", "a sidecar's containerPort/protocol must differ"),
    ),
    Invalid(
        "sidecar-service-port-of-a-container",
        "sidecar-service-ports-apart",
        app(
            initContainers=[
                container(
                    "proxy",
                    "envoy:1",
                    [port("proxy", 15001, servicePort=8080)],
                    restartPolicy="Always",
                )
            ]
        ),
        "spec.initContainers[0].ports[0].servicePort: Service port 8080/TCP is already used by "
        'port "http" of container "app" (servicePort defaults to containerPort): set a '
        "distinct servicePort, or expose: false",
        ("spec.initContainers:", "an exposed sidecar port needs its own Service port"),
    ),
    Invalid(
        "sidecar-node-port-of-a-container",
        "sidecar-node-ports-apart",
        app(
            containers=[container(ports=[port(nodePort=30080)])],
            initContainers=[
                container(
                    "proxy",
                    "envoy:1",
                    [port("proxy", 15001, nodePort=30080)],
                    restartPolicy="Always",
                )
            ],
            service={"type": "NodePort"},
        ),
        "spec.initContainers[0].ports[0].nodePort: nodePort 30080/TCP is already used by port "
        '"http" of container "app" (each nodePort/protocol opens one port on every node)',
        ("spec.initContainers:", "each nodePort/protocol can be used by one port only"),
    ),
    Invalid(
        "spread-selector-in-without-values",
        "label-requirement-values",
        app(
            topologySpreadConstraints=[
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchExpressions": [{"key": "tier", "operator": "In"}]},
                }
            ]
        ),
        "spec.topologySpreadConstraints[0].labelSelector.matchExpressions[0].values: "
        "operator In needs at least one value",
        (
            "spec.topologySpreadConstraints[0].labelSelector.matchExpressions[0].values",
            "In and NotIn need values; Exists and DoesNotExist take none",
        ),
    ),
    Invalid(
        "node-affinity-gt-two-values",
        "node-requirement-values",
        app(
            affinity={
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 1,
                            "preference": {
                                "matchExpressions": [
                                    {"key": "cores", "operator": "Gt", "values": ["4", "8"]}
                                ]
                            },
                        }
                    ]
                }
            }
        ),
        "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]."
        "preference.matchExpressions[0].values: operator Gt needs exactly one integer value",
        (
            "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]."
            "preference.matchExpressions[0].values",
            "Gt and Lt one integer",
        ),
    ),
    Invalid(
        "automount-not-a-boolean",
        "type",
        app(automountServiceAccountToken="yes"),
        'spec.automountServiceAccountToken: must be true or false, got "yes"',
        ("spec.automountServiceAccountToken", "must be of type boolean"),
    ),
    Invalid(
        "working-dir-too-long",
        "maxLength",
        app(containers=[container(workingDir="/" + "d" * 4096)]),
        "spec.containers[0].workingDir: must be at most 4096 characters, got 4097",
        ("spec.containers[0].workingDir", "may not be more than 4096"),
    ),
    Invalid(
        "supplemental-group-negative",
        "minimum",
        app(securityContext={"supplementalGroups": [-5]}),
        "spec.securityContext.supplementalGroups[0]: must be at least 0, got -5",
        ("spec.securityContext.supplementalGroups[0]", "greater than or equal to 0"),
    ),
    # --- rollouts and drain ---
    Invalid(
        "progress-deadline-not-above-min-ready",
        "progress-deadline-above-min-ready",
        app(minReadySeconds=30, progressDeadlineSeconds=30),
        "spec.progressDeadlineSeconds: must be greater than minReadySeconds (30), got 30: a "
        "Pod could never become available in time",
        ("spec.progressDeadlineSeconds", "must be greater than minReadySeconds"),
    ),
    Invalid(
        "progress-deadline-zero",
        "minimum",
        app(progressDeadlineSeconds=0),
        "spec.progressDeadlineSeconds: must be at least 1, got 0",
        ("spec.progressDeadlineSeconds", "greater than or equal to 1"),
    ),
    Invalid(
        "restarted-at-not-a-time",
        "pattern",
        app(restartedAt="yesterday"),
        'spec.restartedAt: must be an RFC 3339 time such as 2026-12-01T12:00:00Z, got "yesterday"',
        ("spec.restartedAt", "should match"),
    ),
    Invalid(
        "paused-not-a-boolean",
        "type",
        app(paused="yes"),
        'spec.paused: must be true or false, got "yes"',
        ("spec.paused", "must be of type boolean"),
    ),
    Invalid(
        "drain-delay-too-long",
        "maximum",
        app(drain={"delaySeconds": 301}),
        "spec.drain.delaySeconds: must be at most 300, got 301",
        ("spec.drain.delaySeconds", "less than or equal to 300"),
    ),
    Invalid(
        "drain-timeout-zero",
        "minimum",
        app(drain={"timeoutSeconds": 0}),
        "spec.drain.timeoutSeconds: must be at least 1, got 0",
        ("spec.drain.timeoutSeconds", "greater than or equal to 1"),
    ),
    Invalid(
        "drain-unknown-field",
        "unknown field",
        app(drain={"graceSeconds": 5}),
        "spec.drain.graceSeconds: unknown field: not part of the ExposedApp API",
        ('unknown field "spec.drain.graceSeconds"',),
    ),
    Invalid(
        "disruption-budget-both",
        "disruption-budget-one-of",
        app(disruptionBudget={"minAvailable": 1, "maxUnavailable": 1}),
        "spec.disruptionBudget: disruptionBudget must set exactly one of minAvailable, "
        "maxUnavailable",
        ("spec.disruptionBudget", "set exactly one of minAvailable and maxUnavailable"),
    ),
    Invalid(
        "disruption-budget-empty",
        "disruption-budget-one-of",
        app(disruptionBudget={}),
        "spec.disruptionBudget: disruptionBudget must set exactly one of minAvailable, "
        "maxUnavailable",
        ("spec.disruptionBudget", "set exactly one of minAvailable and maxUnavailable"),
    ),
    Invalid(
        "disruption-budget-percent-over-100",
        "pattern",
        app(disruptionBudget={"maxUnavailable": "150%"}),
        'spec.disruptionBudget.maxUnavailable: must be a percentage from 0% to 100%, got "150%"',
        ("spec.disruptionBudget.maxUnavailable", "should match"),
    ),
    Invalid(
        "revision-history-limit-too-high",
        "maximum",
        app(revisionHistoryLimit=101),
        "spec.revisionHistoryLimit: must be at most 100, got 101",
        ("spec.revisionHistoryLimit", "less than or equal to 100"),
    ),
    Invalid(
        "rollout-on-config-change-not-a-boolean",
        "type",
        app(rolloutOnConfigChange="always"),
        'spec.rolloutOnConfigChange: must be true or false, got "always"',
        ("spec.rolloutOnConfigChange", "must be of type boolean"),
    ),
)
