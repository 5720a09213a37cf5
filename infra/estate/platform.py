"""The platform stack (`<env>-platform`): what every province shares, and how they read it.

It owns the parent DNS zone and publishes the boot image, the national counterparts'
endpoints and the operators' SSH key as stack outputs; each province stack reads them
through a `pulumi.StackReference` named by its `govops:platformStack`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_openstack as openstack

from infra.estate.config import NationalSpec, PlatformSpec
from infra.estate.labels import Labels
from infra.estate.rules import national_rules

DNS_TTL = 300
HOST_OFFSET = 10  # DHCP hands out only the addresses below the fixed hosts' (as provinces)
# A national host's role → its labels' system and tier (the rest: monitoring, mgmt).
SYSTEM_OF = {"bastion": ("bastion", "mgmt"), "backup": ("backup", "backup")}

# The platform stack's outputs, by name: the contract between the two roles.
IMAGE, ZONE_ID, ZONE_NAME, SSH_KEY, COUNTERPARTS = (
    "image",
    "dnsZoneId",
    "dnsZoneName",
    "sshPublicKey",
    "counterparts",
)


def platform_labels(spec: PlatformSpec, tier: str) -> Labels:
    return Labels(province="national", system="platform", tier=tier, environment=spec.environment)


def platform_program(spec: PlatformSpec) -> openstack.dns.Zone:
    """Create the parent zone and export what the provinces read."""
    zone = openstack.dns.Zone(
        spec.dns_zone,
        name=f"{spec.dns_zone}.",
        email=f"hostmaster@{spec.dns_zone}",
        ttl=3600,
        description=platform_labels(spec, "dns").description("parent zone of the estate"),
    )
    pulumi.export(IMAGE, spec.image)
    pulumi.export(ZONE_ID, zone.id)
    pulumi.export(ZONE_NAME, spec.dns_zone)
    pulumi.export(SSH_KEY, spec.ssh_public_key)
    pulumi.export(COUNTERPARTS, spec.counterparts)
    if spec.national is not None:
        _national(spec, spec.national, zone)
    return zone


def _national(spec: PlatformSpec, national: NationalSpec, zone: openstack.dns.Zone) -> None:
    """The platform's own hosts: the national Prometheus, each zone's, each zone's backup
    host (pgBackRest's repository, on its own encrypted volume), the national bastion; one
    network in the national range, a security group per host holding its flows."""
    env = spec.environment
    labels = platform_labels(spec, "mgmt")
    network = openstack.networking.Network(
        f"{env}-national", name=f"{env}-national", tags=labels.tags()
    )
    external = openstack.networking.get_network_output(
        name=national.external_network, external=True
    )
    router = openstack.networking.Router(
        f"{env}-national",
        name=f"{env}-national",
        external_network_id=external.id,
        tags=labels.tags(),
    )
    first = national.cidr.network_address
    subnet = openstack.networking.Subnet(
        f"{env}-national",
        name=f"{env}-national",
        network_id=network.id,
        cidr=str(national.cidr),
        ip_version=4,
        allocation_pools=[
            openstack.networking.SubnetAllocationPoolArgs(
                start=str(first + 2), end=str(first + HOST_OFFSET - 1)
            )
        ],
        tags=labels.tags(),
    )
    openstack.networking.RouterInterface(
        f"{env}-national", router_id=router.id, subnet_id=subnet.id
    )
    keypair = openstack.compute.Keypair(
        f"{env}-operators", name=f"govops-{env}", public_key=spec.ssh_public_key
    )
    rules = national_rules(national)
    for host in national.hosts:
        system, tier = SYSTEM_OF.get(host.role, ("monitoring", "mgmt"))
        host_labels = Labels("national", system, tier, env)
        group = openstack.networking.SecGroup(
            host.name,
            name=host.name,
            description=f"{host.name}: its flows (infra/estate/rules.py)",
            tags=host_labels.tags(),
        )
        for rule in rules[host.name]:
            openstack.networking.SecGroupRule(
                f"{host.name}-{rule.key}",
                direction="ingress",
                ethertype="IPv4",
                protocol=rule.protocol,
                port_range_min=rule.port,
                port_range_max=rule.port,
                remote_ip_prefix=rule.cidr,
                security_group_id=group.id,
                description=host_labels.description(
                    f"{rule.protocol}/{rule.port} from {rule.reach}"
                ),
            )
        metadata = host_labels.metadata() | ({"zone": host.zone} if host.zone else {})
        instance = openstack.compute.Instance(
            host.name,
            name=host.name,
            flavor_name=host.flavor,
            image_name=spec.image,
            key_pair=keypair.name,
            security_groups=[group.name],
            networks=[
                openstack.compute.InstanceNetworkArgs(uuid=network.id, fixed_ip_v4=str(host.ip))
            ],
            tags=host_labels.tags(),
            metadata=metadata,
            opts=pulumi.ResourceOptions(depends_on=[subnet]),
        )
        if host.volume_gb is not None:
            _volume(spec, host.name, host.volume_gb, instance, host_labels)
        openstack.dns.RecordSet(
            host.name,
            zone_id=zone.id,
            name=f"{host.name}.{spec.dns_zone}.",
            type="A",
            ttl=DNS_TTL,
            records=[str(host.ip)],
            description=host_labels.description(f"address of {host.name}"),
        )


def _volume(
    spec: PlatformSpec, host: str, size: int, instance: openstack.compute.Instance, labels: Labels
) -> None:
    """A host's data volume (a backup host's repository), of the cloud's encrypted type."""
    volume = openstack.blockstorage.Volume(
        f"{host}-data",
        name=f"{host}-data",
        size=size,
        volume_type=spec.volume_type,
        description=f"data of {host}",
        metadata=labels.metadata(),
    )
    openstack.compute.VolumeAttach(f"{host}-data", instance_id=instance.id, volume_id=volume.id)


def platform_outputs(spec: PlatformSpec, zone_id: str) -> dict[str, Any]:
    """The outputs `platform_program` exports once deployed (for mocks and tests)."""
    return {
        IMAGE: spec.image,
        ZONE_ID: zone_id,
        ZONE_NAME: spec.dns_zone,
        SSH_KEY: spec.ssh_public_key,
        COUNTERPARTS: spec.counterparts,
    }


@dataclass(frozen=True)
class Platform:
    """The platform stack's outputs as a province sees them."""

    image: pulumi.Output[str]
    dns_zone_id: pulumi.Output[str]
    dns_zone_name: pulumi.Output[str]
    ssh_public_key: pulumi.Output[str]
    counterparts: pulumi.Output[Any]

    @staticmethod
    def read(stack: str) -> Platform:
        ref = pulumi.StackReference(stack)
        return Platform(
            image=ref.require_output(IMAGE),
            dns_zone_id=ref.require_output(ZONE_ID),
            dns_zone_name=ref.require_output(ZONE_NAME),
            ssh_public_key=ref.require_output(SSH_KEY),
            counterparts=ref.require_output(COUNTERPARTS),
        )
