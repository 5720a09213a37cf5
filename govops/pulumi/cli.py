"""`govops plan`: the Pulumi program for every stack of an environment, under mocks.

Kept apart from govops/cli.py (which only registers `plan_cmd`) because importing the
Pulumi SDK and the program costs time every other command should not pay.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from govops.clikit import handle_errors
from govops.paths import repo_root

out = Console()
err = Console(stderr=True)


def infra_importable(root: Path) -> None:
    """The Pulumi program (`infra/`) is not an installed package: import it from the
    checkout govops runs from (an editable install), else from the repository root."""
    for base in (Path(__file__).resolve().parents[1], root):
        if (base / "infra" / "__init__.py").is_file():
            if str(base) not in sys.path:
                sys.path.insert(0, str(base))
            return


@click.command("plan")
@click.option(
    "--env",
    "env",
    default="production",
    show_default=True,
    metavar="ENV",
    help="Environment: plans infra/stacks/Pulumi.ENV-*.yaml.",
)
@click.option("--province", metavar="P", help="One province (codename, e.g. hue).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def plan_cmd(env: str, province: str | None, as_json: bool) -> None:
    """Run the Pulumi program of every stack under mocks and show what it would create.

    Counts per province and system and by resource type, then checks what the engine
    would refuse (duplicate resource names) and the policy pack (labels, no public SSH,
    PostgreSQL or pgBackRest, private subnets, encrypted volumes, the flow table, a standby
    on another hypervisor for every database, its zone's backup host admitted). Exit codes:
    0 ok; 1 duplicate names or policy violations, each naming the resource; 2 a bad stack
    config (file, line, key).
    """
    root = repo_root()
    infra_importable(root)
    from govops.pulumi.plan import plan

    if as_json:
        result = plan(root, env, province)
    else:
        with _Progress() as progress:
            result = plan(
                root,
                env,
                province,
                on_start=progress.start_stacks,
                on_stack=progress.stack_done,
            )
    if as_json:
        click.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
    else:
        _print(result)
    if result.problems:
        for line in result.problems:
            err.print(f"[red]refused[/]: {line}", highlight=False, soft_wrap=True)
        err.print(f"[bold red]plan failed[/]: {len(result.problems)} problem(s)")
        sys.exit(1)


class _Progress:
    """One bar over the stacks, advanced as each province's plan is ready."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]plan[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self.task: Any = None

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start_stacks(self, stacks: list[Any]) -> None:
        # Started here, after the worker processes are forked: Rich refreshes on a thread.
        self.progress.start()
        self.task = self.progress.add_task("stacks", total=len(stacks))

    def stack_done(self, stack: Any) -> None:
        self.progress.update(self.task, advance=1, description=stack.stack)


# Table columns: short, so 34 provinces × 7 systems fit 80 columns (JSON has every type).
SHORT = {
    "network": "net",
    "security": "sg",
    "compute": "vm",
    "storage": "disk",
    "load balancing": "lb",
    "dns": "dns",
    "components": "comp",
}


def _print(result: Any) -> None:
    from govops.pulumi.plan import GROUPS, group_of

    groups = [name for name, _ in GROUPS]
    totals = dict.fromkeys(groups, 0)
    rows: list[tuple[str, str, dict[str, int], int]] = []
    for s in result.stacks:
        for i, (sid, by_type) in enumerate(s.counts.items()):
            cells = dict.fromkeys(groups, 0)
            for typ, n in by_type.items():
                cells[group_of(typ)] += n
                totals[group_of(typ)] += n
            name = s.province or s.role  # the platform stack: "platform"
            rows.append((name if i == 0 else "", sid, cells, sum(by_type.values())))
    table = Table(
        title=f"plan: {result.environment}",
        caption=" · ".join(f"{SHORT[g]} = {g}" for g in groups),
        box=box.SIMPLE_HEAD,
        show_footer=True,
        pad_edge=False,
    )
    table.add_column("province", footer="total", no_wrap=True)
    table.add_column("system", no_wrap=True)
    for g in groups:
        table.add_column(SHORT[g], justify="right", footer=str(totals[g]))
    table.add_column("total", justify="right", footer=str(result.resources))
    for first, sid, cells, total in rows:
        if first and table.row_count:
            table.add_section()
        table.add_row(first, sid, *(str(cells[g] or "") for g in groups), str(total))
    out.print(table)
    types = Table(title="by resource type", box=box.SIMPLE_HEAD, pad_edge=False)
    types.add_column("type", no_wrap=True)
    types.add_column("count", justify="right")
    for typ, n in result.totals.items():
        types.add_row(typ, str(n))
    out.print(types)
    out.print(
        f"{result.resources} resources in {len(result.stacks)} stacks, "
        f"{len(result.problems)} problem(s), {result.seconds:.2f} s"
    )
