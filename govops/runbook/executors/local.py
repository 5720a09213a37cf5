"""`local`: a command on the control node (argv, no shell unless you ask for one).

It gets GOVOPS_IDEMPOTENCY_KEY and friends in its environment, so a script can make itself
idempotent; as a verification, exit status 0 means "done"."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from govops.runbook.executors.base import Args, ExecContext, Executor, Outcome, tail
from govops.runbook.executors.process import run_logged


class LocalArgs(Args):
    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    expect_exit: int = 0


class LocalExecutor(Executor):
    name = "local"
    Args = LocalArgs

    def run(self, args: Any, ctx: ExecContext) -> Outcome:
        assert isinstance(args, LocalArgs)
        done = run_logged(args.command, ctx, cwd=ctx.settings.root, env=args.env)
        if done.returncode == args.expect_exit:
            return Outcome(True, data={"log": str(done.log)})
        return Outcome(
            False,
            f"{args.command[0]} exited {done.returncode}, expected {args.expect_exit}: "
            f"{tail(done.output, 3, 300)}",
            {"log": str(done.log)},
        )

    def describe(self, args: Any) -> str:
        assert isinstance(args, LocalArgs)
        return "local: " + " ".join(args.command)
