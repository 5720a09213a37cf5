"""Estate → Pulumi stack configs: one stack per province and environment, plus the platform.

Stack `<env>-<province>` provisions one province (infra/ reads `govops:*`); stack
`<env>-platform` holds what provinces share and read through a StackReference.
"""

from __future__ import annotations

from typing import Any

from govops.registry.estate import Estate, ProvinceEstate
from govops.render.common import Files, header
from govops.yamlio import dump_yaml


def stack_name(env: str, province: str | None) -> str:
    return f"{env}-{province.replace('_', '-')}" if province else f"{env}-platform"


def render_stacks(estate: Estate, base: str) -> Files:
    if estate.cloud is None:
        return {}
    files: Files = {}
    env = estate.environment
    platform_ref = f"{estate.cloud.organization}/govops/{stack_name(env, None)}"
    files[f"{base}/Pulumi.{stack_name(env, None)}.yaml"] = header(estate) + dump_yaml(
        {"config": _platform_config(estate)}
    )
    for p, pe in estate.provinces.items():
        config = _province_config(estate, pe) | {"govops:platformStack": platform_ref}
        files[f"{base}/Pulumi.{stack_name(env, p)}.yaml"] = header(estate) + dump_yaml(
            {"config": config}
        )
    return files


def _platform_config(estate: Estate) -> dict[str, Any]:
    assert estate.cloud is not None
    return {
        "govops:environment": estate.environment,
        "govops:role": "platform",
        "govops:image": estate.cloud.image,
        "govops:dnsZone": estate.cloud.dns_zone,
        "govops:counterparts": {cid: c.url for cid, c in estate.counterparts.items()},
    }


def _province_config(estate: Estate, pe: ProvinceEstate) -> dict[str, Any]:
    assert estate.cloud is not None
    cat = estate.catalog
    hosts = estate.hosts({pe.codename})
    systems: dict[str, Any] = {}
    for sid, system in cat.systems.items():
        size = pe.sizes[sid]
        systems[sid] = {
            "flavor": size.flavor,
            "volumeGb": size.volume_gb,
            "edgeTier": system.edge_tier,
            "appPort": system.app_port,
            "ports": [
                {"tier": tier, "port": p.port, "protocol": p.protocol, "from": p.from_}
                for tier, spec in system.tiers.items()
                for p in spec.ports
            ],
            "hosts": [{"name": h.name, "ip": str(h.ip)} for h in hosts if h.system == sid],
        }
    db = next(h for h in hosts if "db" in h.tiers)
    return {
        "openstack:region": pe.region,
        "govops:environment": estate.environment,
        "govops:role": "province",
        "govops:province": {
            "codename": pe.codename,
            "code": pe.province.code_str,
            "name": pe.province.name,
            "zone": pe.zone,
            "communes": len(pe.province.communes),
        },
        "govops:network": {
            "cidr": str(pe.network),
            "subnets": {k: str(v) for k, v in pe.subnets.items()},
        },
        "govops:externalNetwork": estate.cloud.external_network,
        "govops:volumeType": estate.cloud.volume_type,
        "govops:volumeEncryption": estate.cloud.volume_encryption,
        "govops:systems": systems,
        "govops:db": {
            "flavor": pe.sizes["db"].flavor,
            "volumeGb": pe.sizes["db"].volume_gb,
            "host": {"name": db.name, "ip": str(db.ip)},
        },
    }
