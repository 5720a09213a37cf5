"""`govops lab …`: build the image, start, inspect and remove the lab's hosts.

Exit codes: 0 ok, 1 operational failure (podman, image build, boot, SSH), 2 bad input
(unknown host or province, missing or invalid topology).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from govops.clikit import err, fail, handle_errors, out
from govops.lab import hosts as lab_hosts
from govops.lab.image import ensure_image
from govops.lab.paths import LabPaths, inventories_dir
from govops.lab.podman import Podman
from govops.lab.rehearse import CONTROLLER_NICE, WAVE
from govops.lab.sshkeys import ssh_options
from govops.lab.topology import load_topology, parse_provinces, select_hosts

F = TypeVar("F", bound=Callable[..., Any])


def env_option(fn: F) -> F:
    return click.option(
        "--env",
        "env",
        default="lab",
        show_default=True,
        metavar="ENV",
        help="Environment: reads inventories/ENV/topology.yml (from `govops render`).",
    )(fn)


def inventories_option(fn: F) -> F:
    return click.option(
        "--inventories",
        "inventories",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        metavar="DIR",
        help="Inventories folder (default: the checkout's).",
    )(fn)


@click.group("lab", context_settings={"help_option_names": ["-h", "--help"]})
def lab_group() -> None:
    """The lab: real Debian hosts as podman systemd containers, reachable over SSH.

    Built and cached under ${GOVOPS_CACHE:-~/.cache/govops}/lab. Needs root and the packages of
    scripts/install-system-deps.sh.
    """


@lab_group.command("image")
@click.option("--rebuild", is_flag=True, help="Build even if the current tag exists.")
@handle_errors
def image_cmd(rebuild: bool) -> None:
    """Build the lab image (debootstrap, ~90 s) unless its tag is already in podman.

    The tag hashes govops/lab/image-packages.txt and the build recipe.
    """
    paths = LabPaths.default()
    ref, built = ensure_image(lab_hosts.default_podman(paths), paths, rebuild=rebuild, console=err)
    out.print(f"{ref} {'built' if built else 'is up to date'}")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


@lab_group.command("up")
@env_option
@inventories_option
@click.option(
    "--provinces",
    metavar="P1,P2|all",
    default=None,
    help="Provinces to start (default: the topology's default_provinces). National and "
    "monitoring hosts always start.",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=lab_hosts.DEFAULT_JOBS,
    show_default=True,
    help="Hosts started at once.",
)
@handle_errors
def up_cmd(env: str, inventories: Path | None, provinces: str | None, jobs: int) -> None:
    """Start the selected hosts; running ones are left alone (a second run starts nothing)."""
    started_at = time.monotonic()
    topology = load_topology(inventories_dir(inventories), env)
    selected = select_hosts(topology, parse_provinces(provinces))
    paths = LabPaths.default()
    podman = lab_hosts.default_podman(paths)
    image, _ = ensure_image(podman, paths, console=err)
    with _progress() as progress:
        task = progress.add_task(f"{env}: starting hosts", total=None)

        def on_host(name: str, ok: bool) -> None:
            progress.advance(task)
            if not ok:
                progress.console.print(f"[red]failed[/] {name}")

        def on_plan(count: int) -> None:
            progress.update(task, total=count, visible=count > 0)

        report = lab_hosts.up(
            topology,
            selected,
            image,
            paths=paths,
            podman=podman,
            jobs=jobs,
            on_host=on_host,
            on_plan=on_plan,
        )
    _print_up(report, env, paths, time.monotonic() - started_at)
    if not report.ok:
        sys.exit(1)


def _print_up(report: lab_hosts.UpReport, env: str, paths: LabPaths, took: float) -> None:
    for note in report.notes:
        err.print(f"[yellow]note:[/] {note}")
    for name, units in sorted(report.degraded.items()):
        err.print(f"[yellow]degraded[/] {name}: failed units {', '.join(units)}")
    for name, reason in sorted(report.failed.items()):
        err.print(f"[red]failed[/] {name}: {reason}", soft_wrap=True)
    out.print(
        f"{env}: {len(report.started)} started, {len(report.already_running)} already running"
        + (f", {len(report.failed)} failed" if report.failed else "")
        + f" ({took:.1f} s, image {report.image})",
        soft_wrap=True,
    )
    out.print(f"limit file: {paths.hosts_limit(env)}", soft_wrap=True)


@lab_group.command("status")
@env_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def status_cmd(env: str, as_json: bool) -> None:
    """Show the lab's containers and their state (and refresh running.json, hosts.limit)."""
    paths = LabPaths.default()
    containers = lab_hosts.list_containers(lab_hosts.default_podman(paths), env)
    if containers:
        lab_hosts.write_records(paths, env, containers)
    degraded = failed_units(lab_hosts.default_podman(paths), containers)
    if as_json:
        rows = lab_hosts.status_rows(containers)
        for row, c in zip(rows, containers, strict=True):
            row["failed_units"] = degraded.get(c.name)
        click.echo(json.dumps(rows, indent=2))
        return
    print_table(out, status_table(env, containers, degraded))


