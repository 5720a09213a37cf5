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

from infra.estate.config import PlatformSpec
from infra.estate.labels import Labels

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
    return zone


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
