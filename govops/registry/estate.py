"""An environment's estate: `inventories/<env>/estate.yml`, validated and resolved.

The file is hand-written and small; everything else (hosts, addresses, sizing) is derived
here from it and the registry, so that every tool sees the same estate.

Why over 500 lines: where each host sits (the Estate's host methods) and the checks that
refuse an estate whose hosts would not fit (the resolver) share the placement constants;
issue 18 added the standby and backup hosts (to split next: host placement in its own module).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from govops.errors import InputError, InputErrors
from govops.registry.catalog import (
    SYSTEM_IDS,
    Catalog,
    Sizing,
    catalog,
    flavor_for,
    replicas_for,
    volume_gb_for,
)
from govops.registry.estate_file import (
    Backups,
    Cloud,
    CounterpartEntry,
    EstateFile,
    Lab,
    Network,
    ProberSettings,
    Standby,
    SystemEntry,
    Zone,
)
from govops.registry.geography import LegacyProvince, Province, merged_from, provinces
from govops.yamlio import KeyPath, key_str, line_of, load_yaml, validate

TIER_SUBNETS = ("public", "app", "data", "mgmt")
# Where each host sits among its subnet's addresses: the first ten are left to the cloud
# (router, DHCP, load balancer VIPs); each system gets a block of eight for its replicas.
HOST_OFFSET = 10
SYSTEM_BLOCK = 8
# The national range is cut in 2**4 slices: the first for the national hosts, one per zone
# for its monitoring host (at most 15 zones).
ZONE_SLICE_BITS = 4
BASTION_OFFSET = 20  # the national bastion, after the national hosts
# The lab's authoritative DNS server (`dns`), after the counterparts' stand-ins and still in
# the national hosts' slice. Production has none of its own: Designate (infra/) serves names.
DNS_OFFSET = 5
BASTION_VOLUME_GB = 10  # a jump host keeps nothing but logs
# The database's streaming standby, a block after the primary (the lab's old provinces'
# databases sit between them).
STANDBY_OFFSET = SYSTEM_BLOCK
# A zone's backup host (pgBackRest's repository): beside its zone's monitoring host where there
# are several zones, else in the national hosts' slice, after the DNS server.
BACKUP_OFFSET = 12


@dataclass(frozen=True)
class Size:
    replicas: int
    flavor: str
    volume_gb: int


@dataclass(frozen=True)
class Host:
    name: str
    ip: IPv4Address
    province: str | None
    system: str | None
    tiers: tuple[str, ...]
    groups: tuple[str, ...]
    fqdn: str
    zone: str | None = None  # a zone's own monitoring host (provinces' hosts: their province's)


@dataclass(frozen=True)
class ProvinceEstate:
    province: Province
    zone: str
    region: str
    network: IPv4Network
    subnets: dict[str, IPv4Network]
    sizes: dict[str, Size]  # by system id, plus "db"

    @property
    def codename(self) -> str:
        return self.province.codename


@dataclass(frozen=True)
class Estate:
    path: Path
    environment: str
    domain: str | None
    zones: dict[str, Zone]
    network: Network
    provinces: dict[str, ProvinceEstate]
    systems: dict[str, SystemEntry]
    counterparts: dict[str, CounterpartEntry]
    cloud: Cloud | None
    lab: Lab | None
    catalog: Catalog = field(repr=False)
    runbooks: tuple[str, ...] = ()
    counterparts_hosted: bool = True
    prober: ProberSettings = field(default_factory=ProberSettings)
    backups: Backups = field(default_factory=Backups)
    standby: Standby = field(default_factory=Standby)

    def fqdn(self, host: str) -> str:
        return f"{host}.{self.domain}" if self.domain else host

    def hosts(self, only: set[str] | None = None) -> list[Host]:
        """Every host of the estate, provinces first (in code order), then national ones."""
        result: list[Host] = []
        for pe in self.provinces.values():
            if only is not None and pe.codename not in only:
                continue
            result.extend(self._province_hosts(pe))
        result.extend(self._national_hosts())
        return result

    def _province_hosts(self, pe: ProvinceEstate) -> list[Host]:
        p = pe.codename
        label = dns_label(p)
        app_base = pe.subnets["app"].network_address + HOST_OFFSET
        hosts = []
        for index, (sid, system) in enumerate(self.catalog.systems.items()):
            replicas = pe.sizes[sid].replicas
            for n in range(1, replicas + 1):
                name = f"{label}-{sid}" if replicas == 1 else f"{label}-{sid}-{n}"
                tiers = tuple(system.tiers)
                groups = (f"province_{p}", f"system_{sid}", *(f"tier_{t}" for t in tiers))
                ip = app_base + index * SYSTEM_BLOCK + (n - 1)
                hosts.append(Host(name, ip, p, sid, tiers, groups, self.fqdn(name)))
        db_ip = pe.subnets["data"].network_address + HOST_OFFSET
        hosts.append(
            Host(
                f"{label}-db",
                db_ip,
                p,
                None,
                ("db",),
                (f"province_{p}", "tier_db", "db_primaries"),
                self.fqdn(f"{label}-db"),
            )
        )
        # Its streaming standby (the primary is a fact of the data after a failover:
        # /etc/govops/db-role, playbooks/tasks/db_primary.yml; these groups say where each began).
        name = f"{label}-db-standby"
        groups = (f"province_{p}", "tier_db", "db_standbys")
        hosts.append(Host(name, db_ip + STANDBY_OFFSET, p, None, ("db",), groups, self.fqdn(name)))
        if self.lab is not None:
            # The lab's stand-ins for the old provinces' databases merged into this one
            # (`govops inherit`'s sources), after the province's database. Production's are
            # the old provinces' own servers, reached where they are.
            for i, old in enumerate(legacy_codenames(p), start=1):
                name = f"legacy-{dns_label(old)}-db"
                groups = (f"province_{p}", "legacy_sources")
                hosts.append(Host(name, db_ip + i, p, None, (), groups, self.fqdn(name)))
        if self.cloud is not None:
            # The province's jump host: SSH reaches its other hosts only through it.
            name = f"{label}-bastion"
            ip = pe.subnets["mgmt"].network_address + HOST_OFFSET
            groups = (f"province_{p}", "bastions")
            hosts.append(Host(name, ip, p, None, ("mgmt",), groups, self.fqdn(name)))
        return hosts

    @property
    def zoned_monitoring(self) -> bool:
        """One Prometheus per zone, federated by `monitor`, where there are several zones;
        one `monitor` doing both where there is one (the lab)."""
        return len(self.zones) > 1

    def monitors_of(self, zone: str | None) -> list[Host]:
        """Who scrapes a target of `zone` (None: one without a zone, which every zone's
        server scrapes): the zone's monitoring host, or the single `monitor`."""
        monitoring = [h for h in self._national_hosts() if "monitoring" in h.groups]
        zoned = [h for h in monitoring if h.zone is not None]
        if not zoned:
            return monitoring
        return [h for h in zoned if zone is None or h.zone == zone]

    def _national_hosts(self) -> list[Host]:
        national = self.network.national
        base = national.network_address + HOST_OFFSET
        zoned = self.zoned_monitoring
        groups = ("monitoring", "monitoring_national") if zoned else ("monitoring",)
        hosts = [Host("monitor", base, None, None, (), groups, self.fqdn("monitor"))]
        if self.counterparts_hosted:
            for i, name in enumerate(self.catalog.national_hosts, start=1):
                hosts.append(Host(name, base + i, None, None, (), ("national",), self.fqdn(name)))
        if self.lab is not None:
            dns = ("dns", base + DNS_OFFSET, None, None, ("dns",), ("dns_authoritative",))
            hosts.append(Host(*dns, self.fqdn("dns")))
        if zoned:
            # Each zone's server in its own slice of the national range (slice 0: the rest).
            slices = national.subnets(new_prefix=national.prefixlen + ZONE_SLICE_BITS)
            next(slices)
            for zone, net in zip(self.zones, slices, strict=False):
                name = f"monitor-{zone}"
                ip = net.network_address + HOST_OFFSET
                groups = ("monitoring", "monitoring_zone")
                hosts.append(Host(name, ip, None, None, (), groups, self.fqdn(name), zone=zone))
        hosts.extend(self._backup_hosts())
        if self.cloud is not None:
            hosts.append(
                Host(
                    "bastion",
                    base + BASTION_OFFSET,
                    None,
                    None,
                    ("mgmt",),
                    ("bastions",),
                    self.fqdn("bastion"),
                )
            )
        return hosts

    def _backup_hosts(self) -> list[Host]:
        """`backup-<zone>` for each zone with provinces: pgBackRest's repository for them."""
        national = self.network.national
        used = {pe.zone for pe in self.provinces.values()}
        hosts = []
        if self.zoned_monitoring:
            slices = national.subnets(new_prefix=national.prefixlen + ZONE_SLICE_BITS)
            next(slices)
            places = {
                z: net.network_address + HOST_OFFSET + 1
                for z, net in zip(self.zones, slices, strict=False)
            }
        else:
            places = {z: national.network_address + HOST_OFFSET + BACKUP_OFFSET for z in self.zones}
        for zone in self.zones:
            if zone in used:
                name = f"backup-{zone}"
                groups = ("backup_repositories",)
                hosts.append(
                    Host(name, places[zone], None, None, (), groups, self.fqdn(name), zone=zone)
                )
        return hosts

    def backup_host(self, province: str) -> str:
        return f"backup-{self.provinces[province].zone}"


