"""execute(): what landed is reported even when a sibling action fails; names taken by
our own relabelled Pods are told apart from names taken by strangers.

The API client here is a scripted stand-in: these tests are about execute()'s book-keeping,
the real apiserver's answers are covered by the e2e suite (tests/e2e/test_faults.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

import pytest

from exposedapp.apply import Answer, ApiClient, TransientError, execute
from exposedapp.desired import AppRef
from exposedapp.labels import APP_LABEL
from exposedapp.plan import Action, Plan

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

    def __init__(self, creates: Mapping[str, Answer], pods: Mapping[str, Answer]) -> None:
        self.creates = creates
        self.pods = pods

    def create_pod(self, body: Mapping[str, Any]) -> Answer:
        return self.creates[body["metadata"]["name"]]

    def get(self, kind: str, namespace: str, name: str) -> Answer:
        assert (kind, namespace) == ("pods", "shop")
        return self.pods[name]


def create(name: str) -> Action:
    return Action("create_pod", name, f"creating Pod {name}", body={"metadata": {"name": name}})


def run_plan(client: ScriptedClient, *names: str) -> Any:
    plan = Plan(actions=tuple(create(n) for n in names))
    return asyncio.run(execute(cast(ApiClient, client), APP, plan))


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
