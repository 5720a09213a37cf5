"""`manual`: a person decides. The step waits until someone runs
`govops cutover approve RUN STEP --as NAME [--province P]` (recorded in the audit log).

With `--no-wait` the run does not block: the province is left waiting and the command exits 3;
`govops cutover resume RUN` picks it up after the approval. As a verification, `manual` checks
that the approval exists.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from govops.runbook.executors.base import (
    Approval,
    Args,
    ExecContext,
    Executor,
    Outcome,
    WaitingForApproval,
)
from govops.runbook.timeutil import format_duration, shown_epoch


class ManualArgs(Args):
    instructions: str = Field(min_length=1)
    # Who may approve (user names as given to --as); empty: anyone, and the name is recorded.
    approvers: list[str] = Field(default_factory=list)


def valid_approval(args: ManualArgs, approvals: list[Approval]) -> Approval | None:
    for approval in approvals:
        if not args.approvers or approval.approver in args.approvers:
            return approval
    return None


class ManualExecutor(Executor):
    name = "manual"
    Args = ManualArgs
    mutates = False

    def run(self, args: Any, ctx: ExecContext) -> Outcome:
        assert isinstance(args, ManualArgs)
        found = valid_approval(args, ctx.approvals())
        if found is None and ctx.role == "verify":
            return Outcome(False, "not approved")
        if found is None:
            if ctx.no_wait:
                raise WaitingForApproval(args.instructions)
            scope = f" --province {ctx.province}"
            ctx.notify(
                f"{ctx.province} {ctx.step_id}: waiting for approval — {args.instructions} — "
                f"govops cutover approve {ctx.run_id} {ctx.step_id} --as NAME [{scope.strip()}]"
            )
            while found is None and ctx.remaining() > 0:
                ctx.wait(ctx.settings.poll_interval)
                found = valid_approval(args, ctx.approvals())
        if found is None:
            return Outcome(False, f"no approval within {format_duration(ctx.timeout)}")
        return Outcome(
            True,
            f"approved by {found.approver} at {shown_epoch(found.at)}"
            + (f": {found.note}" if found.note else ""),
            {"approver": found.approver},
        )

    def describe(self, args: Any) -> str:
        assert isinstance(args, ManualArgs)
        who = f" (approvers: {', '.join(args.approvers)})" if args.approvers else ""
        return f"manual approval: {args.instructions}{who}"
