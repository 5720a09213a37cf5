"""`govops db status|restore|drill`: backups, point-in-time recovery and the restore drill of
one province's database (docs/backups.md).

Exit codes: 0 done (dry run printed, drill passed); 1 a host or command failed, or the drill
found a difference; 2 bad input (unknown province, a target the repository cannot reach, an
in-place restore not confirmed).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from govops.clikit import env_option, err, handle_errors, open_estate, out
from govops.db import plan as pl
from govops.db.remote import Runner, SshRunner, find_primary, q
from govops.db.target import before_run, choose_backup, parse_target, shown
from govops.errors import InputError
from govops.redact import redact
from govops.registry import catalog
from govops.registry.estate import Estate, dns_label
from govops.runbook.cli_options import state_option
from govops.runbook.timeutil import clock, parse_duration

PROVINCE = click.option(
    "--province", "province", required=True, metavar="P", help="Province codename (e.g. hue)."
)
JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group("db")
def db_group() -> None:
    """Province databases: backups (pgBackRest), point-in-time recovery, the restore drill."""


def _hosts(estate: Estate, province: str) -> pl.Hosts:
    if province not in estate.provinces:
        raise InputError(
            estate.path, "--province", f"a province of the estate ({', '.join(estate.provinces)})",
            got=province,
        )  # fmt: skip
    label = dns_label(province)
    return pl.Hosts(
        province=province,
        stanza=province,  # the stanza is the province's codename (roles/pgbackrest)
        primary=f"{label}-db",  # the declared one until find_primary() reads the db-role
        standby=f"{label}-db-standby",
        backup=estate.backup_host(province),
    )


def _databases() -> list[str]:
    return [sid for sid, s in catalog().systems.items() if s.database]


def _progress(as_json: bool) -> Callable[[str], None]:
    """Progress lines on stderr (a `--json` answer on stdout stays clean)."""

    def say(message: str) -> None:
        err.print(f"{clock()} {escape(message)}", highlight=False, soft_wrap=True)

    return say


def _primary(runner: Runner, hosts: pl.Hosts, say: Callable[[str], None]) -> pl.Hosts:
    from dataclasses import replace

    return replace(hosts, primary=find_primary(runner, hosts.primary, hosts.standby, say))


# --- status --------------------------------------------------------------------------------


@db_group.command("status")
@PROVINCE
@env_option()
@click.option(
    "--drill-within",
    "drill_within",
    metavar="DURATION",
    default=None,
    help="Exit 1 unless the last restore drill passed within DURATION (e.g. 1h, 24h).",
)
@JSON
@handle_errors
def status_cmd(province: str, env: str, drill_within: str | None, as_json: bool) -> None:
    """The province's backups (pgBackRest info), its primary, and its last restore drill."""
    from govops.db.drill import TEXTFILE_DIR, info

    try:
        within = parse_duration(drill_within) if drill_within is not None else None
    except ValueError as exc:
        raise InputError("(command line)", "--drill-within", str(exc), got=drill_within) from None
    _, estate = open_estate(env)
    hosts = _hosts(estate, province)
    runner = SshRunner(env)
    say = _progress(as_json)
    try:
        hosts = _primary(runner, hosts, say)
        stanza = info(runner, hosts)
        prom = runner.run(
            hosts.backup, f"cat {q(f'{TEXTFILE_DIR}/govops_drill_{province}.prom')} 2>/dev/null"
        ).stdout
    finally:
        runner.close()
    drill = _read_drill(prom)
    age = time.time() - drill["last_run"] if drill.get("last_run") else None
    fresh = drill.get("success") == 1 and (within is None or (age is not None and age <= within))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "province": province,
                    "primary": hosts.primary,
                    "stanza": {"status": stanza.status_code, "message": stanza.status_message},
                    "backups": [b.as_dict() for b in stanza.backups],
                    "wal": {"min": stanza.wal_min, "max": stanza.wal_max},
                    "drill": drill,
                    "drill_ok": fresh,
                },
                indent=2,
            )
        )
    else:
        out.print(
            f"{province}: primary {hosts.primary}; repository {hosts.backup} stanza "
            f"{stanza.name}: {stanza.status_message or stanza.status_code}; WAL archived "
            f"{stanza.wal_min or '-'} → {stanza.wal_max or '-'}"
        )
        table = Table(title=f"backups of {province}")
        for col in ("label", "type", "started", "stopped", "database", "repository"):
            table.add_column(col)
        for b in stanza.backups:
            table.add_row(
                b.label, b.type, shown(b.start), shown(b.stop), pl._size(b.size),
                pl._size(b.repo_size),
            )  # fmt: skip
        out.print(table)
        if drill.get("last_run"):
            stamp = shown(datetime.fromtimestamp(drill["last_run"], UTC))
            verdict = "passed" if drill.get("success") == 1 else "FAILED"
            out.print(f"restore drill: {verdict} at {stamp} ({drill.get('duration', 0):.0f} s)")
        else:
            out.print("restore drill: never run (govops db drill)")
    if within is not None and not fresh:
        sys.exit(1)


