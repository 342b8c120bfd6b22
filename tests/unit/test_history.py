"""The rollout history: what a record does given the listed revisions. Exact results."""

from __future__ import annotations

from typing import Any

from exposedapp.domain.desired import AppRef
from exposedapp.domain.history import Revision, record_action, recording, revision_data

APP = AppRef("shop", "web", "uid-1")
SPEC = {"replicas": 3, "paused": False, "containers": [{"name": "web", "image": "web:2"}]}


def record(template: str, in_use: str = "", limit: int = 10) -> Any:
    action = record_action(APP, template, SPEC, frozenset(h for h in in_use.split(",") if h), limit)
    return action.body


def rev(template: str, number: int) -> Revision:
    return Revision(f"web-{template}", f"uid-{template}", number, template)


def test_the_record_action_carries_the_revision_without_a_number() -> None:
    action = record_action(APP, "bbb", SPEC, frozenset({"aaa"}), 10)
    assert (action.kind, action.name, action.reason) == (
        "record_revision",
        "web-bbb",
        "recording template bbb in the rollout history",
    )
    assert action.body == {
        "revision": {
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": "web-bbb",
                "namespace": "shop",
                "labels": {
                    "exposedapp.dev/app": "web",
                    "exposedapp.dev/app-uid": "uid-1",
                    "exposedapp.dev/template-hash": "bbb",
                },
                "ownerReferences": [
                    {
                        "apiVersion": "exposedapp.dev/v1alpha1",
                        "kind": "ExposedApp",
                        "name": "web",
                        "uid": "uid-1",
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            # Not part of a release: an undo keeps the current replicas and paused.
            "data": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}},
        },
        "keep": ["aaa"],
        "limit": 10,
        "first": False,
    }
    assert revision_data(SPEC) == action.body["revision"]["data"]  # type: ignore[index]


def test_a_new_template_is_numbered_after_the_newest_in_a_label_too() -> None:
    create, prune = recording([rev("aaa", 1), rev("ccc", 3)], record("bbb"))
    assert create is not None
    assert create["revision"] == 4
    assert create["metadata"]["labels"]["exposedapp.dev/revision"] == "4"
    assert prune == []
    first, _ = recording([], record("aaa"))
    assert first is not None
    assert first["revision"] == 1


def test_a_template_recorded_before_is_not_recorded_again_and_keeps_its_number() -> None:
    assert recording([rev("aaa", 1), rev("bbb", 2)], record("aaa")) == (None, [])


def test_old_revisions_past_the_limit_go_oldest_first_but_never_one_in_use() -> None:
    revisions = [rev(t, n) for n, t in enumerate(["t1", "t2", "t3", "t4", "t5"], start=1)]
    # Retired: t2, t3, t4 (t1 still runs, t5 is current); the limit keeps t3 and t4.
    assert recording(revisions, record("t5", in_use="t1", limit=2)) == (None, [rev("t2", 2)])
    _, none_kept = recording(revisions, record("t5", limit=0))
    assert [r.name for r in none_kept] == ["web-t1", "web-t2", "web-t3", "web-t4"]
