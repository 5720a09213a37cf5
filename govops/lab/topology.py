"""The lab topology rendered by `govops render --env <env>`: what hosts exist and where.

Only reading and selecting happen here; rendering belongs to govops.render.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from govops.errors import GovopsError, InputError
from govops.yamlio import parse_yaml

HOSTNAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
# Environment names end up in container names, labels and cache paths.
ENVIRONMENT = r"^[a-z][a-z0-9_-]{0,30}$"
ALL = "all"


class TopologyError(InputError):
    """A topology file that is missing or wrong; names the file and the key (exit code 2)."""

    def __init__(self, path: Path, key: str, message: str) -> None:
        super().__init__(path, key, message)
        self.args = (f"{path}: {key}: {message}" if key else f"{path}: {message}",)


class SelectionError(GovopsError):
    """A province or host the topology does not know (exit code 2)."""

    exit_code = 2


class LabNetwork(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address

    @model_validator(mode="after")
    def _gateway_in_subnet(self) -> LabNetwork:
        if self.gateway not in self.subnet:
            raise ValueError(f"gateway {self.gateway} is outside subnet {self.subnet}")
        return self


class LabHost(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=HOSTNAME)]
    ip: ipaddress.IPv4Address
    province: str | None = None
    system: str | None = None
    groups: tuple[str, ...] = ()


class Topology(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Annotated[str, Field(pattern=ENVIRONMENT)]
    network: LabNetwork
    default_provinces: tuple[str, ...] = ()
    hosts: tuple[LabHost, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Topology:
        _check_unique("name", [h.name for h in self.hosts])
        _check_unique("ip", [str(h.ip) for h in self.hosts])
        for host in self.hosts:
            if host.ip not in self.network.subnet or host.ip == self.network.gateway:
                raise ValueError(
                    f"host {host.name}: ip {host.ip} is not a free address of "
                    f"{self.network.subnet} (gateway {self.network.gateway})"
                )
        unknown = set(self.default_provinces) - set(self.provinces)
        if unknown:
            raise ValueError(f"default_provinces name provinces without hosts: {sorted(unknown)}")
        return self

    @property
    def provinces(self) -> list[str]:
        """Provinces in the order the topology lists their hosts."""
        return list(dict.fromkeys(h.province for h in self.hosts if h.province is not None))

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise SelectionError(f"unknown host {name!r}")


def _check_unique(what: str, values: Sequence[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate host {what} {value}")
        seen.add(value)


def _key(loc: tuple[int | str, ...]) -> str:
    """('hosts', 3, 'ip') -> 'hosts[3].ip', the way a reader finds it in the YAML."""
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else part)
    return key


def topology_path(inventories: Path, environment: str) -> Path:
    return inventories / environment / "topology.yml"


def parse_topology(data: Any, path: Path) -> Topology:
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise TopologyError(path, _key(tuple(first["loc"])), first["msg"]) from None


def load_topology(inventories: Path, environment: str) -> Topology:
    path = topology_path(inventories, environment)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError(
            path, "", f"missing; run `govops render --env {environment}` first"
        ) from None
    try:
        data, _ = parse_yaml(text, path)
    except InputError as exc:
        raise TopologyError(path, "", f"not valid YAML: {exc}") from None
    topology = parse_topology(data, path)
    if topology.environment != environment:
        raise TopologyError(
            path, "environment", f"is {topology.environment!r}, expected {environment!r}"
        )
    return topology


def parse_provinces(value: str | None) -> list[str] | None:
    """CLI `--provinces hue,tuyen_quang|all`; None means the topology's default set."""
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise SelectionError("--provinces is empty")
    return names


def select_hosts(topology: Topology, provinces: Sequence[str] | None) -> list[LabHost]:
    """Hosts of the chosen provinces plus every host without a province (national, monitor)."""
    if provinces is None:
        chosen = set(topology.default_provinces)
    elif ALL in provinces:
        chosen = set(topology.provinces)
    else:
        unknown = sorted(set(provinces) - set(topology.provinces))
        if unknown:
            raise SelectionError(
                f"unknown province(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(topology.provinces))}"
            )
        chosen = set(provinces)
    return [h for h in topology.hosts if h.province is None or h.province in chosen]
