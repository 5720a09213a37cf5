"""Shared pytest configuration. Keep this minimal; fixtures live in tests/fixtures/."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.fixtures.postgres"]

# Spread over workers one at a time (`make test`: pytest-xdist, --dist loadgroup); every other
# module stays whole on one worker, so its module-scoped fixtures (a Prometheus, stand-ins,
# containers) start once and its tests keep their order.
SPREAD = frozenset({"test_molecule.py"})

# The longest work goes first, so the run's tail is short unit modules, not a 3-minute scenario
# on one worker while the other idles (xdist hands out groups in collection order when run with
# --no-loadscope-reorder; its default puts the groups with most tests first, the one-test
# Molecule scenarios last). Molecule's dearest scenarios through Mitogen, in seconds
# (docs/converge-speed.md); the others take less.
HEAVY_SCENARIOS = {"lgsp_gateway": 216, "govops_system": 212, "pgbackrest": 186, "postgresql": 157}


def _weight(item: pytest.Item) -> tuple[int, int]:
    if item.path.name in SPREAD:
        role = item.callspec.params.get("role", "") if hasattr(item, "callspec") else ""
        return 0, -HEAVY_SCENARIOS.get(role, 0)
    return (1 if "integration" in item.path.parts else 2), 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # sort is stable: a module's tests keep their order.
    items.sort(key=_weight)
    for item in items:
        if item.path.name not in SPREAD:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__ if item.module else ""))
