"""Carry out a Plan through the API client: Pod creates, drains and deletes, Service writes.

Refusals that a person must fix (quota, Pod Security, validation, RBAC) come back as
Problems for the Degraded condition; transient trouble (conflicts, throttling, a server
that is away) is raised as TransientError so the work queue retries with backoff.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from ..domain.desired import AppRef
from ..domain.history import observe_revision, recording
from ..domain.labels import APP_LABEL
from ..domain.objects import controlled_by, controller_name, labels_of
from ..domain.plan import Action, Plan, ServiceConflict
from ..domain.status import Problem
from .client import Answer, KubeApi, is_transient

__all__ = ["ApplyResult", "TransientError", "check_service_owner", "execute"]

logger = logging.getLogger(__name__)
# The threads execute()'s requests run in: the loop's default, or the caller's own.
_EXECUTOR: contextvars.ContextVar[Executor | None] = contextvars.ContextVar(
    "executor", default=None
)


async def _call(function: Callable[..., Answer], *args: Any) -> Answer:
    """One synchronous API request, in execute()'s threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_EXECUTOR.get(), functools.partial(function, *args))


class TransientError(RuntimeError):
    """Worth retrying soon: a conflict, throttling, a timeout, a server error.

    `partial` is what did land before the error (execute() runs actions in parallel): the
    caller must remember those creates and deletes, or its next run, on a cache that has
    not seen them yet, would make them again under other names.
    """

    partial: ApplyResult | None = None


@dataclass
class ApplyResult:
    done: list[Action] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    service: Mapping[str, Any] | None = None
    created_pods: list[str] = field(default_factory=list)
    deleted_pods: list[str] = field(default_factory=list)
    drained_pods: list[str] = field(default_factory=list)  # taken out of the Service
    recorded: bool = False  # the template of a record_revision is in the history now
    budget: Mapping[str, Any] | None = None  # the PodDisruptionBudget written ({}: deleted)
    foreign_names: list[str] = field(default_factory=list)  # our Pod names taken by others
    # Our own Pods that lost our labels (edited by hand): invisible to our label-selected
    # watch, so never counted again, but they still hold their names.
    hidden_names: list[str] = field(default_factory=list)


def _problem(answer: Answer, what: str) -> Problem:
    message = f"{what}: {answer.message}"
    if answer.code == 403 and "exceeded quota" in answer.message:
        return Problem("QuotaExceeded", message)
    if answer.code == 403 and "PodSecurity" in answer.message:
        return Problem("PodSecurityRejected", message)
    if "ValidatingAdmissionPolicy" in answer.message or "admission webhook" in answer.message:
        return Problem("AdmissionRefused", message)  # a cluster policy, not our spec
    if answer.code == 403:
        return Problem("Forbidden", message)
    if answer.code == 422:
        return Problem("Invalid", message)
    return Problem("Refused", message)


def check_service_owner(
    client: KubeApi, app: AppRef, name: str
) -> tuple[Mapping[str, Any] | None, ServiceConflict | None]:
    """When our cache has no Service of ours: is there one, and whose is it?"""
    answer = client.get("services", app.namespace, name)
    if answer.code == 404:
        return None, None
    if is_transient(answer):
        raise TransientError(f"reading Service {name}: {answer.code} {answer.message}")
    if not answer.ok:  # refused (403): whose it is stays unknown, so it is not written
        return None, ServiceConflict(name, "", f"{answer.code} {answer.reason}: {answer.message}")
    if controlled_by(answer.body, app.uid):
        return answer.body, None
    return None, ServiceConflict(name, controller_name(answer.body))


def _landed(answer: Answer, result: ApplyResult, what: str) -> bool:
    """True if the write landed; a refusal becomes a problem, trouble a TransientError."""
    if answer.ok:
        return True
    if is_transient(answer):
        raise TransientError(f"{what}: {answer.code} {answer.message}")
    result.problems.append(_problem(answer, what))
    return False


async def _create_pod(client: KubeApi, action: Action, app: AppRef, result: ApplyResult) -> bool:
    assert action.body is not None
    answer = await _call(client.create_pod, action.body)
    if answer.code == 409 and answer.reason == "AlreadyExists":
        # A stale cache: the Pod exists. Never a duplicate; but is it ours?
        existing = await _call(client.get, "pods", app.namespace, action.name)
        if existing.ok and not controlled_by(existing.body, app.uid):
            result.foreign_names.append(action.name)
        elif existing.ok and labels_of(existing.body).get(APP_LABEL) != app.name:
            result.hidden_names.append(action.name)
        return False
    if not _landed(answer, result, f"creating Pod {action.name}"):
        return False
    result.created_pods.append(action.name)
    return True


async def _delete_pod(client: KubeApi, action: Action, app: AppRef, result: ApplyResult) -> bool:
    answer = await _call(client.delete, "pods", app.namespace, action.name, action.uid)
    if answer.code in (404, 409):  # already gone, or a successor with that name
        return False
    if not _landed(answer, result, f"deleting Pod {action.name}"):
        return False
    result.deleted_pods.append(action.name)
    return True


