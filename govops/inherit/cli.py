"""`govops inherit …`: legacy records of the old provinces into the merged province's systems."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from govops.clikit import env_option, err, handle_errors, open_estate, out
from govops.errors import InputError
from govops.paths import inventory_dir

F = TypeVar("F", bound=Callable[..., Any])


def _selection(fn: F) -> F:
    options = [
        env_option(),
        click.option(
            "--province",
            metavar="P",
            help="A merged province (codename); default: each with old ones merged in.",
        ),
        click.option(
            "--old-province",
            metavar="OLD",
            help="Only this old province (codename like ha_giang, or code 02).",
        ),
        click.option(
            "--system",
            "systems",
            multiple=True,
            metavar="S",
            help="Only this system: procedures (dossiers), documents, reporting (repeatable).",
        ),
        click.option(
            "--source",
            "source_opts",
            multiple=True,
            metavar="OLD=DSN",
            help="A source's DSN (else GOVOPS_INHERIT_SOURCE_<OLD> or the config file).",
        ),
        click.option(
            "--target",
            metavar="DSN",
            help="The target DSN (else GOVOPS_INHERIT_TARGET_<PROVINCE> or the config file).",
        ),
        click.option(
            "--config",
            "config_path",
            type=click.Path(path_type=Path),
            help="DSN file (default inventories/ENV/inherit.yml).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _jobs(
    env: str,
    province: str | None,
    old_province: str | None,
    source_opts: tuple[str, ...],
    target: str | None,
    config_path: Path | None,
) -> list[tuple[str, str, list[Any]]]:
    from govops.inherit.config import absorbed, lab_passfile, resolve

    _, estate = open_estate(env)
    inventory = inventory_dir(env)
    config = config_path or inventory / "inherit.yml"
    if passfile := lab_passfile(env, inventory, os.environ):
        os.environ["PGPASSFILE"] = passfile  # libpq reads it, here and in every connection
    sources: dict[str, str] = {}
    for item in source_opts:
        name, sep, dsn = item.partition("=")
        if not sep or not name or not dsn:
            raise InputError(
                "--source", "source", "OLD=DSN (e.g. ha_giang=postgresql://host/db)", item
            )
        sources[name] = dsn
    if province is not None:
        if province not in estate.provinces:
            raise InputError(estate.path, "provinces", f"a province of the {env} estate", province)
        names = [province]
    else:
        names = [p for p in estate.provinces if absorbed(p)]
    if target and len(names) > 1:
        raise InputError(
            "--target", "target", "--province with --target (one target per province)", target
        )
    result = []
    for name in names:
        target_dsn, srcs = resolve(config, name, old_province, sources, target)
        if not srcs:
            err.print(f"{name}: no old province merged in: nothing to inherit")
            continue
        result.append((name, target_dsn, srcs))
    return result


@contextmanager
def _progress(
    verb: str,
) -> Iterator[tuple[Callable[[str, str, int], None], Callable[[str, str, int], None]]]:
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
    tasks: dict[tuple[str, str], Any] = {}

    def start(source: str, kind: str, total: int) -> None:
        tasks[(source, kind)] = bars.add_task(f"{verb} {source} {kind}", total=total)

    def advance(source: str, kind: str, n: int) -> None:
        bars.advance(tasks[(source, kind)], n)

    with bars:
        yield start, advance


@click.group("inherit")
def inherit_group() -> None:
    """Legacy data: every dossier, document and report of the old provinces, moved into the
    merged province's systems, remapped to the new communes and verified.

    DSNs: --source/--target, GOVOPS_INHERIT_SOURCE_<OLD> / GOVOPS_INHERIT_TARGET_<PROVINCE>,
    or inventories/ENV/inherit.yml (no passwords there: PGPASSFILE or ~/.pgpass; a lab's are
    in its cache). See docs/inherit.md.
    """


@inherit_group.command("plan")
@_selection
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def plan_cmd(
    env: str,
    province: str | None,
    old_province: str | None,
    systems: tuple[str, ...],
    source_opts: tuple[str, ...],
    target: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """What a run would move: per old province and system, records in the source, already
    moved, left to move, and how its old wards map. Exit codes: 0, 2 bad input or unreachable."""
    from govops.inherit import job

    kinds = job.kinds_for(systems)
    rows = []
    for name, target_dsn, srcs in _jobs(
        env, province, old_province, source_opts, target, config_path
    ):
        rows += [{"province": name, **vars(r)} for r in job.plan(target_dsn, srcs, kinds)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"inherit plan ({env})")
    for col in (
        "province",
        "old province",
        "vendor",
        "system",
        "records",
        "moved",
        "to move",
        "wards mapped/ambiguous/unjoined",
    ):
        table.add_column(col)
    for r in rows:
        w = r["wards"]
        table.add_row(
            r["province"],
            f"{r['source']} ({r['old_code']})",
            r["vendor"],
            f"{r['system']} ({r['kind']})",
            str(r["total"]),
            str(r["done"]),
            str(r["to_move"]),
            f"{w['mapped']}/{w['ambiguous']}/{w['unjoined']}",
        )
    out.print(table)


@inherit_group.command("run")
@_selection
@click.option(
    "--batch",
    type=click.IntRange(1, 10_000_000),
    default=50_000,
    show_default=True,
    help="Records per durable batch.",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Sources and systems moved at once (each its own COPY stream).",
)
@handle_errors
def run_cmd(
    env: str,
    province: str | None,
    old_province: str | None,
    systems: tuple[str, ...],
    source_opts: tuple[str, ...],
    target: str | None,
    config_path: Path | None,
    batch: int,
    jobs: int,
) -> None:
    """Move what is left: COPY streams, one transaction per batch with its checkpoint, so a run
    killed at any moment resumes without duplicates or gaps. Exit codes: 0, 2 bad input,
    unreachable source, unknown schema or foreign rows in the target."""
    from govops.inherit import job

    kinds = job.kinds_for(systems)
    started = time.perf_counter()
    moved = quarantined = 0
    for name, target_dsn, srcs in _jobs(
        env, province, old_province, source_opts, target, config_path
    ):
        with _progress("moving") as (start, advance):
            result = job.run(
                target_dsn, srcs, kinds, batch=batch, jobs=jobs, start=start, advance=advance
            )
        for (source, kind), m in result.items():
            moved += m.moved
            quarantined += m.quarantined
            out.print(f"{name} ← {source} {kind}: {m.moved} moved, {m.quarantined} quarantined")
    out.print(
        f"[green]done[/]: {moved} moved, {quarantined} quarantined this run "
        f"({time.perf_counter() - started:.1f} s)"
    )


@inherit_group.command("verify")
@_selection
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def verify_cmd(
    env: str,
    province: str | None,
    old_province: str | None,
    systems: tuple[str, ...],
    source_opts: tuple[str, ...],
    target: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Source against target per old province and system: counts, an order-independent
    checksum of the business fields, a deep sample; a mismatch names the records.
    Exit codes: 0 verified, 1 a mismatch, 2 bad input or unreachable."""
    from govops.inherit import job

    kinds = job.kinds_for(systems)
    verdicts = []
    for _name, target_dsn, srcs in _jobs(
        env, province, old_province, source_opts, target, config_path
    ):
        with _progress("verifying") as (start, advance):
            verdicts += job.verify(target_dsn, srcs, kinds, start=start, advance=advance)
    if as_json:
        click.echo(
            json.dumps([{**vars(v), "ok": v.ok} for v in verdicts], ensure_ascii=False, indent=2)
        )
    else:
        for v in verdicts:
            mark = "[green]ok[/]" if v.ok else "[bold red]MISMATCH[/]"
            out.print(
                f"{mark} {v.source} {v.kind}: source {v.source_count}, moved {v.moved}, "
                f"quarantined {v.quarantined}"
            )
            for problem in v.problems:
                click.echo(f"  {problem}")
    if not all(v.ok for v in verdicts):
        sys.exit(1)


