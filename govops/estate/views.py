"""What each tool of the estate expects: hosts, DNS names, flows and endpoints.

Each `*_view` function reads one tool's own input the way that tool reads it (the registry
through `load_estate`, the plan through `govops plan`'s mocked runs, the inventory from
`hosts.yml`, the prober from `config_from_estate`, Prometheus from its file_sd JSON, the
runbooks through their loader and the engine's templating) and returns plain facts; the
comparison is check.py's.

Why over 500 lines: one view per tool, each short, sharing the Flow/View types and helpers;
the registry's view grew with issue 18's replication and backup flows (to split next: one
module per view, the types in their own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2

from govops.errors import InputError
from govops.registry.estate import Estate, Host
from govops.yamlio import ANSIBLE, read_yaml

ANYWHERE = IPv4Network("0.0.0.0/0")
HTTPS = 443
SSH = 22
DB_PORT = 5432
PROMETHEUS = 9090
PGBACKREST = 8432  # pgBackRest's TLS server (roles/pgbackrest)
# file_sd job → the exporter port it scrapes (govops/render/prometheus.py writes them).
SCRAPE_JOBS = ("node", "nginx", "postgres")


@dataclass(frozen=True)
class Flow:
    """Traffic the estate needs: from a source range to a host's port."""

    src: IPv4Network
    dst: str  # host name
    port: int
    protocol: str
    why: str  # what needs it, for messages
    expected_by: str  # the view that needs it

    def describe(self) -> str:
        return f"flow {self.why}: {self.src} → {self.dst} {self.protocol}/{self.port}"


@dataclass
class View:
    """What one tool expects of the estate."""

    name: str
    hosts: dict[str, IPv4Address | None] = field(default_factory=dict)  # name → address
    names: dict[str, str] = field(default_factory=dict)  # DNS name or host called → by what
    flows: list[Flow] = field(default_factory=list)
    groups: set[str] = field(default_factory=set)


# --- registry ------------------------------------------------------------------------------


def monitors_of(estate: Estate, zone: str | None) -> list[Host]:
    """The Prometheus servers that scrape a target of `zone` (see Estate.monitors_of)."""
    return estate.monitors_of(zone)


def _backup_flows(zone: str, mine: list[Host], hosts: list[Host]) -> list[Flow]:
    """A province's database hosts replicate with each other (either may be the primary after a
    failover, /etc/govops/db-role) on 5432, and its zone's backup host reaches each on
    pgBackRest's TLS server (backups); the way back (WAL archiving) is `_archive_flows`."""
    flows = []
    dbs = [h for h in mine if "tier_db" in h.groups]
    for a in dbs:
        for b in (b for b in dbs if b is not a):
            why = f"{a.name} replicates with {b.name}"
            flows.append(Flow(_one(a.ip), b.name, DB_PORT, "tcp", why, "registry"))
    repo = next((h for h in hosts if "backup_repositories" in h.groups and h.zone == zone), None)
    if repo is not None:
        for d in dbs:
            why = f"{repo.name} backs up {d.name}"
            flows.append(Flow(_one(repo.ip), d.name, PGBACKREST, "tcp", why, "registry"))
    return flows


def _archive_flows(estate: Estate, repo: Host) -> list[Flow]:
    """Every database host of the backup host's zone archives WAL to it: all the zone's
    provinces, checked or not (the platform stack holds the rules for all of them)."""
    return [
        Flow(
            _one(d.ip),
            repo.name,
            PGBACKREST,
            "tcp",
            f"{d.name} archives WAL to {repo.name}",
            "registry",
        )
        for d in estate.hosts()
        if "tier_db" in d.groups and d.province and estate.provinces[d.province].zone == repo.zone
    ]


