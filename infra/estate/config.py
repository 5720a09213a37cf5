"""Stack config → typed, validated specs.

The program never reads a `govops:*` value anywhere else: every key is checked here once,
and a bad one is reported as `file: key: expected …, got …` (StackConfigError), so the
engineer knows which line of which `Pulumi.<stack>.yaml` to fix. Parsing works on the plain
mapping of a stack file's `config:` (full keys, e.g. `govops:network`), which `pulumi.Config`
gives under the engine and the YAML file gives to `govops plan`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any, TypeVar

ROLES = ("platform", "province")
TIERS = ("front", "gateway", "app")
EDGE_TIERS = ("front", "gateway")
REACHES = ("public", "province", "national", "local")
SUBNET_TIERS = ("public", "app", "data", "mgmt")
PROTOCOLS = ("tcp", "udp")

# The keys each role's program reads (without the `govops:` namespace).
PROVINCE_KEYS = (
    "environment",
    "role",
    "province",
    "network",
    "externalNetwork",
    "volumeType",
    "volumeEncryption",
    "systems",
    "db",
    "platformStack",
    "mgmt",
    "backup",
)
PLATFORM_KEYS = (
    "environment",
    "role",
    "image",
    "dnsZone",
    "counterparts",
    "sshPublicKey",
    "national",
    "volumeType",
    "volumeEncryption",
)
NATIONAL_ROLES = ("monitor", "zone-monitor", "bastion", "backup")

KeyPath = tuple[str | int, ...]
T = TypeVar("T")


class StackConfigError(ValueError):
    """A stack config value that is missing or wrong: names the file and the key."""

    def __init__(self, source: str, key: KeyPath, expected: str, got: object = None) -> None:
        self.source = source
        self.key = key
        self.expected = expected
        self.got = got
        message = f"{source}: {key_str(key)}: expected {expected}"
        if got is not None:
            message += f", got {got!r}"
        super().__init__(message)

    def __reduce__(self) -> tuple[type[StackConfigError], tuple[str, KeyPath, str, object]]:
        # Raised in `govops plan`'s worker processes and pickled back to the parent.
        return (StackConfigError, (self.source, self.key, self.expected, self.got))


def key_str(key: KeyPath) -> str:
    """`("config", "govops:systems", "lgsp", 0)` → `config.govops:systems.lgsp[0]`."""
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass(frozen=True)
class PortSpec:
    tier: str
    port: int
    protocol: str
    reach: str  # who may connect: public, province, national, local (REACHES)


@dataclass(frozen=True)
class HostSpec:
    name: str
    ip: IPv4Address


@dataclass(frozen=True)
class SystemSpec:
    id: str
    flavor: str
    volume_gb: int
    edge_tier: str
    app_port: int
    readiness: str
    ports: tuple[PortSpec, ...]
    hosts: tuple[HostSpec, ...]

    @property
    def tiers(self) -> tuple[str, ...]:
        """The system's tiers in catalog order (each gets a security group)."""
        return tuple(dict.fromkeys(p.tier for p in self.ports))

    @property
    def public_ports(self) -> tuple[PortSpec, ...]:
        """Ports on the edge tier open to anyone: these get a load balancer listener."""
        return tuple(p for p in self.ports if p.reach == "public" and p.tier == self.edge_tier)


@dataclass(frozen=True)
class DbSpec:
    flavor: str
    volume_gb: int
    host: HostSpec  # the declared primary
    standby: HostSpec | None = None  # its streaming standby, on another hypervisor

    @property
    def hosts(self) -> tuple[HostSpec, ...]:
        return (self.host,) if self.standby is None else (self.host, self.standby)


@dataclass(frozen=True)
class NetworkSpec:
    cidr: IPv4Network
    subnets: dict[str, IPv4Network]  # by SUBNET_TIERS
    national: IPv4Network


@dataclass(frozen=True)
class MgmtSpec:
    """Who manages and watches a province: its bastion (SSH) and its zone's Prometheus."""

    monitor: HostSpec
    bastion: HostSpec | None
    bastion_flavor: str | None
    operators: IPv4Network | None  # who may reach the bastion
    bastion_volume_gb: int = 10


@dataclass(frozen=True)
class NationalHostSpec:
    name: str
    ip: IPv4Address
    role: str  # NATIONAL_ROLES
    zone: str | None
    flavor: str
    volume_gb: int | None = None  # a backup host's repository volume
    clients: tuple[HostSpec, ...] = ()  # a backup host's: the zone's database hosts


