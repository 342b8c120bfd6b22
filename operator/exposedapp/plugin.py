"""`kubectl xapp`: rollouts and the live port map of ExposedApps, with kubectl's feel.

Installed with the package as ``kubectl-xapp`` on the PATH, which kubectl runs as the
plugin ``kubectl xapp``::

    kubectl xapp rollout status|history|undo|restart|pause|resume NAME [-n NAMESPACE]
    kubectl xapp ports NAME [-n NAMESPACE]

Every change is a write to the ExposedApp's spec (restartedAt, paused, or the spec a
ControllerRevision recorded, for undo): the ExposedApp stays the one source of truth, and a
GitOps tool sees the change. The rendering functions are pure (exact output for fixed
inputs, tests/unit/test_plugin.py); ``Api`` is the one place that talks to the cluster,
through pykube-ng and the kubeconfig (``--kubeconfig``, $KUBECONFIG, ~/.kube/config, or
the in-cluster ServiceAccount).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pykube
import requests
import yaml

from .domain.desired import AppRef, build_desired
from .domain.history import NOT_RELEASED
from .domain.labels import API_VERSION, APP_LABEL, PLURAL, SERVICE_NAME_LABEL, TEMPLATE_HASH_LABEL
from .domain.model import SpecError, parse_spec

__all__ = [
    "Api",
    "main",
    "render_history",
    "render_ports",
    "rollout_progress",
    "undo_target",
]

RESOURCE = "exposedapp.exposedapp.dev"


class PluginError(RuntimeError):
    """What went wrong, in a sentence for the terminal (exit code 1)."""


# --- pure: what to say ----------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    done: bool
    message: str
    failed: bool = False


def _conditions(app: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {c.get("type", ""): c for c in (app.get("status") or {}).get("conditions") or []}


def rollout_progress(app: Mapping[str, Any]) -> Progress:
    """Where a rollout stands, in kubectl's words for a Deployment's (rollout status)."""
    name = app["metadata"]["name"]
    status = app.get("status") or {}
    generation = app["metadata"].get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return Progress(False, "Waiting for the operator to observe the latest spec...")
    conditions = _conditions(app)
    stalled = conditions.get("Stalled", {})
    if stalled.get("status") == "True":
        if stalled.get("reason") == "ProgressDeadlineExceeded":
            return Progress(False, f'exposedapp "{name}" exceeded its progress deadline', True)
        return Progress(
            False, f'exposedapp "{name}" is degraded: {stalled.get("message", "")}', True
        )
    if conditions.get("Progressing", {}).get("reason") == "Paused":
        return Progress(
            False,
            f"Waiting for rollout to finish: paused (resume with `kubectl xapp rollout resume "
            f"{name}`)...",
        )
    wanted = (app.get("spec") or {}).get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < wanted:
        return Progress(
            False,
            f"Waiting for rollout to finish: {updated} out of {wanted} new replicas have been "
            "updated...",
        )
    if total > updated:
        return Progress(
            False,
            f"Waiting for rollout to finish: {total - updated} old replicas are pending "
            "termination...",
        )
    if available < updated:
        return Progress(
            False,
            f"Waiting for rollout to finish: {available} of {updated} updated replicas are "
            "available...",
        )
    ready = conditions.get("Ready", {})
    if ready.get("status") == "True":
        return Progress(True, f'exposedapp "{name}" successfully rolled out')
    return Progress(
        False,
        f"Waiting for rollout to finish: {ready.get('reason', 'Unknown')}: "
        f"{ready.get('message', '')}",
    )


def _release_summary(spec: Mapping[str, Any]) -> str:
    """Images and ports of a recorded spec: what a person tells releases apart by."""
    parts = []
    for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
        ports = ",".join(
            f"{p.get('name')}:{p.get('containerPort')}" for p in container.get("ports") or []
        )
        parts.append(
            f"{container.get('name')}={container.get('image')}" + (f" [{ports}]" if ports else "")
        )
    if spec.get("restartedAt"):
        parts.append(f"restartedAt={spec['restartedAt']}")
    return " ".join(parts)


def _revisions_sorted(revisions: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(revisions, key=lambda r: int(r.get("revision") or 0))


def render_history(
    name: str, revisions: Sequence[Mapping[str, Any]], current_hash: str | None
) -> str:
    """`rollout history`: one line per revision, oldest first, the current one marked."""
    lines = [f"exposedapp.exposedapp.dev/{name}", "REVISION  TEMPLATE    CHANGE"]
    for revision in _revisions_sorted(revisions):
        template = (revision["metadata"].get("labels") or {}).get(TEMPLATE_HASH_LABEL, "")
        mark = "  (current)" if template == current_hash else ""
        spec = (revision.get("data") or {}).get("spec") or {}
        lines.append(
            f"{revision.get('revision'):<8}  {template:<10}  {_release_summary(spec)}{mark}"
        )
    return "\n".join(lines) + "\n"


def undo_target(
    revisions: Sequence[Mapping[str, Any]], current_hash: str | None, to_revision: int | None
) -> Mapping[str, Any]:
    """The revision an undo rolls back to: ``to_revision``, or the newest that is not the
    current template. Raises PluginError if there is none."""
    ordered = _revisions_sorted(revisions)
    if to_revision is not None:
        for revision in ordered:
            if int(revision.get("revision") or 0) == to_revision:
                return revision
        raise PluginError(f"unable to find the specified revision {to_revision}")
    earlier = [
        r
        for r in ordered
        if (r["metadata"].get("labels") or {}).get(TEMPLATE_HASH_LABEL) != current_hash
    ]
    if not earlier:
        raise PluginError("no rollout history found: nothing to roll back to")
    return earlier[-1]


def undone_spec(current: Mapping[str, Any], revision: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded spec, with the current values of what is not part of a release."""
    spec = dict(((revision.get("data") or {}).get("spec")) or {})
    for key in NOT_RELEASED:
        if key in current:
            spec[key] = current[key]
    return spec


