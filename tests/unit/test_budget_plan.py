"""spec.disruptionBudget: the PodDisruptionBudget the plan applies, updates and deletes."""

from __future__ import annotations

import copy

from exposedapp.domain.plan import Action, plan
from test_plan import NOW, desired_for, kinds


def test_a_budget_is_created_with_the_services_selector() -> None:
    desired = desired_for(replicas=0, disruptionBudget={"maxUnavailable": 1})
    result = plan(desired, [], None, now=NOW)
    (action,) = [a for a in result.actions if a.kind == "apply_budget"]
    assert action == Action(
        "apply_budget", "web", "creating PodDisruptionBudget web", body=desired.disruption_budget
    )
    assert desired.disruption_budget is not None
    assert desired.disruption_budget["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": dict(desired.selector)},
    }


def test_a_budget_in_sync_is_left_alone_and_a_changed_one_is_applied() -> None:
    desired = desired_for(replicas=0, disruptionBudget={"minAvailable": "50%"})
    observed = copy.deepcopy(dict(desired.disruption_budget or {}))
    observed["metadata"]["uid"] = "pdb-uid"
    assert kinds(plan(desired, [], None, now=NOW, budget=observed).actions) == [
        ("apply_service", "web")
    ]
    observed["spec"] = {**observed["spec"], "minAvailable": 1}
    (action,) = [
        a
        for a in plan(desired, [], None, now=NOW, budget=observed).actions
        if a.kind == "apply_budget"
    ]
    assert action.reason == "updating PodDisruptionBudget web: minAvailable: 1 -> '50%'"


def test_a_budget_dropped_from_the_spec_is_deleted() -> None:
    with_budget = desired_for(replicas=0, disruptionBudget={"maxUnavailable": 1})
    observed = copy.deepcopy(dict(with_budget.disruption_budget or {}))
    observed["metadata"]["uid"] = "pdb-uid"
    without = desired_for(replicas=0)
    (action,) = [
        a
        for a in plan(without, [], None, now=NOW, budget=observed).actions
        if a.kind == "delete_budget"
    ]
    assert action == Action(
        "delete_budget",
        "web",
        "deleting PodDisruptionBudget web: spec.disruptionBudget was removed",
        uid="pdb-uid",
    )
