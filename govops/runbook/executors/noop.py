"""`noop`: does nothing (optionally sleeps or fails); for tests, benchmarks and steps with
nothing to undo — say why in the action's `note`."""

from __future__ import annotations

from typing import Any

from govops.runbook.executors.base import Args, ExecContext, Executor, Outcome
from govops.runbook.model import Duration


class NoopArgs(Args):
    sleep: Duration = 0.0
    fail: bool = False
    message: str = ""


class NoopExecutor(Executor):
    name = "noop"
    Args = NoopArgs
    mutates = False

    def run(self, args: Any, ctx: ExecContext) -> Outcome:
        assert isinstance(args, NoopArgs)
        if args.sleep:
            too_long = args.sleep > ctx.remaining()
            ctx.wait(args.sleep)
            if too_long:
                return Outcome(False, f"timed out after {ctx.timeout:g}s")
        if args.fail:
            return Outcome(False, args.message or "noop: told to fail")
        return Outcome(True, args.message)

    def describe(self, args: Any) -> str:
        assert isinstance(args, NoopArgs)
        return "noop" + (f" ({args.message})" if args.message else "")
