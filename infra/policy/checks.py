"""The estate's policies as plain functions of (resource type, inputs, context).

`pulumi preview --policy-pack infra/policy` runs them through the pack (pack.py) on what
the engine is about to create; `govops plan` and the unit tests run the very same functions
on what the program registered under mocks. Inputs use the engine's wire names (camelCase:
`remoteIpPrefix`, `volumeType`), which is what both see.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any

from infra.estate.labels import LABEL_FIELDS, LABEL_KEYS, UNLABELLED, labels_in

SEC_GROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"
SUBNET = "openstack:networking/subnet:Subnet"
VOLUME = "openstack:blockstorage/volume:Volume"
INSTANCE = "openstack:compute/instance:Instance"
SERVER_GROUP = "openstack:compute/serverGroup:ServerGroup"
# Ports that must never be reachable from outside the private ranges.
ADMIN_PORTS = {22: "SSH", 5432: "PostgreSQL", 8432: "pgBackRest"}


@dataclass(frozen=True)
class StackContext:
    """What a policy needs to know about the stack's cloud (from its config)."""

    volume_type: str | None = None  # the encrypted volume type (govops:volumeType)
    encryption_supported: bool = True  # govops:volumeEncryption


Check = Callable[[str, Mapping[str, Any], StackContext], list[str]]


def required_labels(typ: str, props: Mapping[str, Any], ctx: StackContext) -> list[str]:
    """Every OpenStack resource that can carry labels carries province, system, tier and
    environment; a type the label table does not know is refused until someone adds it."""
    del ctx
    if not typ.startswith("openstack:") or typ in UNLABELLED:
        return []
    fields = LABEL_FIELDS.get(typ)
    if fields is None:
        return [f"{typ} is in neither LABEL_FIELDS nor UNLABELLED (infra/estate/labels.py)"]
    problems = []
    for field in fields:
        found = labels_in(field, props.get(field))
        missing = [k for k in LABEL_KEYS if not found.get(k)]
        if missing:
            problems.append(f"{field} lack {', '.join(missing)}")
    return problems


def no_public_admin_ingress(typ: str, props: Mapping[str, Any], ctx: StackContext) -> list[str]:
    """No rule admits SSH (22) or PostgreSQL (5432) from beyond the private ranges."""
    del ctx
    if typ != SEC_GROUP_RULE or props.get("direction") != "ingress":
        return []
    if str(props.get("protocol") or "any").lower() not in ("tcp", "6", "any", ""):
        return []
    prefix = props.get("remoteIpPrefix")
    if prefix is None and props.get("remoteGroupId"):
        return []  # from members of another security group: inside the project
    # No prefix and no remote group means any source at all.
    source = str(prefix) if prefix else "0.0.0.0/0"
    try:
        private = ip_network(source, strict=False).is_private
    except ValueError:
        return [f"remoteIpPrefix {source!r} is not a network"]
    if private:
        return []
    low = int(props.get("portRangeMin") or 1)
    high = int(props.get("portRangeMax") or 65535)
    return [
        f"admits {what} (tcp/{port}) from {source}"
        for port, what in ADMIN_PORTS.items()
        if low <= port <= high
    ]


def private_subnets(typ: str, props: Mapping[str, Any], ctx: StackContext) -> list[str]:
    """Subnets use private (RFC 1918) ranges only: public addresses come as floating IPs."""
    del ctx
    if typ != SUBNET:
        return []
    cidr = str(props.get("cidr") or "")
    try:
        private = ip_network(cidr, strict=False).is_private
    except ValueError:
        return [f"cidr {cidr!r} is not a network"]
    return [] if private else [f"cidr {cidr} is not a private range"]


def encrypted_volumes(typ: str, props: Mapping[str, Any], ctx: StackContext) -> list[str]:
    """Where the cloud encrypts volumes (by volume type), every volume uses that type."""
    if typ != VOLUME or not ctx.encryption_supported:
        return []
    got = props.get("volumeType")
    if ctx.volume_type is None:
        return ["the cloud encrypts volumes but the stack names no volume type (govops:volumeType)"]
    if got != ctx.volume_type:
        return [f"volumeType {got!r} is not the encrypted type {ctx.volume_type!r}"]
    return []


FLOW_POLICY = "flow-table"