def legacy_codename(lp: LegacyProvince) -> str:
    """`Bà Rịa - Vũng Tàu` → `ba_ria_vung_tau` (what `govops inherit` calls a source)."""
    text = unicodedata.normalize("NFC", lp.old_name).lower().strip()
    text = re.sub(r"^(thành phố|tỉnh)\s+", "", text).replace("đ", "d")
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    return "_".join(re.split(r"[\s\-'’]+", text.strip()))


def legacy_codenames(province: str) -> list[str]:
    """The old provinces merged into `province`, other than its own predecessor."""
    own = f"{provinces()[province].code:02d}"
    return [legacy_codename(lp) for lp in merged_from(province) if lp.old_code != own]


def dns_label(codename: str) -> str:
    """A province codename as a DNS label: host names may not hold underscores (RFC 1123)."""
    return codename.replace("_", "-")


def estate_path(inventories: Path, env: str) -> Path:
    return inventories / env / "estate.yml"


def load_estate(path: Path) -> Estate:
    """Load, validate and resolve an estate file; every problem names file, line and key."""
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise InputError(path, "", "a mapping of estate keys", got=type(data).__name__)
    spec = validate(EstateFile, data, path, lines)
    return _Resolver(path, lines, spec).resolve()


class _Resolver:
    def __init__(self, path: Path, lines: Mapping[KeyPath, int], spec: EstateFile) -> None:
        self.path, self.lines, self.spec = path, lines, spec
        self.errors: list[InputError] = []
        self.known = provinces()
        self.cat = catalog()

    def error(self, key: KeyPath, expected: str, got: object = None) -> None:
        self.errors.append(
            InputError(self.path, key_str(key), expected, got, line_of(self.lines, key))
        )

    def check_province(self, key: KeyPath, name: str) -> None:
        if name not in self.known:
            self.error(
                key, "a province codename of vietnam_provinces (e.g. hue, tuyen_quang)", got=name
            )

    def resolve(self) -> Estate:
        s = self.spec
        if s.environment != self.path.parent.name:
            self.error(
                ("environment",), f"the folder's name {self.path.parent.name!r}", got=s.environment
            )
        selected = self._selected()
        zone_of = self._zones(selected)
        self._keys_of(("systems",), s.systems, SYSTEM_IDS, required=True)
        self._keys_of(
            ("counterparts",), s.counterparts, tuple(self.cat.counterparts), required=True
        )
        self._keys_of(("sizing",), s.sizing, (*SYSTEM_IDS, "db"), required=False)
        for p, override in s.province_overrides.items():
            self.check_province(("province_overrides", p), p)
            self._keys_of(
                ("province_overrides", p, "sizing"),
                override.sizing,
                (*SYSTEM_IDS, "db"),
                required=False,
            )
        if s.lab is not None:
            for i, p in enumerate(s.lab.default_provinces):
                if p not in selected:
                    self.error(
                        ("lab", "default_provinces", i), "a province selected by `provinces`", got=p
                    )
        for i, sid in enumerate(s.standby.synchronous):
            if sid not in self.cat.systems or not self.cat.systems[sid].database:
                with_db = [k for k, v in self.cat.systems.items() if v.database]
                self.error(
                    ("standby", "synchronous", i),
                    f"a system with a database ({', '.join(with_db)})",
                    got=sid,
                )
        networks = self._networks(selected)
        if len(s.zones) > 2**ZONE_SLICE_BITS - 1:
            self.error(("zones",), f"at most {2**ZONE_SLICE_BITS - 1} zones", got=len(s.zones))
        if self.errors:
            raise InputErrors(self.errors)
        resolved = {p: self._province(self.known[p], zone_of[p], networks[p]) for p in selected}
        estate = Estate(
            path=self.path,
            environment=s.environment,
            domain=s.domain,
            zones=s.zones,
            network=s.network,
            provinces=resolved,
            systems=s.systems,
            counterparts=s.counterparts,
            cloud=s.cloud,
            lab=s.lab,
            catalog=self.cat,
            runbooks=s.runbooks,
            counterparts_hosted=s.counterparts_hosted,
            prober=s.prober,
            backups=s.backups,
            standby=s.standby,
        )
        self._placed(estate)
        return estate

    def _placed(self, estate: Estate) -> None:
        """Every host inside its range, off its network and broadcast addresses: a range too
        small for the hosts placed in it is refused (exit 2), never rendered."""
        national: KeyPath = ("network", "national")
        try:
            hosts = estate.hosts()
        except ValueError:  # too small even to slice for the zones' monitoring servers
            hosts = []
            self.error(
                national,
                "a range large enough for the national hosts",
                str(estate.network.national),
            )
        reported: set[KeyPath] = set()
        for h in hosts:
            key, net = national, estate.network.national
            if h.province is not None:
                override = self.spec.province_overrides.get(h.province)
                key = ("network", "province_prefix")
                if override is not None and override.network is not None:
                    key = ("province_overrides", h.province, "network")
                net = estate.provinces[h.province].network
            if key not in reported and (
                h.ip not in net or h.ip in (net.network_address, net.broadcast_address)
            ):
                reported.add(key)
                self.error(key, f"a range with room for host {h.name} ({h.ip})", got=str(net))
        if self.errors:
            raise InputErrors(self.errors)

    def _selected(self) -> list[str]:
        if self.spec.provinces == "all":
            return list(self.known)
        seen: set[str] = set()
        for i, p in enumerate(self.spec.provinces):
            self.check_province(("provinces", i), p)
            if p in seen:
                self.error(("provinces", i), "each province once", got=p)
            seen.add(p)
        # Keep official code order whatever order the file lists them in.
        return [p for p in self.known if p in seen]

    def _zones(self, selected: list[str]) -> dict[str, str]:
        zone_of: dict[str, str] = {}
        if self.spec.default_zone not in self.spec.zones:
            self.error(
                ("default_zone",),
                f"one of the zones ({', '.join(self.spec.zones)})",
                got=self.spec.default_zone,
            )
        for z, zone in self.spec.zones.items():
            if not re.fullmatch(r"[a-z][a-z0-9-]*", z):
                self.error(("zones", z), "a zone name of lowercase letters, digits and -", got=z)
            for i, p in enumerate(zone.provinces):
                self.check_province(("zones", z, "provinces", i), p)
                if p in zone_of:
                    self.error(
                        ("zones", z, "provinces", i),
                        f"a province in one zone only (already in {zone_of[p]})",
                        got=p,
                    )
                zone_of[p] = z
        return {p: zone_of.get(p, self.spec.default_zone) for p in selected}

    def _keys_of(
        self, key: KeyPath, given: Mapping[str, object], allowed: tuple[str, ...], required: bool
    ) -> None:
        for name in given:
            if name not in allowed:
                self.error((*key, name), f"one of {', '.join(allowed)}", got=name)
        if required:
            for name in allowed:
                if name not in given:
                    self.error((*key, name), "a value (required key is missing)")

    def _networks(self, selected: list[str]) -> dict[str, IPv4Network]:
        net = self.spec.network
        if not net.national.subnet_of(net.pool):
            self.error(
                ("network", "national"),
                f"a range inside network.pool {net.pool}",
                got=str(net.national),
            )
        if net.province_prefix <= net.pool.prefixlen:
            self.error(
                ("network", "province_prefix"),
                f"a prefix longer than the pool's /{net.pool.prefixlen}",
                got=net.province_prefix,
            )
            return {}
        slots = list(net.pool.subnets(new_prefix=net.province_prefix))
        taken: list[tuple[str, IPv4Network]] = [("network.national", net.national)]
        result: dict[str, IPv4Network] = {}
        for p in selected:
            override = self.spec.province_overrides.get(p)
            if override is not None and override.network is not None:
                key: KeyPath = ("province_overrides", p, "network")
                chosen = override.network
                if not chosen.is_private or chosen.prefixlen > 24:
                    self.error(key, "a private range of /24 or larger", got=str(chosen))
                    continue
            else:
                # A province's range is the pool slot at its official code: stable when
                # provinces are added or removed from the estate.
                key = ("network", "pool")
                code = self.known[p].code
                if code >= len(slots):
                    self.error(
                        key,
                        f"room for province code {code} at /{net.province_prefix}",
                        got=str(net.pool),
                    )
                    continue
                chosen = slots[code]
            for other_name, other in taken:
                if chosen.overlaps(other):
                    self.error(
                        key, f"a range not overlapping {other_name} ({other})", got=f"{p}: {chosen}"
                    )
            taken.append((f"the range of {p}", chosen))
            result[p] = chosen
        return result

    def _province(self, province: Province, zone: str, network: IPv4Network) -> ProvinceEstate:
        quarter = network.prefixlen + 2
        subnets = dict(zip(TIER_SUBNETS, network.subnets(new_prefix=quarter), strict=True))
        communes = len(province.communes)
        override = self.spec.province_overrides.get(province.codename)
        sizes: dict[str, Size] = {}
        for sid in (*SYSTEM_IDS, "db"):
            base: Sizing = self.cat.database if sid == "db" else self.cat.systems[sid].sizing
            size = Size(
                replicas_for(base, communes),
                flavor_for(base, communes),
                volume_gb_for(base, communes),
            )
            for layer in (
                self.spec.sizing.get(sid),
                override.sizing.get(sid) if override else None,
            ):
                if layer is not None:
                    size = Size(
                        layer.replicas or size.replicas,
                        layer.flavor or size.flavor,
                        layer.volume_gb or size.volume_gb,
                    )
            sizes[sid] = size
        return ProvinceEstate(province, zone, self.spec.zones[zone].region, network, subnets, sizes)
