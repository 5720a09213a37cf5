"""Who may reach what: the estate's flow table, from a stack config.

A pure function of the config, so the unit tests check each rule without building anything,
the components build exactly these rules (one security-group rule per flow, named by it),
and the policy pack holds the program's rules against the same table (`flow_table`).

Flows of a province: the catalog's ports (anyone, the province, the national range), its
systems → its database, its zone's Prometheus → every exporter (node 9100 everywhere,
nginx 9113 on the systems, PostgreSQL 9187 on the database) and every system's front (443:
blackbox_exporter and the domain prober), its bastion → SSH everywhere, the operators →
its bastion and every system's front (the cutover engine's HTTP steps), its two database
hosts → each other's PostgreSQL (streaming replication: either may be the primary after a
failover), its zone's backup host → pgBackRest's TLS server (8432) on both. Flows of the
platform: the operators → the national bastion, that bastion → SSH on the other national
hosts, the zones' Prometheus → the national hosts' node exporter (a backup host: its zone's
only), the national Prometheus → each zone's (federation), each database host of a zone →
its backup host's pgBackRest (WAL archiving). Nothing else is admitted; egress (LGSP →
the national counterparts, the systems → the national portal) is the cloud's default.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.estate.config import (
    DbSpec,
    HostSpec,
    MgmtSpec,
    NationalSpec,
    NetworkSpec,
    ProvinceSpec,
    SystemSpec,
)

ANYWHERE = "0.0.0.0/0"
SSH_PORT = 22
DB_PORT = 5432
BACKUP_PORT = 8432  # pgBackRest's TLS server, on the database hosts and the backup hosts
HTTPS_PORT = 443
PROMETHEUS_PORT = 9090
NODE_EXPORTER, NGINX_EXPORTER, POSTGRES_EXPORTER = 9100, 9113, 9187


@dataclass(frozen=True)
class Rule:
    tier: str  # the security group it belongs to, within its component
    port: int
    protocol: str
    cidr: str
    reach: str  # why: public, province, national, app, bastion, monitor, operators, federation,
    # primary, standby (replication), backup, and a database host's name (to its backup host)

    @property
    def key(self) -> str:
        """Unique within its tier: the resource name's suffix."""
        return f"{self.protocol}-{self.port}-{self.reach}"


def _one(ip: object) -> str:
    return f"{ip}/32"


def system_rules(
    system: SystemSpec, network: NetworkSpec, mgmt: MgmtSpec | None = None
) -> dict[str, list[Rule]]:
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
    if mgmt is not None:
        # The zone's Prometheus: blackbox_exporter and the prober on the front, and nginx's
        # exporter, both on the edge tier where nginx listens.
        monitor = _one(mgmt.monitor.ip)
        edge = rules.setdefault(system.edge_tier, [])
        edge.append(Rule(system.edge_tier, HTTPS_PORT, "tcp", monitor, "monitor"))
        edge.append(Rule(system.edge_tier, NGINX_EXPORTER, "tcp", monitor, "monitor"))
        if mgmt.operators is not None:
            # The cutover engine (runbooks' HTTP steps) runs on the operators' controller.
            edge.append(Rule(system.edge_tier, HTTPS_PORT, "tcp", str(mgmt.operators), "operators"))
    return rules


def db_rules(
    network: NetworkSpec,
    mgmt: MgmtSpec | None = None,
    db: DbSpec | None = None,
    backup: HostSpec | None = None,
) -> list[Rule]:
    """PostgreSQL from the province's app subnet, where the systems run, and from the other
    database host (replication; the group holds both, so each admits its peer); its exporter
    from the zone's Prometheus; pgBackRest's TLS server from the zone's backup host."""
    rules = [Rule("db", DB_PORT, "tcp", str(network.subnets["app"]), "app")]
    if db is not None and db.standby is not None:
        rules.append(Rule("db", DB_PORT, "tcp", _one(db.host.ip), "primary"))
        rules.append(Rule("db", DB_PORT, "tcp", _one(db.standby.ip), "standby"))
    if mgmt is not None:
        rules.append(Rule("db", POSTGRES_EXPORTER, "tcp", _one(mgmt.monitor.ip), "monitor"))
    if backup is not None:
        rules.append(Rule("db", BACKUP_PORT, "tcp", _one(backup.ip), "backup"))
    return rules