def registry_view(estate: Estate, only: set[str] | None) -> View:
    """The hosts the registry derives, and the flows its catalog implies: who may reach each
    system port (citizens, the province's officials, the national counterparts), every
    system with a database → its province's database, SSH from the province's jump host."""
    view = View("registry")
    hosts = _hosts(estate, only)
    for h in hosts:
        view.hosts[h.name] = h.ip
        view.groups.update(h.groups)
    cat = estate.catalog
    for pe in estate.provinces.values():
        if only is not None and pe.codename not in only:
            continue
        mine = [h for h in hosts if h.province == pe.codename]
        db = next((h for h in mine if "db" in h.tiers), None)
        jump = next((h for h in mine if "bastions" in h.groups), None)
        for h in mine:
            if h.system is None:
                continue
            system = cat.systems[h.system]
            for tier, spec in system.tiers.items():
                for p in spec.ports:
                    src = {
                        "public": ANYWHERE,
                        "province": pe.network,
                        "national": estate.network.national,
                    }.get(p.from_)
                    if src is not None:
                        why = f"{p.from_} → {h.system} {tier}"
                        view.flows.append(Flow(src, h.name, p.port, p.protocol, why, "registry"))
            if system.database and db is not None:
                view.flows.append(
                    Flow(
                        _one(h.ip),
                        db.name,
                        DB_PORT,
                        "tcp",
                        f"{h.system} → its database",
                        "registry",
                    )
                )
        view.flows += _backup_flows(pe.zone, mine, hosts)
        if jump is not None:
            for h in mine:
                if h is not jump:
                    view.flows.append(
                        Flow(_one(jump.ip), h.name, SSH, "tcp", "bastion → SSH", "registry")
                    )
    national = [h for h in hosts if h.province is None]
    bastion = next((h for h in national if "bastions" in h.groups), None)
    for h in national:
        if bastion is not None and h is not bastion:
            view.flows.append(
                Flow(_one(bastion.ip), h.name, SSH, "tcp", "bastion → SSH", "registry")
            )
        if "backup_repositories" in h.groups:
            view.flows += _archive_flows(estate, h)
        if "monitoring_zone" in h.groups:
            for m in (m for m in national if "monitoring_national" in m.groups):
                why = f"{m.name} federates {h.name}"
                view.flows.append(Flow(_one(m.ip), h.name, PROMETHEUS, "tcp", why, "registry"))
    operators = estate.cloud.operators if estate.cloud is not None else None
    if operators is not None:
        for h in hosts:
            if "bastions" in h.groups:
                view.flows.append(
                    Flow(operators, h.name, SSH, "tcp", "operators → bastion", "registry")
                )
            if h.system is not None:
                # Every front answers the operators' controller (the cutover engine).
                why = f"operators → {h.system} front"
                view.flows.append(Flow(operators, h.name, HTTPS, "tcp", why, "registry"))
    return view


def _hosts(estate: Estate, only: set[str] | None) -> list[Host]:
    return [h for h in estate.hosts() if only is None or h.province is None or h.province in only]


def _one(ip: IPv4Address) -> IPv4Network:
    return IPv4Network(f"{ip}/32")


# --- inventory -----------------------------------------------------------------------------


def inventory_view(root: Path, env: str, only: set[str] | None, estate: Estate) -> View:
    """`inventories/ENV/hosts.yml` as Ansible reads it: hosts, addresses, groups, and the jump
    hosts their SSH goes through."""
    path = root / "inventories" / env / "hosts.yml"
    if not path.is_file():
        raise InputError(path, "", "a rendered inventory (govops render)")
    data = read_yaml(path) or {}
    if not isinstance(data, dict) or not isinstance(data.get("all"), dict):
        raise InputError(path, "all", "the inventory's `all` group")
    view = View("inventory")
    province_of = {h.name: h.province for h in estate.hosts()}

    def wanted(name: str) -> bool:
        p = province_of.get(name)
        return only is None or p is None or p in only

    def walk(group: str, node: Any) -> None:
        if not isinstance(node, dict):
            return
        view.groups.add(group)
        for name, hostvars in (node.get("hosts") or {}).items():
            if not wanted(name):
                continue
            ip = None
            if isinstance(hostvars, dict):
                if hostvars.get("ansible_host"):
                    ip = IPv4Address(str(hostvars["ansible_host"]))
                if jump := hostvars.get("govops_jump_host"):
                    view.names.setdefault(str(jump), f"inventory (SSH of {name} jumps through it)")
            if ip is not None or name not in view.hosts:
                view.hosts[name] = ip
        for child, sub in (node.get("children") or {}).items():
            walk(str(child), sub if sub is not None else {})

    walk("all", data["all"])
    return view