def _read_drill(text: str) -> dict[str, Any]:
    names = {
        "govops_restore_drill_last_run_timestamp_seconds": "last_run",
        "govops_restore_drill_success": "success",
        "govops_restore_drill_duration_seconds": "duration",
    }
    found: dict[str, Any] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        key = names.get(name.split("{", 1)[0])
        if key:
            try:
                found[key] = float(value) if key != "success" else int(float(value))
            except ValueError:
                continue
    return found


# --- restore -------------------------------------------------------------------------------


@db_group.command("restore")
@PROVINCE
@click.option("--to", "to", metavar="TIMESTAMP", help="ISO-8601 (no offset: Vietnam's time).")
@click.option(
    "--before-run",
    "run_id",
    metavar="RUN",
    help="One second before the runbook run RUN started (from the state store, see --state).",
)
@click.option(
    "--latest",
    is_flag=True,
    help="To the end of the archived WAL (after a lost primary: everything the repository has).",
)
@click.option(
    "--into",
    type=click.Choice(pl.INTO),
    default="scratch",
    show_default=True,
    help="scratch: a new cluster on the backup host; in-place: the province's primary.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be restored, from which backup.")
@click.option("--yes", is_flag=True, help="In-place without the interactive confirmation.")
@click.option("--replace", is_flag=True, help="Scratch: replace a scratch cluster left there.")
@click.option(
    "--if-requested",
    is_flag=True,
    help="An empty --to/--before-run means no restore was asked for: say so, exit 0 "
    "(for a runbook var left empty).",
)
@env_option()
@state_option
@JSON
@handle_errors
def restore_cmd(
    province: str,
    to: str | None,
    run_id: str | None,
    latest: bool,
    into: str,
    dry_run: bool,
    yes: bool,
    replace: bool,
    if_requested: bool,
    env: str,
    state: str | None,
    as_json: bool,
) -> None:
    """Point-in-time recovery of PROVINCE's database from its zone's pgBackRest repository.

    \b
    govops db restore --province hue --to 2025-06-28T09:30:00+07:00 --dry-run
    govops db restore --province hue --before-run cutover-20250625-080000-ab12 --into in-place
    govops db restore --province hue --latest --into in-place    # after a lost primary
    """
    from govops.db.drill import info
    from govops.db.restore import restore_in_place, restore_scratch

    if if_requested and not (to or run_id):
        out.print(f"{province}: no point-in-time recovery requested; nothing restored")
        return
    if [bool(to), bool(run_id), latest].count(True) != 1:
        raise InputError(
            "(command line)", "--to/--before-run/--latest", "exactly one of them", got=None
        )
    _, estate = open_estate(env)
    hosts = _hosts(estate, province)
    reasons: tuple[str, ...] = ()
    target = None
    if to:
        target = parse_target(to)
    elif run_id:
        target, reasons = _run_start(run_id, state, env, province)
    say = _progress(as_json)
    runner = SshRunner(env)
    try:
        if into == "in-place":
            hosts = _primary(runner, hosts, say)
        stanza = info(runner, hosts)
        now = datetime.now(UTC)
        if target is None:
            plan = pl.latest_plan(hosts, choose_backup(stanza, now, now), into, stanza.wal_max)
        else:
            backup = choose_backup(stanza, target, now, "--before-run" if run_id else "--to")
            plan = pl.time_plan(hosts, backup, target, into, stanza.wal_max, reasons)
        if dry_run:
            _show(plan.as_dict() if as_json else plan.lines(), as_json)
            return
        if into == "in-place" and not yes:
            _confirm(province, plan)
        lines = (
            restore_scratch(runner, plan, say, replace=replace)
            if into == "scratch"
            else restore_in_place(runner, plan, say)
        )
        _show({**plan.as_dict(), "done": lines} if as_json else lines, as_json)
    finally:
        runner.close()


