"""Rollout history: each Pod template an app has run, kept as a ControllerRevision. Pure.

As StatefulSets and DaemonSets keep theirs (apps/v1 ControllerRevision): one object per
template, named ``<app>-<template hash>``, with a revision number in the order the templates
first ran and the spec that made the template (without replicas and paused, which are not
part of a release), so that an undo can write that spec back to the ExposedApp: the
ExposedApp stays the one source of truth, and a GitOps tool sees the change.

The operator does not watch revisions (their data is a whole spec: thousands of them
listed at start-up cost tens of MB of memory, measured). A template is recorded when the
operator first creates a Pod of it: one metadata-only LIST of the app's revisions gives the
next number (kept in a label too, so metadata suffices) and what to prune, at most
``spec.revisionHistoryLimit`` revisions of templates no Pod runs any more, oldest first.
A new app's first template skips the list (it has no revision yet). A template rolled back
to keeps its number: a ControllerRevision's data is immutable, and
the API server refused a patch of the number alone once the data's JSON was re-encoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .desired import AppRef, owner_reference
from .labels import APP_LABEL, REVISION_LABEL, TEMPLATE_HASH_LABEL, UID_LABEL
from .plan import Action

__all__ = [
    "NOT_RELEASED",
    "Revision",
    "observe_revision",
    "record_action",
    "recording",
    "revision_data",
]

# Spec fields that are not part of a release: an undo keeps their current values.
NOT_RELEASED = ("replicas", "paused")


@dataclass(frozen=True)
class Revision:
    """What the history needs of a listed ControllerRevision (its metadata)."""

    name: str
    uid: str
    revision: int
    template_hash: str


def observe_revision(obj: Mapping[str, Any]) -> Revision:
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    number = labels.get(REVISION_LABEL) or obj.get("revision") or 0
    return Revision(
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        revision=int(number) if str(number).isdigit() else 0,
        template_hash=str(labels.get(TEMPLATE_HASH_LABEL, "")),
    )


def revision_data(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The release a revision records: the spec without the fields an undo keeps."""
    return {"spec": {k: v for k, v in spec.items() if k not in NOT_RELEASED}}


def record_action(
    app: AppRef,
    template_hash: str,
    spec: Mapping[str, Any],
    in_use: frozenset[str],
    limit: int,
    first: bool = False,
) -> Action:
    """Record the template ``template_hash`` (made from ``spec``) in the history, keeping
    the revisions of ``in_use`` templates (those Pods run) and at most ``limit`` others.
    ``first``: the app was never reconciled (no status yet), so it has no revision: the
    executor creates revision 1 without listing (a new app costs one write, no read)."""
    revision: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": f"{app.name}-{template_hash}",
            "namespace": app.namespace,
            "labels": {
                APP_LABEL: app.name,
                UID_LABEL: app.uid,
                TEMPLATE_HASH_LABEL: template_hash,
            },
            "ownerReferences": [owner_reference(app)],
        },
        "data": revision_data(spec),
    }
    return Action(
        "record_revision",
        revision["metadata"]["name"],
        f"recording template {template_hash} in the rollout history",
        body={"revision": revision, "keep": sorted(in_use), "limit": limit, "first": first},
        uid=app.uid,
    )


def recording(
    listed: Sequence[Revision], record: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, list[Revision]]:
    """What a record_action does, given the app's revisions as listed now: the revision to
    create (None if its template is recorded already), numbered after the newest, and the
    revisions to delete, oldest first past the limit, never a kept or the current one."""
    revision = record["revision"]
    template = revision["metadata"]["labels"][TEMPLATE_HASH_LABEL]
    ordered = sorted(listed, key=lambda r: r.revision)
    create = None
    if not any(r.template_hash == template for r in ordered):
        number = (ordered[-1].revision if ordered else 0) + 1
        metadata = revision["metadata"]
        create = {
            **revision,
            "metadata": {**metadata, "labels": {**metadata["labels"], REVISION_LABEL: str(number)}},
            "revision": number,
        }
    keep = {template, *record["keep"]}
    retired = [r for r in ordered if r.template_hash not in keep]
    return create, retired[: max(0, len(retired) - int(record["limit"]))]