# --- Prometheus file_sd ----------------------------------------------------------------------


def prometheus_view(root: Path, env: str, estate: Estate, only: set[str] | None) -> View:
    """The rendered file_sd targets: each host:port a zone's Prometheus scrapes, each URL its
    blackbox_exporter probes (from the monitor of the target's zone)."""
    base = root / "inventories" / env / "prometheus"
    view = View("prometheus")
    by_name = {h.name: h for h in estate.hosts()}
    by_fqdn = {h.fqdn: h for h in estate.hosts()}
    for job in (*SCRAPE_JOBS, "blackbox_https"):
        path = base / f"{job}.json"
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(
                path, "", "rendered file_sd JSON (govops render)", got=str(exc)
            ) from None
        for i, entry in enumerate(entries):
            labels = entry.get("labels") or {}
            if only is not None and labels.get("province") not in (None, *only):
                continue
            for target in entry.get("targets") or []:
                if job == "blackbox_https":
                    host, port = urlsplit(target).hostname or "", HTTPS
                else:
                    host, _, port_text = str(target).rpartition(":")
                    port = int(port_text)
                view.names.setdefault(host, f"prometheus ({path.name}[{i}])")
                h = by_name.get(host) or by_fqdn.get(host)
                if h is None:
                    continue  # the name check reports it
                for m in monitors_of(estate, labels.get("zone")):
                    if m.name != h.name:
                        why = f"{m.name} scrapes {job}"
                        view.flows.append(Flow(_one(m.ip), h.name, port, "tcp", why, "prometheus"))
    return view


# --- the prober ------------------------------------------------------------------------------


def prober_view(estate: Estate, only: set[str] | None) -> View:
    """The domain prober's configuration as the controller writes it: the names it calls, and
    from its monitor to every host answering a system's name."""
    from exporters.govops_prober.from_estate import config_from_estate

    config = config_from_estate(estate)
    view = View("prober")
    hosts = estate.hosts()
    for codename, target in config.provinces.items():
        if only is not None and codename not in only:
            continue
        zone = estate.provinces[codename].zone
        for sid, url in target.systems.items():
            name = urlsplit(url).hostname or url
            view.names.setdefault(name, f"prober ({codename}.systems.{sid})")
            behind = [h for h in hosts if h.province == codename and h.system == sid]
            for m in monitors_of(estate, zone):
                for h in behind:
                    why = f"{m.name} probes {sid}"
                    view.flows.append(Flow(_one(m.ip), h.name, HTTPS, "tcp", why, "prober"))
    for cid, url in config.counterparts.items():
        view.names.setdefault(urlsplit(url).hostname or url, f"prober (counterparts.{cid})")
    return view


# --- runbooks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunbookCall:
    name: str  # host in a URL, a host of a fabric step, or a group of a playbook's hosts
    kind: str  # "dns", "inventory" or "group"
    where: str  # runbook:step.role (province)
    port: int | None = None  # the URL's port, for a URL
    # kind "unresolved": an operation the adapter does not implement; which adapter it is.
    missing_from: str = ""


def runbook_calls(
    root: Path, estate: Estate, runbooks: Iterable[Path], only: set[str] | None
) -> list[RunbookCall]:
    """Every host and group the runbooks' steps call, rendered per province as the engine does:
    http URLs, fabric hosts, Prometheus' URL, and the groups of each ansible step's playbook."""
    from govops.runbook.context import load_environment, province_vars
    from govops.runbook.loader import load_runbook

    env = load_environment(estate.environment, root, estate.path.parent.parent)
    calls: list[RunbookCall] = []
    for path in runbooks:
        loaded = load_runbook(path, root)
        rb = loaded.runbook
        rel = _rel(path, root)
        mode = rb.settings.resolve
        if rb.settings.prometheus_url and "{{" not in rb.settings.prometheus_url:
            host = urlsplit(rb.settings.prometheus_url).hostname or ""
            calls.append(RunbookCall(host, mode, f"{rel}:settings.prometheus_url"))
        for codename in env.provinces:
            if only is not None and codename not in only:
                continue
            context = province_vars(env, env.provinces[codename], "check", "", rb.vars)
            for _, step in rb.steps():
                for role in ("action", "verify", "rollback"):
                    action = getattr(step, role)
                    where = f"{rel}:{step.id}.{role} ({codename})"
                    if action.executor == "operation":
                        calls.extend(_operation_calls(estate, action.args, codename, mode, where))
                        continue
                    calls.extend(
                        _calls_of(root, action.executor, action.args, context, mode, where)
                    )
    return calls


