"""Registry + estate → the prober's configuration (controller side: imports govops).

The only place where the prober's targets are decided: each province of the estate, its
systems' fronts at `https://<province>-<system>` (their service names), its communes from the
registry, the counterparts' URLs from the estate. An endpoints file may replace URLs (tests,
benchmarks, a load balancer's name in production) but can add no province.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from govops.errors import InputError
from govops.registry.estate import Estate, dns_label
from govops.render.common import agencies

from .config import ProberConfig, ProvinceTarget, parse_config


def config_from_estate(
    estate: Estate,
    *,
    endpoints: dict[str, Any] | None = None,
    endpoints_source: str = "<endpoints>",
    ca_file: str | None = None,
    **options: Any,
) -> ProberConfig:
    overrides = endpoints or {}
    system_urls = overrides.get("systems") or {}
    for province in system_urls:
        if province not in estate.provinces:
            raise InputError(
                Path(endpoints_source),
                f"systems.{province}",
                f"a province of the {estate.environment} estate",
                got=province,
            )
    provinces: dict[str, ProvinceTarget] = {}
    for codename, pe in estate.provinces.items():
        # The system's service name, as citizens use it: `<province>-<system>` (nginx_tls
        # answers to it on every replica, and the lab PKI puts it in the certificates).
        systems = {
            sid: f"https://{estate.fqdn(f'{dns_label(codename)}-{sid}')}"
            for sid in estate.catalog.systems
        }
        systems.update(system_urls.get(codename) or {})
        codes = agencies(pe.province)
        provinces[codename] = ProvinceTarget(
            codename=codename,
            systems=systems,
            communes=tuple(c.code_str for c in pe.province.communes),
            # A commune's People's Committee writes to the Provincial People's Committee.
            agency_from=codes[1]["code"] if len(codes) > 1 else codes[0]["code"],
            agency_to=codes[0]["code"],
            zone=pe.zone,
        )
    counterparts = {cid: entry.url for cid, entry in estate.counterparts.items()}
    counterparts.update(overrides.get("counterparts") or {})
    config = ProberConfig(
        environment=estate.environment,
        provinces=provinces,
        counterparts=counterparts,
        readiness_paths={s: spec.health.readiness for s, spec in estate.catalog.systems.items()},
        ca_file=ca_file,
        # The estate decides what the prober may write and how it pays (`prober:`).
        **(
            {"payment_mode": estate.prober.payment, "write_checks": estate.prober.write_checks}
            | options
        ),
    )
    # Round-trip through the validator: what the controller writes, the host must accept.
    return parse_config(json.loads(config.to_json()), f"config from {estate.path}")


def load_endpoints(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not set(data) <= {"systems", "counterparts"}:
        raise InputError(path, "", "a mapping with `systems` and/or `counterparts`", got=data)
    return data