async def _drain_pod(client: KubeApi, action: Action, app: AppRef, result: ApplyResult) -> bool:
    assert action.body is not None
    answer = await _call(client.patch_pod, app.namespace, action.name, action.body)
    if answer.code in (404, 409):  # already gone, or a successor with that name
        return False
    if not _landed(answer, result, f"draining Pod {action.name}"):
        return False
    result.drained_pods.append(action.name)
    return True


async def _write_service(client: KubeApi, action: Action, app: AppRef, result: ApplyResult) -> bool:
    assert action.body is not None
    if action.kind == "recreate_service":
        gone = await _call(client.delete, "services", app.namespace, action.name, action.uid)
        if gone.code != 404 and not _landed(gone, result, f"deleting Service {action.name}"):
            return False
    if action.kind == "replace_service":
        answer = await _call(client.replace_service, action.body)
        what = f"repairing Service {action.name}"
    else:
        answer = await _call(client.apply_service, action.body)
        what = f"applying Service {action.name}"
    if not _landed(answer, result, what):
        return False
    result.service = answer.body
    return True


async def _record_revision(
    client: KubeApi, action: Action, app: AppRef, result: ApplyResult
) -> bool:
    """List the app's revisions (metadata), then create and prune as history.recording
    says. True if a revision was created."""
    assert action.body is not None
    ours = []
    if not action.body.get("first"):
        listed = await _call(client.list_revisions, app.namespace, app.name)
        if not _landed(listed, result, f"listing the revisions of {app.name}"):
            return False
        ours = [
            observe_revision(item)
            for item in listed.body.get("items") or []
            if controlled_by(item, app.uid)
        ]
    create, prune = recording(ours, action.body)
    created = False
    if create is not None:
        answer = await _call(client.create_revision, create)
        created = answer.code != 409 and _landed(answer, result, f"recording {action.name}")
    for old in prune:
        gone = await _call(client.delete_revision, app.namespace, old.name, old.uid)
        if gone.code not in (404, 409):
            _landed(gone, result, f"deleting revision {old.name}")
    result.recorded = result.recorded or create is None or created
    return created


async def _write_budget(client: KubeApi, action: Action, app: AppRef, result: ApplyResult) -> bool:
    if action.kind == "apply_budget":
        assert action.body is not None
        answer = await _call(client.apply_budget, action.body)
        if not _landed(answer, result, f"applying PodDisruptionBudget {action.name}"):
            return False
        result.budget = answer.body
        return True
    answer = await _call(client.delete_budget, app.namespace, action.name, action.uid)
    if answer.code in (404, 409):  # already gone, or another object of that name
        return False
    if not _landed(answer, result, f"deleting PodDisruptionBudget {action.name}"):
        return False
    result.budget = {}  # gone
    return True


_WRITERS = {
    "create_pod": _create_pod,
    "drain_pod": _drain_pod,
    "delete_pod": _delete_pod,
    "apply_service": _write_service,
    "replace_service": _write_service,
    "recreate_service": _write_service,
    "record_revision": _record_revision,
    "apply_budget": _write_budget,
    "delete_budget": _write_budget,
}


async def _run(client: KubeApi, action: Action, app: AppRef, result: ApplyResult) -> None:
    if not await _WRITERS[action.kind](client, action, app, result):
        return
    result.done.append(action)
    logger.info(
        "%s",
        action.reason[:1].upper() + action.reason[1:],
        extra={"app": f"{app.namespace}/{app.name}", "action": action.kind},
    )


async def execute(
    client: KubeApi,
    app: AppRef,
    plan: Plan,
    parallel: int = 16,
    executor: Executor | None = None,
) -> ApplyResult:
    """Carry out every action, in parallel within two phases: Pod drains and deletes, then
    the rest.

    A plan may create Pods in the room that its own drains and deletes make (a rolling
    update replaces as it removes). Those creates wait for them, and are skipped if any was
    refused: run together, a refused or slower one would leave more Pods than maxSurge
    allows. ``executor``: the threads the requests run in (default: the loop's), so that
    a caller whose requests must not queue behind others' can have threads of its own.
    """
    token = _EXECUTOR.set(executor)
    try:
        return await _execute(client, app, plan, parallel)
    finally:
        _EXECUTOR.reset(token)


async def _execute(client: KubeApi, app: AppRef, plan: Plan, parallel: int) -> ApplyResult:
    result = ApplyResult()
    gate = asyncio.Semaphore(parallel)

    async def bounded(action: Action) -> None:
        async with gate:
            await _run(client, action, app, result)

    async def run_all(actions: Sequence[Action]) -> None:
        outcomes = await asyncio.gather(*(bounded(a) for a in actions), return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            if isinstance(errors[0], TransientError):
                errors[0].partial = result
            raise errors[0]

    removals = [a for a in plan.actions if a.kind in ("drain_pod", "delete_pod")]
    rest = [a for a in plan.actions if a not in removals]
    await run_all(removals)
    if result.problems:
        # A drain or delete was refused: the room it was to make is not there. The next
        # reconcile plans again from what exists.
        rest = [a for a in rest if a.kind != "create_pod"]
    await run_all(rest)
    return result
