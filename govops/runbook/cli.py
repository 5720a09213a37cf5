"""`govops cutover …`: run the cutover runbooks province by province, in waves.

Thin: parse, call runs/engine/report, present. Errors are one line naming file, line and key.
"""

from __future__ import annotations

import json
import signal
import sys
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from govops.clikit import check_env, err, handle_errors, out, write_output
from govops.errors import GovopsError, InputError
from govops.lab.cli import print_table
from govops.paths import cache_dir, repo_root
from govops.redact import redact, redact_text
from govops.runbook import runs
from govops.runbook.cli_hints import hints, state_arg, status_store, summary
from govops.runbook.cli_operators import abort_cmd, approve_cmd, decide_cmd
from govops.runbook.cli_options import as_option, state_option
from govops.runbook.context import check_vars
from govops.runbook.engine import actor_name
from govops.runbook.executors.promql import authorization, prometheus_authorization
from govops.runbook.state import Store, open_store
from govops.runbook.timeutil import from_epoch, iso, parse_time, shown_epoch

EXIT_CODES = """\b
Exit codes:
  0  run completed: every province done
  1  run finished with failed or rolled-back provinces, halted (error threshold), aborted,
     or an operational failure
  2  bad input: runbook lint errors, unknown province, unknown run or step
  3  waiting for an approval (--no-wait) or for a decision on an uncertain step: approve
     or decide, then `govops cutover resume RUN`
  4  another engine holds the run (resume), or an active run already holds some of the
     provinces (run: choose others with --provinces), or this engine lost its lease
  130 interrupted (Ctrl-C or SIGTERM): running actions got a grace period
     (GOVOPS_INTERRUPT_GRACE, 30 s); `govops cutover resume RUN` goes on
"""


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise InputError("(command line)", option, "NAME=VALUE", got=value)
        result[name.strip()] = text
    return result


def _t0(value: str | None) -> datetime | None:
    if value is None:
        return None
    if value == "now":
        return datetime.now().astimezone()
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InputError("(command line)", "--t0", str(exc), got=value) from None


@click.group("cutover", context_settings={"help_option_names": ["-h", "--help"]})
def cutover_group() -> None:
    """The cutover: runbooks (runbooks/*.yml) run province by province, in waves.

    Durable (resume after a crash), gated on Prometheus and on approvals, audited, with the
    national readiness report. See docs/runbooks.md.
    """


@cutover_group.command("lint")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Warnings (e.g. a playbook not written yet) fail too.")
@handle_errors
def lint_cmd(files: tuple[Path, ...], strict: bool) -> None:
    """Check runbooks: schema, the six clears, ids, executors, references, deadlines.

    Exit codes: 0 clean, 2 errors (each as FILE:LINE: key: expected …).
    """
    from govops.runbook.loader import lint

    root = _root_or_none()
    failed = False
    for path in files:
        result = lint(path, root)
        for e in result.errors:
            err.print(f"[red]{_shown(e)}[/]", highlight=False, soft_wrap=True)
        for w in result.warnings:
            err.print(f"[yellow]warning:[/] {_shown(w)}", highlight=False, soft_wrap=True)
        if result.errors or (strict and result.warnings):
            failed = True
        elif result.runbook is not None:
            steps = len(result.runbook.step_ids)
            out.print(
                f"[green]ok[/] {_shown(path)}: {len(result.runbook.phases)} phases, {steps} steps"
                + (f", {len(result.warnings)} warnings" if result.warnings else ""),
                highlight=False,
            )
    if failed:
        sys.exit(2)


def _shown(value: object) -> str:
    """Text from outside (a message, a path) as Rich prints it: no secret, no markup."""
    return escape(redact_text(str(value)))


def _root_or_none() -> Path | None:
    try:
        return repo_root()
    except GovopsError:
        return None


