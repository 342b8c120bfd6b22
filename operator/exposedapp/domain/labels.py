"""Label and annotation keys, in one place, and the builders of identity and selector.

Identity (what the Service selects and what the operator counts) uses reserved
`exposedapp.dev/` keys that an ExposedApp's podLabels can never set; the app's UID is part
of it, so Pods of a deleted-and-recreated app with the same name are never mixed in.
"""

from __future__ import annotations

__all__ = [
    "API_VERSION",
    "APP_LABEL",
    "CONFIG_HASH_ANNOTATION",
    "DRAIN_ANNOTATION",
    "FIELD_MANAGER",
    "GROUP",
    "KIND",
    "MANAGED_BY",
    "PLURAL",
    "RESTARTED_AT_ANNOTATION",
    "REVISION_LABEL",
    "SERVICE_NAME_LABEL",
    "TEMPLATE_ANNOTATION",
    "TEMPLATE_HASH_LABEL",
    "UID_LABEL",
    "VERSION",
    "identity_labels",
    "recommended_labels",
    "selector_string",
]

GROUP = "exposedapp.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ExposedApp"
PLURAL = "exposedapps"

FIELD_MANAGER = "exposedapp-operator"
MANAGED_BY = "exposedapp-operator"

APP_LABEL = f"{GROUP}/app"
UID_LABEL = f"{GROUP}/app-uid"
# Set by the EndpointSlice controller on each slice: the Service it belongs to.
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TEMPLATE_HASH_LABEL = f"{GROUP}/template-hash"
# On a ControllerRevision of the rollout history: its number, readable from its metadata.
REVISION_LABEL = f"{GROUP}/revision"
# What the Pod was built from, so a replacement can say what changed (ports, images).
TEMPLATE_ANNOTATION = f"{GROUP}/template"
# On the Pods of an app restarted by spec.restartedAt (as kubectl.kubernetes.io/restartedAt
# is on a restarted Deployment's): the stamp, so that a new one makes a new template.
RESTARTED_AT_ANNOTATION = f"{GROUP}/restartedAt"
# On the Pods of an app with spec.rolloutOnConfigChange: a digest of the data of every
# ConfigMap (and readable Secret) they reference, so that new data makes a new template.
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
# On a Pod leaving the Service before its deletion: {"since": RFC 3339, "reason": why}. The
# drain's state lives on the Pod itself, so a restarted operator finishes it.
DRAIN_ANNOTATION = f"{GROUP}/drain"


def identity_labels(app_name: str, app_uid: str) -> dict[str, str]:
    """The Service selector and the operator's own notion of "our Pods"."""
    return {APP_LABEL: app_name, UID_LABEL: app_uid}


def recommended_labels(app_name: str) -> dict[str, str]:
    """The app.kubernetes.io set, for people and tools; never used to select."""
    return {
        "app.kubernetes.io/name": app_name,
        "app.kubernetes.io/instance": app_name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector_string(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