def _run_start(
    run_id: str, state: str | None, env: str, province: str
) -> tuple[datetime, tuple[str, ...]]:
    """`--before-run`: the run's start (created_at) in the store `cutover status` reads."""
    from govops.runbook.cli_hints import status_store
    from govops.runbook.state import open_store

    state, _ = status_store(state)
    with open_store(state, read_only=True) as store:
        run = store.run(run_id)
        store_url = store.url
    target = before_run(run.created_at)
    started = shown(datetime.fromtimestamp(run.created_at, UTC))
    reasons = [f"run {run.id} ({run.runbook}, {run.env}) started {started}"]
    # A run of another environment, or one that never touched the province, is a mistaken id.
    if run.env != env:
        raise InputError(store_url, "--before-run", f"a run of environment {env}", got=run.env)
    if province not in run.provinces:
        raise InputError(
            store_url, "--before-run", f"a run that included {province}", got=run.provinces
        )
    return target, tuple(reasons)


def _confirm(province: str, plan: pl.RestorePlan) -> None:
    for line in plan.lines():
        err.print(escape(line), highlight=False, soft_wrap=True)
    if not sys.stdin.isatty():
        raise InputError(
            "(command line)", "--yes", "--yes or an interactive confirmation for in-place", None
        )
    answer = click.prompt(f"type the province ({province}) to restore it in place", default="")
    if answer.strip() != province:
        raise InputError("(confirmation)", "province", province, got=answer)


def _show(payload: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(redact(payload), ensure_ascii=False, indent=2))
        return
    for line in payload:
        out.print(escape(line), highlight=False, soft_wrap=True)


# --- drill ---------------------------------------------------------------------------------


@db_group.command("drill")
@PROVINCE
@env_option()
@JSON
@handle_errors
def drill_cmd(province: str, env: str, as_json: bool) -> None:
    """Restore the newest backup to a fresh restore point in a scratch cluster and compare every
    table of the systems' databases (rows and checksum) with the primary at that point.

    Writes govops_restore_drill_* metrics on the backup host. Exit 0 all tables match, 1 a
    difference or a failure (each named)."""
    from govops.db.drill import run_drill

    _, estate = open_estate(env)
    hosts = _hosts(estate, province)
    say = _progress(as_json)
    runner = SshRunner(env)
    try:
        hosts = _primary(runner, hosts, say)
        result = run_drill(runner, hosts, _databases(), say)
    finally:
        runner.close()
    if as_json:
        click.echo(json.dumps(redact(result.as_dict()), ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"restore drill of {province}: {result.restore_point}")
        for col in ("database", "table", "primary rows", "restored rows", "checksum", "ok"):
            table.add_column(col)
        for v in result.verdicts:
            table.add_row(
                v.database, v.table, str(v.primary_rows), str(v.restored_rows),
                "same" if v.checksum_ok else "DIFFERS", "ok" if v.ok else "[red]NO[/]",
            )  # fmt: skip
        out.print(table)
        for problem in result.problems:
            err.print(f"[red]difference[/]: {escape(problem)}", soft_wrap=True)
        if result.error:
            err.print(f"[bold red]error:[/] {escape(result.error)}", soft_wrap=True)
        if result.metrics_error:
            err.print(f"[yellow]metrics not written[/]: {escape(result.metrics_error)}")
        backup = result.backup.label if result.backup else "-"
        verdict = "[green]passed[/]" if result.ok else "[bold red]FAILED[/]"
        out.print(
            f"drill {verdict}: backup {backup}, {len(result.verdicts)} tables, "
            f"{result.duration:.0f} s"
        )
    if not result.ok:
        sys.exit(1)