def parse_failed_units(listing: str) -> list[str]:
    """Unit names from `systemctl list-units --state=failed --plain --no-legend`."""
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def failed_units(
    podman: Podman, containers: list[lab_hosts.Container]
) -> dict[str, list[str] | None]:
    """Each running host's failed systemd units (None: systemd did not answer)."""
    command = ("systemctl", "list-units", "--state=failed", "--plain", "--no-legend")

    def ask(c: lab_hosts.Container) -> tuple[str, list[str] | None]:
        proc = podman.run("exec", c.container, *command, check=False, timeout=30)
        return c.name, parse_failed_units(proc.stdout) if proc.returncode == 0 else None

    running = [c for c in containers if c.running]
    if not running:
        return {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(ask, running))


def status_table(
    env: str, containers: list[lab_hosts.Container], degraded: dict[str, list[str] | None]
) -> Table:
    running = sum(c.running for c in containers)
    sick = sum(1 for units in degraded.values() if units)
    title = f"{env} lab: {running} of {len(containers)} hosts running, {sick} degraded"
    table = Table(title=title)
    for column in ("host", "ip", "province", "system", "state", "degraded units", "image"):
        table.add_column(column)
    for c in containers:
        units = degraded.get(c.name)
        shown = "?" if c.running and units is None else ", ".join(units or []) or "-"
        style = "" if c.running and not units else "red"
        table.add_row(
            c.name,
            c.ip,
            c.province or "-",
            c.system or "-",
            c.state,
            shown,
            c.image.rsplit(":", 1)[-1],
            style=style,
        )
    return table


def next_commands(run_id: str, state: Path) -> list[str]:
    """What to run after a rehearsal, exact: its store is not the default one."""
    return [f"govops cutover {cmd} {run_id} --state {state}" for cmd in ("status", "report")]


def print_table(console: Console, table: Table) -> None:
    """On a terminal as wide as it is; piped, as wide as its content: a host name, an address
    or a run id cut with "…" cannot be copied into the next command."""
    if console.is_terminal:
        console.print(table)
        return
    wide = Measurement.get(console, console.options.update_width(10_000), table).maximum
    Console(file=console.file, width=max(wide, 20), emoji=False).print(table)


@lab_group.command("down")
@env_option
@handle_errors
def down_cmd(env: str) -> None:
    """Remove the lab's containers and network (by label); the image stays."""
    paths = LabPaths.default()
    started = time.monotonic()
    with err.status(f"removing the {env} lab"):
        report = lab_hosts.down(env, paths=paths, podman=lab_hosts.default_podman(paths))
    out.print(
        f"{env}: removed {len(report.containers)} hosts and {len(report.networks)} network(s) "
        f"({time.monotonic() - started:.1f} s)"
    )
    for network, reason in report.kept.items():
        fail(f"network {network} was left in place: {reason}", 1)


