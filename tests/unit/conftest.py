"""Every unit test starts with kopf as kopf ships it: what kopf_adapter patches is put back
after each test, whatever the test applied."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import fetching, watching

_PATCHED = [
    (aiotoggles.ToggleSet, "make_toggle"),
    (aiotoggles.ToggleSet, "drop_toggle"),
    (aiotoggles.ToggleSet, "drop_toggles"),
    (fetching, "fetch_objs"),
    (watching, "continuous_watch"),
    (watching, "watch_objs"),
]


@pytest.fixture(autouse=True)
def _kopf_as_shipped() -> Iterator[None]:
    saved = [(owner, name, owner.__dict__[name]) for owner, name in _PATCHED]
    yield
    for owner, name, original in saved:
        setattr(owner, name, original)
