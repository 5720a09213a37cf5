"""`govops dns`: the cutover's DNS switch for one province, step by step.

    govops dns plan      --env lab --province hue --switch-at 2025-06-28T13:00+07:00
    govops dns lower-ttl --env lab --province hue   # records the old RRsets, then lowers TTLs
    govops dns switch    --env lab --province hue   # refused until the old TTL has run out
    govops dns verify    --env lab --province hue   # at the server and through the resolver
    govops dns rollback  --env lab --province hue   # the recorded RRsets back
    govops dns zones     --env lab                  # the lab server's seed (JSON, for the role)

Exit codes: 0 done/verified, 1 the server refused or answers otherwise (or: too early to
switch), 2 bad input. In the lab the server is the `dns` host and the TSIG key the one the
role generated in the lab's secrets; elsewhere pass --server and --key-file (from the vault),
or set GOVOPS_DNS_SERVER, GOVOPS_DNS_KEY_FILE (and GOVOPS_DNS_RESOLVER) for a runbook's run.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from govops.clikit import env_option, err, handle_errors, open_estate, out
from govops.dns import records, update
from govops.dns import state as st
from govops.errors import InputError
from govops.paths import cache_dir
from govops.registry.estate import Estate

VN = ZoneInfo("Asia/Ho_Chi_Minh")
LAB_KEY = "lab/secrets/dns-tsig-cutover"  # where the role's password lookup keeps it


def _vn(t: datetime | None) -> str:
    return t.astimezone(VN).strftime("%Y-%m-%d %H:%M:%S %z") if t else "—"


def _server(value: str | None, option: str, estate: Estate) -> update.Server:
    if value is None:
        dns_host = next((h for h in estate.hosts(set()) if h.name == "dns"), None)
        if dns_host is None:
            raise InputError(estate.path, option, "an address (this estate has no `dns` host)")
        return update.Server(str(dns_host.ip))
    host, _, port = value.partition(":")
    if not host or (port and not port.isdigit()):
        raise InputError("command line", option, "ADDRESS or ADDRESS:PORT", got=value)
    return update.Server(host, int(port) if port else 53)


def _key(path: Path | None, estate: Estate) -> update.Tsig:
    if path is None:
        if estate.lab is None:
            raise InputError(estate.path, "--key-file", "the TSIG key file (from the vault)")
        path = cache_dir() / LAB_KEY
    return update.Tsig.from_file(path)


def _moves(estate: Estate, province: str) -> list[records.Move]:
    try:
        return records.moves_for(estate, province)
    except KeyError:
        raise InputError(
            estate.path, "--province", "a province of the estate", got=province
        ) from None


def _state_dir(value: Path | None, env: str) -> Path:
    return value if value is not None else cache_dir() / "dns" / env


province_option = click.option(
    "--province", required=True, metavar="CODENAME", help="The province (codename: hue)."
)
server_option = click.option(
    "--server",
    metavar="ADDR[:PORT]",
    envvar="GOVOPS_DNS_SERVER",
    help="Authoritative server (lab default: the dns host; env GOVOPS_DNS_SERVER).",
)
key_option = click.option(
    "--key-file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="GOVOPS_DNS_KEY_FILE",
    help="TSIG secret (base64, first word of the file; env GOVOPS_DNS_KEY_FILE); lab default: "
    "the lab's secrets.",
)
state_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where each province's recorded RRsets are kept (default: the cache's dns/ENV).",
)


@click.group("dns")
def dns_group() -> None:
    """The cutover's DNS switch: lower TTLs, switch by RFC 2136 + TSIG, verify, roll back."""


@dns_group.command("zones")
@env_option("lab")
@handle_errors
def zones_cmd(env: str) -> None:
    """The lab server's seed as JSON: zones and their A records (read by the role)."""
    _, estate = open_estate(env)
    data = {
        zone: [{"name": r.name, "ttl": r.ttl, "type": r.type, "value": r.value} for r in recs]
        for zone, recs in records.lab_zones(estate).items()
    }
    click.echo(json.dumps({"zones": data}, sort_keys=True))


@dns_group.command("plan")
@env_option("lab")
@province_option
@server_option
@click.option(
    "--switch-at",
    type=click.DateTime(["%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S%z"]),
    required=True,
    help="When the switch happens (with its offset: 2025-06-28T13:00+0700).",
)
@click.option("--low-ttl", type=click.IntRange(1, 3600), default=records.LOW_TTL, show_default=True)
@handle_errors
def plan_cmd(
    env: str, province: str, server: str | None, switch_at: datetime, low_ttl: int
) -> None:
    """Which records move, their TTL now, and by when each must be lowered."""
    _, estate = open_estate(env)
    srv = _server(server, "--server", estate)
    moves = _moves(estate, province)
    current = {m.name: update.query(srv, m.name) for m in moves}
    missing = sorted(n for n, rr in current.items() if rr is None)
    present = {n: rr for n, rr in current.items() if rr is not None}
    steps = records.plan_ttl(present, switch_at, low_ttl)
    for m in moves:
        rr = current[m.name]
        now_ = f"{','.join(rr.values)} ttl {rr.ttl}" if rr else "no record"
        out.print(f"{m.name}: {now_} → {','.join(m.new)} ttl {low_ttl}", highlight=False)
    deadline = records.lowering_deadline(steps, switch_at)
    out.print(
        f"lower the TTL of {len(steps)} record(s) by {_vn(deadline)}; switch at {_vn(switch_at)}"
    )
    if missing:
        err.print(f"no record yet for: {', '.join(missing)}")
        raise SystemExit(1)


