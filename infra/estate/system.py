"""`SystemTier`: one system's hosts in a province, and everything around them.

Per tier a security group (its rules from the catalog ports, see rules.py); per host an
instance at the fixed address the inventory already holds, a data volume and a DNS record;
for a system with public ports on its edge tier, a load balancer with a floating IP, a
listener, pool, members and health monitor per port. The province's database hosts (the
primary and its streaming standby) are a SystemTier too (system `db`, tier `db`), built from
the same code; their hosts are kept apart by a server group with the anti-affinity policy (a
hypervisor's loss must not take both), and they have no service name: which one is the
primary is a fact of the data (/etc/govops/db-role), not of DNS.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi
import pulumi_openstack as openstack

from infra.estate.config import DbSpec, HostSpec, MgmtSpec, NetworkSpec, PortSpec, SystemSpec
from infra.estate.labels import Labels
from infra.estate.rules import Rule, bastion_rules, db_rules, system_rules

HTTPS_PORT = 443
DNS_TTL = 300
ANTI_AFFINITY = "anti-affinity"  # Nova's hard policy: never two members on one hypervisor


@dataclass(frozen=True)
class Workload:
    """What a SystemTier builds, whether an application system or the database."""

    id: str  # system id, or "db"
    flavor: str
    volume_gb: int
    subnet: str  # the tier subnet the hosts sit in (app, data)
    host_tier: str  # the label of the hosts (e.g. front+app): they run every tier
    hosts: tuple[HostSpec, ...]
    rules: dict[str, list[Rule]]  # tier → ingress rules of its security group
    public_ports: tuple[PortSpec, ...]  # edge ports behind the load balancer
    edge_tier: str | None
    readiness: str | None
    anti_affinity: bool = False  # the hosts on distinct hypervisors (a Nova server group)
    service_name: bool = True  # replicas answer at the system's name (`hue-procedures`)


def system_workload(
    system: SystemSpec, network: NetworkSpec, mgmt: MgmtSpec | None = None
) -> Workload:
    return Workload(
        id=system.id,
        flavor=system.flavor,
        volume_gb=system.volume_gb,
        subnet="app",
        host_tier="+".join(system.tiers),
        hosts=system.hosts,
        rules=system_rules(system, network, mgmt),
        public_ports=system.public_ports,
        edge_tier=system.edge_tier,
        readiness=system.readiness,
    )


def db_workload(
    db: DbSpec,
    network: NetworkSpec,
    mgmt: MgmtSpec | None = None,
    backup: HostSpec | None = None,
) -> Workload:
    """The primary and its standby: the same flavor, each its own volume of the same size."""
    return Workload(
        id="db",
        flavor=db.flavor,
        volume_gb=db.volume_gb,
        subnet="data",
        host_tier="db",
        hosts=db.hosts,
        rules={"db": db_rules(network, mgmt, db, backup)},
        public_ports=(),
        edge_tier=None,
        readiness=None,
        anti_affinity=True,
        service_name=False,
    )


def bastion_workload(mgmt: MgmtSpec) -> Workload:
    """The province's jump host in the mgmt subnet."""
    assert mgmt.bastion is not None and mgmt.bastion_flavor is not None
    return Workload(
        id="bastion",
        flavor=mgmt.bastion_flavor,
        volume_gb=mgmt.bastion_volume_gb,
        subnet="mgmt",
        host_tier="mgmt",
        hosts=(mgmt.bastion,),
        rules={"mgmt": bastion_rules(mgmt)},
        public_ports=(),
        edge_tier=None,
        readiness=None,
    )


@dataclass(frozen=True)
class Shared:
    """The province-wide things every SystemTier attaches to."""

    label: str  # province DNS label: the prefix of every name
    labels: Labels  # province and environment set; system and tier per resource
    network_id: pulumi.Output[str]
    subnet_ids: dict[str, pulumi.Output[str]]
    ssh_group: pulumi.Output[str]  # name of the security group admitting SSH from mgmt
    keypair: pulumi.Output[str]
    image: pulumi.Output[str]
    zone_id: pulumi.Output[str]
    zone_name: pulumi.Output[str]
    external_network: str
    volume_type: str | None


