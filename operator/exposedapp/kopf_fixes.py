"""A fix for kopf's start-up over many objects: wake the waiters only when it matters.

kopf holds every object's handlers until the in-memory indexes are filled: each object of
the initial listing gets a toggle in one set, dropped once the object is indexed, and
every object's worker then waits on the set's condition until all toggles are gone. kopf
(1.45) wakes every waiting worker on every toggle added or dropped: with 5,000 objects
(1,000 apps, their Pods, Services and EndpointSlices) that is millions of wake-ups, each
taking the set's lock in turn. Measured on a restart over 1,000 apps: after 90 s, 4,315
workers were still waiting, each holding its object's whole body (the operator at
~196 MB instead of ~125 MB), and not one app had been reconciled.

The set's state is a function of its toggles (all on, or any on); a waiter waits for that
state. Adding or dropping a toggle that leaves it unchanged cannot satisfy any waiter, so
the fix notifies only when it changes. Turning a toggle on or off keeps kopf's own code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from kopf._cogs.aiokits import aiotoggles

__all__ = ["apply_kopf_fixes"]

logger = logging.getLogger(__name__)


async def _notify_if_changed(self: aiotoggles.ToggleSet, change: Callable[[], object]) -> None:
    """Change the set's toggles; wake its waiters only if that changed the set's state."""
    async with self._condition:
        before = self.is_on()
        change()
        if self.is_on() != before:
            self._condition.notify_all()


async def _make_toggle(
    self: aiotoggles.ToggleSet, __val: bool = False, *, name: str | None = None
) -> aiotoggles.Toggle:
    toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
    await _notify_if_changed(self, lambda: self._toggles.add(toggle))
    return toggle


async def _drop_toggle(self: aiotoggles.ToggleSet, toggle: aiotoggles.Toggle) -> None:
    await _notify_if_changed(self, lambda: self._toggles.discard(toggle))


async def _drop_toggles(self: aiotoggles.ToggleSet, toggles: Iterable[aiotoggles.Toggle]) -> None:
    await _notify_if_changed(self, lambda: self._toggles.difference_update(toggles))


def apply_kopf_fixes() -> bool:
    """Install the fix if kopf's ToggleSet is the one it was written for; True if so."""
    probe = aiotoggles.ToggleSet(all)
    expected = ("make_toggle", "drop_toggle", "drop_toggles", "is_on")
    if not all(hasattr(probe, a) for a in ("_condition", "_toggles", *expected)):
        logger.warning("kopf's ToggleSet has changed; its start-up fix is not applied")
        return False
    aiotoggles.ToggleSet.make_toggle = _make_toggle  # type: ignore[method-assign]
    aiotoggles.ToggleSet.drop_toggle = _drop_toggle  # type: ignore[method-assign]
    aiotoggles.ToggleSet.drop_toggles = _drop_toggles  # type: ignore[method-assign]
    return True
