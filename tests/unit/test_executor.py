"""execute(): what landed is reported even when a sibling action fails; names taken by
our own relabelled Pods are told apart from names taken by strangers.

The API client here is a scripted stand-in: these tests are about execute()'s book-keeping,
the real apiserver's answers are covered by the e2e suite (tests/e2e/test_faults.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from exposedapp.domain.desired import AppRef
from exposedapp.domain.labels import APP_LABEL
from exposedapp.domain.plan import Action, Plan
from exposedapp.runtime.client import Answer
from exposedapp.runtime.executor import TransientError, execute

APP = AppRef(namespace="shop", name="web", uid="uid-web")
CREATED = Answer(201, "Created", "", {})
THROTTLED = Answer(429, "TooManyRequests", "too many requests, please try again later", {})
EXISTS = Answer(409, "AlreadyExists", 'pods "web-x" already exists', {})


def pod(name: str, owner_uid: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": dict(labels),
            "ownerReferences": [{"uid": owner_uid, "controller": True, "kind": "ExposedApp"}],
        }
    }


class ScriptedClient:
    """Answers create_pod and get by Pod name, as scripted."""

    def __init__(
        self,
        creates: Mapping[str, Answer],
        pods: Mapping[str, Answer],
        deletes: Mapping[str, Answer] | None = None,
    ) -> None:
        self.creates = creates
        self.pods = pods
        self.deletes = deletes or {}
        self.log: list[str] = []

    def create_revision(self, body: Mapping[str, Any]) -> Answer:
        return Answer(201, "", "", dict(body))

    def list_revisions(self, namespace: str, app: str) -> Answer:

        return Answer(200, "", "", {"items": []})

    def create_pod(self, body: Mapping[str, Any]) -> Answer:
        self.log.append(f"create {body['metadata']['name']}")
        return self.creates[body["metadata"]["name"]]

    def delete(self, kind: str, namespace: str, name: str, uid: str | None) -> Answer:
        self.log.append(f"delete {name}")
        return self.deletes[name]

    def get(self, kind: str, namespace: str, name: str) -> Answer:
        assert (kind, namespace) == ("pods", "shop")
        return self.pods[name]


def create(name: str) -> Action:
    return Action("create_pod", name, f"creating Pod {name}", body={"metadata": {"name": name}})


def delete(name: str) -> Action:
    return Action("delete_pod", name, f"deleting {name}", uid=f"uid-{name}")


def run_plan(client: ScriptedClient, *names: str, deleting: tuple[str, ...] = ()) -> Any:
    plan = Plan(actions=tuple(create(n) for n in names) + tuple(delete(n) for n in deleting))
    return asyncio.run(execute(client, APP, plan))


def test_creates_that_landed_are_reported_with_the_error_of_a_throttled_sibling() -> None:
    client = ScriptedClient({"web-a": CREATED, "web-b": THROTTLED, "web-c": CREATED}, {})
    with pytest.raises(TransientError, match="creating Pod web-b: 429") as raised:
        run_plan(client, "web-a", "web-b", "web-c")
    partial = raised.value.partial
    assert partial is not None
    assert sorted(partial.created_pods) == ["web-a", "web-c"]
    assert sorted(a.name for a in partial.done) == ["web-a", "web-c"]


def test_a_name_held_by_our_own_pod_that_lost_its_labels_is_reported_as_hidden() -> None:
    relabelled = pod("web-x", APP.uid, {"team": "shop"})  # our controller ref, no app label
    client = ScriptedClient({"web-x": EXISTS}, {"web-x": Answer(200, "", "", relabelled)})
    result = run_plan(client, "web-x")
    assert (result.hidden_names, result.foreign_names, result.created_pods) == (["web-x"], [], [])


def test_a_name_held_by_a_stranger_is_reported_as_foreign() -> None:
    stranger = pod("web-x", "uid-other", {APP_LABEL: "web"})
    client = ScriptedClient({"web-x": EXISTS}, {"web-x": Answer(200, "", "", stranger)})
    result = run_plan(client, "web-x")
    assert (result.hidden_names, result.foreign_names) == ([], ["web-x"])


def test_a_name_held_by_our_own_labelled_pod_is_just_a_stale_cache() -> None:
    ours = pod("web-x", APP.uid, {APP_LABEL: "web"})
    client = ScriptedClient({"web-x": EXISTS}, {"web-x": Answer(200, "", "", ours)})
    result = run_plan(client, "web-x")
    assert (result.hidden_names, result.foreign_names, result.done) == ([], [], [])


def test_pods_are_deleted_before_the_creates_that_take_their_room() -> None:
    client = ScriptedClient({"new-0": CREATED}, {}, deletes={"old-0": Answer(200, "", "", {})})
    result = run_plan(client, "new-0", deleting=("old-0",))
    assert client.log == ["delete old-0", "create new-0"]
    assert (result.deleted_pods, result.created_pods) == (["old-0"], ["new-0"])


def test_no_create_runs_when_a_delete_is_throttled() -> None:
    client = ScriptedClient({"new-0": CREATED}, {}, deletes={"old-0": THROTTLED})
    with pytest.raises(TransientError, match="deleting Pod old-0: 429"):
        run_plan(client, "new-0", deleting=("old-0",))
    assert client.log == ["delete old-0"]


def test_no_create_runs_when_a_delete_is_refused() -> None:
    refused = Answer(403, "Forbidden", 'pods "old-0" is forbidden: by policy', {})
    client = ScriptedClient({"new-0": CREATED}, {}, deletes={"old-0": refused})
    result = run_plan(client, "new-0", deleting=("old-0",))
    assert client.log == ["delete old-0"]
    assert [p.reason for p in result.problems] == ["Forbidden"]


def test_a_new_apps_first_template_is_recorded_without_a_list() -> None:
    from exposedapp.domain.history import record_action
    from exposedapp.domain.plan import Plan
    from exposedapp.runtime.executor import execute

    calls: list[str] = []

    class Client:
        def list_revisions(self, namespace: str, app: str) -> Answer:
            calls.append("list")
            return Answer(200, "", "", {"items": []})

        def create_revision(self, body: Mapping[str, Any]) -> Answer:
            calls.append(f"create {body['revision']}")
            return Answer(201, "", "", dict(body))

    app = AppRef("shop", "web", "uid-1")
    for first, expected in ((True, ["create 1"]), (False, ["list", "create 1"])):
        calls.clear()
        action = record_action(app, "abc", {}, frozenset(), 10, first=first)
        result = asyncio.run(execute(Client(), app, Plan((action,))))  # type: ignore[arg-type]
        assert calls == expected
        assert result.recorded
