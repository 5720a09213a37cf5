"""Shared pytest configuration. Keep this minimal; fixtures live in tests/fixtures/."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.fixtures.postgres"]

# Spread over workers one at a time (`make test`: pytest-xdist, --dist loadgroup); every other
# module stays whole on one worker, so its module-scoped fixtures (a Prometheus, stand-ins,
# containers) start once and its tests keep their order.
SPREAD = frozenset({"test_molecule.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name not in SPREAD:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__ if item.module else ""))