@cutover_group.command("run", epilog=EXIT_CODES)
@click.argument("runbook", type=click.Path(path_type=Path))
@click.option(
    "--env",
    "env",
    default="lab",
    show_default=True,
    metavar="ENV",
    callback=check_env,
    help="Environment: inventories/ENV/estate.yml says which provinces exist.",
)
@click.option(
    "--provinces",
    "provinces",
    metavar="P,Q,…",
    default=None,
    help="Provinces (codenames); default: the lab's default provinces or all.",
)
@click.option(
    "--inventories",
    "inventories",
    metavar="DIR",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where ENV/estate.yml and its rendered inventory are (default: the checkout's "
    "inventories/); recorded in the run, so resume uses the same.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan with the six clears; run nothing.")
@click.option(
    "--check",
    "check",
    is_flag=True,
    help="With --dry-run: run each Ansible step in check mode (--check --diff).",
)
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: the plan as JSON.")
@click.option(
    "--t0",
    "t0",
    metavar="ISO|now",
    default=None,
    help="The run's T0 for relative deadlines (default: the runbook's t0, else now).",
)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override one of the runbook's vars.",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a setting (prometheus_url, ca_bundle, resolve, …).",
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="Do not block on approvals: leave those provinces waiting and exit 3.",
)
@click.option(
    "--approve-as",
    "approve_as",
    metavar="NAME",
    default=None,
    help="Approve every manual step of the runbook for every province up front, as NAME "
    "(recorded in the audit log): an unattended run, e.g. the lab rehearsal.",
)
@state_option
@as_option
@handle_errors
def run_cmd(
    runbook: Path,
    env: str,
    provinces: str | None,
    inventories: Path | None,
    dry_run: bool,
    check: bool,
    as_json: bool,
    t0: str | None,
    variables: tuple[str, ...],
    settings: tuple[str, ...],
    no_wait: bool,
    approve_as: str | None,
    state: str | None,
    actor: str | None,
) -> None:
    """Run RUNBOOK: phase by phase, a pilot wave then batches, each province's steps in order;
    a failed province rolls back while the others go on."""
    from govops.runbook.context import load_environment, resolve_settings
    from govops.runbook.loader import load_runbook

    root = repo_root()
    loaded = load_runbook(runbook, root)
    for warning in loaded.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if inventories is not None:
        inventories = inventories.resolve()
    environment = load_environment(env, root, inventories)
    wanted = [p.strip() for p in provinces.split(",") if p.strip()] if provinces else None
    selected = environment.select(wanted)
    var_map, set_map = _pairs(variables, "--var"), _pairs(settings, "--set")
    runs.check_overrides(loaded.runbook, str(runbook), var_map, "--var")
    runs.check_overrides(loaded.runbook, str(runbook), set_map, "--set")
    if inventories is not None:
        set_map.setdefault("inventory", str(inventories / env))
    if approve_as is not None:
        runs.check_approver(loaded.runbook, str(runbook), approve_as)
    start = _t0(t0) or loaded.runbook.t0 or datetime.now().astimezone()
    check_vars(
        runbook, environment, selected, iso(start), {**loaded.runbook.vars, **var_map}, var_map
    )
    if dry_run:
        from govops.runbook.plan import build_plan, check_ansible, plan_text

        plan = build_plan(
            loaded.runbook, environment, selected, start, {**loaded.runbook.vars, **var_map}
        )
        if as_json:
            click.echo(json.dumps(plan.as_dict(), ensure_ascii=False, indent=2))
        else:
            click.echo(plan_text(plan), nl=False)
        if check:
            run_settings = resolve_settings(
                loaded.runbook, env, root, cache_dir() / "runbook" / "logs" / "dry-run", set_map
            )

            def show(province: str, step: Any, outcome: Any) -> None:
                mark = "[green]ok[/]" if outcome.ok else "[red]failed[/]"
                err.print(
                    f"check {province} {step.id}: {mark} {outcome.message}",
                    highlight=False,
                    soft_wrap=True,
                )

            ok = check_ansible(
                loaded.runbook,
                environment,
                selected,
                run_settings,
                start,
                {**loaded.runbook.vars, **var_map},
                show,
            )
            sys.exit(0 if ok else 1)
        return
    run_settings = resolve_settings(
        loaded.runbook, env, root, cache_dir() / "runbook" / "logs", set_map
    )
    runs.preflight(loaded.runbook, run_settings, str(runbook))
    prometheus_authorization()  # credentials given wrongly: exit 2 now, not at the first gate
    authorization("GOVOPS_ALERTMANAGER_")  # likewise, not at the first silence
    who = actor_name(actor)
    with open_store(state) as store:
        run = runs.create_run(
            store,
            loaded,
            environment,
            actor=who,
            provinces=selected,
            t0=start,
            variables=var_map,
            settings=set_map,
            options={
                "no_wait": no_wait,
                **({"inventories": str(inventories)} if inventories is not None else {}),
            },
        )
        if approve_as is not None:
            steps = runs.approve_all(store, run.id, approve_as)
            err.print(
                f"approved up front as {approve_as}: {', '.join(steps) or 'no manual step'}",
                highlight=False,
            )
        err.print(
            f"run [bold]{run.id}[/] ({len(run.provinces)} provinces, {len(run.waves)} "
            f"waves) — state {store.url}",
            highlight=False,
        )
        _drive(store, run, environment, who, no_wait, resumed=False)


@cutover_group.command("resume", epilog=EXIT_CODES)
@click.argument("run_id", metavar="RUN")
@click.option("--no-wait", is_flag=True, help="Do not block on approvals (exit 3 if waiting).")
@state_option
@as_option
@handle_errors
def resume_cmd(run_id: str, no_wait: bool, state: str | None, actor: str | None) -> None:
    """Resume RUN after a crash, an interrupt or an approval. Steps left running are verified
    first: an action whose verification shows it done is not run again."""
    from govops.runbook.context import load_environment

    who = actor_name(actor)
    prometheus_authorization()  # credentials given wrongly: exit 2 now, not at the first gate
    authorization("GOVOPS_ALERTMANAGER_")  # likewise, not at the first silence
    with open_store(state) as store:
        run = store.run(run_id)
        runs.resumable(run)
        environment = load_environment(run.env, repo_root(), runs.inventories_of(run))
        _drive(store, run, environment, who, no_wait, resumed=True)


