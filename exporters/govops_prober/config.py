"""The prober's configuration: which provinces exist and where each one's systems answer.

Written by the controller (`govops monitoring prober-config`, from the registry and the estate)
and read here with the standard library only, so the monitoring host needs no govops install.
Every URL the prober will ever contact is in this file: requests choose a province by name,
never an address.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .client import ProbeFailure, origin_of
from .operations import Operation, parse_operations

SYSTEMS = ("procedures", "documents", "lgsp", "reporting", "meetings")
PAYMENT_MODES = ("test_mode", "zero_authorization", "off")
LEGACY_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
COUNTERPARTS = ("portal", "sso", "payment", "napd", "docaxis", "ndxp", "reporting")


class ConfigError(ValueError):
    """A bad configuration file: the message names the file and the key."""


@dataclass(frozen=True)
class ProvinceTarget:
    codename: str
    systems: dict[str, str]  # system id → base URL of its front (nginx)
    communes: tuple[str, ...]  # five-digit official codes, in code order
    agency_from: str  # an agency of the province that sends the Axis test document ...
    agency_to: str  # ... to another agency of the same province, which must receive it
    zone: str = ""
    # The old provinces' portal domains the province's procedures front closes (old code →
    # domain, govops/registry/legacy_portals.py): each must answer 301 to the national portal.
    legacy_portals: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProberConfig:
    environment: str
    provinces: dict[str, ProvinceTarget]
    counterparts: dict[str, str]  # counterpart id → base URL
    readiness_paths: dict[str, str] = field(default_factory=dict)  # system id → path
    ca_file: str | None = None
    # A scrape never lasts longer than this, whatever Prometheus allows (seconds).
    timeout_seconds: float = 25.0
    # One check (one transaction, several requests) never lasts longer than this.
    check_timeout_seconds: float = 10.0
    # Every commune gets a dossier submitted at least once per period (seconds).
    commune_period_seconds: float = 86400.0
    # The scrape interval assumed for a target's first scrape (the rotation's batch size).
    scrape_interval_seconds: float = 60.0
    max_communes_per_scrape: int = 200
    # Requests in flight across all scrapes, and within one scrape.
    max_concurrency: int = 128
    max_concurrency_per_target: int = 24
    # Where per-province commune ledgers survive restarts (None: memory only).
    state_dir: str | None = None
    # Marks what the prober creates (dossiers, reports, meetings) as synthetic.
    procedure_code: str = "GOVOPS-SYNTHETIC-PROBE"
    # How the payment check pays (PAYMENT_MODES): the platform's test mode, a zero-value
    # authorisation reversed at once, or not at all. Never a real charge.
    payment_mode: str = "off"
    # Checks that create records (dossiers, documents, reports, meetings, payments): off where
    # an environment's owners do not want synthetic records at all.
    write_checks: bool = True
    # The estate's adapters (interface → operation → request); checks call operations.
    operations: dict[str, dict[str, Operation]] = field(default_factory=dict)
    # Where an old portal's home page must redirect: the national portal's home (full URL).
    legacy_portal_location: str | None = None

    def origins(self) -> frozenset[str]:
        """Every origin the prober may contact: the estate's fronts and counterparts."""
        urls = list(self.counterparts.values())
        for p in self.provinces.values():
            urls.extend(p.systems.values())
        return frozenset(origin_of(u) for u in urls)

    def to_json(self) -> str:
        data = asdict(self)
        for p in data["provinces"].values():
            p["communes"] = list(p["communes"])
        return json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


_NUMBERS = (
    "timeout_seconds",
    "check_timeout_seconds",
    "commune_period_seconds",
    "scrape_interval_seconds",
)
_INTEGERS = ("max_communes_per_scrape", "max_concurrency", "max_concurrency_per_target")


def load_config(path: str | Path) -> ProberConfig:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
        raise ConfigError(f"{path}: cannot read the prober's JSON config: {exc}") from None
    return parse_config(data, str(path))


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number the prober accepts")


