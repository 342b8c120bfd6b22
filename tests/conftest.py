"""Shared test configuration: the e2e marker is applied by folder, so no test forgets it."""

from __future__ import annotations

from pathlib import Path

import pytest

E2E_DIR = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
    # Tests that stop the session's cluster run after every other test.
    items.sort(key=lambda item: item.get_closest_marker("stops_cluster") is not None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    # Fixtures read the outcome (e.g. to print the operator's log when a test failed).
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
