"""Pure helpers over Kubernetes objects and the actions taken on them: who owns what
(managedFields, controller references), merge patches, and what a reconcile did, told in
the past tense for its event."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .labels import FIELD_MANAGER
from .plan import Action

__all__ = [
    "controlled_by",
    "controller_name",
    "labels_of",
    "merge_patch",
    "owned_keys",
    "summarise_done",
]


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


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def controller_name(obj: Mapping[str, Any]) -> str:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')} {ref.get('name')}"
    return "no controller (created by hand or by another tool)"


_GROUP_VERBS = {"create_pod": "Created", "drain_pod": "Draining", "delete_pod": "Deleted"}
_PAST = {
    "creating": "Created",
    "deleting": "Deleted",
    "updating": "Updated",
    "recreating": "Recreated",
    "recording": "Recorded",
    "repairing": "Repaired",
}


def _past(reason: str) -> str:
    verb, _, rest = reason.partition(" ")
    return f"{_PAST.get(verb, verb.capitalize())} {rest}"


def summarise_done(done: Sequence[Action]) -> list[tuple[str, str]]:
    """One event for everything one reconcile did, in the past tense: [(reason, message)].

    The reason names the kind of change when there is one kind (CreatedPods, DrainingPods,
    DeletedPods, AppliedService, RepairedService, RecreatedService), else "Reconciled"; Pods
    created, drained or deleted together for one reason are named in one sentence. One event
    per reconcile keeps event writes per app low.
    """
    titles = {
        "create_pod": "CreatedPods",
        "drain_pod": "DrainingPods",
        "delete_pod": "DeletedPods",
        "apply_service": "AppliedService",
        "replace_service": "RepairedService",
        "recreate_service": "RecreatedService",
        "record_revision": "RecordedRevision",
        "apply_budget": "AppliedDisruptionBudget",
        "delete_budget": "DeletedDisruptionBudget",
    }
    groups: dict[str, list[Action]] = {}
    for action in done:
        groups.setdefault(action.kind, []).append(action)
    sentences: list[str] = []
    for kind, actions in groups.items():
        whys = {a.reason.partition(": ")[2] for a in actions}
        if kind in _GROUP_VERBS and len(actions) > 1 and len(whys) == 1:
            verb = _GROUP_VERBS[kind]
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
