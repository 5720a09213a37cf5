"""The estate file's schema: what `inventories/<env>/estate.yml` may say, as pydantic models.

Resolving it into hosts, addresses and sizes is govops/registry/estate.py's work.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_NAME = r"^[a-z][a-z0-9-]{0,30}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Zone(_Model):
    region: str = Field(min_length=1)
    provinces: tuple[str, ...] = ()


class Network(_Model):
    pool: IPv4Network
    province_prefix: int = Field(ge=9, le=24)
    national: IPv4Network

    @field_validator("pool", "national")
    @classmethod
    def _private(cls, net: IPv4Network) -> IPv4Network:
        if not net.is_private:
            raise ValueError("a private (RFC 1918) range")
        return net


class StandinArtifact(_Model):
    kind: Literal["standin"]


class PackageArtifact(_Model):
    """A vendor's Debian package from the government's own package repository."""

    kind: Literal["package"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9+.-]+$")
    version: str = Field(min_length=1)


class ArchiveArtifact(_Model):
    """A vendor's archive staged on the controller, checked by its SHA-256."""

    kind: Literal["archive"]
    path: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


Artifact = Annotated[
    StandinArtifact | PackageArtifact | ArchiveArtifact, Field(discriminator="kind")
]


class SystemEntry(_Model):
    artifact: Artifact
    # The vendor's adapter file (operations → requests), relative to this estate file;
    # none: the lab stand-ins' (govops/adapters).
    adapter: str | None = Field(default=None, min_length=1)


class CounterpartEntry(_Model):
    url: str = Field(pattern=r"^https://[a-z0-9.-]+(:[0-9]+)?(/.*)?$")
    adapter: str | None = Field(default=None, min_length=1)  # as SystemEntry.adapter


class SizingOverride(_Model):
    replicas: int | None = Field(default=None, ge=1, le=8)
    flavor: str | None = None
    volume_gb: int | None = Field(default=None, ge=1)


class ProvinceOverride(_Model):
    network: IPv4Network | None = None
    sizing: dict[str, SizingOverride] = {}


class Cloud(_Model):
    """What a Pulumi stack needs that the registry cannot know."""

    image: str = Field(min_length=1)
    external_network: str = Field(min_length=1)
    dns_zone: str = Field(min_length=1)
    organization: str = "organization"
    volume_type: str | None = None
    volume_encryption: bool = True
    # The operators' network (their VPN): the only range that may reach the bastions (SSH).
    operators: IPv4Network | None = None
    bastion_flavor: str = "g1.small"
    monitor_flavor: str = "g1.large"


class ProberSettings(_Model):
    """What the domain prober may do in this environment. The payment check never charges:
    it uses the payment platform's test mode, or a zero-value authorisation it reverses at
    once, or it does not run; write checks (they create synthetic records) can be off."""

    payment: Literal["test_mode", "zero_authorization", "off"] = "off"
    write_checks: bool = True


# A systemd OnCalendar expression (checked loosely here; systemd-analyze calendar is the judge).
Calendar = Annotated[str, Field(min_length=3, max_length=80, pattern=r"^[A-Za-z0-9*.,:/ ~-]+$")]


class Backups(_Model):
    """Each province database's continuous backup (pgBackRest, roles/pgbackrest): to the
    repository on its zone's backup host, encrypted, full/diff/incr on these calendars, WAL
    archived at least every `archive_timeout` seconds (the RPO without a standby)."""

    retention_full: int = Field(default=2, ge=1, le=52)
    retention_diff: int = Field(default=6, ge=1, le=365)
    full_on_calendar: Calendar = "Sun *-*-* 01:00:00"
    diff_on_calendar: Calendar = "Mon..Sat *-*-* 01:00:00"
    incr_on_calendar: Calendar = "*-*-* 07..22:30:00"
    archive_timeout: int = Field(default=60, ge=10, le=3600)
    # The backup host's volume; none: twice the sum of its zone's database volumes.
    volume_gb: int | None = Field(default=None, ge=10)


class Standby(_Model):
    """Each province database's streaming standby (`<province>-db-standby`). Commits to the
    `synchronous` systems' databases wait for it (no acknowledged dossier is lost with the
    primary); the others replicate asynchronously."""

    synchronous: tuple[str, ...] = ("procedures",)


class Lab(_Model):
    network_name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")
    default_provinces: tuple[str, ...] = Field(min_length=1)


class EstateFile(_Model):
    environment: str = Field(pattern=ENV_NAME)
    domain: str | None = Field(default=None, pattern=r"^[a-z0-9.-]+$")
    provinces: Literal["all"] | tuple[str, ...] = "all"
    zones: dict[str, Zone] = Field(min_length=1)
    default_zone: str
    network: Network
    systems: dict[str, SystemEntry]
    counterparts: dict[str, CounterpartEntry]
    sizing: dict[str, SizingOverride] = {}
    province_overrides: dict[str, ProvinceOverride] = {}
    cloud: Cloud | None = None
    lab: Lab | None = None
    # The runbooks this environment runs (repo-relative); `govops estate check` calls what
    # they call. Empty: every runbooks/*.yml.
    runbooks: tuple[str, ...] = ()
    # Whether this environment runs the national counterparts' hosts itself (the lab's
    # stand-ins); production does not: the counterparts are the government's own.
    counterparts_hosted: bool = True
    prober: ProberSettings = ProberSettings()
    backups: Backups = Backups()
    standby: Standby = Standby()
