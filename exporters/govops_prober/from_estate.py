"""Registry + estate → the prober's configuration (controller side: imports govops).

The only place where the prober's targets are decided: each province of the estate, its
systems' fronts at `https://<province>-<system>` (their service names), its communes from the
registry, the counterparts' URLs from the estate. An endpoints file may replace URLs (tests,
benchmarks, a load balancer's name in production) but can add no province.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

from govops.adapters.estate import estate_adapter, front_url
from govops.errors import InputError, InputErrors
from govops.registry import catalog, provinces
from govops.registry.estate import Estate
from govops.registry.legacy_portals import legacy_portal_domains, national_target
from govops.render.common import agencies
from govops.yamlio import KeyPath, key_str, line_of, load_yaml

from .config import ConfigError, ProberConfig, ProvinceTarget, parse_config
from .operations import Operation


def adapter_operations(estate: Estate) -> dict[str, dict[str, Operation]]:
    """Each system's and counterpart's adapter (the estate's, else the lab stand-ins'), as
    the prober's host reads it (it has no govops to resolve them itself)."""
    out: dict[str, dict[str, Operation]] = {}
    for kind, names in (("systems", estate.systems), ("counterparts", estate.counterparts)):
        for name in names:
            adapter = estate_adapter(estate, kind, name)
            out[f"{kind}.{name}"] = {
                op_name: Operation(
                    method=op.method,
                    path=op.path,
                    query=dict(op.query),
                    body=op.body,
                    expect_status=(op.expect_status,)
                    if isinstance(op.expect_status, int)
                    else tuple(op.expect_status),
                    result=dict(op.result),
                )
                for op_name, op in adapter.operations.items()
            }
    return out


def _payment_supported(estate: Estate) -> None:
    """The estate's payment mode must be one the procedures vendor declares it supports
    (`payment_modes` of its test_payment): never fall back to a real charge."""
    mode = estate.prober.payment
    if mode == "off":
        return
    op = estate_adapter(estate, "systems", "procedures").operations.get("test_payment")
    supported = (op.payment_modes or []) if op is not None else []
    if mode not in supported:
        raise InputError(
            estate.path,
            "prober.payment",
            f"a mode the procedures adapter declares ({', '.join(supported) or 'none'}), or off",
            got=mode,
        )


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
        # A vendor's adapter may name its own base (govops.adapters.estate.front_url).
        systems = {
            sid: front_url(estate, "systems", sid, codename) for sid in estate.catalog.systems
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
            legacy_portals=legacy_portal_domains(codename),
        )
    counterparts = {cid: entry.url for cid, entry in estate.counterparts.items()}
    operations = adapter_operations(estate)
    _payment_supported(estate)
    counterparts.update(overrides.get("counterparts") or {})
    config = ProberConfig(
        environment=estate.environment,
        provinces=provinces,
        counterparts=counterparts,
        readiness_paths={s: spec.health.readiness for s, spec in estate.catalog.systems.items()},
        ca_file=ca_file,
        operations=operations,
        # the old portals' home page goes to the national portal's (the nginx role's mapping)
        legacy_portal_location=(counterparts["portal"].rstrip("/") + national_target("/"))
        if counterparts.get("portal")
        else None,
        # The estate decides what the prober may write and how it pays (`prober:`).
        **(
            {"payment_mode": estate.prober.payment, "write_checks": estate.prober.write_checks}
            | options
        ),
    )
    # Round-trip through the validator: what the controller writes, the host must accept.
    try:
        return parse_config(json.loads(config.to_json()), f"config from {estate.path}")
    except ConfigError as exc:  # an estate or endpoints file the loaders let through
        raise InputError(
            endpoints_source or estate.path, "", "a valid prober config", str(exc)
        ) from None


def load_endpoints(path: Path) -> dict[str, Any]:
    """An endpoints file: `systems: {province: {system: URL}}` and `counterparts: {id: URL}`,
    each URL http(s). Every problem is named by file, line and key (exit 2)."""
    data, lines = load_yaml(path)
    data = {} if data is None else data
    errors: list[InputError] = []

    def error(key: KeyPath, expected: str, got: object = None) -> None:
        errors.append(InputError(path, key_str(key), expected, got, line_of(lines, key)))

    if not isinstance(data, dict):
        raise InputError(path, "", "a mapping with `systems` and/or `counterparts`", got=data)
    for key in data:
        if key not in ("systems", "counterparts"):
            error((str(key),), "`systems` or `counterparts`", got=key)
    systems = data.get("systems") or {}
    if not isinstance(systems, dict):
        error(("systems",), "a mapping of province → {system: URL}", got=systems)
        systems = {}
    known_systems = catalog().systems
    known_provinces = provinces()
    for province, urls in systems.items():
        at: KeyPath = ("systems", str(province))
        if province not in known_provinces:
            error(at, "a province codename (e.g. hue)", got=province)
        if not isinstance(urls, dict):
            error(at, "a mapping of system → URL", got=urls)
            continue
        for system, url in urls.items():
            if system not in known_systems:
                error((*at, str(system)), f"one of {', '.join(known_systems)}", got=system)
            _check_url(error, (*at, str(system)), url)
    counterparts = data.get("counterparts") or {}
    if not isinstance(counterparts, dict):
        error(("counterparts",), "a mapping of counterpart → URL", got=counterparts)
        counterparts = {}
    known_counterparts = catalog().counterparts
    for cid, url in counterparts.items():
        if cid not in known_counterparts:
            error(("counterparts", str(cid)), f"one of {', '.join(known_counterparts)}", got=cid)
        _check_url(error, ("counterparts", str(cid)), url)
    if errors:
        raise InputErrors(errors)
    return data


def _check_url(error: Any, key: KeyPath, url: object) -> None:
    try:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        ok = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
        if ok and parts is not None:
            _ = parts.port  # raises for a port out of range
    except ValueError:
        ok = False
    if not ok:
        error(key, "an http(s) URL with a host", got=url)
