"""`govops cutover approve|decide|abort`: what operators say to a run (each audited)."""

from __future__ import annotations

import click

from govops.clikit import handle_errors, out
from govops.runbook import runs
from govops.runbook.cli_options import as_option, state_option
from govops.runbook.engine import actor_name
from govops.runbook.state import open_store


@click.command("approve")
@click.argument("run_id", metavar="RUN")
@click.argument("step_id", metavar="STEP")
@click.option("--as", "actor", metavar="NAME", required=True, help="Who approves (recorded).")
@click.option(
    "--province",
    metavar="P",
    default=None,
    help="Approve for one province only (default: every province of the run).",
)
@click.option("--note", default="", help="Why, for the audit log.")
@state_option
@handle_errors
def approve_cmd(
    run_id: str, step_id: str, actor: str, province: str | None, note: str, state: str | None
) -> None:
    """Approve a manual step (a go/no-go gate); the waiting engine sees it within seconds."""
    with open_store(state) as store:
        approval = runs.approve(store, run_id, step_id, actor, province=province, note=note)
    scope = approval.province or "every province"
    out.print(f"approved {step_id} of {run_id} for {scope} as {actor}", highlight=False)


@click.command("decide")
@click.argument("run_id", metavar="RUN")
@click.argument("step_id", metavar="STEP")
@click.argument("decision", metavar="done|retry|skip")
@click.option("--province", metavar="P", required=True, help="The province the step is in.")
@click.option(
    "--commune",
    metavar="CODE",
    default=None,
    help="For a foreach step: one commune (default: every uncertain commune of the step).",
)
@click.option("--as", "actor", metavar="NAME", required=True, help="Who decides (recorded).")
@click.option("--note", default="", help="Why, for the audit log.")
@state_option
@handle_errors
def decide_cmd(
    run_id: str,
    step_id: str,
    decision: str,
    province: str,
    commune: str | None,
    actor: str,
    note: str,
    state: str | None,
) -> None:
    """Decide a step left uncertain (its action's outcome unknown after a crash, nothing to
    verify it): done (it took effect), retry (run it again) or skip (go on without it).
    Audited; `govops cutover resume RUN` applies it."""
    with open_store(state) as store:
        items = runs.decide(store, run_id, step_id, province, decision, actor, note, commune)
    what = f"{len(items)} communes of " if any(items) else ""
    out.print(f"decided {decision} for {what}{step_id} in {province} as {actor}", highlight=False)


@click.command("abort")
@click.argument("run_id", metavar="RUN")
@state_option
@as_option
@handle_errors
def abort_cmd(run_id: str, state: str | None, actor: str | None) -> None:
    """Stop RUN: no new step starts, steps in flight finish. Nothing is rolled back by an
    abort (run runbooks/rollback.yml for that). Exit 1 if the run already ended."""
    with open_store(state) as store:
        message = runs.abort(store, run_id, actor_name(actor))
    out.print(message, highlight=False)
