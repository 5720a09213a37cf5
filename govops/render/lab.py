"""Estate → the lab's host topology (`topology.yml`), read by `govops lab`."""

from __future__ import annotations

from govops.registry.estate import Estate
from govops.render.common import Files, header
from govops.yamlio import dump_yaml


def lab_gateway(estate: Estate) -> str:
    """The lab network's gateway: the controller's address on it (first of the national net)."""
    return str(estate.network.national.network_address + 1)


def render_topology(estate: Estate, base: str) -> Files:
    if estate.lab is None:
        return {}
    data = {
        "environment": estate.environment,
        "network": {
            "name": estate.lab.network_name,
            "subnet": str(estate.network.pool),
            "gateway": lab_gateway(estate),
        },
        "default_provinces": list(estate.lab.default_provinces),
        "hosts": [
            {
                "name": h.name,
                "ip": str(h.ip),
                "province": h.province,
                "system": h.system,
                "groups": list(h.groups),
            }
            for h in estate.hosts()
        ],
    }
    return {f"{base}/topology.yml": header(estate) + dump_yaml(data)}
