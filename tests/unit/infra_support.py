"""Shared by the test_infra_* modules: the production stacks, run once under mocks.

Plain cached functions rather than fixtures, so each module takes what it needs; runs
return only after the whole program has finished (never read inside an `apply`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import cache
from typing import Any

import pulumi.runtime
import yaml
from pulumi.runtime.settings import set_root_resource

from govops.pulumi.plan import SECRET_KEYS, StackFile, platform_answers, read_stacks, run_stacks
from infra.mocks import Registration
from infra.runner import StackRun, run_stack

from .conftest import ROOT

STACKS = ROOT / "infra" / "stacks"
PASSWORD = {"govops:dbAdminPassword": "test-password"}


def reset_pulumi() -> None:
    """Leave no mocks state behind for the next test (set_mocks is global)."""
    set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_all_config({}, [])


@cache
def production_stacks() -> tuple[StackFile, ...]:
    return tuple(read_stacks(ROOT, "production"))


@cache
def answers() -> dict[str, dict[str, Any]]:
    return platform_answers(production_stacks())


@cache
def production_runs() -> dict[str, StackRun]:
    """Every production stack's run, as `govops plan` runs them (worker processes, fast
    mocks; test_infra_policy proves the fast mocks register the same)."""
    runs = {s.stack: run for s, run in run_stacks(list(production_stacks()), answers())}
    reset_pulumi()
    return runs


def stack_config(stack: str) -> dict[str, Any]:
    """A stack file's `config:` as rendered, plus what an engineer sets (the password)."""
    data = yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    config: dict[str, Any] = copy.deepcopy(data["config"])
    return config | PASSWORD


def run_config(config: dict[str, Any], stack: str = "production-hue") -> StackRun:
    """One stack with a (possibly altered) config, the stock way (no fast path)."""
    try:
        return run_stack(stack, config, answers(), SECRET_KEYS)
    finally:
        reset_pulumi()


def of_type(regs: Iterable[Registration], suffix: str) -> list[Registration]:
    return [r for r in regs if r.type.endswith(f":{suffix}")]
