"""Views of the registry for `govops registry show` (plain data: the CLI formats it)."""

from __future__ import annotations

from typing import Any

from govops.errors import InputError
from govops.registry.estate import BASTION_VOLUME_GB, Estate
from govops.registry.geography import merged_from


def province_rows(estate: Estate) -> list[dict[str, Any]]:
    hosts_by_province: dict[str, int] = {}
    for h in estate.hosts():
        if h.province:
            hosts_by_province[h.province] = hosts_by_province.get(h.province, 0) + 1
    return [
        {
            "code": pe.province.code_str,
            "codename": p,
            "name": pe.province.name,
            "communes": len(pe.province.communes),
            "zone": pe.zone,
            "network": str(pe.network),
            "hosts": hosts_by_province.get(p, 0),
        }
        for p, pe in estate.provinces.items()
    ]


def province_detail(estate: Estate, codename: str) -> dict[str, Any]:
    pe = estate.provinces.get(codename)
    if pe is None:
        raise InputError(
            "command line",
            "--province",
            f"a province of {estate.path} (e.g. {', '.join(list(estate.provinces)[:3])})",
            got=codename,
        )
    p = pe.province
    hosts = []
    for h in (h for h in estate.hosts({codename}) if h.province == codename):
        if "bastions" in h.groups and estate.cloud is not None:
            # The jump host's size is the cloud's, not the catalog's (infra: bastion_workload).
            flavor, volume_gb = estate.cloud.bastion_flavor, BASTION_VOLUME_GB
        else:
            size = pe.sizes[h.system or "db"]
            flavor, volume_gb = size.flavor, size.volume_gb
        hosts.append(
            {
                "name": h.name,
                "ip": str(h.ip),
                "system": h.system,
                "tiers": list(h.tiers),
                "flavor": flavor,
                "volume_gb": volume_gb,
            }
        )
    return {
        "code": p.code_str,
        "codename": p.codename,
        "name": p.name,
        "type": p.type,
        "zone": pe.zone,
        "network": str(pe.network),
        "subnets": {k: str(v) for k, v in pe.subnets.items()},
        "merged_from": [f"{lp.old_name} ({lp.old_code})" for lp in merged_from(codename)],
        "hosts": hosts,
        "communes": [{"code": c.code_str, "name": c.name, "type": c.type} for c in p.communes],
    }
