"""`govops monitoring …`: the prober, the cutover exporter, rules, dashboards, the board.

Thin: each command parses options and calls the exporters' library. Exit codes: 0 ok, 1 drift
found (`--check`) or an operational failure, 2 bad input (an estate, config or option).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from govops.clikit import env_option, handle_errors, open_estate, write_output
from govops.clikit import err as err_console
from govops.clikit import out as console
from govops.errors import GovopsError, InputError
from govops.redact import redact_logs

F = TypeVar("F", bound=Callable[..., Any])


@click.group("monitoring", context_settings={"help_option_names": ["-h", "--help"]})
def monitoring_group() -> None:
    """Prometheus side: domain prober, cutover exporter, rules, dashboards, readiness board."""


def _prober_options(fn: F) -> F:
    options: list[Callable[[F], F]] = [
        click.option(
            "--endpoints",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="YAML replacing some fronts' or counterparts' URLs (never adding provinces).",
        ),
        click.option("--ca-file", help="CA bundle the fronts' certificates chain to."),
        click.option(
            "--commune-period",
            type=click.FloatRange(min=60.0, max=366 * 86400.0),
            default=86400.0,
            show_default=True,
            help="Seconds within which every commune gets a test dossier.",
        ),
        click.option("--state-dir", help="Where per-province commune ledgers survive restarts."),
        click.option(
            "--estate",
            "estate_file",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="An estate file to read instead of inventories/ENV/estate.yml (an inventory "
            "outside the checkout, as Ansible's inventory_dir names it).",
        ),
        env_option("lab"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _prober_config(
    env: str,
    endpoints: Path | None,
    ca_file: str | None,
    commune_period: float,
    state_dir: str | None,
    estate_file: Path | None,
) -> object:
    from exporters.govops_prober.from_estate import config_from_estate, load_endpoints

    if estate_file is not None:
        from govops.registry.estate import load_estate

        estate = load_estate(estate_file)
    else:
        _, estate = open_estate(env)
    return config_from_estate(
        estate,
        endpoints=load_endpoints(endpoints) if endpoints else None,
        endpoints_source=str(endpoints or ""),
        ca_file=ca_file,
        commune_period_seconds=commune_period,
        state_dir=state_dir,
    )


@monitoring_group.command("prober-config")
@_prober_options
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), help="Write here (default: stdout)."
)
@handle_errors
def prober_config_cmd(
    env: str,
    endpoints: Path | None,
    ca_file: str | None,
    commune_period: float,
    state_dir: str | None,
    estate_file: Path | None,
    out: Path | None,
) -> None:
    """Write the domain prober's JSON config from the registry and the estate.

    The monitoring host runs `python3 -m govops_prober --config FILE` on it, without govops.
    """
    from exporters.govops_prober.config import ProberConfig

    config = _prober_config(env, endpoints, ca_file, commune_period, state_dir, estate_file)
    assert isinstance(config, ProberConfig)
    text = config.to_json()
    if out is None:
        click.echo(text, nl=False)
        return
    write_output(out, text, "--out")
    err_console.print(f"wrote {out}: {len(config.provinces)} provinces", markup=False)


@monitoring_group.command("prober")
@_prober_options
@click.option("--listen", default="127.0.0.1:9471", show_default=True, metavar="HOST:PORT")
@handle_errors
def prober_cmd(
    env: str,
    endpoints: Path | None,
    ca_file: str | None,
    commune_period: float,
    state_dir: str | None,
    estate_file: Path | None,
    listen: str,
) -> None:
    """Serve the domain prober: GET /probe?target=<province>&module=<module>."""
    from exporters.govops_prober.__main__ import run
    from exporters.govops_prober.config import ProberConfig

    host, port = _listen(listen)
    _logging()
    config = _prober_config(env, endpoints, ca_file, commune_period, state_dir, estate_file)
    assert isinstance(config, ProberConfig)
    _serving(host, port, lambda: run(config, host, port))


@monitoring_group.command("cutover-exporter")
@click.option("--state", help="Runbook state store URL (default: the engine's).")
@click.option("--run", "run_id", help="The run to show (default: active, else latest).")
@click.option("--listen", default="127.0.0.1:9472", show_default=True, metavar="HOST:PORT")
@handle_errors
def cutover_exporter_cmd(state: str | None, run_id: str | None, listen: str) -> None:
    """Serve the cutover-progress exporter (the runbook state as metrics) on /metrics.

    The store is read-only to it: a missing one is reported down (govops_cutover_up 0,
    govops_cutover_down_info{reason="missing"}), never created."""
    from exporters.cutover_exporter.__main__ import serve
    from exporters.cutover_exporter.source import RunbookStoreSource

    host, port = _listen(listen)
    _logging()
    _serving(host, port, lambda: serve(RunbookStoreSource(state, run_id), host, port))


def _listen(value: str) -> tuple[str, int]:
    """--listen HOST:PORT, the port from 1 to 65535 (exit 2 otherwise)."""
    from exporters.cutover_exporter.__main__ import ListenError, parse_listen

    try:
        return parse_listen(value)
    except ListenError as exc:
        raise InputError("(command line)", "--listen", str(exc).removeprefix("expected ")) from None


def _serving(host: str, port: int, serve: Callable[[], None]) -> None:
    """Serve; a host that does not resolve is bad input, a port in use an operational failure."""
    import socket

    try:
        serve()
    except socket.gaierror as exc:
        raise InputError("(command line)", "--listen", "a host that resolves", got=host) from exc
    except OSError as exc:
        raise GovopsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    redact_logs()


@monitoring_group.command("rules")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if committed rules drift.")
def rules_cmd(check: bool) -> None:
    """Generate exporters/rules/*.yml from the tables in exporters/rules/ (zone, slo, national)."""
    from exporters.rules import generate

    _generated("rules", generate.drift, generate.write, check)


@monitoring_group.command("dashboards")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if committed JSON drifts.")
def dashboards_cmd(check: bool) -> None:
    """Generate the Grafana dashboards exporters/dashboards/*.json."""
    from exporters.dashboards import generate

    _generated("dashboards", generate.drift, generate.write, check)


def _generated(
    what: str, drift: Callable[[], list[str]], write: Callable[[], list[str]], check: bool
) -> None:
    if check:
        diffs = drift()
        if diffs:
            for d in diffs:
                click.echo(d, err=True)
            err_console.print(f"[bold red]drift[/]: run `govops monitoring {what}` and commit")
            sys.exit(1)
        console.print(f"[green]no drift[/]: {what} match their generator")
        return
    written = write()
    console.print(
        f"{what}: {len(written)} file(s) written" + (f": {', '.join(written)}" if written else "")
    )


@monitoring_group.command("board")
@click.option(
    "--prometheus", "prometheus", required=True, metavar="URL", help="Prometheus base URL."
)
@click.option(
    "--out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="HTML file."
)
@env_option("production")
@handle_errors
def board_cmd(prometheus: str, out: Path, env: str) -> None:
    """Render the static HTML readiness board from Prometheus queries."""
    from exporters.board.render import collect, render

    started = time.perf_counter()
    _, estate = open_estate(env)
    board = collect(estate, prometheus)
    write_output(out, render(board), "--out")
    console.print(
        f"wrote {out}: {board.provinces_up}/{len(board.provinces)} provinces all up, "
        f"{len(board.alerts)} alerts firing ({time.perf_counter() - started:.2f} s)"
    )