@inherit_group.command("status")
@_selection
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=20,
    show_default=True,
    help="Quarantined records listed.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def status_cmd(
    env: str,
    province: str | None,
    old_province: str | None,
    systems: tuple[str, ...],
    source_opts: tuple[str, ...],
    target: str | None,
    config_path: Path | None,
    limit: int,
    as_json: bool,
) -> None:
    """What the target holds: checkpoints, the last verification, quarantine counted by reason
    and its records listed (reads the target only)."""
    from govops.inherit import job

    result = {}
    for name, target_dsn, _ in _jobs(env, province, old_province, source_opts, target, config_path):
        result[name] = job.status(target_dsn, limit)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2, default=str))
        return
    for name, st in result.items():
        table = Table(title=f"{name}: checkpoints")
        for col in ("source", "kind", "last id", "moved", "quarantined", "verified"):
            table.add_column(col)
        verdicts = {(v["source"], v["kind"]): v for v in st["verification"]}
        for c in st["checkpoints"]:
            v = verdicts.get((c["source"], c["kind"]))
            table.add_row(
                c["source"],
                c["kind"],
                str(c["last_id"]),
                str(c["moved"]),
                str(c["quarantined"]),
                "-" if v is None else ("ok" if v["ok"] else "FAILED"),
            )
        out.print(table)
        for q in st["quarantine"]:
            out.print(f"quarantine {q['source']} {q['kind']}: {q['records']} — {q['reason']}")
        for r in st["quarantined"]:
            click.echo(
                f"  {r['source']} {r['kind']} {r['source_id']} ward {r['old_ward']}: {r['reason']}"
            )