# ANSI, for a terminal only: what is missing stands out; piped output stays plain.
_RED, _GREEN, _DIM, _RESET = "\033[31m", "\033[32m", "\033[2m", "\033[0m"


def _ready_endpoints(slices: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for slice_ in slices:
        ready = sum(
            1
            for endpoint in slice_.get("endpoints") or []
            if (endpoint.get("conditions") or {}).get("ready") is not False
        )
        for port in slice_.get("ports") or []:
            counts[port.get("name", "")] = counts.get(port.get("name", ""), 0) + ready
    return counts


def render_ports(
    app: Mapping[str, Any],
    service: Mapping[str, Any] | None,
    slices: Sequence[Mapping[str, Any]],
    *,
    color: bool = False,
) -> str:
    """The live port map: clients, Service ports (and nodePorts), targetPorts, containers
    and container ports, and ready endpoints per port, with what is missing marked."""

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    name = app["metadata"]["name"]
    spec, status = app.get("spec") or {}, app.get("status") or {}
    replicas = spec.get("replicas", 1)
    service_type = (spec.get("service") or {}).get("type", "ClusterIP")
    cluster_ip = ((service or {}).get("spec") or {}).get("clusterIP", "")
    header = f"ExposedApp {app['metadata'].get('namespace', '')}/{name}: {replicas} replicas"
    header += f", {status.get('readyReplicas', 0)} ready"
    if status.get("drainingReplicas"):
        header += f", {status['drainingReplicas']} draining"
    lines = [header]
    if service is None:
        lines.append(paint(f"  Service {name}: missing (no client can reach the Pods)", _RED))
    else:
        lines.append(f"  Service {name}: {service_type} {cluster_ip}")
    rows, marks = _port_rows(status, service, _ready_endpoints(slices), replicas)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        text = "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        if index == 0:
            lines.append(paint(text, _DIM))
            continue
        problem = marks[index - 1]
        lines.append(paint(f"{text}  ✗ {problem}", _RED) if problem else paint(text, _GREEN))
    pod_only = [
        f"{c.get('name')}:{p.get('containerPort')} ({p.get('name')})"
        for c in [*spec.get("containers", []), *spec.get("initContainers", [])]
        for p in c.get("ports") or []
        if p.get("expose") is False
    ]
    if pod_only:
        lines.append(f"  Pod-only ports (not on the Service): {', '.join(pod_only)}")
    return "\n".join(lines) + "\n"


def _port_rows(
    status: Mapping[str, Any],
    service: Mapping[str, Any] | None,
    ready: Mapping[str, int],
    replicas: int,
) -> tuple[list[tuple[str, ...]], list[str]]:
    """The map's table, a header then one row per exposed port, and what each row lacks."""
    live_ports = {
        (p.get("port"), p.get("protocol", "TCP")): p
        for p in ((service or {}).get("spec") or {}).get("ports") or []
    }
    rows: list[tuple[str, ...]] = [
        ("CLIENTS", "SERVICE PORT", "NODEPORT", "TARGETPORT", "CONTAINER", "PORT", "READY")
    ]
    marks: list[str] = []
    for mapping in (status.get("service") or {}).get("ports") or []:
        live = live_ports.get((mapping.get("port"), mapping.get("protocol", "TCP")))
        target = live.get("targetPort") if live else None
        count = ready.get(mapping.get("name", ""), 0)
        problem = ""
        if live is None:
            problem = "not on the live Service"
        elif count < replicas:
            problem = f"{replicas - count} of {replicas} endpoints not ready"
        marks.append(problem)
        node_port = (live or {}).get("nodePort") or mapping.get("nodePort") or "-"
        rows.append(
            (
                "clients ──▶",
                f"{mapping.get('port')}/{mapping.get('protocol', 'TCP')}",
                str(node_port),
                f"──▶ {target if target is not None else '?'}",
                f"──▶ {mapping.get('container')}",
                f"{mapping.get('name')}:{mapping.get('containerPort')}",
                f"{count}/{replicas}",
            )
        )
    return rows, marks


# --- I/O: the cluster -----------------------------------------------------------------


class Api:
    """The requests the plugin makes, through pykube-ng; errors become PluginError."""

    def __init__(self, http: pykube.HTTPClient, namespace: str) -> None:
        self.http, self.namespace = http, namespace

    @classmethod
    def from_kubeconfig(cls, path: str | None, namespace: str | None) -> Api:
        try:
            config = pykube.KubeConfig.from_file(path) if path else pykube.KubeConfig.from_env()
        except Exception as error:  # pykube raises several kinds: all mean "no config"
            raise PluginError(f"no usable kubeconfig: {error}") from error
        return cls(pykube.HTTPClient(config), namespace or config.namespace or "default")

    def _call(self, method: str, url: str, version: str = "v1", **kwargs: Any) -> Any:
        try:
            response = self.http.request(
                method, url=url, version=version, namespace=self.namespace, **kwargs
            )
        except requests.RequestException as error:
            raise PluginError(f"the API server could not be reached: {error}") from error
        if response.status_code == 404:
            what = url.split("?", maxsplit=1)[0]
            raise PluginError(f"{what} not found in namespace {self.namespace}")
        if not response.ok:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise PluginError(f"{method} {url}: {response.status_code} {message}")
        return response.json()

    def app(self, name: str) -> Any:
        return self._call("GET", f"{PLURAL}/{name}", version=API_VERSION)

    def patch_spec(self, name: str, spec: Mapping[str, Any]) -> Any:
        return self._call(
            "PATCH",
            f"{PLURAL}/{name}",
            version=API_VERSION,
            data=json.dumps({"spec": spec}),
            headers={"Content-Type": "application/merge-patch+json"},
        )

    def replace(self, body: Mapping[str, Any]) -> Any:
        return self._call(
            "PUT",
            f"{PLURAL}/{body['metadata']['name']}",
            version=API_VERSION,
            data=json.dumps(body),
        )

    def revisions(self, app: Mapping[str, Any]) -> list[Any]:
        found = self._call(
            "GET",
            f"controllerrevisions?labelSelector={APP_LABEL}={app['metadata']['name']}",
            version="apps/v1",
        )["items"]
        uid = app["metadata"]["uid"]
        return [
            r
            for r in found
            if any(o.get("uid") == uid for o in r["metadata"].get("ownerReferences") or [])
        ]

    def service(self, name: str) -> Any | None:
        try:
            return self._call("GET", f"services/{name}")
        except PluginError:
            return None

    def slices(self, name: str) -> list[Any]:
        return list(
            self._call(
                "GET",
                f"endpointslices?labelSelector={SERVICE_NAME_LABEL}={name}",
                version="discovery.k8s.io/v1",
            )["items"]
        )


def _current_hash(app: Mapping[str, Any], revisions: Sequence[Mapping[str, Any]]) -> str | None:
    """The template hash of the app's spec, as the operator computes it; for a spec it
    refuses, the newest revision's."""
    metadata = app["metadata"]
    try:
        ref = AppRef(metadata.get("namespace", ""), metadata["name"], metadata["uid"])
        return build_desired(ref, parse_spec(app.get("spec") or {})).template_hash
    except SpecError:
        ordered = _revisions_sorted(revisions)
        newest = ordered[-1] if ordered else None
        return (newest["metadata"].get("labels") or {}).get(TEMPLATE_HASH_LABEL) if newest else None


# --- commands -------------------------------------------------------------------------


def _status(api: Api, args: argparse.Namespace, out: Callable[[str], None]) -> int:
    deadline = time.monotonic() + args.timeout if args.timeout else None
    said = ""
    while True:
        progress = rollout_progress(api.app(args.name))
        if progress.message != said and not progress.failed:
            out(progress.message)
            said = progress.message
        if progress.failed:
            raise PluginError(progress.message)
        if progress.done or not args.watch:
            return 0
        if deadline is not None and time.monotonic() > deadline:
            raise PluginError("timed out waiting for the rollout to finish")
        time.sleep(1)


def _history(api: Api, args: argparse.Namespace, out: Callable[[str], None]) -> int:
    app = api.app(args.name)
    revisions = api.revisions(app)
    if args.revision is not None:
        revision = undo_target(revisions, None, args.revision)
        out(yaml.safe_dump((revision.get("data") or {}).get("spec") or {}, sort_keys=False))
        return 0
    out(render_history(args.name, revisions, _current_hash(app, revisions)).rstrip("\n"))
    return 0


def _undo(api: Api, args: argparse.Namespace, out: Callable[[str], None]) -> int:
    for _attempt in range(5):  # the app may change under us: read, write, retry on 409
        app = api.app(args.name)
        revisions = api.revisions(app)
        target = undo_target(revisions, _current_hash(app, revisions), args.to_revision)
        body = {**app, "spec": undone_spec(app.get("spec") or {}, target)}
        try:
            api.replace(body)
        except PluginError as error:
            if " 409 " in str(error):
                continue
            raise
        out(f"{RESOURCE}/{args.name} rolled back (to revision {target.get('revision')})")
        return 0
    raise PluginError("the ExposedApp kept changing; try again")


def _restart(api: Api, args: argparse.Namespace, out: Callable[[str], None]) -> int:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    api.patch_spec(args.name, {"restartedAt": stamp})
    out(f"{RESOURCE}/{args.name} restarted")
    return 0


def _pause(paused: bool) -> Callable[[Api, argparse.Namespace, Callable[[str], None]], int]:
    def run(api: Api, args: argparse.Namespace, out: Callable[[str], None]) -> int:
        if bool((api.app(args.name).get("spec") or {}).get("paused")) == paused:
            raise PluginError(
                f"{RESOURCE}/{args.name} is already {'paused' if paused else 'resumed'}"
            )
        api.patch_spec(args.name, {"paused": paused})
        out(f"{RESOURCE}/{args.name} {'paused' if paused else 'resumed'}")
        return 0

    return run


def _ports(api: Api, args: argparse.Namespace, out: Callable[[str], None]) -> int:
    app = api.app(args.name)
    color = sys.stdout.isatty() if args.color == "auto" else args.color == "always"
    out(render_ports(app, api.service(args.name), api.slices(args.name), color=color).rstrip("\n"))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubectl xapp", description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--namespace", help="the ExposedApp's namespace")
    parser.add_argument("--kubeconfig", help="path to the kubeconfig file")
    commands = parser.add_subparsers(dest="command", required=True)
    rollout = commands.add_parser("rollout", help="manage the rollout of an ExposedApp")
    actions = rollout.add_subparsers(dest="action", required=True)
    status = actions.add_parser("status", help="watch the rollout until it is done")
    status.add_argument("--watch", "-w", type=_flag, default=True, help="wait (default true)")
    status.add_argument("--timeout", type=float, default=0, help="seconds; 0: no limit")
    status.set_defaults(run=_status)
    history = actions.add_parser("history", help="the revisions the app has run")
    history.add_argument("--revision", type=int, help="print that revision's spec")
    history.set_defaults(run=_history)
    undo = actions.add_parser("undo", help="roll back to the previous (or a given) revision")
    undo.add_argument("--to-revision", type=int, help="the revision to roll back to")
    undo.set_defaults(run=_undo)
    actions.add_parser("restart", help="restart every Pod (a rollout)").set_defaults(run=_restart)
    actions.add_parser("pause", help="start no new rollout step").set_defaults(run=_pause(True))
    actions.add_parser("resume", help="let the rollout go on").set_defaults(run=_pause(False))
    for sub in (status, history, undo, *actions.choices.values()):
        if not any(a.dest == "name" for a in sub._actions):
            sub.add_argument("name", help="the ExposedApp")
    ports = commands.add_parser("ports", help="draw the live port map of an ExposedApp")
    ports.add_argument("name", help="the ExposedApp")
    ports.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    ports.set_defaults(run=_ports)
    return parser


def _flag(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def main(argv: Sequence[str] | None = None, api: Api | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        client = api or Api.from_kubeconfig(args.kubeconfig, args.namespace)
        return int(args.run(client, args, print))
    except PluginError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
