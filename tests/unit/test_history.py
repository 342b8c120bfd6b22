"""The rollout history's plan: record each template once, prune the oldest. Exact actions."""

from __future__ import annotations

from exposedapp.domain.desired import AppRef
from exposedapp.domain.history import History, Revision, history_actions, revision_data
from exposedapp.domain.plan import Action

APP = AppRef("shop", "web", "uid-1")
SPEC = {"replicas": 3, "paused": False, "containers": [{"name": "web", "image": "web:2"}]}


def history(template: str, *revisions: Revision, in_use: str = "", limit: int = 10) -> History:
    return History(
        app=APP,
        template_hash=template,
        spec=SPEC,
        revisions=revisions,
        in_use=frozenset(h for h in in_use.split(",") if h),
        limit=limit,
    )


def rev(template: str, number: int) -> Revision:
    return Revision(f"web-{template}", f"uid-{template}", number, template)


def test_a_new_template_is_recorded_as_the_next_revision() -> None:
    (action,) = history_actions(history("bbb", rev("aaa", 1)))
    assert action == Action(
        "create_revision",
        "web-bbb",
        "recording revision 2 (template hash bbb)",
        body={
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
            "revision": 2,
            # Not part of a release: an undo keeps the current replicas and paused.
            "data": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}},
        },
    )
    assert revision_data(SPEC) == action.body["data"]  # type: ignore[index]


def test_the_current_template_as_the_newest_revision_needs_nothing() -> None:
    assert history_actions(history("bbb", rev("aaa", 1), rev("bbb", 2))) == []


def test_rolling_back_keeps_the_old_revision_and_its_number() -> None:
    assert history_actions(history("aaa", rev("aaa", 1), rev("bbb", 2))) == []


def test_old_revisions_past_the_limit_go_oldest_first_but_never_one_in_use() -> None:
    revisions = [rev(t, n) for n, t in enumerate(["t1", "t2", "t3", "t4", "t5"], start=1)]
    actions = history_actions(history("t5", *revisions, in_use="t1", limit=2))
    # Retired: t2, t3, t4 (t1 still runs, t5 is current); the limit keeps t3 and t4.
    assert [(a.kind, a.name, a.uid) for a in actions] == [("delete_revision", "web-t2", "uid-t2")]
    assert actions[0].reason == (
        "deleting revision 2: more than revisionHistoryLimit (2) old revisions"
    )
    none_kept = history_actions(history("t5", *revisions, limit=0))
    assert [a.name for a in none_kept] == ["web-t1", "web-t2", "web-t3", "web-t4"]
