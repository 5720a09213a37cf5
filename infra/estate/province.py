"""`ProvinceEstate`: one province on the government cloud.

The province's network with one subnet per tier (public, app, data, mgmt), a router to the
external network, the operators' keypair, a security group admitting SSH from the mgmt
subnet only, then one SystemTier per system and one for the database hosts (the primary
and its standby).
"""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from typing import Any

import pulumi
import pulumi_openstack as openstack

from infra.estate.config import SUBNET_TIERS, ProvinceSpec
from infra.estate.labels import Labels
from infra.estate.platform import Platform
from infra.estate.rules import ssh_rules
from infra.estate.system import (
    Shared,
    SystemTier,
    bastion_workload,
    db_workload,
    system_workload,
)

# Hosts sit from the 10th address of their subnet (govops.registry.estate.HOST_OFFSET):
# DHCP may hand out only the addresses below, so it never takes a host's fixed address.
HOST_OFFSET = 10
FIXED_SUBNETS = ("app", "data", "mgmt")


class ProvinceEstate(pulumi.ComponentResource):
    systems: dict[str, SystemTier]  # by system id, and "db"
    hosts: pulumi.Output[dict[str, Any]]  # host name → private address
    vips: pulumi.Output[dict[str, Any]]  # system → {private: VIP, public: floating IP}

    def __init__(
        self,
        spec: ProvinceSpec,
        platform: Platform,
        db_password: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        name = spec.label
        super().__init__("govops:estate:ProvinceEstate", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = Labels(spec.codename, "shared", "network", spec.environment)

        network = openstack.networking.Network(name, name=name, tags=labels.tags(), opts=child)
        external = openstack.networking.get_network_output(
            name=spec.external_network, external=True, opts=pulumi.InvokeOptions(parent=self)
        )
        router = openstack.networking.Router(
            name,
            name=name,
            external_network_id=external.id,
            tags=labels.tags(),
            opts=child,
        )
        subnet_ids: dict[str, pulumi.Output[str]] = {}
        for tier in SUBNET_TIERS:
            cidr = spec.network.subnets[tier]
            subnet = openstack.networking.Subnet(
                f"{name}-{tier}",
                name=f"{name}-{tier}",
                network_id=network.id,
                cidr=str(cidr),
                ip_version=4,
                allocation_pools=_allocation_pools(tier, cidr),
                tags=labels.tier_of(tier).tags(),
                opts=child,
            )
            openstack.networking.RouterInterface(
                f"{name}-{tier}", router_id=router.id, subnet_id=subnet.id, opts=child
            )
            subnet_ids[tier] = subnet.id

        ssh = openstack.networking.SecGroup(
            f"{name}-ssh",
            name=f"{name}-ssh",
            description=f"{name}: SSH from the bastion, node_exporter from the zone's Prometheus",
            tags=labels.tier_of("mgmt").tags(),
            opts=child,
        )
        for rule in ssh_rules(spec.network, spec.mgmt):
            openstack.networking.SecGroupRule(
                f"{name}-ssh-{rule.key}",
                direction="ingress",
                ethertype="IPv4",
                protocol=rule.protocol,
                port_range_min=rule.port,
                port_range_max=rule.port,
                remote_ip_prefix=rule.cidr,
                security_group_id=ssh.id,
                description=labels.tier_of("mgmt").description(
                    f"{rule.protocol}/{rule.port} from {rule.reach}"
                ),
                opts=child,
            )
        keypair = openstack.compute.Keypair(
            f"{name}-operators",
            name=f"govops-{name}",
            public_key=platform.ssh_public_key,
            opts=child,
        )

        shared = Shared(
            label=name,
            labels=labels,
            network_id=network.id,
            subnet_ids=subnet_ids,
            ssh_group=ssh.name,
            keypair=keypair.name,
            image=platform.image,
            zone_id=platform.dns_zone_id,
            zone_name=platform.dns_zone_name,
            external_network=spec.external_network,
            volume_type=spec.volume_type,
        )
        self.systems = {
            sid: SystemTier(
                f"{name}-{sid}",
                system_workload(system, spec.network, spec.mgmt),
                shared,
                opts=child,
            )
            for sid, system in spec.systems.items()
        }
        if spec.mgmt is not None and spec.mgmt.bastion is not None:
            self.systems["bastion"] = SystemTier(
                f"{name}-bastion", bastion_workload(spec.mgmt), shared, opts=child
            )
        self.systems["db"] = SystemTier(
            f"{name}-db",
            db_workload(spec.db, spec.network, spec.mgmt, spec.backup),
            shared,
            user_data=pulumi.Output.secret(db_password).apply(_db_user_data),
            opts=child,
        )

        addresses: dict[str, Any] = {
            h: ip for tier in self.systems.values() for h, ip in tier.addresses.items()
        }
        self.hosts = pulumi.Output.from_input(addresses)
        vips: dict[str, Any] = {
            sid: {"private": tier.vip, "public": tier.public_ip}
            for sid, tier in self.systems.items()
            if tier.vip is not None and tier.public_ip is not None
        }
        self.vips = pulumi.Output.from_input(vips)
        self.register_outputs({"hosts": self.hosts, "vips": self.vips})


def _allocation_pools(
    tier: str, cidr: IPv4Network
) -> list[openstack.networking.SubnetAllocationPoolArgs] | None:
    if tier not in FIXED_SUBNETS:
        return None  # public (VIPs) and mgmt: the cloud allocates the whole range
    first = cidr.network_address
    return [
        openstack.networking.SubnetAllocationPoolArgs(
            start=str(first + 2), end=str(first + HOST_OFFSET - 1)
        )
    ]


def _db_user_data(password: str) -> str:
    """cloud-init: leave the database admin password where the Ansible role reads it.

    Root-only, on the instance itself; the value stays a secret in Pulumi's state.
    """
    return (
        "#cloud-config\n"
        "write_files:\n"
        "  - path: /etc/govops/db-admin-password\n"
        "    owner: root:root\n"
        "    permissions: '0600'\n"
        # A JSON string is a valid YAML double-quoted scalar: any password survives.
        f"    content: {json.dumps(password)}\n"
    )
