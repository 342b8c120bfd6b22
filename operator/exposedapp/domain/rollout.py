"""What a rollout aims at next, so that renamed or renumbered ports keep serving. Pure.

A Service port reaches each Pod through its targetPort, resolved per Pod: by name (each
Pod's own number for that name) or by number. While old and new Pods run side by side,
the operator picks what resolves on both:

- a port renumbered under the same name: the name (each Pod answers on its own number);
- a port renamed on the same number: the number;
- a port renamed *and* renumbered: nothing resolves on both. The rollout then goes in two
  steps: first to an intermediate template, the new number under the old name (the name
  serves old and intermediate Pods), then to the final one (a rename: the number serves).

Once no old Pod is left the Service targets names again. Old and new are told apart by
the template hash; a Pod's ports are read from the template summary it carries
(``{"ports": {name: "number/protocol"}}``). Sources: k8s.io/kubernetes
pkg/controller/endpointslice (targetPort resolution per Pod, podutil.FindPort).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .desired import DesiredState
from .labels import TEMPLATE_ANNOTATION, TEMPLATE_HASH_LABEL

__all__ = ["PodPorts", "rollout_target"]

# (template hash, {port name: "number/protocol"}) of each live Pod.
PodPorts = tuple[str, Mapping[str, str]]


def _target_port(observed: Mapping[str, Any] | None, port: int, protocol: str) -> Any:
    for entry in ((observed or {}).get("spec") or {}).get("ports") or []:
        if entry.get("port") == port and entry.get("protocol", "TCP") == protocol:
            return entry.get("targetPort")
    return None


def _renames(
    desired: DesiredState, old: Sequence[Mapping[str, str]], service: Mapping[str, Any] | None
) -> dict[str, str]:
    """Ports renamed and renumbered at once: {new name: old name}.

    The old name is what the live Service targets for the same port and protocol. A port
    whose old name another desired port now uses (names swapped) is left to roll as asked:
    an intermediate template would hold one name twice, which Kubernetes refuses.
    """
    names = {m.name for m in desired.ports} | set(desired.template_summary.get("ports", {}))
    renames: dict[str, str] = {}
    for mapping in desired.ports:
        number = f"{mapping.container_port}/{mapping.protocol}"
        previous = _target_port(service, mapping.port, mapping.protocol)
        if not isinstance(previous, str) or previous == mapping.name or previous in names:
            continue  # the same name, a number, unknown, or taken: nothing to stage
        if any(previous not in ports for ports in old):
            continue  # not ours to reconstruct (Pods without a summary): roll as asked
        if any(ports[previous] != number for ports in old):
            renames[mapping.name] = previous
    return renames


def _rename_ports(value: Any, renames: Mapping[str, str]) -> Any:
    """A copy of a container with port names (and probe ports naming them) renamed."""
    if isinstance(value, dict):
        out = {k: _rename_ports(v, renames) for k, v in value.items()}
        if isinstance(out.get("port"), str):
            out["port"] = renames.get(out["port"], out["port"])
        if isinstance(out.get("name"), str) and "containerPort" in out:
            out["name"] = renames.get(out["name"], out["name"])
        return out
    if isinstance(value, list):
        return [_rename_ports(v, renames) for v in value]
    return value


def _intermediate(desired: DesiredState, renames: Mapping[str, str]) -> DesiredState:
    """The desired state with the renamed ports under their old names (step one)."""
    template = copy.deepcopy(dict(desired.pod_template))
    template["spec"] = _rename_ports(template["spec"], renames)
    digest = hashlib.sha256(
        json.dumps([desired.template_hash, sorted(renames.items())]).encode()
    ).hexdigest()[:10]
    summary = copy.deepcopy(dict(desired.template_summary))
    summary["ports"] = {renames.get(k, k): v for k, v in summary.get("ports", {}).items()}
    metadata = template["metadata"]
    metadata["labels"] = {**metadata["labels"], TEMPLATE_HASH_LABEL: digest}
    metadata["annotations"] = {
        **metadata["annotations"],
        TEMPLATE_ANNOTATION: json.dumps(summary, sort_keys=True),
    }
    service = copy.deepcopy(dict(desired.service)) if desired.service is not None else None
    if service is not None:
        for port in service["spec"]["ports"]:
            if port["name"] in renames:
                port["name"] = port["targetPort"] = renames[port["name"]]
    return dataclasses.replace(
        desired,
        template_hash=digest,
        template_summary=summary,
        pod_template=template,
        service=service,
    )


def _targets_that_serve(
    desired: DesiredState, live: Sequence[Mapping[str, str]], service: Mapping[str, Any] | None
) -> DesiredState:
    """The desired state whose Service targets, for each port, what serves it on every Pod.

    By name while the live Service targets that same name (a renumber: each Pod answers on
    its own number under it); by number when the name is new to the Service (a rename, or
    names swapped) and every live Pod has that number.
    """
    if desired.service is None:
        return desired
    target = copy.deepcopy(dict(desired.service))
    changed = False
    for port in target["spec"]["ports"]:
        name = port["targetPort"]
        previous = _target_port(service, port["port"], port.get("protocol", "TCP"))
        if not isinstance(name, str) or previous is None or previous == name:
            continue
        number = desired.template_summary.get("ports", {}).get(name)
        if number and all(number in ports.values() for ports in live):
            port["targetPort"] = int(number.split("/")[0])
            changed = True
    return dataclasses.replace(desired, service=target) if changed else desired


def rollout_target(
    desired: DesiredState, pods: Sequence[PodPorts], service: Mapping[str, Any] | None
) -> DesiredState:
    """What to roll toward now, and a Service that serves every live Pod meanwhile.

    ``pods``: the live Pods' template hashes and ports (from their template summaries).
    Returns ``desired`` itself when no port is renamed under old Pods.
    """
    old = [ports for template_hash, ports in pods if template_hash != desired.template_hash]
    if not old or desired.service is None:
        return desired
    renames = _renames(desired, old, service)
    target = _intermediate(desired, renames) if renames else desired
    return _targets_that_serve(target, [ports for _, ports in pods], service)
