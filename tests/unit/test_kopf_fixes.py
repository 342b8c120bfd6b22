"""kopf's toggle sets, as the operator runs them: the same answers, without the herd.

Start-up over many objects holds every object's worker on one toggle set until all are
indexed; kopf woke every waiter on every toggle dropped. With the fix a waiter is woken
when the set's state changes, and only then.
"""

from __future__ import annotations

import asyncio

from kopf._cogs.aiokits import aiotoggles

from exposedapp.kopf_fixes import apply_kopf_fixes


class CountingSet(aiotoggles.ToggleSet):
    """Counts how often its state is computed: once per waiter woken, at least."""

    checks = 0

    def is_on(self) -> bool:
        CountingSet.checks += 1
        return super().is_on()


def _index_like_kopf(objects: int) -> tuple[int, int]:
    """One toggle per object, one waiter per object, toggles dropped one by one (as kopf's
    workers do once each object is indexed). Returns (waiters released, state checks)."""

    async def scenario() -> tuple[int, int]:
        indexed = CountingSet(all)
        toggles = [await indexed.make_toggle(name=f"object {i}") for i in range(objects)]
        released = 0

        async def worker() -> None:
            nonlocal released
            await indexed.wait_for(True)
            released += 1

        workers = [asyncio.create_task(worker()) for _ in range(objects)]
        await asyncio.sleep(0)  # every worker waiting
        CountingSet.checks = 0
        for toggle in toggles[:-1]:
            await indexed.drop_toggle(toggle)
            await asyncio.sleep(0)
        assert released == 0, "released before every object was indexed"
        await indexed.drop_toggle(toggles[-1])
        await asyncio.wait_for(asyncio.gather(*workers), timeout=10)
        return released, CountingSet.checks

    return asyncio.run(scenario())


def test_the_fix_applies_to_the_pinned_kopf() -> None:
    assert apply_kopf_fixes()


def test_waiters_are_released_once_all_are_indexed_and_woken_once() -> None:
    apply_kopf_fixes()
    released, checks = _index_like_kopf(1000)
    assert released == 1000
    # Two checks per drop (before and after) and one per waiter woken: linear. kopf's own
    # notify-all on every drop re-checked every waiter each time: 1000 x 1000.
    assert checks <= 2 * 1000 + 1000 + 10


def test_any_set_still_follows_turned_toggles() -> None:
    apply_kopf_fixes()

    async def scenario() -> None:
        paused = aiotoggles.ToggleSet(any)
        first = await paused.make_toggle(name="peer a")
        second = await paused.make_toggle(name="peer b")
        waiting = asyncio.create_task(paused.wait_for(True))
        await asyncio.sleep(0)
        assert not waiting.done()
        await second.turn_to(True)
        await asyncio.wait_for(waiting, timeout=5)
        resumed = asyncio.create_task(paused.wait_for(False))
        await paused.drop_toggle(second)  # the set turns off: its waiters are woken
        await asyncio.wait_for(resumed, timeout=5)
        assert paused.is_off()
        assert first.is_off()

    asyncio.run(scenario())