def parse_config(data: Any, source: str = "<config>") -> ProberConfig:
    def fail(key: str, expected: str, got: object = None) -> ConfigError:
        shown = "" if got is None else f", got {got!r}"
        return ConfigError(f"{source}: {key}: expected {expected}{shown}")

    if not isinstance(data, dict):
        raise fail("(root)", "a JSON object")
    env = data.get("environment")
    if not isinstance(env, str) or not env:
        raise fail("environment", "a name", env)
    counterparts = _urls(data.get("counterparts"), "counterparts", fail)
    paths = data.get("readiness_paths") or {}
    if not isinstance(paths, dict) or not all(
        isinstance(v, str) and v.startswith("/") for v in paths.values()
    ):
        raise fail("readiness_paths", "an object of system → path starting with /")
    provinces_data = data.get("provinces")
    if not isinstance(provinces_data, dict) or not provinces_data:
        raise fail("provinces", "a non-empty object of province codename → target")
    provinces: dict[str, ProvinceTarget] = {}
    for name, item in provinces_data.items():
        key = f"provinces.{name}"
        if not isinstance(item, dict):
            raise fail(key, "an object")
        systems = _urls(item.get("systems"), f"{key}.systems", fail)
        missing = [s for s in SYSTEMS if s not in systems]
        if missing:
            raise fail(f"{key}.systems", f"a URL for each of {', '.join(SYSTEMS)}", missing)
        communes = item.get("communes")
        if (
            not isinstance(communes, list)
            or not communes
            or not all(
                isinstance(c, str) and len(c) == 5 and c.isascii() and c.isdigit() for c in communes
            )
        ):
            raise fail(f"{key}.communes", "a non-empty list of five-digit codes")
        agencies = []
        for k in ("agency_from", "agency_to"):
            value = item.get(k)
            if not isinstance(value, str) or not value:
                raise fail(f"{key}.{k}", "an agency's electronic identification code", value)
            agencies.append(value)
        legacy = item.get("legacy_portals") or {}
        if not isinstance(legacy, dict) or not all(
            isinstance(k, str)
            and len(k) == 2
            and k.isdigit()
            and isinstance(v, str)
            and LEGACY_DOMAIN.match(v)
            for k, v in legacy.items()
        ):
            raise fail(f"{key}.legacy_portals", "an object of old code (2 digits) → domain")
        provinces[name] = ProvinceTarget(
            codename=name,
            systems=systems,
            communes=tuple(communes),
            agency_from=agencies[0],
            agency_to=agencies[1],
            zone=str(item.get("zone") or ""),
            legacy_portals=dict(legacy),
        )
    options: dict[str, Any] = {}
    for k in _NUMBERS:
        if k in data:
            v = data[k]
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 366 * 86400:
                raise fail(k, "a positive number of seconds (at most a year)", v)
            options[k] = float(v)
    for k in _INTEGERS:
        if k in data:
            v = data[k]
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 100_000:
                raise fail(k, "a whole number from 1 to 100000", v)
            options[k] = v
    for k in ("ca_file", "state_dir", "procedure_code", "legacy_portal_location"):
        if data.get(k) is not None:
            if not isinstance(data[k], str) or not data[k]:
                raise fail(k, "a string", data[k])
            options[k] = data[k]
    if "payment_mode" in data:
        if data["payment_mode"] not in PAYMENT_MODES:
            raise fail("payment_mode", f"one of {', '.join(PAYMENT_MODES)}", data["payment_mode"])
        options["payment_mode"] = data["payment_mode"]
    if "write_checks" in data:
        if not isinstance(data["write_checks"], bool):
            raise fail("write_checks", "true or false", data["write_checks"])
        options["write_checks"] = data["write_checks"]
    if "operations" in data:
        options["operations"] = parse_operations(data["operations"], fail)
    config = ProberConfig(
        environment=env,
        provinces=provinces,
        counterparts=counterparts,
        readiness_paths=dict(paths),
        **options,
    )
    if config.check_timeout_seconds > config.timeout_seconds:
        raise fail("check_timeout_seconds", "at most timeout_seconds", config.check_timeout_seconds)
    return config


def _urls(value: Any, key: str, fail: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise fail(key, "an object of name → URL")
    result: dict[str, str] = {}
    for name, url in value.items():
        if not isinstance(url, str):
            raise fail(f"{key}.{name}", "an http(s) URL", url)
        try:
            origin_of(url)
        except (ProbeFailure, ValueError):  # ValueError: a broken IPv6 literal, a bad port
            raise fail(f"{key}.{name}", "an http(s) URL", url) from None
        result[name] = url.rstrip("/")
    return result
