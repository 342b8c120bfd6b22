"""Rollout history: each Pod template an app has run, kept as a ControllerRevision. Pure.

As StatefulSets and DaemonSets keep theirs (apps/v1 ControllerRevision): one object per
template, named ``<app>-<template hash>``, with a revision number that grows with each
rollout and the spec that made the template (without replicas and paused, which are not
part of a release), so that an undo can write that spec back to the ExposedApp: the
ExposedApp stays the one source of truth, and a GitOps tool sees the change. A template
rolled back to keeps its number (the order in which templates first ran): a
ControllerRevision's data is immutable, and the API server compares it byte for byte, so a
patch of the number alone is refused once the data's JSON is re-encoded. At most
``spec.revisionHistoryLimit`` revisions of templates no Pod runs any more are kept; the
oldest go first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .desired import AppRef, owner_reference
from .labels import APP_LABEL, TEMPLATE_HASH_LABEL, UID_LABEL
from .plan import Action

__all__ = [
    "NOT_RELEASED",
    "History",
    "Revision",
    "history_actions",
    "observe_revision",
    "revision_data",
]

# Spec fields that are not part of a release: an undo keeps their current values.
NOT_RELEASED = ("replicas", "paused")


@dataclass(frozen=True)
class Revision:
    """What the plan needs of an observed ControllerRevision."""

    name: str
    uid: str
    revision: int
    template_hash: str


def observe_revision(obj: Mapping[str, Any]) -> Revision:
    metadata = obj.get("metadata") or {}
    return Revision(
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        revision=int(obj.get("revision") or 0),
        template_hash=str((metadata.get("labels") or {}).get(TEMPLATE_HASH_LABEL, "")),
    )


def revision_data(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The release a revision records: the spec without the fields an undo keeps."""
    return {"spec": {k: v for k, v in spec.items() if k not in NOT_RELEASED}}


@dataclass(frozen=True)
class History:
    """The plan's input for the history: the app's own template (not a rollout's
    intermediate step), the spec it came from, what is recorded, and what Pods still run.

    ``in_use``: template hashes of the app's Pods (live or draining): never pruned.
    """

    app: AppRef
    template_hash: str
    spec: Mapping[str, Any]
    revisions: Sequence[Revision]
    in_use: frozenset[str]
    limit: int


def _body(history: History, number: int) -> dict[str, Any]:
    app = history.app
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": f"{app.name}-{history.template_hash}",
            "namespace": app.namespace,
            "labels": {
                APP_LABEL: app.name,
                UID_LABEL: app.uid,
                TEMPLATE_HASH_LABEL: history.template_hash,
            },
            "ownerReferences": [owner_reference(app)],
        },
        "revision": number,
        "data": revision_data(history.spec),
    }


def history_actions(history: History) -> list[Action]:
    """The revision writes that keep the history true: record the current template the
    first time it runs, prune the oldest past the limit."""
    revisions = sorted(history.revisions, key=lambda r: r.revision)
    newest = revisions[-1].revision if revisions else 0
    current = [r for r in revisions if r.template_hash == history.template_hash]
    actions: list[Action] = []
    if not current:
        name = f"{history.app.name}-{history.template_hash}"
        actions.append(
            Action(
                "create_revision",
                name,
                f"recording revision {newest + 1} (template hash {history.template_hash})",
                body=_body(history, newest + 1),
            )
        )
    retired = [
        r
        for r in revisions
        if r.template_hash != history.template_hash and r.template_hash not in history.in_use
    ]
    for revision in retired[: max(0, len(retired) - history.limit)]:
        actions.append(
            Action(
                "delete_revision",
                revision.name,
                f"deleting revision {revision.revision}: more than revisionHistoryLimit "
                f"({history.limit}) old revisions",
                uid=revision.uid,
            )
        )
    return actions