@lab_group.command(
    "ssh", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@env_option
@click.argument("host")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@handle_errors
def ssh_cmd(env: str, host: str, command: tuple[str, ...]) -> None:
    """Log in to HOST as root (or run `-- COMMAND...`), with strict host key checking."""
    paths = LabPaths.default()
    target = lab_hosts.find_running(lab_hosts.default_podman(paths), env, host)
    ssh = shutil.which("ssh")
    if ssh is None:
        fail("ssh is not installed: run `make system-deps`", 1)
        return
    argv = [ssh]
    for key, value in ssh_options(paths).items():
        argv += ["-o", f"{key}={value}"]
    argv += [f"root@{target.ip}", *command]
    sys.stdout.flush()
    os.execv(ssh, argv)  # replace this process: the terminal belongs to ssh now


@lab_group.command("rehearse")
@env_option
@click.option(
    "--provinces",
    metavar="P1,P2|all",
    default=None,
    help="Provinces (default: the topology's default_provinces).",
)
@click.option(
    "--until",
    type=click.Choice(["hosts", "converge", "monitoring", "cutover"]),
    default="cutover",
    show_default=True,
    help="Stop after this stage.",
)
@click.option(
    "--from",
    "start",
    type=click.Choice(["hosts", "converge", "monitoring", "cutover"]),
    default="hosts",
    show_default=True,
    help="Start at this stage (the lab is already up and converged: --from cutover).",
)
@click.option(
    "--as",
    "approver",
    default="lab rehearsal operator",
    show_default=True,
    metavar="NAME",
    help="Who approves the rehearsal's manual gates (recorded in the audit log).",
)
@click.option(
    "--wave",
    type=click.IntRange(1, 34),
    default=WAVE,
    show_default=True,
    metavar="N",
    help="Provinces started and converged at a time: a larger lab (--provinces all) grows "
    "wave by wave, one ansible-playbook run per wave (memory: docs/converge-speed.md).",
)
@click.option(
    "--nice",
    type=click.IntRange(0, 19),
    default=CONTROLLER_NICE,
    show_default=True,
    metavar="N",
    help="The rehearsal's own commands (converge, cutover) run at this lower CPU priority, "
    "so that on one machine the lab's services come first, as on their own hosts (0: off).",
)
@handle_errors
def rehearse_cmd(
    env: str, provinces: str | None, until: str, start: str, approver: str, wave: int, nice: int
) -> None:
    """The whole rehearsal (`make lab`): hosts up, converge, monitoring sees every system up,
    the cutover rehearsal runbook across the provinces, the readiness report, a summary.

    Every stage is idempotent: run it again after a failure and it goes on from where the
    lab is. Exit codes: 0 every stage ok, 1 a stage failed (the summary says which),
    2 bad input.
    """
    from govops.lab.rehearse import Rehearser

    topology = load_topology(inventories_dir(None), env)
    selected = select_hosts(topology, parse_provinces(provinces))  # validates the names
    if nice:
        os.nice(nice)  # this process and every command it starts (docs/converge-speed.md)
    chosen = sorted({h.province for h in selected if h.province})
    paths = LabPaths.default()
    rehearser = Rehearser(
        env,
        chosen,
        approver,
        paths,
        lambda line: err.rule(line[3:-3]),
        wave=wave,
        topology=topology,
    )
    result = rehearser.run(until, start)
    table = Table(title=f"lab rehearsal: {env} ({', '.join(chosen)})", title_justify="left")
    for column in ("stage", "result", "time", "detail"):
        table.add_column(column)
    for stage in result.stages:
        mark = "[green]ok[/]" if stage.ok else "[red]failed[/]"
        table.add_row(stage.name, mark, f"{stage.seconds:.0f} s", stage.detail)
    print_table(out, table)
    if result.report_html is not None:
        out.print(f"readiness report: {result.report_html}", soft_wrap=True)
    if result.run_id:
        for line in next_commands(result.run_id, rehearser.state):
            out.print(line, soft_wrap=True, highlight=False, markup=False)
    if not result.ok:
        sys.exit(1)