def flow_table(
    rules: Mapping[str, Mapping[str, Any]], table: Mapping[str, Any] | None
) -> list[tuple[str, str]]:
    """Every flow of the stack's flow table (infra/estate/rules.py) has exactly one rule, as
    the table says it, and no rule lacks a flow. `rules`: security-group rule name → its
    inputs (wire names); `table`: flow name → Rule (None: a stack without a table).
    Returns (resource, message) pairs."""
    if table is None:
        return []
    problems: list[tuple[str, str]] = []
    for name, flow in table.items():
        props = rules.get(name)
        if props is None:
            problems.append(
                (name, f"flow {flow.protocol}/{flow.port} from {flow.cidr} has no rule")
            )
            continue
        got = (
            str(props.get("protocol")),
            int(props.get("portRangeMin") or 0),
            int(props.get("portRangeMax") or 0),
            str(props.get("remoteIpPrefix")),
        )
        want = (flow.protocol, flow.port, flow.port, flow.cidr)
        if got != want:
            problems.append((name, f"admits {got} where its flow says {want}"))
    for name in rules:
        if name not in table:
            problems.append((name, "a rule without a flow in the flow table"))
    return problems


STANDBY_POLICY = "db-standby"
BACKUP_POLICY = "db-backup"
BACKUP_PORT = 8432


@dataclass(frozen=True)
class Resource:
    """What a stack policy sees of a resource (the engine's wire names)."""

    type: str
    name: str
    props: Mapping[str, Any]
    id: str | None = None  # known under the plan's mocks (`<name>-id`), not in a preview


def db_standby(resources: list[Resource]) -> list[tuple[str, str]]:
    """A stack with a database server has two (the primary and its streaming standby), each
    placed by a server group whose policy is anti-affinity: never both on one hypervisor."""
    db = [r for r in resources if r.type == INSTANCE and _system(r) == "db"]
    if not db:
        return []
    spread = [r for r in resources if r.type == SERVER_GROUP and _anti_affinity(r.props)]
    ids = {r.id for r in spread if r.id is not None}
    problems: list[tuple[str, str]] = []
    if len(db) < 2:
        problems.append((db[0].name, "a database server without a standby"))
    elif not spread:
        problems.append((db[0].name, "no server group with the anti-affinity policy"))
    for r in db if len(db) > 1 else []:
        hints = r.props.get("schedulerHints") or [{}]
        group = hints[0].get("group") if isinstance(hints[0], Mapping) else None
        if not group:
            problems.append((r.name, "no server group in its scheduler hints"))
        elif isinstance(group, str) and ids and group not in ids:
            problems.append((r.name, f"scheduler hint group {group!r} is not anti-affinity"))
    return problems


def db_backup(resources: list[Resource]) -> list[tuple[str, str]]:
    """A stack with a database server admits its zone's backup host on pgBackRest's port:
    every zone with provinces has a backup host, and each province's databases reach it."""
    db = [r for r in resources if r.type == INSTANCE and _system(r) == "db"]
    rules = [
        r
        for r in resources
        if r.type == SEC_GROUP_RULE
        and int(r.props.get("portRangeMin") or 0) == BACKUP_PORT
        and str(r.props.get("remoteIpPrefix") or "").endswith("/32")
    ]
    if db and not rules:
        return [(db[0].name, f"no backup host admitted on tcp/{BACKUP_PORT} (govops:backup)")]
    return []


def _system(r: Resource) -> str | None:
    metadata = r.props.get("metadata")
    return str(metadata.get("system")) if isinstance(metadata, Mapping) else None


def _anti_affinity(props: Mapping[str, Any]) -> bool:
    policies = props.get("policies")
    found = policies if isinstance(policies, list) else [policies]
    return "anti-affinity" in found


StackCheck = Callable[[list[Resource]], list[tuple[str, str]]]
STACK_POLICIES: tuple[tuple[str, str, StackCheck], ...] = (
    (
        STANDBY_POLICY,
        "Every database server has a standby, kept apart by an anti-affinity server group",
        db_standby,
    ),
    (BACKUP_POLICY, "Every province's databases admit their zone's backup host", db_backup),
)


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    check: Check


POLICIES = (
    Policy(
        "required-labels", "Resources carry province, system, tier, environment", required_labels
    ),
    Policy(
        "no-public-admin-ingress",
        "No SSH (22), PostgreSQL (5432) or pgBackRest (8432) ingress from public addresses",
        no_public_admin_ingress,
    ),
    Policy("private-subnets", "Subnets use private address ranges only", private_subnets),
    Policy(
        "encrypted-volumes",
        "Volumes use the encrypted volume type where the cloud supports it",
        encrypted_volumes,
    ),
)


@dataclass(frozen=True)
class Violation:
    policy: str
    resource: str  # the resource's logical name
    type: str
    message: str

    def __str__(self) -> str:
        return f"{self.resource} ({self.type}): {self.policy}: {self.message}"


def evaluate(typ: str, name: str, props: Mapping[str, Any], ctx: StackContext) -> list[Violation]:
    return [
        Violation(policy.name, name, typ, message)
        for policy in POLICIES
        for message in policy.check(typ, props, ctx)
    ]
