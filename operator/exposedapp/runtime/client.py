"""The one client of the Kubernetes API (pykube-ng): requests, credentials, answers.

Every request answers an Answer (status code, reason, message, body) instead of raising;
whether to retry is decided from the status code (``is_transient``), never from message
text. Credentials from a token file are read again when the file changes.
"""

from __future__ import annotations

import datetime
import json
import logging
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pykube
import requests
import requests.auth

from ..domain.desired import AppRef
from ..domain.labels import API_VERSION, APP_LABEL, FIELD_MANAGER, KIND, PLURAL
from .metrics import API_REQUESTS

__all__ = ["Answer", "ApiClient", "KubeApi", "TokenFile", "is_transient", "token_file_of"]

logger = logging.getLogger(__name__)
COMPONENT = "exposedapp-operator"
METADATA_LIST_PAGE_SIZE = 500  # objects per page of the ghost sweep's metadata lists


@dataclass(frozen=True)
class Answer:
    code: int
    reason: str
    message: str
    body: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


def is_transient(answer: Answer) -> bool:
    """Worth retrying as it is: a conflict, throttling, a server error, no answer at all.

    Anything else (400, 403, 404, 422) is a refusal that the same request will meet again.
    """
    return answer.code in (409, 429) or answer.code >= 500 or answer.code == 0


SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class TokenFile(requests.auth.AuthBase):
    """A bearer token read from a file, and read again whenever the file changes.

    Projected ServiceAccount tokens expire and are rotated in place by the kubelet; a
    token read once at start-up would make every write of a long-running operator fail
    with 401. The file is checked (a stat) at each request and read again when its
    modification time or size changed, as client-go's cached token file source does.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[float, int] | None = None
        self._token = ""

    def token(self) -> str:
        stat = self.path.stat()
        with self._lock:
            if self._seen != (stat.st_mtime, stat.st_size):
                self._token = self.path.read_text().strip()
                self._seen = (stat.st_mtime, stat.st_size)
            return self._token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request


def token_file_of(config: pykube.KubeConfig) -> Path | None:
    """The token file the credentials come from, if they come from one.

    In a Pod: the projected ServiceAccount token. With a kubeconfig: a user's
    ``tokenFile`` (client-go's field, which pykube-ng does not read).
    """
    user = config.user or {}
    if user.get("tokenFile"):
        path = Path(str(user["tokenFile"])).expanduser()
        # Relative to the kubeconfig's own directory, as client-go reads it.
        if not path.is_absolute() and config.filepath:
            path = Path(config.filepath).expanduser().parent / path
        return path
    if config.filepath is None and SERVICE_ACCOUNT_TOKEN.exists():
        return SERVICE_ACCOUNT_TOKEN  # in a Pod: pykube read the ServiceAccount's token
    return None


class KubeApi(Protocol):
    """The API requests a reconcile makes (ApiClient's; a test's scripted fake has the
    same shape). Each is synchronous, run in a worker thread, and answers an Answer
    (status code, reason, message, body) instead of raising."""

    def get(self, kind: str, namespace: str, name: str) -> Answer: ...
    def create_pod(self, body: Mapping[str, Any]) -> Answer: ...
    def patch_pod(self, namespace: str, name: str, patch: Mapping[str, Any]) -> Answer: ...
    def create_revision(self, body: Mapping[str, Any]) -> Answer: ...
    def list_revisions(self, namespace: str, app: str) -> Answer: ...
    def apply_budget(self, body: Mapping[str, Any]) -> Answer: ...
    def delete_budget(self, namespace: str, name: str, uid: str | None) -> Answer: ...
    def delete_revision(self, namespace: str, name: str, uid: str | None) -> Answer: ...
    def delete(self, kind: str, namespace: str, name: str, uid: str | None) -> Answer: ...
    def apply_service(self, body: Mapping[str, Any]) -> Answer: ...
    def replace_service(self, body: Mapping[str, Any]) -> Answer: ...
    def patch_status(self, app: AppRef, patch: Mapping[str, Any]) -> Answer: ...
    def post_event(
        self, app: AppRef, kind: str, reason: str, message: str, name: str | None = None
    ) -> Answer: ...
    def get_event(self, namespace: str, name: str) -> Answer: ...
    def patch_event_series(
        self, namespace: str, name: str, count: int, observed: datetime.datetime
    ) -> Answer: ...


class ApiClient:
    """A thin, synchronous pykube-ng wrapper; called from worker threads. A KubeApi."""

    def __init__(self, http: pykube.HTTPClient) -> None:
        self.http = http

    @classmethod
    def from_env(cls, connections: int = 32) -> ApiClient:
        """A client for the in-cluster ServiceAccount, else $KUBECONFIG / ~/.kube/config.

        Credentials from a token file are read again whenever the file changes.
        """
        config = pykube.KubeConfig.from_env()
        # One keep-alive connection per worker thread: requests' default pool keeps 10 and
        # would open (and throw away) a new TLS connection for every request beyond that.
        adapter = pykube.http.KubernetesHTTPAdapter(config, pool_maxsize=connections)
        http = pykube.HTTPClient(config, timeout=30, http_adapter=adapter)
        token_file = token_file_of(config)
        if token_file is not None:
            http.session.auth = TokenFile(token_file)
        return cls(http)

    def call(
        self,
        method: str,
        url: str,
        *,
        version: str = "v1",
        namespace: str | None = None,
        body: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
        accept: str | None = None,
    ) -> Answer:
        kwargs: dict[str, Any] = {"url": url, "version": version}
        headers: dict[str, str] = {}
        if namespace is not None:
            kwargs["namespace"] = namespace
        if body is not None:
            kwargs["data"] = json.dumps(body)
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        if headers:
            kwargs["headers"] = headers
        if params:
            kwargs["params"] = dict(params)
        try:
            response = self.http.request(method, **kwargs)
        except requests.RequestException as error:
            API_REQUESTS.labels(verb=method, code="0").inc()
            return Answer(0, "ConnectionError", str(error), {})
        API_REQUESTS.labels(verb=method, code=str(response.status_code)).inc()
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.ok:
            return Answer(response.status_code, "", "", payload)
        return Answer(
            response.status_code,
            payload.get("reason", ""),
            payload.get("message", response.text[:500]),
            payload,
        )

    # -- children ------------------------------------------------------------------------
    def create_pod(self, body: Mapping[str, Any]) -> Answer:
        return self.call(
            "POST",
            "pods",
            namespace=body["metadata"]["namespace"],
            body=body,
            params={"fieldManager": FIELD_MANAGER},
        )

    def list_uids(
        self, version: str, plural: str, namespace: str, label_selector: str | None
    ) -> set[str] | None:
        """The UIDs of what exists now (metadata only, a consistent read); None if unknown.

        In pages: one response for 2,000 Pods' metadata is megabytes parsed at once, right
        after a restart's listing. The pages of one list are one snapshot (the continue
        token carries its resourceVersion), so the read stays consistent.
        """
        params = {"limit": str(METADATA_LIST_PAGE_SIZE)}
        if label_selector:
            params["labelSelector"] = label_selector
        uids: set[str] = set()
        while True:
            answer = self.call(
                "GET",
                plural,
                version=version,
                namespace=namespace,
                params=params,
                accept="application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            )
            if not answer.ok:
                return None  # an expired continue token (410) too: the next sweep looks again
            uids |= {item["metadata"]["uid"] for item in answer.body.get("items") or []}
            token = (answer.body.get("metadata") or {}).get("continue")
            if not token:
                return uids
            params["continue"] = token

    def get(self, kind: str, namespace: str, name: str) -> Answer:
        return self.call("GET", f"{kind}/{name}", namespace=namespace)

    def delete(self, kind: str, namespace: str, name: str, uid: str | None) -> Answer:
        options: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if uid:
            options["preconditions"] = {"uid": uid}
        return self.call("DELETE", f"{kind}/{name}", namespace=namespace, body=options)

    def patch_pod(self, namespace: str, name: str, patch: Mapping[str, Any]) -> Answer:
        """A JSON merge patch (RFC 7386) of a Pod's metadata; a ``metadata.uid`` in it is a
        precondition (409 for another Pod of that name)."""
        return self.call(
            "PATCH",
            f"pods/{name}",
            namespace=namespace,
            body=patch,
            content_type="application/merge-patch+json",
            params={"fieldManager": FIELD_MANAGER},
        )

    def apply_budget(self, body: Mapping[str, Any]) -> Answer:
        """Server-side apply of the app's PodDisruptionBudget, as for its Service."""
        return self.call(
            "PATCH",
            f"poddisruptionbudgets/{body['metadata']['name']}",
            version="policy/v1",
            namespace=body["metadata"]["namespace"],
            body=body,
            content_type="application/apply-patch+yaml",
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
        )

    def delete_budget(self, namespace: str, name: str, uid: str | None) -> Answer:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if uid:
            options["preconditions"] = {"uid": uid}
        return self.call(
            "DELETE",
            f"poddisruptionbudgets/{name}",
            version="policy/v1",
            namespace=namespace,
            body=options,
        )

    def create_revision(self, body: Mapping[str, Any]) -> Answer:
        return self.call(
            "POST",
            "controllerrevisions",
            version="apps/v1",
            namespace=body["metadata"]["namespace"],
            body=body,
            params={"fieldManager": FIELD_MANAGER},
        )

    def list_revisions(self, namespace: str, app: str) -> Answer:
        """The app's ControllerRevisions, metadata only (their numbers are labels too)."""
        return self.call(
            "GET",
            "controllerrevisions",
            version="apps/v1",
            namespace=namespace,
            params={"labelSelector": f"{APP_LABEL}={app}"},
            accept="application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        )

    def delete_revision(self, namespace: str, name: str, uid: str | None) -> Answer:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if uid:
            options["preconditions"] = {"uid": uid}
        return self.call(
            "DELETE",
            f"controllerrevisions/{name}",
            version="apps/v1",
            namespace=namespace,
            body=options,
        )

    def apply_service(self, body: Mapping[str, Any]) -> Answer:
        # Server-side apply under one field manager: we own exactly what we send, and take
        # it back (force) from whoever edited it by hand. clusterIP, allocated nodePorts and
        # others' fields are not in the body, so they are never touched.
        return self.call(
            "PATCH",
            f"services/{body['metadata']['name']}",
            namespace=body["metadata"]["namespace"],
            body=body,
            content_type="application/apply-patch+yaml",
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
        )

    def replace_service(self, body: Mapping[str, Any]) -> Answer:
        # An update, not an apply: it can remove or renumber port entries that another
        # field manager added or re-keyed, which a forced apply cannot. The body carries
        # the resourceVersion it was built from, so a Service changed meanwhile is a 409
        # (retried on a fresh read), never overwritten blindly.
        return self.call(
            "PUT",
            f"services/{body['metadata']['name']}",
            namespace=body["metadata"]["namespace"],
            body=body,
            params={"fieldManager": FIELD_MANAGER},
        )

    # -- the app -------------------------------------------------------------------------
    def patch_status(self, app: AppRef, patch: Mapping[str, Any]) -> Answer:
        return self.call(
            "PATCH",
            f"{PLURAL}/{app.name}/status",
            version=API_VERSION,
            namespace=app.namespace,
            body={"status": patch},
            content_type="application/merge-patch+json",
            params={"fieldManager": FIELD_MANAGER},
        )

    def post_event(
        self, app: AppRef, kind: str, reason: str, message: str, name: str | None = None
    ) -> Answer:
        """Create an Event about ``app``; ``name`` None: a fresh one (kubectl's convention,
        ``<object>.<unique suffix>``); a name that exists answers 409."""
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {
                "name": name or f"{app.name}.{secrets.token_hex(8)}",
                "namespace": app.namespace,
            },
            "regarding": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": app.name,
                "namespace": app.namespace,
                "uid": app.uid,
            },
            "reason": reason,
            # The API bounds a note to 1024 bytes, not characters.
            "note": message.encode()[:1024].decode(errors="ignore"),
            "type": kind,
            "action": reason,
            "eventTime": now,
            "reportingController": f"{API_VERSION.split('/')[0]}/{COMPONENT}",
            "reportingInstance": COMPONENT,
        }
        return self.call(
            "POST", "events", version="events.k8s.io/v1", namespace=app.namespace, body=event
        )

    def get_event(self, namespace: str, name: str) -> Answer:
        return self.call("GET", f"events/{name}", version="events.k8s.io/v1", namespace=namespace)

    def patch_event_series(
        self, namespace: str, name: str, count: int, observed: datetime.datetime
    ) -> Answer:
        """Count repeats on an Event (events.k8s.io series: count >= 2, the last time)."""
        series = {
            "count": max(count, 2),
            "lastObservedTime": observed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        return self.call(
            "PATCH",
            f"events/{name}",
            version="events.k8s.io/v1",
            namespace=namespace,
            body={"series": series},
            content_type="application/merge-patch+json",
        )
