"""`govops estate check`: every view of the estate against the others, one line a disagreement.

Hosts: the registry, the rendered inventory and (for a cloud environment) the Pulumi plan
name the same hosts at the same addresses. Names: every DNS name or host the prober,
Prometheus, the inventory's jump hosts and the runbooks call has a record in the plan (a
cloud environment) or is a host of the inventory (the lab resolves host names). Flows: every
flow the registry, Prometheus and the prober need is admitted by a security-group rule of the
plan, and every rule admits some needed flow. Runbooks: every group an ansible step's
playbook targets exists in the inventory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from govops.errors import InputError
from govops.estate.views import (
    Flow,
    PlanRule,
    PlanView,
    RunbookCall,
    View,
    inventory_view,
    plan_view,
    prober_view,
    prometheus_view,
    registry_view,
    runbook_calls,
    runbook_flows,
)
from govops.registry.estate import Estate


@dataclass(frozen=True, order=True)
class Disagreement:
    what: str
    expected_by: str
    missing_from: str

    def __str__(self) -> str:
        return f"{self.what}: expected by {self.expected_by}; missing from {self.missing_from}"


@dataclass
class Report:
    environment: str
    disagreements: list[Disagreement]
    counts: dict[str, int]  # what was compared, for the summary line

    @property
    def agrees(self) -> bool:
        return not self.disagreements


def runbooks_of(root: Path, estate: Estate) -> list[Path]:
    """The runbooks this environment runs: the estate's `runbooks:`, else every runbook."""
    if estate.runbooks:
        for i, rel in enumerate(estate.runbooks):
            if not (root / rel).is_file():
                raise InputError(estate.path, f"runbooks[{i}]", "a runbook file", got=rel)
        return [root / p for p in estate.runbooks]
    return sorted((root / "runbooks").glob("*.yml"))


def check(
    root: Path,
    estate: Estate,
    provinces: Sequence[str] = (),
    runbooks: Sequence[Path] | None = None,
) -> Report:
    """Compare every view; `provinces` limits the check to those provinces (and the hosts
    without a province), e.g. for a quick run on one."""
    for p in provinces:
        if p not in estate.provinces:
            raise InputError(
                estate.path, "--province", f"a province of the {estate.environment} estate", got=p
            )
    only = set(provinces) or None
    env = estate.environment
    registry = registry_view(estate, only)
    inventory = inventory_view(root, env, only, estate)
    prometheus = prometheus_view(root, env, estate, only)
    prober = prober_view(estate, only)
    calls = runbook_calls(
        root, estate, runbooks if runbooks is not None else runbooks_of(root, estate), only
    )
    plan = plan_view(root, env, only) if estate.cloud is not None else None

    found: list[Disagreement] = []
    found += _hosts(registry, inventory)
    if plan is not None:
        found += _hosts(registry, plan)
    external = _external_names(estate)
    callers: dict[str, str] = {}
    for view in (prometheus, prober, inventory):
        for name, by in view.names.items():
            callers.setdefault(name, by)
    for c in calls:
        if c.kind not in ("group", "unresolved"):
            callers.setdefault(c.name, f"runbook {c.where}")
    found += [
        Disagreement(c.name, f"runbook {c.where}", c.missing_from)
        for c in calls
        if c.kind == "unresolved"
    ]
    found += _names(estate, callers, inventory, plan, external, calls)
    found += _groups(calls, inventory)
    if plan is not None:
        needed = [*registry.flows, *prometheus.flows, *prober.flows]
        needed += runbook_flows(estate, calls)
        found += _flows(needed, registry, plan)
    counts = {
        "hosts": len(registry.hosts),
        "names": len(callers),
        "flows": len(registry.flows) + len(prometheus.flows) + len(prober.flows),
        "runbook calls": len(calls),
    }
    if plan is not None:
        counts["rules"] = len(plan.rules)
    return Report(env, sorted(set(found)), counts)


def _hosts(expected: View, other: View) -> list[Disagreement]:
    out: list[Disagreement] = []
    for name, ip in expected.hosts.items():
        if name not in other.hosts:
            out.append(Disagreement(f"host {name} ({ip})", expected.name, other.name))
        elif other.hosts[name] != ip:
            got = other.hosts[name]
            out.append(
                Disagreement(f"host {name} at {ip}", expected.name, f"{other.name} (has {got})")
            )
    for name, ip in other.hosts.items():
        if name not in expected.hosts:
            out.append(Disagreement(f"host {name} ({ip})", other.name, expected.name))
    return out


def _external_names(estate: Estate) -> set[str]:
    """The counterparts' names where the environment does not host them: the government's,
    resolved by its own DNS, not the estate's to create."""
    hosted = {h.name for h in estate.hosts() if "national" in h.groups}
    names = set()
    for entry in estate.counterparts.values():
        host = urlsplit(entry.url).hostname or ""
        if host not in hosted and host not in {estate.fqdn(h) for h in hosted}:
            names.add(host)
    return names


def _names(
    estate: Estate,
    callers: dict[str, str],
    inventory: View,
    plan: PlanView | None,
    external: set[str],
    calls: Iterable[RunbookCall],
) -> list[Disagreement]:
    out: list[Disagreement] = []
    inventory_only = {c.name for c in calls if c.kind == "inventory"}
    for name, by in sorted(callers.items()):
        if name in external:
            continue
        if plan is not None and name not in inventory_only:
            # A bare host name resolves through the hosts' search domain.
            fqdn = name if "." in name or not estate.domain else estate.fqdn(name)
            if fqdn not in plan.records:
                out.append(Disagreement(f"DNS name {fqdn}", by, "plan (no DNS record)"))
            continue
        if name not in inventory.hosts:
            out.append(Disagreement(f"host name {name}", by, "inventory"))
    if plan is not None:
        # A host's record points at the host's address.
        for host, ip in inventory.hosts.items():
            records = plan.records.get(estate.fqdn(host))
            if records is not None and ip is not None and str(ip) not in records:
                out.append(
                    Disagreement(
                        f"DNS record {estate.fqdn(host)} → {ip}",
                        "inventory",
                        f"plan (has {', '.join(records)})",
                    )
                )
    return out


def _groups(calls: Iterable[RunbookCall], inventory: View) -> list[Disagreement]:
    return [
        Disagreement(f"group {c.name}", f"runbook {c.where}", "inventory")
        for c in calls
        if c.kind == "group" and c.name not in inventory.groups and c.name not in inventory.hosts
    ]


def _flows(needed: list[Flow], registry: View, plan: PlanView) -> list[Disagreement]:
    out: list[Disagreement] = []
    by_group: dict[str, list[PlanRule]] = {}
    for rule in plan.rules:
        by_group.setdefault(rule.group, []).append(rule)
    used: set[str] = set()
    for flow in needed:
        if flow.dst not in plan.host_groups:
            continue  # the host check reports the missing host
        admitting = [
            r
            for g in plan.host_groups[flow.dst]
            for r in by_group.get(g, [])
            if r.protocol in (flow.protocol, "any")
            and r.low <= flow.port <= r.high
            and flow.src.subnet_of(r.src)
        ]
        if not admitting:
            where = f"plan ({plan.stack_of.get(flow.dst, '?')}: no security-group rule)"
            out.append(Disagreement(flow.describe(), flow.expected_by, where))
        used.update(r.name for r in admitting)
    for rule in plan.rules:
        if rule.name not in used:
            admits = f"{rule.protocol}/{rule.low}-{rule.high} from {rule.src} to {rule.group}"
            what = f"rule {rule.name} ({admits})"
            out.append(Disagreement(what, "plan", "every view's flows (nothing needs it)"))
    return out
