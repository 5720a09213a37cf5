"""The executors by name. The loader validates each action's `with` against `Args`."""

from __future__ import annotations

from functools import cache

from govops.runbook.executors.ansible import AnsibleExecutor
from govops.runbook.executors.base import (
    Approval,
    ExecContext,
    Executor,
    ExecutorError,
    Interrupted,
    Outcome,
    RunSettings,
    WaitingForApproval,
)
from govops.runbook.executors.fabric import FabricExecutor
from govops.runbook.executors.http import HttpExecutor
from govops.runbook.executors.local import LocalExecutor
from govops.runbook.executors.manual import ManualExecutor
from govops.runbook.executors.noop import NoopExecutor
from govops.runbook.executors.operation import OperationExecutor
from govops.runbook.executors.promql import PromqlExecutor

EXECUTORS: dict[str, type[Executor]] = {
    e.name: e
    for e in (
        AnsibleExecutor,
        FabricExecutor,
        HttpExecutor,
        OperationExecutor,
        PromqlExecutor,
        ManualExecutor,
        LocalExecutor,
        NoopExecutor,
    )
}


@cache
def executor(name: str) -> Executor:
    return EXECUTORS[name]()


__all__ = [
    "EXECUTORS",
    "Approval",
    "ExecContext",
    "Executor",
    "ExecutorError",
    "Interrupted",
    "Outcome",
    "RunSettings",
    "WaitingForApproval",
    "executor",
]