@dataclass(frozen=True)
class NationalSpec:
    """The platform's own hosts in the national range: monitoring and the national bastion."""

    cidr: IPv4Network
    external_network: str
    hosts: tuple[NationalHostSpec, ...]
    operators: IPv4Network | None


@dataclass(frozen=True)
class ProvinceSpec:
    source: str  # the stack file, for messages
    environment: str
    codename: str  # vietnam_provinces codename (hue, ho_chi_minh)
    code: str
    name: str
    zone: str
    communes: int
    network: NetworkSpec
    external_network: str
    volume_type: str | None
    volume_encryption: bool
    systems: dict[str, SystemSpec]
    db: DbSpec
    platform_stack: str
    mgmt: MgmtSpec | None = None
    backup: HostSpec | None = None  # the zone's backup host (pgBackRest's repository)

    @property
    def label(self) -> str:
        """The codename as a DNS label: resource and host names use hyphens (RFC 1123)."""
        return self.codename.replace("_", "-")


@dataclass(frozen=True)
class PlatformSpec:
    source: str
    environment: str
    image: str
    dns_zone: str
    counterparts: dict[str, str]
    ssh_public_key: str
    national: NationalSpec | None = None
    volume_type: str | None = None  # the encrypted type, for the backup hosts' volumes
    volume_encryption: bool = True


def role_of(config: Mapping[str, Any], source: str) -> str:
    return _Reader(config, source).choice(("govops:role",), ROLES)


def parse_platform(config: Mapping[str, Any], source: str) -> PlatformSpec:
    r = _Reader(config, source)
    return PlatformSpec(
        source=source,
        environment=r.name(("govops:environment",)),
        image=r.text(("govops:image",)),
        dns_zone=r.text(("govops:dnsZone",)).rstrip("."),
        counterparts={
            k: r.text(("govops:counterparts", k))
            for k in r.mapping(("govops:counterparts",), allow_empty=True)
        },
        ssh_public_key=r.ssh_key(("govops:sshPublicKey",)),
        national=_national(r) if r.get(("govops:national",)) is not None else None,
        volume_type=r.optional(r.text, ("govops:volumeType",)),
        volume_encryption=r.optional(r.boolean, ("govops:volumeEncryption",)) is not False,
    )


def _national(r: _Reader) -> NationalSpec:
    key: KeyPath = ("govops:national",)
    r.mapping(key)
    cidr = r.network((*key, "cidr"))
    hosts = []
    for i in range(len(r.sequence((*key, "hosts")))):
        hk = (*key, "hosts", i)
        host = _host(r, hk, cidr)
        zone_key = (*hk, "zone")
        role = r.choice((*hk, "role"), NATIONAL_ROLES)
        zone = r.optional(r.name, zone_key)
        volume_gb: int | None = None
        clients: tuple[HostSpec, ...] = ()
        if role == "backup":
            if zone is None:
                raise r.error(zone_key, "the zone whose databases a backup host keeps")
            volume_gb = r.integer((*hk, "volumeGb"), 1, 65536)
            clients = _clients(r, (*hk, "clients"))
        hosts.append(
            NationalHostSpec(
                name=host.name,
                ip=host.ip,
                role=role,
                zone=zone,
                flavor=r.text((*hk, "flavor")),
                volume_gb=volume_gb,
                clients=clients,
            )
        )
    operators_key = (*key, "operators")
    return NationalSpec(
        cidr=cidr,
        external_network=r.text((*key, "externalNetwork")),
        hosts=tuple(hosts),
        operators=r.optional(r.network, operators_key),
    )


def _clients(r: _Reader, key: KeyPath) -> tuple[HostSpec, ...]:
    """A backup host's database hosts (each province's primary and standby)."""
    if r.get(key) is None:
        return ()  # a zone without provinces yet
    return tuple(_outside(r, (*key, i)) for i in range(len(r.sequence(key))))


def _outside(r: _Reader, key: KeyPath) -> HostSpec:
    """A host in another stack's range (the zone's monitor, a province's database)."""
    return _host(r, key, IPv4Network("10.0.0.0/8"), anywhere_private=True)


