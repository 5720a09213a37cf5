"""Who may reach what: the catalog's ports in a stack config → ingress rules.

A pure function of the config, so the unit tests check each rule without building anything,
and the components build exactly these rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.estate.config import NetworkSpec, SystemSpec

ANYWHERE = "0.0.0.0/0"
SSH_PORT = 22
DB_PORT = 5432


@dataclass(frozen=True)
class Rule:
    tier: str  # the security group it belongs to
    port: int
    protocol: str
    cidr: str
    reach: str  # why: public, province, national, mgmt, app

    @property
    def key(self) -> str:
        """Unique within its tier: the resource name's suffix."""
        return f"{self.protocol}-{self.port}-{self.reach}"


def system_rules(system: SystemSpec, network: NetworkSpec) -> dict[str, list[Rule]]:
    """Ingress rules of each tier's security group (a tier with `local` ports gets none)."""
    rules: dict[str, list[Rule]] = {tier: [] for tier in system.tiers}
    for p in system.ports:
        if p.reach == "local":
            continue  # loopback only: nginx on the same host proxies to it
        if p.reach == "public":
            cidr = ANYWHERE  # config parsing allows `public` on the edge tier only
        elif p.reach == "province":
            cidr = str(network.cidr)
        else:
            cidr = str(network.national)
        rules[p.tier].append(Rule(p.tier, p.port, p.protocol, cidr, p.reach))
    return rules


def db_rules(network: NetworkSpec) -> list[Rule]:
    """PostgreSQL only from the province's app subnet, where the systems run."""
    return [Rule("db", DB_PORT, "tcp", str(network.subnets["app"]), "app")]


def ssh_rules(network: NetworkSpec) -> list[Rule]:
    """SSH only from the management subnet (the Ansible controller and bastion)."""
    return [Rule("mgmt", SSH_PORT, "tcp", str(network.subnets["mgmt"]), "mgmt")]