def _drive(
    store: Store, run: Any, environment: Any, who: str, no_wait: bool, resumed: bool
) -> None:
    from govops.runbook.display import Display

    engine = runs.engine_for(store, run, environment, actor=who, no_wait=no_wait)
    runs.preflight(engine.runbook, engine.settings, run.runbook_path)
    display = Display(err, list(run.provinces), len(engine.runbook.step_ids))
    engine.observe = display

    def interrupt(signum: int, frame: FrameType | None) -> None:
        again = engine.interrupted
        err.print(
            ("interrupted again: running actions are ended now; " if again else
             "interrupted: nothing new starts, running actions get a grace period; ")
            + f"resume with `govops cutover resume {run.id}{state_arg(store)}`",
            highlight=False,
        )  # fmt: skip
        engine.interrupt()

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with display:
            status = engine.execute(resumed=resumed)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if status == "lost":
        err.print(
            f"lease lost: another engine took run {run.id} over; this one stopped without "
            "writing further",
            highlight=False,
        )
        sys.exit(runs.EXIT["lost"])
    summary(store, run.id)
    if engine.interrupted:
        sys.exit(130)
    code = runs.EXIT.get(status, 1)
    if status == "waiting":
        err.print(
            f"waiting for approvals or decisions: `govops cutover approve {run.id} STEP --as "
            f"NAME` / `govops cutover decide {run.id} STEP --province P --as NAME "
            f"done|retry|skip`, then `govops cutover resume {run.id}{state_arg(store)}`",
            highlight=False,
        )
    sys.exit(code)


@cutover_group.command("status")
@click.argument("run_id", metavar="[RUN]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@state_option
@handle_errors
def status_cmd(run_id: str | None, as_json: bool, state: str | None) -> None:
    """Recent runs, or one run's provinces (status, steps done, failed step).

    Reads the store read-only: a missing store is an error naming it (exit 2), never created.
    Without --state (nor GOVOPS_RUNBOOK_STATE) and no store at the default place, the lab's
    rehearsal store is read if there is exactly one."""
    state, labs = status_store(state)
    with open_store(state, read_only=True) as store:
        if run_id is None:
            recent = store.runs(20)
            if not recent and labs and not as_json:
                err.print(
                    f"no runs in {_shown(store.url)}; the lab's rehearsals: {hints(labs)}",
                    soft_wrap=True,
                )
            if as_json:
                rows = [
                    {
                        "id": r.id,
                        "runbook": r.runbook,
                        "env": r.env,
                        "status": r.status,
                        "provinces": len(r.provinces),
                        "created_at": iso(from_epoch(r.created_at)),
                        "created_by": r.created_by,
                    }
                    for r in recent
                ]
                click.echo(json.dumps(redact(rows), ensure_ascii=False, indent=2))
                return
            table = Table(title=f"runs in {_shown(store.url)}")
            for col in ("run", "env", "status", "provinces", "started", "by"):
                table.add_column(col)
            for r in recent:
                table.add_row(
                    r.id,
                    r.env,
                    r.status,
                    str(len(r.provinces)),
                    shown_epoch(r.created_at),
                    _shown(r.created_by),
                )
            print_table(out, table)
            return
        progress = store.progress(run_id)
        if as_json:
            click.echo(json.dumps(redact(progress.as_dict()), ensure_ascii=False, indent=2))
            return
        table = Table(title=f"{run_id}: {progress.run.status}")
        for col in ("province", "wave", "status", "steps", "checks", "note"):
            table.add_column(col)
        for p in progress.provinces:
            note = f"{p.failed_step}: {p.message}" if p.failed_step else p.message
            table.add_row(
                p.province,
                str(p.wave),
                p.status,
                f"{p.steps_done}/{p.steps_total}",
                str(len(p.readiness_done)),
                _shown(note[:70]),
            )
        print_table(out, table)
        out.print(f"{len(progress.late)} steps late, {len(progress.at_risk)} at risk")


@cutover_group.command("report")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "html"]),
    default="text",
    show_default=True,
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Write to a file instead of standard output (its folders are made if missing).",
)
@click.option("--prometheus", default=None, help="Prometheus to ask for the evidence.")
@click.option("--strict", is_flag=True, help="Exit 1 on a disagreement, 3 without evidence.")
@state_option
@handle_errors
def report_cmd(
    run_id: str,
    fmt: str,
    output: Path | None,
    prometheus: str | None,
    strict: bool,
    state: str | None,
) -> None:
    """The national readiness report: each check N/34 as the steps reported and as Prometheus
    observed, disagreements, provinces, communes, late steps. Exit 0 (also with evidence
    unavailable); --strict: 1 on a disagreement, 3 without evidence; 2 bad input."""
    from govops.runbook.report import observe, render_report, strict_exit

    with open_store(state, read_only=True) as store:
        progress = store.progress(run_id)
    evidence = observe(progress, prometheus)
    text = render_report(progress, fmt, evidence)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_output(output, text, "--output")
        err.print(f"wrote {_shown(output)}", highlight=False)
    if strict:
        sys.exit(strict_exit(progress, evidence))


for _command in (approve_cmd, decide_cmd, abort_cmd):
    cutover_group.add_command(_command)