def _mgmt(r: _Reader, network: NetworkSpec) -> MgmtSpec:
    key: KeyPath = ("govops:mgmt",)
    r.mapping(key)
    bastion_key = (*key, "bastion")
    has_bastion = r.get(bastion_key) is not None
    operators_key = (*key, "operators")
    return MgmtSpec(
        monitor=_outside(r, (*key, "monitor")),
        bastion=_host(r, bastion_key, network.subnets["mgmt"]) if has_bastion else None,
        bastion_flavor=r.text((*key, "bastionFlavor")) if has_bastion else None,
        bastion_volume_gb=r.integer((*key, "bastionVolumeGb"), 1, 16384) if has_bastion else 10,
        operators=r.optional(r.network, operators_key),
    )


def parse_province(config: Mapping[str, Any], source: str) -> ProvinceSpec:
    r = _Reader(config, source)
    prov: KeyPath = ("govops:province",)
    r.mapping(prov)
    network = _network(r)
    systems_key: KeyPath = ("govops:systems",)
    systems = {sid: _system(r, (*systems_key, sid), sid, network) for sid in r.mapping(systems_key)}
    db_key: KeyPath = ("govops:db",)
    r.mapping(db_key)
    standby_key = (*db_key, "standby")
    db = DbSpec(
        flavor=r.text((*db_key, "flavor")),
        volume_gb=r.integer((*db_key, "volumeGb"), 1, 16384),
        host=_host(r, (*db_key, "host"), network.subnets["data"]),
        standby=r.optional(lambda k: _host(r, k, network.subnets["data"]), standby_key),
    )
    if db.standby is not None and db.standby.ip == db.host.ip:
        raise r.error((*standby_key, "ip"), f"an address other than the primary's {db.host.ip}")
    volume_type_key: KeyPath = ("govops:volumeType",)
    return ProvinceSpec(
        source=source,
        environment=r.name(("govops:environment",)),
        codename=r.name((*prov, "codename"), underscores=True),
        code=r.text((*prov, "code")),
        name=r.text((*prov, "name")),
        zone=r.name((*prov, "zone")),
        communes=r.integer((*prov, "communes"), 1, 10_000),
        network=network,
        external_network=r.text(("govops:externalNetwork",)),
        volume_type=r.optional(r.text, volume_type_key),
        volume_encryption=r.boolean(("govops:volumeEncryption",)),
        systems=systems,
        db=db,
        platform_stack=r.text(("govops:platformStack",)),
        mgmt=_mgmt(r, network) if r.get(("govops:mgmt",)) is not None else None,
        backup=r.optional(lambda k: _outside(r, k), ("govops:backup",)),
    )


def _network(r: _Reader) -> NetworkSpec:
    key: KeyPath = ("govops:network",)
    r.mapping(key)
    cidr = r.network((*key, "cidr"))
    subnets_key = (*key, "subnets")
    given = r.mapping(subnets_key)
    subnets: dict[str, IPv4Network] = {}
    for tier in SUBNET_TIERS:
        if tier not in given:
            raise r.error((*subnets_key, tier), "a subnet (required key is missing)")
        subnet = r.network((*subnets_key, tier))
        if not subnet.subnet_of(cidr):
            raise r.error((*subnets_key, tier), f"a range inside the network {cidr}", str(subnet))
        subnets[tier] = subnet
    for extra in given:
        if extra not in SUBNET_TIERS:
            raise r.error((*subnets_key, extra), f"one of {', '.join(SUBNET_TIERS)}", extra)
    return NetworkSpec(cidr=cidr, subnets=subnets, national=r.network((*key, "national")))


def _system(r: _Reader, key: KeyPath, sid: str, network: NetworkSpec) -> SystemSpec:
    edge = r.choice((*key, "edgeTier"), EDGE_TIERS)
    ports: list[PortSpec] = []
    for i in range(len(r.sequence((*key, "ports")))):
        pk = (*key, "ports", i)
        r.mapping(pk)
        tier = r.choice((*pk, "tier"), TIERS)
        port = PortSpec(
            tier=tier,
            port=r.integer((*pk, "port"), 1, 65535),
            protocol=r.choice((*pk, "protocol"), PROTOCOLS),
            reach=r.choice((*pk, "from"), REACHES),
        )
        # Anyone may reach only the edge (nginx, TLS); an app port open to the Internet is
        # a mistake in the catalog, not something to provision.
        if port.reach == "public" and tier != edge:
            raise r.error((*pk, "from"), f"public only on the edge tier {edge!r}", "public")
        ports.append(port)
    hosts_key = (*key, "hosts")
    hosts = tuple(
        _host(r, (*hosts_key, i), network.subnets["app"]) for i in range(len(r.sequence(hosts_key)))
    )
    return SystemSpec(
        id=sid,
        flavor=r.text((*key, "flavor")),
        volume_gb=r.integer((*key, "volumeGb"), 1, 16384),
        edge_tier=edge,
        app_port=r.integer((*key, "appPort"), 1, 65535),
        readiness=r.path((*key, "readiness")),
        ports=tuple(ports),
        hosts=hosts,
    )


