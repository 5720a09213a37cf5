"""The catalog: the five systems, the national counterparts and the readiness checks.

The data lives in `data/*.yml` beside this module; this module only validates and reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from govops.errors import InputError
from govops.yamlio import M, load_yaml, validate

SYSTEM_IDS = ("procedures", "documents", "lgsp", "reporting", "meetings")
Tier = Literal["front", "gateway", "app", "db"]
Reach = Literal["public", "province", "national", "local"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Port(_Model):
    port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    from_: Reach = Field(alias="from")


class TierSpec(_Model):
    ports: tuple[Port, ...]


class Health(_Model):
    liveness: str
    readiness: str
    version: str


class Replicas(_Model):
    per_communes: int = Field(gt=0)
    min: int = Field(ge=1)
    max: int = Field(ge=1)


class FlavorStep(_Model):
    up_to: int | None
    flavor: str


class VolumeSize(_Model):
    base: int = Field(ge=1)
    per_commune: int = Field(ge=0)


class Sizing(_Model):
    replicas: Replicas
    flavors: tuple[FlavorStep, ...] = Field(min_length=1)
    volume_gb: VolumeSize

    @model_validator(mode="after")
    def _last_step_open(self) -> Sizing:
        if self.flavors[-1].up_to is not None:
            raise ValueError("the last flavor step must have up_to: null (covers any size)")
        return self


class System(_Model):
    id: str = ""
    name_vi: str
    name_en: str
    app_port: int = Field(ge=1024, le=65535)
    tiers: dict[Tier, TierSpec]
    health: Health
    database: bool
    counterparts: tuple[str, ...]
    readiness_checks: tuple[str, ...]
    sizing: Sizing

    @property
    def public_tiers(self) -> list[str]:
        return [t for t, spec in self.tiers.items() if any(p.from_ == "public" for p in spec.ports)]

    @property
    def edge_tier(self) -> str:
        """The tier nginx serves TLS on: `gateway` for the LGSP, `front` for the others."""
        return "gateway" if "gateway" in self.tiers else "front"


class Counterpart(_Model):
    id: str = ""
    name_vi: str
    name_en: str
    host: str = Field(pattern=r"^national-[a-z]+$")
    path: str
    app_port: int = Field(ge=1024, le=65535)


class ReadinessCheck(_Model):
    id: str = ""
    title: str
    system: str
    counterpart: str | None
    dispatch_done: int | None = Field(default=None, ge=0, le=34)
    per_commune: bool = False
    # PromQL giving one series per province (label `province`), > 0 where Prometheus and the
    # prober observed the check done; `$window` is the time since the run started.
    evidence: str | None = None


class _Systems(RootModel[dict[str, System]]):
    pass


class _Counterparts(RootModel[dict[str, Counterpart]]):
    pass


class _Checks(RootModel[dict[str, ReadinessCheck]]):
    pass


@dataclass(frozen=True)
class Catalog:
    systems: dict[str, System]
    counterparts: dict[str, Counterpart]
    checks: dict[str, ReadinessCheck]
    database: Sizing

    @property
    def national_hosts(self) -> list[str]:
        """The hosts serving the national counterparts, in catalog order, each once."""
        return list(dict.fromkeys(c.host for c in self.counterparts.values()))


def _data_path(name: str) -> Path:
    return Path(str(resources.files("govops.registry").joinpath(f"data/{name}")))


@cache
def catalog() -> Catalog:
    """Load and cross-check the catalog (a broken catalog names its file and key)."""
    sys_path, cp_path, ck_path = (
        _data_path(n) for n in ("systems.yml", "counterparts.yml", "readiness.yml")
    )
    systems = _load(_Systems, sys_path).root
    counterparts = _load(_Counterparts, cp_path).root
    checks = _load(_Checks, ck_path).root
    database = _load(Sizing, _data_path("database.yml"))
    if tuple(systems) != SYSTEM_IDS:
        raise InputError(
            sys_path, "", f"exactly the systems {', '.join(SYSTEM_IDS)} in order", got=list(systems)
        )
    for sid, system in systems.items():
        for i, cid in enumerate(system.counterparts):
            if cid not in counterparts:
                raise InputError(
                    sys_path,
                    f"{sid}.counterparts[{i}]",
                    f"one of {', '.join(counterparts)}",
                    got=cid,
                )
        for i, check_id in enumerate(system.readiness_checks):
            if check_id not in checks or checks[check_id].system != sid:
                raise InputError(
                    sys_path,
                    f"{sid}.readiness_checks[{i}]",
                    f"a check of readiness.yml owned by {sid}",
                    got=check_id,
                )
    for cid, check in checks.items():
        if check.system not in systems:
            raise InputError(
                ck_path, f"{cid}.system", f"one of {', '.join(systems)}", got=check.system
            )
    return Catalog(
        systems={k: v.model_copy(update={"id": k}) for k, v in systems.items()},
        counterparts={k: v.model_copy(update={"id": k}) for k, v in counterparts.items()},
        checks={k: v.model_copy(update={"id": k}) for k, v in checks.items()},
        database=database,
    )


def _load(model: type[M], path: Path) -> M:
    data, lines = load_yaml(path)
    return validate(model, data, path, lines)


def replicas_for(sizing: Sizing, communes: int) -> int:
    r = sizing.replicas
    return max(r.min, min(r.max, math.ceil(communes / r.per_communes)))


def flavor_for(sizing: Sizing, communes: int) -> str:
    for step in sizing.flavors:
        if step.up_to is None or communes <= step.up_to:
            return step.flavor
    return sizing.flavors[-1].flavor  # unreachable: the last step is open (validated)


def volume_gb_for(sizing: Sizing, communes: int) -> int:
    return sizing.volume_gb.base + sizing.volume_gb.per_commune * communes
