"""The operator's functions stay short enough to read in one screen."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "exposedapp"
LIMIT = 60  # lines, docstring and comments included


def test_no_function_of_the_operator_is_longer_than_the_limit() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length >= LIMIT:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


def test_no_test_module_name_is_shared_between_the_tiers() -> None:
    # pytest imports test modules by basename (rootdir import mode): a unit and an e2e
    # module of the same name fail the whole collection, which only `make test` shows.
    tests = Path(__file__).resolve().parents[1]
    unit = {p.name for p in (tests / "unit").glob("test_*.py")}
    e2e = {p.name for p in (tests / "e2e").glob("test_*.py")}
    assert unit & e2e == set()