def _host(
    r: _Reader, key: KeyPath, subnet: IPv4Network, anywhere_private: bool = False
) -> HostSpec:
    r.mapping(key)
    ip_key = (*key, "ip")
    try:
        ip = ip_address(str(r.text(ip_key)))
    except ValueError:
        raise r.error(ip_key, "an IPv4 address", r.get(ip_key)) from None
    if anywhere_private and isinstance(ip, IPv4Address):
        if not ip.is_private:
            raise r.error(ip_key, "a private address", str(ip))
    elif not isinstance(ip, IPv4Address) or ip not in subnet:
        raise r.error(ip_key, f"an address in the subnet {subnet}", str(ip))
    return HostSpec(name=r.name((*key, "name")), ip=ip)


class _Reader:
    """Typed access to nested config values; every failure names the full key path."""

    def __init__(self, config: Mapping[str, Any], source: str) -> None:
        self.config, self.source = config, source

    def error(self, key: KeyPath, expected: str, got: object = None) -> StackConfigError:
        return StackConfigError(self.source, ("config", *key), expected, got)

    def get(self, key: KeyPath) -> Any:
        value: Any = self.config
        for part in key:
            if isinstance(part, int):
                value = value[part] if isinstance(value, list) and part < len(value) else None
            else:
                value = value.get(part) if isinstance(value, Mapping) else None
        return value

    def optional(self, read: Callable[[KeyPath], T], key: KeyPath) -> T | None:
        return None if self.get(key) is None else read(key)

    def required(self, key: KeyPath) -> Any:
        value = self.get(key)
        if value is None:
            raise self.error(key, "a value (required key is missing)")
        return value

    def text(self, key: KeyPath) -> str:
        value = self.required(key)
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "a non-empty string", value)
        return value

    def name(self, key: KeyPath, underscores: bool = False) -> str:
        value = self.text(key)
        allowed = "abcdefghijklmnopqrstuvwxyz0123456789-" + ("_" if underscores else "")
        if not value[0].isalpha() or any(c not in allowed for c in value):
            raise self.error(key, "a lowercase name of letters, digits and -", value)
        return value

    def path(self, key: KeyPath) -> str:
        value = self.text(key)
        if not value.startswith("/"):
            raise self.error(key, "an HTTP path starting with /", value)
        return value

    def ssh_key(self, key: KeyPath) -> str:
        value = self.text(key)
        if not value.startswith(("ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-")):
            raise self.error(key, "an OpenSSH public key (ssh-ed25519 …)", value[:20] + "…")
        return value

    def integer(self, key: KeyPath, low: int, high: int) -> int:
        value = self.required(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(key, f"an integer from {low} to {high}", value)
        return value

    def boolean(self, key: KeyPath) -> bool:
        value = self.required(key)
        if not isinstance(value, bool):
            raise self.error(key, "true or false", value)
        return value

    def choice(self, key: KeyPath, options: tuple[str, ...]) -> str:
        value = self.required(key)
        if value not in options:
            raise self.error(key, f"one of {', '.join(options)}", value)
        return str(value)

    def network(self, key: KeyPath) -> IPv4Network:
        value = self.text(key)
        try:
            net = ip_network(value)
        except ValueError:
            raise self.error(key, "an IPv4 network in CIDR form (10.46.0.0/16)", value) from None
        if not isinstance(net, IPv4Network):
            raise self.error(key, "an IPv4 network", value)
        return net

    def mapping(self, key: KeyPath, allow_empty: bool = False) -> dict[str, Any]:
        value = self.get(key)
        if value is None and allow_empty:
            return {}
        if not isinstance(value, Mapping) or (not value and not allow_empty):
            raise self.error(key, "a non-empty mapping", value)
        return dict(value)

    def sequence(self, key: KeyPath) -> list[Any]:
        value = self.required(key)
        if not isinstance(value, list) or not value:
            raise self.error(key, "a non-empty list", value)
        return value
