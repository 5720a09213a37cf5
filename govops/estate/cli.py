"""`govops estate check`: the estate's views compared; see govops/estate/check.py."""

from __future__ import annotations

import sys
import time

import click

from govops.clikit import env_option, err, handle_errors, open_estate, out


@click.group("estate")
def estate_group() -> None:
    """The estate as one thing: what Pulumi builds, Ansible configures, the prober probes and
    the runbooks call."""


@estate_group.command("check")
@env_option()
@click.option(
    "--province", "provinces", multiple=True, metavar="P", help="Only this province (repeatable)."
)
@handle_errors
def check_cmd(env: str, provinces: tuple[str, ...]) -> None:
    """Compare the registry, the Pulumi plan (under mocks), the rendered inventory, the
    prober's and Prometheus' targets and the runbooks.

    One line per disagreement: what, where it is expected, where it is missing.
    Exit codes: 0 they agree, 1 disagreements, 2 bad input.
    """
    from govops.estate.check import check

    started = time.perf_counter()
    root, estate = open_estate(env)
    report = check(root, estate, provinces)
    took = time.perf_counter() - started
    compared = ", ".join(f"{n} {what}" for what, n in report.counts.items())
    for d in report.disagreements:
        click.echo(str(d))
    if report.agrees:
        out.print(f"[green]agrees[/]: {env}: {compared} ({took:.1f} s)")
        return
    n = len(report.disagreements)
    err.print(f"[bold red]{n} disagreement(s)[/] in {env}: {compared} ({took:.1f} s)")
    sys.exit(1)