@dns_group.command("lower-ttl")
@env_option("lab")
@province_option
@server_option
@key_option
@state_option
@click.option("--low-ttl", type=click.IntRange(1, 3600), default=records.LOW_TTL, show_default=True)
@handle_errors
def lower_cmd(
    env: str,
    province: str,
    server: str | None,
    key_file: Path | None,
    state_dir: Path | None,
    low_ttl: int,
) -> None:
    """Record the moving names' RRsets (once), then lower their TTL."""
    _, estate = open_estate(env)
    srv, tsig = _server(server, "--server", estate), _key(key_file, estate)
    s = update.lower_ttl(
        srv, tsig, _state_dir(state_dir, env), province, _moves(estate, province), low_ttl
    )
    out.print(f"{province}: {len(s.old)} record(s) at ttl ≤ {low_ttl} since {_vn(s.lowered_at)}")


@dns_group.command("switch")
@env_option("lab")
@province_option
@server_option
@key_option
@state_option
@click.option("--wait", is_flag=True, help="Wait for the old TTL to run out instead of refusing.")
@click.option(
    "--lower-first",
    is_flag=True,
    help="Not lowered (or rolled back since): lower the TTLs now, then switch (with --wait, "
    "after the old TTL). For switching again after a rollback.",
)
@handle_errors
def switch_cmd(
    env: str,
    province: str,
    server: str | None,
    key_file: Path | None,
    state_dir: Path | None,
    wait: bool,
    lower_first: bool,
) -> None:
    """Point the province's moving names at its new systems."""
    _, estate = open_estate(env)
    srv, tsig = _server(server, "--server", estate), _key(key_file, estate)
    sdir = _state_dir(state_dir, env)
    moves = _moves(estate, province)
    if lower_first and st.load(sdir, province).lowered_at is None:
        update.lower_ttl(srv, tsig, sdir, province, moves, records.LOW_TTL)
    left = update.seconds_to_wait(st.load(sdir, province))
    if left > 0 and wait:
        err.print(f"{province}: waiting {left:.0f} s for the old TTL to run out")
    started = time.monotonic()
    s = update.switch(srv, tsig, sdir, province, moves, wait=wait)
    out.print(
        f"{province}: {len(moves)} record(s) switched at {_vn(s.switched_at)} "
        f"({time.monotonic() - started:.2f} s)"
    )


@dns_group.command("verify")
@env_option("lab")
@province_option
@server_option
@state_option
@click.option(
    "--resolver",
    metavar="ADDR[:PORT]",
    envvar="GOVOPS_DNS_RESOLVER",
    help="Also through this resolver (lab default: the dns host; env GOVOPS_DNS_RESOLVER).",
)
@click.option(
    "--expect",
    type=click.Choice(["new", "old", "lowered", "auto"]),
    default="auto",
    show_default=True,
    help="new: the switched records; old: the recorded ones; lowered: the recorded ones at "
    "the low TTL; auto: by the state.",
)
@handle_errors
def verify_cmd(
    env: str,
    province: str,
    server: str | None,
    state_dir: Path | None,
    resolver: str | None,
    expect: str,
) -> None:
    """Every moving name answers as expected; exit 1 naming those that do not."""
    _, estate = open_estate(env)
    srv = _server(server, "--server", estate)
    res = _server(resolver, "--resolver", estate) if resolver or estate.lab else None
    s = st.load(_state_dir(state_dir, env), province)
    if expect == "auto":
        expect = "old" if s.rolled_back_at or not s.switched_at else "new"
    moves = _moves(estate, province)
    max_ttl = records.LOW_TTL if expect == "lowered" else None
    if expect == "lowered" and s.switched_at and not s.rolled_back_at:
        # Lowered, then switched (a rehearsal run again on a lab already cut over): the names
        # answer their new values, still at the low TTL, which is what "lowered" promises.
        expect = "new"
    if expect == "new":
        expected = {m.name: m.new for m in moves}
        within = float(records.LOW_TTL)
    else:
        if not s.old:
            raise InputError("command line", "--expect", "old after lower-ttl recorded them")
        expected = {n: rr.values for n, rr in s.old.items()}
        within = float(records.LOW_TTL)  # the switched answers carried the low TTL
    started = time.monotonic()
    problems = update.verify(srv, expected, resolver=res, within=within + 2, max_ttl=max_ttl)
    for name, why in problems.items():
        err.print(f"{name}: {why}", highlight=False)
    if problems:
        raise SystemExit(1)
    took = time.monotonic() - started
    where = f"{srv.address} and resolver {res.address}" if res else srv.address
    out.print(f"{province}: {len(expected)} record(s) {expect} at {where} ({took:.2f} s)")


@dns_group.command("rollback")
@env_option("lab")
@province_option
@server_option
@key_option
@state_option
@handle_errors
def rollback_cmd(
    env: str, province: str, server: str | None, key_file: Path | None, state_dir: Path | None
) -> None:
    """Put back the recorded RRsets (values and TTL) of the province's moving names."""
    _, estate = open_estate(env)
    srv, tsig = _server(server, "--server", estate), _key(key_file, estate)
    s = update.rollback(srv, tsig, _state_dir(state_dir, env), province)
    out.print(f"{province}: {len(s.old)} record(s) restored at {_vn(s.rolled_back_at)}")