def _operation_calls(
    estate: Estate, args: dict[str, Any], province: str, mode: str, where: str
) -> list[RunbookCall]:
    """The host and port an operation step calls, as the estate's adapter resolves it; an
    operation the adapter lacks is one call of kind `unresolved` (per step, not province)."""
    from govops.adapters import ResolveError
    from govops.adapters.estate import estate_adapter, request_for

    kind = "systems" if args.get("system") else "counterparts"
    target = str(args.get("system") or args.get("counterpart"))
    operation = str(args.get("operation"))
    inputs = dict(args.get("inputs") or {})
    adapter = estate_adapter(estate, kind, target)
    if operation not in adapter.operations:
        step = where.rsplit(" (", 1)[0]
        return [
            RunbookCall(
                f"operation {target}.{operation}",
                "unresolved",
                step,
                missing_from=f"the {kind[:-1]}'s adapter ({adapter.vendor}: {adapter.interface})",
            )
        ]
    try:
        request = request_for(estate, kind, target, operation, inputs, province)
    except ResolveError as exc:
        raise InputError(
            where.split(":", 1)[0], where, "an operation step the adapter can resolve", got=str(exc)
        ) from None
    parts = urlsplit(request.url)
    port = parts.port or (HTTPS if parts.scheme == "https" else 80)
    return [RunbookCall(parts.hostname or request.url, mode, where, port)]


def _calls_of(
    root: Path, executor: str, args: dict[str, Any], context: dict[str, Any], mode: str, where: str
) -> list[RunbookCall]:
    from govops.runbook.templating import render

    if executor == "http" and isinstance(args.get("url"), str):
        url = render(args["url"], context)
        parts = urlsplit(url)
        port = parts.port or (HTTPS if parts.scheme == "https" else 80)
        return [RunbookCall(parts.hostname or url, mode, where, port)]
    if executor == "fabric":
        hosts = [render(str(h), context).rsplit(":", 1)[0] for h in args.get("hosts") or []]
        return [RunbookCall(h, "inventory", where) for h in hosts]
    if executor == "ansible" and isinstance(args.get("playbook"), str):
        playbook = root / render(args["playbook"], context)
        extra = {**(args.get("extra_vars") or {}), "province": context["province"]}
        extra["govops_cutover_province"] = context["province"]
        return [RunbookCall(g, "group", where) for g in playbook_groups(playbook, extra)]
    return []


_PATTERN_SPLIT = re.compile(r"[:,]")


def playbook_groups(playbook: Path, extra_vars: dict[str, Any]) -> list[str]:
    """The groups and hosts a playbook's plays target, with the runbook's extra vars (a
    missing playbook is a call to a group that cannot exist: named by its path)."""
    if not playbook.is_file():
        return [f"<playbook {playbook.name}>"]
    found: list[str] = []
    for pattern in _play_patterns(playbook):
        try:
            text = _template(pattern).render(**extra_vars)
        except jinja2.TemplateError:
            continue  # a pattern only Ansible can render: not ours to judge
        for part in _PATTERN_SPLIT.split(text.strip()):
            part = part.strip().lstrip("&!")
            if part and part not in ("all", "localhost") and "*" not in part:
                found.append(part)
    return found


@cache
def _play_patterns(playbook: Path) -> tuple[str, ...]:
    """Each play's `hosts:` (read once per check: every province calls the same playbooks)."""
    plays = read_yaml(playbook, ANSIBLE) or []  # Ansible's own tags (!vault) allowed
    return tuple(
        play["hosts"]
        for play in (plays if isinstance(plays, list) else [])
        if isinstance(play, dict) and isinstance(play.get("hosts"), str)
    )