def ssh_rules(network: NetworkSpec, mgmt: MgmtSpec | None = None) -> list[Rule]:
    """Every host of the province: SSH from its bastion (without one, from the management
    subnet), node_exporter from the zone's Prometheus."""
    if mgmt is None:
        return [Rule("mgmt", SSH_PORT, "tcp", str(network.subnets["mgmt"]), "mgmt")]
    rules = []
    if mgmt.bastion is not None:
        rules.append(Rule("mgmt", SSH_PORT, "tcp", _one(mgmt.bastion.ip), "bastion"))
    rules.append(Rule("mgmt", NODE_EXPORTER, "tcp", _one(mgmt.monitor.ip), "monitor"))
    return rules


def bastion_rules(mgmt: MgmtSpec) -> list[Rule]:
    """The bastion: SSH from the operators' network only."""
    if mgmt.operators is None:
        return []
    return [Rule("mgmt", SSH_PORT, "tcp", str(mgmt.operators), "operators")]


def province_flows(spec: ProvinceSpec) -> dict[str, Rule]:
    """The province's flow table: security-group rule resource name → its rule."""
    label, mgmt = spec.label, spec.mgmt
    table: dict[str, Rule] = {}
    for rule in ssh_rules(spec.network, mgmt):
        table[f"{label}-ssh-{rule.key}"] = rule
    for sid, system in spec.systems.items():
        for tier, rules in system_rules(system, spec.network, mgmt).items():
            for rule in rules:
                table[f"{label}-{sid}-{tier}-{rule.key}"] = rule
    for rule in db_rules(spec.network, mgmt, spec.db, spec.backup):
        table[f"{label}-db-db-{rule.key}"] = rule
    if mgmt is not None and mgmt.bastion is not None:
        for rule in bastion_rules(mgmt):
            table[f"{label}-bastion-mgmt-{rule.key}"] = rule
    return table


def national_rules(national: NationalSpec) -> dict[str, list[Rule]]:
    """The platform's hosts by name → their ingress rules (see the module docstring)."""
    bastion = next((h for h in national.hosts if h.role == "bastion"), None)
    zone_monitors = [h for h in national.hosts if h.role == "zone-monitor"]
    scrapers = zone_monitors or [h for h in national.hosts if h.role == "monitor"]
    rules: dict[str, list[Rule]] = {}
    for h in national.hosts:
        mine: list[Rule] = []
        if h.role == "bastion" and national.operators is not None:
            mine.append(Rule("mgmt", SSH_PORT, "tcp", str(national.operators), "operators"))
        if bastion is not None and h is not bastion:
            mine.append(Rule("mgmt", SSH_PORT, "tcp", _one(bastion.ip), "bastion"))
        # Hosts without a zone are scraped by every zone's server; a zone's, by its own.
        if h.role != "zone-monitor":
            for s in scrapers:
                if s is not h and (h.zone is None or s.zone in (None, h.zone)):
                    mine.append(Rule("mgmt", NODE_EXPORTER, "tcp", _one(s.ip), f"monitor-{s.name}"))
        if h.role == "zone-monitor":
            for m in (m for m in national.hosts if m.role == "monitor"):
                mine.append(Rule("mgmt", PROMETHEUS_PORT, "tcp", _one(m.ip), "federation"))
        for client in h.clients:  # a backup host: its zone's database hosts archive WAL
            mine.append(Rule("mgmt", BACKUP_PORT, "tcp", _one(client.ip), client.name))
        rules[h.name] = mine
    return rules


def platform_flows(national: NationalSpec | None) -> dict[str, Rule]:
    """The platform's flow table: rule resource name → rule."""
    if national is None:
        return {}
    return {
        f"{host}-{rule.key}": rule
        for host, rules in national_rules(national).items()
        for rule in rules
    }
