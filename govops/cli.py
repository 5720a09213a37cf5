"""`govops …`: the command line. Thin: parse, call the library, present the result."""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from govops.clikit import env_option, err, handle_errors, open_estate, out
from govops.paths import repo_root
from govops.registry import catalog, estate_path, load_estate, provinces

# Subcommand groups that live with their own packages, imported only when named: `govops
# cutover …` need not import Pulumi, paramiko or Ansible (≈0.3 s a command, which the
# runbook's crash tests and every operator pay). Click's documented lazy-group pattern.
LAZY_COMMANDS = {
    "converge": "govops.ansible.cli:converge_cmd",
    "cutover": "govops.runbook.cli:cutover_group",
    "db": "govops.db.cli:db_group",
    "dns": "govops.dns.cli:dns_group",
    "estate": "govops.estate.cli:estate_group",
    "inherit": "govops.inherit.cli:inherit_group",
    "lab": "govops.lab.cli:lab_group",
    "monitoring": "exporters.cli:monitoring_group",
    "plan": "govops.pulumi.cli:plan_cmd",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module, _, attr = LAZY_COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="govops")
def main() -> None:
    """govops: provision, configure, monitor and cut over the 34 provinces' shared systems."""


# --- registry --------------------------------------------------------------------------


@main.group()
def registry() -> None:
    """The registry: provinces, communes, the five systems, national counterparts."""


@registry.command("validate")
@env_option()
@click.option("--all-envs", is_flag=True, help="Validate every inventories/*/estate.yml.")
@handle_errors
def registry_validate(env: str, all_envs: bool) -> None:
    """Check the catalog and an estate file; report what the registry holds.

    Exit codes: 0 valid, 2 invalid (each problem named by file, line and key).
    """
    root = repo_root()
    envs = (
        sorted(p.parent.name for p in (root / "inventories").glob("*/estate.yml"))
        if all_envs
        else [env]
    )
    cat = catalog()
    all_provinces = provinces()
    communes = sum(len(p.communes) for p in all_provinces.values())
    out.print(
        f"registry: {len(all_provinces)} provinces, {communes} communes, "
        f"{len(cat.systems)} systems, {len(cat.counterparts)} national counterparts, "
        f"{len(cat.checks)} readiness checks"
    )
    for name in envs:
        estate = load_estate(estate_path(root / "inventories", name))
        selected = sum(len(pe.province.communes) for pe in estate.provinces.values())
        out.print(
            f"[green]ok[/] {estate.path.relative_to(root)}: {len(estate.provinces)} provinces, "
            f"{selected} communes, {len(estate.hosts())} hosts"
        )


@registry.command("show")
@env_option()
@click.option("--province", "province", metavar="P", help="One province (codename, e.g. hue).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def registry_show(env: str, province: str | None, as_json: bool) -> None:
    """Show the estate's provinces (or one province in detail)."""
    from govops.registry.show import province_detail, province_rows

    _, estate = open_estate(env)
    if province is not None:
        detail = province_detail(estate, province)
        if as_json:
            click.echo(json.dumps(detail, ensure_ascii=False, indent=2))
            return
        _print_detail(detail)
        return
    rows = province_rows(estate)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{estate.environment}: {len(rows)} provinces")
    for col in ("code", "codename", "name", "communes", "zone", "network", "hosts"):
        table.add_column(col, justify="right" if col in ("communes", "hosts") else "left")
    for r in rows:
        table.add_row(
            r["code"],
            r["codename"],
            r["name"],
            str(r["communes"]),
            r["zone"],
            r["network"],
            str(r["hosts"]),
        )
    out.print(table)


def _print_detail(detail: dict[str, Any]) -> None:
    out.print(
        f"[bold]{detail['name']}[/] ({detail['codename']}, code {detail['code']}), "
        f"zone {detail['zone']}, network {detail['network']}"
    )
    if detail["merged_from"]:
        out.print("merged from: " + ", ".join(detail["merged_from"]))
    table = Table(title="hosts")
    for col in ("host", "address", "system", "tiers", "flavor", "volume GB"):
        table.add_column(col)
    for h in detail["hosts"]:
        table.add_row(
            h["name"],
            h["ip"],
            h["system"] or "-",
            ",".join(h["tiers"]),
            h["flavor"],
            str(h["volume_gb"]),
        )
    out.print(table)
    types: dict[str, int] = {}
    for c in detail["communes"]:
        types[c["type"]] = types.get(c["type"], 0) + 1
    summary = ", ".join(f"{n} {t}" for t, n in sorted(types.items()))
    out.print(f"{len(detail['communes'])} communes ({summary})")


# --- render ----------------------------------------------------------------------------


@main.command("render")
@env_option()
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 and show the drift if committed files differ.",
)
@click.option(
    "--from-pulumi",
    "from_pulumi",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON of `pulumi stack output --json` (one stack, or many keyed by stack name); "
    "fills the addresses the cloud gave into the inventory. Repeatable.",
)
@handle_errors
def render_cmd(env: str, check: bool, from_pulumi: tuple[Path, ...]) -> None:
    """Render the estate into Ansible inventory, Prometheus targets, Pulumi stacks, lab topology.

    Same input gives byte-identical output. Exit codes: 0 ok (or no drift), 1 drift
    found with --check, 2 invalid estate.
    """
    from govops.render import drift, render, write

    started = time.perf_counter()
    root, estate = open_estate(env)
    files = render(estate)
    if from_pulumi:
        from govops.render.pulumi_outputs import apply_outputs, load_outputs

        for source in from_pulumi:
            files = apply_outputs(files, load_outputs(source))
    result = drift(root, env, files) if check else write(root, env, files)
    took = time.perf_counter() - started
    if check:
        if result.clean:
            out.print(
                f"[green]no drift[/]: {len(files)} rendered files for {env} match ({took:.2f} s)"
            )
            return
        if result.diff:
            click.echo(result.diff, err=True)
        for label, paths in (
            ("changed", result.changed),
            ("missing", result.added),
            ("stale", result.stale),
        ):
            for p in paths:
                err.print(f"[red]{label}[/]: {p}")
        err.print(f"[bold red]drift[/]: run `govops render --env {env}` and commit")
        sys.exit(1)
    out.print(
        f"rendered {len(files)} files for {env}: {len(result.added)} new, "
        f"{len(result.changed)} changed, {len(result.stale)} removed ({took:.2f} s)"
    )


if __name__ == "__main__":
    main()