class SystemTier(pulumi.ComponentResource):
    addresses: dict[str, pulumi.Output[str]]  # host → the address the cloud gave it
    vip: pulumi.Output[str] | None  # the load balancer's private VIP
    public_ip: pulumi.Output[str] | None  # its floating IP

    def __init__(
        self,
        name: str,
        work: Workload,
        shared: Shared,
        user_data: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("govops:estate:SystemTier", name, None, opts)
        self._child = pulumi.ResourceOptions(parent=self)
        self._name = name
        self._shared = shared
        self._labels = replace(shared.labels, system=work.id, tier=work.host_tier)
        groups = {tier: self._security_group(tier, rules) for tier, rules in work.rules.items()}
        group_names = [g.name for g in groups.values()] + [shared.ssh_group]
        hints = None
        if work.anti_affinity and len(work.hosts) > 1:
            spread = openstack.compute.ServerGroup(
                f"{name}-anti-affinity",
                name=f"{name}-anti-affinity",
                policies=ANTI_AFFINITY,
                opts=self._child,
            )
            hints = [openstack.compute.InstanceSchedulerHintArgs(group=spread.id)]
        self.addresses = {}
        for host in work.hosts:
            self.addresses[host.name] = self._host(host, work, group_names, user_data, hints)
        self.vip = self.public_ip = None
        if work.public_ports and work.edge_tier is not None:
            self._load_balancer(work, groups[work.edge_tier])
        if len(work.hosts) > 1 and work.service_name:
            # The system's service name (`hue-procedures`), which the prober and the runbooks
            # call: its load balancer where it has one, else every replica (round robin).
            service: list[pulumi.Input[str]] = (
                [self.vip] if self.vip is not None else list(self.addresses.values())
            )
            self._record(f"{name}-service", name, service, self._labels)
        self.register_outputs({"addresses": self.addresses, "vip": self.vip})

    def _security_group(self, tier: str, rules: list[Rule]) -> openstack.networking.SecGroup:
        labels = self._labels.tier_of(tier)
        group = openstack.networking.SecGroup(
            f"{self._name}-{tier}",
            name=f"{self._name}-{tier}",
            description=f"{self._name} {tier} tier",
            tags=labels.tags(),
            opts=self._child,
        )
        for rule in rules:
            openstack.networking.SecGroupRule(
                f"{self._name}-{tier}-{rule.key}",
                direction="ingress",
                ethertype="IPv4",
                protocol=rule.protocol,
                port_range_min=rule.port,
                port_range_max=rule.port,
                remote_ip_prefix=rule.cidr,
                security_group_id=group.id,
                description=labels.description(f"{rule.protocol}/{rule.port} from {rule.reach}"),
                opts=self._child,
            )
        return group

    def _host(
        self,
        host: HostSpec,
        work: Workload,
        group_names: list[pulumi.Output[str]],
        user_data: pulumi.Input[str] | None,
        hints: list[openstack.compute.InstanceSchedulerHintArgs] | None = None,
    ) -> pulumi.Output[str]:
        s, labels = self._shared, self._labels
        instance = openstack.compute.Instance(
            host.name,
            name=host.name,
            flavor_name=work.flavor,
            image_name=s.image,
            key_pair=s.keypair,
            security_groups=group_names,
            # The fixed address is the inventory's: Ansible reaches the host where it expects.
            networks=[
                openstack.compute.InstanceNetworkArgs(uuid=s.network_id, fixed_ip_v4=str(host.ip))
            ],
            user_data=user_data,
            scheduler_hints=hints,
            tags=labels.tags(),
            metadata=labels.metadata(),
            opts=self._child,
        )
        volume = openstack.blockstorage.Volume(
            f"{host.name}-data",
            name=f"{host.name}-data",
            size=work.volume_gb,
            # Cinder encrypts by volume type: the stack config names the encrypted one.
            volume_type=s.volume_type,
            description=f"data of {host.name}",
            metadata=labels.metadata(),
            opts=self._child,
        )
        openstack.compute.VolumeAttach(
            f"{host.name}-data",
            instance_id=instance.id,
            volume_id=volume.id,
            opts=self._child,
        )
        self._record(host.name, host.name, [str(host.ip)], labels)
        return instance.access_ip_v4

    def _record(
        self, resource: str, host: str, records: list[pulumi.Input[str]], labels: Labels
    ) -> None:
        openstack.dns.RecordSet(
            resource,
            zone_id=self._shared.zone_id,
            name=self._shared.zone_name.apply(lambda zone: f"{host}.{zone}."),
            type="A",
            ttl=DNS_TTL,
            records=records,
            description=labels.description(f"address of {host}"),
            opts=self._child,
        )

    def _load_balancer(self, work: Workload, edge: openstack.networking.SecGroup) -> None:
        s = self._shared
        labels = self._labels.tier_of(work.edge_tier or "front")
        lb = openstack.loadbalancer.LoadBalancer(
            self._name,
            name=self._name,
            vip_subnet_id=s.subnet_ids["public"],
            security_group_ids=[edge.id],
            tags=labels.tags(),
            opts=self._child,
        )
        fip = openstack.networking.FloatingIp(
            self._name,
            pool=s.external_network,
            port_id=lb.vip_port_id,
            description=f"public address of {self._name}",
            tags=labels.tags(),
            opts=self._child,
        )
        for port in work.public_ports:
            self._listener(lb, port, work, labels)
        # `procedures.hue.gov.example`: the name citizens use, on the public address.
        self._record(f"{self._name}-public", f"{work.id}.{s.label}", [fip.address], labels)
        self.vip, self.public_ip = lb.vip_address, fip.address

    def _listener(
        self,
        lb: openstack.loadbalancer.LoadBalancer,
        port: PortSpec,
        work: Workload,
        labels: Labels,
    ) -> None:
        name = f"{self._name}-{port.protocol}-{port.port}"
        # TLS passes through to nginx on the hosts (TCP), media streams are UDP.
        protocol = port.protocol.upper()
        listener = openstack.loadbalancer.Listener(
            name,
            name=name,
            loadbalancer_id=lb.id,
            protocol=protocol,
            protocol_port=port.port,
            tags=labels.tags(),
            opts=self._child,
        )
        pool = openstack.loadbalancer.Pool(
            name,
            name=name,
            listener_id=listener.id,
            protocol=protocol,
            lb_method="ROUND_ROBIN",
            tags=labels.tags(),
            opts=self._child,
        )
        for host in work.hosts:
            openstack.loadbalancer.Member(
                f"{host.name}-{port.protocol}-{port.port}",
                pool_id=pool.id,
                address=str(host.ip),
                protocol_port=port.port,
                subnet_id=self._shared.subnet_ids[work.subnet],
                tags=labels.tags(),
                opts=self._child,
            )
        # The readiness path over HTTPS where the port is TLS; a UDP pool can only be
        # probed by UDP-CONNECT (its hosts' readiness is watched on the TCP pool).
        http = port.protocol == "tcp"
        openstack.loadbalancer.Monitor(
            name,
            pool_id=pool.id,
            type=("HTTPS" if port.port == HTTPS_PORT else "HTTP") if http else "UDP-CONNECT",
            url_path=(work.readiness or "/") if http else None,
            http_method="GET" if http else None,
            expected_codes="200" if http else None,
            delay=10,
            timeout=5,
            max_retries=3,
            opts=self._child,
        )
