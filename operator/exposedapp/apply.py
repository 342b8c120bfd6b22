"""The only module that talks to the Kubernetes API (through pykube-ng).

It carries out a Plan, classifies what the API answers, and writes status and events.
Refusals that a person must fix (quota, Pod Security, validation, RBAC) come back as
Problems for the Degraded condition; transient trouble (conflicts, throttling, a server
that is away) is raised as TransientError so the work queue retries with backoff.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pykube
import requests
import requests.auth

from .desired import AppRef
from .labels import API_VERSION, APP_LABEL, FIELD_MANAGER, KIND, PLURAL
from .metrics import API_REQUESTS
from .plan import Action, Plan, ServiceConflict
from .status import Problem

__all__ = [
    "ApiClient",
    "ApplyResult",
    "KubeApi",
    "TokenFile",
    "TransientError",
    "check_service_owner",
    "controlled_by",
    "execute",
    "is_transient",
    "merge_patch",
    "owned_keys",
    "token_file_of",
]

logger = logging.getLogger(__name__)
COMPONENT = "exposedapp-operator"
METADATA_LIST_PAGE_SIZE = 500  # objects per page of the ghost sweep's metadata lists


class TransientError(RuntimeError):
    """Worth retrying soon: a conflict, throttling, a timeout, a server error.

    `partial` is what did land before the error (execute() runs actions in parallel): the
    caller must remember those creates and deletes, or its next run, on a cache that has
    not seen them yet, would make them again under other names.
    """

    partial: ApplyResult | None = None


@dataclass(frozen=True)
class Answer:
    code: int
    reason: str
    message: str
    body: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


@dataclass
class ApplyResult:
    done: list[Action] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    service: Mapping[str, Any] | None = None
    created_pods: list[str] = field(default_factory=list)
    deleted_pods: list[str] = field(default_factory=list)
    foreign_names: list[str] = field(default_factory=list)  # our Pod names taken by others
    # Our own Pods that lost our labels (edited by hand): invisible to our label-selected
    # watch, so never counted again, but they still hold their names.
    hidden_names: list[str] = field(default_factory=list)


def _problem(answer: Answer, what: str) -> Problem:
    message = f"{what}: {answer.message}"
    if answer.code == 403 and "exceeded quota" in answer.message:
        return Problem("QuotaExceeded", message)
    if answer.code == 403 and "PodSecurity" in answer.message:
        return Problem("PodSecurityRejected", message)
    if "ValidatingAdmissionPolicy" in answer.message or "admission webhook" in answer.message:
        return Problem("AdmissionRefused", message)  # a cluster policy, not our spec
    if answer.code == 403:
        return Problem("Forbidden", message)
    if answer.code == 422:
        return Problem("Invalid", message)
    return Problem("Refused", message)


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


def owned_keys(obj: Mapping[str, Any], manager: str = FIELD_MANAGER) -> dict[str, set[str]]:
    """What `manager` owns, read from managedFields: the label and annotation keys it
    applied, and the Service ports it wrote (by apply or by update) as "<port>/<protocol>"
    (the list's map keys)."""
    owned: dict[str, set[str]] = {"labels": set(), "annotations": set(), "ports": set()}
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") != manager:
            continue
        fields = entry.get("fieldsV1") or {}
        if entry.get("operation") == "Apply":
            metadata = fields.get("f:metadata") or {}
            for section in ("labels", "annotations"):
                owned[section].update(
                    k[2:] for k in metadata.get(f"f:{section}") or {} if k.startswith("f:")
                )
        # Port entries are ours whether our apply or our repairing update wrote them.
        for key in (fields.get("f:spec") or {}).get("f:ports") or {}:
            if key.startswith("k:"):
                port = json.loads(key[2:])
                owned["ports"].add(f"{port.get('port')}/{port.get('protocol', 'TCP')}")
    return owned


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """An RFC 7386 merge patch that turns old into new (lists are replaced whole)."""
    patch: dict[str, Any] = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif before != value:
            patch[key] = value
    return patch


def controlled_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Whether ``obj`` has a controller ownerReference to the object with ``uid``."""
    return any(
        ref.get("controller") and ref.get("uid") == uid
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _controller_name(obj: Mapping[str, Any]) -> str:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')} {ref.get('name')}"
    return "no controller (created by hand or by another tool)"


def check_service_owner(
    client: KubeApi, app: AppRef, name: str
) -> tuple[Mapping[str, Any] | None, ServiceConflict | None]:
    """When our cache has no Service of ours: is there one, and whose is it?"""
    answer = client.get("services", app.namespace, name)
    if answer.code == 404:
        return None, None
    if is_transient(answer):
        raise TransientError(f"reading Service {name}: {answer.code} {answer.message}")
    if not answer.ok:  # refused (403): whose it is stays unknown, so it is not written
        return None, ServiceConflict(name, "", f"{answer.code} {answer.reason}: {answer.message}")
    if controlled_by(answer.body, app.uid):
        return answer.body, None
    return None, ServiceConflict(name, _controller_name(answer.body))


def _landed(answer: Answer, result: ApplyResult, what: str) -> bool:
    """True if the write landed; a refusal becomes a problem, trouble a TransientError."""
    if answer.ok:
        return True
    if is_transient(answer):
        raise TransientError(f"{what}: {answer.code} {answer.message}")
    result.problems.append(_problem(answer, what))
    return False


async def _create_pod(client: KubeApi, action: Action, app: AppRef, result: ApplyResult) -> bool:
    assert action.body is not None
    answer = await asyncio.to_thread(client.create_pod, action.body)
    if answer.code == 409 and answer.reason == "AlreadyExists":
        # A stale cache: the Pod exists. Never a duplicate; but is it ours?
        existing = await asyncio.to_thread(client.get, "pods", app.namespace, action.name)
        if existing.ok and not controlled_by(existing.body, app.uid):
            result.foreign_names.append(action.name)
        elif existing.ok and _labels(existing.body).get(APP_LABEL) != app.name:
            result.hidden_names.append(action.name)
        return False
    if not _landed(answer, result, f"creating Pod {action.name}"):
        return False
    result.created_pods.append(action.name)
    return True


async def _delete_pod(client: KubeApi, action: Action, app: AppRef, result: ApplyResult) -> bool:
    answer = await asyncio.to_thread(client.delete, "pods", app.namespace, action.name, action.uid)
    if answer.code in (404, 409):  # already gone, or a successor with that name
        return False
    if not _landed(answer, result, f"deleting Pod {action.name}"):
        return False
    result.deleted_pods.append(action.name)
    return True


async def _write_service(client: KubeApi, action: Action, app: AppRef, result: ApplyResult) -> bool:
    assert action.body is not None
    if action.kind == "recreate_service":
        gone = await asyncio.to_thread(
            client.delete, "services", app.namespace, action.name, action.uid
        )
        if gone.code != 404 and not _landed(gone, result, f"deleting Service {action.name}"):
            return False
    if action.kind == "replace_service":
        answer = await asyncio.to_thread(client.replace_service, action.body)
        what = f"repairing Service {action.name}"
    else:
        answer = await asyncio.to_thread(client.apply_service, action.body)
        what = f"applying Service {action.name}"
    if not _landed(answer, result, what):
        return False
    result.service = answer.body
    return True


_WRITERS = {
    "create_pod": _create_pod,
    "delete_pod": _delete_pod,
    "apply_service": _write_service,
    "replace_service": _write_service,
    "recreate_service": _write_service,
}


async def _run(client: KubeApi, action: Action, app: AppRef, result: ApplyResult) -> None:
    if not await _WRITERS[action.kind](client, action, app, result):
        return
    result.done.append(action)
    logger.info(
        "%s",
        action.reason[:1].upper() + action.reason[1:],
        extra={"app": f"{app.namespace}/{app.name}", "action": action.kind},
    )


async def execute(client: KubeApi, app: AppRef, plan: Plan, parallel: int = 16) -> ApplyResult:
    """Carry out every action, in parallel within two phases: Pod deletes, then the rest.

    A plan may create Pods in the room that its own deletes make (a rolling update replaces
    as it removes). Those creates wait for the deletes, and are skipped if any delete was
    refused: run together, a refused or slower delete would leave more Pods than maxSurge
    allows.
    """
    result = ApplyResult()
    gate = asyncio.Semaphore(parallel)

    async def bounded(action: Action) -> None:
        async with gate:
            await _run(client, action, app, result)

    async def run_all(actions: Sequence[Action]) -> None:
        outcomes = await asyncio.gather(*(bounded(a) for a in actions), return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            if isinstance(errors[0], TransientError):
                errors[0].partial = result
            raise errors[0]

    deletes = [a for a in plan.actions if a.kind == "delete_pod"]
    rest = [a for a in plan.actions if a.kind != "delete_pod"]
    await run_all(deletes)
    if result.problems:
        # A delete was refused: the room it was to make is not there. The next reconcile
        # plans again from what exists.
        rest = [a for a in rest if a.kind != "create_pod"]
    await run_all(rest)
    return result


_PAST = {
    "creating": "Created",
    "deleting": "Deleted",
    "updating": "Updated",
    "recreating": "Recreated",
    "repairing": "Repaired",
}


def _past(reason: str) -> str:
    verb, _, rest = reason.partition(" ")
    return f"{_PAST.get(verb, verb.capitalize())} {rest}"


def summarise_done(done: Sequence[Action]) -> list[tuple[str, str]]:
    """One event for everything one reconcile did, in the past tense: [(reason, message)].

    The reason names the kind of change when there is one kind (CreatedPods, DeletedPods,
    AppliedService, RepairedService, RecreatedService), else "Reconciled"; Pods created or
    deleted together are named in one sentence. One event per reconcile keeps event writes
    per app low.
    """
    titles = {
        "create_pod": "CreatedPods",
        "delete_pod": "DeletedPods",
        "apply_service": "AppliedService",
        "replace_service": "RepairedService",
        "recreate_service": "RecreatedService",
    }
    groups: dict[str, list[Action]] = {}
    for action in done:
        groups.setdefault(action.kind, []).append(action)
    sentences: list[str] = []
    for kind, actions in groups.items():
        if kind in ("create_pod", "delete_pod") and len(actions) > 1:
            verb = "Created" if kind == "create_pod" else "Deleted"
            names = sorted(a.name for a in actions)
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            why = actions[0].reason.partition(": ")[2]
            sentences.append(f"{verb} {len(actions)} Pods ({', '.join(names[:10])}{more}): {why}")
        else:
            sentences.extend(_past(a.reason) for a in actions)
    if not sentences:
        return []
    reason = titles[next(iter(groups))] if len(groups) == 1 else "Reconciled"
    return [(reason, "; ".join(sentences))]
