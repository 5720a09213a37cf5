"""The four labels every resource carries: province, system, tier, environment.

OpenStack has no single tagging API: Neutron, Nova and Octavia resources take `tags` (a
list of strings), Cinder volumes and Nova servers take `metadata` (a map), security group
rules and Designate records only a `description`. `LABEL_FIELDS` says which each type
supports; the policy pack checks the same table, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

LABEL_KEYS = ("province", "system", "tier", "environment")

Field = Literal["tags", "metadata", "description"]

# Pulumi type token → the property (wire name) holding the labels.
LABEL_FIELDS: dict[str, tuple[Field, ...]] = {
    "openstack:networking/network:Network": ("tags",),
    "openstack:networking/subnet:Subnet": ("tags",),
    "openstack:networking/router:Router": ("tags",),
    "openstack:networking/secGroup:SecGroup": ("tags",),
    "openstack:networking/secGroupRule:SecGroupRule": ("description",),
    "openstack:networking/floatingIp:FloatingIp": ("tags",),
    "openstack:compute/instance:Instance": ("tags", "metadata"),
    "openstack:blockstorage/volume:Volume": ("metadata",),
    "openstack:loadbalancer/loadBalancer:LoadBalancer": ("tags",),
    "openstack:loadbalancer/listener:Listener": ("tags",),
    "openstack:loadbalancer/pool:Pool": ("tags",),
    "openstack:loadbalancer/member:Member": ("tags",),
    "openstack:dns/recordSet:RecordSet": ("description",),
    "openstack:dns/zone:Zone": ("description",),
}

# Types whose OpenStack API has neither tags, metadata nor a description. They are named
# after what they belong to (`hue-app`, `hue-procedures-1-data`) instead.
UNLABELLED = frozenset(
    {
        "openstack:networking/routerInterface:RouterInterface",
        "openstack:compute/keypair:Keypair",
        "openstack:compute/serverGroup:ServerGroup",
        "openstack:compute/volumeAttach:VolumeAttach",
        "openstack:loadbalancer/monitor:Monitor",
    }
)


@dataclass(frozen=True)
class Labels:
    province: str
    system: str
    tier: str
    environment: str

    def tier_of(self, tier: str) -> Labels:
        return replace(self, tier=tier)

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in LABEL_KEYS}

    def tags(self) -> list[str]:
        """Neutron/Nova/Octavia tags: `key=value` strings (no commas or slashes allowed)."""
        return [f"{k}={v}" for k, v in self.as_dict().items()]

    def metadata(self) -> dict[str, str]:
        return self.as_dict()

    def description(self, what: str) -> str:
        """A description that still carries the labels for types that have nothing else."""
        return f"{what} [{' '.join(self.tags())}]"


def labels_in(field: Field, value: object) -> dict[str, str]:
    """Read labels back from a resource's property as the engine records it."""
    pairs: list[str] = []
    if field == "tags" and isinstance(value, list):
        pairs = [str(v) for v in value]
    elif field == "metadata" and isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    elif field == "description" and isinstance(value, str) and value.endswith("]"):
        start = value.rfind("[")
        pairs = value[start + 1 : -1].split() if start >= 0 else []
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, val = pair.partition("=")
        if sep:
            found[key] = val
    return found