@cache
def _template(pattern: str) -> jinja2.Template:
    return jinja2.Environment(autoescape=False).from_string(pattern)


def runbook_flows(estate: Estate, calls: Iterable[RunbookCall]) -> list[Flow]:
    """The runbook engine runs on the operators' controller (their network, `cloud.operators`):
    every URL it calls on the estate's own hosts is a flow from there."""
    operators = estate.cloud.operators if estate.cloud is not None else None
    if operators is None:
        return []
    hosts = estate.hosts()
    behind: dict[str, list[Host]] = {}
    for h in hosts:
        behind.setdefault(h.fqdn, []).append(h)
        behind.setdefault(h.name, []).append(h)
        if h.system is not None and h.province is not None:
            service = f"{h.province.replace('_', '-')}-{h.system}"
            for name in {service, estate.fqdn(service)} - {h.name, h.fqdn}:
                behind.setdefault(name, []).append(h)
    flows: dict[tuple[str, int], Flow] = {}
    for c in calls:
        if c.kind == "group" or c.port is None:
            continue
        for h in behind.get(c.name, []):
            why = f"runbook engine calls {c.name}"
            flows.setdefault(
                (h.name, c.port), Flow(operators, h.name, c.port, "tcp", why, "runbook")
            )
    return list(flows.values())


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


# --- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRule:
    name: str  # resource name
    group: str  # security group name
    protocol: str
    low: int
    high: int
    src: IPv4Network


@dataclass
class PlanView(View):
    records: dict[str, tuple[str, ...]] = field(default_factory=dict)  # DNS name → records
    rules: list[PlanRule] = field(default_factory=list)
    host_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # host → SGs
    stack_of: dict[str, str] = field(default_factory=dict)  # host → stack file


def plan_view(root: Path, env: str, only: set[str] | None) -> PlanView:
    """The Pulumi program run under mocks for each stack of the environment (the same runs as
    `govops plan`): instances, DNS records, security groups and their rules."""
    from govops.pulumi.cli import infra_importable

    infra_importable(root)
    from govops.pulumi.plan import platform_answers, read_stacks, run_stacks

    every = read_stacks(root, env)
    stacks = [s for s in every if only is None or s.province is None or s.province.codename in only]
    view = PlanView("plan")
    group_ids: dict[str, str] = {}
    for stack, run in run_stacks(stacks, platform_answers(every)):
        for r in run.registrations:
            kind = r.type.rsplit(":", 1)[-1]
            if kind == "Instance":
                name = str(r.inputs.get("name") or r.name)
                nets = r.inputs.get("networks") or [{}]
                ip = nets[0].get("fixedIpV4")
                view.hosts[name] = IPv4Address(ip) if ip else None
                view.host_groups[name] = tuple(str(g) for g in r.inputs.get("securityGroups") or [])
                view.stack_of[name] = stack.rel
            elif kind == "RecordSet":
                name = str(r.inputs.get("name") or "").rstrip(".")
                view.records[name] = tuple(str(x) for x in r.inputs.get("records") or [])
            elif kind == "SecGroup":
                group_ids[f"{r.name}-id"] = str(r.inputs.get("name") or r.name)
            elif kind == "SecGroupRule" and r.inputs.get("direction", "ingress") == "ingress":
                view.rules.append(
                    PlanRule(
                        name=r.name,
                        group=str(r.inputs.get("securityGroupId") or ""),
                        protocol=str(r.inputs.get("protocol") or "any"),
                        low=int(r.inputs.get("portRangeMin") or 1),
                        high=int(r.inputs.get("portRangeMax") or 65535),
                        src=IPv4Network(str(r.inputs.get("remoteIpPrefix") or "0.0.0.0/0")),
                    )
                )
    # Rules name their group by id (the mocks' id is the resource name + "-id").
    view.rules = [
        PlanRule(r.name, group_ids.get(r.group, r.group), r.protocol, r.low, r.high, r.src)
        for r in view.rules
    ]
    return view
