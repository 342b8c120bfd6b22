"""`exposedapp`: run the operator, or render what it would create.

exposedapp run [--namespace NS ...] [--liveness URL]
exposedapp render -f app.yaml [--uid UID]
exposedapp crd                  print the CustomResourceDefinition
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .domain.desired import AppRef, build_desired
from .domain.model import SpecError, parse_spec, validate_name

__all__ = ["main", "render"]

RENDER_UID = "00000000-0000-0000-0000-000000000000"


def _documents(path: str) -> Iterator[dict[str, Any]]:
    """The ExposedApps in a file of YAML documents (other kinds, such as a sample's
    ConfigMap, are not the operator's to render)."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    for document in yaml.safe_load_all(text):
        if not document:
            continue
        items = document.get("items") or [] if document.get("kind") == "List" else [document]
        yield from (item for item in items if item.get("kind", "ExposedApp") == "ExposedApp")


def render(
    app: dict[str, Any], uid: str = RENDER_UID, namespace: str = "default"
) -> list[dict[str, Any]]:
    """The Pods, Service and PodDisruptionBudget the operator would create for `app`, from
    the same builders (without the config hash of rolloutOnConfigChange, which needs the
    cluster's ConfigMaps)."""
    metadata = app.get("metadata") or {}
    name = metadata.get("name", "")
    validate_name(name)
    spec = parse_spec(app.get("spec") or {})
    desired = build_desired(AppRef(metadata.get("namespace") or namespace, name, uid), spec)
    objects = [
        desired.pod(f"{name}-{desired.template_hash}-{slot}") for slot in range(desired.replicas)
    ]
    if desired.service is not None:
        objects.append(dict(desired.service))
    if desired.disruption_budget is not None:
        objects.append(dict(desired.disruption_budget))
    return objects


def _run(args: argparse.Namespace) -> int:
    import kopf  # imported here: `render` must work without a cluster or kopf's start-up

    from . import handlers  # noqa: F401 - registers the handlers
    from .runtime.kopf_adapter import apply_kopf_fixes, count_watches

    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat[args.log_format.upper()])
    count_watches()  # metrics only: the operator works the same without them
    if not args.verbose:
        # kopf logs "Handler '...' succeeded." for every event of every Pod; our handlers
        # only enqueue, and the decisions are logged by the reconciler itself.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if args.metrics_port:
        os.environ["EXPOSEDAPP_METRICS_PORT"] = str(args.metrics_port)
    if not apply_kopf_fixes():  # before kopf starts (each says which kopf it expects)
        # Readiness and peering pauses are read from kopf through these: without them a
        # peered replica would never know it may act.
        print(
            "exposedapp: this kopf is not the one the operator was built for "
            "(see the warnings above); install the locked kopf version",
            file=sys.stderr,
        )
        return 1
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace or (),
        liveness_endpoint=args.liveness,
        standalone=None,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="exposedapp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    run.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="kopf's liveness endpoint (default %(default)s)",
    )
    run.add_argument("--log-format", default="plain", choices=["plain", "full", "json"])
    run.add_argument("-v", "--verbose", action="store_true")
    run.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("EXPOSEDAPP_METRICS_PORT", "0")),
        help="serve /metrics, /readyz and /healthz on this port (default: off)",
    )
    show = commands.add_parser("render", help="print the Pods and Service an app implies")
    show.add_argument("-f", "--filename", required=True, help="an ExposedApp manifest, or -")
    show.add_argument("--uid", default=RENDER_UID, help="the app's UID to render with")
    commands.add_parser("crd", help="print the CustomResourceDefinition (as crds/ holds it)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "crd":
        from .domain.crd import crd_yaml

        sys.stdout.write(crd_yaml())
        return 0
    try:
        objects = [obj for app in _documents(args.filename) for obj in render(app, args.uid)]
    except SpecError as error:
        print(f"exposedapp: invalid ExposedApp: {error}", file=sys.stderr)
        return 2
    print(yaml.safe_dump_all(objects, sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
