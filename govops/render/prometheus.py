"""Estate → Prometheus file_sd target files, labelled from the registry (province, system, tier)."""

from __future__ import annotations

import json
from typing import Any

from govops.registry.estate import Estate, Host
from govops.render.common import Files

# Exporter ports: the Debian packages' defaults.
NODE_EXPORTER = 9100
NGINX_EXPORTER = 9113
POSTGRES_EXPORTER = 9187


def render_targets(estate: Estate, base: str) -> Files:
    hosts = estate.hosts()
    groups: dict[str, list[dict[str, Any]]] = {
        "node": [_target(estate, h, f"{h.name}:{NODE_EXPORTER}") for h in hosts],
        "nginx": [
            _target(estate, h, f"{h.name}:{NGINX_EXPORTER}")
            for h in hosts
            if h.system is not None or "national" in h.groups
        ],
        "postgres": [
            _target(estate, h, f"{h.name}:{POSTGRES_EXPORTER}") for h in hosts if "db" in h.tiers
        ],
        "blackbox_https": [_https(estate, h) for h in hosts if h.system is not None]
        + [_national_https(estate, h) for h in hosts if "national" in h.groups],
        "domain_prober": [
            {"targets": [p], "labels": {"province": p, "zone": pe.zone}}
            for p, pe in estate.provinces.items()
        ],
    }
    return {
        f"{base}/prometheus/{name}.json": json.dumps(entries, indent=2, ensure_ascii=False) + "\n"
        for name, entries in groups.items()
    }


def _labels(estate: Estate, h: Host) -> dict[str, str]:
    labels = {"host": h.name, "environment": estate.environment}
    if h.province is not None:
        labels["province"] = h.province
        labels["zone"] = estate.provinces[h.province].zone
    elif h.zone is not None:
        labels["zone"] = h.zone  # a zone's own server scrapes itself
    if h.system is not None:
        labels["system"] = h.system
    if h.tiers:
        labels["tier"] = ",".join(h.tiers)
    elif "national" in h.groups:
        labels["tier"] = "national"
    elif "backup_repositories" in h.groups:
        labels["tier"] = "backup"
    else:
        labels["tier"] = "monitoring"
    return labels


def _target(estate: Estate, h: Host, address: str) -> dict[str, Any]:
    return {"targets": [address], "labels": _labels(estate, h)}


def _https(estate: Estate, h: Host) -> dict[str, Any]:
    assert h.system is not None
    system = estate.catalog.systems[h.system]
    labels = _labels(estate, h) | {"tier": system.edge_tier, "module": f"govops_{h.system}"}
    return {"targets": [f"https://{h.fqdn}{system.health.readiness}"], "labels": labels}


def _national_https(estate: Estate, h: Host) -> dict[str, Any]:
    labels = _labels(estate, h) | {"system": h.name, "module": "govops_national"}
    return {"targets": [f"https://{h.fqdn}/readyz"], "labels": labels}