@inherit_group.command("report")
@_selection
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def report_cmd(
    env: str,
    province: str | None,
    old_province: str | None,
    systems: tuple[str, ...],
    source_opts: tuple[str, ...],
    target: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Per province: records moved, quarantined, verified; the commune map's coverage."""
    from govops.inherit import job
    from govops.inherit.communes import DATASET, commune_map

    rows = []
    for name, target_dsn, _ in _jobs(env, province, old_province, source_opts, target, config_path):
        st = job.status(target_dsn, 0)
        v = st["verification"]
        rows.append(
            {
                "province": name,
                "moved": sum(c["moved"] for c in st["checkpoints"]),
                "quarantined": sum(c["quarantined"] for c in st["checkpoints"]),
                "verified": bool(v) and all(x["ok"] for x in v),
            }
        )
    coverage = commune_map().coverage()
    if as_json:
        click.echo(
            json.dumps({"provinces": rows, "map": {"dataset": DATASET, **coverage}}, indent=2)
        )
        return
    table = Table(title="legacy data inherited")
    for col in ("province", "moved", "quarantined", "verified"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["province"], str(r["moved"]), str(r["quarantined"]), "yes" if r["verified"] else "no"
        )
    out.print(table)
    out.print(
        f"map ({DATASET}): {coverage['covered_communes']}/{coverage['registry_communes']} "
        "communes reached; "
        f"{coverage['old_wards']} old wards: {coverage['old_wards_mapped']} mapped, "
        f"{coverage['old_wards_ambiguous']} to several communes, "
        f"{coverage['old_wards_unjoined']} not joined"
    )


@inherit_group.command("generate")
@click.option(
    "--dsn",
    required=True,
    metavar="DSN",
    help="The legacy database to fill (its tables are emptied first).",
)
@click.option(
    "--old-province",
    required=True,
    metavar="OLD",
    help="Old province codename or code (e.g. ha_giang, 02).",
)
@click.option(
    "--vendor",
    type=click.Choice(["a", "b"]),
    required=True,
    help="Source schema: a (Vietnamese names) or b (English names).",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--volume",
    type=click.IntRange(1),
    default=10_000,
    show_default=True,
    help="Dossiers (documents: 1/4, reports: 1/10).",
)
@handle_errors
def generate_cmd(dsn: str, old_province: str, vendor: str, seed: int, volume: int) -> None:
    """Fill a legacy source with synthetic records, the same for the same seed and volume."""
    from govops.inherit.communes import commune_map
    from govops.inherit.config import connect, old_codename
    from govops.inherit.generate import generate, volumes
    from govops.inherit.schema import VENDORS
    from govops.registry.geography import legacy_provinces

    found = [lp for lp in legacy_provinces() if old_province in (lp.old_code, old_codename(lp))]
    if not found:
        raise InputError(
            "--old-province", "old_province", "an old province codename or code", old_province
        )
    connect(dsn, "--dsn").close()
    total = sum(volumes(volume).values())
    with _progress("generating") as (start, advance):
        start(found[0].old_code, "records", total)
        counts = generate(
            dsn,
            VENDORS[vendor],
            found[0].old_code,
            commune_map().wards_of(found[0].old_code),
            seed=seed,
            volume=volume,
            progress=lambda kind, n: advance(found[0].old_code, "records", n),
        )
    out.print(f"{old_codename(found[0])}: " + ", ".join(f"{n} {k}s" for k, n in counts.items()))
