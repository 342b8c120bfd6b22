"""One reconcile of one app: observed -> desired -> plan -> apply -> status and events.

The observed state comes from kopf's in-memory indexes (no reads per reconcile). A small
memory of in-flight work ("expectations", as the ReplicaSet controller calls it) keeps a
reconcile that runs before the watch has delivered our own creates and deletes from
acting on a stale view.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from .domain.desired import (
    AppRef,
    ConfigRef,
    DesiredState,
    build_desired,
    config_digest,
    config_references,
)
from .domain.history import record_action
from .domain.labels import APP_LABEL, SERVICE_NAME_LABEL, identity_labels
from .domain.model import SpecError, parse_spec, validate_name
from .domain.objects import controlled_by, owned_keys, summarise_done
from .domain.plan import (
    Action,
    Listing,
    ObservedPod,
    Plan,
    ServiceConflict,
    observe_pod,
    plan,
)
from .domain.podhealth import explain
from .domain.rollout import rollout_target
from .domain.status import (
    Problem,
    describe_problems,
    summarise,
)
from .runtime.cache import AppKey, Observed
from .runtime.client import KubeApi
from .runtime.executor import ApplyResult, TransientError, check_service_owner, execute
from .runtime.metrics import RECONCILE_SECONDS, RECONCILES
from .runtime.recorder import EventRecorder
from .runtime.status_writer import StatusWriter
from .runtime.workqueue import Backoff, Outcome

__all__ = ["AppKey", "Observed", "Reconciler"]

logger = logging.getLogger(__name__)
EXPECTATION_TIMEOUT = 30.0
PROBLEM_BACKOFF = Backoff(initial=2.0, maximum=60.0)
PARTIAL_REQUEUE_SECONDS = 1.0
SLICES_GRACE = 5.0  # seconds the EndpointSlices of a new Service may take to appear


def _slice_of(slice_: Mapping[str, Any], service: str) -> bool:
    labels = (slice_.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(SERVICE_NAME_LABEL) == service)


def _relaxed_message(relaxed: str) -> str:
    message = f"The Pods relax the operator's defaults, as the spec asks: {relaxed}"
    if "runAsNonRoot=false" in relaxed:
        message += " (they may run as root: Pod Security baseline, not restricted)"
    return message


STATUS_DEBOUNCE = float(os.environ.get("EXPOSEDAPP_STATUS_DEBOUNCE_SECONDS", "1.0"))
# Progress-only status writes, all apps together (see status.progress_interval).
PROGRESS_WRITES_PER_SECOND = float(
    os.environ.get("EXPOSEDAPP_STATUS_PROGRESS_WRITES_PER_SECOND", "5")
)


@dataclass
class _Expectations:
    creates: set[str] = field(default_factory=set)
    deletes: set[str] = field(default_factory=set)
    drains: set[str] = field(default_factory=set)
    deadline: float = 0.0

    def satisfied(self, pods: Iterable[ObservedPod], now: float) -> bool:
        seen = {p.name for p in pods}
        self.creates -= seen  # the watch delivered the new Pod
        self.deletes &= {p.name for p in pods if not p.deleting}  # terminating, or gone
        self.drains &= {p.name for p in pods if p.live}  # draining, terminating, or gone
        return (not self.creates and not self.deletes and not self.drains) or now > self.deadline


@dataclass(frozen=True)
class _Snapshot:
    """One app and its children as the indexes held them when a reconcile began."""

    ref: AppRef
    app: Mapping[str, Any]
    generation: int
    pods: list[ObservedPod]
    service: Mapping[str, Any] | None
    slices: tuple[Mapping[str, Any], ...]
    budget: Mapping[str, Any] | None  # our PodDisruptionBudget, as freshly as we know it
    memory: _Memory

    @property
    def key(self) -> AppKey:
        return (self.ref.namespace, self.ref.name)


def _name_problems(result: ApplyResult) -> list[Problem]:
    """Pod names we could not use: held by Pods not ours, or by ours that lost our label."""
    problems = []
    if result.hidden_names:
        problems.append(
            Problem(
                "PodLabelsEdited",
                f"Pods {', '.join(sorted(result.hidden_names))} are controlled by this app "
                f"but no longer carry the label {APP_LABEL}; they are not counted or "
                "selected any more (and go when the app goes); replacements use other names",
            )
        )
    if result.foreign_names:
        problems.append(
            Problem(
                "PodNameTaken",
                "Pods not controlled by this app hold the "
                f"names {', '.join(sorted(result.foreign_names))}; "
                "other names are used",
            )
        )
    return problems


@dataclass
class _Memory:
    """What the operator remembers of an app between reconciles (lost on restart, safely).

    It belongs to one app object (``uid``): an app created again under the same name
    starts afresh.
    """

    uid: str = ""
    expectations: _Expectations = field(default_factory=_Expectations)
    problem_events: tuple[str, ...] = ()  # reasons of the problems an event has told
    problem_runs: int = 0
    # Causes (reason, container) of Pods not running that an event has told already,
    # forgotten once every Pod serves again.
    pod_causes: frozenset[tuple[str, str]] = frozenset()
    foreign_names: set[str] = field(default_factory=set)
    # The Service as we last wrote it, and the resourceVersion we saw before writing: until
    # the watch delivers our write, the index still shows that older version.
    service_written: Mapping[str, Any] | None = None
    service_seen_before: str | None = None
    # A new Service queued for creation (see Reconciler.create_service), and what
    # reconciles did meanwhile: reported in one event once the Service is there.
    service_creating: bool = False
    owner_checked: bool = False  # the reconcile that queued the create found no Service
    service_created_at: float | None = None  # monotonic: our new Service, slices to come
    done_meanwhile: list[Action] = field(default_factory=list)
    collected: ApplyResult | None = None  # a finished create's result, not yet told
    service_refused: bool = False  # the last create was refused: retry in line, with backoff
    # Our last PodDisruptionBudget write ({} for a delete) and the resourceVersion it was
    # based on: while the index shows that version, the write has not come back yet.
    budget_written: tuple[str | None, Mapping[str, Any]] | None = None
    # Templates whose first Pods were created but which are not in the rollout history yet
    # (a record_revision that failed is tried again by the next reconcile).
    unrecorded: set[str] = field(default_factory=set)
    # Draining Pods (by UID) the EndpointSlices no longer list, and since when (plan.Listing).
    unlisted_since: dict[str, datetime.datetime] = field(default_factory=dict)
    # The spec as parsed and the objects it implies, for the spec they were built from: an
    # app is reconciled many times while its Pods start or roll, with the same spec each
    # time. Kept while the app progresses, then dropped: a settled app needs none of it.
    built: tuple[tuple[str, str, str | None], DesiredState] | None = None

    def desired_for(
        self, ref: AppRef, raw_spec: Mapping[str, Any], data_hash: Callable[[ConfigRef], str | None]
    ) -> DesiredState:
        """build_desired(ref, parse_spec(raw_spec), ...), parsed and built once per spec and
        per data of the ConfigMaps and Secrets it references (rolloutOnConfigChange)."""
        digest = None
        if raw_spec.get("rolloutOnConfigChange"):
            digest = config_digest(config_references(raw_spec), data_hash)
        fingerprint = (
            ref.uid,
            json.dumps(raw_spec, sort_keys=True, separators=(",", ":")),
            digest,
        )
        if self.built is None or self.built[0] != fingerprint:
            self.built = (fingerprint, build_desired(ref, parse_spec(raw_spec), digest))
        return self.built[1]

    def fresher_budget(self, observed: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The observed PodDisruptionBudget, or the one we wrote while the watch lags."""
        if self.budget_written is None:
            return observed
        before, written = self.budget_written
        version = ((observed or {}).get("metadata") or {}).get("resourceVersion")
        if version == before:
            return written or None  # {}: our delete, not delivered yet
        self.budget_written = None
        return observed

    def fresher_service(self, observed: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        if self.service_written is None:
            return observed
        version = ((observed or {}).get("metadata") or {}).get("resourceVersion")
        if version == self.service_seen_before:
            return self.service_written  # our write has not come back through the watch yet
        self.service_written = None  # delivered, or overtaken by someone else's change
        return observed


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Reconciler:
    def __init__(
        self,
        client: KubeApi,
        observe: Callable[[AppKey], Observed],
        *,
        clock: Callable[[], datetime.datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        wake: Callable[[AppKey], None] | None = None,
        queue_service_create: Callable[[AppKey], None] | None = None,
        service_create_threads: Executor | None = None,
        config_hash: Callable[[str, str, str], str | None] = lambda namespace, kind, name: None,
    ) -> None:
        """Raises ValueError if ``queue_service_create`` is given without ``wake``: the app
        would never be reconciled again once its Service is created.

        ``clock`` is the wall clock (status times, event times); ``monotonic`` (seconds)
        times what the reconciler waits for: expectations, status debounce.
        ``wake`` queues an app's reconcile again (once its new Service is created);
        ``queue_service_create`` queues ``create_service`` for an app on a queue of its
        own, whose API requests run in ``service_create_threads`` (so that they never wait
        behind the Pod creates of every app arriving at once: the Service is on the path to
        Ready, its cluster IP allocated one at a time). Without it a new Service is created
        in line, by the app's reconcile. ``config_hash(namespace, kind, name)``: the hash of
        a ConfigMap's or Secret's data, None if absent or not watched (Cache.config_hash)."""
        if queue_service_create is not None and wake is None:
            raise ValueError("queue_service_create needs wake")
        self.client = client
        self.observe = observe
        self.clock = clock
        self.monotonic = monotonic
        self.wake = wake
        self.queue_service_create = queue_service_create
        self.service_create_threads = service_create_threads
        self.config_hash = config_hash
        self.memory: dict[AppKey, _Memory] = {}
        self._event_tasks: set[asyncio.Task[None]] = set()
        self.recorder = EventRecorder(client, clock)
        self.status = StatusWriter(
            client,
            clock=clock,
            monotonic=monotonic,
            warn=lambda ref, reason, message: self._event(ref, "Warning", reason, message),
            minimum_interval=STATUS_DEBOUNCE,
            writes_per_second=PROGRESS_WRITES_PER_SECOND,
        )

    async def __call__(self, key: AppKey) -> Outcome:
        started = time.monotonic()
        result = "error"
        try:
            outcome, result = await self._reconcile(key)
            return outcome
        finally:
            RECONCILES.labels(result=result).inc()
            RECONCILE_SECONDS.observe(time.monotonic() - started)

    async def _reconcile(self, key: AppKey) -> tuple[Outcome, str]:
        """Snapshot, gate, plan, execute, record, status: one pass for one app."""
        snap = self._snapshot(key)
        if snap is None:
            return Outcome(), "synced"
        memory = snap.memory
        desired = await self._desired(snap)
        if desired is None:
            return Outcome(), "invalid"
        if not memory.expectations.satisfied(snap.pods, self.monotonic()):
            # Our own writes have not all come back through the watch yet; their events
            # will run this again. Acting now could double a create or a delete.
            logger.debug("Deferred %s/%s: waiting for our own writes to be observed", *key)
            wait = max(0.1, memory.expectations.deadline - self.monotonic())
            return Outcome(requeue_after=wait), "deferred"
        service, conflict = await self._service(snap, desired)
        the_plan = self._plan(snap, desired, service, conflict)
        the_plan = self._queue_service_create(key, the_plan, service, memory)
        result = await self._execute(snap, the_plan)
        if result is None:
            return Outcome(requeue_after=PARTIAL_REQUEUE_SECONDS), "partial"
        problems = await self._record(snap, service, result, conflict)
        wrote_status = await self._report(
            snap.ref,
            snap.app,
            snap.generation,
            desired,
            snap.pods,
            result.service or service,
            snap.slices,
            problems,
            memory,
            # A Service still being created, or just created and without its EndpointSlices
            # yet, counts as a change under way: their arrival brings the Ready write, and
            # progress written meanwhile is stale moments later.
            acted=bool(result.done) or memory.service_creating or self._slices_due(snap),
        )
        log = logger.info if (result.done or wrote_status or problems) else logger.debug
        log(
            "Reconciled %s/%s: %d actions, %d problems, status %s",
            *key,
            len(result.done),
            len(problems),
            "written" if wrote_status else "unchanged",
        )
        if key not in self.status.progressing:
            memory.built = None  # settled: rebuilt if the spec or the Pods move again
        label = "problem" if problems else ("changed" if result.done or wrote_status else "synced")
        return self._outcome(the_plan, problems, memory), label

    async def _execute(self, snap: _Snapshot, the_plan: Plan) -> ApplyResult | None:
        """Carry out the plan; None if only part of it landed (the API pacing us)."""
        if the_plan.empty:
            return ApplyResult()
        try:
            return await execute(self.client, snap.ref, the_plan)
        except TransientError as error:
            if error.partial is None:
                raise
            self._remember(snap, error.partial)  # what landed must not be made twice
            snap.memory.done_meanwhile += error.partial.done  # told by the next reconcile
            if not error.partial.done:
                raise
            # Some actions landed: the API is pacing us (429 among parallel writes), not
            # failing this app. Look again soon, without growing the failure backoff.
            logger.info("Reconciled %s/%s in part: %s", *snap.key, error)
            return None

    def _snapshot(self, key: AppKey) -> _Snapshot | None:
        """What the indexes hold of the app and its children; None if the app is gone."""
        observed = self.observe(key)
        app = observed.app
        metadata = (app or {}).get("metadata") or {}
        if app is None or metadata.get("deletionTimestamp"):
            # Gone, or going: the garbage collector removes the children (ownerReferences).
            self._forget(key)
            return None
        memory = self.memory.get(key)
        if memory is None or memory.uid != metadata["uid"]:
            # A new app, or one deleted and created again under the same name before a
            # reconcile saw the gap: nothing of its predecessor's applies to it.
            self._forget(key)
            memory = self.memory[key] = _Memory(uid=metadata["uid"])
            self.status.seen(memory.uid)
        return self._snapshot_of(key, observed, memory)

    @staticmethod
    def _snapshot_of(key: AppKey, observed: Observed, memory: _Memory) -> _Snapshot:
        app = observed.app
        assert app is not None
        metadata = app.get("metadata") or {}
        ref = AppRef(key[0], key[1], metadata["uid"])
        services = [
            s
            for s in observed.services
            if controlled_by(s, ref.uid) and s["metadata"]["name"] == ref.name
        ]
        return _Snapshot(
            ref=ref,
            app=app,
            generation=int(metadata.get("generation") or 0),
            pods=[observe_pod(p) for p in observed.pods if controlled_by(p, ref.uid)],
            service=services[0] if services else None,
            slices=observed.slices,
            budget=memory.fresher_budget(
                next(
                    (
                        b
                        for b in observed.budgets
                        if controlled_by(b, ref.uid) and b["metadata"]["name"] == ref.name
                    ),
                    None,
                )
            ),
            memory=memory,
        )

    def _data_hash(self, namespace: str) -> Callable[[ConfigRef], str | None]:
        return lambda ref: self.config_hash(namespace, *ref)

    async def _desired(self, snap: _Snapshot) -> DesiredState | None:
        """The desired state of a valid spec; for an invalid one, status says why: None."""
        try:
            validate_name(snap.ref.name)
            return snap.memory.desired_for(
                snap.ref, snap.app.get("spec") or {}, self._data_hash(snap.ref.namespace)
            )
        except SpecError as error:
            problem = Problem("InvalidSpec", str(error))
            await self._report(
                snap.ref,
                snap.app,
                snap.generation,
                None,
                snap.pods,
                snap.service,
                snap.slices,
                [problem],
                snap.memory,
            )
            logger.info("Reconciled %s/%s: the spec is invalid: %s", *snap.key, error)
            return None

    async def _service(
        self, snap: _Snapshot, desired: DesiredState, creating: bool = False
    ) -> tuple[Mapping[str, Any] | None, ServiceConflict | None]:
        """Our Service as freshly as we know it, or a conflict with another owner's.

        ``creating``: asked by the create step, which checks the owner for the queued
        create (the app's reconciles leave that to it meanwhile)."""
        memory = snap.memory
        service = memory.fresher_service(snap.service)
        queued = memory.service_creating and not creating
        if desired.service is None or service is not None or queued:
            return service, None
        found, conflict = await asyncio.to_thread(
            check_service_owner, self.client, snap.ref, snap.ref.name
        )
        return found or service, conflict

    def _plan(
        self,
        snap: _Snapshot,
        desired: DesiredState,
        service: Mapping[str, Any] | None,
        conflict: ServiceConflict | None,
    ) -> Plan:
        now = self.clock()
        # Toward the spec, or toward a step on the way that keeps renamed ports serving.
        live = [p for p in snap.pods if p.live]
        target = rollout_target(
            desired,
            [(p.template_hash, p.template_summary.get("ports") or {}) for p in live],
            service,
        )
        the_plan = plan(
            target,
            snap.pods,
            service,
            service_owned_keys=owned_keys(service) if service else None,
            service_conflict=conflict,
            taken_names=frozenset(snap.memory.foreign_names),
            now=now,
            listing=self._listing(snap, now),
            budget=snap.budget,
        )
        return self._with_history(snap, desired, the_plan)

    @staticmethod
    def _with_history(snap: _Snapshot, desired: DesiredState, the_plan: Plan) -> Plan:
        """The plan, recording the app's template in its history when it creates the first
        Pods of it (or a record failed before)."""
        running = {p.template_hash for p in snap.pods}
        first = desired.template_hash not in running and any(
            a.kind == "create_pod"
            and a.name.startswith(f"{desired.app_name}-{desired.template_hash}-")
            for a in the_plan.actions
        )
        if not first and desired.template_hash not in snap.memory.unrecorded:
            return the_plan
        snap.memory.unrecorded.add(desired.template_hash)
        record = record_action(
            snap.ref,
            desired.template_hash,
            snap.app.get("spec") or {},
            frozenset(p.template_hash for p in snap.pods if not p.deleting),
            desired.revision_history_limit,
            first="observedGeneration" not in (snap.app.get("status") or {}),
        )
        return dataclasses.replace(the_plan, actions=(*the_plan.actions, record))

    @staticmethod
    def _listing(snap: _Snapshot, now: datetime.datetime) -> Listing:
        """Which Pods the app's Service's EndpointSlices list, and since when each draining
        Pod has been seen unlisted (remembered until it is gone)."""
        serving = frozenset(
            str((endpoint.get("targetRef") or {}).get("uid"))
            for slice_ in snap.slices
            if _slice_of(slice_, snap.ref.name)
            for endpoint in slice_.get("endpoints") or []
            # An absent condition means unknown, which consumers treat as ready.
            if (endpoint.get("conditions") or {}).get("ready") is not False
            or (endpoint.get("conditions") or {}).get("serving")
        )
        unlisted = snap.memory.unlisted_since
        draining = {p.uid for p in snap.pods if p.draining}
        for uid in list(unlisted):
            if uid not in draining or uid in serving:
                del unlisted[uid]
        for uid in draining - serving:
            unlisted.setdefault(uid, now)
        return Listing(serving, dict(unlisted))

    async def _record(
        self,
        snap: _Snapshot,
        service: Mapping[str, Any] | None,
        result: ApplyResult,
        conflict: ServiceConflict | None,
    ) -> list[Problem]:
        """Remember what landed, tell it in one event, and return the problems met.

        What landed before (a queued Service create, actions of a partly
        applied plan) waits in memory until a reconcile gets here, so it is told once,
        whatever error came in between.
        """
        memory = snap.memory
        if result.service is not None:
            memory.service_refused = False
            memory.service_seen_before = ((service or {}).get("metadata") or {}).get(
                "resourceVersion"
            )
            memory.service_written = result.service
        self._remember(snap, result)
        if memory.service_creating:
            # One event per change, not per reconcile: this one's actions are told with the
            # Service's creation, when it ends.
            memory.done_meanwhile += result.done
        else:
            collected, memory.collected = memory.collected, None
            result.done[:0] = memory.done_meanwhile + (collected.done if collected else [])
            result.problems[:0] = collected.problems if collected else []
            memory.done_meanwhile = []
            for reason, message in summarise_done(result.done):
                self._event(snap.ref, "Normal", reason, message)
        problems = list(result.problems)
        if conflict is not None:
            reason = "ServiceUnreadable" if conflict.unreadable else "ServiceConflict"
            problems.append(Problem(reason, conflict.describe()))
        return problems + _name_problems(result)

    def _queue_service_create(
        self,
        key: AppKey,
        the_plan: Plan,
        service: Mapping[str, Any] | None,
        memory: _Memory,
    ) -> Plan:
        """Take the creation of a new Service out of this reconcile; return the rest.

        Creating a Service allocates its cluster IP, which the apiserver does one at a
        time: with hundreds of new apps each create waits seconds, and a reconcile waiting
        for it would hold a worker that other apps' Pods and status need. So creates have
        a queue (and workers) of their own; the app is woken when its Service is there.
        """
        service_actions = [
            a for a in the_plan.actions if a.kind in ("apply_service", "recreate_service")
        ]
        if not service_actions or self.queue_service_create is None:
            return the_plan
        rest = tuple(a for a in the_plan.actions if a not in service_actions)
        if memory.service_creating:
            return dataclasses.replace(the_plan, actions=rest)  # still queued
        if service is not None or service_actions[0].kind != "apply_service":
            return the_plan  # an update, or a recreate: quick, done in line
        if memory.service_refused:
            # Retried in line, so the refusal stays on status (Degraded) between attempts
            # and the problem backoff grows, instead of flapping with each queued try.
            return the_plan
        memory.service_creating = True
        # This pass found no Service under the name (_service asked the API): the create
        # step need not ask again, unless it has to try again later.
        memory.owner_checked = True
        self.queue_service_create(key)
        return dataclasses.replace(the_plan, actions=rest)

    async def create_service(self, key: AppKey) -> Outcome:
        """The Service-create queue's step: create the app's new Service, keep the result
        in memory (``collected``) until the app's reconcile tells it, wake the app.

        Raises TransientError if the API failed (its queue retries with backoff).
        """
        # Only the app's reconciles create or drop its memory (they never run two at once
        # for a key; this step may run beside one): here it is only looked up.
        memory = self.memory.get(key)
        observed = self.observe(key)
        metadata = (observed.app or {}).get("metadata") or {}
        if (
            memory is None
            or not memory.service_creating
            or metadata.get("uid") != memory.uid
            or metadata.get("deletionTimestamp")
        ):
            return Outcome()  # gone, or a successor under the same name: its reconcile acts
        snap = self._snapshot_of(key, observed, memory)
        try:
            desired = memory.desired_for(
                snap.ref, snap.app.get("spec") or {}, self._data_hash(snap.ref.namespace)
            )
        except SpecError:
            memory.service_creating = False  # the app's reconcile tells why
            return Outcome()
        if memory.owner_checked:
            service, conflict = None, None
        else:
            service, conflict = await self._service(snap, desired, creating=True)
        memory.owner_checked = False  # a retry (after a TransientError) asks again
        actions = [
            a
            for a in self._plan(snap, desired, service, conflict).actions
            if a.kind == "apply_service"
        ]
        create = Plan(actions=tuple(actions))
        result = await execute(self.client, snap.ref, create, executor=self.service_create_threads)
        memory.service_creating = False
        memory.service_refused = bool(result.problems)
        if result.service is not None:
            memory.service_seen_before = None  # our cache had no Service when it was created
            memory.service_written = result.service
            memory.service_created_at = self.monotonic()
        memory.collected = result
        # An app in problem backoff is already due again later: waking it now would retry
        # its refused Pods early. That retry collects the Service instead.
        if self.wake is not None and not memory.problem_runs:
            self.wake(key)
        return Outcome()

    def _remember(self, snap: _Snapshot, result: ApplyResult) -> None:
        memory = snap.memory
        if result.created_pods or result.deleted_pods or result.drained_pods:
            memory.expectations.creates |= set(result.created_pods)
            memory.expectations.deletes |= set(result.deleted_pods)
            memory.expectations.drains |= set(result.drained_pods)
            memory.expectations.deadline = self.monotonic() + EXPECTATION_TIMEOUT
        memory.foreign_names |= set(result.foreign_names) | set(result.hidden_names)
        if result.budget is not None:
            before = ((snap.budget or {}).get("metadata") or {}).get("resourceVersion")
            memory.budget_written = (before, result.budget)
        if result.recorded:
            memory.unrecorded.clear()

    def _slices_due(self, snap: _Snapshot) -> bool:
        """Our new Service's EndpointSlices are still to come (the EndpointSlice
        controller makes them moments after the Service): within SLICES_GRACE seconds."""
        created = snap.memory.service_created_at
        if created is None:
            return False
        if any(_slice_of(s, snap.ref.name) for s in snap.slices) or (
            self.monotonic() - created > SLICES_GRACE
        ):
            snap.memory.service_created_at = None
            return False
        return True

    def _outcome(self, the_plan: Plan, problems: list[Problem], memory: _Memory) -> Outcome:
        if problems:
            # A refusal (quota, Pod Security, ...) may be lifted without any event on our
            # objects, so look again, but less and less often: never a hot loop.
            memory.problem_runs += 1
            return Outcome(requeue_after=PROBLEM_BACKOFF.delay(memory.problem_runs))
        memory.problem_runs = 0
        status_due = self.status.retry_after(memory.uid)
        if memory.service_created_at is not None:  # look again once the grace is over
            status_due = min(
                status_due or SLICES_GRACE,
                max(0.1, SLICES_GRACE - (self.monotonic() - memory.service_created_at)),
            )
        waits = [t for t in (the_plan.requeue_after, status_due) if t is not None]
        return Outcome(requeue_after=min(waits) if waits else None)

    async def _report(
        self,
        ref: AppRef,
        app: Mapping[str, Any],
        generation: int,
        desired: DesiredState | None,
        pods: list[Any],
        service: Mapping[str, Any] | None,
        slices: Iterable[Mapping[str, Any]],
        problems: list[Problem],
        memory: _Memory,
        acted: bool = False,
    ) -> bool:
        """Write status if it changed, and post an event per new problem; True if written."""
        current = app.get("status") or {}
        wanted = summarise(
            generation=generation,
            desired=desired,
            pods=pods,
            service=service,
            slices=list(slices),
            problems=problems,
            now=self.clock(),
            selector=identity_labels(ref.name, ref.uid),
        )
        relaxed = wanted.get("relaxedDefaults")
        if relaxed and relaxed != current.get("relaxedDefaults"):
            self._event(ref, "Normal", "DefaultsRelaxed", _relaxed_message(relaxed))
        version = (app.get("metadata") or {}).get("resourceVersion")
        written = await self.status.write(
            ref,
            current,
            wanted,
            acted=acted,
            version=version,
            deadline_seconds=desired.progress_deadline_seconds if desired else 600,
        )
        self._tell_problems(ref, problems, memory)
        self._tell_pod_problems(ref, pods, memory)
        return written

    def _tell_problems(self, ref: AppRef, problems: list[Problem], memory: _Memory) -> None:
        """One Event per kind of problem; each reconcile that meets it again (a retry, with
        backoff) counts on that Event instead of posting another."""
        reasons = tuple(dict.fromkeys(p.reason for p in problems))
        for reason in reasons:
            group = [p for p in problems if p.reason == reason]
            message = describe_problems(group)
            self._event(ref, "Warning", reason, message)
            if reason not in memory.problem_events:
                logger.warning("Degraded %s/%s: %s", ref.namespace, ref.name, message)
        memory.problem_events = reasons

    def _tell_pod_problems(self, ref: AppRef, pods: list[Any], memory: _Memory) -> None:
        """One Warning event per new cause of Pods not running (the kubelet's reason)."""
        now = self.clock()
        current = [
            problem
            for pod in pods
            if not pod.ready and not pod.deleting
            for problem in pod.problems
            if explain([problem], now) is not None
        ]
        causes = frozenset(problem.cause for problem in current)
        for cause in sorted(causes - memory.pod_causes):
            why = explain([p for p in current if p.cause == cause], now)
            assert why is not None
            self._event(ref, "Warning", *why)
        live = [pod for pod in pods if not pod.deleting]
        # A crash loop alternates causes (Error, CrashLoopBackOff): each is told once,
        # until every Pod serves again.
        healthy = bool(live) and all(pod.ready for pod in live)
        memory.pod_causes = frozenset() if healthy else memory.pod_causes | causes

    def _forget(self, key: AppKey) -> None:
        memory = self.memory.pop(key, None)
        self.status.forget(key, memory.uid if memory else None)
        if memory is not None:
            self.recorder.forget(memory.uid)

    def _event(self, ref: AppRef, kind: str, reason: str, message: str) -> None:
        """Post an event in the background: events are for people, never on the hot path.

        Warnings go through the recorder (repeats counted on one Event); each Normal event
        tells what one reconcile did, so each is its own.
        """
        recorder = self.recorder
        post = recorder.record if kind == "Warning" else recorder.post
        task = asyncio.create_task(post(ref, kind, reason, message))
        self._event_tasks.add(task)
        task.add_done_callback(self._event_tasks.discard)
